"""Training stage: run the trainer of the spec's family and record its checkpoint artifact.

A redelivered task (the worker died, or its lease lapsed) resumes from the resume file its
last attempt saved next to the checkpoint, so a long run loses at most ``checkpoint_every``.
"""

from __future__ import annotations

import time

from farm.errors import TaskLost
from farm.outputs import confine
from workers.checkpoint import sha256_file
from workers.context import Output, PermanentError, Result, TaskContext
from workers.device import device
from workers.models import PluginError, UnknownModelFamily, get_family
from workers.models.vae import TrainingStopped
from workers.trainers import TRAINERS, Trainer, TrainJob


def plugin_trainer(family: str) -> Trainer | None:
    """A plugin family's farm trainer, loaded through the ``farm.models`` entry points."""
    try:
        found = get_family(family)
    except (UnknownModelFamily, PluginError) as e:
        raise PermanentError(str(e)) from e
    return found.farm_trainer


def run(ctx: TaskContext) -> Result:
    spec = ctx.spec
    family = str(spec.get("model", "vae"))
    trainer = TRAINERS.get(family) or plugin_trainer(family)
    if trainer is None:
        known = ", ".join(sorted(TRAINERS))
        raise PermanentError(f"no farm trainer for model family {family!r} (have {known})")
    out = confine(ctx.settings.output_root_abs(), spec["output"])
    out.parent.mkdir(parents=True, exist_ok=True)
    job = TrainJob(ctx, out, device())
    started = time.monotonic()
    try:
        trained = trainer(job)
    except TrainingStopped:
        raise TaskLost(f"task {ctx.task_id}: training stopped, task no longer ours") from None
    ctx.check()
    job.save_model(
        trained.model, {**trained.meta, "train_seconds": round(time.monotonic() - started, 2)}
    )
    history = trained.meta.get("history") or [{}]
    summary = {
        "family": family,
        "epochs": spec.get("epochs"),
        "steps": spec.get("steps"),
        "loss": history[-1].get("loss", history[-1].get("loss_g")),
        **{k: v for k, v in trained.meta.items() if k.startswith("resumed_from")},
    }
    outputs = [Output("checkpoint", out, out.stat().st_size, sha256_file(out), summary)]
    for kind, path, meta in trained.extra:
        outputs.append(Output(kind, path, path.stat().st_size, sha256_file(path), meta))
    return Result(outputs)
