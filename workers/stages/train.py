"""Training stage: fit the model named in the spec and write its checkpoint artifact."""

from __future__ import annotations

import time

import torch

from farm.errors import TaskLost
from farm.outputs import confine
from workers.checkpoint import save_checkpoint, sha256_file
from workers.datasets import load_digits_images
from workers.device import device
from workers.models.vae import TrainingStopped, VAEConfig, train_vae
from workers.render import class_means
from workers.runner import Output, Result, TaskContext


def run(ctx: TaskContext) -> Result:
    spec = ctx.spec
    out = confine(ctx.settings.output_root_abs(), spec["output"])
    cfg = VAEConfig(image_size=spec["image_size"], latent_dim=spec["latent_dim"])
    images, labels = load_digits_images(cfg.image_size)
    started = time.monotonic()

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        ctx.progress({"epoch": epoch, "epochs": spec["epochs"], **metrics}, min_interval_s=1.0)

    try:
        model, history = train_vae(
            images,
            cfg,
            epochs=spec["epochs"],
            batch_size=spec["batch_size"],
            lr=spec["lr"],
            seed=spec["seed"],
            device=device(),
            on_epoch=on_epoch,
            should_stop=ctx.lost.is_set,
        )
    except TrainingStopped:
        raise TaskLost(f"task {ctx.task_id}: training stopped, task no longer ours") from None
    ctx.check()
    means = class_means(model.cpu(), images, labels)
    meta = {
        "family": "vae",
        "config": cfg.to_dict(),
        "dataset": spec["dataset"],
        "hyperparameters": {k: spec[k] for k in ("epochs", "batch_size", "lr", "seed")},
        "history": history,
        "class_means": means.tolist(),
        "train_seconds": round(time.monotonic() - started, 2),
        "torch": torch.__version__,
        "job_id": ctx.job_id,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, model, meta)
    final = history[-1] if history else {}
    return Result(
        [
            Output(
                "checkpoint",
                out,
                out.stat().st_size,
                sha256_file(out),
                {"family": "vae", "epochs": spec["epochs"], "loss": final.get("loss")},
            )
        ]
    )
