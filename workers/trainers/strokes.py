"""Stroke jobs (``model: strokes``): the class-conditional sketch-RNN decoder on the Hershey
glyphs of ``dataset: strokes`` (its ``charset`` are the classes). The metadata names the
characters in label order (what ``mode: write`` may write), the fonts it was trained on in
style order (``style_names``: what a write's ``style`` may name) and the offsets' normaliser."""

from __future__ import annotations

from farm.families import STROKES_DEFAULTS
from workers.context import PermanentError
from workers.datasets.strokes import StrokeSet
from workers.models.strokes import StrokesConfig, train_strokes, trained_styles
from workers.trainers.base import Trained, TrainJob


def strokes_of(job: TrainJob) -> StrokeSet:
    strokes = job.dataset().meta.get("strokes")
    if not isinstance(strokes, StrokeSet):
        raise PermanentError(f"dataset: {job.spec['dataset']!r} holds no pen strokes")
    return strokes


def train(job: TrainJob) -> Trained:
    spec = job.spec
    strokes = strokes_of(job)
    fonts = trained_styles(strokes)
    cfg = StrokesConfig(
        num_classes=len(strokes.classes),
        num_styles=len(fonts),
        hidden=int(spec["hidden"]),
        mixtures=int(STROKES_DEFAULTS["mixtures"]),
    )
    epochs = int(spec["epochs"])
    hooks = job.epoch_hooks("strokes", cfg.to_dict())

    model, history, _ = train_strokes(
        strokes,
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
        augment=float(STROKES_DEFAULTS["augment"]),
        lr_floor=float(STROKES_DEFAULTS["lr_floor"]),
        style_dropout=float(STROKES_DEFAULTS["style_dropout"]),
        dequantise_cells=float(STROKES_DEFAULTS["dequantise"]),
    )
    meta = {
        "config": cfg.to_dict(),
        "history": history,
        "epoch": epochs,
        "resumed_from_epoch": hooks.resumed_from,
        "classes": list(strokes.classes),
        "style_names": fonts,
        "scale": float(strokes.scale),
        "glyphs": len(strokes),
    }
    return Trained(model.cpu(), meta)
