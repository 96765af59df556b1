"""LSTM jobs: the World Models recipe. A frame VAE is trained on the clips' frames first and
saved beside the LSTM's checkpoint; the LSTM then learns the dynamics of its latents. The
frame VAE is the VAE's architecture at the job's size, in the frames' colour channels."""

from __future__ import annotations

import torch

from farm.families import FRAME_VAE_SIZES, LSTM_DEFAULTS
from workers.checkpoint import CheckpointError, load_checkpoint, sha256_file
from workers.context import PermanentError
from workers.datasets import DatasetError, convert_channels, moving_digits
from workers.models.lstm import LSTMConfig, train_lstm
from workers.models.vae import ConvVAE, TrainState, VAEConfig, train_vae
from workers.trainers.base import Trained, TrainJob


def clips_of(job: TrainJob) -> torch.Tensor:
    """Training clips ``(N, T, C, S, S)``: moving digits (grey unless ``channels`` says), or
    a video cut into clips (its own colour unless ``channels`` says)."""
    spec = job.spec
    size, length = int(spec["image_size"]), int(LSTM_DEFAULTS["clip_len"])
    if spec["dataset"] == "moving-digits":
        clips = moving_digits(
            int(spec["clips"]), length, canvas=size, digit_size=size // 2, seed=spec["seed"]
        )
        return convert_channels(clips, int(spec.get("channels") or 1)).contiguous()
    frames = job.dataset().data  # (N, C, S, S)
    n = frames.shape[0] // length
    if n < 1:
        raise PermanentError(f"{spec['dataset']}: fewer than {length} frames, not one clip")
    return frames[: n * length].reshape(n, length, *frames.shape[1:])


def frame_vae(job: TrainJob, frames: torch.Tensor) -> ConvVAE:
    """Train the frame VAE, or on a redelivery reuse the one an earlier attempt saved."""
    spec = job.spec
    size = int(spec["image_size"])
    tuned = {
        "channels": FRAME_VAE_SIZES.get(size, {}).get("width", LSTM_DEFAULTS["vae"]["channels"])
    }
    given = {k: v for k, v in (spec.get("frame_vae") or {}).items() if v}
    fv = {**LSTM_DEFAULTS["vae"], **tuned, **given}
    cfg = VAEConfig(
        image_size=size,
        latent_dim=spec["latent_dim"],
        channels=fv["channels"],
        image_channels=int(frames.shape[1]),
    )
    path = job.sibling(".frame-vae.safetensors")
    if job.ctx.attempt > 1 and path.is_file():
        try:
            weights, meta = load_checkpoint(path)
            if meta.get("config") == cfg.to_dict() and meta.get("job_id") == job.ctx.job_id:
                model = ConvVAE(cfg)
                model.load_state_dict(weights)
                return model.eval()
        except CheckpointError:
            pass

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        job.progress({**metrics, "phase": "frame_vae", "epoch": epoch, "epochs": fv["epochs"]})

    model, history = train_vae(
        frames,
        cfg,
        epochs=fv["epochs"],
        batch_size=fv["batch_size"],
        lr=fv["lr"],
        seed=spec["seed"],
        device=job.device,
        on_epoch=on_epoch,
        should_stop=job.should_stop,
    )
    model = model.cpu()
    meta = {"family": "vae", "config": cfg.to_dict(), "history": history, "role": "frame_vae"}
    job.save_model(model, meta, path)
    return model


def train(job: TrainJob) -> Trained:
    spec = job.spec
    try:
        clips = clips_of(job)
    except DatasetError as e:
        raise PermanentError(str(e)) from e
    n, t = clips.shape[:2]
    vae = frame_vae(job, clips.reshape(n * t, *clips.shape[2:]))
    with torch.inference_mode():
        mu, _ = vae.encode(clips.reshape(n * t, *clips.shape[2:]))
    latents = mu.reshape(n, t, -1).clone()  # (N, T, D)
    cfg = LSTMConfig(latent_dim=spec["latent_dim"], hidden=spec["hidden"])
    epochs, every = int(spec["epochs"]), int(spec["checkpoint_every"])
    resume = job.resume_state("lstm", cfg.to_dict())
    resumed_from = int(resume.counters["epoch"]) if resume is not None else 0

    def on_progress(epoch: int, record: dict[str, float]) -> None:
        job.progress(
            {
                **record,
                "phase": "lstm",
                "epoch": epoch,
                "epochs": epochs,
                "resumed_from": resumed_from,
            }
        )

    def on_checkpoint(state: TrainState) -> None:
        epoch = int(state.counters["epoch"])
        if epoch % every == 0 and epoch < epochs:
            job.save_state(state)

    model, history, _ = train_lstm(
        latents,
        cfg,
        epochs=epochs,
        batch_size=spec["batch_size"],
        lr=spec["lr"],
        seed=spec["seed"],
        device=job.device,
        closed_loop=LSTM_DEFAULTS["closed_loop"],
        warmup=min(4, t - 1),
        on_progress=on_progress,
        should_stop=job.should_stop,
        resume_state=resume,
        on_checkpoint=on_checkpoint,
    )
    vae_path = job.sibling(".frame-vae.safetensors")
    frame = {"path": str(vae_path), "sha256": sha256_file(vae_path), "config": vae.cfg.to_dict()}
    meta = {
        "config": cfg.to_dict(),
        "history": history,
        "epoch": epochs,
        "resumed_from_epoch": resumed_from,
        "frame_vae": frame,
        "clip_len": t,
    }
    extra = [("frame_vae", vae_path, {"family": "vae", "config": vae.cfg.to_dict()})]
    return Trained(model.cpu(), meta, extra)
