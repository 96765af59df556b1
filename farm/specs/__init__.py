"""Job specs: what a submitter writes, validated before anything is recorded.

A spec is YAML or JSON. Two kinds: ``train`` (fit a model on a data set, produce a
checkpoint) and ``render`` (load a checkpoint, render frames, encode a video). Unknown
fields are errors, so a typo never silently falls back to a default.

One module per kind: :mod:`.common` (every spec), :mod:`.train`, :mod:`.render` with
:mod:`.shapes`, :mod:`.motion` and :mod:`.title`; this module parses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, TypeAdapter, ValidationError

from farm.errors import SpecError
from farm.specs.common import MAX_ID, NAME_PATTERN, PROJECT_PATTERN, OutputSpec
from farm.specs.render import RenderSpec
from farm.specs.shapes import ClassKeyframe, LatentKeyframe
from farm.specs.title import title_shots
from farm.specs.train import TrainSpec, dataset_options

__all__ = [
    "MAX_ID",
    "NAME_PATTERN",
    "PROJECT_PATTERN",
    "ClassKeyframe",
    "JobSpec",
    "LatentKeyframe",
    "OutputSpec",
    "RenderSpec",
    "TrainSpec",
    "dataset_options",
    "load_spec",
    "parse_spec",
    "title_shots",
]


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
