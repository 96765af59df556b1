"""``images:<folder>``: a user's own pictures, decoded with Pillow in their own colours.

Pillow rather than ffmpeg: it keeps alpha (palette transparency, LA, RGBA), applies EXIF
orientation, and resizes RGBA premultiplied, so transparent pixels do not bleed their
arbitrary colour into the edges. ffmpeg stays for video (:mod:`.video`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from farm import datafiles
from farm.datafiles import IMAGE_SUFFIXES
from workers.datasets.base import (
    Dataset,
    DatasetError,
    Request,
    confine_files,
    convert_channels,
    folder_files,
)
from workers.sdf import DEFAULT_SPREAD_PX, sdf_from_mask, supersample_factor

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _peek(path: Path) -> int:
    """The file's :func:`source_channels`, from its header alone (nothing decoded yet)."""
    try:
        with Image.open(path) as im:
            return source_channels(im)
    except _DECODE_ERRORS as e:
        raise DatasetError(f"cannot decode {path}: {e}") from None


def _open(path: Path) -> Image.Image:
    """The decoded, upright image; any decoding failure names the file."""
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im)
    except _DECODE_ERRORS as e:
        raise DatasetError(f"cannot decode {path}: {e}") from None


def source_channels(im: Image.Image) -> int:
    """1 for grey files, 4 for files with any transparency, else 3."""
    return datafiles.source_channels(im.mode, im.info)


def _as_mode(im: Image.Image, channels: int) -> Image.Image:
    """``im`` in the mode for ``channels`` (1: "F" scaled to [0, 1], 3: "RGB", 4: "RGBA")."""
    if channels != 1:
        return im.convert("RGBA" if channels == 4 else "RGB")
    if im.mode.startswith(("I", "F")):  # 16-bit grey: keep its precision, scale by its depth
        a = np.asarray(im, dtype=np.float32)
        top = 65535.0 if im.mode.startswith("I;16") or float(a.max(initial=0)) > 255 else 255.0
        return Image.fromarray(np.clip(a / top, 0.0, 1.0), mode="F")
    return Image.fromarray(np.asarray(im.convert("L"), dtype=np.float32) / 255.0, mode="F")


def _square_box(im: Image.Image) -> tuple[float, float, float, float]:
    """The centred square of the image's shorter side: crop, never stretch."""
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) / 2.0, (h - side) / 2.0
    return (left, top, left + side, top + side)


def _resize(im: Image.Image, size: int) -> Image.Image:
    box = _square_box(im)
    shrinking = box[2] - box[0] >= size
    # BOX (area average) when shrinking, like ffmpeg's area scaler; bilinear when enlarging,
    # which does not ring. Pillow premultiplies RGBA around the resize.
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return im.resize((size, size), method, box=box)


def _to_array(im: Image.Image) -> np.ndarray:
    a = np.asarray(im, dtype=np.float32)
    if im.mode != "F":
        a = a / 255.0
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (C, S, S)


def _alpha_sdf(im: Image.Image, size: int, spread_px: float) -> np.ndarray:
    """The field of an image's alpha mask (alpha >= 0.5 is inside), from the alpha resized
    to the supersampled grid rather than to ``size``, so the edge keeps sub-pixel detail."""
    k = supersample_factor(size)
    alpha = im.convert("RGBA").getchannel("A")
    hr = alpha.resize((k * size, k * size), Image.Resampling.BILINEAR, box=_square_box(im))
    return sdf_from_mask(np.asarray(hr) >= 128, size, spread_px)


def decode_folder(
    folder: str | Path,
    size: int,
    *,
    roots: Sequence[Path] | None = None,
    channels: int | None = None,
    sdf_spread_px: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images ``(N, C, size, size)`` and, with ``sdf_spread_px``, the fields of their alpha
    ``(N, 1, size, size)`` (a DatasetError if no file has alpha). See :func:`load_image_folder`.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    files = folder_files(folder, IMAGE_SUFFIXES, "image")
    confine_files(files, roots)
    have = {_peek(p) for p in files}
    native = 4 if 4 in have else 1 if have == {1} else 3
    if sdf_spread_px is not None and native != 4:
        raise DatasetError(f"no image in {folder} has alpha, so there is no shape for an sdf")
    arrays, fields = [], []
    for p in files:  # one full-size image in memory at a time
        im = _open(p)
        arrays.append(_to_array(_resize(_as_mode(im, native), size)))
        if sdf_spread_px is not None:
            fields.append(_alpha_sdf(im, size, sdf_spread_px))
    x = torch.from_numpy(np.stack(arrays)).clamp_(0.0, 1.0)  # (N, C, S, S)
    sdf = torch.from_numpy(np.stack(fields)).unsqueeze(1) if fields else None  # (N, 1, S, S)
    if channels is not None:
        x = convert_channels(x, channels).contiguous()
    return x, sdf


def load_image_folder(
    folder: str | Path,
    size: int,
    *,
    roots: Sequence[Path] | None = None,
    channels: int | None = None,
) -> torch.Tensor:
    """Load every image in ``folder`` (not recursive) as ``(N, C, size, size)`` float32 in
    [0, 1], sorted by file name.

    C is the folder's own: 1 when every file is grey, 4 (straight RGBA) when any file has
    transparency, else 3; ``channels`` converts (:func:`.base.convert_channels`). Each image
    has its shorter side scaled to ``size`` and is centre-cropped. Files whose suffix is not
    an image format are ignored; an image that fails to decode fails the whole load, since
    training on a silently thinned data set is worse than not training. With ``roots``
    (:func:`farm.inputs.input_roots`), an image that links outside them fails it too.
    """
    return decode_folder(folder, size, roots=roots, channels=channels)[0]


def load(req: Request) -> Dataset:
    """``target="sdf"`` adds the fields of the images' alpha (sprites with transparency)."""
    req.check_options(("channels", "target", "sdf_spread_px"))
    spread = req.number("sdf_spread_px", DEFAULT_SPREAD_PX, 0.5, 64.0)
    want_sdf = req.choice("target", ("pixels", "sdf"), "pixels") == "sdf"
    x, sdf = decode_folder(
        req.path(),
        req.size,
        roots=req.roots,
        channels=req.channels(),
        sdf_spread_px=spread if want_sdf else None,
    )
    return Dataset(req.name, x, sdf=sdf, sdf_spread_px=spread)
