"""What every job spec shares: names, projects, limits, timeouts, webhooks, dependencies,
the output section, and the refusal of NUL characters anywhere."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

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
