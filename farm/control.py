"""Operator verbs on a job: cancel and retry. Each goes through the state machine."""

from __future__ import annotations

from sqlalchemy import select

from farm.config import Settings
from farm.db import session_scope
from farm.errors import JobStateError
from farm.lifecycle import refresh_job_state, transition
from farm.models import Task
from farm.states import FINISHED_JOB, JobState, TaskState
from farm.submit import find_job


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
            transition(session, task, TaskState.CANCELED, message="canceled by operator")
        refresh_job_state(session, job.id)
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
