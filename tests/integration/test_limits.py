"""Limits with real workers: a limit of 1 over three workers never has two tasks holding it
(running or sent, sampled from the database every 0.05 s) while unlimited work runs beside
it, and a worker killed while holding the limit frees it once its lease has lapsed and the
sweeper has requeued its task; unknown limits are refused at submission naming the field.

Three worker processes whose stages sleep ``STAGE_S`` (``tests/integration/share_worker.py``).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from farm.errors import SpecError
from farm.limits import set_limit
from farm.models import Job, Task
from farm.specs import parse_spec
from farm.submit import submit
from tests.integration.harness import Farm, make_settings

STAGE_S = 0.5
WORKERS = 3
LEASE_S = 3.0


@pytest.fixture(scope="module")
def farm(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("limits")
    settings = make_settings(
        database_url, broker_url, root, lease_s=LEASE_S, heartbeat_s=1.0, sweep_interval_s=0.5
    )
    f = Farm(settings, root)
    f.submit({"kind": "train", "name": "lim-model", "epochs": 1})
    env = {"FARM_TEST_STAGE_S": str(STAGE_S)}
    for i in range(WORKERS):
        f.start_worker(
            "gpu", name=f"lim{i}@test", module="tests.integration.share_worker",
            env_overrides=env,
        )  # fmt: skip
    f.start_worker("cpu", name="limcpu@test", module="tests.integration.noop_worker")
    f.start_sweeper()
    try:
        f.wait_until(lambda: _left(f, "lim-model") == 0, 120, "the model trained")
        yield f
    finally:
        f.close()


def _left(farm: Farm, job_name: str) -> int:
    with farm.session() as s:
        n = s.execute(
            select(func.count())
            .select_from(Task)
            .join(Job, Job.id == Task.job_id)
            .where(Job.name == job_name, Task.state != "succeeded")
        ).scalar_one()
    return int(n)


def _shot(name: str, chunks: int, **kw: object) -> dict[str, object]:
    return {"kind": "render", "name": name, "checkpoint": "job:lim-model", "frames": f"1-{chunks}",
            "chunk_size": 1, "width": 64, "height": 64, **kw}  # fmt: skip


_HOLDERS = text(
    "SELECT count(*) FILTER (WHERE state = 'running'), count(*) FROM tasks"
    " WHERE :name = ANY(limits) AND (state = 'running' OR (state = 'queued'"
    " AND sent_at IS NOT NULL))"
)


def _holders(farm: Farm, name: str) -> tuple[int, int]:
    """Tasks holding the limit: (running, running or sent)."""
    with farm.session() as s:
        running, held = s.execute(_HOLDERS, {"name": name}).one()
    return int(running), int(held)


def _name(proc: subprocess.Popen[bytes]) -> str:
    """The ``--name`` a worker process was started with, or ""."""
    args = [str(a) for a in proc.args] if isinstance(proc.args, list) else []
    return args[args.index("--name") + 1] if "--name" in args else ""


def test_unknown_limit_is_refused_naming_the_field(farm: Farm) -> None:
    with farm.session() as s:
        set_limit(s, "known-lic", 2)
    with pytest.raises(SpecError) as e:
        submit(farm.settings, None, parse_spec(_shot("lim-bad", 2, limits=["known-lic", "nope"])))
    assert [f for f, _ in e.value.problems] == ["limits.1"]
    assert "farm limit set nope" in e.value.problems[0][1]
    with farm.session() as s:
        assert s.execute(select(Job).where(Job.name == "lim-bad")).first() is None


def test_a_limit_of_one_over_three_workers_never_has_two_holders(farm: Farm) -> None:
    with farm.session() as s:
        set_limit(s, "licence", 1)
    farm.submit(_shot("lim-one", 10, limits=["licence"]))
    farm.submit(_shot("lim-free", 20))  # unlimited work beside it keeps the workers busy
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + 120
    while _left(farm, "lim-one") and time.monotonic() < deadline:
        samples.append(_holders(farm, "licence"))
        time.sleep(0.05)
    assert _left(farm, "lim-one") == 0, farm.logs()
    running = [r for r, _ in samples]
    held = [h for _, h in samples]
    print(f"limit 1: {len(samples)} samples, max running {max(running)}, max held {max(held)},"
          f" running 1 in {running.count(1)}")  # fmt: skip
    assert max(held) <= 1 and max(running) <= 1, samples
    assert running.count(1) >= 10  # it did run, one at a time
    farm.wait_until(lambda: _left(farm, "lim-free") == 0, 120, "the free shot done")


def test_a_killed_workers_limit_is_freed_after_its_lease(farm: Farm) -> None:
    with farm.session() as s:
        set_limit(s, "dongle", 1)
    farm.submit(_shot("lim-kill", 6, limits=["dongle"]))

    def holder() -> tuple[int, str] | None:
        with farm.session() as s:
            row = s.execute(
                select(Task.id, Task.worker).where(
                    Task.state == "running", Task.limits.contains(["dongle"])
                )
            ).first()
        return None if row is None else (int(row[0]), str(row[1]))

    task_id, worker = farm.wait_until(holder, 60, "a task holding the dongle")
    victim = next(p for p in farm.procs if _name(p) and worker.startswith(_name(p)))
    farm.stop(victim, signal.SIGKILL)
    killed = time.monotonic()
    # While the dead worker's lease runs, its task still holds the dongle: nothing else starts.
    while time.monotonic() - killed < LEASE_S - 0.5:
        running, held = _holders(farm, "dongle")
        assert held <= 1, (running, held)
        with farm.session() as s:
            state = s.get(Task, task_id)
            assert state is not None
            assert state.state == "running" or time.monotonic() - killed > LEASE_S - 1
        time.sleep(0.1)

    def freed() -> bool:
        with farm.session() as s:
            t = s.get(Task, task_id)
            return t is not None and (t.state != "running" or t.worker != worker)

    farm.wait_until(freed, 30, "the dead worker's task requeued")
    requeued = time.monotonic() - killed
    farm.wait_until(lambda: _left(farm, "lim-kill") == 0, 120, "the killed job done")
    print(f"dongle freed {requeued:.1f}s after the kill (lease {LEASE_S}s)")
    assert requeued >= LEASE_S - 1.0
