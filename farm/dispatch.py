"""Sending ready tasks to the broker: the outbox side of "commit first, then send".

A task is ready when every earlier stage of its job and every job it waits for has
succeeded: :mod:`farm.lifecycle` sets ``tasks.ready`` when that happens, so a pass here is a
read of one partial index in send order (priority, then age), not a re-derivation. Stage
transitions are decided from the database, never by Celery chords.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from celery import Celery
from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session, aliased

from farm.broker import HEALTH
from farm.celery_app import TASK_NAMES
from farm.config import Settings
from farm.db import session_scope
from farm.lifecycle import transition
from farm.limits import held, room
from farm.models import Job, JobDependency, Task
from farm.planner import describe
from farm.policy import Share, claim_instead, may_chain
from farm.states import JobState, TaskKind, TaskState

log = logging.getLogger(__name__)
_FAILED_DEPS = (JobState.FAILED, JobState.CANCELED)
_UNMARK = text(
    "UPDATE tasks SET sent_at = NULL, sends = greatest(sends - 1, 0)"
    " WHERE id = ANY(:ids) AND state = 'queued'"
    " AND sent_at IS NOT NULL"
)
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# Limits span queues: while any is set, one dispatcher at a time farm-wide (this lock is taken
# before any queue's, so the order is the same for all), so two queues' passes cannot both
# take a limit's last unit.
_LIMITS_KEY = 0x4C494D54
_ANY_LIMIT = text("SELECT EXISTS (SELECT 1 FROM limits)")
_LIMITS_NOW = text(
    "SELECT l.name, l.count, " + held("l.name") + " FROM limits l WHERE l.name = ANY(:names)"
)
_UNMARK_PICKED = text(
    "UPDATE tasks SET sent_at = NULL, sends = greatest(sends - 1, 0) WHERE id = ANY(:ids)"
)
# Queues that hold ready work, by a skip scan of ix_tasks_ready (one probe per queue).
_READY_QUEUES = text(
    "WITH RECURSIVE q(queue) AS ("
    " (SELECT queue FROM tasks WHERE state = 'queued' AND sent_at IS NULL AND ready"
    " ORDER BY queue LIMIT 1)"
    " UNION ALL SELECT (SELECT t.queue FROM tasks t WHERE t.state = 'queued'"
    " AND t.sent_at IS NULL AND t.ready AND t.queue > q.queue ORDER BY t.queue LIMIT 1)"
    " FROM q WHERE q.queue IS NOT NULL)"
    " SELECT queue FROM q WHERE queue IS NOT NULL"
)


# A ready task of the queue ``:queue``, as ``t``: unsent, every earlier stage and dependency
# done, its back-off (if any) passed. The predicate of ix_tasks_ready and ix_tasks_ready_job.
READY_IN_QUEUE = (
    "t.queue = :queue AND t.state = 'queued' AND t.sent_at IS NULL AND t.ready"
    " AND (t.not_before IS NULL OR t.not_before <= now())"
)
# Pick the first ready tasks of the queue in send order off ix_tasks_ready, as many as its
# window has room for (every busy worker's next task waiting, plus ``ahead``: never a backlog
# that would outrank later, higher priorities), skipping any another dispatcher holds; mark
# them sent (by id = ANY(ARRAY(...)): an IN (...) the planner may join by scanning every
# task). The job's name labels the message. ``claiming`` (0 or 1): the caller is claiming
# a sent task of the queue in this transaction, which counts as running, not as waiting.
_PICK = text(
    "UPDATE tasks SET sent_at = now(), sends = tasks.sends + 1 FROM jobs"
    " WHERE jobs.id = tasks.job_id AND tasks.id = ANY(ARRAY(SELECT t.id FROM tasks t"
    " JOIN jobs j ON j.id = t.job_id WHERE " + READY_IN_QUEUE + " AND NOT j.paused"
    " AND "
    + room("t")
    + " ORDER BY t.priority DESC, t.id LIMIT (SELECT greatest(0, least(:limit, :ahead"
    " + (SELECT count(*) FROM tasks WHERE state = 'running' AND queue = :queue) + :claiming"
    " - (SELECT count(*) FROM tasks WHERE state = 'queued' AND sent_at IS NOT NULL"
    " AND queue = :queue) + :claiming)))"
    " FOR UPDATE OF t SKIP LOCKED))"
    " RETURNING tasks.id, tasks.kind, tasks.frames, tasks.priority, jobs.name, tasks.limits"
)

# The same window, shared out by the fair share (farm.policy): each project's ready tasks off
# ix_tasks_ready_project (one probe per project, at most the window's worth each), numbered
# k = 1, 2 ... in priority order, given the pass (in flight + k - 0.5) / weight, within its
# cap; the window's worth of lowest passes is marked sent; ``ord`` is the order to send in.
_IN_FLIGHT = (
    "SELECT project, count(*) AS n FROM (SELECT project FROM tasks WHERE state = 'running'"
    " AND queue = :queue UNION ALL SELECT project FROM tasks WHERE state = 'queued'"
    " AND sent_at IS NOT NULL AND queue = :queue) f GROUP BY project"
)
_PICK_FAIR = text(
    "WITH room AS MATERIALIZED (SELECT greatest(0, least(:limit, :ahead"
    " + (SELECT count(*) FROM tasks WHERE state = 'running' AND queue = :queue) + :claiming"
    " - (SELECT count(*) FROM tasks WHERE state = 'queued' AND sent_at IS NOT NULL"
    " AND queue = :queue) + :claiming)) AS n),"
    " flight AS MATERIALIZED (" + _IN_FLIGHT + "),"
    " cand AS MATERIALIZED (SELECT c.id, c.priority,"
    " (coalesce(f.n, 0) + c.k - 0.5)::float8 / p.weight AS pass FROM projects p"
    " LEFT JOIN flight f ON f.project = p.name"
    " CROSS JOIN LATERAL (SELECT r.id, r.priority,"
    " row_number() OVER (ORDER BY r.priority DESC, r.id) AS k FROM (SELECT t.id, t.priority"
    " FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE "
    + READY_IN_QUEUE
    + " AND t.project = p.name AND NOT j.paused AND "
    + room("t")
    + " ORDER BY t.priority DESC, t.id"
    " LIMIT (SELECT n FROM room) FOR UPDATE OF t SKIP LOCKED) r) c"
    " WHERE p.max_running IS NULL OR coalesce(f.n, 0) + c.k <= p.max_running),"
    " picked AS MATERIALIZED (SELECT array_agg(id ORDER BY pass, priority DESC, id) AS ids"
    " FROM (SELECT id, pass, priority FROM cand ORDER BY pass, priority DESC, id"
    " LIMIT (SELECT n FROM room)) w)"
    # By id = ANY(an array): a join with ``picked`` is hashed against every task.
    " UPDATE tasks SET sent_at = now(), sends = tasks.sends + 1 FROM jobs"
    " WHERE jobs.id = tasks.job_id AND tasks.id = ANY(CAST((SELECT ids FROM picked) AS bigint[]))"
    " RETURNING tasks.id, tasks.kind, tasks.frames,"
    " array_position((SELECT ids FROM picked), tasks.id), jobs.name, tasks.limits"
)


# What a worker's chained claim (workers.claims) decides by, for the queue ``:queue`` and the
# finished task's job ``:job``: every project with running or ready tasks there (and the
# job's own), its weight and cap, its running and sent tasks (off the partial indexes by
# (queue, project)) and whether it has ready work, one index probe each.
_CHAIN_SHARES = text(
    "SELECT p.name, p.weight, p.max_running, p.name = (SELECT project FROM jobs WHERE id = :job)"
    " AS mine, (SELECT count(*) FROM tasks r WHERE r.state = 'running' AND r.queue = :queue"
    " AND r.project = p.name) AS running, (SELECT count(*) FROM tasks r WHERE r.state ="
    " 'queued' AND r.sent_at IS NOT NULL AND r.queue = :queue AND r.project = p.name) AS sent,"
    # A scalar probe in the index's order with LIMIT 1, not EXISTS: the planner would hash an
    # EXISTS over every ready task of the queue (a sequential scan), or scan the table for
    # a first match, instead of probing ix_tasks_ready_project.
    " (SELECT 1 FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE "
    + READY_IN_QUEUE
    + " AND t.project = p.name AND NOT j.paused ORDER BY t.priority DESC, t.id LIMIT 1)"
    " IS NOT NULL AS waiting FROM projects p"
)


@dataclass(frozen=True)
class _Queue:
    """The queue as the fair share's running-task rules see it, for one job's project."""

    mine: str | None  # the job's project (None: not in ``projects``)
    mine_full: bool  # at its cap with the caller's tasks added
    shares: dict[str, Share]  # every project, its running tasks as ``in_flight``
    waiting: set[str]  # the other projects with ready unsent work, under their caps
    known: frozenset[str]  # every project running there or with ready work, the job's too


def _shares(conn: Connection, queue: str, job_id: int, own_sent: int) -> _Queue:
    shares: dict[str, Share] = {}
    waiting: set[str] = set()
    known: set[str] = set()
    mine, full_mine = None, False
    for name, weight, cap, is_mine, running, sent, ready in conn.execute(
        _CHAIN_SHARES, {"queue": queue, "job": job_id}
    ):
        if is_mine:
            mine = name
            full_mine = cap is not None and running + sent + own_sent > cap
        elif ready and not (cap is not None and running + sent + 1 > cap):
            waiting.add(name)
        if is_mine or ready or running:
            known.add(name)
        shares[name] = Share(weight, cap, running)
    return _Queue(mine, full_mine, shares, waiting, frozenset(known))


def chain_share(conn: Connection, queue: str, job_id: int) -> frozenset[str] | None:
    """Whether a worker that just finished a task of ``job_id`` in ``queue`` may chain that
    job's next task under the fair share: its project under its cap (tasks running or sent)
    and within its fair target of the running tasks (:func:`farm.policy.may_chain`). None if
    not, else the projects the decision saw running or with ready work: the chain's
    statement (with :data:`NO_NEWCOMER`) stops when another one arrives."""
    q = _shares(conn, queue, job_id, 1)
    if q.mine_full or (q.mine is not None and not may_chain(q.mine, q.shares, q.waiting)):
        return None
    return q.known


def chain_allowed(conn: Connection, queue: str, job_id: int) -> bool:
    """:func:`chain_share` as a yes or no."""
    return chain_share(conn, queue, job_id) is not None


# A chained claim's condition under the fair share: no project outside ``:known`` (what the
# delivery's decision, farm.dispatch.chain_share, saw running or waiting in ``:queue``) has
# ready work there and nothing running. The decision holds for the delivery's chain (up to
# FARM_CHAIN_S) except for a project that arrived since: then the chain ends, and the
# worker's next claim (farm.dispatch.fairer_task) decides again. A scan of the projects
# table, and two index probes (scalar, as in _CHAIN_SHARES) for each project not in ``:known``.
NO_NEWCOMER = (
    "NOT EXISTS (SELECT 1 FROM projects p WHERE p.name <> ALL(CAST(:known AS text[]))"
    " AND (SELECT 1 FROM tasks r WHERE r.state = 'running' AND r.queue = :queue"
    " AND r.project = p.name LIMIT 1) IS NULL AND (SELECT 1 FROM tasks t JOIN jobs j"
    " ON j.id = t.job_id WHERE " + READY_IN_QUEUE + " AND t.project = p.name AND NOT j.paused"
    " ORDER BY t.priority DESC, t.id LIMIT 1) IS NOT NULL)"
)


# Claim ``:project``'s first ready task of the queue in send order (off ix_tasks_ready_project)
# that this worker may run, in place of the delivered ``:task``, whose mark is undone so the
# dispatcher sends it again: the window keeps its count (one sent for one). Only a task naming
# no limit: a limit's last unit is shared out under the farm-wide lock of a dispatch pass.
_SWAP = text(
    "WITH x AS (SELECT t.id FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE "
    + READY_IN_QUEUE
    + " AND t.project = :project AND NOT j.paused AND cardinality(t.limits) = 0"
    " AND NOT EXISTS (SELECT 1 FROM worker_failures f WHERE f.job_id = t.job_id"
    " AND f.worker = :worker AND f.blocked_at IS NOT NULL)"
    " ORDER BY t.priority DESC, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED),"
    " back AS (UPDATE tasks SET sent_at = NULL, sends = greatest(tasks.sends - 1, 0)"
    " WHERE tasks.id = :task AND tasks.sent_at IS NOT NULL AND EXISTS (SELECT 1 FROM x))"
    " UPDATE tasks SET sent_at = now(), sends = tasks.sends + 1 FROM x WHERE tasks.id = x.id"
    " RETURNING tasks.id"
)


def fairer_task(conn: Connection, queue: str, job_id: int, task_id: int, worker: str) -> int | None:
    """The task ``worker`` should claim instead of the delivered ``task_id`` (of ``job_id``,
    locked by the caller) under the fair share, marked sent in its place, or None to claim the
    delivered one (:func:`farm.policy.claim_instead`). The message was the stride pick's
    when it was sent; this decides again by what runs now, so a project that arrived since
    starts at the next claim instead of behind the window's messages."""
    # The queue's dispatch lock (taken again by the claim's take()), so that claims arriving
    # together decide one after another, each seeing what the last one claimed.
    lock_queue(conn, queue, conn.execute(_ANY_LIMIT).scalar_one())
    q = _shares(conn, queue, job_id, 0)
    project = None if q.mine is None else claim_instead(q.mine, q.shares, q.waiting)
    if project is None:
        return None
    params = {"queue": queue, "project": project, "task": task_id, "worker": worker}
    return conn.execute(_SWAP, params).scalar_one_or_none()


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


def send(celery: Celery, task_id: int, kind: TaskKind, queue: str, label: str) -> None:
    celery.send_task(
        TASK_NAMES[kind.value],
        args=[task_id],
        queue=queue,
        shadow=label,
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
    )


@dataclass(frozen=True)
class Outgoing:
    """A task marked sent in a transaction, to be sent once that transaction commits."""

    task_id: int
    kind: TaskKind
    queue: str
    label: str


def dispatch_ready(
    settings: Settings, celery: Celery, queues: Iterable[str] | None = None, limit: int = 500
) -> int:
    """Send the highest-priority ready tasks each queue (all with ready work, by default) has
    room for; returns how many were sent. Safe to call from anywhere, at any time. While
    the broker is down it waits out the outage's back-off instead of marking anything."""
    if not HEALTH.may_send(str(settings.broker_url)):
        return 0
    with session_scope(settings) as session:
        wanted = ready_queues(session) if queues is None else queues
        outgoing = take(session, wanted, settings.dispatch_ahead, limit, fair=settings.fair_share)
    return send_all(settings, celery, outgoing)


def take(
    session: Session,
    queues: Iterable[str],
    ahead: int,
    limit: int = 500,
    *,
    claiming: bool = False,
    fair: bool = True,
) -> list[Outgoing]:
    """Mark, in the caller's transaction, what each queue's window has room for; the caller
    sends it with :func:`send_all` after committing (the workers do this inside their claim,
    saving a transaction per task). ``fair``: shared out between projects by their weights
    and caps (farm.policy), else by priority alone."""
    conn = session.connection()
    out: list[Outgoing] = []
    limited = conn.execute(_ANY_LIMIT).scalar_one()
    for queue in sorted(set(queues)):
        lock_queue(conn, queue, limited)
        params = {"queue": queue, "limit": limit, "ahead": ahead, "claiming": int(claiming)}
        rows = _pick_fair(conn, params) if fair else _pick(conn, params)
        if limited:
            rows = _within_limits(conn, rows)
        for task_id, name, frames, job_name, _ in rows:
            kind = TaskKind(name)
            out.append(Outgoing(task_id, kind, queue, describe(kind, job_name, frames)))
    return out


def lock_queue(conn: Connection, queue: str, limited: bool) -> None:
    """One dispatcher per queue at a time: the next one waits, then counts what this one
    marked, so concurrent passes neither overfill nor starve the window. While limits exist,
    the farm-wide lock first (always in that order). Held to the transaction's end; taking
    either again in the same transaction is free."""
    if limited:
        conn.execute(_LOCK, {"key": _LIMITS_KEY})
    conn.execute(_LOCK, {"key": zlib.crc32(queue.encode()) & 0x7FFFFFFF})


Picked = tuple[int, str, str, str, list[str]]  # id, kind, frames, job name, limits


def _pick(conn: Connection, params: dict[str, Any]) -> list[Picked]:
    """By priority, then age, whatever the project: the policy switched off."""
    rows = conn.execute(_PICK, params).all()
    return [(r[0], r[1], r[2], r[4], r[5]) for r in sorted(rows, key=lambda r: (-r[3], r[0]))]


def _pick_fair(conn: Connection, params: dict[str, Any]) -> list[Picked]:
    """By the fair share, in its order (lowest pass first): the broker delivers in send order."""
    rows = conn.execute(_PICK_FAIR, params).all()
    return [(r[0], r[1], r[2], r[4], r[5]) for r in sorted(rows, key=lambda r: r[3])]


def _within_limits(conn: Connection, rows: list[Picked]) -> list[Picked]:
    """The picked rows that fit their limits, in send order; the rest are un-marked. The pick
    sends only tasks whose limits had room before it, but several tasks of one pass may
    share a limit's last unit: the first in send order takes it."""
    names = sorted({n for r in rows for n in r[4]})
    if not names:
        return rows
    picked = {n: sum(n in r[4] for r in rows) for n in names}
    free = {
        name: count - (now - picked[name])
        for name, count, now in conn.execute(_LIMITS_NOW, {"names": names})
    }
    keep: list[Picked] = []
    back: list[int] = []
    for r in rows:
        if all(free.get(n, 0) > 0 for n in r[4]):
            for n in r[4]:
                free[n] -= 1
            keep.append(r)
        else:
            back.append(r[0])
    if back:
        conn.execute(_UNMARK_PICKED, {"ids": back})
    return keep


def send_all(settings: Settings, celery: Celery, outgoing: list[Outgoing]) -> int:
    """Send committed marks in order. If the broker refuses one, the rest are un-marked so the
    next pass (a claim's, the sweeper's) sends them, instead of waiting to be taken for lost.

    A refusal that retrying cannot fix raises :class:`farm.errors.BrokerUnusable` (after the
    un-marking); an outage is logged with its start and the next pass waits out a back-off.
    """
    url = str(settings.broker_url)
    for i, msg in enumerate(outgoing):
        try:
            send(celery, msg.task_id, msg.kind, msg.queue, msg.label)
        except Exception as e:
            unsent = [m.task_id for m in outgoing[i:]]
            try:
                with session_scope(settings) as session:
                    session.execute(_UNMARK, {"ids": unsent})
            except Exception as db_error:  # the sweeper's lost-message check still has them
                log.warning("could not un-mark %s unsent tasks: %s", len(unsent), db_error)
            HEALTH.failed(url, e)
            return i
    if outgoing:
        HEALTH.succeeded(url)
    return len(outgoing)


def ready_queues(session: Session) -> list[str]:
    return [q for (q,) in session.execute(_READY_QUEUES).all()]
