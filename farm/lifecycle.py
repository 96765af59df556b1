"""Every status change goes through this module: :func:`transition` for a task held as an
ORM object (operators, the sweeper), and :func:`move_sql` for the workers' hot path, one
statement that writes the task row, the event and the job's counters; :func:`settle` follows
either. The state machine's table is checked, the event written, the job's task counters and
state kept, and what the change made ready opened, all in the caller's transaction."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, TextClause, func, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from farm import webhooks
from farm.errors import InvalidTransition
from farm.models import Job, JobDependency, Task
from farm.states import FINISHED_JOB, JobState, TaskState, can_transition, derive_job_state

TASKS = cast(Table, Task.__table__)
JOBS = cast(Table, Job.__table__)
_COUNTERS = [f"tasks_{s.value}" for s in TaskState]


@dataclass(frozen=True)
class Transitioned:
    job_state: JobState
    # Queues where tasks became ready (a stage finished, or a job others wait for succeeded):
    # worth a dispatch pass once the transaction commits.
    opened: frozenset[str] = frozenset()
    # The change finished its task's stage (every task through it succeeded): no task of
    # that stage or an earlier one is left to run.
    stage_done: bool = False


_NOW = func.now()  # task_fields' ``when`` in statements rendered as SQL text


def task_fields(
    src: TaskState, dst: TaskState, when: datetime | ColumnElement[Any], message: str | None
) -> dict[str, Any]:
    """What a transition writes on the task's row (``when`` may be SQL, e.g. ``now()``)."""
    if not can_transition(src, dst):
        raise InvalidTransition(None, src.value, dst.value)
    fields: dict[str, Any] = {"state": dst}
    if dst is TaskState.QUEUED:
        fields.update(sent_at=None, lease_expires_at=None, worker_pid=None)
    elif dst is TaskState.RUNNING:
        fields.update(started_at=when, finished_at=None, error=None)
    else:
        fields.update(finished_at=when, lease_expires_at=None)
    if message and (
        dst is TaskState.FAILED or (dst is TaskState.QUEUED and src is TaskState.RUNNING)
    ):
        fields["error"] = message
    return fields


def transition(
    session: Session,
    task: Task,
    dst: TaskState,
    *,
    message: str | None = None,
    worker: str | None = None,
    now: datetime | None = None,
) -> Transitioned:
    """Move ``task`` to ``dst``. The caller holds the task's row lock (``with_for_update``),
    so two processes cannot both make the same change."""
    src = task.state
    if not can_transition(src, dst):
        raise InvalidTransition(task.id, src.value, dst.value)
    when = now or session.execute(select(func.now())).scalar_one()
    for name, value in task_fields(src, dst, when, message).items():
        setattr(task, name, value)
    session.flush()
    row = (
        session.connection()
        .execute(
            _RECORD[(src, dst)],
            {
                "job": task.job_id, "task": task.id, "at": when, "worker": worker or task.worker,
                "attempt": task.attempts, "message": message, "stage": task.stage,
                "stage_end": task.stage_end,
            },
        )
        .one()
    )  # fmt: skip
    return settle(session, task.job_id, dst, row)


# The event and the job's counters for the task row in the CTE ``moved`` (columns job_id,
# task_id, at, worker, attempt, message, stage, stage_end), as the tail of one statement.
# The event's foreign key holds FOR KEY SHARE on the job, and the counters' UPDATE takes FOR
# NO KEY UPDATE, which does not conflict with it: two workers of one job queue up on the job
# row instead of deadlocking. RETURNING reads the job row as locked, so the counters are
# exact under concurrent transitions.
def _record_tail(src: TaskState, dst: TaskState) -> str:
    return (
        ", ev AS (INSERT INTO events"
        " (job_id, task_id, at, from_state, to_state, worker, attempt, message)"
        f" SELECT job_id, task_id, at, '{src.value}', '{dst.value}', worker, attempt, message"
        " FROM moved)"
        f" UPDATE jobs SET tasks_{src.value} = tasks_{src.value} - 1,"
        f" tasks_{dst.value} = tasks_{dst.value} + 1 FROM moved WHERE jobs.id = moved.job_id"
        f" RETURNING jobs.state, {', '.join(f'jobs.{c}' for c in _COUNTERS)},"
        " moved.task_id, moved.attempt, moved.stage, moved.stage_end, moved.at"
    )


# transition()'s event and counters: the task row, already written through the ORM, given.
_GIVEN = (
    "WITH moved AS (SELECT CAST(:job AS bigint) AS job_id, CAST(:task AS bigint) AS task_id,"
    " CAST(:at AS timestamptz) AS at, CAST(:worker AS text) AS worker,"
    " CAST(:attempt AS integer) AS attempt, CAST(:message AS text) AS message,"
    " CAST(:stage AS integer) AS stage, CAST(:stage_end AS integer) AS stage_end)"
)
_RECORD = {
    (src, dst): text(_GIVEN + _record_tail(src, dst))
    for src in TaskState
    for dst in TaskState
    if can_transition(src, dst)
}


@functools.cache
def move_sql(
    src: TaskState,
    dst: TaskState,
    sets: tuple[tuple[str, str], ...],
    guard: str,
    ctes: str,
    *,
    target: str = ":task",
    returning: tuple[str, ...] = (),
) -> TextClause:
    """One statement that moves task ``target`` (SQL for its id: the parameter ``:task``, or a
    subquery that picks and locks one, whose own conditions then say it is in ``src``: a
    state test on the outer row would let the planner read a partial index of every task in
    that state instead of the primary key) from ``src`` to ``dst`` (its row's fields, as
    :func:`task_fields` says, plus ``sets``: column -> SQL), runs the extra CTEs ``ctes``
    (which see the moved row as ``moved``), and records the event and the job's counters: the
    workers' hot path, one round trip instead of one per write. ``guard`` adds conditions on
    the task row; a row they exclude moves nothing and the statement returns no row.
    ``returning`` names more of the task's columns to return (``"index" AS task_index``).
    Parameters: ``:message`` and those the SQL pieces name."""
    fields = {
        name: "now()" if value is _NOW else "NULL" if value is None else ":message"
        if name == "error" else f"'{value.value}'"
        for name, value in task_fields(src, dst, _NOW, "?").items()
    }  # fmt: skip
    fields.update(sets)
    assignments = ", ".join(f"{name} = {sql}" for name, sql in fields.items())
    extra = "".join(f", {column}" for column in returning)
    state = f" AND state = '{src.value}'" if target == ":task" else ""
    return text(
        f"WITH moved AS (UPDATE tasks SET {assignments} WHERE id = {target}{state}{guard}"
        " RETURNING job_id, id AS task_id, now() AS at, worker, attempts AS attempt,"
        f" CAST(:message AS text) AS message, stage, stage_end{extra})"
        + (f", {ctes}" if ctes else "")
        + _record_tail(src, dst)
        + "".join(f", moved.{column.rpartition(' AS ')[2]}" for column in returning)
    )


def settle(session: Session, job_id: int, dst: TaskState, row: Any) -> Transitioned:
    """After the counters moved (``row``: what the recording statement returned): the job's
    state, and what the change made ready. A stage is done when the job's successes reach
    the number of tasks through it (``stage_end``), as no task leaves SUCCEEDED and no later
    stage runs before an earlier one is done: no query of the job's tasks is needed."""
    fields = row._mapping
    counts = {state: fields[counter] for state, counter in zip(TaskState, _COUNTERS, strict=True)}
    stage, stage_end, when = fields["stage"], fields["stage_end"], fields["at"]
    opened: set[str] = set()
    stage_done = dst is TaskState.SUCCEEDED and counts[TaskState.SUCCEEDED] == stage_end
    # The job's last stage (every task is through it) has no later stage to open.
    if stage_done and sum(counts.values()) > stage_end:
        later = select(func.min(TASKS.c.stage)).where(
            TASKS.c.job_id == job_id, TASKS.c.stage > stage
        )
        opened |= _mark_ready(session, job_id, later)
    old, new = JobState(fields["state"]), derive_job_state(s for s, n in counts.items() if n > 0)
    if new is not old:
        dependents = _set_job_state(session, job_id, old, new, when)
        if new is JobState.SUCCEEDED:
            opened |= _release_dependents(session, dependents)
    return Transitioned(new, frozenset(opened), stage_done)


# The job's new state, its event, and what its webhook and dependents need, in one statement
# (the caller holds the job's row lock). A failed job's error is its first failed task's.
_SET_JOB_STATE = text(
    "WITH p AS (SELECT CAST(:job AS bigint) AS job, CAST(:old AS text) AS old,"
    " CAST(:new AS text) AS new, CAST(:at AS timestamptz) AS at),"
    " j AS (UPDATE jobs SET state = p.new,"
    " started_at = CASE WHEN p.new = 'running' AND started_at IS NULL THEN p.at"
    " ELSE started_at END,"
    " finished_at = CASE WHEN p.new IN ("
    + ", ".join(sorted(f"'{state.value}'" for state in FINISHED_JOB))
    + ") THEN p.at END,"
    " error = CASE WHEN p.new = 'failed' THEN (SELECT t.error FROM tasks t WHERE t.job_id = p.job"
    " AND t.state = 'failed' ORDER BY t.id LIMIT 1) WHEN p.new = 'canceled' THEN error END"
    " FROM p WHERE id = p.job RETURNING id, name, kind, error, webhook_url, webhook_events),"
    " ev AS (INSERT INTO events (job_id, at, from_state, to_state)"
    " SELECT j.id, p.at, p.old, p.new FROM j, p)"
    " SELECT j.*, CASE WHEN p.new = 'succeeded' THEN ARRAY(SELECT d.job_id"
    " FROM job_dependencies d WHERE d.depends_on_id = j.id ORDER BY d.job_id) END AS dependents"
    " FROM j, p"
)


def _set_job_state(
    session: Session, job_id: int, old: JobState, new: JobState, when: datetime
) -> list[int]:
    """Write the job's new state; returns its dependents when it succeeded."""
    session.flush()  # what the session holds goes first; its copy of the job is then stale
    row = (
        session.connection()
        .execute(
            _SET_JOB_STATE,
            {"job": job_id, "old": old.value, "new": new.value, "at": when},
        )
        .one()
    )
    held = session.identity_map.get(identity_key(Job, job_id))
    if held is not None:
        session.expire(held)
    webhooks.enqueue(session, row, new, when)
    return list(row.dependents or ())


def _release_dependents(session: Session, dependents: list[int]) -> set[str]:
    """The job succeeded: open the first stage of each job that now has all it waits for.

    Each dependent's row is locked first, so two of its dependencies succeeding at once are
    ordered and the later one sees the earlier.
    """
    conn = session.connection()
    queues: set[str] = set()
    for dependent in sorted(set(dependents)):
        conn.execute(
            select(JOBS.c.id).where(JOBS.c.id == dependent).with_for_update(key_share=True)
        )
        waiting = conn.execute(
            select(JOBS.c.id)
            .join(JobDependency, JobDependency.depends_on_id == JOBS.c.id)
            .where(JobDependency.job_id == dependent, JOBS.c.state != JobState.SUCCEEDED)
            .limit(1)
        ).first()
        if waiting is None:
            first = select(func.min(TASKS.c.stage)).where(TASKS.c.job_id == dependent)
            queues |= _mark_ready(session, dependent, first)
    return queues


def _mark_ready(session: Session, job_id: int, stage: Any) -> set[str]:
    return set(
        session.connection()
        .execute(
            update(TASKS)
            .where(
                TASKS.c.job_id == job_id, TASKS.c.stage == stage.scalar_subquery(), ~TASKS.c.ready
            )
            .values(ready=True)
            .returning(TASKS.c.queue)
        )
        .scalars()
    )


def lock_task(session: Session, task_id: int) -> Task | None:
    return session.execute(
        select(Task).where(Task.id == task_id).with_for_update()
    ).scalar_one_or_none()
