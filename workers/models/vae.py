"""A small convolutional VAE for low-resolution grayscale images (sklearn digits at 16x16).

The model is deliberately tiny so that a CPU worker can train it in well under a minute and
a GPU worker can decode thousands of animation frames per second. It has no dependency on the
``farm`` package so it can be trained, inspected and tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


class TrainingStopped(Exception):
    """Raised by :func:`train_vae` when ``should_stop`` asks for an abort.

    An exception (rather than returning a half-trained model) makes it impossible for a caller
    to accidentally save a cancelled run as if it had finished.
    """


@dataclass
class VAEConfig:
    """Architecture hyperparameters; stored in checkpoints so the model can be rebuilt."""

    # Side of the square input; two stride-2 convolutions need it to be a multiple of 4.
    image_size: int = 16
    # 8 dims is enough for 10 digit classes plus style, and keeps seed latents meaningful.
    latent_dim: int = 8
    # Width of the first conv layer; the second layer uses twice this.
    channels: int = 32

    def __post_init__(self) -> None:
        if self.image_size < 4 or self.image_size % 4 != 0:
            raise ValueError(f"image_size must be a positive multiple of 4, got {self.image_size}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ConvVAE(nn.Module):
    """Two stride-2 convs down to S/4, a linear bottleneck, and the mirror image back up.

    ``forward`` returns logits rather than probabilities because the Bernoulli loss is
    numerically stable only on logits; ``decode`` applies the sigmoid for rendering.
    """

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self._low = cfg.image_size // 4
        flat = 2 * c * self._low * self._low
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(flat, 256),
            nn.LeakyReLU(0.2),
        )
        self.fc_mu = nn.Linear(256, cfg.latent_dim)
        self.fc_logvar = nn.Linear(256, cfg.latent_dim)
        self.decoder_fc = nn.Sequential(
            nn.Linear(cfg.latent_dim, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, flat),
            nn.LeakyReLU(0.2),
        )
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map images ``(B, 1, S, S)`` in [0, 1] to the posterior ``(mu, logvar)``, each (B, D)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = self.decoder_fc(z)
        h = h.view(-1, 2 * self.cfg.channels, self._low, self._low)  # (B, 2C, S/4, S/4)
        return self.decoder_conv(h)  # (B, 1, S, S)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Map latents ``(B, D)`` to pixel intensities ``(B, 1, S, S)`` in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(recon_logits, mu, logvar)``; sampling only happens in training mode so
        evaluation is deterministic."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode_logits(z), mu, logvar


def vae_loss(
    recon_logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO in nats per image, returned as ``(loss, recon, kl)``.

    Summing over pixels (not averaging) keeps the reconstruction and KL terms on the same
    scale, which is what makes this a true ELBO rather than a re-weighted one; the targets are
    grey levels in [0, 1], which BCE accepts as soft Bernoulli targets.
    """
    batch = x.shape[0]
    recon = F.binary_cross_entropy_with_logits(recon_logits, x, reduction="sum") / batch
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / batch
    return recon + kl, recon, kl


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
) -> tuple[ConvVAE, list[dict[str, float]]]:
    """Train a fresh :class:`ConvVAE` and return it in eval mode with per-epoch history.

    Initialisation, shuffling and reparameterisation noise all derive from ``seed`` so that a
    retried job reproduces the same model (on the same device and thread count). Epoch
    metrics are sample-weighted means over the epoch, so a ragged last batch is not overcounted.
    ``should_stop`` is polled before every batch; when it returns True, :class:`TrainingStopped`
    is raised.
    """
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, S, S), got {tuple(images.shape)}")
    if images.shape[-1] != cfg.image_size or images.shape[-2] != cfg.image_size:
        raise ValueError(
            f"images are {tuple(images.shape[-2:])} but cfg.image_size is {cfg.image_size}"
        )
    if epochs < 1 or batch_size < 1 or not math.isfinite(lr) or lr <= 0:
        raise ValueError("epochs and batch_size must be >= 1 and lr must be positive")

    dev = torch.device(device)
    torch.manual_seed(seed)
    model = ConvVAE(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle_gen = torch.Generator().manual_seed(seed)
    data = images.to(dev, dtype=torch.float32)
    n = data.shape[0]
    history: list[dict[str, float]] = []

    model.train()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=shuffle_gen).to(dev)
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
        for start in range(0, n, batch_size):
            if should_stop is not None and should_stop():
                raise TrainingStopped(f"training stopped during epoch {epoch}")
            x = data[perm[start : start + batch_size]]
            logits, mu, logvar = model(x)
            loss, recon, kl = vae_loss(logits, x, mu, logvar)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            b = x.shape[0]
            sums["loss"] += loss.item() * b
            sums["recon"] += recon.item() * b
            sums["kl"] += kl.item() * b
        record = {"epoch": float(epoch), **{k: v / n for k, v in sums.items()}}
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)
    if should_stop is not None and should_stop():
        raise TrainingStopped("training stopped after the last epoch")

    model.eval()
    return model, history
