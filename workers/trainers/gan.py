"""GAN jobs: hinge-loss cGAN (or unconditional on unlabelled images), counted in steps, in
colour or as signed distance fields."""

from __future__ import annotations

from farm.families import GAN_DEFAULTS, size_defaults
from workers.models.gan import GANConfig, Generator, train_gan
from workers.models.vae import TrainState, load_module_tensors
from workers.trainers.base import Samples, Trained, TrainJob, samples


def config_for(job: TrainJob, data: Samples) -> GANConfig:
    spec = job.spec
    size = int(spec["image_size"])
    cond = bool(spec["conditional"]) and data.labels is not None
    width = size_defaults("gan", size).get("width", GAN_DEFAULTS["channels"])
    return GANConfig(
        image_size=size,
        latent_dim=spec["latent_dim"],
        num_classes=len(data.classes or ()) if cond else 0,
        channels=width,
        d_channels=width,
        image_channels=data.channels,
        target=data.target,
    )


def train(job: TrainJob) -> Trained:
    spec = job.spec
    data = samples(job)
    cfg = config_for(job, data)
    steps, every = int(spec["steps"]), int(spec["checkpoint_every"])
    resume = job.resume_state("gan", cfg.to_dict())
    resumed_from = int(resume.counters["step"]) if resume is not None else 0
    # Keep the tuned discriminator / generator learning-rate ratio (TTUR) for any lr.
    d_lr = spec["lr"] * GAN_DEFAULTS["d_lr"] / GAN_DEFAULTS["lr"]

    def on_progress(step: int, record: dict[str, float]) -> None:
        job.progress({**record, "step": step, "steps": steps, "resumed_from": resumed_from})

    def on_checkpoint(state: TrainState) -> None:
        step = int(state.counters["step"])
        if step >= steps:
            return
        job.save_state(state)
        partial = Generator(cfg)
        load_module_tensors("EMA", partial, state.tensors)
        partial.eval()
        meta = {"config": cfg.to_dict(), "history": state.counters["history"], "step": step}
        job.save_model(partial, {**meta, **data.meta(), "partial": True})

    generator, history, _ = train_gan(
        data.x,
        data.labels if cfg.num_classes else None,
        cfg,
        steps=steps,
        batch_size=spec["batch_size"],
        lr=spec["lr"],
        d_lr=d_lr,
        betas=tuple(GAN_DEFAULTS["betas"]),
        ema_decay=GAN_DEFAULTS["ema_decay"],
        seed=spec["seed"],
        device=job.device,
        log_every=max(1, min(50, every)),
        on_progress=on_progress,
        should_stop=job.should_stop,
        resume_state=resume,
        on_checkpoint=on_checkpoint,
        checkpoint_every=every,
    )
    meta = {
        "config": cfg.to_dict(),
        "history": history,
        "step": steps,
        "resumed_from_step": resumed_from,
        **data.meta(),
    }
    return Trained(generator.cpu(), meta)
