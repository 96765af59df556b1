"""A recurrent dynamics model in the latent space of a trained VAE (the "M" of World Models,
Ha & Schmidhuber 2018).

A VAE squeezes each frame to a few numbers; an LSTM over those numbers learns how a scene
moves, and decoding its predictions through the VAE renders motion the VAE alone cannot.
Predicting a Gaussian per step (mean and log-variance) keeps rollouts deterministic by
default (follow the means) while still allowing seeded, varied rollouts. Like the VAE it has
no dependency on ``farm``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workers.models.loop import EpochRun
from workers.models.vae import (
    TrainState,
)

# Found with bench/model_quality.py (docs/models.md).
# "vae" is the frame VAE the LSTM's latents come from (32x32 moving digits).
DEFAULTS: dict[str, Any] = {
    "epochs": 60,
    "batch_size": 32,
    "lr": 2e-3,
    "hidden": 256,
    "closed_loop": 1.0,
    "train_clips": 400,
    "held_out_clips": 100,
    "clip_len": 12,
    "vae": {"latent_dim": 16, "channels": 32, "epochs": 16, "batch_size": 64, "lr": 2e-3},
}


@dataclass
class LSTMConfig:
    """Architecture hyperparameters; stored in checkpoints so the model can be rebuilt."""

    # Must match the latent_dim of the VAE whose latents are modelled.
    latent_dim: int = 16
    # LSTM width; 256 is plenty for one or two bouncing digits.
    hidden: int = 256
    # Stacked LSTM layers.
    layers: int = 1

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.hidden < 1 or self.layers < 1:
            raise ValueError("latent_dim, hidden and layers must be >= 1")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class LatentLSTM(nn.Module):
    """LSTM over latents ``(B, T, D)`` predicting, for every step, a Gaussian over the next
    latent.

    The mean is parameterised as ``z_t + delta``: most of a frame carries over to the next,
    so learning the change converges much faster than learning the whole latent.
    """

    def __init__(self, cfg: LSTMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(cfg.latent_dim, cfg.hidden, cfg.layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden, 2 * cfg.latent_dim)

    def forward(
        self,
        z: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Return ``(mean, logvar, state)``; ``mean[:, t]`` predicts ``z[:, t + 1]``."""
        h, new_state = self.lstm(z, state)  # (B, T, H)
        delta, logvar = self.head(h).chunk(2, dim=-1)  # (B, T, D) each
        return z + delta, logvar.clamp(-10.0, 5.0), new_state


def lstm_loss(
    mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, mse, nll)``: MSE trains the mean, Gaussian NLL (on the detached mean) trains
    the variance.

    Detaching keeps the variance head from buying a lower NLL by blurring the mean, so the
    deterministic rollout is as sharp as a plain regression model's.
    """
    mse = F.mse_loss(mean, target)
    var = logvar.exp()
    nll = 0.5 * (logvar + (target - mean.detach()).pow(2) / var + math.log(2 * math.pi)).mean()
    return mse + nll, mse, nll


def train_lstm(
    latent_sequences: torch.Tensor,
    cfg: LSTMConfig,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str = "cpu",
    on_progress: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_state: TrainState | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    clip: float = 1.0,
    closed_loop: float = 0.0,
    warmup: int = 4,
) -> tuple[LatentLSTM, list[dict[str, float]], TrainState]:
    """Teacher-forced training on ``latent_sequences`` (N, T, D), T >= 2; returns
    ``(model in eval mode, per-epoch history, state)``.

    Shuffling comes from a CPU generator seeded with ``seed`` and stored in ``state`` (passed
    to ``on_checkpoint`` after every epoch), so a resumed run matches an uninterrupted one on
    CPU. ``should_stop`` is polled before every batch and raises :class:`TrainingStopped`.
    Gradients are clipped to norm ``clip``, the usual guard against LSTM gradient spikes.

    ``closed_loop > 0`` adds that weight times the MSE of a free-running rollout (the model
    fed its own predictions after ``warmup`` true latents). Teacher forcing alone never shows
    the model its own errors, so long rollouts drift (a "1" turns into a "9"); this term
    trains exactly the way :func:`rollout` is used.
    """
    if latent_sequences.ndim != 3 or latent_sequences.shape[1] < 2:
        raise ValueError(
            f"latent_sequences must be (N, T>=2, D), got {tuple(latent_sequences.shape)}"
        )
    if latent_sequences.shape[2] != cfg.latent_dim:
        raise ValueError(
            f"latents have {latent_sequences.shape[2]} dims but cfg.latent_dim is {cfg.latent_dim}"
        )
    if epochs < 1 or batch_size < 1 or not math.isfinite(lr) or lr <= 0:
        raise ValueError("epochs and batch_size must be >= 1 and lr must be positive")
    if closed_loop < 0 or not 1 <= warmup < latent_sequences.shape[1]:
        raise ValueError("closed_loop must be >= 0 and warmup in 1..T-1")

    dev = torch.device(device)
    torch.manual_seed(seed)
    model = LatentLSTM(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    data = latent_sequences.to(dev, dtype=torch.float32)
    n = data.shape[0]
    run = EpochRun(
        "lstm",
        cfg.to_dict(),
        seed,
        model,
        opt,
        gen,
        resume_state,
        should_stop=should_stop,
        on_epoch=on_progress,
        on_checkpoint=on_checkpoint,
    )
    for epoch in run.epochs(epochs):
        perm = torch.randperm(n, generator=gen).to(dev)
        sums = {"loss": 0.0, "mse": 0.0, "nll": 0.0}
        for start in range(0, n, batch_size):
            run.check_stop(epoch)
            seq = data[perm[start : start + batch_size]]  # (B, T, D)
            mean, logvar, _ = model(seq[:, :-1])
            loss, mse, nll = lstm_loss(mean, logvar, seq[:, 1:])
            if closed_loop > 0:
                loss = loss + closed_loop * F.mse_loss(
                    _free_run(model, seq, warmup), seq[:, warmup:]
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            b = seq.shape[0]
            sums["loss"] += loss.item() * b
            sums["mse"] += mse.item() * b
            sums["nll"] += nll.item() * b
        run.end_epoch(epoch, sums, n)
    state = run.finish(epochs)
    return model, run.history, state


def _free_run(model: LatentLSTM, seq: torch.Tensor, warmup: int) -> torch.Tensor:
    """Predictions ``(B, T - warmup, D)`` for ``seq[:, warmup:]``, each step fed the previous
    prediction rather than the true latent."""
    mean, _, state = model(seq[:, :warmup])
    nxt = mean[:, -1:]  # (B, 1, D)
    preds = [nxt]
    for _ in range(warmup, seq.shape[1] - 1):
        nxt, _, state = model(nxt, state)
        preds.append(nxt)
    return torch.cat(preds, dim=1)  # (B, T - warmup, D)


def predict_next(model: LatentLSTM, latent_sequences: torch.Tensor) -> torch.Tensor:
    """Teacher-forced one-step predictions: ``(N, T, D)`` in, ``(N, T - 1, D)`` out, where
    row ``t`` predicts latent ``t + 1`` from latents ``0..t``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        mean, _, _ = model(latent_sequences[:, :-1].to(device, dtype=torch.float32))
    model.train(was_training)
    return mean.cpu()


def rollout(
    model: LatentLSTM,
    seed_latents: torch.Tensor,
    n: int,
    *,
    seed: int | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Continue the sequence ``seed_latents`` (T0, D) by ``n`` latents, returned as (n, D).

    With ``seed=None`` each step follows the predicted mean, so the same inputs give the same
    rollout on every worker. With a seed, each step samples ``mean + temperature * sigma *
    eps`` from a generator seeded with it: varied, but still reproducible.
    """
    if seed_latents.ndim != 2 or seed_latents.shape[0] < 1:
        raise ValueError(f"seed_latents must be (T0 >= 1, D), got {tuple(seed_latents.shape)}")
    if seed_latents.shape[1] != model.cfg.latent_dim:
        raise ValueError(
            f"seed latents have {seed_latents.shape[1]} dims, model expects {model.cfg.latent_dim}"
        )
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        mean, logvar, state = model(seed_latents.to(device, dtype=torch.float32).unsqueeze(0))
        for i in range(n):
            nxt = mean[:, -1]  # (1, D)
            if gen is not None:
                eps = torch.randn(nxt.shape, generator=gen).to(device)
                nxt = nxt + temperature * torch.exp(0.5 * logvar[:, -1]) * eps
            out.append(nxt[0].cpu())
            if i + 1 < n:
                mean, logvar, state = model(nxt.unsqueeze(1), state)  # (1, 1, D) in
    model.train(was_training)
    if not out:
        return seed_latents.new_empty((0, model.cfg.latent_dim), dtype=torch.float32)
    return torch.stack(out)  # (n, D)
