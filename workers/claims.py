"""A worker's writes on the hot path: claim a delivered task, end an attempt, and chain the
job's next task into a success's transaction.

Every write is conditional on the attempt it belongs to, so a duplicate or stale delivery
claims nothing and a late completion records nothing. Each move is one statement built by
:func:`farm.lifecycle.move_sql` (the task row, the worker's registry row, the event and the
job's counters), followed by :func:`farm.lifecycle.settle`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table, TextClause, delete, func, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from farm.blocklist import record_failure
from farm.config import Settings
from farm.db import relax_commit, session_scope
from farm.dispatch import NO_NEWCOMER, READY_IN_QUEUE, chain_share, fairer_task, take
from farm.lifecycle import TASKS, Transitioned, move_sql, settle
from farm.limits import room
from farm.models import Artifact
from farm.planner import NEXT_STAGE, QUEUE_OF
from farm.states import TaskKind, TaskState, retry_delay_s
from workers.context import Result, TaskContext
from workers.device_label import device_label

log = logging.getLogger(__name__)


ARTIFACTS = cast(Table, Artifact.__table__)
# The delivered task, locked, with what decides whether this worker may run it.
_CLAIM = text(
    "SELECT t.state, t.attempts, t.job_id, t.stage, t.kind, t.frames, t.position,"
    " t.frame_count, t.index AS task_index, t.queue, t.max_attempts, j.name, j.spec, j.paused,"
    " now() AS now, (SELECT draining FROM workers WHERE name = :worker) AS draining,"
    " (SELECT blocked_at FROM worker_failures f WHERE f.job_id = t.job_id"
    " AND f.worker = :worker) AS blocked_at,"
    # What a render's ``checkpoint: job:<name>`` stands for, read here rather than in a
    # transaction of the chunk's own.
    " (SELECT a.path FROM job_dependencies d JOIN artifacts a ON a.job_id = d.depends_on_id"
    " AND a.kind = 'checkpoint' WHERE d.job_id = t.job_id ORDER BY a.id DESC LIMIT 1)"
    " AS dependency_checkpoint"
    " FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE t.id = :task FOR UPDATE OF t"
)


def claim(
    settings: Settings, task_id: int, worker: str, consumes: frozenset[str] = frozenset()
) -> TaskContext | None:
    """Win the task for this delivery, or return None for a duplicate or stale one, or one
    this worker must not run (its job paused or blocking this worker, the worker draining).

    The hot path of every task, so it is plain SQL built once, and it does the dispatch its
    claim calls for in the same transaction."""
    with session_scope(settings, ping=False) as session:
        relax_commit(session)
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
        if settings.fair_share:
            # The fair share decides again now that the message has arrived: another
            # project's task, marked sent in place of this one, may be due first.
            other = fairer_task(conn, row.queue, row.job_id, task_id, worker)
            if other is not None:
                log.info("task %s: claiming task %s in its place (fair share)", task_id, other)
                task_id = other
                row = conn.execute(_CLAIM, {"task": task_id, "worker": worker}).one()
        # The window first (this task counts as running in it), then the move: the job row
        # the move locks is held only until the commit, not across the dispatch.
        outgoing = take(
            session, [row.queue], settings.dispatch_ahead, claiming=True, fair=settings.fair_share
        )
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
            outgoing=outgoing,
            consumes=consumes,
            dependency_checkpoint=row.dependency_checkpoint,
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
# The attempt's accounting row (farm.usage), written by the statement that ends it.
_ACCOUNT = (
    ", account AS (INSERT INTO attempts (task_id, job_id, project, submitter, pool, attempt,"
    " worker, device, started_at, ended_at, outcome) SELECT m.task_id, m.job_id, m.project,"
    " j.submitter, j.pool, m.attempt, :worker, :device, m.started_at, m.at, '{outcome}'"
    " FROM moved m JOIN jobs j ON j.id = m.job_id ON CONFLICT DO NOTHING)"
)
_ENDED = ("started_at", "project")
_END = {
    TaskState.SUCCEEDED: move_sql(
        TaskState.RUNNING,
        TaskState.SUCCEEDED,
        (),
        _OURS,
        _idle("tasks_succeeded") + _ACCOUNT.format(outcome="succeeded"),
        returning=_ENDED,
    ),
    TaskState.QUEUED: move_sql(
        TaskState.RUNNING,
        TaskState.QUEUED,
        (("not_before", "now() + make_interval(secs => :delay_s)"),),
        _OURS,
        _idle("tasks_failed") + _ACCOUNT.format(outcome="retried"),
        returning=_ENDED,
    ),
    TaskState.FAILED: move_sql(
        TaskState.RUNNING,
        TaskState.FAILED,
        (),
        _OURS,
        _idle("tasks_failed") + _ACCOUNT.format(outcome="failed"),
        returning=_ENDED,
    ),
}


# The chain: the next ready task of the same job, queue and kind, taken in the completion's
# transaction, while nothing of a higher priority waits in the queue (sent or not), the job
# is not paused or blocking this worker, the worker is not draining, and every limit the task
# names has room (the finished task no longer holds its own; under the fair share,
# farm.dispatch.chain_share decides first, and no project may have arrived since). Only our
# own job, whose row the completion already holds, so two chaining workers cannot deadlock.
def _chain_move(extra: str = "") -> TextClause:
    return move_sql(
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
        # reads that index whatever its statistics say) must not outrank the picked one (the
        # outer ``tasks``: its priority as it is now, should an operator have changed it).
        " AND coalesce((SELECT t.priority FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE "
        + READY_IN_QUEUE
        + " AND NOT j.paused ORDER BY t.priority DESC, t.id LIMIT 1), 0) <= tasks.priority"
        " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.queue = :queue AND t.state = 'queued'"
        " AND t.sent_at IS NOT NULL AND t.priority > tasks.priority)"
        " AND NOT EXISTS (SELECT 1 FROM jobs WHERE id = :job AND paused)"
        " AND NOT EXISTS (SELECT 1 FROM workers WHERE name = :worker AND draining)"
        " AND NOT EXISTS (SELECT 1 FROM worker_failures WHERE job_id = :job AND worker = :worker"
        " AND blocked_at IS NOT NULL) AND " + room("tasks") + extra,
        "busy AS (UPDATE workers SET state = 'busy', task_id = moved.task_id, last_seen_at = now()"
        " FROM moved WHERE name = :worker)",
        target="(SELECT t.id FROM tasks t WHERE t.job_id = :job AND t.kind = :kind AND "
        + READY_IN_QUEUE
        + " ORDER BY t.id LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED)",
        returning=("frames", "position", "frame_count", '"index" AS task_index', "max_attempts"),
    )


_CHAIN_MOVE = _chain_move()
# Under the fair share: and no project has arrived since the delivery's decision.
_CHAIN_MOVE_FAIR = _chain_move(" AND " + NO_NEWCOMER)


# Whether the queue has anything a dispatch pass would send (its ready index, one row).
_READY_LEFT = text("SELECT EXISTS (SELECT 1 FROM tasks t WHERE " + READY_IN_QUEUE + ")")


def _chain(
    session: Session, ctx: TaskContext, kind: TaskKind | None = None, queue: str | None = None
) -> TaskContext | None:
    """Claim the job's next task of ``kind`` in ``queue`` (by default the finished task's)
    for this worker in the caller's (the completion's) transaction, so it runs without a
    broker message; None when there is none to take."""
    kind, queue = kind or ctx.kind, queue or ctx.queue
    conn = session.connection()
    fair, known = ctx.settings.fair_share, ctx.share_known
    if fair and known is None:
        known = chain_share(conn, queue, ctx.job_id)
        if known is None:
            return None
    row = (
        conn
        .execute(
            _CHAIN_MOVE_FAIR if fair else _CHAIN_MOVE,
            {"job": ctx.job_id, "kind": kind.value, "queue": queue,
             "worker": ctx.worker, "pid": os.getpid(), "lease_s": ctx.settings.lease_s,
             "message": None, "known": sorted(known or ())},
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
        kind=kind,
        attempt=row.attempt,
        spec=ctx.spec,
        frames=row.frames,
        position=row.position,
        frame_count=row.frame_count,
        index=row.task_index,
        worker=ctx.worker,
        queue=queue,
        max_attempts=row.max_attempts,
        consumes=ctx.consumes,
        dependency_checkpoint=ctx.dependency_checkpoint,
        # The same job's same queue: the decision holds (but for a newcomer, NO_NEWCOMER).
        share_known=known if kind is ctx.kind else None,
    )


def _next_stage(session: Session, ctx: TaskContext, opened: frozenset[str]) -> TaskContext | None:
    """The job's next stage, opened by this success (the last chunk's, say, opening the
    assembly), claimed for this worker when it consumes that queue: the stage would be sent
    next anyway, unless something outranks it, which the chain's move checks like any other."""
    for kind in NEXT_STAGE.get(ctx.kind, ()):
        queue = QUEUE_OF[kind]
        if queue in opened and queue in ctx.consumes:
            following = _chain(session, ctx, kind, queue)
            if following is not None:
                return following
    return None


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
             "message": message, "delay_s": delay_s, "device": device_label()},
        )
        .first()
    )  # fmt: skip
    if row is None:
        session.connection().execute(_STOPPED, {"task": ctx.task_id, "attempt": ctx.attempt,
                                                "device": device_label()})  # fmt: skip
        return None
    return settle(session, ctx.job_id, dst, row)


# A canceled attempt's accounting row, written by the cancel (farm.usage.CANCELED_ATTEMPT),
# moved on to when its worker actually stopped, on the device it held.
_STOPPED = text(
    "UPDATE attempts SET ended_at = greatest(ended_at, now()), device = :device"
    " WHERE task_id = :task AND attempt = :attempt AND outcome = 'canceled'"
)


def stopped(ctx: TaskContext) -> None:
    """The stage stopped because the attempt is no longer ours: if a cancel ended it, its
    accounting runs up to now (nothing happens for one the sweeper re-queued)."""
    params = {"task": ctx.task_id, "attempt": ctx.attempt, "device": device_label()}

    def write() -> None:
        with session_scope(ctx.settings, ping=False) as session:
            session.connection().execute(_STOPPED, params)

    with_db_retry(ctx.settings, f"task {ctx.task_id} stopped", write)


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
    next_task: TaskContext | None = None
    # Of ``opened``, the queues where a dispatch pass may find something to send: not one
    # whose only ready task the completion itself claimed (``next_task``).
    dispatch: frozenset[str] = frozenset()


def complete(
    ctx: TaskContext, result: Result, *, chain: bool = False, next_stage: bool = False
) -> Completion:
    """Record the success, and with ``chain`` claim the job's next task in the same
    transaction; with ``next_stage``, the job's next stage if this success opened it."""
    return with_db_retry(
        ctx.settings,
        f"task {ctx.task_id} complete",
        lambda: _complete(ctx, result, chain, next_stage),
    )


def _complete(ctx: TaskContext, result: Result, chain: bool, next_stage: bool) -> Completion:
    with session_scope(ctx.settings, ping=False) as session:
        if ctx.kind is TaskKind.RENDER_CHUNK:  # a chunk's success never finishes its job
            relax_commit(session)
        done = _end_attempt(session, ctx, TaskState.SUCCEEDED, None)
        if done is None:
            log.warning(
                "task %s: attempt %s finished too late; result dropped", ctx.task_id, ctx.attempt
            )
            return Completion(False)
        conn = session.connection()
        # One statement for all of them (a path named twice: its last output counts), which
        # also drops the kinds the result supersedes (but for its own paths, upserted).
        rows = {
            str(out.path): {
                "job_id": ctx.job_id,
                "task_id": ctx.task_id,
                "kind": out.kind,
                "path": str(out.path),
                "size": out.size,
                "sha256": out.sha256,
                "meta": out.meta,
            }
            for out in result.outputs
        }
        gone = delete(ARTIFACTS).where(
            ARTIFACTS.c.job_id == ctx.job_id,
            ARTIFACTS.c.kind.in_(result.supersedes),
            ARTIFACTS.c.path.not_in(list(rows)),
        )
        if rows:
            stmt = insert(ARTIFACTS).values(list(rows.values()))
            stmt = stmt.on_conflict_do_update(
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
            conn.execute(stmt.add_cte(gone.cte("gone")) if result.supersedes else stmt)
        elif result.supersedes:
            conn.execute(gone)
        # A finished stage leaves no task of the same stage to chain; a later one's would be
        # ready in a queue it opened.
        futile = done.stage_done and ctx.queue not in done.opened
        following = _chain(session, ctx) if chain and not futile else None
        dispatch = done.opened
        if following is None and next_stage and done.opened:
            following = _next_stage(session, ctx, done.opened)
            # The stage we took was all its queue had ready (a job's assembly): a dispatch
            # pass there would find nothing to send.
            if (
                following is not None
                and not conn.execute(_READY_LEFT, {"queue": following.queue}).scalar()
            ):
                dispatch = dispatch - {following.queue}
    return Completion(True, done.opened, following, dispatch)


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
