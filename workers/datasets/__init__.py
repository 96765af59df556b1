"""Training data, one module per set; every set resolves to a :class:`Dataset`.

Built in (no network, nothing cached on disk): ``digits`` (scikit-learn's 8x8 digits),
``moving-digits`` (clips), ``glyphs`` (characters from the fonts in matplotlib's wheel, with
signed distance fields) and ``sprites`` (dSprites-style colour shapes with their factors).
A user's own: ``images:<folder>``, ``video:<file>`` and ``glyphs:<folder of fonts>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workers.datasets import bvh, digits, glyphs, images, motion, sprites, strokes, video
from workers.datasets.base import Dataset, DatasetError, Loader, Request, convert_channels
from workers.datasets.digits import load_digits_images
from workers.datasets.glyphs import parse_charset
from workers.datasets.images import load_image_folder

# The function shadows its module's name here, as it did before the package existed.
from workers.datasets.moving_digits import load as _load_moving_digits
from workers.datasets.moving_digits import moving_digits
from workers.datasets.video import load_video

# The sets a name resolves to: a new set is a new module and one line here.
BUILTIN: dict[str, Loader] = {
    "digits": digits.load,
    "moving-digits": _load_moving_digits,
    "glyphs": glyphs.load,
    "sprites": sprites.load,
    "motion": motion.load,
    "strokes": strokes.load,
}
# ``kind:<path>`` sets; the path is confined by the caller (farm.inputs.dataset_input).
FROM_PATH: dict[str, Loader] = {
    "images": images.load,
    "video": video.load,
    "glyphs": glyphs.load,
    "bvh": bvh.load,
}

__all__ = [
    "BUILTIN",
    "FROM_PATH",
    "Dataset",
    "DatasetError",
    "convert_channels",
    "load_dataset",
    "load_digits_images",
    "load_image_folder",
    "load_video",
    "moving_digits",
    "parse_charset",
]


def load_dataset(
    name: str,
    size: int,
    *,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    roots: Sequence[Path] | None = None,
) -> Dataset:
    """Resolve a data set name from a job spec.

    ``"digits"`` (labelled), ``"moving-digits"`` (256 clips of 16 frames on a ``size``
    canvas, digits at half the canvas; ``seed`` picks the clips), ``"glyphs"``,
    ``"sprites"``, ``"images:<folder>"``, ``"video:<file>"`` and ``"glyphs:<folder>"``.
    ``options`` are the set's own settings (every set takes ``channels``: 1, 3 or 4; see each
    module's ``load``); an option a set does not take is refused. Anything else raises
    :class:`DatasetError`. The caller confines the folder or file to the roots a job may
    read from; ``roots`` confine each file in a folder too.
    """
    opts: Mapping[str, Any] = options or {}
    if name in BUILTIN:
        return BUILTIN[name](Request(name, None, size, seed, opts, roots))
    kind, sep, rest = name.partition(":")
    if sep and rest and kind in FROM_PATH:
        return FROM_PATH[kind](Request(name, rest, size, seed, opts, roots))
    raise DatasetError(
        f"unknown data set {name!r}: expected one of {', '.join(repr(n) for n in BUILTIN)}, "
        f"or {', '.join(repr(k + ':<path>') for k in FROM_PATH)}"
    )
