"""Timeouts and stall detection: how long an attempt may run, how fast it may finish, and how
long its progress may stand still while its heartbeat goes on (a stuck CUDA call, a
deadlocked decoder keep the heartbeat thread alive, so the lease alone never notices).

A job's spec may set ``max_run_s``, ``min_run_s`` and ``stall_s`` for its main tasks (its
training, or its render chunks); where it sets none, and for the other tasks, the farm's
defaults per task kind apply (``FARM_DEFAULT_TIMEOUTS``, a JSON object such as
``{"render_chunk": {"max_run_s": 3600, "stall_s": 600}}``). The worker's heartbeat thread
applies ``max_run_s`` and ``stall_s`` once a beat, so neither may be below the heartbeat
interval; ``min_run_s`` is checked when the stage returns. Each failure is an attempt's
failure like any other (retries apply), its error naming the rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from farm.states import TaskKind

KINDS = tuple(k.value for k in TaskKind)

RULES = ("max_run_s", "min_run_s", "stall_s")
# The task kinds a job's own timeouts apply to.
OWN_KINDS = ("train", "render_chunk")
# Checked by the heartbeat thread, once a beat.
BEAT_RULES = ("max_run_s", "stall_s")


@dataclass(frozen=True)
class Timeouts:
    max_run_s: float | None = None
    min_run_s: float | None = None
    stall_s: float | None = None


def effective(
    spec: Mapping[str, Any], kind: str, defaults: Mapping[str, Mapping[str, float]]
) -> Timeouts:
    """The job's own values, else the farm's default for the task's kind, else none. A job's
    values are for its main work (:data:`OWN_KINDS`: training, render chunks), not the
    short tasks around it (a render's assembly, a training's sample grid), which a
    ``min_run_s`` meant for a chunk would fail; those take the farm's defaults alone."""
    values: dict[str, float | None] = {}
    for rule in RULES:
        own = spec.get(rule) if kind in OWN_KINDS else None
        values[rule] = float(own) if own is not None else defaults.get(kind, {}).get(rule)
    return Timeouts(**values)


def parse_defaults(text: str, heartbeat_s: float) -> dict[str, dict[str, float]]:
    """``FARM_DEFAULT_TIMEOUTS`` read, or ValueError naming what is wrong."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"default_timeouts: not JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError("default_timeouts: must be an object of task kinds")
    out: dict[str, dict[str, float]] = {}
    for kind, rules in raw.items():
        if kind not in KINDS:
            raise ValueError(f"default_timeouts.{kind}: not a task kind ({', '.join(KINDS)})")
        if not isinstance(rules, dict):
            raise ValueError(f"default_timeouts.{kind}: must be an object of rules")
        for rule, v in rules.items():
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            if rule not in RULES or not ok or v <= 0:
                raise ValueError(
                    f"default_timeouts.{kind}.{rule}: must be one of {', '.join(RULES)}"
                    " with a number of seconds > 0"
                )
        out[kind] = {r: float(v) for r, v in rules.items()}
        found = problems(out[kind], heartbeat_s, f"default_timeouts.{kind}.")
        if found:
            raise ValueError("; ".join(f"{f}: {why}" for f, why in found))
    return out


def problems(
    values: Mapping[str, float | None], heartbeat_s: float, where: str = ""
) -> list[tuple[str, str]]:
    """Timeouts the worker could not apply: below the heartbeat interval, or a minimum that
    is not below the maximum. ``where`` prefixes the field named."""
    out: list[tuple[str, str]] = []
    for rule in BEAT_RULES:
        v = values.get(rule)
        if v is not None and v < heartbeat_s:
            out.append(
                (
                    where + rule,
                    f"{v:g} s is below the heartbeat interval ({heartbeat_s:g} s,"
                    " FARM_HEARTBEAT_S): the worker checks it once a heartbeat",
                )
            )
    lo, hi = values.get("min_run_s"), values.get("max_run_s")
    if lo is not None and hi is not None and lo >= hi:
        out.append((where + "min_run_s", f"{lo:g} s is not below max_run_s ({hi:g} s)"))
    return out
