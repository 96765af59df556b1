"""What every family's trainer shares: data, progress, periodic checkpoints and resume files.

Trainers are farm glue (task context, artifacts, resume on redelivery), so they live here and
not on the ``ModelFamily`` registry entries, which stay free of any ``farm`` import.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from farm.inputs import OutsideInputRoots, dataset_input, input_roots
from farm.specs import dataset_options
from workers.checkpoint import resume_path, save_checkpoint
from workers.context import PermanentError, TaskContext
from workers.datasets import Dataset, DatasetError, load_dataset
from workers.models.vae import TrainState, check_resume, load_train_state, save_train_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochHooks:
    """:meth:`TrainJob.epoch_hooks`: the state to resume from (None: start afresh), its
    epoch, and the callbacks an epoch loop takes."""

    resume: TrainState | None
    resumed_from: int
    on_epoch: Callable[[int, dict[str, float]], None]
    on_checkpoint: Callable[[TrainState], None]


def farm_version() -> str:
    try:
        return importlib.metadata.version("farm")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Trained:
    """A finished run: the model to save as the job's checkpoint and its family-specific
    metadata (config, history, ...), plus any further artifacts (the LSTM's frame VAE)."""

    model: nn.Module
    meta: dict[str, Any]
    extra: list[tuple[str, Path, dict[str, Any]]] = field(default_factory=list)


@dataclass
class TrainJob:
    ctx: TaskContext
    out: Path
    device: torch.device

    @property
    def spec(self) -> dict[str, Any]:
        return self.ctx.spec

    @property
    def state_path(self) -> Path:
        """The resume file, next to the checkpoint it belongs to."""
        return resume_path(self.out)

    def sibling(self, suffix: str) -> Path:
        return self.out.with_name(self.out.stem + suffix)

    def should_stop(self) -> bool:
        return self.ctx.lost.is_set()

    def progress(self, values: Mapping[str, Any]) -> None:
        self.ctx.progress(dict(values), min_interval_s=1.0)

    @property
    def target(self) -> str:
        return str(self.spec.get("target") or "pixels")

    def dataset(self) -> Dataset:
        """The spec's data set with its options (target, channels, charset, fonts...); a
        missing, undecodable or unreadable one (outside this worker's input roots, e.g. a link
        changed since submission) fails the task at once. So does ``target: sdf`` on images
        without alpha, which only the files can tell: named as ``target``."""
        spec = self.spec
        name = str(spec["dataset"])
        roots = input_roots(self.ctx.settings)
        try:
            path = dataset_input(roots, name)
        except OutsideInputRoots as e:  # from None: the runner shows a cause instead, unnamed
            raise PermanentError(f"dataset: {e}") from None
        if path is not None:
            name = f"{name.partition(':')[0]}:{path}"
        size, seed = int(self.spec["image_size"]), int(self.spec["seed"])
        try:
            data = load_dataset(name, size, seed=seed, options=dataset_options(spec), roots=roots)
        except DatasetError as e:
            if self.target == "sdf" and "sdf" in str(e):
                raise PermanentError(f"target: {e}") from e
            raise PermanentError(f"data set {spec['dataset']!r}: {e}") from e
        if self.target == "sdf" and data.sdf is None:
            raise PermanentError(f"target: sdf needs shapes, and {spec['dataset']!r} has none")
        return data

    def resume_state(self, family: str, config: Mapping[str, Any]) -> TrainState | None:
        """The last saved state of this task, if this is a redelivery and it fits the run."""
        if self.ctx.attempt <= 1 or not self.state_path.is_file():
            return None
        try:
            state = load_train_state(self.state_path)
            check_resume(state, family, config, int(self.spec["seed"]))
        except (ValueError, OSError) as e:
            log.warning("task %s: not resuming from %s: %s", self.ctx.task_id, self.state_path, e)
            return None
        return state

    def save_state(self, state: TrainState) -> None:
        save_train_state(self.state_path, state)

    def epoch_hooks(self, family: str, config: Mapping[str, Any]) -> EpochHooks:
        """Resume and reporting for a trainer that counts epochs (``epochs`` and
        ``checkpoint_every`` from the spec): what to resume from, progress after each epoch,
        and a resume file every ``checkpoint_every`` epochs before the last."""
        epochs, every = int(self.spec["epochs"]), int(self.spec["checkpoint_every"])
        resume = self.resume_state(family, config)
        resumed_from = int(resume.counters["epoch"]) if resume is not None else 0

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            self.progress(
                {**metrics, "epoch": epoch, "epochs": epochs, "resumed_from": resumed_from}
            )

        def on_checkpoint(state: TrainState) -> None:
            epoch = int(state.counters["epoch"])
            if epoch % every == 0 and epoch < epochs:
                self.save_state(state)

        return EpochHooks(resume, resumed_from, on_epoch, on_checkpoint)

    def base_meta(self) -> dict[str, Any]:
        spec = self.spec
        keys = (
            "epochs",
            "steps",
            "batch_size",
            "lr",
            "kl_warmup_epochs",
            "seed",
            "checkpoint_every",
            "conditional",
        )
        return {
            "family": spec["model"],
            "dataset": spec["dataset"],
            "hyperparameters": {k: spec.get(k) for k in keys if spec.get(k) is not None},
            "dataset_options": dataset_options(spec),
            "torch": torch.__version__,
            "farm": farm_version(),
            "job_id": self.ctx.job_id,
        }

    def save_model(
        self, model: nn.Module, meta: Mapping[str, Any], path: Path | None = None
    ) -> None:
        save_checkpoint(path or self.out, model, {**self.base_meta(), **meta})


@dataclass
class Samples:
    """A job's training samples as the models take them: images ``(N, C, S, S)`` in [0, 1],
    or for ``target: sdf`` the fields ``(N, 1, S, S)`` in [-1, 1]; clips are cut into their
    frames. ``labels`` and ``styles`` as the data set has them."""

    x: torch.Tensor
    target: str
    labels: torch.Tensor | None = None
    classes: list[str] | None = None
    styles: torch.Tensor | None = None
    style_names: list[str] | None = None
    sdf_spread_px: float = 4.0

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])

    def meta(self) -> dict[str, Any]:
        """The contract's metadata about the data: class names, the field's spread, styles."""
        out: dict[str, Any] = {}
        if self.labels is not None and self.classes:
            out["classes"] = list(self.classes)
        if self.target == "sdf":
            out["sdf_spread_px"] = self.sdf_spread_px
        if self.style_names:
            out["style_names"] = list(self.style_names)
        return out


def samples(job: TrainJob) -> Samples:
    data = job.dataset()
    x = data.sdf if job.target == "sdf" and data.sdf is not None else data.data
    if data.is_sequences:  # clips: every frame is a training image
        x = x.reshape(-1, *x.shape[2:])  # (N * T, C, S, S)
    return Samples(
        x,
        job.target,
        data.labels if not data.is_sequences else None,
        data.classes,
        data.styles,
        data.style_names,
        data.sdf_spread_px,
    )
