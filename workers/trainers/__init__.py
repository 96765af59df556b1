"""Trainers, one module per built-in family, looked up by the spec's ``model`` name."""

from __future__ import annotations

from collections.abc import Callable

from workers.trainers import gan, lstm, motion, strokes, vae
from workers.trainers.base import Trained, TrainJob

Trainer = Callable[[TrainJob], Trained]

TRAINERS: dict[str, Trainer] = {
    "vae": vae.train,
    "gan": gan.train,
    "lstm": lstm.train,
    "motion": motion.train,
    "strokes": strokes.train,
}

__all__ = ["TRAINERS", "TrainJob", "Trained", "Trainer"]
