"""The harness around every task: claim, heartbeat, run the stage, record the outcome, and
go on with the job's next short task.

A delivery is worked on only after the worker wins a conditional claim in the database
(:mod:`workers.claims`), so a duplicate or stale message is dropped. While it runs, a
background thread extends the lease; if an extension finds the task no longer ours (canceled,
or re-queued after our lease lapsed) the stage is told to stop at its next check and its
result is discarded.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable

from celery import Celery
from sqlalchemy import text

from farm.config import Settings
from farm.db import get_engine
from farm.dispatch import dispatch_ready, send_all
from farm.errors import BrokerUnusable, TaskLost
from farm.states import TaskKind
from farm.timeouts import Timeouts, effective
from workers.claims import Completion, claim, complete, fail, stopped, with_db_retry
from workers.context import PermanentError, Result, TaskContext
from workers.tasklog import capture, wait_flushed

log = logging.getLogger(__name__)
HOST = socket.gethostname()


class Heartbeat(threading.Thread):
    """Extends the attempt's lease every beat, and applies its ``max_run_s`` and ``stall_s``
    (farm.timeouts): the thread lives on while a stage hangs in a call that never returns,
    so it is the one that can tell. A rule that fires fails the attempt (retries apply),
    tells the stage to stop at its next check, and if the stage has not returned a beat
    later, ends the worker's child process: a hung CUDA call cannot be interrupted, and
    the prefork pool starts a fresh child."""

    def __init__(self, ctx: TaskContext, timeouts: Timeouts | None = None) -> None:
        super().__init__(name=f"heartbeat-{ctx.task_id}", daemon=True)
        self.ctx = ctx
        self.timeouts = timeouts or Timeouts()
        self.stop_event = threading.Event()
        self.started = time.monotonic()
        self.fired: str | None = None

    def broken_rule(self, now: float) -> str | None:
        """The error of the first rule the attempt breaks at ``now``, if any."""
        t = self.timeouts
        ran = now - self.started
        if t.max_run_s is not None and ran > t.max_run_s:
            return f"max_run_s exceeded (ran {ran:.0f} s)"
        still = now - max(self.started, self.ctx.progress_moved_at)
        if t.stall_s is not None and still > t.stall_s:
            return f"stall_s: no progress for {still:.0f} s"
        return None

    def run(self) -> None:
        s = self.ctx.settings
        while not self.stop_event.wait(s.heartbeat_s):
            broken = self.broken_rule(time.monotonic())
            if broken is not None:
                self._fire(broken)
                return
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

    def _fire(self, error: str) -> None:
        self.fired = error
        log.error("task %s attempt %s: %s", self.ctx.task_id, self.ctx.attempt, error)
        self.ctx.lost.set()
        try:
            fail(self.ctx, error)
        except Exception:  # the lease lapses and the sweeper requeues it instead
            log.exception("task %s: could not record %s", self.ctx.task_id, error)
        if not self.stop_event.wait(self.ctx.settings.heartbeat_s):
            log.critical(
                "task %s: the stage is still stuck a heartbeat after %s; exiting this process",
                self.ctx.task_id,
                error,
            )
            os._exit(70)

    def stop(self) -> None:
        self.stop_event.set()


Stage = Callable[[TaskContext], Result]


class TooFast(Exception):
    """The stage returned before the attempt's ``min_run_s``."""


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


def execute(
    settings: Settings,
    celery: Celery,
    task_id: int,
    worker: str | None = None,
    consumes: frozenset[str] = frozenset(),
) -> str:
    """Run one delivery of ``task_id`` to its end, and the tasks chained after it; returns
    what happened, for the log.

    While the delivery has run less than ``FARM_CHAIN_S``, each success claims the job's next
    task in its own transaction and runs it here, without a broker message: for short tasks
    the broker's and Celery's per-task work would otherwise cost more than the task. A task
    longer than that is never followed, so long renders keep one message per task. A success
    that opens the job's next stage in a queue this worker ``consumes`` (the last chunk opening
    the assembly) claims that stage whatever the delivery's age, unless chaining is off."""
    name = worker or f"{HOST}:{os.getpid()}"
    ctx = with_db_retry(
        settings, f"task {task_id} claim", lambda: claim(settings, task_id, name, consumes)
    )
    if ctx is None:
        return "duplicate"
    try:
        send_all(settings, celery, ctx.outgoing)
    except BrokerUnusable as e:  # un-marked: the sweeper sends them, or stops its farm
        log.error("task %s: %s", task_id, e)
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
    """Run one claimed task; returns its outcome and the task chained after it, if any. The
    attempt's log is captured and stored as it runs (:mod:`workers.tasklog`)."""
    with capture(settings, ctx.task_id, ctx.attempt, ctx.worker) as tl:
        ctx.log_line = lambda line: tl.append("progress", line)
        try:
            return _attempt(settings, celery, ctx, chain_until)
        finally:
            ctx.log_line = None


def _attempt(
    settings: Settings, celery: Celery, ctx: TaskContext, chain_until: float
) -> tuple[str, TaskContext | None]:
    task_id = ctx.task_id
    log.info("task %s (job %s %s) attempt %s: start", task_id, ctx.job_id, ctx.kind, ctx.attempt)
    timeouts = effective(ctx.spec, ctx.kind.value, settings.timeout_defaults())
    beat = Heartbeat(ctx, timeouts)
    beat.start()
    outcome, done = "failed", Completion(False)
    try:
        result = stage_for(ctx.kind)(ctx)
        ctx.check()
        ran = time.monotonic() - beat.started
        if timeouts.min_run_s is not None and ran < timeouts.min_run_s:
            # Too fast to be real work: an empty input, a stage that skipped its frames.
            raise TooFast(f"min_run_s: finished in {ran:.1f} s")
    except TaskLost:
        outcome = beat.fired or "lost"
        stopped(ctx)
    except TooFast as e:
        log.error("task %s attempt %s: %s", task_id, ctx.attempt, e)
        wait_flushed()
        fail(ctx, str(e))
    except Exception as e:
        # A permanent failure names what caused it (CheckpointError, DatasetError, ...).
        shown = e.__cause__ if isinstance(e, PermanentError) and e.__cause__ else e
        detail = "".join(traceback.format_exception_only(type(shown), shown)).strip()
        log.exception("task %s attempt %s failed", task_id, ctx.attempt)
        wait_flushed()
        fail(ctx, detail[-4000:], permanent=isinstance(e, PermanentError))
    else:
        wait_flushed()  # the previous task's log is stored before this outcome is
        done = complete(
            ctx,
            result,
            chain=time.monotonic() < chain_until,
            next_stage=settings.chain_s > 0,
        )
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
    if done.dispatch:
        try:
            dispatch_ready(settings, celery, done.dispatch)
        except Exception as e:
            log.warning("dispatch after task %s failed: %s", task_id, e)
    log.info("task %s attempt %s: %s", task_id, ctx.attempt, outcome)
    return outcome, done.next_task
