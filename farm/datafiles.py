"""What a data set's files hold, read from their headers alone: which characters a font
really draws, whether an image has alpha.

Both sides need the same answers: the submission refuses a ``glyphs`` job whose charset no
font draws, a font folder with no fonts, or ``target: sdf`` on images without alpha, naming the
field, before anything is written; the worker's loaders (``workers.datasets``) decide from
the same functions what they train on. Only fontTools and Pillow, never torch, so the control
plane can import it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

FONT_SUFFIXES = frozenset({".ttf", ".otf"})
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
)
# LastResort draws a placeholder box for every code point; it is not a typeface.
EXCLUDED_FONTS = frozenset({"LastResortHE-Regular"})
# Held out of training by default: each is a weight/slant combination whose neighbours in
# the same family are trained on (Sans Bold and Sans Oblique; Serif, Serif Bold Italic;
# STIX General and its italics), so evaluating on them asks "does the style space
# interpolate?" rather than "can it draw a family it never saw?".
DEFAULT_HELDOUT = ("DejaVuSans-BoldOblique", "DejaVuSerif-Italic", "STIXGeneralBol")

_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# Glyph names that say nothing about the character (post table format 3, CID fonts).
_GENERIC_NAME = re.compile(r"^(glyph|gid|cid|index|g)?[_.]?\d+$")
# Variants of the character itself: cmmi10 has only old-style figures ("zerooldstyle").
_VARIANT = re.compile(r"(oldstyle|small)$")


class DataFileError(ValueError):
    """A data set's folder or file is missing, empty or unreadable."""


def folder_files(folder: str | Path, suffixes: frozenset[str], what: str) -> list[Path]:
    """The visible files of ``folder`` (not recursive) with one of ``suffixes``, sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise DataFileError(f"{what} folder not found: {root}")
    files = sorted(
        p
        for p in root.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
    )
    if not files:
        raise DataFileError(f"no {what}s in {root} (looked for {', '.join(sorted(suffixes))})")
    return files


def matplotlib_font_files() -> list[Path]:
    """The TrueType fonts in matplotlib's data folder, sorted by name, LastResort excluded."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return [p for p in folder_files(folder, FONT_SUFFIXES, "font") if p.stem not in EXCLUDED_FONTS]


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


@lru_cache(maxsize=256)
def _cmap(path: Path, _mtime_ns: int) -> dict[int, str]:
    from fontTools.ttLib import TTFont, TTLibError

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # timestamps "seem very low"
    try:
        with TTFont(path, lazy=True, fontNumber=0) as tt:
            return dict(tt.getBestCmap() or {})
    except (TTLibError, OSError, AssertionError, KeyError) as e:
        raise DataFileError(f"cannot read font {path}: {e}") from None


def covered(path: Path, chars: Sequence[str]) -> list[str]:
    """The characters of ``chars`` that the font at ``path`` really has a glyph for.

    The cmap must map the character to a glyph whose name is that character
    (:func:`names_character`): symbol fonts in TeX encodings map ASCII slots to unrelated
    glyphs (cmex10's "A" is ``parenrightbt``, cmsy10's "a" is ``turnstileright``, cmr10's
    "<" is ``exclamdown``), and the names give them away. Read once per file and version.
    """
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as e:
        raise DataFileError(f"cannot read font {path}: {e}") from None
    cmap = _cmap(path, mtime)
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
            raise DataFileError(
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


def source_channels(mode: str, info: Mapping[Any, Any]) -> int:
    """1 for grey images, 4 for images with any transparency, else 3, from a Pillow image's
    ``mode`` and ``info``."""
    if mode in _ALPHA_MODES or "transparency" in info:
        return 4
    return 1 if mode in _GREY_MODES else 3


def file_channels(path: Path) -> int:
    """:func:`source_channels` of an image file, from its header (nothing decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return source_channels(im.mode, im.info)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataFileError(f"cannot decode {path}: {e}") from None


def data_problems(
    dataset: str,
    path: Path | None,
    *,
    target: str | None,
    charset: str | None,
    fonts: Sequence[str] | None,
    heldout_fonts: Sequence[str] | None,
) -> list[tuple[str, str]]:
    """What the files behind a train spec's data set cannot give, as (field, reason): the
    submission's share of the checks the loaders make again on the worker."""
    if dataset == "glyphs" or dataset.startswith("glyphs:"):
        return _glyph_problems(path, charset, fonts, heldout_fonts)
    if dataset.startswith("images:") and target == "sdf" and path is not None and _is_dir(path):
        try:
            files = folder_files(path, IMAGE_SUFFIXES, "image")
            if not any(file_channels(p) == 4 for p in files):
                reason = f"sdf needs shapes to measure, and no image in {path} has alpha"
                return [("target", reason)]
        except DataFileError as e:
            return [("dataset", str(e))]
    return []


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _glyph_problems(
    folder: Path | None,
    charset: str | None,
    wanted: Sequence[str] | None,
    heldout: Sequence[str] | None,
) -> list[tuple[str, str]]:
    from farm.charset import DEFAULT_CHARSET, CharsetError, parse_charset

    try:
        files = folder_files(folder, FONT_SUFFIXES, "font") if folder else matplotlib_font_files()
    except DataFileError as e:
        return [("dataset", str(e))]
    by_name = {p.stem: p for p in files}
    if wanted is not None:
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            have = ", ".join(by_name)
            return [("fonts", f"no font(s) {', '.join(unknown)} (have {have})")]
        by_name = {n: by_name[n] for n in sorted(set(wanted))}
    try:
        chars = parse_charset(charset or DEFAULT_CHARSET)
    except CharsetError:
        return []  # the spec's own validation names it
    try:
        drawn = {name: covered(p, chars) for name, p in by_name.items()}
    except DataFileError as e:
        return [("dataset", str(e))]
    styles = [name for name, have in drawn.items() if have]
    missing = [c for c in chars if not any(c in have for have in drawn.values())]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:20]) + (" ..." if len(missing) > 20 else "")
        return [("charset", f"no font has a glyph for {shown}")]
    try:
        held = heldout_names(styles, heldout)
    except DataFileError as e:
        return [("heldout_fonts", str(e))]
    if not set(styles) - set(held):
        return [("heldout_fonts", f"every font is held out ({', '.join(held)}): none to train on")]
    return []


def picture_problems(
    readable: Sequence[Path], refs: Mapping[str, str | None]
) -> list[tuple[str, str]]:
    """Each ``field: path`` of ``refs`` (a render's background picture, its bone sprites)
    must be an image file that the job may read: confined like every input, and an image by
    its header."""
    from farm.inputs import input_file

    out: list[tuple[str, str]] = []
    for field, ref in refs.items():
        if ref is None:
            continue
        path, why = input_file(readable, ref)
        try:
            if path is not None:
                file_channels(path)
        except DataFileError as e:
            why = str(e)
        if why is not None:
            out.append((field, why))
    return out
