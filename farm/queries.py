"""Read-side views of jobs for the CLI (and later the API): plain dicts, never ORM objects."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm.blocklist import job_blocks
from farm.config import Settings
from farm.db import session_scope
from farm.models import Artifact, Event, Job, Task
from farm.resolve import find_job
from farm.states import FINISHED_JOB, JobState


def _iso(v: Any) -> str | None:
    return v.isoformat() if v is not None else None


def job_row(job: Job, counts: Counter[str]) -> dict[str, Any]:
    total = sum(counts.values())
    return {
        "id": job.id,
        "name": job.name,
        "kind": job.kind,
        "state": job.state.value,
        "priority": job.priority,
        "paused": job.paused,
        "tags": list(job.tags or []),
        "pool": job.pool,
        "submitter": job.submitter,
        "tasks": {"total": total, **dict(counts)},
        "progress": (counts.get("succeeded", 0) / total) if total else 0.0,
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


def _counts(session: Session, job_ids: list[int]) -> dict[int, Counter[str]]:
    out: dict[int, Counter[str]] = {j: Counter() for j in job_ids}
    rows = session.execute(
        select(Task.job_id, Task.state, func.count())
        .where(Task.job_id.in_(job_ids))
        .group_by(Task.job_id, Task.state)
    )
    for job_id, state, n in rows:
        out[job_id][state.value] = n
    return out


def list_jobs(settings: Settings, limit: int = 50) -> list[dict[str, Any]]:
    with session_scope(settings) as s:
        jobs = s.execute(select(Job).order_by(Job.id.desc()).limit(limit)).scalars().all()
        counts = _counts(s, [j.id for j in jobs])
        return [job_row(j, counts[j.id]) for j in jobs]


def list_jobs_page(
    settings: Settings,
    *,
    state: str | None = None,
    name: str | None = None,
    kind: str | None = None,
    tag: str | None = None,
    submitter: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, keyset-paginated by id: ``before`` is the last id of the previous page."""
    q = select(Job).order_by(Job.id.desc()).limit(limit + 1)
    if state:
        q = q.where(Job.state == JobState(state))
    if name:
        q = q.where(Job.name == name)
    if kind:
        q = q.where(Job.kind == kind)
    if tag:
        q = q.where(Job.tags.contains([tag]))
    if submitter:
        q = q.where(Job.submitter == submitter)
    if before is not None:
        q = q.where(Job.id < before)
    with session_scope(settings) as s:
        jobs = s.execute(q).scalars().all()
        more = len(jobs) > limit
        jobs = jobs[:limit]
        counts = _counts(s, [j.id for j in jobs])
        rows = [job_row(j, counts[j.id]) for j in jobs]
    return rows, (rows[-1]["id"] if more and rows else None)


def artifact_path(settings: Settings, artifact_id: int) -> tuple[str, str] | None:
    with session_scope(settings) as s:
        a = s.get(Artifact, artifact_id)
        return (a.path, a.kind) if a is not None else None


def job_detail(settings: Settings, ref: str) -> dict[str, Any]:
    with session_scope(settings) as s:
        job = find_job(s, ref)
        row = job_row(job, _counts(s, [job.id])[job.id])
        row["spec"] = job.spec
        row["task_list"] = [
            {
                "id": t.id,
                "kind": t.kind.value,
                "index": t.index,
                "frames": t.frames,
                "state": t.state.value,
                "attempts": t.attempts,
                "max_attempts": t.max_attempts,
                "worker": t.worker,
                "progress": t.progress,
                "error": t.error,
            }
            for t in s.execute(
                select(Task).where(Task.job_id == job.id).order_by(Task.id)
            ).scalars()
        ]
        row["artifacts"] = [
            {
                "id": a.id,
                "kind": a.kind,
                "path": a.path,
                "size": a.size,
                "sha256": a.sha256,
                "meta": a.meta,
            }
            for a in s.execute(
                select(Artifact).where(Artifact.job_id == job.id).order_by(Artifact.id)
            ).scalars()
        ]
        row["worker_failures"] = job_blocks(s, job.id)
        row["events"] = [
            {
                "at": _iso(e.at),
                "task_id": e.task_id,
                "from": e.from_state,
                "to": e.to_state,
                "worker": e.worker,
                "attempt": e.attempt,
                "message": e.message,
            }
            for e in s.execute(
                select(Event).where(Event.job_id == job.id).order_by(Event.id)
            ).scalars()
        ]
        return row


def wait_for_job(
    settings: Settings,
    job_id: int,
    *,
    timeout_s: float | None = None,
    poll_s: float = 0.5,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll until the job is finished; returns its last row. Raises TimeoutError."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        with session_scope(settings) as s:
            job = s.get(Job, job_id)
            if job is None:
                raise LookupError(job_id)
            row = job_row(job, _counts(s, [job_id])[job_id])
        if on_poll is not None:
            on_poll(row)
        if JobState(row["state"]) in FINISHED_JOB:
            return row
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {row['state']} after {timeout_s}s")
        time.sleep(poll_s)
