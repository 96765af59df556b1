"""Task logs: captured by the worker as the task runs, stored in the database, read and
followed by ``farm logs`` and ``GET /tasks/{id}/logs``, across a worker's SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from farm.client import FarmAPIError, FarmClient
from farm.models import Task, TaskLog
from farm.runtime import child_env
from farm.tasklogs import END, follow, read
from farm.tokens import create
from tests.integration.harness import Farm, make_settings
from tests.integration.test_api import spawn_api

pytestmark = [pytest.mark.faults, pytest.mark.one_pass]


@pytest.fixture(scope="module")
def bare(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("tasklogs")
    f = Farm(make_settings(database_url, broker_url, root), root)
    f.start_worker()
    f.start_sweeper()
    try:
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def checkpoint(bare: Farm) -> str:
    job = bare.submit({"kind": "train", "name": "logs-vae", "epochs": 1, "latent_dim": 4})
    assert bare.wait(job, timeout_s=240)["state"] == "succeeded", bare.logs()
    return "job:logs-vae"


def _task_ids(bare: Farm, job: int) -> list[int]:
    with bare.session() as s:
        return list(
            s.execute(select(Task.id).where(Task.job_id == job).order_by(Task.id)).scalars()
        )


def test_finished_task_log_has_start_progress_and_outcome(bare: Farm, checkpoint: str) -> None:
    job = bare.submit(
        {"kind": "render", "name": "logged", "checkpoint": checkpoint, "frames": "1-8",
         "chunk_size": 8, "width": 64, "height": 64}
    )  # fmt: skip
    assert bare.wait(job)["state"] == "succeeded", bare.logs()
    chunk_id = _task_ids(bare, job)[0]
    got = read(bare.settings, chunk_id)
    texts = [x.text for x in got.lines]
    assert got.attempt == 1 and got.attempt_over and got.closed
    assert any(f"task {chunk_id} (job {job} render_chunk) attempt 1: start" in t for t in texts)
    assert texts[-1].endswith(f"task {chunk_id} attempt 1: succeeded")
    # Following an ended task gives the same lines, then its end, at once.
    followed = list(follow(bare.settings, chunk_id, poll_s=0.05))
    assert [x.text for _, x in followed[:-1]] == texts
    assert followed[-1][1].level == END and followed[-1][1].text == "task succeeded"


def test_farm_logs_follow_continues_across_a_worker_sigkill(bare: Farm, checkpoint: str) -> None:
    job = bare.submit(
        {"kind": "render", "name": "killed-logs", "checkpoint": checkpoint, "frames": "1-2400",
         "chunk_size": 2400, "width": 512, "height": 512, "batch_size": 8}
    )  # fmt: skip
    chunk_id = _task_ids(bare, job)[0]

    def progressing() -> int | None:
        with bare.session() as s:
            row = s.execute(
                select(Task.worker_pid, Task.progress).where(
                    Task.id == chunk_id, Task.state == "running", Task.attempts == 1
                )
            ).first()
        if row and row.worker_pid and row.progress and row.progress.get("frames", 0) > 0:
            return int(row.worker_pid)
        return None

    pid = bare.wait_until(progressing, timeout_s=120, what="the chunk mid-render")
    out = bare.log_dir / "farm-logs-follow.out"
    with out.open("wb") as f:
        follower = subprocess.Popen(
            [sys.executable, "-m", "farm", "logs", str(job), "--task", str(chunk_id), "--follow"],
            env=child_env(bare.settings), stdout=f, stderr=subprocess.STDOUT,
        )  # fmt: skip
    bare.wait_until(
        lambda: any(x.level == "progress" for x in read(bare.settings, chunk_id, 1).lines),
        timeout_s=30, what="a flushed progress line",
    )  # fmt: skip
    time.sleep(1.5)
    # Long enough (2,400 frames at 512x512) that it is still rendering here; say so if not.
    assert progressing() == pid, "the chunk finished before the kill: make it longer"
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)  # the pool child dies mid-chunk: no last flush
    assert bare.wait(job, timeout_s=300)["state"] == "succeeded", bare.logs()
    assert follower.wait(timeout=30) == 0, out.read_text()
    text = out.read_text()
    first, _, rest = text.partition(f"=== task {chunk_id} attempt 2 ===")
    assert f"=== task {chunk_id} attempt 1 ===" in first, text
    assert " progress " in first  # the stage's own lines, up to the kill
    assert "attempt 2: start" in rest and rest.rstrip().endswith(
        f"=== task {chunk_id}: succeeded ==="
    ), text
    with bare.session() as s:
        logs = {
            r.attempt: r
            for r in s.execute(select(TaskLog).where(TaskLog.task_id == chunk_id)).scalars()
        }
        assert sorted(logs) == [1, 2]
        assert not logs[1].done and logs[2].done
        # Flushed every second: the killed attempt's log reaches its last second.
        last_at = max(line[1] for line in logs[1].lines)
        assert killed_at - last_at < 2.5, (killed_at, last_at)


def test_api_log_route_and_cli_through_it_give_the_stored_lines(
    bare: Farm, checkpoint: str
) -> None:
    job = bare.submit(
        {"kind": "render", "name": "api-logged", "checkpoint": checkpoint, "frames": "1-4",
         "chunk_size": 4, "width": 64, "height": 64}
    )  # fmt: skip
    assert bare.wait(job)["state"] == "succeeded", bare.logs()
    chunk_id = _task_ids(bare, job)[0]
    stored = [x.text for x in read(bare.settings, chunk_id).lines]
    url, proc = spawn_api(bare.settings, bare.log_dir / "api.log")
    try:
        with FarmClient(url, create(bare.settings, "logs-reader", read_only=True)) as c:
            lines = list(c.task_logs(chunk_id))
            assert [x["text"] for x in lines] == stored
            assert {x["attempt"] for x in lines} == {1} and lines[0]["seq"] == 0
            assert [x["text"] for x in c.task_logs(chunk_id, after=lines[-2]["seq"])] == [
                stored[-1]
            ]
            followed = list(c.task_logs(chunk_id, follow=True))
            assert followed[-1]["level"] == END and followed[:-1] == lines
            with pytest.raises(FarmAPIError) as e:
                list(c.task_logs(2**40))
            assert e.value.status == 404
            with pytest.raises(FarmAPIError) as e:
                list(c.task_logs(chunk_id, attempt=5))
            assert e.value.status == 404
        token = create(bare.settings, "logs-cli", read_only=True)
        env = {**child_env(bare.settings), "FARM_API_URL": url, "FARM_API_TOKEN": token}
        res = subprocess.run(
            [sys.executable, "-m", "farm", "logs", str(job), "--follow"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"=== task {chunk_id} attempt 1 ===" in res.stdout
        assert res.stdout.count(": succeeded ===") == 2  # the chunk, then the assembly
    finally:
        proc.terminate()
        proc.wait(10)
