"""The log store: where each task attempt's bounded log lives (the ``task_logs`` table, so
every API replica reads what any worker wrote), and how it is read and followed.

Writers rewrite an attempt's row whole (it is bounded by :class:`farm.logbuffer.LogBuffer`,
so a flush costs at most its head plus its tail). Readers ask for the lines after the last
``seq`` they saw; a follower polls until the attempt, or with no attempt named the task, ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from farm.config import Settings
from farm.db import get_engine, session_scope
from farm.errors import TaskNotFound
from farm.logbuffer import LogBuffer, LogLine
from farm.models import Task, TaskLog
from farm.states import TaskState

ENDED = {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELED}
END = "end"  # the level of a followed log's last line: the task has ended
END_GRACE_S = 3.0


def write(
    settings: Settings, task_id: int, attempt: int, buf: LogBuffer, worker: str, *, done: bool
) -> None:
    """Store ``buf`` as the attempt's log (an upsert of one row)."""
    values = {
        "task_id": task_id,
        "attempt": attempt,
        "worker": worker,
        "lines": [line.as_row() for line in buf.snapshot()],
        "next_seq": buf.next_seq,
        "dropped_bytes": buf.dropped_bytes,
        "done": done,
    }
    stmt = insert(TaskLog).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["task_id", "attempt"],
        set_={k: stmt.excluded[k] for k in values if k not in ("task_id", "attempt")}
        | {"updated_at": func.now()},
    )
    with get_engine(settings, ping=False).begin() as conn:
        conn.execute(stmt)


@dataclass(frozen=True)
class Chunk:
    """What one read gives: the lines after ``after`` and whether more can come."""

    task_id: int
    attempt: int
    lines: list[LogLine]
    attempt_over: bool  # this attempt will write no more
    task_over: bool  # nor will any later attempt: the task has ended
    attempts: int  # the task's attempts so far
    state: str  # the task's
    closed: bool  # the attempt's worker wrote its last flush


def read(settings: Settings, task_id: int, attempt: int | None = None, after: int = -1) -> Chunk:
    """The lines of ``attempt`` (default: the task's latest) with ``seq > after``."""
    with session_scope(settings, ping=False) as s:
        task = s.execute(select(Task.state, Task.attempts).where(Task.id == task_id)).first()
        if task is None:
            raise TaskNotFound(task_id)
        state, attempts = task
        k = attempts if attempt is None else attempt
        if attempt is not None and not 1 <= attempt <= max(attempts, 1):
            raise TaskNotFound(task_id, attempt)
        row = s.get(TaskLog, (task_id, k))
        lines = [] if row is None else [LogLine.from_row(r) for r in row.lines]
        done = row is not None and row.done
    task_over = state in ENDED
    # An attempt ends when its worker says so, or when a later one starts (it was lost), or
    # when the task ended without its worker saying so (canceled, or swept after a kill).
    over = done or attempts > k or task_over
    kept = [x for x in lines if x.seq > after]
    return Chunk(task_id, k, kept, over, task_over, attempts, TaskState(state).value, done)


def follow(
    settings: Settings,
    task_id: int,
    attempt: int | None = None,
    *,
    after: int = -1,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[tuple[int, LogLine]]:
    """Yield (attempt, line) as they are written, from ``attempt`` (default: the latest; its
    lines after ``after``) and on into each later attempt until the task ends: a worker killed
    mid-task is followed by the attempt that replaces it. The task's end is the last line,
    level ``end``; past ``timeout_s`` the lines stop without one (the caller follows again
    from the last attempt and seq it saw)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    grace_until: float | None = None
    k = attempt if attempt is not None else max(read(settings, task_id).attempt, 1)
    while True:
        chunk = read(settings, task_id, k, after)
        for line in chunk.lines:
            yield k, line
            after = line.seq
        if chunk.attempts > k:
            k, after = k + 1, -1
            continue
        if chunk.task_over:
            # The task's end commits before its worker's last flush: wait for that flush a
            # moment (a worker killed in between never writes it).
            if grace_until is None:
                grace_until = time.monotonic() + END_GRACE_S
            if chunk.closed or time.monotonic() > grace_until:
                yield k, LogLine(max(after + 1, 0), time.time(), END, f"task {chunk.state}")
                return
        if deadline is not None and time.monotonic() > deadline:
            return
        sleep(poll_s)


def as_json(task_id: int, attempt: int, line: LogLine) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "attempt": attempt,
        "seq": line.seq,
        "at": line.at,
        "level": line.level,
        "text": line.text,
    }
