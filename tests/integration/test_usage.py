"""Accounting with real workers: every attempt leaves one row (its wall time and device), a
dead worker's counted up to its lease's expiry and marked lost, and the roll-ups by project
and by day (``farm usage``, also through the CLI) equal the sum of the attempts exactly."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from farm.cli import app
from farm.models import Attempt, Task
from farm.runtime import child_env
from farm.tokens import create
from farm.usage import usage
from tests.integration.harness import Farm, make_settings
from tests.integration.test_api import spawn_api

pytestmark = pytest.mark.one_pass

LEASE_S = 3.0


@pytest.fixture(scope="module")
def farm(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("usage")
    settings = make_settings(
        database_url, broker_url, root, lease_s=LEASE_S, heartbeat_s=1.0, sweep_interval_s=0.5
    )
    f = Farm(settings, root)
    env = {"FARM_TEST_STAGE_S": "1.0"}
    for i in range(2):
        f.start_worker(
            "gpu", name=f"use{i}@test", module="tests.integration.share_worker",
            env_overrides=env,
        )  # fmt: skip
    f.start_worker("cpu", name="usecpu@test", module="tests.integration.noop_worker")
    f.start_sweeper()
    try:
        yield f
    finally:
        f.close()


def _name(proc: subprocess.Popen[bytes]) -> str:
    args = [str(a) for a in proc.args] if isinstance(proc.args, list) else []
    return args[args.index("--name") + 1] if "--name" in args else ""


def _shot(name: str, project: str) -> dict[str, object]:
    return {"kind": "render", "name": name, "checkpoint": "job:use-model", "frames": "1-4",
            "chunk_size": 1, "width": 64, "height": 64, "project": project}  # fmt: skip


def test_attempts_are_accounted_and_roll_up_exactly(farm: Farm) -> None:
    model = farm.submit({"kind": "train", "name": "use-model", "epochs": 1, "project": "acct-a"})
    assert farm.wait(model, 120)["state"] == "succeeded", farm.logs()
    jobs = [farm.submit(_shot("use-a", "acct-a"), submitter="alice"),
            farm.submit(_shot("use-b", "acct-b"), submitter="bob")]  # fmt: skip

    def holder() -> tuple[int, str] | None:
        with farm.session() as s:
            row = s.execute(
                select(Task.id, Task.worker).where(
                    Task.state == "running", Task.kind == "render_chunk"
                )
            ).first()
        return None if row is None else (int(row[0]), str(row[1]))

    task_id, worker = farm.wait_until(holder, 60, "a chunk running")
    victim = next(p for p in farm.procs if _name(p) and worker.startswith(_name(p)))
    with farm.session() as s:
        started = s.get(Task, task_id)
        assert started is not None
        attempt = started.attempts
    farm.stop(victim, signal.SIGKILL)
    for job in jobs:
        assert farm.wait(job, 180)["state"] == "succeeded", farm.logs()
    time.sleep(0.5)
    with farm.session() as s:
        lost = s.execute(
            select(Attempt).where(Attempt.task_id == task_id, Attempt.attempt == attempt)
        ).scalar_one()
        assert lost.outcome == "lost"
        expired = s.execute(
            text(
                "SELECT at FROM events WHERE task_id = :t AND attempt = :a AND to_state = 'queued'"
            ),
            {"t": task_id, "a": attempt},
        ).scalar_one()
        assert lost.ended_at <= expired  # counted up to the lease's expiry, not the sweep
        assert (expired - lost.ended_at).total_seconds() < 5
        # one row per attempt made
        made = s.execute(select(func.sum(Task.attempts))).scalar_one()
        rows = s.execute(
            text(
                "SELECT project, to_char(date_trunc('day', ended_at AT TIME ZONE 'UTC'),"
                " 'YYYY-MM-DD'), device, outcome, extract(epoch FROM ended_at - started_at),"
                " submitter, coalesce(pool, 'default'), ended_at FROM attempts"
            )
        ).all()
        assert len(rows) == made
        assert all(Decimal(r[4]) >= 0 for r in rows)
        by_project = usage(s, "project")
        by_day = usage(s, "day")
        by_submitter = usage(s, "submitter")
        by_pool = usage(s, "pool")
        # A window: the attempts that ended in it, and none of those outside.
        middle = sorted(r[7] for r in rows)[len(rows) // 2]
        early = usage(s, "project", since=None, until=middle)
        late = usage(s, "project", since=middle)
        assert sum(u.attempts for u in early) == sum(1 for r in rows if r[7] < middle)
        assert sum(u.attempts for u in early + late) == len(rows)
        assert usage(s, "project", project="acct-b", until=middle - timedelta(days=1)) == []
    assert {u.key for u in by_submitter} == {"cli", "alice", "bob"}
    assert [u.key for u in by_pool] == ["default"]
    for rolled, col in ((by_project, 0), (by_day, 1), (by_submitter, 5), (by_pool, 6)):
        for u in rolled:
            mine = [r for r in rows if r[col] == u.key]
            assert u.attempts == len(mine)
            assert u.wall_s == sum((Decimal(r[4]) for r in mine), Decimal(0))
            assert u.gpu_s + u.cpu_s == u.wall_s
            assert u.lost_s == sum((Decimal(r[4]) for r in mine if r[3] == "lost"), Decimal(0))
        assert sum((u.wall_s for u in rolled), Decimal(0)) == sum(
            (Decimal(r[4]) for r in rows), Decimal(0)
        )
    assert {u.key for u in by_project} == {"acct-a", "acct-b"}
    a = next(u for u in by_project if u.key == "acct-a")
    assert a.lost_s > 0 or next(u for u in by_project if u.key == "acct-b").lost_s > 0
    print(
        "usage by project: "
        + ", ".join(
            f"{u.key} {u.attempts} attempts {u.wall_s:.3f} s (lost {u.lost_s:.3f})"
            for u in by_project
        )
    )
    result = CliRunner().invoke(
        app, ["usage", "--by", "project", "--json"], env=child_env(farm.settings)
    )
    assert result.exit_code == 0, result.output
    assert [(r["key"], Decimal(r["wall_s"])) for r in json.loads(result.output)] == [
        (u.key, u.wall_s) for u in by_project
    ]
    result = CliRunner().invoke(
        app, ["usage", "--by", "submitter", "--since", "2d", "--csv"], env=child_env(farm.settings)
    )
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output))) == [
        ["submitter", "attempts", "wall_s", "gpu_s", "cpu_s", "lost_s"],
        *([u.key, str(u.attempts), str(u.wall_s), str(u.gpu_s), str(u.cpu_s), str(u.lost_s)]
          for u in by_submitter),
    ]  # fmt: skip
    for args, named in ((["--since", "last week"], "--since"), (["--until", "0d"], "--until"),
                        (["--by", "month"], "--by")):  # fmt: skip
        result = CliRunner().invoke(app, ["usage", *args], env=child_env(farm.settings))
        assert result.exit_code == 2 and f"{named}: " in result.output, result.output
    log = farm.log_dir / "api.log"
    url, proc = spawn_api(farm.settings, log)
    try:
        auth = {"Authorization": f"Bearer {create(farm.settings, 'acct', read_only=True)}"}
        r = httpx.get(f"{url}/usage", params={"by": "day"}, headers=auth)
        assert r.status_code == 200, r.text
        assert [(u["key"], Decimal(u["wall_s"])) for u in r.json()] == [
            (u.key, u.wall_s) for u in by_day
        ]
        r = httpx.get(f"{url}/usage", params={"project": "acct-b"}, headers=auth)
        assert [u["key"] for u in r.json()] == ["acct-b"]
        assert httpx.get(f"{url}/usage", params={"by": "month"}, headers=auth).status_code == 422
        r = httpx.get(f"{url}/usage", params={"by": "pool", "since": "7d"}, headers=auth)
        assert [(u["key"], Decimal(u["wall_s"])) for u in r.json()] == [
            (u.key, u.wall_s) for u in by_pool
        ]
        r = httpx.get(f"{url}/usage", params={"by": "submitter", "format": "csv"}, headers=auth)
        assert r.headers["content-type"].startswith("text/csv")
        assert r.text.splitlines()[0] == "submitter,attempts,wall_s,gpu_s,cpu_s,lost_s"
        assert len(r.text.splitlines()) == 1 + len(by_submitter)
        for bad in ({"since": "soon"}, {"until": "-1d"}, {"since": "0d"}):
            r = httpx.get(f"{url}/usage", params=bad, headers=auth)
            assert r.status_code == 422, r.text
            assert [p["field"] for p in r.json()["problems"]] == list(bad), r.text
        r = httpx.get(f"{url}/usage", params={"since": "1d", "until": "2d"}, headers=auth)
        assert r.status_code == 200 and r.json() == []
        assert httpx.get(f"{url}/usage").status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)
