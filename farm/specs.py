"""Job specs: what a submitter writes, validated before anything is recorded.

A spec is YAML or JSON. Two kinds: ``train`` (fit a model on a data set, produce a
checkpoint) and ``render`` (load a checkpoint, render frames, encode a video). Unknown
fields are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from farm.errors import SpecError
from farm.formats import RULES, UnknownFormat, format_for_path, get_rules
from farm.frames import FrameRangeError, parse_frames

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Model families the control plane accepts; the data plane registers their implementations.
MODEL_FAMILIES = ("vae",)
DATASETS = ("digits",)
_SEED_KEY = re.compile(r"^seed:(\d{1,10})$")


WebhookEvent = Literal["started", "succeeded", "failed", "canceled"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("started", "succeeded", "failed", "canceled")
Tag = Annotated[str, Field(pattern=NAME_PATTERN)]
MAX_ID = 2**62
JobIdRef = Annotated[int, Field(ge=1, le=MAX_ID)]


class WebhookSpec(BaseModel):
    """Where to POST the job's events; deliveries are signed (see docs/api.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)
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
    keep_segments: bool = False


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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


class TrainSpec(_Spec):
    """Train a model family on a data set; the checkpoint is the job's artifact."""

    kind: Literal["train"]
    model: Literal["vae"] = "vae"
    dataset: Literal["digits"] = "digits"
    epochs: int = Field(default=30, ge=1, le=100_000)
    batch_size: int = Field(default=64, ge=1, le=65_536)
    lr: float = Field(default=2e-3, gt=0, le=1)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    latent_dim: int = Field(default=8, ge=1, le=512)
    image_size: Literal[16] = 16
    output: str | None = Field(
        default=None, description="checkpoint path under the output root (.safetensors)"
    )

    @field_validator("output")
    @classmethod
    def _checkpoint_suffix(cls, v: str | None) -> str | None:
        if v is not None and not v.endswith(".safetensors"):
            raise ValueError("a checkpoint path must end in .safetensors")
        return v


class RenderSpec(_Spec):
    """Render frames from a checkpoint and encode them into one video."""

    kind: Literal["render"]
    checkpoint: str = Field(
        description="'job:<train job id or name>' (waits for it) or a .safetensors path"
    )
    frames: str = Field(description="frame range: 1-240, 1-240x2, 1,5,10-20")
    chunk_size: int = Field(default=50, ge=1, le=100_000)
    fps: float = Field(default=24.0, gt=0, le=240)
    width: int = Field(default=256, ge=16, le=4096)
    height: int = Field(default=256, ge=16, le=4096)
    keyframes: list[int | str] = Field(
        default_factory=lambda: list[int | str](range(10)), min_length=1, max_length=10_000
    )
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
    def _frames(cls, v: str) -> str:
        try:
            parse_frames(v)
        except FrameRangeError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("keyframes")
    @classmethod
    def _keys(cls, v: list[int | str]) -> list[int | str]:
        for i, k in enumerate(v):
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
        return parse_frames(self.frames)

    def output_plan(self, name: str) -> tuple[str, str, dict[str, Any]]:
        """(format, path under the output root, codec options) with defaults filled in."""
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
        return fmt.lower(), path, options

    def format_problems(self, name: str) -> list[tuple[str, str]]:
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
        raise SpecError(_problems(e)) from None
    if isinstance(spec, RenderSpec):
        problems = spec.format_problems(spec.name or "render")
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
