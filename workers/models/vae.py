"""A convolutional VAE (and cVAE) for grey, RGB or RGBA images or signed distance fields,
at 8 to 256 px (:mod:`workers.models.arch`: one stage per doubling).

The model is deliberately small so that a CPU worker can train the 16 px digits in well
under a minute and a GPU worker can decode thousands of animation frames per second. It has
no dependency on the ``farm`` package so it can be trained, inspected and tested on its own.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from workers.models.arch import (
    IMAGE_CHANNELS,
    conv_encoder,
    deconv_decoder,
    legacy_config,
    stage_count,
    stage_widths,
)
from workers.models.targets import activate, check_target, reconstruction

# Found with bench/model_quality.py (docs/models.md), for the digits at 16x16.
DEFAULTS: dict[str, Any] = {
    "epochs": 60,
    "batch_size": 64,
    "lr": 2e-3,
    "latent_dim": 8,
    "kl_warmup_epochs": 0,
    "conditioning": "concat",
    "min_std": 0.0,
}

# The tuned defaults per image size are the farm's (farm.families.VAE_SIZES): a model built
# alone takes its config's own values.


class TrainingStopped(Exception):
    """Raised by :func:`train_vae` (and the GAN / LSTM trainers) when ``should_stop`` asks for
    an abort.

    An exception (rather than returning a half-trained model) makes it impossible for a caller
    to accidentally save a cancelled run as if it had finished.
    """


@dataclass
class TrainState:
    """Everything a trainer needs to continue a run exactly where it left off.

    ``tensors`` is flat (``"model.fc.weight"``, ``"opt.3.exp_avg"``, ``"rng.shuffle"``) so it
    can be written as one safetensors file; ``counters`` holds the JSON-able rest (step or
    epoch, seed, config, history). Splitting them this way means a resume file needs no
    pickle, which a worker must never load from disk.
    """

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)


def save_train_state(path: Path, state: TrainState) -> None:
    """Atomically write ``state`` to ``path`` (a ``.safetensors`` file); a kill mid-write
    leaves the previous resume file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.tensors.items()}
    meta = json.dumps(state.counters, sort_keys=True, allow_nan=False)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{path.suffix}")
    try:
        save_file(tensors, str(tmp), metadata={"counters": meta})
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def load_train_state(path: Path) -> TrainState:
    """Read a file written by :func:`save_train_state`."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        header = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    if "counters" not in header:
        raise ValueError(f"not a training state file (no counters in its header): {path}")
    return TrainState(tensors=tensors, counters=json.loads(header["counters"]))


def module_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict under ``prefix.``, cloned to CPU so later steps can't alias it."""
    return {f"{prefix}.{k}": v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def load_module_tensors(
    prefix: str, module: nn.Module, tensors: Mapping[str, torch.Tensor]
) -> None:
    head = prefix + "."
    module.load_state_dict({k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)})


def optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Per-parameter optimizer state (Adam moments and step counts) as flat tensors.

    ``param_groups`` are not stored: the trainer rebuilds the optimizer with the same
    hyperparameters, and storing them would let a stale learning rate override the caller's.
    """
    out: dict[str, torch.Tensor] = {}
    for idx, per_param in opt.state_dict()["state"].items():
        for key, value in per_param.items():
            out[f"{prefix}.{idx}.{key}"] = torch.as_tensor(value).detach().to("cpu").clone()
    return out


def load_optimizer_tensors(
    prefix: str, opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor]
) -> None:
    head = prefix + "."
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(head):
            idx, name = key[len(head) :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value.clone()
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})


def check_resume(state: TrainState, family: str, config: Mapping[str, Any], seed: int) -> None:
    """Refuse a resume file from another family, architecture or seed: continuing from it
    would silently train a different model than the job asks for."""
    c = state.counters
    if c.get("family") != family:
        raise ValueError(f"resume state is for family {c.get('family')!r}, not {family!r}")
    if c.get("config") != dict(config):
        raise ValueError(f"resume state config {c.get('config')} differs from {dict(config)}")
    if c.get("seed") != seed:
        raise ValueError(f"resume state seed {c.get('seed')} differs from {seed}")


def class_condition(embed: nn.Embedding, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class embeddings ``(B, E)`` from int labels ``(B,)`` or class weights ``(B, C)``.

    Weights (rows summing to 1) mix the embeddings linearly, which is what lets a render
    morph a "3" into an "8" through the model's own class space.
    """
    if labels.is_floating_point():
        if labels.ndim != 2 or labels.shape[1] != num_classes:
            raise ValueError(f"class weights must be (B, {num_classes}), got {tuple(labels.shape)}")
        return labels.to(embed.weight.dtype) @ embed.weight  # (B, E)
    if labels.ndim != 1:
        raise ValueError(f"labels must be (B,) ints, got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}")
    return embed(labels)


CONDITIONINGS = ("concat", "film")


@dataclass
class VAEConfig:
    """Architecture hyperparameters; stored in checkpoints so the model can be rebuilt."""

    # Side of the square input: base_size times a power of two (8, 16, 32, 64, 128, 256).
    image_size: int = 16
    # 8 dims is enough for 10 digit classes plus style, and keeps seed latents meaningful.
    latent_dim: int = 8
    # Width of the finest stage's conv; each coarser stage doubles it, up to max_width.
    channels: int = 32
    # 0 = unconditional; > 0 makes a conditional VAE whose encoder and decoder see the class.
    num_classes: int = 0
    # Size of the learned class embedding (used only when num_classes > 0).
    class_embed_dim: int = 8
    # Colour channels in and out: 1 grey, 3 RGB, 4 RGBA (straight alpha, last).
    image_channels: int = 1
    # "pixels" (sigmoid, BCE) or "sdf" (one channel, tanh, L1): workers.models.targets.
    target: str = "pixels"
    # Side of the coarsest stage; one stage per doubling from it to image_size.
    base_size: int = 4
    # Cap on a stage's width, so a 128 px model's deepest stages stay affordable.
    max_channels: int = 256
    # Width of the dense layer either side of the latent.
    hidden: int = 256
    # How a cVAE's decoder sees the class: "concat" (the embedding joins z at the dense
    # layer only; every checkpoint before this field) or "film" (also a per-stage scale and
    # shift of every decoder stage's features from the embedding, so the class shapes each
    # resolution instead of having to survive the dense layer beside z).
    conditioning: str = "concat"
    # A floor under the posterior's standard deviation (0: none, every checkpoint before
    # this field). With a small latent and a few fonts each class's posteriors are near
    # points (std ~0.01) and the decoder never sees the prior between them; a floor makes
    # it decode a neighbourhood of each, so prior samples land where it has been trained.
    min_std: float = 0.0

    def __post_init__(self) -> None:
        stage_count(self.image_size, self.base_size)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if min(self.channels, self.max_channels, self.hidden) < 1:
            raise ValueError("channels, max_channels and hidden must be >= 1")
        if self.num_classes < 0 or self.class_embed_dim < 1:
            raise ValueError("num_classes must be >= 0 and class_embed_dim >= 1")
        if self.image_channels not in IMAGE_CHANNELS:
            raise ValueError(f"image_channels must be 1, 3 or 4, got {self.image_channels}")
        check_target(self.target)
        if not (math.isfinite(self.min_std) and 0.0 <= self.min_std < 1.0):
            raise ValueError(f"min_std must be in [0, 1), got {self.min_std}")
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(
                f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {self.conditioning!r}"
            )
        if self.target == "sdf" and self.image_channels != 1:
            raise ValueError("an sdf model has image_channels 1 (the field)")

    @property
    def stages(self) -> int:
        return stage_count(self.image_size, self.base_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> VAEConfig:
        """Rebuild a stored config, including one from before the stages existed."""
        return cls(**legacy_config(config))


class ConvVAE(nn.Module):
    """Stride-2 convs down to ``base_size`` (one per doubling), a linear bottleneck, and the
    mirror image back up.

    ``forward`` returns raw decoder outputs (logits for pixels) because the Bernoulli loss is
    numerically stable only on logits; ``decode`` applies the target's activation (sigmoid
    for pixels, tanh for an sdf) for rendering. An sdf model encodes the field itself: its
    input is the data set's ``sdf`` ``(B, 1, S, S)`` in [-1, 1].

    With ``cfg.num_classes > 0`` (a cVAE) a class embedding is concatenated to the flattened
    conv features and to ``z``, so the latent only has to carry style and the class can be
    chosen at render time; with ``cfg.conditioning == "film"`` it also scales and shifts the
    input of every transposed conv (FiLM, Perez et al. 2018). At 16 px grey the layers (and
    state-dict keys) are those of the original two-stage model, so existing checkpoints still
    load; ``cfg.min_std`` (0 for them) only changes what :meth:`encode` returns.
    """

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self._low = cfg.base_size
        self._widths = stage_widths(cfg.channels, cfg.stages, cfg.max_channels)
        self._features = 2 * cfg.stages + 1  # encoder layers up to the flattened features
        out_channels = 1 if cfg.target == "sdf" else cfg.image_channels
        flat = self._widths[-1] * self._low * self._low
        cond = cfg.class_embed_dim if cfg.num_classes > 0 else 0
        self.class_embed = nn.Embedding(cfg.num_classes, cond) if cond else None
        self.encoder = nn.Sequential(
            *conv_encoder(cfg.image_channels, self._widths),
            nn.Flatten(),
            nn.Linear(flat + cond, cfg.hidden),
            nn.LeakyReLU(0.2),
        )
        self.fc_mu = nn.Linear(cfg.hidden, cfg.latent_dim)
        self.fc_logvar = nn.Linear(cfg.hidden, cfg.latent_dim)
        self.decoder_fc = nn.Sequential(
            nn.Linear(cfg.latent_dim + cond, cfg.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.hidden, flat),
            nn.LeakyReLU(0.2),
        )
        self.decoder_conv = nn.Sequential(*deconv_decoder(self._widths, out_channels))
        # FiLM: one (scale, shift) pair per decoder stage input, coarsest first; zero-initialised
        # so a fresh model starts as the concat one and learns how much the class modulates.
        self.film: nn.ModuleList | None = None
        if cond and cfg.conditioning == "film":
            films = [nn.Linear(cond, 2 * w) for w in reversed(self._widths)]
            for layer in films:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
            self.film = nn.ModuleList(films)

    @property
    def conditional(self) -> bool:
        return self.class_embed is not None

    def _with_class(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.class_embed is None:
            if labels is not None:
                raise ValueError("labels given to an unconditional VAE (num_classes=0)")
            return h
        if labels is None:
            raise ValueError("a conditional VAE needs labels (class ints or class weights)")
        e = class_condition(self.class_embed, labels.to(h.device), self.cfg.num_classes)
        return torch.cat([h, e.to(h.dtype)], dim=1)  # (B, F + E)

    def encode(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Map images ``(B, C, S, S)`` in [0, 1] (an sdf model: fields ``(B, 1, S, S)`` in
        [-1, 1]) to the posterior ``(mu, logvar)``, each (B, D)."""
        h = self.encoder[: self._features](x)  # (B, W * base * base)
        h = self.encoder[self._features :](self._with_class(h, labels))  # (B, hidden)
        logvar = self.fc_logvar(h)
        if self.cfg.min_std > 0:
            # var = floor^2 + exp(raw): smooth, so the encoder still learns above the floor.
            logvar = torch.logaddexp(logvar, logvar.new_tensor(2 * math.log(self.cfg.min_std)))
        return self.fc_mu(h), logvar

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Raw decoder outputs ``(B, C, S, S)``, before the target's activation."""
        zc = self._with_class(z, labels)  # (B, D + E)
        h = self.decoder_fc(zc)
        h = h.view(-1, self._widths[-1], self._low, self._low)  # (B, W, base, base)
        if self.film is None:
            return self.decoder_conv(h)  # (B, C, S, S)
        e = zc[:, self.cfg.latent_dim :]  # (B, E): the class embedding (or a mix of them)
        films = iter(self.film)
        for layer in self.decoder_conv:
            if isinstance(layer, nn.ConvTranspose2d):
                scale, shift = next(films)(e).chunk(2, dim=1)  # each (B, W_stage)
                h = h * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
            h = layer(h)
        return h  # (B, C, S, S)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Map latents ``(B, D)`` (and, for a cVAE, labels ``(B,)`` or class weights
        ``(B, C)``) to pixels ``(B, C, S, S)`` in [0, 1], or for an sdf model to the field
        ``(B, 1, S, S)`` in [-1, 1]."""
        return activate(self.decode_logits(z, labels), self.cfg.target)

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(recon_logits, mu, logvar)``; sampling only happens in training mode so
        evaluation is deterministic."""
        mu, logvar = self.encode(x, labels)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode_logits(z, labels), mu, logvar


def vae_loss(
    recon_logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    target: str = "pixels",
    *,
    kl_weight: float = 1.0,
    free_bits: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO in nats per image, returned as ``(loss, recon, kl)``.

    Summing over pixels (not averaging) keeps the reconstruction and KL terms on the same
    scale, which is what makes this a true ELBO rather than a re-weighted one; for pixels the
    targets are levels in [0, 1], which BCE accepts as soft Bernoulli targets, for an sdf the
    field under the edge-weighted Laplace likelihood of :mod:`workers.models.targets`.

    ``kl_weight`` (a warm-up's beta) and ``free_bits`` (nats per latent dimension below which
    the batch's KL costs nothing, Kingma et al. 2016) change only the ``loss`` trained on;
    ``kl`` is always the true term, so the history stays an ELBO.
    """
    batch = x.shape[0]
    recon = reconstruction(recon_logits, x, target) / batch
    kl_dims = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=0) / batch  # (D,)
    kl = kl_dims.sum()
    trained = kl_dims.clamp(min=free_bits).sum() if free_bits > 0 else kl
    return recon + kl_weight * trained, recon, kl


LR_SCHEDULES = ("constant", "cosine")


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The KL weight's share at batch ``step`` (from 0) of a linear warm-up over
    ``warmup_steps`` batches: ``step / warmup_steps``, 1 after it (and with none)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


def scheduled_lr(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate for ``epoch`` (from 1) of ``epochs``: constant, or a cosine from
    ``lr`` in the first epoch down towards 0 in the last."""
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
    return lr


def check_images(images: torch.Tensor, size: int, channels: int) -> None:
    """Refuse training data whose shape does not fit the model, naming both."""
    if images.ndim != 4 or images.shape[1] != channels:
        raise ValueError(f"images must be (N, {channels}, S, S), got {tuple(images.shape)}")
    if images.shape[-1] != size or images.shape[-2] != size:
        raise ValueError(f"images are {tuple(images.shape[-2:])} but cfg.image_size is {size}")


def _vae_state(
    model: ConvVAE,
    opt: torch.optim.Optimizer,
    shuffle_gen: torch.Generator,
    dev: torch.device,
    counters: dict[str, Any],
) -> TrainState:
    tensors = {
        **module_tensors("model", model),
        **optimizer_tensors("opt", opt),
        "rng.shuffle": shuffle_gen.get_state(),
        "rng.torch": torch.get_rng_state(),
    }
    if dev.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(dev)
    return TrainState(tensors=tensors, counters=json.loads(json.dumps(counters)))


def train_vae(
    images: torch.Tensor,
    cfg: VAEConfig,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    labels: torch.Tensor | None = None,
    resume_state: TrainState | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    kl_warmup_epochs: int = 0,
    kl_weight: float = 1.0,
    free_bits: float = 0.0,
    lr_schedule: str = "constant",
) -> tuple[ConvVAE, list[dict[str, float]]]:
    """Train a fresh :class:`ConvVAE` and return it in eval mode with per-epoch history.

    Initialisation, shuffling and reparameterisation noise all derive from ``seed`` so that a
    retried job reproduces the same model (on the same device and thread count). Epoch
    metrics are sample-weighted means over the epoch, so a ragged last batch is not overcounted.
    ``should_stop`` is polled before every batch; when it returns True, :class:`TrainingStopped`
    is raised.

    ``images`` are ``(N, cfg.image_channels, S, S)`` in [0, 1], or for an sdf model the
    fields ``(N, 1, S, S)`` in [-1, 1]. ``labels`` (N,) are required when
    ``cfg.num_classes > 0``. ``on_checkpoint`` receives a
    :class:`TrainState` after every epoch; passing the last one back as ``resume_state`` (with
    the same data and arguments) continues the run and gives the same weights as an
    uninterrupted one on CPU, because the RNG states travel with it.

    ``kl_warmup_epochs`` ramps the KL term's weight linearly from 0 to ``kl_weight`` over
    that many epochs (per batch); ``free_bits`` and ``kl_weight`` are :func:`vae_loss`'s;
    ``lr_schedule`` "cosine" anneals the learning rate to 0 over the run. All are functions
    of the epoch and batch index, so a resumed run follows the same schedule.
    """
    check_images(images, cfg.image_size, cfg.image_channels)
    if epochs < 1 or batch_size < 1 or not math.isfinite(lr) or lr <= 0:
        raise ValueError("epochs and batch_size must be >= 1 and lr must be positive")
    if kl_warmup_epochs < 0 or not (math.isfinite(kl_weight) and kl_weight > 0):
        raise ValueError("kl_warmup_epochs must be >= 0 and kl_weight positive")
    if not (math.isfinite(free_bits) and free_bits >= 0):
        raise ValueError(f"free_bits must be >= 0, got {free_bits}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
    if cfg.num_classes > 0:
        if labels is None or labels.shape != (images.shape[0],):
            raise ValueError(f"a conditional VAE needs labels of shape ({images.shape[0]},)")
    elif labels is not None:
        raise ValueError("labels given but cfg.num_classes is 0 (unconditional VAE)")

    dev = torch.device(device)
    torch.manual_seed(seed)
    model = ConvVAE(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle_gen = torch.Generator().manual_seed(seed)
    data = images.to(dev, dtype=torch.float32)
    ys = labels.to(dev, dtype=torch.int64) if labels is not None else None
    n = data.shape[0]
    history: list[dict[str, float]] = []
    first = 1
    if resume_state is not None:
        check_resume(resume_state, "vae", cfg.to_dict(), seed)
        t = resume_state.tensors
        load_module_tensors("model", model, t)
        load_optimizer_tensors("opt", opt, t)
        shuffle_gen.set_state(t["rng.shuffle"])
        torch.set_rng_state(t["rng.torch"])
        if dev.type == "cuda" and "rng.cuda" in t:
            torch.cuda.set_rng_state(t["rng.cuda"], dev)
        history = [dict(r) for r in resume_state.counters["history"]]
        first = int(resume_state.counters["epoch"]) + 1

    model.train()
    per_epoch = -(-n // batch_size)
    for epoch in range(first, epochs + 1):
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(lr, lr_schedule, epoch, epochs)
        perm = torch.randperm(n, generator=shuffle_gen).to(dev)
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
        for step, start in enumerate(range(0, n, batch_size)):
            if should_stop is not None and should_stop():
                raise TrainingStopped(f"training stopped during epoch {epoch}")
            idx = perm[start : start + batch_size]
            x = data[idx]
            y = ys[idx] if ys is not None else None
            logits, mu, logvar = model(x, y)
            beta = kl_weight * warmup_factor(
                (epoch - 1) * per_epoch + step, kl_warmup_epochs * per_epoch
            )
            loss, recon, kl = vae_loss(
                logits, x, mu, logvar, cfg.target, kl_weight=beta, free_bits=free_bits
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            b = x.shape[0]
            sums["loss"] += (recon.item() + kl.item()) * b
            sums["recon"] += recon.item() * b
            sums["kl"] += kl.item() * b
        record = {"epoch": float(epoch), **{k: v / n for k, v in sums.items()}}
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)
        if on_checkpoint is not None:
            counters = {
                "family": "vae",
                "config": cfg.to_dict(),
                "seed": seed,
                "epoch": epoch,
                "history": history,
            }
            on_checkpoint(_vae_state(model, opt, shuffle_gen, dev, counters))
    if should_stop is not None and should_stop():
        raise TrainingStopped("training stopped after the last epoch")

    model.eval()
    return model, history


def evaluate_elbo(
    model: ConvVAE,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    batch_size: int = 512,
    samples: int = 1,
    seed: int = 0,
) -> dict[str, float]:
    """Held-out negative ELBO in nats per image, with its ``recon`` and ``kl`` terms, and the
    per-pixel ``mse`` of the mean reconstruction (decoded from ``mu``).

    The reconstruction term is a Monte-Carlo estimate over ``samples`` posterior draws from
    a generator seeded with ``seed``, so the number is reproducible and is a genuine ELBO
    (decoding only ``mu`` would understate it).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    n = images.shape[0]
    sums = {"recon": 0.0, "kl": 0.0, "mse": 0.0}
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            x = images[start : start + batch_size].to(device, dtype=torch.float32)
            y = labels[start : start + batch_size].to(device) if labels is not None else None
            mu, logvar = model.encode(x, y)
            for _ in range(samples):
                eps = torch.randn(mu.shape, generator=gen).to(device)
                logits = model.decode_logits(mu + eps * torch.exp(0.5 * logvar), y)
                sums["recon"] += float(reconstruction(logits, x, model.cfg.target)) / samples
            sums["kl"] += float(-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()))
            mean_img = model.decode(mu, y)
            sums["mse"] += float(F.mse_loss(mean_img, x, reduction="sum")) / x[0].numel()
    model.train(was_training)
    out = {k: v / n for k, v in sums.items()}
    return {"neg_elbo": out["recon"] + out["kl"], **out}


def latent_means(
    model: ConvVAE,
    images: torch.Tensor,
    groups: torch.Tensor,
    n_groups: int,
    labels: torch.Tensor | None = None,
    *,
    batch_size: int = 512,
) -> torch.Tensor:
    """Mean encoder ``mu`` per group ``(n_groups, D)`` on CPU: per class (``groups`` the
    labels) or per style (``groups`` the styles; a cVAE still encodes with ``labels``).

    Stored in checkpoints so a render can key on a class or a style without the data set. A
    group with no samples gets the prior mean (zeros) rather than NaN.
    """
    device = next(model.parameters()).device
    sums = torch.zeros(n_groups, model.cfg.latent_dim, dtype=torch.float64)
    counts = torch.zeros(n_groups, dtype=torch.float64)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device, dtype=torch.float32)
            g = groups[start : start + batch_size].to(torch.int64).cpu()
            y = labels[start : start + batch_size].to(device) if labels is not None else None
            mu, _ = model.encode(x, y if model.conditional else None)
            sums.index_add_(0, g, mu.cpu().to(torch.float64))
            counts.index_add_(0, g, torch.ones_like(g, dtype=torch.float64))
    model.train(was_training)
    return (sums / counts.clamp_min(1.0).unsqueeze(1)).to(torch.float32)
