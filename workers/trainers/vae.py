"""VAE / cVAE jobs: any image data set; class means are stored when the set is labelled."""

from __future__ import annotations

from typing import Any

import torch

from farm.families import NUM_CLASSES
from workers.models.vae import (
    ConvVAE,
    TrainState,
    VAEConfig,
    load_module_tensors,
    train_vae,
)
from workers.render import class_means
from workers.trainers.base import Trained, TrainJob


def images_of(job: TrainJob) -> tuple[torch.Tensor, torch.Tensor | None]:
    data = job.dataset()
    x = data.data
    if data.is_sequences:  # clips: every frame is a training image
        x = x.reshape(-1, *x.shape[2:])
    return x, data.labels


def train(job: TrainJob) -> Trained:
    spec = job.spec
    images, labels = images_of(job)
    cond = bool(spec["conditional"])
    cfg = VAEConfig(
        image_size=spec["image_size"],
        latent_dim=spec["latent_dim"],
        num_classes=NUM_CLASSES if cond else 0,
    )
    epochs, every = int(spec["epochs"]), int(spec["checkpoint_every"])
    resume = job.resume_state("vae", cfg.to_dict())
    resumed_from = int(resume.counters["epoch"]) if resume is not None else 0

    def extras(model: ConvVAE) -> dict[str, Any]:
        if labels is None:
            return {}
        return {"class_means": class_means(model, images, labels).tolist()}

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        job.progress({**metrics, "epoch": epoch, "epochs": epochs, "resumed_from": resumed_from})

    def on_checkpoint(state: TrainState) -> None:
        epoch = int(state.counters["epoch"])
        if epoch % every or epoch >= epochs:
            return
        job.save_state(state)
        partial = ConvVAE(cfg)
        load_module_tensors("model", partial, state.tensors)
        partial.eval()
        meta = {"config": cfg.to_dict(), "history": state.counters["history"], "epoch": epoch}
        job.save_model(partial, {**meta, **extras(partial), "partial": True})

    model, history = train_vae(
        images,
        cfg,
        epochs=epochs,
        batch_size=spec["batch_size"],
        lr=spec["lr"],
        seed=spec["seed"],
        device=job.device,
        labels=labels if cond else None,
        on_epoch=on_epoch,
        should_stop=job.should_stop,
        resume_state=resume,
        on_checkpoint=on_checkpoint,
    )
    model = model.cpu()
    meta = {
        "config": cfg.to_dict(),
        "history": history,
        "epoch": epochs,
        "resumed_from_epoch": resumed_from,
        **extras(model),
    }
    return Trained(model, meta)
