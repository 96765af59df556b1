"""Shots of held classes with morphs between them, through a conditional model (cVAE, cGAN).

The range's frame ``p`` (0-based) is storyboard frame ``p``: submission checks that the range
is exactly as long as the storyboard. A shot names its class by label index or by name
(``{class: "A"}``); a shot's own ``colors`` (over the spec's) morph into the next shot's
over the transition, with the same eased ``t`` as the class.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from workers.context import PermanentError
from workers.modes.base import RenderJob
from workers.shading import Look
from workers.shots import storyboard_class_weights, storyboard_latents, storyboard_place


def frame_looks(
    shots: Sequence[Mapping[str, Any]], looks: Sequence[Look], positions: Sequence[int]
) -> list[Look]:
    """Each frame's look: its shot's while holding, mixed towards the next shot's while
    morphing; a pure function of the position."""
    out = []
    for p in positions:
        i, t = storyboard_place(shots, p)
        out.append(looks[i] if t == 0.0 else looks[i].mix(looks[i + 1], t))
    return out


def render_shots(
    job: RenderJob,
    shots: Sequence[Mapping[str, Any]],
    positions: Sequence[int],
    looks: Sequence[Look] | None,
    keys: torch.Tensor | None = None,
) -> Iterator[np.ndarray]:
    """Frames at ``positions`` of the storyboard ``shots`` (classes as label indices);
    ``looks`` is one look per shot, or None for the spec's colours throughout. ``keys``
    ``(K, D)`` are the shots' latents (a title's letters in one font); without them each
    shot has its own noise, so the style morphs with the class."""
    try:
        z = storyboard_latents(
            shots, positions, job.latent_dim, seed=int(job.spec.get("seed", 0)),
            num_classes=job.num_classes, keys=keys,
        )  # fmt: skip
        w = storyboard_class_weights(shots, positions, job.num_classes)
        per_frame = frame_looks(shots, looks, positions) if looks is not None else None
    except ValueError as e:
        raise PermanentError(f"storyboard: {e}") from e
    return job.decode(z, w, per_frame)


def render(job: RenderJob, positions: Sequence[int]) -> Iterator[np.ndarray]:
    job.require("vae", "gan")
    if job.num_classes == 0:
        raise PermanentError("a storyboard needs a conditional model (cVAE or cGAN)")
    spec_shots = job.spec["storyboard"]
    shots = [
        {
            "class": job.class_index(s.get("class"), f"storyboard.{i}.class"),
            "hold": s.get("hold"),
            "transition": s.get("transition", 0),
        }
        for i, s in enumerate(spec_shots)
    ]
    own = any(s.get("colors") for s in spec_shots)
    return render_shots(job, shots, positions, job.shot_looks() if own else None)
