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
from typing import Any, TypeVar, cast

from celery import Celery
from sqlalchemy import Table, delete, func, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from farm.blocklist import record_failure
from farm.config import Settings
from farm.db import get_engine, session_scope
from farm.dispatch import Outgoing, dispatch_ready, send_all, take
from farm.errors import TaskLost
from farm.lifecycle import TASKS, Transitioned, move_sql, settle
from farm.models import Artifact, Task
from farm.states import TaskKind, TaskState, retry_delay_s

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
    queue: str = ""
    max_attempts: int = 1
    priority: int = 50
    outgoing: list[Outgoing] = field(default_factory=list)
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
        try:
            with session_scope(self.settings) as s:
                s.execute(
                    update(Task)
                    .where(Task.id == self.task_id, Task.attempts == self.attempt)
                    .values(progress=values)
                )
        except (OperationalError, InterfaceError) as e:
            # Progress is for people watching; a database outage must not fail the render
            # (the lease decides whether the attempt is still ours).
            log.warning("task %s: progress not recorded: %s", self.task_id, e.orig)


class Heartbeat(threading.Thread):
    def __init__(self, ctx: TaskContext) -> None:
        super().__init__(name=f"heartbeat-{ctx.task_id}", daemon=True)
        self.ctx = ctx
        self.stop_event = threading.Event()

    def run(self) -> None:
        s = self.ctx.settings
        while not self.stop_event.wait(s.heartbeat_s):
            try:
                with get_engine(s, ping=False).begin() as conn:
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


ARTIFACTS = cast(Table, Artifact.__table__)
# The delivered task, locked, with what decides whether this worker may run it.
_CLAIM = text(
    "SELECT t.state, t.attempts, t.job_id, t.stage, t.kind, t.frames, t.position,"
    " t.frame_count, t.index AS task_index, t.queue, t.max_attempts, t.priority, j.name,"
    " j.spec, j.paused,"
    " now() AS now, (SELECT draining FROM workers WHERE name = :worker) AS draining,"
    " (SELECT blocked_at FROM worker_failures f WHERE f.job_id = t.job_id"
    " AND f.worker = :worker) AS blocked_at"
    " FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE t.id = :task FOR UPDATE OF t"
)


def claim(settings: Settings, task_id: int, worker: str) -> TaskContext | None:
    """Win the task for this delivery, or return None for a duplicate or stale one, or one
    this worker must not run (its job paused or blocking this worker, the worker draining).

    The hot path of every task, so it is plain SQL built once, and it does the dispatch its
    claim calls for in the same transaction."""
    with session_scope(settings, ping=False) as session:
        conn = session.connection()
        row = conn.execute(_CLAIM, {"task": task_id, "worker": worker}).first()
        if row is None or row.state != TaskState.QUEUED:
            log.info("task %s: dropping delivery (state %s)", task_id, row and row.state)
            return None
        now, draining, blocked_at = row.now, row.draining, row.blocked_at
        if row.paused or draining or blocked_at is not None:
            # Put it back: un-sent, so the dispatcher sends it again (a paused job's only on
            # resume); a blocked or draining worker's refusal waits a moment, so that another
            # worker takes it rather than this one again.
            back: dict[str, Any] = {"sent_at": None}
            if blocked_at is not None or draining:
                back["not_before"] = now + timedelta(seconds=1)
            conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(back))
            why = "paused" if row.paused else "draining" if draining else "blocked"
            log.info("task %s: delivery put back (%s)", task_id, why)
            return None
        # The window first (this task counts as running in it), then the move: the job row
        # the move locks is held only until the commit, not across the dispatch.
        outgoing = take(session, [row.queue], settings.dispatch_ahead, claiming=True)
        attempt = row.attempts + 1
        moved = conn.execute(
            _CLAIM_MOVE,
            {"task": task_id, "message": None, "attempt": attempt, "worker": worker,
             "pid": os.getpid(), "lease_s": settings.lease_s},
        ).one()  # fmt: skip
        settle(session, row.job_id, TaskState.RUNNING, moved)
        return TaskContext(
            settings=settings,
            task_id=task_id,
            job_id=row.job_id,
            job_name=row.name,
            kind=TaskKind(row.kind),
            attempt=attempt,
            spec=dict(row.spec),
            frames=row.frames,
            position=row.position,
            frame_count=row.frame_count,
            index=row.task_index,
            worker=worker,
            queue=row.queue,
            max_attempts=row.max_attempts,
            priority=row.priority,
            outgoing=outgoing,
        )


_CLAIM_MOVE = move_sql(
    TaskState.QUEUED,
    TaskState.RUNNING,
    (
        ("attempts", ":attempt"),
        ("worker", ":worker"),
        ("worker_pid", ":pid"),
        ("lease_expires_at", "now() + make_interval(secs => :lease_s)"),
        ("progress", "NULL"),
    ),
    "",
    "busy AS (UPDATE workers SET state = 'busy', task_id = :task, last_seen_at = now()"
    " WHERE name = :worker)",
)


def _idle(counter: str) -> str:
    return (
        f"idle AS (UPDATE workers SET state = 'idle', task_id = NULL, {counter} = {counter} + 1"
        " WHERE name = :worker AND task_id = :task)"
    )


_OURS = " AND attempts = :attempt"
_END = {
    TaskState.SUCCEEDED: move_sql(
        TaskState.RUNNING, TaskState.SUCCEEDED, (), _OURS, _idle("tasks_succeeded")
    ),
    TaskState.QUEUED: move_sql(
        TaskState.RUNNING,
        TaskState.QUEUED,
        (("not_before", "now() + make_interval(secs => :delay_s)"),),
        _OURS,
        _idle("tasks_failed"),
    ),
    TaskState.FAILED: move_sql(
        TaskState.RUNNING, TaskState.FAILED, (), _OURS, _idle("tasks_failed")
    ),
}


# The chain: the next ready task of the same job, queue and kind, taken in the completion's
# transaction, while nothing of a higher priority waits in the queue (sent or not), the job
# is not paused or blocking this worker, and the worker is not draining. Only our own job,
# whose row the completion already holds, so two chaining workers cannot deadlock.
_READY_HERE = (
    " t.queue = :queue AND t.state = 'queued' AND t.sent_at IS NULL AND t.ready"
    " AND (t.not_before IS NULL OR t.not_before <= now())"
)
_CHAIN_MOVE = move_sql(
    TaskState.QUEUED,
    TaskState.RUNNING,
    (
        ("attempts", "tasks.attempts + 1"),
        ("worker", ":worker"),
        ("worker_pid", ":pid"),
        ("lease_expires_at", "now() + make_interval(secs => :lease_s)"),
        ("progress", "NULL"),
        ("sent_at", "now()"),
        ("sends", "tasks.sends + 1"),
    ),
    # The first eligible ready task in send order (ix_tasks_ready's order, so the planner
    # reads that index whatever its statistics say) must not outrank ours.
    " AND coalesce((SELECT t.priority FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE"
    + _READY_HERE
    + " AND NOT j.paused ORDER BY t.priority DESC, t.id LIMIT 1), 0) <= :priority"
    " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.queue = :queue AND t.state = 'queued'"
    " AND t.sent_at IS NOT NULL AND t.priority > :priority)"
    " AND NOT EXISTS (SELECT 1 FROM jobs WHERE id = :job AND paused)"
    " AND NOT EXISTS (SELECT 1 FROM workers WHERE name = :worker AND draining)"
    " AND NOT EXISTS (SELECT 1 FROM worker_failures WHERE job_id = :job AND worker = :worker"
    " AND blocked_at IS NOT NULL)",
    "busy AS (UPDATE workers SET state = 'busy', task_id = moved.task_id, last_seen_at = now()"
    " FROM moved WHERE name = :worker)",
    target="(SELECT t.id FROM tasks t WHERE t.job_id = :job AND t.kind = :kind AND"
    + _READY_HERE
    + " ORDER BY t.id LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED)",
    returning=("frames", "position", "frame_count", '"index" AS task_index', "max_attempts"),
)


def _chain(session: Session, ctx: TaskContext) -> TaskContext | None:
    """Claim the job's next task for this worker in the caller's (the completion's)
    transaction, so it runs without a broker message; None when there is none to take."""
    row = (
        session.connection()
        .execute(
            _CHAIN_MOVE,
            {"job": ctx.job_id, "kind": ctx.kind.value, "queue": ctx.queue,
             "priority": ctx.priority, "worker": ctx.worker, "pid": os.getpid(),
             "lease_s": ctx.settings.lease_s, "message": None},
        )
        .first()
    )  # fmt: skip
    if row is None:
        return None
    settle(session, ctx.job_id, TaskState.RUNNING, row)
    return TaskContext(
        settings=ctx.settings,
        task_id=row.task_id,
        job_id=ctx.job_id,
        job_name=ctx.job_name,
        kind=ctx.kind,
        attempt=row.attempt,
        spec=ctx.spec,
        frames=row.frames,
        position=row.position,
        frame_count=row.frame_count,
        index=row.task_index,
        worker=ctx.worker,
        queue=ctx.queue,
        max_attempts=row.max_attempts,
        priority=ctx.priority,
    )


def _end_attempt(
    session: Session, ctx: TaskContext, dst: TaskState, message: str | None, delay_s: float = 0
) -> Transitioned | None:
    """End our attempt, free the worker's registry row and record the change, in one
    statement; None (nothing written) if the attempt is no longer ours: a lapsed lease or a
    cancel made it someone else's."""
    row = (
        session.connection()
        .execute(
            _END[dst],
            {"task": ctx.task_id, "attempt": ctx.attempt, "worker": ctx.worker,
             "message": message, "delay_s": delay_s},
        )
        .first()
    )  # fmt: skip
    return None if row is None else settle(session, ctx.job_id, dst, row)


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


@dataclass(frozen=True)
class Completion:
    recorded: bool
    # Queues in which the success made tasks ready (its stage finished, or jobs waiting on it
    # may start): only then is another dispatch pass worth it.
    opened: frozenset[str] = frozenset()
    # The job's next task, claimed for this worker in the same transaction (``chain``).
    next: TaskContext | None = None


def complete(ctx: TaskContext, result: Result, *, chain: bool = False) -> Completion:
    """Record the success, and with ``chain`` claim the job's next task in the same
    transaction."""
    return with_db_retry(
        ctx.settings, f"task {ctx.task_id} complete", lambda: _complete(ctx, result, chain)
    )


def _complete(ctx: TaskContext, result: Result, chain: bool) -> Completion:
    with session_scope(ctx.settings, ping=False) as session:
        done = _end_attempt(session, ctx, TaskState.SUCCEEDED, None)
        if done is None:
            log.warning(
                "task %s: attempt %s finished too late; result dropped", ctx.task_id, ctx.attempt
            )
            return Completion(False)
        conn = session.connection()
        if result.supersedes:
            conn.execute(
                delete(ARTIFACTS).where(
                    ARTIFACTS.c.job_id == ctx.job_id, ARTIFACTS.c.kind.in_(result.supersedes)
                )
            )
        for out in result.outputs:
            stmt = insert(ARTIFACTS).values(
                job_id=ctx.job_id,
                task_id=ctx.task_id,
                kind=out.kind,
                path=str(out.path),
                size=out.size,
                sha256=out.sha256,
                meta=out.meta,
            )
            conn.execute(
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
        following = _chain(session, ctx) if chain else None
    return Completion(True, done.opened, following)


def fail(ctx: TaskContext, error: str, *, permanent: bool = False) -> None:
    with_db_retry(
        ctx.settings, f"task {ctx.task_id} fail", lambda: _fail(ctx, error, permanent=permanent)
    )


def _fail(ctx: TaskContext, error: str, *, permanent: bool = False) -> None:
    with session_scope(ctx.settings, ping=False) as session:
        if ctx.attempt < ctx.max_attempts and not permanent:
            delay_s = retry_delay_s(ctx.attempt, ctx.settings.retry_backoff_s)
            done = _end_attempt(session, ctx, TaskState.QUEUED, error, delay_s)
        else:
            done = _end_attempt(session, ctx, TaskState.FAILED, error)
        # A permanent failure is the input's (a corrupt checkpoint, a bad data set), not the
        # worker's: counting it would block every worker from the job in turn, and leave the
        # job's other tasks bouncing between the dispatcher and blocked workers.
        if done is None or permanent:
            return
        if record_failure(session, ctx.job_id, ctx.worker, error, ctx.settings.block_after):
            log.warning("worker %s is now blocked from job %s", ctx.worker, ctx.job_id)


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
    """Run one delivery of ``task_id`` to its end, and the tasks chained after it; returns
    what happened, for the log.

    While the delivery has run less than ``FARM_CHAIN_S``, each success claims the job's next
    task in its own transaction and runs it here, without a broker message: for short tasks
    the broker's and Celery's per-task work would otherwise cost more than the task. A task
    longer than that is never followed, so long renders keep one message per task."""
    name = worker or f"{HOST}:{os.getpid()}"
    ctx = with_db_retry(settings, f"task {task_id} claim", lambda: claim(settings, task_id, name))
    if ctx is None:
        return "duplicate"
    send_all(settings, celery, ctx.outgoing)
    chain_until = time.monotonic() + settings.chain_s
    outcomes: list[str] = []
    following: TaskContext | None = ctx
    while following is not None:
        outcome, following = _run(settings, celery, following, chain_until)
        outcomes.append(outcome)
    return outcomes[0] if len(outcomes) == 1 else f"{outcomes[0]}, then {len(outcomes) - 1} chained"


def _run(
    settings: Settings, celery: Celery, ctx: TaskContext, chain_until: float
) -> tuple[str, TaskContext | None]:
    """Run one claimed task; returns its outcome and the task chained after it, if any."""
    task_id = ctx.task_id
    log.info("task %s (job %s %s) attempt %s: start", task_id, ctx.job_id, ctx.kind, ctx.attempt)
    beat = Heartbeat(ctx)
    beat.start()
    outcome, done = "failed", Completion(False)
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
        done = complete(ctx, result, chain=time.monotonic() < chain_until)
        if done.recorded:
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
    if done.opened:
        try:
            dispatch_ready(settings, celery, done.opened)
        except Exception as e:
            log.warning("dispatch after task %s failed: %s", task_id, e)
    log.info("task %s attempt %s: %s", task_id, ctx.attempt, outcome)
    return outcome, done.next
