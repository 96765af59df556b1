"""Batch submission from a manifest: shared defaults, one row per shot, templated names and
paths, dependencies between rows. Expanding and ordering are pure; submitting is the edge.

YAML manifest::

    defaults: {kind: render, checkpoint: job:vae-digits, frames: 1-48, name: "{seq}_{shot}",
               output: "shots/{seq}/{shot}.mp4"}
    shots:
      - {seq: sq01, shot: sh010, keyframes: [1, 7]}
      - {seq: sq01, shot: sh020, after: [sq01_sh010]}

CSV manifest: one row per shot, a column per field (cells are read as YAML, so
``[1, 7]`` is a list); shared defaults come from ``--defaults FILE.yaml``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from farm.errors import FarmError, SpecError
from farm.specs import RenderSpec, TrainSpec, parse_spec

TEMPLATE_VARS = ("shot", "seq")


class ManifestError(FarmError):
    """Raised when a manifest cannot be read, or has invalid rows (each named)."""

    exit_code = 2

    def __init__(self, message: str, rows: list[RowError] | None = None) -> None:
        self.rows = rows or []
        lines = [f"row {r.row} ({r.label}): {r.field}: {r.reason}" for r in self.rows]
        super().__init__("\n  ".join([message, *lines]))


@dataclass(frozen=True)
class RowError:
    row: int
    label: str
    field: str
    reason: str


@dataclass
class Row:
    row: int
    label: str
    spec: TrainSpec | RenderSpec
    data: dict[str, Any]
    needs: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.spec.name)

    def idempotency_key(self) -> str:
        """Derived from the resolved row, so the same manifest submitted twice makes no
        second job, while an edited row is a new job."""
        canon = json.dumps(self.data, sort_keys=True, separators=(",", ":"))
        return "batch-" + hashlib.sha256(canon.encode()).hexdigest()[:40]


def read_manifest(
    path: Path, defaults_path: Path | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ManifestError(f"cannot read {path}: {e.strerror}") from None
    defaults: dict[str, Any] = {}
    if defaults_path is not None:
        try:
            defaults = yaml.safe_load(defaults_path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ManifestError(f"cannot read defaults {defaults_path}: {e}") from None
    if path.suffix.lower() == ".csv":
        rows = [
            {k.strip(): _cell(v) for k, v in r.items() if k and v not in (None, "")}
            for r in csv.DictReader(io.StringIO(text))
        ]
        return defaults, rows
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ManifestError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("shots"), list):
        raise ManifestError(f"{path}: a manifest is a mapping with a 'shots' list")
    file_defaults = data.get("defaults") or {}
    if not isinstance(file_defaults, dict):
        raise ManifestError(f"{path}: 'defaults' must be a mapping")
    return {**defaults, **file_defaults}, list(data["shots"])


def _cell(v: str) -> Any:
    try:
        return yaml.safe_load(v)
    except yaml.YAMLError:
        return v


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        try:
            return value.format(**names)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"template {value!r}: unknown or bad placeholder {e}") from None
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


def expand(defaults: dict[str, Any], shots: list[Any]) -> tuple[list[Row], list[RowError]]:
    """Every row merged over the defaults, templates filled, validated as a spec."""
    rows: list[Row] = []
    errors: list[RowError] = []
    for i, raw in enumerate(shots, start=1):
        if not isinstance(raw, dict):
            errors.append(RowError(i, "?", "row", "must be a mapping of fields"))
            continue
        names = {k: str(raw[k]) for k in TEMPLATE_VARS if k in raw}
        label = names.get("shot") or str(raw.get("name", f"row {i}"))
        merged = {k: v for k, v in {**defaults, **raw}.items() if k not in TEMPLATE_VARS}
        try:
            data = {k: _fill(v, names) for k, v in merged.items()}
        except ValueError as e:
            errors.append(RowError(i, label, "template", str(e)))
            continue
        try:
            spec = parse_spec(data)
        except SpecError as e:
            errors.extend(RowError(i, label, f, r) for f, r in e.problems)
            continue
        if spec.name is None:
            errors.append(RowError(i, label, "name", "every row needs a name (or a name template)"))
            continue
        rows.append(Row(i, label, spec, data))
    seen: dict[str, int] = {}
    for r in rows:
        if r.name in seen:
            errors.append(
                RowError(r.row, r.label, "name", f"{r.name!r} is also row {seen[r.name]}")
            )
        seen[r.name] = r.row
    return rows, errors


def references(spec: TrainSpec | RenderSpec) -> list[str]:
    refs = [str(a) for a in spec.after]
    if isinstance(spec, RenderSpec) and spec.checkpoint.startswith("job:"):
        refs.append(spec.checkpoint[4:])
    return refs


def order(rows: list[Row]) -> tuple[list[Row], list[RowError]]:
    """Rows with the rows they depend on first; a cycle is an error naming its rows."""
    by_name = {r.name: r for r in rows}
    for r in rows:
        r.needs = [n for n in references(r.spec) if n in by_name and n != r.name]
    out: list[Row] = []
    state: dict[str, int] = {}
    errors: list[RowError] = []

    def visit(r: Row, trail: list[str]) -> None:
        if state.get(r.name) == 2:
            return
        if state.get(r.name) == 1:
            cycle = " -> ".join([*trail, r.name])
            errors.append(RowError(r.row, r.label, "after", f"dependency cycle: {cycle}"))
            return
        state[r.name] = 1
        for n in r.needs:
            visit(by_name[n], [*trail, r.name])
        state[r.name] = 2
        out.append(r)

    for r in rows:
        visit(r, [])
    return out, errors


def without(rows: list[Row], bad: set[int]) -> list[Row]:
    """The rows less those numbered in ``bad`` and every row that depends on one of them,
    directly or through other rows (``rows`` as :func:`order` gives them)."""
    dropped = {r.name for r in rows if r.row in bad}
    kept: list[Row] = []
    for r in rows:
        if r.name in dropped or set(r.needs) & dropped:
            dropped.add(r.name)
        else:
            kept.append(r)
    return kept
