"""``digits``: the 1,797 8x8 handwritten digits that ship inside scikit-learn, so a worker
never needs network access to train."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from workers.datasets.base import Dataset, Request, convert_channels

CLASSES = [str(d) for d in range(10)]


def load_digits_images(size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the 1,797 sklearn 8x8 digits as ``(N, 1, size, size)`` float32 in [0, 1] and
    labels ``(N,)`` int64.

    Bilinear upsampling (rather than nearest) gives the VAE smooth strokes to learn, which
    makes decoded frames look like handwriting instead of blocky pixels. Ink stays bright on a
    dark background, as in the source data.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32) / 16.0
    x = x.unsqueeze(1)  # (N, 1, 8, 8)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.clamp_(0.0, 1.0).contiguous()
    y = torch.as_tensor(digits.target, dtype=torch.int64)
    return x, y


def load(req: Request) -> Dataset:
    """Grey by default; ``channels`` 3 or 4 repeat the grey (opaque). No shapes: the source
    is an 8x8 raster, so there is no edge to measure a distance to."""
    req.check_options(("channels", "target"))
    req.choice("target", ("pixels",), "pixels")
    x, y = load_digits_images(req.size)
    channels = req.channels()
    if channels is not None:
        x = convert_channels(x, channels)
    return Dataset(req.name, x, y, classes=list(CLASSES))
