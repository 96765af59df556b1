"""A training job's loss and metric history, for its page's plots.

Two sources, merged by step (or epoch):
- the checkpoint's JSON sidecar (``<checkpoint>.json``, :mod:`workers.checkpoint`): the whole
  history of the finished run, or of the last periodic (partial) checkpoint while it trains;
- the running task's ``progress`` (the trainer writes its latest record there, at most once a
  second). Only the latest is stored, so this process remembers each one it sees
  (:class:`ProgressLog`): while a page watches, the curve grows point by point between
  checkpoints, and the sidecar fills in whatever nobody watched.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from farm.config import Settings
from farm.outputs import OutsideOutputRoot, confine

# Counters and totals in a record, not metrics to plot.
NOT_METRICS = frozenset({"epoch", "epochs", "step", "steps", "resumed_from", "frames", "of"})
X_KEYS = ("step", "epoch")
Record = dict[str, Any]


def x_of(record: Mapping[str, Any]) -> float | None:
    for key in X_KEYS:
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def merge(*sources: Iterable[Mapping[str, Any]]) -> list[Record]:
    """Records by (phase, x), later sources winning, in order; records without an x dropped."""
    out: dict[tuple[str, float], Record] = {}
    for source in sources:
        for r in source:
            x = x_of(r)
            if x is not None:
                out[(str(r.get("phase") or ""), x)] = dict(r)
    return [out[k] for k in sorted(out, key=lambda k: (k[0] != "", k[0], k[1]))]


def metrics(records: Iterable[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if k not in NOT_METRICS and isinstance(v, int | float) and not isinstance(v, bool):
                seen[k] = None
    return list(seen)


class ProgressLog:
    """The progress records this process has seen, per task attempt (bounded: the newest
    ``tasks`` tasks, ``points`` records each). Shared by every connection of the process."""

    def __init__(self, tasks: int = 256, points: int = 5000) -> None:
        self._tasks, self._points = tasks, points
        self._seen: OrderedDict[tuple[int, int], dict[tuple[str, float], Record]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, task_id: int, attempt: int, record: Mapping[str, Any] | None) -> None:
        if not record or (x := x_of(record)) is None:
            return
        with self._lock:
            entry = self._seen.setdefault((task_id, attempt), {})
            self._seen.move_to_end((task_id, attempt))
            entry[(str(record.get("phase") or ""), x)] = dict(record)
            while len(entry) > self._points:
                entry.pop(next(iter(entry)))
            while len(self._seen) > self._tasks:
                self._seen.popitem(last=False)

    def records(self, task_id: int, attempt: int) -> list[Record]:
        with self._lock:
            return list(self._seen.get((task_id, attempt), {}).values())


def sidecar_history(settings: Settings, job: Mapping[str, Any]) -> list[Record]:
    """The history in the job's checkpoint sidecar (finished or partial), if there is one."""
    paths = [a["path"] for a in job["artifacts"] if a["kind"] == "checkpoint"]
    if isinstance(job["spec"].get("output"), str):
        paths.append(job["spec"]["output"])
    root = settings.output_root_abs()
    for p in paths:
        try:
            sidecar = confine(root, p).with_suffix(".json")
        except OutsideOutputRoot:
            continue
        history = _read_history(sidecar)
        if history:
            return history
    return []


def _read_history(path: Path) -> list[Record]:
    try:
        with path.open(encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return []
    history = meta.get("history") if isinstance(meta, dict) else None
    return [r for r in history if isinstance(r, dict)] if isinstance(history, list) else []


def history(settings: Settings, job: Mapping[str, Any], log: ProgressLog) -> list[Record]:
    """Every record known for a training job (its train task's), oldest first."""
    train = [t for t in job["task_list"] if t["kind"] == "train"]
    if not train:
        return []
    task = train[0]
    if task["state"] == "running":
        log.add(task["id"], task["attempts"], task["progress"])
    meta = [a["meta"].get("history") or [] for a in job["artifacts"] if a["kind"] == "checkpoint"]
    return merge(
        sidecar_history(settings, job),
        *meta,
        log.records(task["id"], task["attempts"]),
        [task["progress"]] if task["progress"] else [],
    )
