"""An action-conditioned recurrent model of a character's motion (``model: motion``).

A GRU reads the current pose (16 joint angles, the root's forward step and its height, see
:meth:`workers.datasets.motion.MotionClips.features`), the requested action as a weight per
action (one-hot, or a mix during a transition) and the cycle phase as ``(sin, cos)``, and
predicts the change to the next pose and how far the phase advances. The phase input is the
PFNN idea (Holden et al. 2017) at its smallest: a gait is periodic, so telling the network
where in the cycle it is removes most of what it would otherwise have to remember, and
predicting the phase step lets the rollout keep time by itself.

Training mixes teacher forcing with a free-running term (the model fed its own predictions),
the fix Martinez et al. (CVPR 2017) found necessary for long rollouts. :func:`rollout` is
deterministic: the seed only picks the starting pose among real ones stored in the model, and
every later frame follows the prediction, so any chunk of a render can replay it from frame 0
(:func:`frames_for`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.datasets.motion import (
    ACTIONS,
    FEET,
    JOINTS,
    MotionClips,
    forward_kinematics,
    place_root,
)
from workers.models.loop import EpochRun
from workers.models.vae import (
    TrainState,
)

# The default configuration trains in about a minute on an idle CPU core (docs/models.md).
DEFAULTS: dict[str, Any] = {
    "epochs": 150,
    "batch_size": 32,
    "lr": 3e-3,
    "hidden": 128,
    "closed_loop": 1.0,
    "noise": 0.05,
    "lr_floor": 0.05,
}
FEATURES = len(JOINTS) + 2


@dataclass
class MotionConfig:
    """Architecture hyperparameters; stored in checkpoints so the model can be rebuilt."""

    # Actions the model is conditioned on (the data set's classes, in order).
    num_actions: int = len(ACTIONS)
    # Pose features per frame: 16 angles, root step, root height.
    features: int = FEATURES
    # GRU width; 128 holds six periodic actions.
    hidden: int = 128
    # Stacked GRU layers.
    layers: int = 1
    # Real starting frames kept per action for rollouts to start from (picked by seed).
    starts: int = 8
    # The action weights also reach the output layer, which scales each feature's change by
    # a learned gain per action: without it a wave's legs inherit the walk's small swing.
    action_head: bool = True

    def __post_init__(self) -> None:
        if min(self.num_actions, self.features, self.hidden, self.layers, self.starts) < 1:
            raise ValueError("num_actions, features, hidden, layers and starts must be >= 1")

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


class MotionRNN(nn.Module):
    """GRU over ``(pose, action weights, sin/cos phase)``; outputs the normalised pose change
    and the phase step. Its buffers carry the data's normalisation and starting frames, so a
    checkpoint alone can roll out."""

    mean: torch.Tensor
    std: torch.Tensor
    dphase: torch.Tensor
    start_poses: torch.Tensor
    start_phase: torch.Tensor

    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gru = nn.GRU(cfg.features + cfg.num_actions + 2, cfg.hidden, cfg.layers,
                          batch_first=True)  # fmt: skip
        extra = cfg.num_actions if cfg.action_head else 0
        self.head = nn.Linear(cfg.hidden + extra, cfg.features + 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if cfg.action_head:
            self.gain = nn.Parameter(torch.ones(cfg.num_actions, cfg.features + 1))
        self.register_buffer("mean", torch.zeros(cfg.features))
        self.register_buffer("std", torch.ones(cfg.features))
        self.register_buffer("dphase", torch.ones(()))
        self.register_buffer("start_poses", torch.zeros(cfg.num_actions, cfg.starts, cfg.features))
        self.register_buffer("start_phase", torch.zeros(cfg.num_actions, cfg.starts))

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        phase: torch.Tensor,
        state: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` (B, T, F) normalised poses, ``weights`` (B, T, A), ``phase`` (B, T) radians;
        returns ``(next x (B, T, F), next phase (B, T), state)``."""
        inp = torch.cat([x, weights, torch.sin(phase)[..., None], torch.cos(phase)[..., None]],
                        dim=-1)  # fmt: skip
        h, state = self.gru(inp, state)  # (B, T, H)
        if self.cfg.action_head:
            out = self.head(torch.cat([h, weights], dim=-1)) * (weights @ self.gain)
        else:
            out = self.head(h)  # (B, T, F + 1)
        return x + out[..., :-1], phase + self.dphase * (1.0 + out[..., -1]), state


def _prepare(clips: MotionClips, cfg: MotionConfig) -> tuple[torch.Tensor, torch.Tensor]:
    feats = torch.from_numpy(clips.features())  # (N, T, F)
    if feats.shape[-1] != cfg.features:
        raise ValueError(f"clips have {feats.shape[-1]} features, cfg.features is {cfg.features}")
    if feats.shape[1] < 3:
        raise ValueError(f"clips need at least 3 frames, have {feats.shape[1]}")
    return feats, torch.from_numpy(clips.phase).float()


def _fill_buffers(
    model: MotionRNN, feats: torch.Tensor, phase: torch.Tensor, actions: np.ndarray
) -> None:
    """Normalisation from the data (a floor on the spread keeps constant angles harmless)
    and up to ``starts`` real first frames per action, repeated when an action has fewer."""
    flat = feats.reshape(-1, feats.shape[-1])
    model.mean.copy_(flat.mean(0))
    model.std.copy_(flat.std(0).clamp_min(0.02))
    model.dphase.copy_((phase[:, 1:] - phase[:, :-1]).mean().clamp_min(1e-3))
    for a in range(model.cfg.num_actions):
        rows = np.nonzero(actions == a)[0]
        if len(rows) == 0:
            rows = np.arange(len(actions))
        pick = rows[np.arange(model.cfg.starts) % len(rows)]
        model.start_poses[a] = feats[pick, 0]
        model.start_phase[a] = phase[pick, 0]


def motion_loss(
    model: MotionRNN,
    x: torch.Tensor,
    weights: torch.Tensor,
    phase: torch.Tensor,
    *,
    noise: float,
    closed_loop: float,
    warmup: int,
    gen: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Teacher-forced MSE on noisy inputs plus ``closed_loop`` times the MSE of a free run
    after ``warmup`` true frames; pose terms are in normalised units, the phase step in
    units of its mean."""
    noisy = x + noise * torch.randn(x.shape, generator=gen).to(x.device)
    pred, pred_phase, _ = model(noisy[:, :-1], weights[:, 1:], phase[:, :-1])
    pose = F.mse_loss(pred, x[:, 1:])
    step = F.mse_loss((pred_phase - phase[:, :-1]) / model.dphase,
                      (phase[:, 1:] - phase[:, :-1]) / model.dphase)  # fmt: skip
    loss = pose + step
    free = torch.zeros(())
    if closed_loop > 0:
        _, _, state = model(x[:, : warmup - 1], weights[:, 1:warmup], phase[:, : warmup - 1])
        cur, cur_phase = x[:, warmup - 1 : warmup], phase[:, warmup - 1 : warmup]
        preds = []
        for t in range(warmup, x.shape[1]):
            cur, cur_phase, state = model(cur, weights[:, t : t + 1], cur_phase, state)
            preds.append(cur)
        free = F.mse_loss(torch.cat(preds, dim=1), x[:, warmup:])
        loss = loss + closed_loop * free
    return loss, {"loss": loss.item(), "pose": pose.item(), "phase": step.item(),
                  "free": free.item()}  # fmt: skip


def train_motion(
    clips: MotionClips,
    cfg: MotionConfig,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume_state: TrainState | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    closed_loop: float = 1.0,
    noise: float = 0.05,
    warmup: int = 4,
    window: int = 24,
    clip: float = 1.0,
    lr_floor: float = 1.0,
) -> tuple[MotionRNN, list[dict[str, float]], TrainState]:
    """Train on ``clips``; returns ``(model in eval mode, per-epoch history, state)``.

    Like :func:`workers.models.lstm.train_lstm`: shuffling and input noise come from one CPU
    generator seeded with ``seed`` and stored in the state handed to ``on_checkpoint`` after
    every epoch, so a resumed run matches an uninterrupted one on CPU; ``should_stop`` is
    polled before every batch and raises :class:`TrainingStopped`. Each batch trains on a
    random ``window`` of frames of each clip: the free run costs one step per frame, and
    short windows at random offsets see every part of the cycles at a fraction of the cost.
    The learning rate follows a cosine from ``lr`` down to ``lr_floor * lr`` over the epochs
    (a function of the epoch, so a resumed run keeps it); ``lr_floor=1`` keeps it constant.
    """
    if epochs < 1 or batch_size < 1 or not math.isfinite(lr) or lr <= 0:
        raise ValueError("epochs and batch_size must be >= 1 and lr must be positive")
    if int(clips.actions.max()) >= cfg.num_actions:
        raise ValueError(f"clips have action {int(clips.actions.max())}, cfg has {cfg.num_actions}")
    feats, phase = _prepare(clips, cfg)
    window = min(window, feats.shape[1])
    if not 2 <= warmup < window:
        raise ValueError(f"warmup must be in 2..{window - 1} (window {window})")
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = MotionRNN(cfg)
    _fill_buffers(model, feats, phase, clips.actions)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    x = ((feats.to(dev) - model.mean) / model.std).float()  # (N, T, F)
    ph = phase.to(dev)
    onehot = F.one_hot(torch.from_numpy(clips.actions), cfg.num_actions).float().to(dev)
    weights = onehot[:, None, :].expand(-1, x.shape[1], -1)  # (N, T, A)
    n = x.shape[0]
    run = EpochRun(
        "motion",
        cfg.to_dict(),
        seed,
        model,
        opt,
        gen,
        resume_state,
        should_stop=should_stop,
        on_epoch=on_epoch,
        on_checkpoint=on_checkpoint,
    )
    for epoch in run.epochs(epochs, lr, lr_floor):
        perm = torch.randperm(n, generator=gen).to(dev)
        sums: dict[str, float] = {}
        for start in range(0, n, batch_size):
            run.check_stop(epoch)
            idx = perm[start : start + batch_size]
            off = torch.randint(x.shape[1] - window + 1, (len(idx), 1), generator=gen)
            rows, cols = idx[:, None], (off + torch.arange(window)).to(dev)  # (B, W)
            loss, parts = motion_loss(model, x[rows, cols], weights[rows, cols], ph[rows, cols],
                                      noise=noise,
                                      closed_loop=closed_loop, warmup=warmup, gen=gen)  # fmt: skip
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
        run.end_epoch(epoch, sums, n)
    state = run.finish(epochs)
    return model, run.history, state


Schedule = Sequence[tuple[str | int, int]]


def action_weights(schedule: Schedule, num_actions: int, blend: int) -> torch.Tensor:
    """Per-frame action weights ``(T, A)`` for ``[(action, frames), ...]``: one-hot within an
    action, and over the first ``blend`` frames of each later action a smoothstep from the
    previous action's weights to its own."""
    if blend < 0:
        raise ValueError(f"blend must be >= 0, got {blend}")
    rows: list[torch.Tensor] = []
    prev: torch.Tensor | None = None
    for action, frames in schedule:
        if isinstance(action, str) and action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (have {', '.join(ACTIONS)})")
        a = ACTIONS.index(action) if isinstance(action, str) else int(action)
        if not 0 <= a < num_actions or frames < 1:
            raise ValueError(f"bad schedule entry {(action, frames)!r}")
        target = F.one_hot(torch.tensor(a), num_actions).float()
        for i in range(frames):
            if prev is not None and i < blend:
                s = (i + 1) / (blend + 1)
                s = s * s * (3 - 2 * s)
                rows.append(prev + s * (target - prev))
            else:
                rows.append(target)
        prev = target
    if not rows:
        raise ValueError("the schedule has no frames")
    return torch.stack(rows)


@dataclass
class Rollout:
    """A generated shot: ``features`` (T, F), ``phase`` (T,), ``angles`` (T, 16), ``root``
    (T, 2) and ``positions`` (T, 16, 2), numpy float64 except ``features``."""

    features: np.ndarray
    phase: np.ndarray
    angles: np.ndarray
    root: np.ndarray
    positions: np.ndarray


def rollout(
    model: MotionRNN,
    schedule: Schedule,
    seed: int,
    n_frames: int | None = None,
    *,
    blend: int = 8,
    ground: bool = True,
) -> Rollout:
    """Generate the shot ``schedule`` (``[("walk", 48), ("jump", 24)]``), ``n_frames`` long
    (default: the schedule's length; extra frames hold the last action, fewer cut it short:
    the first frames are the same either way).

    The seed picks the first frame among the real starting frames the model keeps for the
    first action; after that each frame follows the prediction, one frame at a time at batch
    one, so the same inputs give the same frames bit for bit on one device. ``ground``
    plants the feet (:func:`_pose`).
    """
    w = action_weights(schedule, model.cfg.num_actions, blend)
    n = len(w) if n_frames is None else n_frames
    if n < 1:
        raise ValueError(f"n_frames must be >= 1, got {n}")
    w = torch.cat([w, w[-1:].expand(n - len(w), -1)]) if n > len(w) else w[:n]
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    first = int(torch.argmax(w[0]))
    k = int(torch.randint(model.cfg.starts, (1,), generator=gen))
    was_training = model.training
    model.eval()
    w = w.to(device)
    with torch.inference_mode():
        cur = ((model.start_poses[first, k] - model.mean) / model.std).view(1, 1, -1)
        cur_phase = model.start_phase[first, k].view(1, 1)
        xs, phases, state = [cur], [cur_phase], None
        for t in range(1, n):
            cur, cur_phase, state = model(cur, w[t].view(1, 1, -1), cur_phase, state)
            xs.append(cur)
            phases.append(cur_phase)
        x = torch.cat(xs, dim=1)[0] * model.std + model.mean  # (T, F)
        phase = torch.cat(phases, dim=1)[0]
    model.train(was_training)
    return _pose(x.cpu().numpy(), phase.cpu().numpy(), ground)


def _pose(features: np.ndarray, phase: np.ndarray, ground: bool) -> Rollout:
    """Poses from predicted features; with ``ground``, the feet are planted as the data's
    are: the root is lifted where a foot would go through the floor, and while a foot is down
    the step forward is what keeps it in place (the predicted step only in flight), so
    generated feet do not skate."""
    angles = features[:, : len(JOINTS)].astype(np.float64)
    dx = features[:, len(JOINTS)].astype(np.float64)
    height = features[:, len(JOINTS) + 1].astype(np.float64)
    if ground:
        feet = forward_kinematics(angles, np.zeros((len(angles), 2)))[:, FEET, 1]  # (T, 2)
        lift = np.maximum(height + feet.min(axis=1), 0.0)
        root, _, _ = place_root(angles, lift, flight_dx=dx)
    else:
        root = np.stack([np.cumsum(dx) - dx[0], height], axis=1)
    return Rollout(features, phase.astype(np.float64), angles, root,
                   forward_kinematics(angles, root))  # fmt: skip


def frames_for(
    model: MotionRNN,
    schedule: Schedule,
    seed: int,
    frames: Sequence[int],
    *,
    n_frames: int | None = None,
    blend: int = 8,
) -> np.ndarray:
    """Joint positions ``(len(frames), 16, 2)`` of the shot's frames ``frames`` (0-based),
    the same for any chunking: the rollout is replayed from frame 0 up to the last frame
    asked for (a few milliseconds per hundred frames for the default model)."""
    if not frames:
        return np.zeros((0, len(JOINTS), 2))
    if min(frames) < 0:
        raise ValueError("frames are 0-based and non-negative")
    last = max(frames) + 1
    if n_frames is not None and last > n_frames:
        raise ValueError(f"frame {last - 1} is past the shot's {n_frames} frames")
    return rollout(model, schedule, seed, last, blend=blend).positions[list(frames)]
