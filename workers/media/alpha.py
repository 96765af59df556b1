"""Straight alpha flattened over a background colour, for formats that cannot store alpha.

Done in numpy on the frames before they enter ffmpeg's pipe, not in a filter graph: the rule
is one line of arithmetic that a unit test can pin down exactly, the encoder then sees plain
RGB (so its arguments are those of an RGB render), and GIF's lossless intermediates already
hold the flattened picture. ``out = (c * a + bg * (max - a)) / max``, rounded to nearest, in
integers wide enough that no product overflows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BLACK", "flatten"]

BLACK = (0, 0, 0)


def flatten(frames: np.ndarray, background: Sequence[int] = BLACK) -> np.ndarray:
    """Composite straight-alpha RGBA ``(..., 4)`` frames over an opaque ``background``
    (8-bit r, g, b; widened to 16 bits for uint16 frames) and return ``(..., 3)`` RGB of the
    same dtype. Opaque pixels come back unchanged, transparent ones as the background."""
    if frames.dtype not in (np.uint8, np.uint16) or frames.ndim < 1 or frames.shape[-1] != 4:
        raise ValueError(f"expected uint8 or uint16 RGBA frames (..., 4), got {frames.dtype} "
                         f"{frames.shape}")  # fmt: skip
    if len(background) != 3 or not all(0 <= int(c) <= 255 for c in background):
        raise ValueError(f"background must be three 0..255 values, got {background!r}")
    wide = np.dtype(np.uint16 if frames.dtype == np.uint8 else np.uint32)  # 255², 65535² fit
    top = int(np.iinfo(frames.dtype).max)
    bg = np.asarray(background, dtype=wide) * (top // 255)  # 255 -> 65535 exactly
    rgb = frames[..., :3].astype(wide)
    alpha = frames[..., 3:].astype(wide)  # (..., 1): broadcasts over the three channels
    out = rgb * alpha + bg * (np.asarray(top, dtype=wide) - alpha) + (top // 2)
    return (out // top).astype(frames.dtype)
