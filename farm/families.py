"""What the control plane knows about model families, without importing any of them.

Specs are validated and defaulted before anything is recorded, but the control plane never
imports torch or ``workers``. So each built-in family's tuned defaults, the render modes it
supports and the data sets it trains on live here, as plain data; ``workers/models`` keeps its
own ``DEFAULTS`` equal to these (a unit test compares them). Plugin families are known only by
the names of their ``farm.models`` entry points: reading those names imports no plugin code.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "farm.models"
RENDER_MODES = ("latent_walk", "storyboard", "rollout", "sample_grid")
# Labelled data sets: only these can train a conditional model.
LABELLED = frozenset({"digits"})
NUM_CLASSES = 10  # of the digits, the only labelled set
_IMAGE_SETS = ("digits", "images:", "video:")


@dataclass(frozen=True)
class FamilyInfo:
    """A family's defaults (the farm-job subset of its module's ``DEFAULTS``), the unit its
    training length is counted in, and what it can do."""

    name: str
    defaults: Mapping[str, Any]
    unit: str  # "epochs" or "steps": the spec field that sets the training length
    modes: frozenset[str]
    datasets: tuple[str, ...]  # names or prefixes ("images:") it trains on
    image_size: int = 16
    conditional: bool = False  # the default for ``conditional``
    checkpoint_every: int = 5
    extra: Mapping[str, Any] = field(default_factory=dict)


VAE_DEFAULTS: dict[str, Any] = {"epochs": 60, "batch_size": 64, "lr": 2e-3, "latent_dim": 8}
GAN_DEFAULTS: dict[str, Any] = {
    "steps": 1200,
    "batch_size": 64,
    "lr": 2e-4,
    "d_lr": 4e-4,
    "betas": (0.0, 0.9),
    "ema_decay": 0.999,
    "latent_dim": 32,
    "channels": 16,
}
LSTM_DEFAULTS: dict[str, Any] = {
    "epochs": 60,
    "batch_size": 32,
    "lr": 2e-3,
    "hidden": 256,
    "closed_loop": 1.0,
    "train_clips": 400,
    "held_out_clips": 100,
    "clip_len": 12,
    "vae": {"latent_dim": 16, "channels": 32, "epochs": 16, "batch_size": 64, "lr": 2e-3},
}

BUILTIN: dict[str, FamilyInfo] = {
    "vae": FamilyInfo(
        "vae",
        VAE_DEFAULTS,
        unit="epochs",
        modes=frozenset({"latent_walk", "storyboard", "sample_grid"}),
        datasets=_IMAGE_SETS,
        checkpoint_every=5,
    ),
    "gan": FamilyInfo(
        "gan",
        GAN_DEFAULTS,
        unit="steps",
        modes=frozenset({"latent_walk", "storyboard", "sample_grid"}),
        datasets=_IMAGE_SETS,
        conditional=True,
        checkpoint_every=200,
    ),
    "lstm": FamilyInfo(
        "lstm",
        LSTM_DEFAULTS,
        unit="epochs",
        modes=frozenset({"rollout"}),
        datasets=("moving-digits", "video:"),
        image_size=32,
        checkpoint_every=5,
        # The LSTM models the latents of its frame VAE, so its latent size is the VAE's.
        extra={"latent_dim": LSTM_DEFAULTS["vae"]["latent_dim"]},
    ),
}


def plugin_names() -> list[str]:
    """Names of installed ``farm.models`` entry points; their code is not imported."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})


def known_families() -> list[str]:
    return [*BUILTIN, *(n for n in plugin_names() if n not in BUILTIN)]


def family_info(name: str) -> FamilyInfo | None:
    """The built-in family ``name``; None for a plugin, whose defaults the plugin owns."""
    return BUILTIN.get(name)


@dataclass(frozen=True)
class ModelInfo:
    """What a render needs to know about the checkpoint it names, before any worker loads
    it: read from the train job's stored spec or from the checkpoint's JSON sidecar."""

    family: str
    conditional: bool
    num_classes: int  # classes a render may name (cVAE / cGAN: labels; VAE: class means)
    latent_dim: int | None


def info_from_train_spec(spec: Mapping[str, Any]) -> ModelInfo:
    family = str(spec.get("model", "vae"))
    conditional = bool(spec.get("conditional", False))
    labelled = spec.get("dataset", "digits") in LABELLED
    latent = spec.get("latent_dim")
    # An unconditional VAE on digits still knows the classes, through its class means.
    classes = labelled and (conditional or family == "vae")
    return ModelInfo(
        family=family,
        conditional=conditional,
        num_classes=NUM_CLASSES if classes else 0,
        latent_dim=int(latent) if latent is not None else None,
    )


def info_from_metadata(meta: Mapping[str, Any]) -> ModelInfo:
    config = meta.get("config") or {}
    family = str(meta.get("family", ""))
    classes = int(config.get("num_classes", 0) or 0)
    conditional = classes > 0 and family in ("vae", "gan")
    if not conditional and family == "vae":
        classes = len(meta.get("class_means") or [])
    latent = config.get("latent_dim")
    return ModelInfo(family, conditional, classes, int(latent) if latent is not None else None)


def read_sidecar(checkpoint: Path) -> dict[str, Any] | None:
    """The JSON metadata written beside a checkpoint (``x.safetensors`` -> ``x.json``)."""
    try:
        data = json.loads(checkpoint.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
