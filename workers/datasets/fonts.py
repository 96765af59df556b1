"""Fonts for the ``glyphs`` set: where they come from, which characters each really has, and
which are held out of training (the decisions themselves are :mod:`farm.datafiles`', which
the submission checks with too).

The default fonts ship inside matplotlib's wheel (``mpl-data/fonts/ttf``: DejaVu, STIX and
Computer Modern), so every worker has them with no system package and no network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from farm import datafiles
from farm.datafiles import DEFAULT_HELDOUT, FONT_SUFFIXES, DataFileError, names_character
from workers.datasets.base import DatasetError, confine_files, folder_files

__all__ = [
    "DEFAULT_HELDOUT",
    "Font",
    "covered",
    "folder_fonts",
    "heldout_names",
    "matplotlib_fonts",
    "names_character",
]


@dataclass(frozen=True)
class Font:
    name: str  # the file's stem: the style name
    path: Path


def matplotlib_fonts() -> list[Font]:
    """The TrueType fonts in matplotlib's data folder, sorted by name, LastResort excluded."""
    try:
        return [Font(p.stem, p) for p in datafiles.matplotlib_font_files()]
    except DataFileError as e:
        raise DatasetError(str(e)) from None


def folder_fonts(folder: str, roots: Sequence[Path] | None) -> list[Font]:
    """The .ttf/.otf files of a user's folder, each confined to ``roots`` like images."""
    files = folder_files(folder, FONT_SUFFIXES, "font")
    confine_files(files, roots)
    return [Font(p.stem, p) for p in files]


def covered(font: Font, chars: Sequence[str]) -> list[str]:
    """The characters of ``chars`` that ``font`` really has a glyph for
    (:func:`farm.datafiles.covered`). Empty glyphs (a space) are dropped when rendering."""
    try:
        return datafiles.covered(font.path, chars)
    except DataFileError as e:
        raise DatasetError(str(e)) from None


def heldout_names(names: Sequence[str], requested: Sequence[str] | None) -> list[str]:
    """:func:`farm.datafiles.heldout_names`, its errors as :class:`DatasetError`."""
    try:
        return datafiles.heldout_names(names, requested)
    except DataFileError as e:
        raise DatasetError(str(e)) from None
