"""Latent walks and frame decoding for animation renders.

Render jobs are split into chunks that may run on different workers, so every function that
maps a frame position to a latent is a pure function of ``(keys, position, total)``: the same
frame rendered in any chunk must be bit-identical, or the stitched video would flicker at
chunk boundaries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from workers.models.vae import ConvVAE

_SEED_PREFIX = "seed:"


def ease(u: torch.Tensor) -> torch.Tensor:
    """Smoothstep ``3u^2 - 2u^3``: zero velocity at keyframes so the walk lingers on them
    instead of bouncing off."""
    return u * u * (3.0 - 2.0 * u)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherically interpolate between latents ``a`` and ``b`` (..., D) at ``t`` in [0, 1].

    Under a Gaussian prior, straight lines between two typical latents pass through the
    low-norm region the decoder rarely saw; slerp keeps intermediate norms typical. Nearly
    parallel vectors fall back to lerp, where slerp's ``sin(omega)`` denominator is unstable.
    ``t`` broadcasts against the leading dimensions of ``a`` and ``b``.
    """
    t_t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t_t.ndim > 0 and t_t.ndim == a.ndim - 1:
        t_t = t_t.unsqueeze(-1)  # (..., 1)
    a_n = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b_n = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    dot = (a_n * b_n).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(dot)
    sin_omega = torch.sin(omega)
    near_parallel = sin_omega.abs() < 1e-4
    safe_sin = torch.where(near_parallel, torch.ones_like(sin_omega), sin_omega)
    s_a = torch.sin((1.0 - t_t) * omega) / safe_sin
    s_b = torch.sin(t_t * omega) / safe_sin
    spherical = s_a * a + s_b * b
    linear = (1.0 - t_t) * a + t_t * b
    return torch.where(near_parallel, linear, spherical)


def walk_latents(keys: torch.Tensor, positions: Sequence[int], total: int) -> torch.Tensor:
    """Latents ``(len(positions), D)`` for frames at ``positions`` in a ``total``-frame walk
    through the keyframe latents ``keys`` (K, D).

    Frame ``p`` sits at ``t = p / (total - 1) * (K - 1)`` along the keys; inside each segment
    the local parameter is eased then slerped. Each row is computed independently of the other
    requested positions, so chunked and whole renders agree exactly.
    """
    if keys.ndim != 2 or keys.shape[0] < 1:
        raise ValueError(f"keys must be (K, D) with K >= 1, got {tuple(keys.shape)}")
    if total < 1:
        raise ValueError(f"total must be >= 1, got {total}")
    k = keys.shape[0]
    for p in positions:
        if not 0 <= p < total:
            raise ValueError(f"position {p} is outside a walk of {total} frames")
    if len(positions) == 0:
        return keys.new_empty((0, keys.shape[1]))
    if total == 1 or k == 1:
        return keys[:1].expand(len(positions), -1).clone()

    rows = []
    for p in positions:
        # Exact rational arithmetic in Python floats so t never depends on batch composition.
        t = p * (k - 1) / (total - 1)
        seg = min(int(t), k - 2)
        local = torch.tensor(t - seg, dtype=keys.dtype)
        rows.append(slerp(keys[seg], keys[seg + 1], ease(local)))
    return torch.stack(rows)  # (P, D)


def keyframe_latents(
    class_means: torch.Tensor,
    keyframes: Sequence[int | str],
    latent_dim: int,
) -> torch.Tensor:
    """Resolve user keyframes to latents ``(K, latent_dim)``.

    An int picks a class-mean latent (a "typical 3"); ``"seed:N"`` draws a standard normal
    latent from its own generator so the same seed gives the same keyframe on any worker.
    """
    if class_means.ndim != 2 or class_means.shape[1] != latent_dim:
        raise ValueError(f"class_means must be (C, {latent_dim}), got {tuple(class_means.shape)}")
    if len(keyframes) == 0:
        raise ValueError("at least one keyframe is required")
    num_classes = class_means.shape[0]
    out = []
    for kf in keyframes:
        if isinstance(kf, bool):
            raise ValueError(f"bad keyframe {kf!r}: expected a class index or 'seed:N'")
        if isinstance(kf, int):
            if not 0 <= kf < num_classes:
                raise ValueError(
                    f"bad keyframe {kf!r}: class index must be in 0..{num_classes - 1}"
                )
            out.append(class_means[kf].detach().to(torch.float32).cpu())
        elif isinstance(kf, str) and kf.startswith(_SEED_PREFIX):
            digits = kf[len(_SEED_PREFIX) :]
            if not digits.isdigit():
                raise ValueError(f"bad keyframe {kf!r}: seed must be a non-negative integer")
            gen = torch.Generator().manual_seed(int(digits))
            out.append(torch.randn(latent_dim, generator=gen, dtype=torch.float32))
        else:
            raise ValueError(f"bad keyframe {kf!r}: expected a class index or 'seed:N'")
    return torch.stack(out)  # (K, D)


def render_frames(
    model: ConvVAE,
    latents: torch.Tensor,
    width: int,
    height: int,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> Iterator[np.ndarray]:
    """Decode ``latents`` (N, D) and yield uint8 grayscale frames ``(B, height, width)``.

    Yielding batches lets the caller stream frames into an encoder without holding a whole
    high-resolution render in memory. Bicubic upsampling overshoots, hence the clamp.
    """
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be >= 1, got {width}x{height}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = torch.device(device)
    model = model.to(dev).eval()
    with torch.inference_mode():
        for start in range(0, latents.shape[0], batch_size):
            z = latents[start : start + batch_size].to(dev, dtype=torch.float32)
            img = model.decode(z)  # (B, 1, S, S)
            img = F.interpolate(img, size=(height, width), mode="bicubic", align_corners=False)
            img = img.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
            yield np.ascontiguousarray(img[:, 0].cpu().numpy())  # (B, H, W)


def class_means(
    model: ConvVAE,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int = 10,
    *,
    batch_size: int = 512,
) -> torch.Tensor:
    """Mean encoder ``mu`` per class, ``(num_classes, D)``, on CPU.

    Stored in the checkpoint so render jobs can use digit keyframes without the dataset. A
    class with no examples gets the prior mean (zeros) rather than NaN.
    """
    device = next(model.parameters()).device
    d = model.cfg.latent_dim
    sums = torch.zeros(num_classes, d, dtype=torch.float64)
    counts = torch.zeros(num_classes, dtype=torch.float64)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device, dtype=torch.float32)
            y = labels[start : start + batch_size].to(torch.int64).cpu()
            mu, _ = model.encode(x)
            sums.index_add_(0, y, mu.cpu().to(torch.float64))
            counts.index_add_(0, y, torch.ones_like(y, dtype=torch.float64))
    model.train(was_training)
    return (sums / counts.clamp_min(1.0).unsqueeze(1)).to(torch.float32)
