"""An eased slerp through keyframe latents over the whole range (VAE or GAN).

Keyframes: a class int (VAE: that class's mean latent; conditional models also show that
class; GAN: noise from ``seed + index``), ``"seed:N"`` (noise from seed N) or an explicit
``{"latent": [...]}``. A conditional model's class morphs with the latent; a seed or latent
keyframe keeps the class of the int keyframe before it (class 0 at the start).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from workers.context import PermanentError
from workers.modes.base import RenderJob
from workers.render import class_walk, seed_keys, walk_latents


def keys_and_classes(job: RenderJob) -> tuple[torch.Tensor, list[int]]:
    d, seed = job.latent_dim, int(job.spec.get("seed", 0))
    means = job.meta.get("class_means")
    rows, classes, current = [], [], 0
    for i, key in enumerate(job.spec["keyframes"]):
        if isinstance(key, dict):
            z = torch.tensor(key["latent"], dtype=torch.float32)
            if z.shape != (d,):
                raise PermanentError(f"keyframe {i}: latent of {z.shape[0]} values, model has {d}")
        elif isinstance(key, str):
            z = seed_keys([int(key.partition(":")[2])], d)[0]
        else:
            current = int(key)
            if job.family == "vae" and job.num_classes == 0:
                if not means or current >= len(means):
                    raise PermanentError(f"keyframe {i}: the checkpoint has no class {current}")
                z = torch.tensor(means[current], dtype=torch.float32)
            elif job.family == "vae" and means and current < len(means):
                z = torch.tensor(means[current], dtype=torch.float32)
            else:
                z = seed_keys([seed + i], d)[0]
        rows.append(z)
        classes.append(current)
    return torch.stack(rows), classes


def render(job: RenderJob, positions: Sequence[int]) -> Iterator[np.ndarray]:
    job.require("vae", "gan")
    keys, classes = keys_and_classes(job)
    z = walk_latents(keys, list(positions), job.total)
    weights: Any = None
    if job.num_classes:
        if max(classes) >= job.num_classes:
            raise PermanentError(f"keyframe class {max(classes)} >= {job.num_classes}")
        weights = class_walk(classes, positions, job.total, job.num_classes)
    return job.decode(z, weights)
