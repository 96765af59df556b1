"""A class-conditional DCGAN for grey, RGB or RGBA images or signed distance fields, at 8 to
256 px (:mod:`workers.models.arch`: one stage per doubling).

The recipe is the small-GAN one that trains without babysitting: a spectrally normalised
projection discriminator, the hinge loss, Adam with ``beta1 = 0`` and an exponential moving
average (EMA) of the generator's weights. The EMA generator is the one that is returned,
saved and rendered: its samples are visibly cleaner than the raw generator's, which
oscillates around the same solution. Like the VAE it has no dependency on ``farm``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from workers.models.arch import (
    IMAGE_CHANNELS,
    legacy_config,
    sn_discriminator,
    stage_count,
    stage_widths,
    upsample_generator,
)
from workers.models.targets import activate, check_target, to_unit_range
from workers.models.vae import (
    TrainingStopped,
    TrainState,
    check_images,
    check_resume,
    class_condition,
    load_module_tensors,
    load_optimizer_tensors,
    module_tensors,
    optimizer_tensors,
)

# Found with bench/model_quality.py (docs/models.md): about a minute on 2 CPU cores.
DEFAULTS: dict[str, Any] = {
    "steps": 1200,
    "batch_size": 64,
    "lr": 2e-4,
    "d_lr": 4e-4,
    "betas": (0.0, 0.9),
    "ema_decay": 0.999,
    "latent_dim": 32,
    "channels": 16,
}

# The tuned defaults per image size are the farm's (farm.families.GAN_SIZES): a model built
# alone takes its config's own values.


@dataclass
class GANConfig:
    """Generator architecture; stored in checkpoints so the EMA generator can be rebuilt."""

    # Side of the square output: base_size times a power of two (8, 16, 32, 64, 128, 256).
    image_size: int = 16
    # Noise dimensions; 32 gives enough style variety for digits without slowing training.
    latent_dim: int = 32
    # 0 = unconditional; digits have 10.
    num_classes: int = 10
    # Width of G's last block; each coarser block doubles it (up to max_channels).
    channels: int = 16
    # Width of D's first block (D is rebuilt only to resume training, never to render).
    d_channels: int = 16
    # Size of G's class embedding, concatenated to z.
    embed_dim: int = 16
    # Colour channels out (and into D): 1 grey, 3 RGB, 4 RGBA (straight alpha, last).
    image_channels: int = 1
    # "pixels" (sigmoid) or "sdf" (one channel, tanh): workers.models.targets.
    target: str = "pixels"
    # Side of G's first feature map; one upsampling block per doubling from it.
    base_size: int = 4
    # Cap on a block's width in G and D.
    max_channels: int = 256

    def __post_init__(self) -> None:
        stage_count(self.image_size, self.base_size)
        if min(self.latent_dim, self.channels, self.d_channels, self.embed_dim) < 1:
            raise ValueError("latent_dim, channels, d_channels and embed_dim must be >= 1")
        if self.max_channels < 1:
            raise ValueError(f"max_channels must be >= 1, got {self.max_channels}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        if self.image_channels not in IMAGE_CHANNELS:
            raise ValueError(f"image_channels must be 1, 3 or 4, got {self.image_channels}")
        check_target(self.target)
        if self.target == "sdf" and self.image_channels != 1:
            raise ValueError("an sdf model has image_channels 1 (the field)")

    @property
    def stages(self) -> int:
        return stage_count(self.image_size, self.base_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> GANConfig:
        """Rebuild a stored config, including one from before the stages existed."""
        return cls(**legacy_config(config))


class Generator(nn.Module):
    """``[z, embed(y)]`` -> linear to ``(W, base, base)`` -> one (upsample, conv, BN, ReLU)
    block per doubling -> conv -> sigmoid (pixels) or tanh (sdf).

    Nearest upsampling plus a 3x3 conv avoids the checkerboard artefacts of transposed convs,
    which at 16x16 would cover a whole stroke. BatchNorm statistics are recomputed for the
    EMA weights after training (:func:`recalibrate_batchnorm`), so eval mode is a fixed,
    per-sample function: the same latent renders the same frame in any chunk or batch. At
    16 px grey the layers are those of the original two-block generator.
    """

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n = cfg.stages
        self._low = cfg.base_size
        self._base_width = min(cfg.channels * 2**n, cfg.max_channels)
        widths = stage_widths(cfg.channels, n, cfg.max_channels)[::-1]  # coarsest first
        features = self._base_width * self._low * self._low
        out_channels = 1 if cfg.target == "sdf" else cfg.image_channels
        cond = cfg.embed_dim if cfg.num_classes > 0 else 0
        self.embed = nn.Embedding(cfg.num_classes, cond) if cond else None
        self.fc = nn.Sequential(
            nn.Linear(cfg.latent_dim + cond, features),
            nn.BatchNorm1d(features),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(*upsample_generator(self._base_width, widths, out_channels))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Map noise ``(B, D)`` and labels ``(B,)`` ints or class weights ``(B, C)`` to images
        ``(B, C, S, S)`` in [0, 1], or for an sdf model fields ``(B, 1, S, S)`` in [-1, 1]."""
        h = z
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional generator needs labels or class weights")
            e = class_condition(self.embed, labels.to(z.device), self.cfg.num_classes)
            h = torch.cat([z, e.to(z.dtype)], dim=1)  # (B, D + E)
        h = self.fc(h)
        h = h.view(-1, self._base_width, self._low, self._low)  # (B, W, base, base)
        return activate(self.blocks(h), self.cfg.target)  # (B, C, S, S)


class Discriminator(nn.Module):
    """Spectrally normalised conv net with a projection head (Miyato & Koyama 2018).

    ``score = w . h + embed(y) . h``: the class enters as an inner product with the pooled
    features rather than as an input channel, which is what makes conditional samples
    actually obey their label. Spectral norm bounds D's Lipschitz constant, so the hinge loss
    cannot run away and no gradient penalty is needed.
    """

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.d_channels
        widths = stage_widths(2 * c, cfg.stages, cfg.max_channels)
        in_channels = 1 if cfg.target == "sdf" else cfg.image_channels
        self.convs = nn.Sequential(*sn_discriminator(in_channels, c, widths))
        self.head = spectral_norm(nn.Linear(widths[-1], 1))
        self.embed = (
            spectral_norm(nn.Embedding(cfg.num_classes, widths[-1]))
            if cfg.num_classes > 0
            else None
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Score images ``(B, C, S, S)`` in [0, 1] (or fields in [-1, 1]); returns ``(B,)``
        (higher = real)."""
        h = self.convs(to_unit_range(x, self.cfg.target)).sum(dim=(2, 3))  # (B, W)
        out = self.head(h).squeeze(1)  # (B,)
        if self.embed is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            out = out + (self.embed(labels) * h).sum(dim=1)
        return out


@torch.no_grad()
def recalibrate_batchnorm(
    generator: Generator, gen: torch.Generator, *, batches: int = 20, batch_size: int = 256
) -> None:
    """Replace the BatchNorm running statistics with exact averages over ``batches`` batches
    of the generator's own samples ("standing statistics").

    The running stats tracked during training belong to the raw generator, not to the EMA
    weights; using them in eval mode gives washed-out samples.
    """
    bns = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    dev = next(generator.parameters()).device
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    generator.train()
    cfg = generator.cfg
    for _ in range(batches):
        z = torch.randn(batch_size, cfg.latent_dim, generator=gen).to(dev)
        y = torch.randint(0, max(cfg.num_classes, 1), (batch_size,), generator=gen).to(dev)
        generator(z, y if cfg.num_classes > 0 else None)
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    generator.eval()


def sample_inputs(
    cfg: GANConfig, n: int, *, seed: int, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` noise vectors (and uniformly drawn labels, unless given) from ``seed``, on CPU."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.latent_dim, generator=gen)
    if cfg.num_classes == 0:
        return z, None
    if labels is None:
        labels = torch.randint(0, cfg.num_classes, (n,), generator=gen)
    return z, labels


def train_gan(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    cfg: GANConfig,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str = "cpu",
    d_lr: float | None = None,
    betas: tuple[float, float] = (0.0, 0.9),
    ema_decay: float = 0.999,
    log_every: int = 100,
    on_progress: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_state: TrainState | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    checkpoint_every: int = 500,
) -> tuple[Generator, list[dict[str, float]], TrainState]:
    """Train G and D for ``steps`` steps; return ``(ema_generator, history, state)``.

    Each step draws a real batch (with replacement, so a step count, not an epoch, is the
    unit of work and resuming mid-run needs no epoch bookkeeping), does one D update on real
    and fake, one G update on the same fakes, and folds G into the EMA. All randomness after
    initialisation comes from one CPU generator seeded with ``seed`` and stored in ``state``,
    so on CPU ``train 4 steps`` and ``train 2, resume from state, train 2 more`` give
    identical weights.

    ``history`` holds one record per ``log_every`` steps (means over the window), also passed
    to ``on_progress(step, record)``. ``on_checkpoint(state)`` is called every
    ``checkpoint_every`` steps. ``should_stop`` is polled before every step and raises
    :class:`TrainingStopped`. ``d_lr`` defaults to ``lr``.
    """
    check_images(images, cfg.image_size, 1 if cfg.target == "sdf" else cfg.image_channels)
    if cfg.num_classes > 0:
        if labels is None or labels.shape != (images.shape[0],):
            raise ValueError(f"a conditional GAN needs labels of shape ({images.shape[0]},)")
    elif labels is not None:
        raise ValueError("labels given but cfg.num_classes is 0 (unconditional GAN)")
    d_lr = lr if d_lr is None else d_lr
    if steps < 1 or batch_size < 1 or log_every < 1 or checkpoint_every < 1:
        raise ValueError("steps, batch_size, log_every and checkpoint_every must be >= 1")
    if not (math.isfinite(lr) and lr > 0 and math.isfinite(d_lr) and d_lr > 0):
        raise ValueError("lr and d_lr must be positive")
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")

    dev = torch.device(device)
    torch.manual_seed(seed)
    g_net = Generator(cfg).to(dev)
    d_net = Discriminator(cfg).to(dev)
    ema = copy.deepcopy(g_net)
    ema.requires_grad_(False)
    opt_g = torch.optim.Adam(g_net.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(d_net.parameters(), lr=d_lr, betas=betas)
    gen = torch.Generator().manual_seed(seed)
    data = images.to(dev, dtype=torch.float32)
    ys = labels.to(dev, dtype=torch.int64) if labels is not None else None
    n = data.shape[0]
    conditional = cfg.num_classes > 0

    history: list[dict[str, float]] = []
    window = {"loss_d": 0.0, "loss_g": 0.0, "d_real": 0.0, "d_fake": 0.0, "n": 0.0}
    step = 0
    if resume_state is not None:
        check_resume(resume_state, "gan", cfg.to_dict(), seed)
        t = resume_state.tensors
        load_module_tensors("G", g_net, t)
        load_module_tensors("D", d_net, t)
        load_module_tensors("EMA", ema, t)
        load_optimizer_tensors("optG", opt_g, t)
        load_optimizer_tensors("optD", opt_d, t)
        gen.set_state(t["rng.gen"])
        step = int(resume_state.counters["step"])
        history = [dict(r) for r in resume_state.counters["history"]]
        window = {k: float(v) for k, v in resume_state.counters["window"].items()}

    def capture() -> TrainState:
        tensors = {
            **module_tensors("G", g_net),
            **module_tensors("D", d_net),
            **module_tensors("EMA", ema),
            **optimizer_tensors("optG", opt_g),
            **optimizer_tensors("optD", opt_d),
            "rng.gen": gen.get_state(),
        }
        counters = {
            "family": "gan",
            "config": cfg.to_dict(),
            "seed": seed,
            "step": step,
            "history": history,
            "window": window,
        }
        return TrainState(tensors=tensors, counters=json.loads(json.dumps(counters)))

    g_net.train()
    d_net.train()
    ema.train()
    while step < steps:
        if should_stop is not None and should_stop():
            raise TrainingStopped(f"training stopped at step {step}")
        idx = torch.randint(0, n, (batch_size,), generator=gen).to(dev)
        z = torch.randn(batch_size, cfg.latent_dim, generator=gen).to(dev)
        y_fake = (
            torch.randint(0, cfg.num_classes, (batch_size,), generator=gen).to(dev)
            if conditional
            else None
        )
        x = data[idx]
        y_real = ys[idx] if ys is not None else None

        fake = g_net(z, y_fake)
        d_real = d_net(x, y_real)
        d_fake = d_net(fake.detach(), y_fake)
        loss_d = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        loss_g = -d_net(fake, y_fake).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        step += 1
        # Warm-up: early on, a 0.999 average would mostly remember the random init.
        decay = min(ema_decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), g_net.parameters(), strict=True):
                p_ema.lerp_(p, 1.0 - decay)
            for b_ema, b in zip(ema.buffers(), g_net.buffers(), strict=True):
                b_ema.copy_(b)

        window["loss_d"] += loss_d.item()
        window["loss_g"] += loss_g.item()
        window["d_real"] += d_real.mean().item()
        window["d_fake"] += d_fake.mean().item()
        window["n"] += 1.0
        if step % log_every == 0 or step == steps:
            k = window.pop("n")
            record = {"step": float(step), **{key: v / k for key, v in window.items()}}
            history.append(record)
            window = {"loss_d": 0.0, "loss_g": 0.0, "d_real": 0.0, "d_fake": 0.0, "n": 0.0}
            if on_progress is not None:
                on_progress(step, record)
        if on_checkpoint is not None and step % checkpoint_every == 0:
            on_checkpoint(capture())
    if should_stop is not None and should_stop():
        raise TrainingStopped("training stopped after the last step")

    state = capture()
    out = copy.deepcopy(ema)
    # Seeded from the run's seed only, so a resumed run calibrates exactly as a whole one.
    recalibrate_batchnorm(out, torch.Generator().manual_seed(seed + 1))
    out.eval()
    return out, history, state
