"""Recovering lost work from what the database says.

Two kinds of loss: a worker that died (its lease expired) and a message that vanished (a
task stays sent-but-unclaimed while the broker holds fewer messages for its queue than
there are such tasks). The decisions are pure functions of a snapshot and ``now``; the edge
applies them through the state machine and then sends whatever became ready.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import func, select, text

from farm.audit import Actor
from farm.blocklist import record_failure
from farm.broker import raise_if_unfixable
from farm.config import Settings
from farm.db import session_scope
from farm.dispatch import dispatch_ready, fail_orphans
from farm.errors import BrokerUnusable
from farm.lifecycle import lock_task, transition
from farm.models import Event, Task
from farm.retention import START, Cursor, due_cutoff, purge
from farm.states import TaskState
from farm.webhooks import deliver_due

log = logging.getLogger(__name__)
RETENTION_BATCHES_PER_PASS = 4


@dataclass(frozen=True)
class Running:
    id: int
    lease_expires_at: datetime
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class Unclaimed:
    id: int
    queue: str
    sent_at: datetime
    sends: int


@dataclass(frozen=True)
class Decision:
    task_id: int
    action: str  # "requeue" | "fail" | "resend"
    reason: str


def decide_expired(tasks: Sequence[Running], now: datetime) -> list[Decision]:
    out = []
    for t in tasks:
        if t.lease_expires_at >= now:
            continue
        if t.attempts < t.max_attempts:
            out.append(Decision(t.id, "requeue", "lease expired: worker lost"))
        else:
            out.append(
                Decision(t.id, "fail", f"lease expired: worker lost on attempt {t.attempts}")
            )
    return out


def decide_lost(
    unclaimed: Sequence[Unclaimed],
    in_broker: Mapping[str, int],
    now: datetime,
    grace_s: float,
    max_resends: int,
    held: Mapping[int, float] | None = None,
    hold_s: float = 0.0,
) -> list[Decision]:
    """Per queue: if the broker holds fewer messages than tasks await one, the oldest sent of
    those older than the grace period are the lost ones (messages are consumed in order).

    ``held`` maps a task to how long ago a worker took its message (seconds) and still holds
    it unacknowledged: such a message has left the queue but is not lost while its worker is
    starting the task. It is trusted for ``hold_s``, a lease's length; past that its worker
    is taken for dead, as one whose lease expired would be, and the task is judged again."""
    held = held or {}
    out: list[Decision] = []
    by_queue: dict[str, list[Unclaimed]] = {}
    for t in unclaimed:
        if t.id in held and held[t.id] < hold_s:
            continue
        by_queue.setdefault(t.queue, []).append(t)
    for queue, tasks in by_queue.items():
        missing = len(tasks) - in_broker.get(queue, 0)
        if missing <= 0:
            continue
        old = sorted(
            (t for t in tasks if (now - t.sent_at).total_seconds() > grace_s),
            key=lambda t: (t.sent_at, t.id),
        )
        for t in old[:missing]:
            if t.sends > max_resends:
                out.append(Decision(t.id, "fail", f"message lost {t.sends} times"))
            else:
                out.append(Decision(t.id, "resend", "message lost: re-sending"))
    return out


def broker_depths(celery: Celery, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting per queue."""
    return _read_broker(celery, queues, held=False)[0]


def broker_snapshot(
    celery: Celery, queues: Sequence[str]
) -> tuple[dict[str, int], dict[int, float]]:
    """Messages waiting per queue, then the tasks whose messages workers hold (see
    :func:`held_messages`), read in that order so a message taken between the two reads is
    counted twice (a pass too lenient) rather than not at all (a needless re-send)."""
    return _read_broker(celery, queues, held=True)


def _read_broker(
    celery: Celery, queues: Sequence[str], *, held: bool
) -> tuple[dict[str, int], dict[int, float]]:
    depths: dict[str, int] = {}
    with celery.connection_for_write() as conn:
        channel = conn.default_channel
        for q in queues:
            try:
                depths[q] = channel.queue_declare(queue=q, passive=True).message_count
            except Exception:  # an absent queue holds nothing
                depths[q] = 0
                conn.close()
                channel = conn.default_channel
        return depths, held_messages(channel, time.time()) if held else {}


def held_messages(channel: Any, now: float) -> dict[int, float]:
    """Farm task id -> seconds since a worker took its message, for the messages workers hold
    unacknowledged (kombu's Redis transport keeps them in a hash, with the time each was taken
    in a sorted set beside it). Other transports say nothing here: {}."""
    key = getattr(channel, "unacked_key", None)
    if key is None:
        return {}
    client = channel.client
    taken = dict(client.zrange(channel.unacked_index_key, 0, -1, withscores=True))
    out: dict[int, float] = {}
    for tag, raw in client.hgetall(key).items():
        task_id = message_task_id(raw)
        if task_id is not None:
            out[task_id] = max(0.0, now - taken.get(tag, 0.0))
    return out


def message_task_id(raw: bytes | str) -> int | None:
    """The farm task id a held Celery message carries (its only argument), or None for a
    message that is not one of the farm's tasks."""
    try:
        payload = json.loads(raw)[0]
        if payload.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(payload["body"])
        else:
            body = payload["body"]
        args = json.loads(body)[0]
        return int(args[0]) if len(args) == 1 and isinstance(args[0], int) else None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def sweep_once(settings: Settings, celery: Celery) -> list[Decision]:
    """One pass: recover expired leases and lost messages, then send what is ready.

    The broker is counted before the database is read, and only tasks sent before that count
    are judged: a message taken by a worker between the two reads would otherwise look lost
    (gone from the broker, its task not yet claimed), and one sent between them would make
    an older, delivered one look lost."""
    with session_scope(settings) as session:
        counted_at = session.execute(select(func.clock_timestamp())).scalar_one()
        queues = sorted(
            session.execute(
                select(Task.queue)
                .where(Task.state == TaskState.QUEUED, Task.sent_at.is_not(None))
                .distinct()
            ).scalars()
        )
    depths, held = broker_snapshot(celery, queues) if queues else ({}, {})
    with session_scope(settings) as session:
        now = session.execute(select(func.now())).scalar_one()
        running = [
            Running(t.id, t.lease_expires_at, t.attempts, t.max_attempts)
            for t in session.execute(
                select(Task).where(Task.state == TaskState.RUNNING, Task.lease_expires_at < now)
            ).scalars()
            if t.lease_expires_at is not None
        ]
        unclaimed = [
            Unclaimed(t.id, t.queue, t.sent_at, t.sends)
            for t in session.execute(
                select(Task).where(
                    Task.state == TaskState.QUEUED,
                    Task.sent_at <= counted_at,
                    Task.queue.in_(queues),
                )
            ).scalars()
            if t.sent_at is not None
        ]
    decisions = decide_expired(running, now)
    if unclaimed:
        decisions += decide_lost(
            unclaimed, depths, now, settings.unclaimed_s, settings.max_resends,
            held=held, hold_s=settings.lease_s,
        )  # fmt: skip
    for d in decisions:
        try:
            _apply(settings, d)
        except Exception:  # one bad decision must not drop the rest of the pass
            log.exception("sweep: could not apply %s", d)
    with session_scope(settings) as session:
        fail_orphans(session)
    dispatch_ready(settings, celery)
    deliver_due(settings)
    apply_retention(settings, now)
    return decisions


def apply_retention(settings: Settings, now: datetime, scan: RetentionScan | None = None) -> None:
    """``FARM_RETENTION_DAYS``: a few batches of old finished jobs purged each pass, so a
    pass stays short and a backlog drains over the passes that follow. Each pass goes on
    where the last stopped (``scan``), and starts over once it has seen every old job, so
    old jobs kept for live ones are stepped over rather than read by every pass."""
    cutoff = due_cutoff(settings, now)
    if cutoff is None:
        return
    scan = scan or _SCAN
    try:
        report = purge(
            settings, cutoff, max_batches=RETENTION_BATCHES_PER_PASS, count_protected=False,
            start=scan.cursor, actor=Actor("sweeper"),
        )  # fmt: skip
    except Exception:  # the next pass tries again; recovery must not wait on retention
        log.exception("sweep: retention purge failed")
        return
    scan.cursor = report.cursor or START


@dataclass
class RetentionScan:
    """Where the sweeper's retention goes on at its next pass."""

    cursor: Cursor = START


_SCAN = RetentionScan()


def _apply(settings: Settings, d: Decision) -> None:
    with session_scope(settings) as session:
        task = lock_task(session, d.task_id)
        if task is None:
            return
        if d.action == "resend":
            if task.state is TaskState.QUEUED and task.sent_at is not None:
                task.sent_at = None
                session.add(
                    Event(
                        job_id=task.job_id,
                        task_id=task.id,
                        from_state="queued",
                        to_state="queued",
                        attempt=task.attempts,
                        message=d.reason,
                    )
                )
            return
        if task.state is TaskState.RUNNING:  # a lost worker counts against it, as a failure
            record_failure(session, task.job_id, task.worker, d.reason, settings.block_after)
            if d.action in ("requeue", "fail"):
                session.execute(_LOST_ATTEMPT, {"task": task.id})
        if d.action == "requeue" and task.state is TaskState.RUNNING:
            log.warning("task %s: %s (worker %s)", task.id, d.reason, task.worker)
            task.not_before = None
            transition(session, task, TaskState.QUEUED, message=d.reason)
        elif d.action == "fail" and task.state in (TaskState.RUNNING, TaskState.QUEUED):
            transition(session, task, TaskState.FAILED, message=d.reason)


# A dead worker's attempt, for accounting (farm.usage): counted up to its lease's expiry, on
# the device that worker's last accounted attempt had.
_LOST_ATTEMPT = text(
    "INSERT INTO attempts (task_id, job_id, project, submitter, pool, attempt, worker, device,"
    " started_at, ended_at, outcome) SELECT t.id, t.job_id, t.project, j.submitter, j.pool,"
    " t.attempts, t.worker, coalesce((SELECT a.device FROM attempts a WHERE a.worker = t.worker"
    " ORDER BY a.id DESC LIMIT 1), 'unknown'), t.started_at,"
    " greatest(t.started_at, t.lease_expires_at), 'lost'"
    " FROM tasks t JOIN jobs j ON j.id = t.job_id"
    " WHERE t.id = :task AND t.started_at IS NOT NULL ON CONFLICT DO NOTHING"
)


def sweep_forever(settings: Settings, celery: Celery, stop: threading.Event) -> None:
    """Sweep every ``sweep_interval_s`` until ``stop``. A failure that another pass will not
    fix (the broker refuses our password, its transport cannot be imported) is raised as
    :class:`BrokerUnusable`, so the command that runs the sweeper stops and says why."""
    while not stop.is_set():
        try:
            sweep_once(settings, celery)
        except BrokerUnusable:
            raise
        except Exception as e:
            raise_if_unfixable(str(settings.broker_url), e)
            log.warning("sweep failed (%s: %s); trying again", type(e).__name__, e)
        stop.wait(settings.sweep_interval_s)


class SweeperThread(threading.Thread):
    """:func:`sweep_forever` beside a command's main thread; ``error`` holds what stopped it,
    for the main thread to raise (see :meth:`check`)."""

    def __init__(self, settings: Settings, celery: Celery, stop: threading.Event) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.settings, self.celery, self.stop = settings, celery, stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            sweep_forever(self.settings, self.celery, self.stop)
        except BaseException as e:
            self.error = e

    def check(self) -> None:
        if self.error is not None:
            raise self.error
