"""VAE / cVAE jobs: any image data set, in colour or as signed distance fields; class means
(an unconditional VAE on a labelled set) and style means (a set with styles) are stored."""

from __future__ import annotations

from typing import Any

from farm.families import VAE_DEFAULTS, size_defaults
from workers.models.vae import (
    ConvVAE,
    TrainState,
    VAEConfig,
    latent_means,
    load_module_tensors,
    train_vae,
)
from workers.trainers.base import Samples, Trained, TrainJob, samples

# The finest stage's width when the spec's size has no tuned row (a plugin-era size).
DEFAULT_WIDTH = 32


def config_for(job: TrainJob, data: Samples) -> VAEConfig:
    spec = job.spec
    size = int(spec["image_size"])
    cond = bool(spec["conditional"]) and data.labels is not None
    return VAEConfig(
        image_size=size,
        latent_dim=spec["latent_dim"],
        channels=size_defaults("vae", size).get("width", DEFAULT_WIDTH),
        num_classes=len(data.classes or ()) if cond else 0,
        image_channels=data.channels,
        target=data.target,
        # A spec stored before the field trained the concat model.
        conditioning=str(spec.get("conditioning") or "concat"),
        min_std=float(spec.get("min_std") or 0.0),
    )


def means(model: ConvVAE, data: Samples) -> dict[str, Any]:
    """``class_means`` on labelled data (a cVAE's are its latents' means given the class, the
    keyframes a render starts from) and ``style_means`` when the set has styles, in
    ``style_names`` order."""
    out: dict[str, Any] = {}
    if data.labels is not None and data.classes:
        out["class_means"] = latent_means(
            model, data.x, data.labels, len(data.classes), data.labels
        ).tolist()
    if data.styles is not None and data.style_names:
        out["style_means"] = latent_means(
            model, data.x, data.styles, len(data.style_names), data.labels
        ).tolist()
    return out


def train(job: TrainJob) -> Trained:
    spec = job.spec
    data = samples(job)
    cfg = config_for(job, data)
    epochs, every = int(spec["epochs"]), int(spec["checkpoint_every"])
    resume = job.resume_state("vae", cfg.to_dict())
    resumed_from = int(resume.counters["epoch"]) if resume is not None else 0

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
        job.save_model(partial, {**meta, **data.meta(), **means(partial, data), "partial": True})

    model, history = train_vae(
        data.x,
        cfg,
        epochs=epochs,
        batch_size=spec.get("batch_size", VAE_DEFAULTS["batch_size"]),
        lr=spec["lr"],
        seed=spec["seed"],
        device=job.device,
        labels=data.labels if cfg.num_classes else None,
        on_epoch=on_epoch,
        should_stop=job.should_stop,
        resume_state=resume,
        on_checkpoint=on_checkpoint,
        kl_warmup_epochs=int(spec.get("kl_warmup_epochs") or 0),  # 0: a spec from before it
    )
    model = model.cpu()
    meta = {
        "config": cfg.to_dict(),
        "history": history,
        "epoch": epochs,
        "resumed_from_epoch": resumed_from,
        **data.meta(),
        **means(model, data),
    }
    return Trained(model, meta)
