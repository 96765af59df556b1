"""LSTM rollouts: ``seed_frames`` true moving-digits frames (clip ``seed``), encoded by the
frame VAE, then the LSTM's own predictions for the rest of the range, decoded by that VAE.

The rollout follows the predicted means, so it is deterministic, and a rollout of n steps is
a prefix of one of m > n steps: each chunk recomputes it up to its last frame and slices.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from farm.inputs import OutsideInputRoots, confine_input
from workers.context import PermanentError
from workers.datasets import moving_digits
from workers.datasets.base import convert_channels
from workers.models.lstm import LatentLSTM, rollout
from workers.models.vae import ConvVAE
from workers.modes.base import RenderJob
from workers.render import render_frames


def frame_vae(job: RenderJob) -> ConvVAE:
    from workers.device import load_model

    ref = job.meta.get("frame_vae") or {}
    try:  # the path comes from the checkpoint's metadata: confine it like a spec's
        path = confine_input(job.roots or (job.root,), str(ref.get("path", "")))
    except OutsideInputRoots as e:
        raise PermanentError(f"the LSTM's frame VAE: {e}") from None
    if not path.is_file():
        raise PermanentError(f"the LSTM's frame VAE is missing: {path}")
    model, _, sha = load_model(path)
    if sha != ref.get("sha256"):
        raise PermanentError(f"the frame VAE at {path} changed since training (sha256 {sha})")
    assert isinstance(model, ConvVAE)
    return model


def render(job: RenderJob, positions: Sequence[int]) -> Iterator[np.ndarray]:
    job.require("lstm")
    assert isinstance(job.model, LatentLSTM)
    vae = frame_vae(job)
    size = vae.cfg.image_size
    seeds = int(job.spec.get("seed_frames", 4))
    clip = moving_digits(1, seeds, canvas=size, digit_size=size // 2, seed=int(job.spec["seed"]))
    # In the frame VAE's own channels, as its training clips were (workers.trainers.lstm).
    clip = convert_channels(clip, vae.cfg.image_channels)  # (1, T0, C, S, S)
    with torch.inference_mode():
        mu, _ = vae.encode(clip[0].to(job.device))
    seed_lat = mu.cpu()  # (T0, D)
    last = max(positions) + 1 if positions else 0
    rolled = rollout(job.model, seed_lat, max(0, last - seeds))
    latents = torch.cat([seed_lat, rolled])[list(positions)]
    w, h, b = job.spec["width"], job.spec["height"], job.spec["batch_size"]
    return render_frames(vae, latents, w, h, batch_size=b, device=job.device)
