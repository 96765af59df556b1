"""Job specs: what a submitter writes, validated before anything is recorded.

A spec is YAML or JSON. Two kinds: ``train`` (fit a model on a data set, produce a
checkpoint) and ``render`` (load a checkpoint, render frames, encode a video). Unknown
fields are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from farm.charset import CharsetError, parse_charset
from farm.colors import parse_color
from farm.errors import SpecError
from farm.families import (
    BONES,
    BUILTIN,
    IMAGE_CHANNELS,
    IMAGE_SIZES,
    LABELLED,
    MOTION_ACTIONS,
    SEQUENCE_FAMILIES,
    default_channels,
    family_info,
    has_shapes,
    is_labelled,
    known_families,
    shape_cvae_defaults,
    size_defaults,
)
from farm.formats import RULES, UnknownFormat, format_for_path, get_rules
from farm.frames import FrameRangeError, parse_frames

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# Built-in data sets; "images:<folder>", "video:<file>" and "glyphs:<folder of fonts>" name
# the user's own.
DATASETS = ("digits", "moving-digits", "glyphs", "sprites", "motion", "strokes")
DATASET_PREFIXES = ("images:", "video:", "glyphs:", "bvh:")
_DATASET_NAMES = (
    "digits, moving-digits, glyphs, sprites, motion, strokes, images:<folder>, video:<file>, "
    "bvh:<file or folder>"
)
_GLYPH_FIELDS = ("charset", "fonts", "heldout_fonts")
_SEED_KEY = re.compile(r"^seed:(\d{1,10})$")


WebhookEvent = Literal["started", "succeeded", "failed", "canceled"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("started", "succeeded", "failed", "canceled")
Tag = Annotated[str, Field(pattern=NAME_PATTERN)]
LimitName = Annotated[str, Field(pattern=PROJECT_PATTERN)]
MAX_ID = 2**62
MAX_CHUNKS = 10_000
JobIdRef = Annotated[int, Field(ge=1, le=MAX_ID)]


class WebhookSpec(BaseModel):
    """Where to POST the job's events; deliveries are signed (see docs/api.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://[^\s\x00-\x1f\x7f]+$", max_length=2000)
    events: list[WebhookEvent] = Field(default_factory=lambda: list(WEBHOOK_EVENTS), min_length=1)


class OutputSpec(BaseModel):
    """Where a render goes and how it is encoded. Codec options (``crf``, ``bitrate``,
    ``preset``, ``keyint``, ``speed``, ``dither``, ``max_colors``, ``loop``,
    ``compression_level``) are checked against the chosen format's rules."""

    model_config = ConfigDict(extra="allow", frozen=True)

    path: str | None = Field(default=None, description="file, or a #### template for sequences")
    format: str | None = Field(
        default=None, description="h264 h265 vp9 prores gif png8 png16 ffv1; default from path"
    )
    audio: str | None = Field(default=None, description="an audio file muxed in at assembly")
    # Any value is let through here and checked against farm.formats.VERIFY_METHODS with the
    # codec options, so every bad value (a typo, a number) is refused as ``output.verify``.
    verify: Any = Field(
        default=None,
        description="how assembly checks the output: packets (default: frames counted from "
        "the container, stream parameters compared) or decode (every frame decoded)",
        json_schema_extra={"enum": ["packets", "decode"]},
    )
    keep_segments: bool = False


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The shared farm (farm.policy): whose share the job's tasks run in.
    project: str = Field(
        default="default", pattern=PROJECT_PATTERN, description="project whose share it runs in"
    )
    limits: list[LimitName] = Field(
        default_factory=list, max_length=16,
        description="limits (farm limit set NAME N) each of its tasks holds while it runs",
    )  # fmt: skip
    # Timeouts of each of its tasks' attempts (farm.timeouts); unset: the farm's default
    # for the task's kind.
    max_run_s: float | None = Field(
        default=None, gt=0, le=30 * 86400, description="fail an attempt that runs longer"
    )
    min_run_s: float | None = Field(
        default=None, gt=0, le=30 * 86400, description="fail an attempt that finishes sooner"
    )
    stall_s: float | None = Field(
        default=None, gt=0, le=30 * 86400,
        description="fail an attempt whose progress stands still this long",
    )  # fmt: skip
    name: str | None = Field(default=None, pattern=NAME_PATTERN, description="job name")
    priority: int = Field(default=50, ge=0, le=100, description="0-100; higher goes first")
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    pool: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="worker pool whose workers run it"
    )
    after: list[Tag | JobIdRef] = Field(
        default_factory=list, max_length=100, description="jobs (id or name) to wait for"
    )
    webhook: WebhookSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """PostgreSQL stores no NUL character in text or JSON: refuse one anywhere in the
        spec, naming where, instead of failing at the insert."""
        where = _nul_at(data, "")
        if where is not None:
            raise ValueError(f"{where or 'spec'}: NUL characters are not allowed")
        return data


class FrameVAESpec(BaseModel):
    """The frame VAE an LSTM job trains first; unset fields take the LSTM's ``vae`` defaults.
    Its latent size is the job's ``latent_dim``, which the LSTM models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int | None = Field(default=None, ge=1, le=100_000)
    channels: int | None = Field(default=None, ge=1, le=512)
    batch_size: int | None = Field(default=None, ge=1, le=65_536)
    lr: float | None = Field(default=None, gt=0, le=1)


def _nul_at(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return here
        found = _nul_at(item, here)
        if found is not None:
            return found
    return None


class TrainSpec(_Spec):
    """Train a model family on a data set; the checkpoint is the job's artifact.

    Hyperparameters left out take the family's tuned defaults (:mod:`farm.families`), so the
    stored spec always says exactly what was trained.
    """

    kind: Literal["train"]
    model: str = Field(default="vae", description="vae, gan, lstm or a farm.models plugin")
    dataset: str = Field(
        default="digits",
        description=f"{_DATASET_NAMES} or glyphs:<folder of .ttf/.otf fonts>",
    )
    target: Literal["pixels", "sdf"] = Field(
        default="pixels",
        description="what the model learns: pixels, or a signed distance field of shapes "
        "(glyphs, sprites, images with alpha) that renders sharp at any size",
    )
    channels: int | None = Field(
        default=None,
        description="1 grey, 3 RGB, 4 RGBA; default from the data set (sdf: 1)",
        json_schema_extra={"enum": list(IMAGE_CHANNELS)},
    )
    charset: str | None = Field(
        default=None, max_length=10_000, description="glyphs: the classes, e.g. A-Z0-9"
    )
    fonts: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=1000, description="glyphs: font file stems to train on"
    )
    heldout_fonts: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=1000, description="glyphs: fonts kept out for evaluation"
    )
    sdf_spread_px: float | None = Field(
        default=None, ge=0.5, le=64, description="sdf: distance (px at image_size) of +-1"
    )
    conditional: bool = Field(default=False, description="class-conditional (needs labels)")
    epochs: int | None = Field(default=None, ge=1, le=100_000, description="vae, lstm")
    steps: int | None = Field(default=None, ge=1, le=10_000_000, description="gan")
    batch_size: int = Field(default=64, ge=1, le=65_536)
    lr: float = Field(default=2e-3, gt=0, le=1)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    latent_dim: int = Field(default=8, ge=1, le=512)
    kl_warmup_epochs: int | None = Field(
        default=None, ge=0, le=100_000, strict=True,
        description="vae: epochs over which the KL term's weight ramps from 0 to 1 (0: none); "
        "default 0",
    )  # fmt: skip
    image_size: int = Field(
        default=16, ge=4, le=256, multiple_of=4, description="8, 16, 32, 64, 128 or 256"
    )
    checkpoint_every: int = Field(
        default=5, ge=1, le=10_000_000, description="epochs (vae, lstm) or steps (gan)"
    )
    hidden: int | None = Field(default=None, ge=1, le=4096, description="lstm width")
    clips: int | None = Field(default=None, ge=1, le=100_000, description="lstm training clips")
    frame_vae: FrameVAESpec | None = Field(default=None, description="lstm: its frame VAE")
    output: str | None = Field(
        default=None, description="checkpoint path under the output root (.safetensors)"
    )

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        info = family_info(str(data.get("model", "vae")))
        if info is None:
            return data
        out = dict(data)
        d = info.defaults
        out.setdefault("image_size", info.image_size)
        # The tuned row for the size first (a 64 px model needs a wider latent than 16 px).
        size = out["image_size"]
        dataset_name = out.get("dataset", "digits")
        if isinstance(dataset_name, str) and out.get("conditional") is True:
            for key, value in shape_cvae_defaults(info.name, dataset_name, True).items():
                out.setdefault(key, value)
        if isinstance(size, int) and not isinstance(size, bool):
            for key, value in size_defaults(info.name, size).items():
                if key != "width":
                    out.setdefault(key, value)
        out.setdefault(info.unit, d[info.unit])
        if info.name == "vae":
            out.setdefault("kl_warmup_epochs", d["kl_warmup_epochs"])
        for key in ("batch_size", "lr"):
            out.setdefault(key, d[key])
        out.setdefault("latent_dim", info.extra.get("latent_dim", d.get("latent_dim", 8)))
        out.setdefault("checkpoint_every", info.checkpoint_every)
        dataset = out.get("dataset", "moving-digits" if info.name == "lstm" else "digits")
        if isinstance(dataset, str) and out.get("channels") is None:
            channels = 1 if out.get("target") == "sdf" else default_channels(dataset)
            if channels is not None:
                out["channels"] = channels
        if info.name in ("gan",) and "conditional" not in out:
            out["conditional"] = is_labelled(str(out.get("dataset", "digits")))
        if info.name in SEQUENCE_FAMILIES:
            out.setdefault("hidden", d["hidden"])
        if info.name == "lstm":
            out.setdefault("hidden", d["hidden"])
            out.setdefault("clips", d["train_clips"])
            out.setdefault("dataset", "moving-digits")
        return out

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        known = known_families()
        if v not in known:
            raise ValueError(f"unknown model family {v!r}: use one of {', '.join(known)}")
        return v

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        if v in DATASETS:
            return v
        for prefix in DATASET_PREFIXES:
            if v.startswith(prefix) and len(v) > len(prefix):
                return v
        raise ValueError(f"unknown data set {v!r}: use {_DATASET_NAMES} or glyphs:<folder>")

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: int | None) -> int | None:
        if v is not None and v not in IMAGE_CHANNELS:
            raise ValueError(f"must be 1 (grey), 3 (RGB) or 4 (RGBA), got {v}")
        return v

    @field_validator("charset")
    @classmethod
    def _charset(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_charset(v)
            except CharsetError as e:
                raise ValueError(str(e)) from None
        return v

    def dataset_options(self) -> dict[str, Any]:
        """What the worker passes to ``load_dataset(..., options=...)``."""
        return dataset_options(self.model_dump(mode="json"))

    @field_validator("output")
    @classmethod
    def _checkpoint_suffix(cls, v: str | None) -> str | None:
        if v is not None and not v.endswith(".safetensors"):
            raise ValueError("a checkpoint path must end in .safetensors")
        return v

    def family_problems(self) -> list[tuple[str, str]]:
        """Fields that do not fit the chosen family (only built-in families are checked)."""
        info = BUILTIN.get(self.model)
        if info is None:
            return []
        out: list[tuple[str, str]] = []
        other = "steps" if info.unit == "epochs" else "epochs"
        if getattr(self, other) is not None:
            out.append((other, f"{self.model} trains for {info.unit}, not {other}"))
        if not any(
            self.dataset == d or (d.endswith(":") and self.dataset.startswith(d))
            for d in info.datasets
        ):
            out.append(("dataset", f"{self.model} cannot train on {self.dataset!r}"))
        if (
            self.conditional
            and self.model not in SEQUENCE_FAMILIES
            and (self.model == "lstm" or not is_labelled(self.dataset))
        ):
            labelled = ", ".join([*sorted(LABELLED), "glyphs:<folder>"])
            out.append(("conditional", f"needs a labelled data set ({labelled})"))
        if self.kl_warmup_epochs is not None:
            if self.model != "vae":
                out.append(("kl_warmup_epochs", "only a vae job has this field"))
            elif self.epochs is not None and self.kl_warmup_epochs > self.epochs:
                out.append(
                    (
                        "kl_warmup_epochs",
                        f"{self.kl_warmup_epochs} is more than the {self.epochs} epochs: the "
                        "KL weight would never reach 1",
                    )
                )
        if self.model not in ("lstm", *SEQUENCE_FAMILIES):
            for f in ("hidden", "clips", "frame_vae"):
                if getattr(self, f) is not None:
                    out.append((f, "only an lstm job has this field"))
        out += self._sequence_problems()
        if self.model == "lstm" and self.dataset == "moving-digits" and self.image_size < 8:
            out.append(("image_size", "moving digits need image_size >= 8"))
        if self.image_size not in IMAGE_SIZES:
            sizes = ", ".join(map(str, IMAGE_SIZES))
            out.append(("image_size", f"the {self.model} architecture is built for {sizes}"))
        return out + self._data_problems()

    def _data_problems(self) -> list[tuple[str, str]]:
        """Target, channels and glyph options that do not fit the data set or each other."""
        out: list[tuple[str, str]] = []
        glyphs = self.dataset == "glyphs" or self.dataset.startswith("glyphs:")
        if self.target == "sdf":
            if self.model == "lstm":
                out.append(("target", "the lstm's frame VAE learns pixels, not a field"))
            elif has_shapes(self.dataset) is False:
                out.append(
                    (
                        "target",
                        f"sdf needs shapes to measure, and {self.dataset!r} has none: use "
                        "glyphs, sprites or images:<folder> of images with alpha",
                    )
                )
            if self.channels not in (None, 1):
                out.append(("channels", "an sdf model learns one channel, the field"))
        elif self.sdf_spread_px is not None:
            out.append(("sdf_spread_px", "only a target: sdf job uses it"))
        if not glyphs and self.dataset != "strokes":
            for f in _GLYPH_FIELDS:
                if getattr(self, f) is not None:
                    out.append((f, "only a glyphs or strokes data set has this field"))
        return out

    # --- motion and strokes (issue 13) ---
    def _sequence_problems(self) -> list[tuple[str, str]]:
        """The fields a motion or strokes job takes: ``hidden`` (both), ``clips`` (clips per
        action of ``dataset: motion``); not the LSTM's frame VAE."""
        if self.model not in SEQUENCE_FAMILIES:
            return []
        out: list[tuple[str, str]] = []
        if self.frame_vae is not None:
            out.append(("frame_vae", "only an lstm job has this field"))
        if self.clips is not None and self.dataset != "motion":
            out.append(("clips", "only dataset: motion has clips per action"))
        if self.conditional:
            out.append(("conditional", f"a {self.model} model is always conditioned; leave it out"))
        return out


def dataset_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The data set's own settings from a (stored) train spec, for ``load_dataset(...,
    options=...)``: only those given, since each loader refuses options it does not take, so
    a spec stored before these fields existed loads its set exactly as it did."""
    dataset = str(spec.get("dataset", "digits"))
    target = spec.get("target") or "pixels"
    opts: dict[str, Any] = {}
    if dataset in ("glyphs", "sprites") or dataset.startswith("glyphs:"):
        opts["target"] = target  # these sets default to sdf, a spec to pixels
    elif target == "sdf":
        opts["target"] = "sdf"
    for key in ("channels", *_GLYPH_FIELDS, "sdf_spread_px"):
        if spec.get(key) is not None:
            opts[key] = spec[key]
    if dataset == "motion" and spec.get("model") == "motion" and spec.get("clips") is not None:
        opts["clips"] = spec["clips"]
    return opts


ClassRef = (
    Annotated[int, Field(ge=0, le=1_000_000)] | Annotated[str, Field(min_length=1, max_length=64)]
)
"""A class by label index (``3``) or by name (``"A"``; quote digits in YAML: ``"3"``)."""


class Colors(BaseModel):
    """Colours (CSS-style strings) and widths (output pixels) for shading an SDF model, for
    tinting a grey model and as the background of an RGBA model (docs/specs.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fill: str | None = Field(default=None, description="the shape (default white)")
    outline: str | None = Field(default=None, description="a band outside the edge")
    glow: str | None = Field(default=None, description="a soft halo outside the edge")
    shadow: str | None = Field(default=None, description="the shape again, offset, beneath")
    background: str | None = Field(default=None, description="default opaque black")
    outline_px: float | None = Field(default=None, ge=0, le=512)
    glow_px: float | None = Field(default=None, gt=0, le=1024)
    smooth_px: float | None = Field(
        default=None, ge=0, le=4, description="SDF models: blur the decoded field (model px)"
    )
    shadow_offset: tuple[float, float] | None = Field(
        default=None, description="(x, y) in output pixels, +y down"
    )

    @field_validator("fill", "outline", "glow", "shadow", "background")
    @classmethod
    def _color(cls, v: str | None) -> str | None:
        if v is not None:
            parse_color(v)  # a ColorError is a ValueError: pydantic names the field
        return v

    @field_validator("shadow_offset")
    @classmethod
    def _offset(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and max(abs(v[0]), abs(v[1])) > 1024:
            raise ValueError("a shadow offset is at most 1024 output pixels each way")
        return v


class Shot(BaseModel):
    """One storyboard shot: hold a class for ``hold`` frames, then morph into the next shot's
    class (and colours) over ``transition`` frames (the last shot's transition is ignored)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )

    class_: ClassRef = Field(alias="class")
    hold: int = Field(ge=1, le=1_000_000)
    transition: int = Field(default=0, ge=0, le=1_000_000)
    colors: Colors | None = None


class LatentKeyframe(BaseModel):
    """A keyframe given as an explicit latent vector (its length must be the model's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latent: list[float] = Field(min_length=1, max_length=512)


class ClassKeyframe(BaseModel):
    """A keyframe named by class, and optionally by style: ``{class: "A", style: "cmr10"}``
    is that character in that font (a VAE's ``style_means``), so a walk of such keyframes
    morphs one letter through fonts."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )

    class_: ClassRef = Field(alias="class")
    style: str | None = Field(default=None, min_length=1, max_length=128)


Keyframe = int | str | LatentKeyframe | ClassKeyframe


# --- motion and strokes renders (issue 13) ---


class MotionShot(BaseModel):
    """One shot of a ``mode: motion`` storyboard: an action for ``frames`` frames; each shot
    after the first blends in from the one before over the spec's ``transition`` frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str = Field(min_length=1, max_length=64, description="idle walk run jump wave sit")
    frames: int = Field(ge=1, le=1_000_000)


def motion_problems(spec: RenderSpec) -> list[tuple[str, str]]:
    """What ``mode: motion`` and ``mode: write`` need of the spec and its frame range, and
    their fields on other modes; the model's own actions and characters are checked against
    the checkpoint at submission (:func:`farm.resolve.model_problems`)."""
    out: list[tuple[str, str]] = []
    mode = spec.mode
    for f, owner in (("actions", "motion"), ("camera", "motion"), ("bone_sprites", "motion"),
                     ("strokes_per_second", "write"), ("line_px", "write")):  # fmt: skip
        if getattr(spec, f) is not None and mode != owner:
            out.append((f, f"only mode {owner!r} uses it, not {mode!r}"))
    if spec.background_image is not None and mode not in ("motion", "write"):
        out.append(("background_image", f"only modes 'motion' and 'write' use it, not {mode!r}"))
    total = len(spec.frame_list()) if spec.frames is not None else None
    if mode == "motion":
        if not spec.actions:
            return [*out, ("actions", "mode 'motion' needs a list of {action, frames}")]
        for i, shot in enumerate(spec.actions):
            if shot.action not in MOTION_ACTIONS:
                known = ", ".join(MOTION_ACTIONS)
                out.append((f"actions.{i}.action", f"unknown action {shot.action!r} ({known})"))
        blend = spec.transition or 0
        for i, shot in enumerate(spec.actions[1:], start=1):
            if blend > shot.frames:
                out.append(
                    (
                        "transition",
                        f"{blend} frames is longer than shot {i} ({shot.action}, "
                        f"{shot.frames} frames) it blends into",
                    )
                )
        want = sum(s.frames for s in spec.actions)
        if total is not None and want != total:
            out.append(("frames", f"the actions are {want} frames long but the range has {total}"))
    if mode == "write":
        if spec.text is None or not spec.text.strip():
            out.append(("text", "mode 'write' needs the text to write"))
        if spec.hold is not None and spec.strokes_per_second is not None:
            out.append(("hold", "give strokes_per_second or hold, not both"))
        if spec.hold is not None and total is not None and spec.hold >= total:
            out.append(("hold", f"holds {spec.hold} of the range's {total} frames: none to write"))
    return out


def title_shots(
    text: str, total: int, hold: int | None = None, transition: int | None = None
) -> list[tuple[str, int, int]]:
    """``(character, hold, transition)`` per letter of a title over ``total`` frames.

    A space is a pause, not a shot: the letter before it holds one more hold's worth of
    frames (leading spaces are dropped). Given both ``hold`` and ``transition``, the title
    must be exactly ``total`` frames long. Given one, the other is derived; given neither,
    holds and transitions share the range 3 : 2. Frames left over by the rounding go to
    the holds, one each from the first letter on. Raises ValueError naming what is wrong.
    """
    letters: list[list[Any]] = []  # [character, hold units]
    for ch in text:
        if ch == " ":
            if letters:
                letters[-1][1] += 1
        else:
            letters.append([ch, 1])
    if not letters:
        raise ValueError("a title needs at least one character that is not a space")
    units = sum(u for _, u in letters)
    gaps = len(letters) - 1
    if hold is not None and transition is not None:
        want = hold * units + transition * gaps
        if want != total:
            raise ValueError(
                f"hold {hold} and transition {transition} make {want} frames; the range has {total}"
            )
        return [(c, hold * u, transition if i < gaps else 0) for i, (c, u) in enumerate(letters)]
    if transition is None:
        if hold is not None:
            transition = (total - hold * units) // gaps if gaps else 0
        else:
            transition = (2 * total) // (3 * units + 2 * gaps) if gaps else 0
    rest = total - transition * gaps
    if transition < 0 or rest < units:
        raise ValueError(
            f"{total} frames are too few for {len(letters)} letters: each needs a frame to hold"
        )
    base, extra = divmod(rest, units)
    out, unit = [], 0
    for i, (c, u) in enumerate(letters):
        h = sum(base + (1 if unit + k < extra else 0) for k in range(u))
        unit += u
        out.append((c, h, transition if i < gaps else 0))
    return out


class RenderSpec(_Spec):
    """Render frames from a checkpoint and encode them into one video (or, for
    ``sample_grid``, one PNG contact sheet)."""

    kind: Literal["render"]
    checkpoint: str = Field(
        description="'job:<train job id or name>' (waits for it) or a .safetensors path"
    )
    mode: Literal[
        "latent_walk", "storyboard", "title", "rollout", "sample_grid", "motion", "write"
    ] = "latent_walk"
    frames: str | None = Field(
        default=None, description="frame range: 1-240, 1-240x2, 1,5,10-20 (not for sample_grid)"
    )
    chunk_size: int = Field(default=50, ge=1, le=100_000)
    fps: float = Field(default=24.0, gt=0, le=240)

    @field_validator("chunk_size")
    @classmethod
    def _bounded_plan(cls, v: int, info: ValidationInfo) -> int:
        # A job is one transaction of tasks: a million one-frame chunks would be a DoS.
        frames = info.data.get("frames")
        if isinstance(frames, str):
            try:
                chunks = -(-len(parse_frames(frames)) // v)
            except FrameRangeError:
                return v
            if chunks > MAX_CHUNKS:
                raise ValueError(f"makes {chunks} chunks; a job may have at most {MAX_CHUNKS}")
        return v

    width: int = Field(default=256, ge=16, le=4096)
    height: int = Field(default=256, ge=16, le=4096)
    keyframes: list[Keyframe] = Field(
        default_factory=lambda: list[Keyframe](range(10)), min_length=1, max_length=10_000
    )
    storyboard: list[Shot] | None = Field(default=None, min_length=1, max_length=10_000)
    text: str | None = Field(
        default=None, min_length=1, max_length=1000,
        description="title: the word(s) to morph; write: the text the pen writes",
    )  # fmt: skip
    hold: int | None = Field(
        default=None, ge=1, le=1_000_000,
        description="title: per letter; write: frames the finished text holds at the end",
    )  # fmt: skip
    transition: int | None = Field(
        default=None, ge=0, le=1_000_000,
        description="title: frames between letters; motion: frames each action blends in over",
    )  # fmt: skip
    actions: list[MotionShot] | None = Field(
        default=None, min_length=1, max_length=10_000, description="motion: [{action, frames}]"
    )
    camera: Literal["follow", "fixed"] | None = Field(
        default=None, description="motion: follow the character (default) or stay fixed"
    )
    background_image: str | None = Field(
        default=None, min_length=1, max_length=4096,
        description="motion, write: a picture behind the figure or the text (a path it may "
        "read), scaled to the frame's height; motion's camera moves over it",
    )  # fmt: skip
    bone_sprites: dict[str, Annotated[str, Field(min_length=1, max_length=4096)]] | None = Field(
        default=None, max_length=len(BONES),
        description="motion: {bone: picture} drawn in place of the bone's capsule",
    )  # fmt: skip

    @field_validator("bone_sprites")
    @classmethod
    def _bones(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        unknown = sorted(set(v or ()) - set(BONES))
        if unknown:
            raise ValueError(f"no bone(s) {', '.join(unknown)} (bones: {', '.join(BONES)})")
        return v

    strokes_per_second: float | None = Field(
        default=None, gt=0, le=100_000, description="write: pen steps per second"
    )
    line_px: float | None = Field(
        default=None, gt=0, le=512, description="write: line width in output pixels"
    )
    style: str | None = Field(
        default=None, min_length=1, max_length=200, description="title: one font for the word"
    )
    colors: Colors | None = Field(default=None, description="fill, outline, background...")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="noise / rollout clip seed")
    seed_frames: int = Field(default=4, ge=1, le=10_000, description="rollout: true frames")
    columns: int = Field(default=10, ge=1, le=100, description="sample_grid: tiles per row")
    output: str | OutputSpec | None = Field(
        default=None, description="path under the output root, or an output section"
    )
    batch_size: int = Field(default=32, ge=1, le=4096)

    @field_validator("frames", mode="before")
    @classmethod
    def _frame_number(cls, v: Any) -> Any:
        # YAML reads `frames: 1001` as an int; a single frame is valid range syntax.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("frames")
    @classmethod
    def _frames(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parse_frames(v)
        except FrameRangeError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("keyframes")
    @classmethod
    def _keys(cls, v: list[Keyframe]) -> list[Keyframe]:
        for i, k in enumerate(v):
            if isinstance(k, LatentKeyframe | ClassKeyframe):
                continue
            if isinstance(k, int):
                if k < 0:
                    raise ValueError(f"keyframe {i} ({k}) is not a class index >= 0")
            elif _SEED_KEY.match(k) is None:
                raise ValueError(f"keyframe {i} ({k!r}) is neither a class index nor 'seed:N'")
        return v

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint(cls, v: str) -> str:
        if v.startswith("job:"):
            if not v[4:]:
                raise ValueError("'job:' needs a job id or name")
        elif not v.endswith(".safetensors"):
            raise ValueError("use 'job:<id or name>' or a path ending in .safetensors")
        return v

    def frame_list(self) -> list[int]:
        return parse_frames(self.frames) if self.frames is not None else []

    def storyboard_length(self) -> int:
        """Every hold plus every transition but the last shot's."""
        shots = self.storyboard or []
        return sum(s.hold for s in shots) + sum(s.transition for s in shots[:-1])

    def mode_problems(self) -> list[tuple[str, str]]:
        """How the frame range, the mode and its fields must relate."""
        out: list[tuple[str, str]] = []
        if self.mode != "sample_grid" and self.frames is None:
            out.append(("frames", "Field required"))
        if self.mode == "storyboard" and self.storyboard is None:
            out.append(("storyboard", "mode 'storyboard' needs a list of shots"))
        if self.storyboard is not None and self.mode != "storyboard":
            out.append(("storyboard", f"only mode 'storyboard' uses it, not {self.mode!r}"))
        if self.mode == "storyboard" and self.storyboard is not None:
            want, got = self.storyboard_length(), len(self.frame_list())
            if want != got:
                out.append(
                    ("frames", f"the storyboard is {want} frames long but the range has {got}")
                )
        out += self._title_problems()
        out += motion_problems(self)
        if self.mode == "rollout" and len(self.frame_list()) <= self.seed_frames:
            out.append(("frames", f"a rollout needs more than seed_frames ({self.seed_frames})"))
        if self.mode == "sample_grid":
            if self.frames is not None:
                out.append(("frames", "a sample grid is one image: leave frames out"))
            section = self.output if isinstance(self.output, OutputSpec) else None
            path = self.output if isinstance(self.output, str) else (section and section.path)
            if path and not path.lower().endswith(".png"):
                out.append(("output", "a sample grid is written as a .png"))
        return out

    def _title_problems(self) -> list[tuple[str, str]]:
        if self.mode != "title":
            shared = {"write": ("text", "hold"), "motion": ("transition",)}.get(self.mode, ())
            return [
                (f, f"only mode 'title' uses it, not {self.mode!r}")
                for f in ("text", "hold", "transition", "style")
                if getattr(self, f) is not None and f not in shared
            ]
        if self.text is None:
            return [("text", "mode 'title' needs the text to morph through")]
        if self.frames is None:
            return []
        try:
            title_shots(self.text, len(self.frame_list()), self.hold, self.transition)
        except ValueError as e:
            return [("text" if "space" in str(e) else "frames", str(e))]
        return []

    def output_plan(self, name: str) -> tuple[str, str, dict[str, Any]]:
        """(format, path under the output root, codec options) with defaults filled in."""
        if self.mode == "sample_grid":
            section = self.output if isinstance(self.output, OutputSpec) else None
            path = self.output if isinstance(self.output, str) else (section and section.path)
            return "png", path or f"renders/{name}.png", {}
        section = self.output if isinstance(self.output, OutputSpec) else None
        path = self.output if isinstance(self.output, str) else (section and section.path)
        fmt = (section.format if section else None) or (format_for_path(path) if path else "h264")
        if not path:
            rules = RULES.get(fmt.lower())
            ext = rules.extension if rules else ".mp4"
            is_seq = bool(rules and rules.is_sequence)
            path = f"renders/{name}/{name}.####{ext}" if is_seq else f"renders/{name}{ext}"
        options = dict(section.model_extra or {}) if section else {}
        if section and section.audio:
            options["audio"] = section.audio
        if section and section.verify is not None:
            options["verify"] = section.verify
        return fmt.lower(), path, options

    def format_problems(self, name: str) -> list[tuple[str, str]]:
        if self.mode == "sample_grid":
            return []
        fmt, path, options = self.output_plan(name)
        try:
            rules = get_rules(fmt)
        except UnknownFormat as e:
            return [("output.format", str(e))]
        problems = rules.validate(self.width, self.height, self.fps, {**options, "path": path})
        if isinstance(self.output, str):  # a bare path: name the field as the author wrote it
            problems = [("output" if f == "output.path" else f, r) for f, r in problems]
        return problems


JobSpec = Annotated[TrainSpec | RenderSpec, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[TrainSpec | RenderSpec] = TypeAdapter(JobSpec)


def parse_spec(data: Any) -> TrainSpec | RenderSpec:
    """Validate a decoded spec, turning pydantic's errors into (field, reason) pairs."""
    if not isinstance(data, dict):
        raise SpecError([("spec", "must be a mapping of fields")])
    try:
        spec = _ADAPTER.validate_python(data)
    except ValidationError as e:
        problems = _problems(e)
        video = data.get("kind") == "render" and data.get("mode") != "sample_grid"
        if video and "frames" not in data and all(f != "frames" for f, _ in problems):
            problems.append(("frames", "Field required"))
        raise SpecError(problems) from None
    if isinstance(spec, RenderSpec):
        problems = spec.mode_problems() + spec.format_problems(spec.name or "render")
    else:
        problems = spec.family_problems()
    if problems:
        raise SpecError(problems)
    return spec


def _problems(e: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in e.errors():
        loc = [str(p) for p in err["loc"]]
        # Drop the union tag pydantic puts first ("render", "train") for discriminated unions.
        if loc and loc[0] in ("train", "render"):
            loc = loc[1:]
        field = ".".join(loc) or "spec"
        kind = err["type"]
        if kind == "union_tag_invalid":
            tag = err.get("ctx", {}).get("tag")
            field, reason = "kind", f"unknown kind {tag!r}: use 'train' or 'render'"
        elif kind == "union_tag_not_found":
            field, reason = "kind", "missing: use 'train' or 'render'"
        elif kind == "extra_forbidden":
            reason = "unknown field"
        else:
            reason = err["msg"].removeprefix("Value error, ")
        out.append((field, reason))
    return out


def load_spec(path: Path) -> TrainSpec | RenderSpec:
    """Read a YAML or JSON spec file."""
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError([("file", f"cannot read {path}: {e.strerror}")]) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise SpecError([("file", f"{path} is not valid YAML/JSON: {e}")]) from None
    return parse_spec(data)
