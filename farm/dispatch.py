"""Sending ready tasks to the broker: the outbox side of "commit first, then send".

A task is ready when it is queued and unsent, its back-off has passed, every task of the
earlier stages of its job has succeeded, and every job it depends on has succeeded. Stage
transitions are decided here, from the database, rather than by Celery chords.
"""

from __future__ import annotations

import logging

from celery import Celery
from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from farm.celery_app import TASK_NAMES
from farm.config import Settings
from farm.db import session_scope
from farm.lifecycle import transition
from farm.models import Job, JobDependency, Task
from farm.planner import describe
from farm.states import JobState, TaskState

log = logging.getLogger(__name__)
_FAILED_DEPS = (JobState.FAILED, JobState.CANCELED)


def ready_tasks_query(queue: str, limit: int) -> Select[Task, str]:
    earlier = aliased(Task)
    dep_job = aliased(Job)
    blocked_by_stage = exists().where(
        earlier.job_id == Task.job_id,
        earlier.stage < Task.stage,
        earlier.state != TaskState.SUCCEEDED,
    )
    blocked_by_job = exists().where(
        JobDependency.job_id == Task.job_id,
        dep_job.id == JobDependency.depends_on_id,
        dep_job.state != JobState.SUCCEEDED,
    )
    return (
        select(Task, Job.name)
        .join(Job, Job.id == Task.job_id)
        .where(
            Task.queue == queue,
            Task.state == TaskState.QUEUED,
            Task.sent_at.is_(None),
            Job.paused.is_(False),
            or_(Task.not_before.is_(None), Task.not_before <= func.now()),
            ~blocked_by_stage,
            ~blocked_by_job,
        )
        .order_by(Job.priority.desc(), Task.id)
        .limit(limit)
        .with_for_update(of=Task, skip_locked=True)
    )


def send_budget(running: int, in_flight: int, ahead: int) -> int:
    """How many more messages a queue may get: enough for every busy worker to find its next
    task waiting, plus ``ahead``; never a backlog that would outrank later, higher priorities."""
    return max(0, running + ahead - in_flight)


def queue_loads(session: Session) -> dict[str, tuple[int, int, int]]:
    """Per queue with unsent queued work: (running, sent-but-unclaimed, unsent)."""
    rows = session.execute(
        select(
            Task.queue,
            func.count().filter(Task.state == TaskState.RUNNING),
            func.count().filter(Task.state == TaskState.QUEUED, Task.sent_at.is_not(None)),
            func.count().filter(Task.state == TaskState.QUEUED, Task.sent_at.is_(None)),
        )
        .where(Task.state.in_([TaskState.QUEUED, TaskState.RUNNING]))
        .group_by(Task.queue)
    ).all()
    return {q: (r, f, u) for q, r, f, u in rows if u}


def fail_orphans(session: Session) -> int:
    """Fail queued tasks of jobs whose dependency failed or was canceled, naming it."""
    dep_job = aliased(Job)
    rows = session.execute(
        select(Task, dep_job.id, dep_job.name, dep_job.state)
        .join(JobDependency, JobDependency.job_id == Task.job_id)
        .join(dep_job, dep_job.id == JobDependency.depends_on_id)
        .where(Task.state == TaskState.QUEUED, dep_job.state.in_(_FAILED_DEPS))
        .order_by(Task.id)
        .with_for_update(of=Task, skip_locked=True)
    ).all()
    done: set[int] = set()
    for task, dep_id, dep_name, dep_state in rows:
        if task.id in done:
            continue
        done.add(task.id)
        transition(
            session,
            task,
            TaskState.FAILED,
            message=f"dependency job {dep_id} ({dep_name}) {dep_state.value}",
        )
    return len(done)


def send(celery: Celery, task: Task, job_name: str) -> None:
    label = describe(task.kind, job_name, task.frames)
    celery.send_task(
        TASK_NAMES[task.kind.value],
        args=[task.id],
        queue=task.queue,
        shadow=label,
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
    )


def dispatch_ready(settings: Settings, celery: Celery, limit: int = 500) -> int:
    """Send the highest-priority ready tasks each queue has room for; returns how many were
    sent. Safe to call from anywhere, at any time, concurrently."""
    sent = 0
    with session_scope(settings) as session:
        now = session.execute(select(func.now())).scalar_one()
        for queue, (running, in_flight, _) in sorted(queue_loads(session).items()):
            budget = min(limit, send_budget(running, in_flight, settings.dispatch_ahead))
            if budget == 0:
                continue
            for task, job_name in session.execute(ready_tasks_query(queue, budget)).all():
                try:
                    send(celery, task, job_name)
                except Exception as e:  # broker down: leave it unsent; the sweeper tries again
                    log.warning("could not send task %s: %s", task.id, e)
                    return sent
                task.sent_at = now
                task.sends += 1
                sent += 1
    return sent
