"""Lost workers and lost messages, recovered from what the database says."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Consumer, Queue
from kombu.message import Message
from sqlalchemy import func, select

from farm.models import Artifact, Event, Task
from farm.states import TaskKind
from tests.integration.harness import Farm, make_settings
from workers.encode import count_frames, ffmpeg_binary

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def bare(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    """A farm with no processes: each test starts what it needs."""
    root = tmp_path_factory.mktemp("faults")
    f = Farm(make_settings(database_url, broker_url, root), root)
    try:
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def checkpoint(bare: Farm) -> str:
    w = bare.start_worker()
    job = bare.submit({"kind": "train", "name": "fault-vae", "epochs": 2, "latent_dim": 4})
    assert bare.wait(job, timeout_s=240)["state"] == "succeeded", bare.logs()
    bare.stop(w)
    return "job:fault-vae"


def _video_frames(farm: Farm, job_id: int) -> int:
    with farm.session() as s:
        path = s.execute(
            select(Artifact.path).where(Artifact.job_id == job_id, Artifact.kind == "video")
        ).scalar_one()
    return count_frames(Path(path), ffmpeg=ffmpeg_binary())[0]


def _successes_per_task(farm: Farm, job_id: int) -> list[int]:
    with farm.session() as s:
        rows = s.execute(
            select(func.count())
            .select_from(Event)
            .join(Task, Task.id == Event.task_id)
            .where(Task.job_id == job_id, Event.to_state == "succeeded")
            .group_by(Task.id)
        ).scalars()
        return list(rows)


def test_chunk_redelivered_after_worker_sigkill_renders_each_frame_once(
    bare: Farm, checkpoint: str
) -> None:
    worker = bare.start_worker()
    sweeper = bare.start_sweeper()
    job = bare.submit(
        {
            "kind": "render", "name": "killed", "checkpoint": checkpoint, "frames": "1-1200",
            "chunk_size": 400, "width": 512, "height": 512, "batch_size": 8,
        }
    )  # fmt: skip

    def busy_chunk() -> tuple[int, int] | None:
        with bare.session() as s:
            row = s.execute(
                select(Task.id, Task.worker_pid, Task.progress).where(
                    Task.job_id == job, Task.state == "running", Task.kind == "render_chunk"
                )
            ).first()
        if row and row.worker_pid and row.progress and row.progress.get("frames", 0) > 0:
            return row.id, row.worker_pid
        return None

    task_id, pid = bare.wait_until(busy_chunk, timeout_s=120, what="a chunk mid-render")
    os.kill(pid, signal.SIGKILL)  # the pool child dies mid-chunk; its lease must expire
    row = bare.wait(job, timeout_s=300)
    assert row["state"] == "succeeded", bare.logs()
    assert _video_frames(bare, job) == 1200
    assert _successes_per_task(bare, job) == [1, 1, 1, 1]
    with bare.session() as s:
        t = s.get(Task, task_id)
        assert t is not None and t.attempts == 2
        reasons = (
            s.execute(
                select(Event.message).where(Event.task_id == task_id, Event.to_state == "queued")
            )
            .scalars()
            .all()
        )
    assert any("lease expired" in (m or "") for m in reasons)
    bare.stop(worker)
    bare.stop(sweeper)


def test_whole_worker_sigkill_then_new_worker_finishes_the_job(bare: Farm, checkpoint: str) -> None:
    worker = bare.start_worker()
    sweeper = bare.start_sweeper()
    job = bare.submit(
        {
            "kind": "render", "name": "host-lost", "checkpoint": checkpoint, "frames": "1-600",
            "chunk_size": 200, "width": 512, "height": 512, "batch_size": 8,
        }
    )  # fmt: skip
    bare.wait_until(lambda: bare.detail(job)["tasks"].get("running"), what="a running chunk")
    bare.stop(worker, signal.SIGKILL)  # the whole process group: a box losing power
    bare.start_worker()
    row = bare.wait(job, timeout_s=300)
    assert row["state"] == "succeeded", bare.logs()
    assert _video_frames(bare, job) == 600
    assert _successes_per_task(bare, job) == [1, 1, 1, 1]
    bare.stop(sweeper)


def test_flushed_broker_queue_is_recovered_by_the_sweeper(bare: Farm, checkpoint: str) -> None:
    for p in bare.procs:
        bare.stop(p)
    job = bare.submit(
        {"kind": "render", "name": "lost-msg", "checkpoint": checkpoint, "frames": "1-90",
         "chunk_size": 30, "width": 64, "height": 64}
    )  # fmt: skip
    # With no worker busy, the window holds dispatch_ahead messages; the rest wait unsent.
    ahead = bare.settings.dispatch_ahead
    assert bare.redis.llen("gpu") == ahead
    bare.redis.flushdb()  # every message is gone; the database still says queued
    bare.start_worker()
    bare.start_sweeper()
    row = bare.wait(job, timeout_s=120)
    assert row["state"] == "succeeded", bare.logs()
    assert _video_frames(bare, job) == 90
    assert _lost_events(bare, job) == ahead


def _lost_events(farm: Farm, job_id: int) -> int:
    with farm.session() as s:
        return s.execute(
            select(func.count()).where(Event.job_id == job_id, Event.message.like("message lost%"))
        ).scalar_one()


@pytest.mark.one_pass
def test_a_message_a_worker_holds_unclaimed_is_trusted_for_a_lease(
    bare: Farm, checkpoint: str
) -> None:
    """A worker that took a message and is slow to claim it (a pool process starting) holds
    it unacknowledged, out of the queue: not lost while a lease lasts, re-sent after."""
    for p in bare.procs:
        bare.stop(p)
    bare.redis.delete("gpu")  # duplicates earlier tests left
    spec = {"kind": "render", "checkpoint": checkpoint, "frames": "1-8", "width": 64, "height": 64}
    held_job = bare.submit({**spec, "name": "held"})
    lost_job = bare.submit({**spec, "name": "lost"})
    with bare.celery.connection_for_read() as conn:
        taken: list[Message] = []
        consumer = Consumer(
            conn.default_channel, [Queue("gpu", no_declare=True)], accept=["json"],
            on_message=taken.append, prefetch_count=1,
        )  # fmt: skip
        consumer.consume()
        conn.drain_events(timeout=10)
        assert len(taken) == 1 and taken[0].payload[0][0] == _task_of(bare, held_job)
        bare.redis.delete("gpu")  # the other job's message is lost
        sweeper = bare.start_sweeper({"FARM_LEASE_S": "15"})
        bare.wait_until(lambda: _lost_events(bare, lost_job), 60, "the lost message re-sent")
        assert _lost_events(bare, held_job) == 0  # held, so not lost
        bare.wait_until(lambda: _lost_events(bare, held_job), 60, "the held message re-sent")
        bare.start_worker()
        for job in (held_job, lost_job):
            assert bare.wait(job, timeout_s=120)["state"] == "succeeded", bare.logs()
    assert _video_frames(bare, held_job) == 8
    assert _successes_per_task(bare, held_job) == [1, 1]  # the chunk and the assembly
    bare.stop(sweeper)


def _task_of(farm: Farm, job_id: int) -> int:
    """The job's one chunk."""
    with farm.session() as s:
        return s.execute(
            select(Task.id).where(Task.job_id == job_id, Task.kind == TaskKind.RENDER_CHUNK)
        ).scalar_one()
