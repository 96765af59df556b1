"""The scaffolding the epoch-based sequence trainers (``lstm``, ``motion``, ``strokes``) share:
restoring a resume state, capturing one after each epoch, polling ``should_stop``, the
per-epoch history and callbacks, and a cosine learning-rate schedule.

Each trainer keeps its own loss and batching; :class:`EpochRun` holds what makes a run
resumable bit for bit on CPU: the model, the optimiser, the one CPU generator every random
draw comes from, and the history, stored as a :class:`~workers.models.vae.TrainState`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from workers.models.vae import (
    TrainingStopped,
    TrainState,
    check_resume,
    load_module_tensors,
    load_optimizer_tensors,
    module_tensors,
    optimizer_tensors,
)

OnEpoch = Callable[[int, dict[str, float]], None]


def cosine_lr(lr: float, floor: float, epoch: int, epochs: int) -> float:
    """The learning rate of ``epoch`` (1-based) of ``epochs``: ``lr`` at the first, falling
    along a half cosine to ``floor * lr`` at the last. A function of the epoch alone, so a
    resumed run follows the same schedule; ``floor=1`` keeps the rate constant."""
    done = (epoch - 1) / max(epochs - 1, 1)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done)))


class EpochRun:
    """One resumable training run of ``family``; restores ``resume_state`` (after checking
    its family, config and seed) into ``model``, ``opt`` and ``gen`` on construction."""

    def __init__(
        self,
        family: str,
        config: Mapping[str, Any],
        seed: int,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        gen: torch.Generator,
        resume_state: TrainState | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        on_epoch: OnEpoch | None = None,
        on_checkpoint: Callable[[TrainState], None] | None = None,
    ) -> None:
        self.family, self.config, self.seed = family, dict(config), seed
        self.model, self.opt, self.gen = model, opt, gen
        self.should_stop, self.on_epoch, self.on_checkpoint = should_stop, on_epoch, on_checkpoint
        self.history: list[dict[str, float]] = []
        self.first = 1
        if resume_state is not None:
            check_resume(resume_state, family, self.config, seed)
            load_module_tensors("model", model, resume_state.tensors)
            load_optimizer_tensors("opt", opt, resume_state.tensors)
            gen.set_state(resume_state.tensors["rng.gen"])
            self.history = [dict(r) for r in resume_state.counters["history"]]
            self.first = int(resume_state.counters["epoch"]) + 1
        self.last = self.first - 1

    def capture(self, epoch: int) -> TrainState:
        tensors = {**module_tensors("model", self.model), **optimizer_tensors("opt", self.opt),
                   "rng.gen": self.gen.get_state()}  # fmt: skip
        counters = {"family": self.family, "config": self.config, "seed": self.seed,
                    "epoch": epoch, "history": self.history}  # fmt: skip
        return TrainState(tensors=tensors, counters=json.loads(json.dumps(counters)))

    def epochs(self, epochs: int, lr: float | None = None, lr_floor: float = 1.0) -> Iterator[int]:
        """The epochs still to run, ``first..epochs``, the model in train mode; with ``lr``,
        each epoch's rate is set from :func:`cosine_lr` first."""
        self.model.train()
        for epoch in range(self.first, epochs + 1):
            if lr is not None:
                for group in self.opt.param_groups:
                    group["lr"] = cosine_lr(lr, lr_floor, epoch, epochs)
            self.last = epoch
            yield epoch

    def check_stop(self, epoch: int) -> None:
        """Polled before every batch: :class:`TrainingStopped` when ``should_stop`` says so."""
        if self.should_stop is not None and self.should_stop():
            raise TrainingStopped(f"training stopped during epoch {epoch}")

    def end_epoch(self, epoch: int, sums: Mapping[str, float], n: int) -> dict[str, float]:
        """Record the epoch's means (``sums`` over ``n`` samples), report it and offer a
        resume state."""
        record = {"epoch": float(epoch), **{k: v / n for k, v in sums.items()}}
        self.history.append(record)
        if self.on_epoch is not None:
            self.on_epoch(epoch, record)
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.capture(epoch))
        return record

    def finish(self, epochs: int) -> TrainState:
        """After the last epoch: a last ``should_stop`` poll, the model in eval mode, and the
        final state."""
        if self.should_stop is not None and self.should_stop():
            raise TrainingStopped("training stopped after the last epoch")
        self.model.eval()
        return self.capture(max(self.last, epochs))
