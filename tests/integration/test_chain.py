"""Chaining: a worker's success claims its job's next task in the same transaction, and runs
it without a broker message, unless something says it must not.

These drive the workers' claim and completion (``workers.runner``) against the real
PostgreSQL, without worker processes: what is under test is which task the completion's
transaction takes, and when it takes none. ``test_fleet`` runs a real worker through a chain.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update

from farm.config import Settings
from farm.db import session_scope
from farm.models import Event, Job, Task, Worker, WorkerFailure
from farm.states import JobState, TaskKind, TaskState
from tests.integration.harness import make_settings
from workers import claims
from workers.context import Result, TaskContext

WORKER = "chainer@test"


@pytest.fixture(scope="module")
def settings(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    s = make_settings(database_url, broker_url, tmp_path_factory.mktemp("chain"))
    with session_scope(s) as session:
        session.execute(
            insert(Worker).values(name=WORKER, host="test", queues="gpu", pid=os.getpid(),
                                  versions={}, state="idle")
        )  # fmt: skip
    yield s


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> str:
    """A queue of the test's own, so that no other test's window or tasks are in it."""
    return f"gpu.{request.node.name[-40:]}"


def add_job(
    settings: Settings, queue: str, n: int, *, priority: int = 50, sent: bool = False
) -> list[int]:
    """A job of n ready render chunks in ``queue``, as submission records them; its tasks'
    ids in order. ``sent``: its tasks are waiting in the broker."""
    with session_scope(settings) as s:
        job = s.execute(
            insert(Job)
            .values(name=f"chain-{queue}-{priority}", kind="render", state=JobState.QUEUED,
                    spec={"kind": "render"}, priority=priority, tasks_queued=n)
            .returning(Job.id)
        ).scalar_one()  # fmt: skip
        return list(
            s.execute(
                insert(Task).returning(Task.id),
                [
                    {"job_id": job, "kind": TaskKind.RENDER_CHUNK, "queue": queue, "index": i,
                     "stage": 0, "frames": str(i + 1), "position": i, "frame_count": 1,
                     "state": TaskState.QUEUED, "attempts": 0, "max_attempts": 3,
                     "sends": int(sent), "sent_at": datetime.now(UTC) if sent else None,
                     "ready": True, "priority": priority, "stage_end": n}
                    for i in range(n)
                ],
            ).scalars()
        )  # fmt: skip


def first(settings: Settings, task_id: int) -> TaskContext:
    """Claim ``task_id`` as its delivery would (its claim sends the queue's window)."""
    with session_scope(settings) as s:
        s.execute(update(Task).where(Task.id == task_id).values(sent_at=func.now(), sends=1))
    ctx = claims.claim(settings, task_id, WORKER)
    assert ctx is not None
    return ctx


def unsent(settings: Settings, ids: list[int]) -> list[int]:
    with session_scope(settings) as s:
        return list(
            s.execute(
                select(Task.id)
                .where(Task.id.in_(ids), Task.state == TaskState.QUEUED, Task.sent_at.is_(None))
                .order_by(Task.id)
            ).scalars()
        )


def task(settings: Settings, task_id: int) -> dict[str, Any]:
    with session_scope(settings) as s:
        row = s.execute(select(Task).where(Task.id == task_id)).scalar_one()
        return {c: getattr(row, c) for c in ("state", "attempts", "sends", "sent_at", "worker")}


def test_success_takes_the_jobs_next_unsent_task_in_its_transaction(
    settings: Settings, queue: str
) -> None:
    # An older job of the same priority comes first in send order; the chain stays with its
    # own job (whose row the completion holds) all the same.
    older = add_job(settings, queue, 3)
    ids = add_job(settings, queue, 8)
    ctx = first(settings, ids[0])
    expected = unsent(settings, ids)
    assert expected and expected[0] > ids[0]

    done = claims.complete(ctx, Result(), chain=True)
    assert done.recorded and done.next_task is not None
    nxt = done.next_task
    assert nxt.task_id == expected[0]
    assert (nxt.job_id, nxt.attempt, nxt.worker, nxt.queue) == (ctx.job_id, 1, WORKER, queue)
    with session_scope(settings) as s:
        row = s.execute(select(Task).where(Task.id == nxt.task_id)).scalar_one()
        assert (nxt.frames, nxt.position, nxt.index) == (row.frames, row.position, row.index)
        assert row.state is TaskState.RUNNING and row.worker == WORKER
        # Handed to a worker once: what the lost-message and duplicate checks count.
        assert row.sends == 1 and row.sent_at is not None and row.lease_expires_at is not None
        assert row.worker_pid == os.getpid()
        busy = s.execute(select(Worker.state, Worker.task_id).where(Worker.name == WORKER)).one()
        assert tuple(busy) == ("busy", nxt.task_id)
        moves = s.execute(
            select(Event.from_state, Event.to_state, Event.worker).where(
                Event.task_id == nxt.task_id
            )
        ).all()
        assert [tuple(m) for m in moves] == [("queued", "running", WORKER)]
        job = s.execute(select(Job).where(Job.id == ctx.job_id)).scalar_one()
        assert (job.tasks_succeeded, job.tasks_running, job.state) == (1, 1, JobState.RUNNING)

    # Run the chain out: every unsent task, each claimed once, and then nothing to take.
    chained, current = [nxt.task_id], nxt
    while (done := claims.complete(current, Result(), chain=True)).next_task is not None:
        current = done.next_task
        chained.append(current.task_id)
    assert done.recorded
    assert chained == expected
    for task_id in expected:
        assert task(settings, task_id)["state"] is TaskState.SUCCEEDED
        assert task(settings, task_id)["attempts"] == 1
    assert all(task(settings, t)["state"] is TaskState.QUEUED for t in older)
    with session_scope(settings) as s:
        idle = s.execute(select(Worker.state, Worker.task_id).where(Worker.name == WORKER)).one()
    assert tuple(idle) == ("idle", None)


def _pause(settings: Settings, ctx: TaskContext, queue: str) -> None:
    with session_scope(settings) as s:
        s.execute(update(Job).where(Job.id == ctx.job_id).values(paused=True))


def _drain(settings: Settings, ctx: TaskContext, queue: str) -> None:
    with session_scope(settings) as s:
        s.execute(update(Worker).where(Worker.name == WORKER).values(draining=True))


def _block(settings: Settings, ctx: TaskContext, queue: str) -> None:
    with session_scope(settings) as s:
        s.execute(
            insert(WorkerFailure).values(
                job_id=ctx.job_id, worker=WORKER, failures=2, blocked_at=func.now()
            )
        )


def _urgent_ready(settings: Settings, ctx: TaskContext, queue: str) -> None:
    add_job(settings, queue, 2, priority=90)


def _urgent_waiting(settings: Settings, ctx: TaskContext, queue: str) -> None:
    add_job(settings, queue, 1, priority=90, sent=True)


def _backing_off(settings: Settings, ctx: TaskContext, queue: str) -> None:
    with session_scope(settings) as s:
        s.execute(
            text(
                "UPDATE tasks SET not_before = now() + interval '1 hour'"
                " WHERE job_id = :job AND sent_at IS NULL"
            ),
            {"job": ctx.job_id},
        )


def _lowered(settings: Settings, ctx: TaskContext, queue: str) -> None:
    """An operator lowers the job's priority mid-chain: another job's work now outranks it."""
    with session_scope(settings) as s:
        s.execute(update(Task).where(Task.job_id == ctx.job_id).values(priority=10))
    add_job(settings, queue, 1)


def _other_kind(settings: Settings, ctx: TaskContext, queue: str) -> None:
    with session_scope(settings) as s:
        s.execute(
            update(Task)
            .where(Task.job_id == ctx.job_id, Task.sent_at.is_(None))
            .values(kind=TaskKind.SAMPLE_GRID)
        )


@pytest.mark.parametrize(
    "condition",
    [_pause, _drain, _block, _urgent_ready, _urgent_waiting, _lowered, _backing_off, _other_kind],
    ids=lambda f: f.__name__.strip("_"),
)
def test_chain_takes_nothing_when_it_must_not(
    settings: Settings, queue: str, condition: Callable[[Settings, TaskContext, str], None]
) -> None:
    """A paused job, a draining or blocked worker, higher-priority work waiting in the queue
    (sent or not), tasks backing off or of another kind: the success is recorded, nothing is
    claimed, and the delivery ends, so the broker decides what runs next."""
    ids = add_job(settings, queue, 8)
    ctx = first(settings, ids[0])
    left = unsent(settings, ids)
    assert left
    condition(settings, ctx, queue)
    try:
        done = claims.complete(ctx, Result(), chain=True)
        assert done.recorded and done.next_task is None
        assert task(settings, ids[0])["state"] is TaskState.SUCCEEDED
        for task_id in left:
            assert task(settings, task_id)["state"] is TaskState.QUEUED
            assert task(settings, task_id)["attempts"] == 0
    finally:
        with session_scope(settings) as s:
            s.execute(update(Worker).where(Worker.name == WORKER).values(draining=False))


def test_equal_priority_elsewhere_does_not_stop_the_chain(settings: Settings, queue: str) -> None:
    ids = add_job(settings, queue, 8)
    ctx = first(settings, ids[0])
    add_job(settings, queue, 2, sent=True)  # the same priority, 50
    add_job(settings, queue, 2, priority=40)
    done = claims.complete(ctx, Result(), chain=True)
    assert done.next_task is not None and done.next_task.job_id == ctx.job_id


def test_without_chain_the_success_takes_nothing(settings: Settings, queue: str) -> None:
    ids = add_job(settings, queue, 8)
    ctx = first(settings, ids[0])
    left = unsent(settings, ids)
    done = claims.complete(ctx, Result())
    assert done.recorded and done.next_task is None
    assert unsent(settings, ids) == left


def test_stale_completion_takes_nothing(settings: Settings, queue: str) -> None:
    """An attempt that is no longer ours records nothing and claims nothing."""
    ids = add_job(settings, queue, 8)
    ctx = first(settings, ids[0])
    left = unsent(settings, ids)
    stale = replace(ctx, attempt=ctx.attempt + 1)
    done = claims.complete(stale, Result(), chain=True)
    assert not done.recorded and done.next_task is None
    assert unsent(settings, ids) == left
    assert task(settings, ids[0])["state"] is TaskState.RUNNING


def add_render(settings: Settings, queue: str, chunks: int) -> tuple[list[int], int]:
    """A render job as submission records it: ``chunks`` ready chunks in ``queue``, then its
    assembly (stage 1, queue ``cpu``), not ready until the chunks are done."""
    ids = add_job(settings, queue, chunks)
    with session_scope(settings) as s:
        job_id = s.execute(select(Task.job_id).where(Task.id == ids[0])).scalar_one()
        s.execute(update(Job).where(Job.id == job_id).values(tasks_queued=chunks + 1))
        assembly = s.execute(
            insert(Task).returning(Task.id),
            [{"job_id": job_id, "kind": TaskKind.ASSEMBLE, "queue": "cpu", "index": 0,
              "stage": 1, "frames": f"1-{chunks}", "position": 0, "frame_count": chunks,
              "state": TaskState.QUEUED, "attempts": 0, "max_attempts": 3, "sends": 0,
              "ready": False, "priority": 50, "stage_end": chunks + 1}],
        ).scalar_one()  # fmt: skip
    return ids, assembly


@pytest.mark.parametrize("consumes_cpu", [True, False])
def test_the_last_chunks_success_claims_the_assembly_when_the_worker_consumes_its_queue(
    settings: Settings, queue: str, consumes_cpu: bool
) -> None:
    ids, assembly = add_render(settings, queue, 2)
    consumes = frozenset({queue, "cpu"} if consumes_cpu else {queue})
    early = claims.complete(replace(first(settings, ids[0]), consumes=consumes), Result())
    assert early.recorded and not early.opened  # a chunk is left: the stage is not done
    ctx = replace(first(settings, ids[1]), consumes=consumes)
    # The last chunk, past the chain's age (chain=False): the assembly it opens is taken all
    # the same, in the completion's transaction, by a worker that consumes its queue.
    last = claims.complete(ctx, Result(), chain=False, next_stage=True)
    assert last.recorded and "cpu" in last.opened
    if not consumes_cpu:
        assert last.next_task is None
        assert unsent(settings, [assembly]) == [assembly]  # left for the dispatcher to send
        return
    nxt = last.next_task
    assert nxt is not None
    assert "cpu" not in last.dispatch  # its only ready task is taken: no dispatch pass
    assert (nxt.task_id, nxt.kind, nxt.queue, nxt.frame_count) == (
        assembly,
        TaskKind.ASSEMBLE,
        "cpu",
        2,
    )
    row = task(settings, assembly)
    assert (row["state"], row["attempts"], row["sends"], row["worker"]) == (
        TaskState.RUNNING, 1, 1, WORKER
    )  # fmt: skip
    assert claims.complete(nxt, Result(), chain=True, next_stage=True).next_task is None
    with session_scope(settings) as s:
        job = s.execute(select(Job).where(Job.id == ctx.job_id)).scalar_one()
        assert job.state is JobState.SUCCEEDED


def test_a_chained_assembly_leaves_its_queue_to_the_dispatcher_while_more_is_ready_there(
    settings: Settings, queue: str
) -> None:
    ids, assembly = add_render(settings, queue, 1)
    later = add_job(settings, "cpu", 1, priority=10)  # ready, and outranked by the assembly
    try:
        ctx = replace(first(settings, ids[0]), consumes=frozenset({queue, "cpu"}))
        done = claims.complete(ctx, Result(), chain=True, next_stage=True)
        assert done.next_task is not None and done.next_task.task_id == assembly
        assert "cpu" in done.dispatch
    finally:
        with session_scope(settings) as s:
            s.execute(update(Task).where(Task.id.in_(later)).values(state=TaskState.CANCELED))


def test_the_assembly_is_not_claimed_past_a_higher_priority_task_waiting_in_its_queue(
    settings: Settings, queue: str
) -> None:
    ids, assembly = add_render(settings, queue, 1)
    urgent = add_job(settings, "cpu", 1, priority=90)
    try:
        ctx = replace(first(settings, ids[0]), consumes=frozenset({queue, "cpu"}))
        done = claims.complete(ctx, Result(), chain=True, next_stage=True)
        assert done.recorded and done.next_task is None
        assert unsent(settings, [assembly]) == [assembly]
    finally:
        with session_scope(settings) as s:
            s.execute(update(Task).where(Task.id.in_(urgent)).values(state=TaskState.CANCELED))
