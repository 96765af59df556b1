"""An eased slerp through keyframe latents over the whole range (VAE or GAN).

Keyframes: a class int or ``{"class": "A"}`` (VAE: that class's mean latent; conditional
models also show that class; GAN: noise from ``seed + index``), ``"seed:N"`` (noise from seed
N), an explicit ``{"latent": [...]}``, or ``{"class": "A", "style": "cmr10"}``: that
character in that font, from a VAE's ``style_means``. A conditional model's class morphs with
the latent; a seed or latent keyframe keeps the class of the class keyframe before it (class
0 at the start). So ``[{class: A, style: DejaVuSans}, {class: A, style: cmr10}]`` morphs one
letter from one font to the other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from workers.context import PermanentError
from workers.modes.base import RenderJob
from workers.render import class_walk, seed_keys, walk_latents


def style_latent(job: RenderJob, cls: int, style: str, where: str) -> torch.Tensor:
    """The latent of class ``cls`` in ``style``: the style's mean latent (a cVAE takes the
    class from its label), or for an unconditional VAE the class mean moved by the style's
    offset from the mean of all styles (latent arithmetic: the class means and style means
    are averages over the same training set)."""
    if job.family != "vae":
        raise PermanentError(f"{where}: styles need a VAE with style_means, not a {job.family}")
    names = [str(s) for s in job.meta.get("style_names") or []]
    means = job.meta.get("style_means") or []
    if style not in names or len(means) != len(names):
        known = ", ".join(names) or "none"
        raise PermanentError(f"{where}: {style!r} is not one of the model's styles ({known})")
    table = torch.tensor(means, dtype=torch.float32)  # (n_styles, D)
    z = table[names.index(style)]
    class_means = job.meta.get("class_means")
    if job.num_classes == 0 and class_means and cls < len(class_means):
        z = torch.tensor(class_means[cls], dtype=torch.float32) + (z - table.mean(dim=0))
    return z


def _class_latent(job: RenderJob, cls: int, i: int, seed: int) -> torch.Tensor:
    means = job.meta.get("class_means")
    if job.family == "vae" and job.num_classes == 0:
        if not means or cls >= len(means):
            raise PermanentError(f"keyframe {i}: the checkpoint has no class {cls}")
        return torch.tensor(means[cls], dtype=torch.float32)
    if job.family == "vae" and means and cls < len(means):
        return torch.tensor(means[cls], dtype=torch.float32)
    return seed_keys([seed + i], job.latent_dim)[0]


def keys_and_classes(job: RenderJob) -> tuple[torch.Tensor, list[int]]:
    d, seed = job.latent_dim, int(job.spec.get("seed", 0))
    rows, classes, current = [], [], 0
    for i, key in enumerate(job.spec["keyframes"]):
        if isinstance(key, dict) and "latent" in key:
            z = torch.tensor(key["latent"], dtype=torch.float32)
            if z.shape != (d,):
                raise PermanentError(f"keyframe {i}: latent of {z.shape[0]} values, model has {d}")
        elif isinstance(key, dict):
            current = job.class_index(key.get("class"), f"keyframes.{i}.class")
            style = key.get("style")
            if style is not None:
                z = style_latent(job, current, str(style), f"keyframes.{i}.style")
            else:
                z = _class_latent(job, current, i, seed)
        elif isinstance(key, str):
            z = seed_keys([int(key.partition(":")[2])], d)[0]
        else:
            current = int(key)
            z = _class_latent(job, current, i, seed)
        rows.append(z)
        classes.append(current)
    return torch.stack(rows), classes  # (K, D)


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
