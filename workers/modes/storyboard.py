"""Shots of held classes with morphs between them, through a conditional model (cVAE, cGAN).

The range's frame ``p`` (0-based) is storyboard frame ``p``: submission checks that the range
is exactly as long as the storyboard.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from workers.context import PermanentError
from workers.modes.base import RenderJob
from workers.render import storyboard_class_weights, storyboard_latents


def render(job: RenderJob, positions: Sequence[int]) -> Iterator[np.ndarray]:
    job.require("vae", "gan")
    if job.num_classes == 0:
        raise PermanentError("a storyboard needs a conditional model (cVAE or cGAN)")
    shots = job.spec["storyboard"]
    try:
        z = storyboard_latents(
            shots, positions, job.latent_dim, seed=int(job.spec.get("seed", 0)),
            num_classes=job.num_classes,
        )  # fmt: skip
        w = storyboard_class_weights(shots, positions, job.num_classes)
    except ValueError as e:
        raise PermanentError(f"storyboard: {e}") from e
    return job.decode(z, w)
