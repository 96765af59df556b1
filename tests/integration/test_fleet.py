"""The fleet as operators see it: the worker registry (`farm workers`), a lost worker shown
lost, draining a worker by name, and the per-job blocklist of a worker that keeps failing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from farm.metrics import render
from farm.models import Artifact, Event, Task
from farm.registry import list_workers
from farm.runtime import child_env
from tests.integration.harness import Farm, make_settings
from workers.encode import count_frames, ffmpeg_binary

pytestmark = [pytest.mark.faults, pytest.mark.one_pass]
CHUNKS = {"width": 256, "height": 256, "batch_size": 8}


@pytest.fixture(scope="module")
def fleet(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    """A farm whose tests start the workers they need (the sweeper runs throughout)."""
    root = tmp_path_factory.mktemp("fleet")
    # A worker started by a test takes its first message before its pool process has imported
    # torch, which on a loaded box outlasts the harness's 3-s wait for a claim: that message
    # would be taken for lost and sent twice. No test here loses a message on purpose.
    settings = make_settings(database_url, broker_url, root, block_after=2, unclaimed_s=30.0)
    f = Farm(settings, root)
    f.start_sweeper()
    try:
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def checkpoint(fleet: Farm) -> str:
    w = fleet.start_worker(name="trainer@fleet")
    job = fleet.submit({"kind": "train", "name": "fleet-vae", "epochs": 2, "latent_dim": 4})
    assert fleet.wait(job, timeout_s=240)["state"] == "succeeded", fleet.logs()
    fleet.stop(w)
    return "job:fleet-vae"


def farm_cli(farm: Farm, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "farm", *args],
        env={**child_env(farm.settings), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def worker(farm: Farm, name: str) -> dict[str, Any] | None:
    rows = list_workers(farm.settings, include_stopped=True)
    return next((w for w in rows if w["name"] == name), None)


def state_of(farm: Farm, name: str) -> str | None:
    w = worker(farm, name)
    return w["state"] if w else None


def assert_complete(farm: Farm, job: int, frames: int) -> None:
    """The job's video decodes to exactly its frames and no task succeeded twice."""
    with farm.session() as s:
        path = s.execute(
            select(Artifact.path).where(Artifact.job_id == job, Artifact.kind == "video")
        ).scalar_one()
        successes = s.execute(
            select(func.count())
            .select_from(Event)
            .join(Task, Task.id == Event.task_id)
            .where(Task.job_id == job, Event.to_state == "succeeded")
            .group_by(Task.id)
        ).scalars()
        assert set(successes) == {1}
    assert count_frames(Path(path), ffmpeg=ffmpeg_binary())[0] == frames


def claims_by(farm: Farm, job: int) -> dict[str, int]:
    with farm.session() as s:
        rows = s.execute(
            select(Event.worker, func.count())
            .join(Task, Task.id == Event.task_id)
            .where(Task.job_id == job, Event.to_state == "running")
            .group_by(Event.worker)
        ).all()
    return {w: n for w, n in rows}


def test_workers_register_show_their_task_and_stop(fleet: Farm, checkpoint: str) -> None:
    proc = fleet.start_worker(name="reg@fleet")
    fleet.wait_until(lambda: state_of(fleet, "reg@fleet") == "idle", 60, "registration")
    job = fleet.submit(
        {"kind": "render", "name": "reg", "checkpoint": checkpoint, "frames": "1-400",
         "chunk_size": 400, **CHUNKS}
    )  # fmt: skip
    busy = fleet.wait_until(
        lambda: (w := worker(fleet, "reg@fleet")) and w["state"] == "busy" and w, 60, "busy"
    )
    with fleet.session() as s:
        running = s.execute(
            select(Task.id).where(Task.job_id == job, Task.state == "running")
        ).scalar_one()
    assert busy["task_id"] == running and busy["job_id"] == job
    assert busy["frames"] == "1-400"
    assert busy["queues"] == "gpu,cpu" and busy["pid"] == proc.pid
    assert busy["versions"]["farm"] and busy["versions"]["python"]
    assert busy["last_seen_s"] < 3
    assert fleet.wait(job)["state"] == "succeeded", fleet.logs()

    shown = farm_cli(fleet, "workers", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {w["name"]: w for w in json.loads(shown.stdout)}
    assert rows["reg@fleet"]["state"] == "idle"
    assert rows["reg@fleet"]["tasks_succeeded"] == 2  # the chunk and the assembly
    assert "trainer@fleet" not in rows  # stopped workers are listed only with --all
    table = farm_cli(fleet, "workers", "--all")
    assert "reg@fleet" in table.stdout and "trainer@fleet" in table.stdout

    body = render(fleet.settings, fleet.celery)[0].decode()
    assert 'farm_workers{pool="default",state="idle"} 1.0' in body, body

    fleet.stop(proc)
    assert state_of(fleet, "reg@fleet") == "stopped"


def test_workers_started_at_once_under_one_name_all_come_up(fleet: Farm) -> None:
    # They race for the name: the losers take the next suffixes instead of dying at start.
    procs = [fleet.start_worker(name="twin@fleet") for _ in range(3)]
    names = {"twin@fleet", "twin-2@fleet", "twin-3@fleet"}
    fleet.wait_until(
        lambda: all(state_of(fleet, n) == "idle" for n in names), 120, "three registered"
    )
    assert all(p.poll() is None for p in procs)
    assert {worker(fleet, n)["pid"] for n in names} == {p.pid for p in procs}  # type: ignore[index]
    for p in procs:
        fleet.stop(p)


def test_killed_worker_is_shown_lost_and_its_task_recovered(fleet: Farm, checkpoint: str) -> None:
    doomed = fleet.start_worker(name="doomed@fleet")
    job = fleet.submit(
        {"kind": "render", "name": "lost", "checkpoint": checkpoint, "frames": "1-600",
         "chunk_size": 600, **CHUNKS}
    )  # fmt: skip
    fleet.wait_until(lambda: state_of(fleet, "doomed@fleet") == "busy", 60, "busy")
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    # Silent for longer than a lease: lost, with the task it held.
    lost = fleet.wait_until(
        lambda: (w := worker(fleet, "doomed@fleet")) and w["state"] == "lost" and w, 30, "lost"
    )
    assert lost["job_id"] == job
    rescuer = fleet.start_worker(name="rescuer@fleet")
    assert fleet.wait(job)["state"] == "succeeded", fleet.logs()
    assert_complete(fleet, job, 600)
    assert claims_by(fleet, job).get("rescuer@fleet", 0) >= 1
    fleet.stop(rescuer)
    # A worker started again under the name of a dead one takes its row over.
    again = fleet.start_worker(name="doomed@fleet")
    fleet.wait_until(lambda: state_of(fleet, "doomed@fleet") == "idle", 60, "restart")
    assert worker(fleet, "doomed@fleet")["pid"] == again.pid  # type: ignore[index]
    fleet.stop(again)


def test_drained_worker_finishes_its_task_and_takes_no_more(fleet: Farm, checkpoint: str) -> None:
    a = fleet.start_worker(name="a@fleet")
    fleet.wait_until(lambda: state_of(fleet, "a@fleet") == "idle", 60, "a ready")
    job = fleet.submit(
        {"kind": "render", "name": "drained", "checkpoint": checkpoint, "frames": "1-1200",
         "chunk_size": 150, "width": 512, "height": 512, "batch_size": 8}
    )  # fmt: skip
    fleet.wait_until(lambda: state_of(fleet, "a@fleet") == "busy", 60, "a busy")
    out = farm_cli(fleet, "worker", "--drain", "a@fleet")
    assert out.returncode == 0 and "draining" in out.stdout, out.stderr
    fleet.wait_until(lambda: state_of(fleet, "a@fleet") == "drained", 60, "a drained")
    taken = claims_by(fleet, job).get("a@fleet", 0)
    b = fleet.start_worker(name="b@fleet")
    assert fleet.wait(job)["state"] == "succeeded", fleet.logs()
    assert_complete(fleet, job, 1200)
    claims = claims_by(fleet, job)
    # The chunk it held when asked (and at most the one already on its way, which its claim
    # refuses) and nothing after.
    assert claims.get("a@fleet", 0) == taken, claims
    assert taken <= 3 and claims["b@fleet"] == 9 - taken, claims  # 8 chunks + the assembly
    assert a.poll() is None and state_of(fleet, "a@fleet") == "drained"

    missing = farm_cli(fleet, "worker", "--drain", "nobody@fleet")
    assert missing.returncode != 0 and "no worker named 'nobody@fleet'" in missing.stderr

    back = farm_cli(fleet, "worker", "--undrain", "a@fleet")
    assert back.returncode == 0, back.stderr
    fleet.stop(b)
    again = fleet.submit(
        {"kind": "render", "name": "undrained", "checkpoint": checkpoint, "frames": "1-40",
         "chunk_size": 40, **CHUNKS}
    )  # fmt: skip
    assert fleet.wait(again)["state"] == "succeeded", fleet.logs()
    assert claims_by(fleet, again) == {"a@fleet": 2}
    fleet.stop(a)


def one_frame_chunks(
    farm: Farm, checkpoint: str, name: str, frames: int, options: list[str] | None = None
) -> tuple[int, list[int], str]:
    """A worker of its own (``options`` on its command line) renders a job of one-frame 32x32
    chunks, far shorter than FARM_CHAIN_S, and stops; returns the job, the pool process that
    claimed each task, and the worker's log."""
    log = farm.log_dir / f"worker-{len(farm.procs)}.log"
    w = farm.start_worker(name=f"{name}@fleet", options=options or [])
    job = farm.submit(
        {"kind": "render", "name": name, "checkpoint": checkpoint, "frames": f"1-{frames}",
         "chunk_size": 1, "width": 32, "height": 32}
    )  # fmt: skip
    assert farm.wait(job)["state"] == "succeeded", farm.logs()
    farm.stop(w)
    assert_complete(farm, job, frames)
    with farm.session() as s:
        pids = list(s.execute(select(Task.worker_pid).where(Task.job_id == job)).scalars())
    assert len(pids) == frames + 1 and None not in pids  # the chunks and the assembly
    return job, pids, log.read_text(errors="replace")


def test_short_chunks_run_chained_without_a_message_each(fleet: Farm, checkpoint: str) -> None:
    """Each success claims the job's next chunk in its own transaction and the worker renders
    it without a broker message; the video is whole and every chunk was handed out and
    claimed exactly once."""
    job, pids, log = one_frame_chunks(fleet, checkpoint, "chained", 24)
    with fleet.session() as s:
        handed = s.execute(
            select(Task.sends, Task.attempts, func.count())
            .where(Task.job_id == job)
            .group_by(Task.sends, Task.attempts)
        ).all()
    assert [tuple(h) for h in handed] == [(1, 1, 25)]
    assert len(set(pids)) == 1, pids  # one pool process throughout: nothing recycled it
    # This job's deliveries only: a worker started first also takes the module's training.
    deliveries = len(re.findall(r"Task \w+ chained \S+ ?\[[0-9a-f-]{36}\] received", log))
    chained = sum(int(n) for n in re.findall(r"then (\d+) chained", log))
    assert chained > 0 and deliveries + chained == 25, (deliveries, chained, log[-3000:])


def test_pool_processes_recycle_after_n_tasks_or_a_memory_ceiling_and_lose_none(
    fleet: Farm, checkpoint: str
) -> None:
    """--max-tasks-per-child 2: no pool process runs more than two tasks (such a worker does
    not chain); --max-memory-mb below any process's size: a new one after every delivery.
    Either way each task runs once, to success, and the video is whole."""
    _, by_count, _ = one_frame_chunks(
        fleet, checkpoint, "recycle-n", 6, ["--max-tasks-per-child", "2"]
    )
    per_process = Counter(by_count)
    assert max(per_process.values()) <= 2 and len(per_process) >= 4, per_process
    _, by_memory, _ = one_frame_chunks(
        fleet, checkpoint, "recycle-mem", 6, ["--max-memory-mb", "1"]
    )
    assert len(set(by_memory)) >= 2, by_memory


def test_worker_failing_a_job_is_blocked_and_the_job_goes_on_elsewhere(
    fleet: Farm, checkpoint: str
) -> None:
    # A box with a broken encoder: every chunk it renders fails when the frames go to ffmpeg.
    bad = fleet.start_worker(name="bad@fleet", env_overrides={"FARM_FFMPEG": "/bin/false"})
    job = fleet.submit(
        {"kind": "render", "name": "blocked", "checkpoint": checkpoint, "frames": "1-240",
         "chunk_size": 40, **CHUNKS}
    )  # fmt: skip

    def blocked() -> bool:
        return any(f["blocked"] for f in fleet.detail(job)["worker_failures"])

    fleet.wait_until(blocked, 120, "bad worker blocked")
    good = fleet.start_worker(name="good@fleet")
    assert fleet.wait(job)["state"] == "succeeded", fleet.logs()
    assert_complete(fleet, job, 240)
    detail = fleet.detail(job)
    assert detail["worker_failures"] == [
        {"worker": "bad@fleet", "failures": 2, "blocked": True,
         "blocked_at": detail["worker_failures"][0]["blocked_at"],
         "last_error": detail["worker_failures"][0]["last_error"]}
    ]  # fmt: skip
    assert "ffmpeg" in (detail["worker_failures"][0]["last_error"] or "").lower()
    # Two failed attempts, then none of the job's tasks: the rest went to the good worker.
    claims = claims_by(fleet, job)
    assert claims["bad@fleet"] == 2, claims
    assert claims["good@fleet"] == 7  # 6 chunks (2 of them second attempts) + the assembly
    assert all(t["state"] == "succeeded" for t in detail["task_list"])
    shown = farm_cli(fleet, "status", str(job))
    assert "bad@fleet: 2 failed attempts, blocked from this job" in shown.stdout, shown.stdout
    # Blocked from that job only: the bad box still renders... nothing else here, but it is
    # neither lost nor drained.
    assert state_of(fleet, "bad@fleet") == "idle"
    fleet.stop(bad)
    fleet.stop(good)
