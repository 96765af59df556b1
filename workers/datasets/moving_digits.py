"""``moving-digits``: Moving-MNIST-style clips of the sklearn digits bouncing on a dark
canvas, for the sequence models."""

from __future__ import annotations

import math

import numpy as np
import torch

from workers.datasets.base import Dataset, DatasetError, Request, convert_channels
from workers.datasets.digits import load_digits_images

CLIPS, FRAMES = 256, 16


def moving_digits(
    n_sequences: int,
    seq_len: int,
    *,
    canvas: int = 32,
    digits_per_seq: int = 1,
    digit_size: int = 16,
    speed: tuple[float, float] = (1.5, 3.0),
    seed: int = 0,
) -> torch.Tensor:
    """Moving-MNIST-style clips of sklearn digits bouncing on a dark canvas:
    ``(N, T, 1, canvas, canvas)`` float32 in [0, 1].

    Each digit starts at a uniform position with a uniform direction and a speed drawn from
    ``speed`` (pixels per frame), and reflects off the walls, so it always stays entirely on
    the canvas. Overlapping digits combine by maximum, keeping the ink in [0, 1]. Everything is
    drawn from one NumPy generator seeded with ``seed``: a different seed gives held-out clips.
    """
    if n_sequences < 1 or seq_len < 1 or digits_per_seq < 1:
        raise ValueError("n_sequences, seq_len and digits_per_seq must be >= 1")
    if not 1 <= digit_size <= canvas:
        raise ValueError(f"digit_size must be in 1..canvas ({canvas}), got {digit_size}")
    if not 0 <= speed[0] <= speed[1]:
        raise ValueError(f"speed must be (low, high) with 0 <= low <= high, got {speed}")
    sprites = load_digits_images(digit_size)[0][:, 0].numpy()  # (M, s, s)
    rng = np.random.default_rng(seed)
    lim = float(canvas - digit_size)
    out = np.zeros((n_sequences, seq_len, canvas, canvas), dtype=np.float32)
    for i in range(n_sequences):
        for _ in range(digits_per_seq):
            sprite = sprites[rng.integers(sprites.shape[0])]
            pos = rng.uniform(0.0, lim, size=2)
            angle = rng.uniform(0.0, 2.0 * math.pi)
            vel = rng.uniform(speed[0], speed[1]) * np.array([math.sin(angle), math.cos(angle)])
            for t in range(seq_len):
                r, c = (round(float(v)) for v in pos)
                region = out[i, t, r : r + digit_size, c : c + digit_size]
                np.maximum(region, sprite, out=region)
                pos += vel
                for axis in range(2):
                    if pos[axis] < 0.0:
                        pos[axis], vel[axis] = -pos[axis], -vel[axis]
                    elif pos[axis] > lim:
                        pos[axis], vel[axis] = 2.0 * lim - pos[axis], -vel[axis]
                np.clip(pos, 0.0, lim, out=pos)  # a speed above lim could still overshoot
    return torch.from_numpy(out).unsqueeze(2)  # (N, T, 1, canvas, canvas)


def load(req: Request) -> Dataset:
    """256 clips of 16 frames on a ``size`` canvas, digits at half the canvas; ``seed`` picks
    the clips (another seed: held-out clips)."""
    req.check_options(("channels", "target"))
    req.choice("target", ("pixels",), "pixels")
    if req.size < 2:
        raise DatasetError(f"moving-digits needs size >= 2, got {req.size}")
    clips = moving_digits(CLIPS, FRAMES, canvas=req.size, digit_size=req.size // 2, seed=req.seed)
    channels = req.channels()
    if channels is not None:
        clips = convert_channels(clips, channels)  # (N, T, C, S, S)
    return Dataset(req.name, clips)
