"""The harness around every task: claim, heartbeat, run the stage, record the outcome.

A delivery is worked on only after the worker wins a conditional claim in the database, so
a duplicate or stale message is dropped. While it runs, a background thread extends the
lease; if an extension finds the task no longer ours (canceled, or re-queued after our lease
lapsed) the stage is told to stop at its next check and its result is discarded.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import InterfaceError, OperationalError

from farm.config import Settings
from farm.db import get_engine, session_scope
from farm.dispatch import dispatch_ready
from farm.errors import TaskLost
from farm.lifecycle import lock_task, transition
from farm.models import Artifact, Job, Task
from farm.states import TaskKind, TaskState
from farm.sweeper import backoff_until

log = logging.getLogger(__name__)
HOST = socket.gethostname()


class PermanentError(Exception):
    """A failure another attempt cannot fix (bad data set, corrupt checkpoint): the task
    fails at once instead of being retried."""


@dataclass
class Output:
    kind: str
    path: Path
    size: int
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    outputs: list[Output] = field(default_factory=list)
    # Artifact kinds of this job that the success supersedes (rows go in the same commit).
    supersedes: tuple[str, ...] = ()
    # Runs only once the success is committed (e.g. deleting the segments an assembly used).
    after_commit: Callable[[], None] | None = None


@dataclass
class TaskContext:
    settings: Settings
    task_id: int
    job_id: int
    job_name: str
    kind: TaskKind
    attempt: int
    spec: dict[str, Any]
    frames: str | None
    position: int
    frame_count: int
    index: int
    worker: str
    lost: threading.Event = field(default_factory=threading.Event)
    _last_progress: float = 0.0

    def check(self) -> None:
        """Raise TaskLost if the task was taken from us; stages call this between batches."""
        if self.lost.is_set():
            raise TaskLost(f"task {self.task_id} attempt {self.attempt} is no longer ours")

    def progress(self, values: dict[str, Any], *, min_interval_s: float = 1.0) -> None:
        now = time.monotonic()
        if now - self._last_progress < min_interval_s:
            return
        self._last_progress = now
        with session_scope(self.settings) as s:
            s.execute(
                update(Task)
                .where(Task.id == self.task_id, Task.attempts == self.attempt)
                .values(progress=values)
            )


class Heartbeat(threading.Thread):
    def __init__(self, ctx: TaskContext) -> None:
        super().__init__(name=f"heartbeat-{ctx.task_id}", daemon=True)
        self.ctx = ctx
        self.stop_event = threading.Event()

    def run(self) -> None:
        s = self.ctx.settings
        while not self.stop_event.wait(s.heartbeat_s):
            try:
                with get_engine(s).begin() as conn:
                    row = conn.execute(
                        text(
                            "UPDATE tasks SET lease_expires_at = now() + make_interval(secs => :l)"
                            " WHERE id = :id AND state = 'running' AND attempts = :a RETURNING id"
                        ),
                        {"l": s.lease_s, "id": self.ctx.task_id, "a": self.ctx.attempt},
                    ).first()
                if row is None:
                    log.warning("task %s: lease lost; stopping", self.ctx.task_id)
                    self.ctx.lost.set()
                    return
            except Exception as e:  # a database blip: try again next beat
                log.warning("task %s: heartbeat failed: %s", self.ctx.task_id, e)

    def stop(self) -> None:
        self.stop_event.set()


def claim(settings: Settings, task_id: int, worker: str) -> TaskContext | None:
    """Win the task for this delivery, or return None for a duplicate or stale one."""
    with session_scope(settings) as session:
        task = lock_task(session, task_id)
        if task is None or task.state is not TaskState.QUEUED:
            log.info("task %s: dropping delivery (state %s)", task_id, task and task.state)
            return None
        job = session.get(Job, task.job_id)
        assert job is not None
        if job.paused:  # held back: un-send it, so resume sends it again
            task.sent_at = None
            log.info("task %s: job %s is paused; delivery put back", task_id, job.id)
            return None
        now = session.execute(select(func.now())).scalar_one()
        task.attempts += 1
        task.worker = worker
        task.worker_pid = os.getpid()
        task.lease_expires_at = now + timedelta(seconds=settings.lease_s)
        task.progress = None
        transition(session, task, TaskState.RUNNING, worker=worker, now=now)
        return TaskContext(
            settings=settings,
            task_id=task.id,
            job_id=job.id,
            job_name=job.name,
            kind=task.kind,
            attempt=task.attempts,
            spec=dict(job.spec),
            frames=task.frames,
            position=task.position,
            frame_count=task.frame_count,
            index=task.index,
            worker=worker,
        )


T = TypeVar("T")


def with_db_retry(settings: Settings, what: str, fn: Callable[[], T]) -> T:
    """Run a database write, retrying with backoff while the database is unreachable, so an
    outage (a restart, a failover) delays a task's bookkeeping instead of failing the task."""
    deadline = time.monotonic() + settings.db_retry_s
    delay = 0.2
    while True:
        try:
            return fn()
        except (OperationalError, InterfaceError) as e:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: database unreachable (%s); retrying in %.1fs", what, e.orig, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def complete(ctx: TaskContext, result: Result) -> tuple[bool, bool]:
    """Record the success; returns (recorded, unblocks) where ``unblocks`` says whether the
    success may have made other tasks ready (its stage is done), so only then is it worth
    running the dispatcher again."""
    return with_db_retry(
        ctx.settings, f"task {ctx.task_id} complete", lambda: _complete(ctx, result)
    )


def _complete(ctx: TaskContext, result: Result) -> tuple[bool, bool]:
    with session_scope(ctx.settings) as session:
        task = lock_task(session, ctx.task_id)
        if task is None or task.state is not TaskState.RUNNING or task.attempts != ctx.attempt:
            log.warning(
                "task %s: attempt %s finished too late; result dropped", ctx.task_id, ctx.attempt
            )
            return False, False
        if result.supersedes:
            session.execute(
                delete(Artifact).where(
                    Artifact.job_id == ctx.job_id, Artifact.kind.in_(result.supersedes)
                )
            )
        for out in result.outputs:
            stmt = insert(Artifact).values(
                job_id=ctx.job_id,
                task_id=ctx.task_id,
                kind=out.kind,
                path=str(out.path),
                size=out.size,
                sha256=out.sha256,
                meta=out.meta,
            )
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["job_id", "path"],
                    set_={
                        "task_id": stmt.excluded.task_id,
                        "kind": stmt.excluded.kind,
                        "size": stmt.excluded.size,
                        "sha256": stmt.excluded.sha256,
                        "meta": stmt.excluded.meta,
                        "created_at": func.now(),
                    },
                )
            )
        transition(session, task, TaskState.SUCCEEDED, worker=ctx.worker)
        pending = session.execute(
            select(Task.id)
            .where(
                Task.job_id == ctx.job_id,
                Task.stage == task.stage,
                Task.state != TaskState.SUCCEEDED,
            )
            .limit(1)
        ).first()
    return True, pending is None


def fail(ctx: TaskContext, error: str, *, permanent: bool = False) -> None:
    with_db_retry(
        ctx.settings, f"task {ctx.task_id} fail", lambda: _fail(ctx, error, permanent=permanent)
    )


def _fail(ctx: TaskContext, error: str, *, permanent: bool = False) -> None:
    with session_scope(ctx.settings) as session:
        task = lock_task(session, ctx.task_id)
        if task is None or task.state is not TaskState.RUNNING or task.attempts != ctx.attempt:
            return
        if task.attempts < task.max_attempts and not permanent:
            now = session.execute(select(func.now())).scalar_one()
            task.not_before = backoff_until(now, task.attempts, ctx.settings)
            transition(session, task, TaskState.QUEUED, message=error, worker=ctx.worker)
        else:
            transition(session, task, TaskState.FAILED, message=error, worker=ctx.worker)


Stage = Callable[[TaskContext], Result]


def stage_for(kind: TaskKind) -> Stage:
    """Stages import torch and friends: only ever inside the worker's child process."""
    if kind is TaskKind.TRAIN:
        from workers.stages.train import run as train

        return train
    if kind is TaskKind.RENDER_CHUNK:
        from workers.stages.render_chunk import run as render_chunk

        return render_chunk
    if kind is TaskKind.SAMPLE_GRID:
        from workers.stages.sample_grid import run as sample_grid

        return sample_grid
    from workers.stages.assemble import run as assemble

    return assemble


def execute(settings: Settings, celery: Celery, task_id: int, worker: str | None = None) -> str:
    """Run one delivery of ``task_id`` to its end; returns what happened, for the log."""
    name = worker or f"{HOST}:{os.getpid()}"
    ctx = with_db_retry(settings, f"task {task_id} claim", lambda: claim(settings, task_id, name))
    if ctx is None:
        return "duplicate"
    log.info("task %s (job %s %s) attempt %s: start", task_id, ctx.job_id, ctx.kind, ctx.attempt)
    try:  # our claim freed a place in the queue's window: fill it while we work
        dispatch_ready(settings, celery)
    except Exception as e:
        log.warning("dispatch after claiming task %s failed: %s", task_id, e)
    beat = Heartbeat(ctx)
    beat.start()
    outcome = "failed"
    try:
        result = stage_for(ctx.kind)(ctx)
        ctx.check()
    except TaskLost:
        outcome = "lost"
    except Exception as e:
        # A permanent failure names what caused it (CheckpointError, DatasetError, ...).
        shown = e.__cause__ if isinstance(e, PermanentError) and e.__cause__ else e
        detail = "".join(traceback.format_exception_only(type(shown), shown)).strip()
        log.exception("task %s attempt %s failed", task_id, ctx.attempt)
        fail(ctx, detail[-4000:], permanent=isinstance(e, PermanentError))
    else:
        recorded, unblocks = complete(ctx, result)
        if recorded:
            outcome = "succeeded"
            if result.after_commit is not None:
                try:
                    result.after_commit()
                except Exception:
                    log.exception("task %s: clean-up after success failed", task_id)
        else:
            outcome = "stale"
    finally:
        beat.stop()
    # Claims keep each queue's window full; after a task only a finished stage (an assembly,
    # or dependent jobs) can have made new work ready. Failures re-queue with a back-off
    # that the sweeper's pass honours.
    if outcome == "succeeded" and unblocks:
        try:
            dispatch_ready(settings, celery)
        except Exception as e:
            log.warning("dispatch after task %s failed: %s", task_id, e)
    log.info("task %s attempt %s: %s", task_id, ctx.attempt, outcome)
    return outcome
