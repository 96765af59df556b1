"""Motion jobs (``model: motion``): the action-conditioned GRU on ``dataset: motion`` or a
user's BVH capture (``bvh:<file or folder>``), whose clips the loader keeps in
``meta["clips"]``. The model's buffers carry the normalisation and the starting poses, so
the checkpoint alone can roll out; its metadata names the actions in label order."""

from __future__ import annotations

from farm.families import MOTION_DEFAULTS
from workers.context import PermanentError
from workers.datasets.motion import ACTIONS, JOINTS, MotionClips
from workers.models.motion import MotionConfig, train_motion
from workers.trainers.base import Trained, TrainJob


def clips_of(job: TrainJob) -> MotionClips:
    clips = job.dataset().meta.get("clips")
    if not isinstance(clips, MotionClips):
        raise PermanentError(f"dataset: {job.spec['dataset']!r} holds no motion clips")
    return clips


def train(job: TrainJob) -> Trained:
    spec = job.spec
    clips = clips_of(job)
    cfg = MotionConfig(num_actions=len(ACTIONS), hidden=int(spec["hidden"]))
    epochs = int(spec["epochs"])
    hooks = job.epoch_hooks("motion", cfg.to_dict())

    model, history, _ = train_motion(
        clips,
        cfg,
        epochs=epochs,
        batch_size=int(spec["batch_size"]),
        lr=float(spec["lr"]),
        seed=int(spec["seed"]),
        device=job.device,
        on_epoch=hooks.on_epoch,
        should_stop=job.should_stop,
        resume_state=hooks.resume,
        on_checkpoint=hooks.on_checkpoint,
        closed_loop=float(MOTION_DEFAULTS["closed_loop"]),
        noise=float(MOTION_DEFAULTS["noise"]),
        lr_floor=float(MOTION_DEFAULTS["lr_floor"]),
    )
    meta = {
        "config": cfg.to_dict(),
        "history": history,
        "epoch": epochs,
        "resumed_from_epoch": hooks.resumed_from,
        "classes": list(ACTIONS),
        # The actions with clips: a render of any other is refused at submission.
        "trained_classes": [a for i, a in enumerate(ACTIONS) if (clips.actions == i).any()],
        "joints": list(JOINTS),
        "fps": float(clips.fps),
        "clips": len(clips),
    }
    return Trained(model.cpu(), meta)
