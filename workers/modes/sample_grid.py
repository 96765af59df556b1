"""A contact sheet of samples: one row per class for a conditional model, else ten rows of
seeded noise, in the spec's colours. Yields the whole sheet as a single frame, grey
``(1, H, W)`` or colour ``(1, H, W, 3 | 4)`` as the tiles are."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from workers.modes.base import RenderJob
from workers.render import sample_grid

PAD, FILL, ROWS = 2, 96, 10


def render(job: RenderJob, positions: Sequence[int]) -> Iterator[np.ndarray]:
    job.require("vae", "gan")
    cols = int(job.spec.get("columns", 10))
    rows = job.num_classes or ROWS
    gen = torch.Generator().manual_seed(int(job.spec.get("seed", 0)))
    z = torch.randn(rows * cols, job.latent_dim, generator=gen)
    labels = torch.arange(rows).repeat_interleave(cols) if job.num_classes else None
    weights = torch.nn.functional.one_hot(labels, rows).float() if labels is not None else None
    tiles = np.concatenate(list(job.decode(z, weights)))
    yield sample_grid(tiles, cols, pad=PAD, fill=FILL)[None]
