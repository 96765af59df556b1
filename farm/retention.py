"""Retention: finished jobs older than a cutoff are deleted with everything that hangs off
them (tasks, events, task logs, artifact rows, webhook deliveries, worker failures,
dependency edges), in short transactions of at most ``batch`` jobs each, rows locked
``FOR UPDATE SKIP LOCKED`` so that nothing else waits on a purge and two purges never take
the same job. The artifacts' files go after each commit, unless kept.

What is never purged: a job that is not finished or still has a task queued or running (a
failed job's other chunks may still run); a job that another job depends on (``job:NAME``
checkpoints, ``after``) unless that one is purged too (finished before the cutoff), so a
render waiting for, or retrying with, a trained model keeps it; a job holding a checkpoint
that a live job names by path. The bill is not purged either: ``attempts`` has no foreign
key to jobs (farm.usage), so every roll-up reads the same before and after.

A file is deleted only inside the output root (never through a link out of it), only if no
remaining artifact row names it, and only if nothing rewrote it after its artifact was
recorded (its modification time): a later job writing the same path keeps its file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from farm.audit import Actor, record
from farm.config import Settings
from farm.db import session_scope
from farm.formats import TemplateError, parse_template
from farm.outputs import resolve_ref, within

log = logging.getLogger(__name__)

BATCH = 500
# A file's modification time may run this far past its artifact's record (another
# machine's clock, the commit after the write) and still count as the recorded file.
MTIME_SLACK_S = 5.0

_FINISHED = "('succeeded', 'failed', 'canceled')"
# Old finished jobs that may go, oldest first (ix_jobs_finished_at). ``:kept``: the paths of
# checkpoints that live jobs name by path.
_KEEP_FOR_LIVE = (
    " AND j.tasks_queued = 0 AND j.tasks_running = 0"
    " AND NOT EXISTS (SELECT 1 FROM job_dependencies d JOIN jobs l ON l.id = d.job_id"
    " WHERE d.depends_on_id = j.id AND (l.state NOT IN " + _FINISHED + ""
    " OR l.finished_at >= :cutoff OR l.tasks_queued > 0 OR l.tasks_running > 0))"
    " AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.job_id = j.id"
    " AND a.kind = 'checkpoint' AND a.path = ANY(CAST(:kept AS text[])))"
)
_PURGEABLE = (
    "FROM jobs j WHERE j.state IN " + _FINISHED + " AND j.finished_at < :cutoff" + _KEEP_FOR_LIVE
)
_CANDIDATES = text(
    "SELECT j.id, j.finished_at FROM jobs j WHERE j.state IN " + _FINISHED + ""
    " AND j.finished_at < :cutoff AND (j.finished_at, j.id) > (:after_at, :after_id)"
    " ORDER BY j.finished_at, j.id LIMIT :batch"
)
# The candidates that may go, locked. Found by their ids alone (the primary key): with the
# candidates' own conditions here, stale statistics led the planner to probe
# ix_jobs_finished_at's range once per id (3.4 s a batch at 100,000 jobs). A job that left
# its finished state meanwhile (an operator's retry) no longer passes.
_TAKE = text(
    "SELECT j.id FROM jobs j WHERE j.id = ANY(:candidates)"
    " AND j.state NOT IN ('queued', 'running')" + _KEEP_FOR_LIVE + " FOR UPDATE SKIP LOCKED"
)
_PROTECTED = text(
    "SELECT count(*) FROM jobs j WHERE j.state IN " + _FINISHED + " AND j.finished_at < :cutoff"
    " AND j.id NOT IN (SELECT j.id " + _PURGEABLE + ")"
)
_WOULD = text(
    "WITH doomed AS (SELECT j.id " + _PURGEABLE + ")"
    " SELECT (SELECT count(*) FROM doomed),"
    " (SELECT count(*) FROM tasks WHERE job_id IN (SELECT id FROM doomed)),"
    " (SELECT count(*) FROM events WHERE job_id IN (SELECT id FROM doomed)),"
    " (SELECT count(*) FROM task_logs WHERE task_id IN"
    " (SELECT id FROM tasks WHERE job_id IN (SELECT id FROM doomed))),"
    " (SELECT count(*) FROM artifacts WHERE job_id IN (SELECT id FROM doomed)),"
    " (SELECT coalesce(sum(size), 0) FROM artifacts WHERE job_id IN (SELECT id FROM doomed)),"
    " (SELECT count(*) FROM webhook_deliveries WHERE job_id IN (SELECT id FROM doomed))"
)
_LIVE_PATHS = text(
    "SELECT DISTINCT spec->>'checkpoint' FROM jobs WHERE (state IN ('queued', 'running')"
    " OR (state IN " + _FINISHED + " AND (tasks_queued > 0 OR tasks_running > 0)))"
    " AND spec ? 'checkpoint'"
    " AND spec->>'checkpoint' NOT LIKE 'job:%'"
)
# Children first, each by an index on its job or task, then the tasks and the jobs: their
# foreign keys' actions then find nothing left to do.
_DELETES = (
    ("events", "DELETE FROM events WHERE job_id = ANY(:ids)"),
    ("task_logs", "DELETE FROM task_logs WHERE task_id = ANY(:tasks)"),
    ("webhook_deliveries", "DELETE FROM webhook_deliveries WHERE job_id = ANY(:ids)"),
    ("worker_failures", "DELETE FROM worker_failures WHERE job_id = ANY(:ids)"),
    (
        "job_dependencies",
        "DELETE FROM job_dependencies WHERE job_id = ANY(:ids) OR depends_on_id = ANY(:ids)",
    ),
    ("workers", "UPDATE workers SET task_id = NULL WHERE task_id = ANY(:tasks)"),
    ("tasks", "DELETE FROM tasks WHERE job_id = ANY(:ids)"),
    ("jobs", "DELETE FROM jobs WHERE id = ANY(:ids)"),
)
_ARTIFACTS = text(
    "DELETE FROM artifacts WHERE job_id = ANY(:ids)"
    " RETURNING job_id, kind, path, meta, created_at, size"
)
_STILL_NAMED = text("SELECT DISTINCT path FROM artifacts WHERE path = ANY(:paths)")


@dataclass(frozen=True)
class Cursor:
    """Where a purge stopped in the order of old finished jobs (finished_at, id)."""

    at: datetime
    id: int


START = Cursor(datetime(1, 1, 1, tzinfo=UTC), 0)


@dataclass(frozen=True)
class Doomed:
    """An artifact whose row went: its files go after the commit (see :func:`files_of`)."""

    job_id: int
    kind: str
    path: str
    meta: dict[str, Any]
    created_at: datetime


@dataclass
class PurgeReport:
    cutoff: datetime
    dry_run: bool
    jobs: int = 0
    tasks: int = 0
    events: int = 0
    task_logs: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    webhook_deliveries: int = 0
    # finished before the cutoff, kept: a live job still needs them
    protected: int = 0
    files_deleted: int = 0
    files_kept: int = 0
    batches: int = 0
    longest_transaction_s: float = 0.0
    seconds: float = 0.0
    kept_reasons: list[str] = field(default_factory=list)
    # Where the last batch stopped; None once every old finished job has been looked at.
    cursor: Cursor | None = None

    def public(self) -> dict[str, Any]:
        out = dict(vars(self))
        out.pop("cursor")
        out["cutoff"] = self.cutoff.isoformat()
        out["kept_reasons"] = self.kept_reasons[:20]
        return out


def past(candidates: Sequence[Any], batch: int) -> Cursor | None:
    """The cursor after one batch's ``candidates`` (rows with ``id`` and ``finished_at``, in
    order): past the last, or None when fewer than ``batch`` came, as then none are left."""
    if len(candidates) < batch or not candidates:
        return None
    last = candidates[-1]
    return Cursor(last.finished_at, int(last.id))


def cutoff_for(now: datetime, age: timedelta) -> datetime:
    return now - age


def confined_file(root: Path, path: str) -> Path | None:
    """Where ``path`` lies inside the output root ``root`` (resolved), its own last component
    not followed (unlinking a link removes the link, never its target); None when it lies
    outside the root or is the root itself."""
    p = Path(path)
    if not p.is_absolute():
        p = root / p
    if p.name in ("", ".", ".."):
        return None
    parent = resolve_ref(root, str(p.parent))
    if parent is None or not within(parent, root):
        return None
    return parent / p.name


def sequence_frames(folder: Path, template: str, names: Iterable[str]) -> list[str]:
    """Of ``names`` (a folder's entries), the frames ``template`` makes: a sequence shares
    its folder with whatever else is there, which stays."""
    try:
        prefix, _, suffix = parse_template(template)
    except TemplateError:
        return []
    if Path(prefix).parent.name and Path(prefix).parent.name != folder.name:
        return []
    pattern = re.compile(rf"^{re.escape(os.path.basename(prefix))}-?\d+{re.escape(suffix)}$")
    return sorted(n for n in names if pattern.match(n))


def files_of(root: Path, doomed: Doomed) -> tuple[list[Path], str | None]:
    """The files a purged artifact leaves to delete, or why none: outside the output root,
    or a folder that is not a sequence's. A checkpoint's JSON sidecar goes with it."""
    target = confined_file(root, doomed.path)
    if target is None:
        return [], f"{doomed.path}: outside the output root {root}"
    if target.is_dir() and not target.is_symlink():
        template = str(doomed.meta.get("path") or "")
        if doomed.kind != "sequence" or not template:
            return [], f"{doomed.path}: a folder, not a file"
        return [target / n for n in sequence_frames(target, template, os.listdir(target))], None
    files = [target]
    if doomed.kind == "checkpoint":
        files.append(target.with_suffix(".json"))
    return files, None


def delete_files(root: Path, doomed: Sequence[Doomed], report: PurgeReport) -> None:
    """After the commit: each purged artifact's files, unless rewritten since it was
    recorded; a job's own folder (``job-N``, previews) goes when that leaves it empty."""
    for d in doomed:
        files, why = files_of(root, d)
        if why is not None:
            report.files_kept += 1
            report.kept_reasons.append(why)
            continue
        limit = d.created_at.timestamp() + MTIME_SLACK_S
        for f in files:
            try:
                if os.lstat(f).st_mtime > limit:
                    report.files_kept += 1
                    report.kept_reasons.append(f"{f}: rewritten after job {d.job_id} made it")
                    continue
                f.unlink()
                report.files_deleted += 1
            except FileNotFoundError:
                continue
            except OSError as e:
                report.files_kept += 1
                report.kept_reasons.append(f"{f}: {e}")
        folder = (confined_file(root, d.path) or root).parent
        if folder.name == f"job-{d.job_id}" and folder != root:
            with contextlib.suppress(OSError):  # not empty: something else lives there
                folder.rmdir()


def live_checkpoint_paths(session: Session, root: Path) -> list[str]:
    """The checkpoints live jobs name by path, as written and resolved (artifact rows hold
    the resolved path)."""
    refs = [r for (r,) in session.execute(_LIVE_PATHS) if r]
    resolved = [str(p) for p in (resolve_ref(root, r) for r in refs) if p is not None]
    return sorted(set(refs) | set(resolved))


def purge(
    settings: Settings,
    cutoff: datetime,
    *,
    keep_artifacts: bool = False,
    dry_run: bool = False,
    batch: int = BATCH,
    max_batches: int | None = None,
    count_protected: bool = True,
    start: Cursor = START,
    actor: Actor | None = None,
) -> PurgeReport:
    """Delete what finished before ``cutoff``, ``batch`` jobs a transaction (``max_batches``
    at most, from ``start``: the report's ``cursor`` says where it stopped); with ``dry_run``,
    count what would go and write nothing. ``count_protected``: count the old finished jobs
    kept for live ones (a scan the sweeper's passes skip)."""
    root = settings.output_root_abs()
    report = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    began = time.monotonic()
    if dry_run:
        with session_scope(settings) as session:
            session.execute(text("SET TRANSACTION READ ONLY"))
            kept = live_checkpoint_paths(session, root)
            params = {"cutoff": cutoff, "kept": kept}
            row = session.execute(_WOULD, params).one()
            (report.jobs, report.tasks, report.events, report.task_logs, report.artifacts,
             report.artifact_bytes, report.webhook_deliveries) = (int(v) for v in row)  # fmt: skip
            report.protected = int(session.execute(_PROTECTED, params).scalar_one())
        report.seconds = time.monotonic() - began
        return report
    with session_scope(settings) as session:
        kept = live_checkpoint_paths(session, root)
    cursor: Cursor | None = start
    while cursor is not None and (max_batches is None or report.batches < max_batches):
        began_batch = time.monotonic()
        with session_scope(settings) as session:
            before = report.jobs
            doomed, looked, cursor = _purge_batch(session, kept, cutoff, batch, cursor, report)
            if report.jobs > before:  # the batch's audit row, in the batch's transaction
                detail = {"jobs": report.jobs - before, "keep_artifacts": keep_artifacts}
                record(session, actor, "purge", "jobs", f"finished before {cutoff.isoformat()}",
                       detail)  # fmt: skip
        took = time.monotonic() - began_batch
        report.longest_transaction_s = max(report.longest_transaction_s, took)
        report.batches += looked
        if not keep_artifacts:
            delete_files(root, doomed, report)
    report.cursor = cursor
    if not count_protected:
        report.seconds = time.monotonic() - began
        return report
    with session_scope(settings) as session:
        kept = live_checkpoint_paths(session, root)
        report.protected = int(
            session.execute(_PROTECTED, {"cutoff": cutoff, "kept": kept}).scalar_one()
        )
    report.seconds = time.monotonic() - began
    if report.jobs:
        log.info("purge: %s jobs finished before %s deleted", report.jobs, cutoff.isoformat())
    return report


def _purge_batch(
    session: Session,
    kept: list[str],
    cutoff: datetime,
    batch: int,
    after: Cursor,
    report: PurgeReport,
) -> tuple[list[Doomed], bool, Cursor | None]:
    """One transaction: of the next ``batch`` candidates after ``after``, lock those that may
    go and delete them and theirs; returns their artifacts, whether there were candidates,
    and the cursor past them (None: the last of them was the last old finished job)."""
    conn = session.connection()
    conn.execute(text("SET LOCAL lock_timeout = '5s'"))
    candidates = conn.execute(
        _CANDIDATES,
        {"cutoff": cutoff, "after_at": after.at, "after_id": after.id, "batch": batch},
    ).all()
    if not candidates:
        return [], False, None
    following = past(candidates, batch)
    params = {"cutoff": cutoff, "kept": kept, "candidates": [int(c.id) for c in candidates]}
    ids = list(conn.execute(_TAKE, params).scalars())
    if not ids:
        return [], True, following
    tasks = list(conn.execute(text("SELECT id FROM tasks WHERE job_id = ANY(:ids)"), {"ids": ids})
                 .scalars())  # fmt: skip
    doomed = []
    for j, k, p, m, at, size in conn.execute(_ARTIFACTS, {"ids": ids}):
        doomed.append(Doomed(int(j), str(k), str(p), dict(m or {}), at))
        report.artifact_bytes += int(size)
    report.artifacts += len(doomed)
    counts: dict[str, int] = {}
    for table, sql in _DELETES:
        counts[table] = conn.execute(text(sql), {"ids": ids, "tasks": tasks}).rowcount
    report.jobs += counts["jobs"]
    report.tasks += counts["tasks"]
    report.events += counts["events"]
    report.task_logs += counts["task_logs"]
    report.webhook_deliveries += counts["webhook_deliveries"]
    named = set(conn.execute(_STILL_NAMED, {"paths": [d.path for d in doomed]}).scalars())
    kept_paths = set(kept)
    gone = []
    for d in doomed:
        if d.path in named or d.path in kept_paths:
            report.files_kept += 1
            report.kept_reasons.append(f"{d.path}: another job's artifact names it")
        else:
            gone.append(d)
    return gone, True, following


def due_cutoff(settings: Settings, now: datetime) -> datetime | None:
    """The sweeper's cutoff under ``FARM_RETENTION_DAYS``; None when retention is off."""
    if settings.retention_days is None:
        return None
    return cutoff_for(now, timedelta(days=settings.retention_days))
