"""What the monitor reads that farm.queries does not: the jobs page (more filters, sort
orders, keyset pages and the count per state, from the job's task counters without reading
its tasks), a job with its tasks' times, the watermarks the live stream compares, and a
session's token (farm.tokens.principal_by_hash). Plain dicts out, never ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, text, tuple_
from sqlalchemy.orm import Session

from farm.blocklist import job_blocks
from farm.config import Settings
from farm.db import session_scope
from farm.errors import JobNotFound
from farm.models import Artifact, Event, Job, Task
from farm.states import JobState
from farm.web.listing import SORTS, JobFilters, cursor_of

# The newest events a job page shows (a long job's first ones are summarised as a count).
EVENTS_SHOWN = 300
_COUNTERS = ("queued", "running", "succeeded", "failed", "canceled")


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def job_summary(job: Job) -> dict[str, Any]:
    counts = {c: getattr(job, f"tasks_{c}") for c in _COUNTERS}
    total = sum(counts.values())
    return {
        "id": job.id,
        "name": job.name,
        "kind": job.kind,
        "state": job.state.value,
        "paused": job.paused,
        "priority": job.priority,
        "tags": list(job.tags or []),
        "pool": job.pool,
        "submitter": job.submitter,
        "tasks": {"total": total, **counts},
        "progress": counts["succeeded"] / total if total else 0.0,
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


def _narrow(f: JobFilters, *, with_state: bool = True) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if with_state and f.state:
        where.append(Job.state == JobState(f.state))
    if f.name:
        pattern = f.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(Job.name.ilike(f"%{pattern}%", escape="\\"))
    if f.tag:
        where.append(Job.tags.contains([f.tag]))
    if f.submitter:
        where.append(Job.submitter == f.submitter)
    if f.pool:
        where.append(Job.pool == f.pool)
    if f.kind:
        where.append(Job.kind == f.kind)
    return where


@dataclass(frozen=True)
class JobsPage:
    rows: list[dict[str, Any]]
    # How many jobs each state has under the same filters, the state filter aside (so the
    # counts say where the others are).
    counts: dict[str, int]
    next_after: tuple[Any, int] | None  # the next page's cursor; None on the last page


def jobs_page(settings: Settings, f: JobFilters) -> JobsPage:
    """One page of jobs in the sort's order, with the count per state."""
    sort = SORTS[f.sort]
    key = getattr(Job, sort.column)
    order = [key.desc(), Job.id.desc()] if sort.descending else [key.asc(), Job.id.asc()]
    if sort.column == "id":
        order = order[1:]
    q = select(Job).where(*_narrow(f)).order_by(*order).limit(f.limit + 1)
    if f.after is not None:
        pair = tuple_(key, Job.id) if sort.column != "id" else Job.id
        bound: Any = tuple_(*f.after) if sort.column != "id" else f.after[1]
        q = q.where(pair < bound if sort.descending else pair > bound)
    counted = select(Job.state, func.count()).where(*_narrow(f, with_state=False))
    with session_scope(settings) as s:
        jobs = s.execute(q).scalars().all()
        counts = {state.value: n for state, n in s.execute(counted.group_by(Job.state))}
    rows = [job_summary(j) for j in jobs[: f.limit]]
    more = len(jobs) > f.limit
    return JobsPage(
        rows,
        {st.value: counts.get(st.value, 0) for st in JobState},
        cursor_of(rows[-1], sort) if more and rows else None,
    )


def jobs_watermark(settings: Settings) -> tuple[int, int]:
    """The newest event and the newest job: any change a jobs page shows moves one of them
    (a submission writes an event too), except a priority change, which writes none."""
    with session_scope(settings) as s:
        row = s.execute(
            select(select(func.max(Event.id)).scalar_subquery(),
                   select(func.max(Job.id)).scalar_subquery())
        ).one()  # fmt: skip
    return int(row[0] or 0), int(row[1] or 0)


_JOB_WATERMARK = text(
    "SELECT j.priority, j.paused, (SELECT max(e.id) FROM events e WHERE e.job_id = j.id),"
    " (SELECT jsonb_agg(t.progress ORDER BY t.id) FROM tasks t"
    "  WHERE t.job_id = j.id AND t.state = 'running')"
    " FROM jobs j WHERE j.id = :job"
)


def job_watermark(settings: Settings, job_id: int) -> tuple[Any, ...] | None:
    """What changes when anything on a job's page does: its newest event, its priority and
    pause flag, and its running tasks' progress (which moves without events). One round trip."""
    with session_scope(settings) as s:
        row = s.execute(_JOB_WATERMARK, {"job": job_id}).one_or_none()
    return None if row is None else (row[0], row[1], row[2], repr(row[3]))


def _task(t: Task, now: datetime) -> dict[str, Any]:
    end = t.finished_at or (now if t.state.value == "running" else None)
    return {
        "id": t.id,
        "kind": t.kind.value,
        "stage": t.stage,
        "index": t.index,
        "frames": t.frames,
        "position": t.position,
        "frame_count": t.frame_count,
        "state": t.state.value,
        "attempts": t.attempts,
        "max_attempts": t.max_attempts,
        "worker": t.worker,
        "progress": t.progress,
        "error": t.error,
        "started_at": _iso(t.started_at),
        "finished_at": _iso(t.finished_at),
        "duration_s": (end - t.started_at).total_seconds() if t.started_at and end else None,
    }


def _events(s: Session, job_id: int) -> tuple[list[dict[str, Any]], int]:
    total = s.execute(select(func.count()).where(Event.job_id == job_id)).scalar_one()
    newest = (
        s.execute(
            select(Event)
            .where(Event.job_id == job_id)
            .order_by(Event.id.desc())
            .limit(EVENTS_SHOWN)
        )
        .scalars()
        .all()
    )
    return [
        {
            "id": e.id,
            "at": _iso(e.at),
            "task_id": e.task_id,
            "from": e.from_state,
            "to": e.to_state,
            "worker": e.worker,
            "attempt": e.attempt,
            "message": e.message,
        }
        for e in reversed(newest)
    ], total


def job_view(settings: Settings, job_id: int) -> dict[str, Any]:
    """A job as its page shows it. Raises JobNotFound."""
    with session_scope(settings) as s:
        job = s.get(Job, job_id)
        if job is None:
            raise JobNotFound(str(job_id))
        now = s.execute(select(func.now())).scalar_one()
        tasks = s.execute(select(Task).where(Task.job_id == job_id).order_by(Task.id)).scalars()
        artifacts = s.execute(
            select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.id)
        ).scalars()
        events, total = _events(s, job_id)
        return {
            **job_summary(job),
            "spec": job.spec,
            "now": _iso(now),
            "task_list": [_task(t, now) for t in tasks],
            "artifacts": [
                {
                    "id": a.id,
                    "kind": a.kind,
                    "path": a.path,
                    "size": a.size,
                    "sha256": a.sha256,
                    "meta": a.meta or {},
                    "task_id": a.task_id,
                    "created_at": _iso(a.created_at),
                }
                for a in artifacts
            ],
            "events": events,
            "events_total": total,
            "worker_failures": job_blocks(s, job_id),
        }
