"""Operator verbs on a job: cancel and retry. Each goes through the state machine."""

from __future__ import annotations

from sqlalchemy import select, update

from farm.config import Settings
from farm.db import session_scope
from farm.errors import JobStateError, SpecError
from farm.lifecycle import transition
from farm.models import Event, Task
from farm.resolve import find_job
from farm.states import FINISHED_JOB, JobState, TaskState
from farm.usage import record_canceled


def cancel(settings: Settings, ref: str) -> int:
    """Cancel every unfinished task; running workers notice at their next heartbeat."""
    with session_scope(settings) as session:
        job = find_job(session, ref)
        if job.state in FINISHED_JOB:
            raise JobStateError(job.id, job.state.value, "cancel")
        tasks = session.execute(
            select(Task)
            .where(Task.job_id == job.id, Task.state.in_([TaskState.QUEUED, TaskState.RUNNING]))
            .order_by(Task.id)
            .with_for_update()
        ).scalars()
        for task in tasks:
            if task.state is TaskState.RUNNING:
                record_canceled(session, task.id)
            transition(session, task, TaskState.CANCELED, message="canceled by operator")
        return job.id


def pause(settings: Settings, ref: str) -> int:
    """Hold back the job's queued tasks; running ones finish."""
    return _set_paused(settings, ref, True)


def resume(settings: Settings, ref: str) -> int:
    return _set_paused(settings, ref, False)


def _set_paused(settings: Settings, ref: str, paused: bool) -> int:
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
        return job.id


def set_priority(settings: Settings, ref: str, priority: int) -> int:
    """Change the order in which the job's not-yet-sent tasks go out."""
    if not 0 <= priority <= 100:
        raise SpecError([("priority", "must be between 0 and 100")])
    with session_scope(settings) as session:
        job = find_job(session, ref)
        if job.state in FINISHED_JOB:
            raise JobStateError(job.id, job.state.value, "reprioritize")
        job.priority = priority
        session.execute(update(Task).where(Task.job_id == job.id).values(priority=priority))
        return job.id


def retry(settings: Settings, ref: str) -> tuple[int, int]:
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
        return job.id, len(tasks)
