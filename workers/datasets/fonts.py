"""Fonts for the ``glyphs`` set: where they come from, which characters each really has, and
which are held out of training.

The default fonts ship inside matplotlib's wheel (``mpl-data/fonts/ttf``: DejaVu, STIX and
Computer Modern), so every worker has them with no system package and no network.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workers.datasets.base import DatasetError, confine_files, folder_files

FONT_SUFFIXES = frozenset({".ttf", ".otf"})
# LastResort draws a placeholder box for every code point; it is not a typeface.
EXCLUDED_FONTS = frozenset({"LastResortHE-Regular"})
# Held out of training by default: each is a weight/slant combination whose neighbours in
# the same family are trained on (Sans Bold and Sans Oblique; Serif, Serif Bold Italic;
# STIX General and its italics), so evaluating on them asks "does the style space
# interpolate?" rather than "can it draw a family it never saw?".
DEFAULT_HELDOUT = ("DejaVuSans-BoldOblique", "DejaVuSerif-Italic", "STIXGeneralBol")


@dataclass(frozen=True)
class Font:
    name: str  # the file's stem: the style name
    path: Path


def matplotlib_fonts() -> list[Font]:
    """The TrueType fonts in matplotlib's data folder, sorted by name, LastResort excluded."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    files = folder_files(folder, FONT_SUFFIXES, "font")
    return [Font(p.stem, p) for p in files if p.stem not in EXCLUDED_FONTS]


def folder_fonts(folder: str, roots: Sequence[Path] | None) -> list[Font]:
    """The .ttf/.otf files of a user's folder, each confined to ``roots`` like images."""
    files = folder_files(folder, FONT_SUFFIXES, "font")
    confine_files(files, roots)
    return [Font(p.stem, p) for p in files]


# Glyph names that say nothing about the character (post table format 3, CID fonts).
_GENERIC_NAME = re.compile(r"^(glyph|gid|cid|index|g)?[_.]?\d+$")
# Variants of the character itself: cmmi10 has only old-style figures ("zerooldstyle").
_VARIANT = re.compile(r"(oldstyle|small)$")


def names_character(glyph: str, ch: str) -> bool:
    """Whether a glyph's name is ``ch`` by the Adobe Glyph List ("A", "zero", "uni0041",
    "A.alt", "zerooldstyle"), or a bare number that names nothing."""
    from fontTools import agl

    if glyph == ".notdef":
        return False
    return bool(
        agl.toUnicode(glyph) == ch
        or agl.toUnicode(_VARIANT.sub("", glyph.split(".")[0])) == ch
        or _GENERIC_NAME.match(glyph)
    )


def covered(font: Font, chars: Sequence[str]) -> list[str]:
    """The characters of ``chars`` that ``font`` really has a glyph for.

    The cmap must map the character to a glyph whose name is that character
    (:func:`names_character`): symbol fonts in TeX encodings map ASCII slots to unrelated
    glyphs (cmex10's "A" is ``parenrightbt``, cmsy10's "a" is ``turnstileright``, cmr10's
    "<" is ``exclamdown``), and the names give them away. Empty glyphs (a space) are dropped
    when rendering.
    """
    from fontTools.ttLib import TTFont, TTLibError

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # timestamps "seem very low"
    try:
        with TTFont(font.path, lazy=True, fontNumber=0) as tt:
            cmap = tt.getBestCmap() or {}
    except (TTLibError, OSError, AssertionError, KeyError) as e:
        raise DatasetError(f"cannot read font {font.path}: {e}") from None
    return [ch for ch in chars if names_character(cmap.get(ord(ch), ".notdef"), ch)]


def _stable_rank(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def heldout_names(names: Sequence[str], requested: Sequence[str] | None) -> list[str]:
    """Which of ``names`` are held out of training.

    ``requested`` (the ``heldout_fonts`` option) must name fonts in use. Otherwise the
    :data:`DEFAULT_HELDOUT` fonts that are present; failing those (a user's folder), one font
    in eight, at least one when there are two or more, chosen by a hash of the name, so the
    split does not depend on the order of a listing and moves little when a font is added.
    """
    if requested is not None:
        unknown = sorted(set(requested) - set(names))
        if unknown:
            raise DatasetError(
                f"held-out font(s) {', '.join(unknown)} not among the fonts in use: "
                f"{', '.join(names)}"
            )
        return [n for n in names if n in set(requested)]
    default = [n for n in names if n in DEFAULT_HELDOUT]
    if default or len(names) < 2:
        return default
    count = max(1, math.ceil(len(names) / 8))
    chosen = set(sorted(names, key=_stable_rank)[:count])
    return [n for n in names if n in chosen]
