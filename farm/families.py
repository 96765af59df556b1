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

from farm.charset import DEFAULT_CHARSET, parse_charset

ENTRY_POINT_GROUP = "farm.models"
RENDER_MODES = ("latent_walk", "storyboard", "title", "rollout", "sample_grid", "motion", "write")
# Labelled data sets: only these can train a conditional model. ``glyphs:<folder>`` too.
LABELLED = frozenset({"digits", "glyphs", "sprites"})
NUM_CLASSES = 10  # of the digits
# The class names of the built-in labelled sets with fixed classes (glyphs: the charset).
# workers/datasets keeps the same lists (a unit test compares them).
DATASET_CLASSES: dict[str, tuple[str, ...]] = {
    "digits": tuple("0123456789"),
    "sprites": ("square", "ellipse", "triangle", "star", "heart"),
}
# The motion model's actions (workers.datasets.motion.ACTIONS; a unit test compares them):
# the classes of ``dataset: motion`` and of a BVH set, whose files are labelled with them.
MOTION_ACTIONS = ("idle", "walk", "run", "jump", "wave", "sit")
# The motion skeleton's bones by name, as (joint, child joint) indices of
# workers.datasets.motion.JOINTS: what ``bone_sprites`` keys name; "head" is the head itself,
# drawn about its joint and turned with the neck.
BONES: dict[str, tuple[int, int]] = {
    "pelvis": (0, 1), "chest": (1, 2), "neck": (2, 3), "head": (2, 3),
    "l_upper_arm": (4, 5), "l_forearm": (5, 6), "r_upper_arm": (7, 8), "r_forearm": (8, 9),
    "l_thigh": (10, 11), "l_shin": (11, 12), "r_thigh": (13, 14), "r_shin": (14, 15),
}  # fmt: skip
# Families whose classes are fixed by their data set, with no ``conditional`` switch: a
# motion model is always action-conditioned, a stroke model always character-conditioned.
SEQUENCE_FAMILIES = ("motion", "strokes")
_IMAGE_SETS = ("digits", "images:", "video:", "glyphs", "glyphs:", "sprites")
# What the architectures (workers/models/arch.py) build: one stage per doubling from 4 px.
# 256 trains on a GPU; 8 is for tests.
IMAGE_SIZES = (8, 16, 32, 64, 128, 256)
IMAGE_CHANNELS = (1, 3, 4)
TARGETS = ("pixels", "sdf")
# Sets whose samples are shapes, with an exact distance field (``target: sdf``). A folder of
# images has them only if its files carry alpha, which only the worker can see.
SHAPE_SETS = frozenset({"glyphs", "sprites"})
SHAPES_UNKNOWN = ("images:",)


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


VAE_DEFAULTS: dict[str, Any] = {
    "epochs": 60,
    "batch_size": 64,
    "lr": 2e-3,
    "latent_dim": 8,
    "kl_warmup_epochs": 0,
    "conditioning": "concat",
    "min_std": 0.0,
}
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
MOTION_DEFAULTS: dict[str, Any] = {
    "epochs": 150,
    "batch_size": 32,
    "lr": 3e-3,
    "hidden": 128,
    "closed_loop": 1.0,
    "noise": 0.05,
    "lr_floor": 0.05,
}
STROKES_DEFAULTS: dict[str, Any] = {
    "epochs": 300,
    "batch_size": 64,
    "lr": 3e-3,
    "hidden": 128,
    "mixtures": 10,
    "augment": 0.15,
    "lr_floor": 0.05,
    "style_dropout": 0.1,
    "dequantise": 1.0,
}
# ``dataset: strokes``: the Hershey fonts a job trains on unless it names ``fonts``, the
# roman, sans and script ones people write with (the gothic ones, whose constructions differ
# most, stay an option), and the fonts kept out for evaluation, one per look where the
# fonts named hold them. ``mode: write`` writes in STROKE_STYLE (Roman simplex, one line
# per stroke) when the spec names no ``style`` and the model has it.
STROKE_FONTS = (
    "futural", "futuram", "cursive", "rowmand", "rowmans", "rowmant", "scriptc", "scripts",
    "timesi", "timesib", "timesr", "timesrb",
)  # fmt: skip
STROKE_HELDOUT_FONTS = ("futuram", "gothicita", "rowmant", "scriptc", "timesib")
STROKE_STYLE = "rowmans"

# Per image size, what grows with it: the latent, the finest stage's width (``width``; each
# coarser stage doubles it, capped at 256), the batch and the training length. Found with
# bench/model_sizes.py (parameters and CPU seconds per epoch, docs in its header) so each
# default trains in under 10 minutes on 2 CPU cores at the data sets' default sizes; the
# 16 px row is the family's tuned default above. The one copy: workers/models builds what
# the stored spec says.
VAE_SIZES: dict[int, dict[str, int]] = {
    8: {"latent_dim": 8, "width": 32, "epochs": 60, "batch_size": 64},
    16: {"latent_dim": 8, "width": 32, "epochs": 60, "batch_size": 64},
    32: {"latent_dim": 16, "width": 32, "epochs": 40, "batch_size": 64},
    64: {"latent_dim": 32, "width": 16, "epochs": 40, "batch_size": 64},
    128: {"latent_dim": 32, "width": 8, "epochs": 20, "batch_size": 32},
    256: {"latent_dim": 64, "width": 8, "epochs": 20, "batch_size": 32},
}
GAN_SIZES: dict[int, dict[str, int]] = {
    8: {"latent_dim": 32, "width": 16, "steps": 1200, "batch_size": 64},
    16: {"latent_dim": 32, "width": 16, "steps": 1200, "batch_size": 64},
    32: {"latent_dim": 64, "width": 8, "steps": 2000, "batch_size": 64},
    64: {"latent_dim": 64, "width": 8, "steps": 1200, "batch_size": 32},
    128: {"latent_dim": 128, "width": 4, "steps": 1200, "batch_size": 16},
    256: {"latent_dim": 128, "width": 4, "steps": 4000, "batch_size": 32},
}
# The LSTM's frame VAE by image size (its latent is the job's latent_dim).
FRAME_VAE_SIZES: dict[int, dict[str, int]] = {
    size: {"width": row["width"], "batch_size": row["batch_size"]}
    for size, row in VAE_SIZES.items()
}
SIZE_DEFAULTS: dict[str, dict[int, dict[str, int]]] = {"vae": VAE_SIZES, "gan": GAN_SIZES}


# A cVAE on shapes learns the class from its label only while its latent is too small to
# carry the class itself: read by a reader trained on held-out fonts, storyboard keyframes
# from prior latents (bench/model_quality.py --only glyphs, A-Z at 32 px) scored 13.5% at
# latent 16 (40 epochs), 69.2% at 4 (40), 90.4% at 2 (80) and 96.2% at 2 (160 epochs, seeds
# 0-2). A KL warm-up (kl_warmup_epochs 40), 240 epochs or a cosine schedule did no better
# over seeds (bench/cvae_sweep.py, docs/models.md). The misreads were thin strokes breaking
# up at prior latents between the fonts' near-point posteriors: a floor of 0.5 under the
# posterior's std (min_std) makes the decoder learn those neighbourhoods; FiLM conditioning
# and a KL weight above 1 did not (seed 1). The demo pins its own (farm/demo.py).
SHAPE_CVAE: dict[str, Any] = {"latent_dim": 2, "epochs": 160, "min_std": 0.5}


def shape_cvae_defaults(family: str, dataset: str, conditional: bool) -> dict[str, Any]:
    """Defaults that win over the size row for a conditional VAE on glyphs or sprites."""
    shapes = dataset in SHAPE_SETS or dataset.startswith("glyphs:")
    return dict(SHAPE_CVAE) if family == "vae" and conditional and shapes else {}


def size_defaults(family: str, image_size: int) -> dict[str, int]:
    """The per-size row of a built-in family ({} for the LSTM, plugins or an odd size)."""
    return dict(SIZE_DEFAULTS.get(family, {}).get(image_size, {}))


def has_shapes(dataset: str) -> bool | None:
    """Whether a data set's samples are shapes with a distance field (``target: sdf``):
    None when only its files can tell (a folder of images: only those with alpha)."""
    if dataset in SHAPE_SETS or dataset.startswith("glyphs:"):
        return True
    if dataset.startswith(SHAPES_UNKNOWN):
        return None
    return False


BUILTIN: dict[str, FamilyInfo] = {
    "vae": FamilyInfo(
        "vae",
        VAE_DEFAULTS,
        unit="epochs",
        modes=frozenset({"latent_walk", "storyboard", "title", "sample_grid"}),
        datasets=_IMAGE_SETS,
        checkpoint_every=5,
    ),
    "gan": FamilyInfo(
        "gan",
        GAN_DEFAULTS,
        unit="steps",
        modes=frozenset({"latent_walk", "storyboard", "title", "sample_grid"}),
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
    "motion": FamilyInfo(
        "motion",
        MOTION_DEFAULTS,
        unit="epochs",
        modes=frozenset({"motion"}),
        datasets=("motion", "bvh:"),
        checkpoint_every=5,
    ),
    "strokes": FamilyInfo(
        "strokes",
        STROKES_DEFAULTS,
        unit="epochs",
        modes=frozenset({"write"}),
        datasets=("strokes",),
        conditional=True,
        checkpoint_every=5,
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


def is_labelled(dataset: str) -> bool:
    """Whether ``dataset`` has classes, so a conditional model can train on it."""
    return dataset in LABELLED or dataset.startswith("glyphs:")


def dataset_classes(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The class names a train spec's data set will have: the digits, the sprite shapes, or
    a glyph set's charset (``charset`` in the spec); () for an unlabelled set."""
    dataset = str(spec.get("dataset", "digits"))
    if dataset in DATASET_CLASSES:
        return DATASET_CLASSES[dataset]
    if dataset == "motion" or dataset.startswith("bvh:"):
        return MOTION_ACTIONS
    if dataset == "glyphs" or dataset.startswith("glyphs:") or dataset == "strokes":
        return tuple(parse_charset(str(spec.get("charset") or DEFAULT_CHARSET)))
    return ()


@dataclass(frozen=True)
class ModelInfo:
    """What a render needs to know about the checkpoint it names, before any worker loads
    it: read from the train job's stored spec or from the checkpoint's JSON sidecar.

    ``classes`` names the classes a render may ask for (``{class: "A"}``), in label order;
    ``num_classes`` is how many of them a render can reach (a conditional model's labels, or
    an unconditional VAE's class means). ``target`` is what the decoder outputs: ``pixels``
    or ``sdf`` (a signed distance field, shaded at render time). ``channels`` is None when
    the data decides at training time (a folder of images) and the checkpoint is not written
    yet. ``styles`` names the styles a latent walk can visit (glyph fonts), when known.
    ``trained`` names the classes the training data held when that is fewer than
    ``classes`` (a motion model on a BVH set of walks and runs keeps all six action slots);
    empty when all of them, or not known.
    """

    family: str
    conditional: bool
    num_classes: int  # classes a render may name (cVAE / cGAN: labels; VAE: class means)
    latent_dim: int | None
    classes: tuple[str, ...] = ()
    target: str = "pixels"
    channels: int | None = 1
    image_size: int = 16
    sdf_spread_px: float = 4.0
    styles: tuple[str, ...] = ()
    trained: tuple[str, ...] = ()


def default_channels(dataset: str) -> int | None:
    """Channels a data set trains with when the spec does not say: grey for the digits and
    glyphs, RGBA for the sprites (as their loader draws them), and a user's images or video
    as their files are (None: only the worker can tell)."""
    if dataset in ("digits", "moving-digits") or dataset.startswith("glyphs"):
        return 1
    if dataset == "sprites":
        return 4
    return None


def info_from_train_spec(spec: Mapping[str, Any]) -> ModelInfo:
    family = str(spec.get("model", "vae"))
    conditional = bool(spec.get("conditional", False))
    dataset = str(spec.get("dataset", "digits"))
    latent = spec.get("latent_dim")
    names = dataset_classes(spec) if family in ("vae", "gan", *SEQUENCE_FAMILIES) else ()
    # An unconditional VAE on a labelled set still knows the classes, through its class means.
    reachable = bool(names) and (conditional or family in ("vae", *SEQUENCE_FAMILIES))
    channels = spec.get("channels")
    glyph_styles = tuple(sorted(set(spec.get("fonts") or ()))) if names else ()
    return ModelInfo(
        family=family,
        conditional=conditional,
        num_classes=len(names) if reachable else 0,
        latent_dim=int(latent) if latent is not None else None,
        classes=names if reachable else (),
        target=str(spec.get("target") or "pixels"),
        channels=int(channels) if channels is not None else default_channels(dataset),
        image_size=int(spec.get("image_size") or 16),
        sdf_spread_px=float(spec.get("sdf_spread_px") or 4.0),
        # The glyph set draws the fonts a spec names in sorted order; without names only the
        # worker knows the fonts (and the checkpoint's ``style_names`` will say).
        styles=stroke_styles(spec) if family == "strokes" else glyph_styles,
    )


def stroke_styles(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The fonts a strokes job trains on (what a write's ``style`` may name): its ``fonts``
    (default :data:`STROKE_FONTS`) less the held-out ones, as ``dataset: strokes`` splits."""
    fonts = list(spec.get("fonts") or STROKE_FONTS)
    held = spec.get("heldout_fonts")
    held = set(STROKE_HELDOUT_FONTS if held is None else held)
    return tuple(f for f in fonts if f not in held)


def info_from_metadata(meta: Mapping[str, Any]) -> ModelInfo:
    config = meta.get("config") or {}
    family = str(meta.get("family", ""))
    classes = int(config.get("num_classes", 0) or 0)
    conditional = classes > 0 and family in ("vae", "gan")
    if not conditional and family == "vae":
        classes = len(meta.get("class_means") or [])
    names = tuple(str(c) for c in meta.get("classes") or ())
    if family in SEQUENCE_FAMILIES:
        classes = len(names)
    if not names and classes == NUM_CLASSES:  # checkpoints from before class names: digits
        names = DATASET_CLASSES["digits"]
    latent = config.get("latent_dim")
    return ModelInfo(
        family,
        conditional,
        classes,
        int(latent) if latent is not None else None,
        classes=names[:classes] if classes else (),
        target=str(config.get("target") or "pixels"),
        channels=int(config.get("image_channels") or 1),
        image_size=int(config.get("image_size") or 16),
        sdf_spread_px=float(meta.get("sdf_spread_px") or 4.0),
        styles=tuple(str(s) for s in meta.get("style_names") or ()),
        trained=tuple(str(c) for c in meta.get("trained_classes") or ()),
    )


def read_sidecar(checkpoint: Path) -> dict[str, Any] | None:
    """The JSON metadata written beside a checkpoint (``x.safetensors`` -> ``x.json``)."""
    try:
        data = json.loads(checkpoint.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
