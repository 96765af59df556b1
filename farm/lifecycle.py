"""Every status change goes through :func:`transition`: it checks the state machine's table,
writes the event, and re-derives the job's state in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farm import webhooks
from farm.errors import InvalidTransition
from farm.models import Event, Job, Task
from farm.states import FINISHED_JOB, JobState, TaskState, can_transition, derive_job_state


def transition(
    session: Session,
    task: Task,
    dst: TaskState,
    *,
    message: str | None = None,
    worker: str | None = None,
    now: datetime | None = None,
) -> JobState:
    """Move ``task`` to ``dst``, record the event, update its job; returns the job's new state.

    The caller holds the task's row lock (``with_for_update``), so two processes cannot both
    make the same change.
    """
    src = task.state
    if not can_transition(src, dst):
        raise InvalidTransition(task.id, src.value, dst.value)
    when = now or session.execute(select(func.now())).scalar_one()
    task.state = dst
    if dst is TaskState.QUEUED:
        task.sent_at = None
        task.lease_expires_at = None
        task.worker_pid = None
    elif dst is TaskState.RUNNING:
        task.started_at = when
        task.finished_at = None
        task.error = None
    else:
        task.finished_at = when
        task.lease_expires_at = None
    if (dst in (TaskState.FAILED, TaskState.QUEUED) and message and src is TaskState.RUNNING) or (
        dst is TaskState.FAILED and message
    ):
        task.error = message
    session.add(
        Event(
            job_id=task.job_id,
            task_id=task.id,
            at=when,
            from_state=src.value,
            to_state=dst.value,
            worker=worker or task.worker,
            attempt=task.attempts,
            message=message,
        )
    )
    session.flush()
    return refresh_job_state(session, task.job_id, now=when)


def refresh_job_state(session: Session, job_id: int, *, now: datetime | None = None) -> JobState:
    """Re-derive the job's state from its tasks and record a job-level event when it changes."""
    # FOR NO KEY UPDATE: the event rows inserted just before hold FOR KEY SHARE on this job
    # (their foreign key); a plain FOR UPDATE here deadlocks two workers of one job.
    job = session.execute(
        select(Job).where(Job.id == job_id).with_for_update(key_share=True)
    ).scalar_one()
    # The derivation depends only on which states occur, not how often: one row per state.
    states = session.execute(select(Task.state).where(Task.job_id == job_id).distinct()).scalars()
    new = derive_job_state(states)
    if new is not job.state:
        when = now or session.execute(select(func.now())).scalar_one()
        if new is JobState.RUNNING and job.started_at is None:
            job.started_at = when
        job.finished_at = when if new in FINISHED_JOB else None
        if new is JobState.FAILED:
            job.error = session.execute(
                select(Task.error)
                .where(Task.job_id == job_id, Task.state == TaskState.FAILED)
                .order_by(Task.id)
                .limit(1)
            ).scalar_one_or_none()
        elif new is not JobState.CANCELED:
            job.error = None
        session.add(Event(job_id=job_id, at=when, from_state=job.state.value, to_state=new.value))
        job.state = new
        webhooks.enqueue(session, job, new, when)
        session.flush()
    return new


def lock_task(session: Session, task_id: int) -> Task | None:
    return session.execute(
        select(Task).where(Task.id == task_id).with_for_update()
    ).scalar_one_or_none()
