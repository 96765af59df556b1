"""Operator verbs on a job: cancel, retry, pause, resume, priority. Each goes through the
state machine and writes its audit row (farm.audit) in the same transaction; ``actor`` None
is the CLI's local user."""

from __future__ import annotations

from sqlalchemy import select, update

from farm.audit import Actor, record
from farm.config import Settings
from farm.db import session_scope
from farm.errors import JobStateError, SpecError
from farm.lifecycle import transition
from farm.models import Event, Task
from farm.resolve import find_job
from farm.states import FINISHED_JOB, JobState, TaskState
from farm.usage import record_canceled


def cancel(settings: Settings, ref: str, *, actor: Actor | None = None) -> int:
    """Cancel every unfinished task; running workers notice at their next heartbeat."""
    with session_scope(settings) as session:
        job = find_job(session, ref)
        if job.state in FINISHED_JOB:
            raise JobStateError(job.id, job.state.value, "cancel")
        was = job.state.value
        tasks = (
            session.execute(
                select(Task)
                .where(Task.job_id == job.id, Task.state.in_([TaskState.QUEUED, TaskState.RUNNING]))
                .order_by(Task.id)
                .with_for_update()
            )
            .scalars()
            .all()
        )
        for task in tasks:
            if task.state is TaskState.RUNNING:
                record_canceled(session, task.id)
            transition(session, task, TaskState.CANCELED, message="canceled by operator")
        detail = {"from_state": was, "tasks": len(tasks)}
        record(session, actor, "cancel", "job", str(job.id), detail)
        return job.id


def pause(settings: Settings, ref: str, *, actor: Actor | None = None) -> int:
    """Hold back the job's queued tasks; running ones finish."""
    return _set_paused(settings, ref, True, actor)


def resume(settings: Settings, ref: str, *, actor: Actor | None = None) -> int:
    return _set_paused(settings, ref, False, actor)


def _set_paused(settings: Settings, ref: str, paused: bool, actor: Actor | None) -> int:
    with session_scope(settings) as session:
        job = find_job(session, ref)
        if job.state in FINISHED_JOB or job.paused == paused:
            state = "paused" if job.paused else job.state.value
            raise JobStateError(job.id, state, "pause" if paused else "resume")
        job.paused = paused
        session.add(
            Event(
                job_id=job.id, to_state=job.state.value, message="paused" if paused else "resumed"
            )
        )
        record(session, actor, "pause" if paused else "resume", "job", str(job.id))
        return job.id


def set_priority(settings: Settings, ref: str, priority: int, *, actor: Actor | None = None) -> int:
    """Change the order in which the job's not-yet-sent tasks go out."""
    if not 0 <= priority <= 100:
        raise SpecError([("priority", "must be between 0 and 100")])
    with session_scope(settings) as session:
        job = find_job(session, ref)
        if job.state in FINISHED_JOB:
            raise JobStateError(job.id, job.state.value, "reprioritize")
        old, job.priority = job.priority, priority
        session.execute(update(Task).where(Task.job_id == job.id).values(priority=priority))
        record(session, actor, "priority", "job", str(job.id), {"old": old, "new": priority})
        return job.id


def retry(settings: Settings, ref: str, *, actor: Actor | None = None) -> tuple[int, int]:
    """Re-queue the job's failed tasks, with a fresh attempt budget; returns (job, count)."""
    with session_scope(settings) as session:
        job = find_job(session, ref)
        if job.state is not JobState.FAILED:
            raise JobStateError(job.id, job.state.value, "retry")
        tasks = (
            session.execute(
                select(Task)
                .where(Task.job_id == job.id, Task.state == TaskState.FAILED)
                .order_by(Task.id)
                .with_for_update()
            )
            .scalars()
            .all()
        )
        for task in tasks:
            task.attempts = 0
            task.sends = 0
            task.not_before = None
            transition(session, task, TaskState.QUEUED, message="retried by operator")
        record(session, actor, "retry", "job", str(job.id), {"tasks": len(tasks)})
        return job.id, len(tasks)
