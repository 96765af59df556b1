"""Single PNG images (contact sheets, posters) from frames in memory, written with Pillow.

One image needs no ffmpeg process; Pillow picks the PNG colour type from the array's shape,
so a grey, RGB or RGBA frame is stored as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["write_png"]

_CHANNELS = (0, 1, 3, 4)  # of a channel-last image; 0: an (H, W) array


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8 ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` (straight alpha) image
    atomically: under a temporary name, renamed into place when complete."""
    channels = image.shape[2] if image.ndim == 3 else 0
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or channels not in _CHANNELS:
        raise ValueError(
            f"expected a uint8 (H, W), (H, W, 3) or (H, W, 4) image, got {image.dtype} "
            f"{image.shape}"
        )
    pixels = image[..., 0] if channels == 1 else image  # (H, W, 1) -> (H, W)
    picture = Image.fromarray(np.ascontiguousarray(pixels))  # L, RGB or RGBA from the shape
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        picture.save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
