"""Latent walks and frame decoding for animation renders.

Render jobs are split into chunks that may run on different workers, so every function that
maps a frame position to a latent is a pure function of ``(keys, position, total)``: the same
frame rendered in any chunk must be bit-identical, or the stitched video would flicker at
chunk boundaries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.models.vae import ConvVAE
from workers.shading import Look, Palette, over_background, shade_sdf, smooth_field, tint_grey

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


@contextlib.contextmanager
def fast_inference(
    model: nn.Module, device: torch.device | str, *, force: bool = False, plain: bool = False
) -> Iterator[nn.Module]:
    """Run ``model`` for inference on ``device`` by the fastest safe path; yields the model.

    On CUDA (or anywhere with ``force=True``): bf16 autocast and channels_last weights, which
    put the convolutions on tensor cores and roughly halve memory traffic. On CPU the plain
    float32 path, since CPU bf16 is slower than float32 on most hosts and changes pixels.
    Callers must ``.float()`` the outputs, which may be bf16 on the fast path. ``plain``
    forces the float32 path everywhere.
    """
    dev = torch.device(device)
    model = model.to(dev).eval()
    if plain or (dev.type != "cuda" and not force):
        with torch.inference_mode():
            yield model
        return
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
        yield model


@dataclass(frozen=True)
class FrameStyle:
    """How decoded images become frames: what the decoder outputs (``target`` pixels or
    sdf, ``channels``), how many channels the frames have (1 grey, 3 RGB, 4 RGBA) and each
    frame's :class:`~workers.shading.Look`, in the order of the latents (one look for all
    frames when there is one). The default is today's grey path."""

    target: str = "pixels"
    channels: int = 1
    out_channels: int = 1
    spread_px: float = 4.0
    looks: Sequence[Look] = (Look(),)
    smooth_px: float = 0.0  # blur of a decoded field, model pixels (shading.smooth_field)

    def palette(self, start: int, count: int, device: torch.device) -> Palette:
        if len(self.looks) == 1:
            return Palette.of([self.looks[0]] * count, device)
        return Palette.of(self.looks[start : start + count], device)


GREY = FrameStyle()


def finish_frames(
    img: torch.Tensor, width: int, height: int, style: FrameStyle, start: int = 0
) -> torch.Tensor:
    """Decoded images ``(B, C, S, S)`` (frames ``start..start+B`` of the render) as uint8
    frames on their device: ``(B, H, W)`` grey or ``(B, H, W, 3 | 4)``.

    Pixels are upsampled bicubically (which overshoots, hence the clamps); an RGBA model's
    colour is premultiplied first, so its transparent pixels' colour cannot bleed into the
    edges. An SDF is shaded (:func:`workers.shading.shade_sdf`).
    """
    size = (height, width)
    if style.target == "sdf":
        pal = style.palette(start, img.shape[0], img.device)
        img = smooth_field(img, style.smooth_px)
        return shade_sdf(img, height, width, pal, spread_px=style.spread_px,
                         channels=style.out_channels)  # fmt: skip
    if img.shape[1] == 4:
        premult = torch.cat([img[:, :3] * img[:, 3:4], img[:, 3:4]], dim=1)  # (B, 4, S, S)
        up = F.interpolate(premult, size=size, mode="bicubic", align_corners=False)
        alpha = up[:, 3:4].clamp_(0.0, 1.0)
        rgb = torch.minimum(up[:, :3].clamp_(min=0.0), alpha)  # (B, 3, H, W)
        pal = style.palette(start, img.shape[0], img.device)
        return over_background(torch.cat([rgb, alpha], dim=1), pal, style.out_channels)
    up = F.interpolate(img, size=size, mode="bicubic", align_corners=False).clamp_(0.0, 1.0)
    if img.shape[1] == 1 and style.out_channels > 1:
        pal = style.palette(start, img.shape[0], img.device)
        return tint_grey(up, pal, style.out_channels)
    frames = up.mul_(255.0).round_().to(torch.uint8)  # (B, C, H, W)
    if img.shape[1] == 1:
        return frames[:, 0]  # (B, H, W)
    return frames.permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)


def _render(
    decode: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    model: nn.Module,
    latents: torch.Tensor,
    conditions: torch.Tensor | None,
    width: int,
    height: int,
    batch_size: int,
    device: torch.device | str,
    fast: bool,
    style: FrameStyle,
) -> Iterator[np.ndarray]:
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be >= 1, got {width}x{height}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if conditions is not None and conditions.shape[0] != latents.shape[0]:
        raise ValueError(
            f"{latents.shape[0]} latents but {conditions.shape[0]} labels / class weights"
        )
    if len(style.looks) not in (1, latents.shape[0]):
        raise ValueError(f"{latents.shape[0]} latents but {len(style.looks)} looks")
    dev = torch.device(device)
    with fast_inference(model, dev, plain=not fast):
        for start in range(0, latents.shape[0], batch_size):
            z = latents[start : start + batch_size].to(dev, dtype=torch.float32)
            cond = None
            if conditions is not None:
                cond = conditions[start : start + batch_size].to(dev)
            img = decode(z, cond).float()  # (B, C, S, S)
            frames = finish_frames(img, width, height, style, start)
            yield np.ascontiguousarray(frames.cpu().numpy())  # (B, H, W) or (B, H, W, C)


def render_frames(
    model: ConvVAE,
    latents: torch.Tensor,
    width: int,
    height: int,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    labels: torch.Tensor | None = None,
    fast: bool = False,
    style: FrameStyle = GREY,
) -> Iterator[np.ndarray]:
    """Decode ``latents`` (N, D) and yield uint8 frames ``(B, height, width)`` (grey) or
    ``(B, height, width, 3 | 4)`` as ``style`` says (:func:`finish_frames`).

    Yielding batches lets the caller stream frames into an encoder without holding a whole
    high-resolution render in memory. Bicubic upsampling overshoots, hence the clamp.
    ``labels`` (N,) ints or class weights (N, C) are for a conditional VAE. ``fast`` uses
    :func:`fast_inference` on CUDA; it is off by default because bf16 changes pixels, and
    every chunk of a job must agree on it.
    """
    return _render(
        lambda z, c: model.decode(z, c),
        model,
        latents,
        labels,
        width,
        height,
        batch_size,
        device,
        fast,
        style,
    )


def render_gan_frames(
    generator: nn.Module,
    z: torch.Tensor,
    labels_or_class_weights: torch.Tensor | None,
    width: int,
    height: int,
    *,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    fast: bool = False,
    style: FrameStyle = GREY,
) -> Iterator[np.ndarray]:
    """Run a (conditional) generator on noise ``z`` (N, D) with labels (N,) or class weights
    (N, C) and yield uint8 frames, like :func:`render_frames`."""
    return _render(
        lambda zz, c: generator(zz, c),
        generator,
        z,
        labels_or_class_weights,
        width,
        height,
        batch_size,
        device,
        fast,
        style,
    )


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
            mu, _ = model.encode(x, y.to(device) if model.conditional else None)
            sums.index_add_(0, y, mu.cpu().to(torch.float64))
            counts.index_add_(0, y, torch.ones_like(y, dtype=torch.float64))
    model.train(was_training)
    return (sums / counts.clamp_min(1.0).unsqueeze(1)).to(torch.float32)


def seed_keys(seeds: Sequence[int], latent_dim: int) -> torch.Tensor:
    """Keyframe latents ``(K, D)`` from integer seeds, drawn exactly as ``"seed:N"`` keyframes
    are, so a GAN walk and a VAE walk over the same seeds start from the same noise."""
    if len(seeds) == 0:
        raise ValueError("at least one seed is required")
    rows = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"bad seed {s!r}: expected a non-negative integer")
        gen = torch.Generator().manual_seed(s)
        rows.append(torch.randn(latent_dim, generator=gen, dtype=torch.float32))
    return torch.stack(rows)  # (K, D)


def one_hot_weights(labels: Sequence[int] | torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class weights ``(N, C)`` float32 from int labels, for mixing with weighted rows."""
    y = torch.as_tensor(labels, dtype=torch.int64)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}")
    return F.one_hot(y, num_classes).to(torch.float32)


# -- GAN latent walks ----------------------------------------------------------------------


def gan_walk(
    seeds: Sequence[int],
    positions: Sequence[int],
    total: int,
    latent_dim: int,
    *,
    classes: Sequence[int] | None = None,
    num_classes: int = 10,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents ``(P, D)`` walking through the seed latents (eased slerp, as
    :func:`walk_latents`) and, when ``classes`` is given, class weights ``(P, C)``.

    One class keeps it fixed for the whole walk; one class per seed morphs the class along
    with the noise, interpolating the class embeddings with the same eased ``t``.
    """
    keys = seed_keys(seeds, latent_dim)
    z = walk_latents(keys, positions, total)
    if classes is None:
        return z, None
    if len(classes) == 1:
        return z, one_hot_weights([classes[0]] * len(positions), num_classes)
    if len(classes) != len(seeds):
        raise ValueError(f"give one class or one per seed ({len(seeds)}), got {len(classes)}")
    return z, class_walk(list(classes), positions, total, num_classes)


def class_walk(classes: list[int], positions: Sequence[int], total: int, n: int) -> torch.Tensor:
    """Class weights ``(P, n)`` eased between the keyframes' classes like the latents."""
    key_w = one_hot_weights(classes, n)  # (K, C)
    k = len(classes)
    rows = []
    for p in positions:
        if total == 1 or k == 1:
            rows.append(key_w[0])
            continue
        t = p * (k - 1) / (total - 1)
        seg = min(int(t), k - 2)
        w = float(ease(torch.tensor(t - seg, dtype=torch.float32)))
        rows.append((1.0 - w) * key_w[seg] + w * key_w[seg + 1])
    return torch.stack(rows) if rows else key_w.new_empty((0, n))


def sample_grid(images: np.ndarray, cols: int, *, pad: int = 1, fill: int = 0) -> np.ndarray:
    """Tile uint8 images ``(N, H, W)`` or ``(N, H, W, C)`` into a contact sheet ``(H', W')``
    (or ``(H', W', C)``) with ``cols`` columns and ``pad`` pixels of ``fill`` between tiles
    (and none around the edge); an alpha channel's padding is opaque.

    A short last row is padded with ``fill``, so the sheet is always a full rectangle.
    """
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (3, 4)):
        raise ValueError(f"images must be (N, H, W) or (N, H, W, 3 | 4), got {images.shape}")
    if cols < 1 or pad < 0:
        raise ValueError("cols must be >= 1 and pad >= 0")
    n, h, w = images.shape[:3]
    if n == 0:
        raise ValueError("no images to tile")
    cols = min(cols, n)
    rows = -(-n // cols)
    shape = (rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, *images.shape[3:])
    sheet = np.full(shape, fill, np.uint8)
    if images.ndim == 4 and images.shape[3] == 4:
        sheet[..., 3] = 255
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (h + pad), c * (w + pad)
        sheet[y : y + h, x : x + w] = images[i]
    return sheet
