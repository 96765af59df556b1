"""Judges for bench/model_quality.py that never saw the generative models' training data.

- :func:`train_reader`: a small CNN that reads glyphs, trained on *held-out fonts* only, with
  shifts, scales and stroke-weight jitter so it reads a character rather than a font. Its
  accuracy on the training fonts' real glyphs is the reference a model's renders sit beside.
- :func:`edge_width`: the issue's sharpness measure: pixels whose value lies strictly between
  10% and 90% of the way from background to fill, divided by the edge's length (the
  perimeter of the 50% mask), in output pixels. A one-pixel anti-aliased edge scores about 1.

Torch and scipy only; nothing here imports the farm.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

READ_SIZE = 32  # the reader's input: coverage images of READ_SIZE x READ_SIZE


class Reader(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 16, 16)
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 64, 8, 8)
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),  # (B, 128, 2, 2)
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random affine (scale 0.8-1.15, rotation ±8°, shift ±10%) and stroke-weight jitter
    (a 3x3 max or min filter) of coverage images ``(B, 1, S, S)``."""
    b = x.shape[0]
    scale = 0.8 + 0.35 * torch.rand(b, generator=gen)
    angle = (torch.rand(b, generator=gen) - 0.5) * (16 * np.pi / 180)
    shift = (torch.rand(b, 2, generator=gen) - 0.5) * 0.2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    weight = torch.randint(0, 3, (b,), generator=gen)
    bold = F.max_pool2d(out, 3, 1, 1)
    thin = -F.max_pool2d(-out, 3, 1, 1)
    out = torch.where((weight == 1)[:, None, None, None], bold, out)
    return torch.where((weight == 2)[:, None, None, None], thin, out)


def train_reader(
    images: torch.Tensor, labels: torch.Tensor, num_classes: int, *, steps: int = 1500,
    seed: int = 0,
) -> Reader:  # fmt: skip
    """A reader of ``images`` ``(N, 1, READ_SIZE, READ_SIZE)`` coverage in [0, 1]."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Reader(num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, images.shape[0], (64,), generator=gen)
        x = _augment(images[idx], gen)
        loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def to_reader_input(frames: np.ndarray, fill: np.ndarray, background: np.ndarray) -> torch.Tensor:
    """uint8 frames ``(B, H, W, 3)`` (or grey ``(B, H, W)``) as coverage images for the reader:
    each pixel's position between ``background`` and ``fill``, area-resized to READ_SIZE."""
    cov = coverage(frames, fill, background)  # (B, H, W)
    t = torch.from_numpy(cov).float()[:, None]  # (B, 1, H, W)
    return F.interpolate(t, size=(READ_SIZE, READ_SIZE), mode="area")


def coverage(frames: np.ndarray, fill: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Where each pixel lies from ``background`` (0) to ``fill`` (1), projected on the line
    between the two colours: ``(B, H, W)`` float in [0, 1]."""
    f = frames.astype(np.float64)
    if f.ndim == 3:
        f = f[..., None]
    fill = np.asarray(fill, dtype=np.float64).reshape(-1)
    bg = np.asarray(background, dtype=np.float64).reshape(-1)
    d = fill - bg
    t = ((f - bg) * d).sum(-1) / max(float((d * d).sum()), 1e-9)
    return np.clip(t, 0.0, 1.0)


def read(reader: Reader, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return reader(x).argmax(1).numpy()


def edge_width(cov: np.ndarray) -> float:
    """Mean edge width in pixels of coverage images ``(B, H, W)`` in [0, 1]: the pixels
    strictly between 0.1 and 0.9, over the edge's length.

    The length is the sum of the coverage's gradient magnitude (the coarea formula: the
    integral of |grad u| is the mean length of u's level sets over [0, 1]), which measures
    curved and diagonal edges as well as straight ones, unlike counting boundary pixels.
    A linear ramp w pixels wide scores 0.8 w.
    """
    mid = float(((cov > 0.1) & (cov < 0.9)).sum())
    gy, gx = np.gradient(cov.astype(np.float64), axis=(1, 2))
    length = float(np.hypot(gx, gy).sum())
    return mid / max(length, 1e-9)


def features(reader: Reader, x: torch.Tensor) -> np.ndarray:
    """The reader's penultimate features ``(N, 512)``: the space the Fréchet distance and
    precision/recall are measured in (in-domain, as no ImageNet network is offline)."""
    body = reader.net[:-1]
    with torch.inference_mode():
        return body(x).numpy().astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``(N, D)`` and ``(M, D)``
    (Heusel et al. 2017), with scipy's matrix square root."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    root = np.real(root)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the share of fake samples
    inside the real set's k-NN balls, and of real samples inside the fake set's."""
    from scipy.spatial import cKDTree

    def radii(x: np.ndarray) -> np.ndarray:
        d, _ = cKDTree(x).query(x, k=k + 1)
        return d[:, -1]

    def inside(ref: np.ndarray, r: np.ndarray, q: np.ndarray) -> float:
        d = np.sqrt(((q[:, None, :] - ref[None, :, :]) ** 2).sum(-1))  # (Q, R)
        return float((d <= r[None, :]).any(1).mean())

    return inside(real, radii(real), fake), inside(fake, radii(fake), real)
