"""The audit log on a real database and a real API server: actions through the API with a
named token, through the local CLI, and through the CLI over ``FARM_API_URL``, each listed
once with its actor, request id and target; refused actions leave no row."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from farm.cli import app
from farm.config import Settings
from farm.db import session_scope
from farm.lifecycle import transition
from farm.models import AuditLog, Task
from farm.registry import identity, register
from farm.runtime import child_env
from farm.states import TaskState
from farm.tokens import create
from tests.integration.harness import make_settings
from tests.integration.test_api import spawn_api

TRAIN = {"kind": "train", "epochs": 1, "latent_dim": 4, "pool": "nowhere"}


@pytest.fixture(scope="module")
def settings(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return make_settings(database_url, broker_url, tmp_path_factory.mktemp("audit"))


@pytest.fixture(scope="module")
def api(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url, proc = spawn_api(settings, Path(tmp_path_factory.mktemp("audit-api")) / "api.log")
    try:
        yield url, create(settings, "audit-rw", admin=True)
    finally:
        proc.terminate()
        proc.wait(10)


def farm_cli(settings: Settings, *args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, list(args), env={**child_env(settings), "COLUMNS": "200", **env}
    )
    return result.exit_code, result.output


def audit(url: str, token: str, **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/audit", params=params, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def rows_count(settings: Settings) -> int:
    with session_scope(settings) as s:
        return s.query(AuditLog).count()


def fail_every_task(settings: Settings, job_id: int) -> None:
    """As a worker whose last attempt failed would (no worker runs in this module)."""
    with session_scope(settings) as s:
        for task in s.execute(select(Task).where(Task.job_id == job_id)).scalars():
            transition(s, task, TaskState.RUNNING)
            transition(s, task, TaskState.FAILED, message="failed for the test")


def test_api_actions_are_audited_with_token_request_id_and_target(
    settings: Settings, api: tuple[str, str]
) -> None:
    url, rw = api
    ro = create(settings, "audit-ro", read_only=True)
    register(settings, identity("audit-worker", "cpu"))

    def call(method: str, path: str, rid: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {rw}", "X-Request-ID": rid}
        r = httpx.request(method, f"{url}{path}", headers=headers, **kw)
        assert r.headers["x-request-id"] == rid
        return r

    r = call("POST", "/jobs", "rq-submit", json=TRAIN | {"name": "audit-a"})
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    assert call("PATCH", f"/jobs/{job}", "rq-prio", json={"priority": 80}).status_code == 200
    for verb in ("pause", "resume", "cancel"):
        assert call("POST", f"/jobs/{job}/{verb}", f"rq-{verb}").status_code == 200
    failed = call("POST", "/jobs", "rq-submit2", json=TRAIN | {"name": "audit-f"}).json()["id"]
    fail_every_task(settings, failed)
    assert call("POST", f"/jobs/{failed}/retry", "rq-retry").status_code == 200
    assert call("POST", "/workers/audit-worker/drain", "rq-drain").status_code == 200
    assert call("PUT", "/limits/audit-lic", "rq-lim", json={"count": 2}).status_code == 200
    assert call("PUT", "/limits/audit-lic", "rq-lim2", json={"count": 3}).status_code == 200
    assert call("PUT", "/projects/audit-show", "rq-proj", json={"weight": 2}).status_code == 200

    before = rows_count(settings)
    # refused actions write nothing: an unknown job, a finished one, a bad value, a reader
    assert call("POST", "/jobs/999999/cancel", "rq-x1").status_code == 404
    assert call("POST", f"/jobs/{job}/cancel", "rq-x2").status_code == 409
    assert call("PUT", "/limits/audit-lic", "rq-x3", json={"count": -1}).status_code == 422
    assert call("POST", "/workers/nobody/drain", "rq-x4").status_code == 404
    r = httpx.post(f"{url}/jobs/{job}/pause", headers={"Authorization": f"Bearer {ro}"})
    assert r.status_code == 403
    assert rows_count(settings) == before

    # newest first; the read-only token may read the audit
    rows = audit(url, ro, job=job)
    assert [(r["action"], r["request_id"]) for r in rows] == [
        ("cancel", "rq-cancel"), ("resume", "rq-resume"), ("pause", "rq-pause"),
        ("priority", "rq-prio"), ("submit", "rq-submit"),
    ]  # fmt: skip
    assert {(r["actor"], r["target_kind"], r["target"]) for r in rows} == {
        ("audit-rw", "job", str(job))
    }
    assert rows[3]["detail"] == {"old": 50, "new": 80}
    assert rows[0]["detail"] == {"from_state": "queued", "tasks": 1}
    assert rows[4]["detail"]["name"] == "audit-a"
    limits = audit(url, rw, action="limit_set")
    assert [(r["target"], r["detail"]) for r in limits[:2]] == [
        ("audit-lic", {"old": 2, "new": 3}), ("audit-lic", {"old": None, "new": 2}),
    ]  # fmt: skip
    (drain,) = audit(url, rw, action="drain")
    assert (drain["target_kind"], drain["target"], drain["actor"]) == (
        "worker", "audit-worker", "audit-rw"
    )  # fmt: skip
    (proj,) = audit(url, rw, target="audit-show")
    assert proj["detail"]["new"] == {"weight": 2.0, "max_running": None}

    # paging and filters
    mine = audit(url, rw, actor="audit-rw", since="1h")
    assert len(mine) == 11
    (retried,) = audit(url, rw, action="retry")
    assert (retried["target"], retried["detail"], retried["request_id"]) == (
        str(failed), {"tasks": 1}, "rq-retry"
    )  # fmt: skip
    first = httpx.get(f"{url}/audit", params={"actor": "audit-rw", "limit": 4},
                      headers={"Authorization": f"Bearer {rw}"}).json()  # fmt: skip
    rest = audit(url, rw, actor="audit-rw", before=first["next_before"])
    assert [r["id"] for r in first["items"] + rest] == [r["id"] for r in mine]
    assert audit(url, rw, actor="audit-rw", since="2000-01-01T00:00:00Z") == mine
    assert audit(url, rw, since="2999-01-01") == []
    for bad, field in (({"since": "soon"}, "since"), ({"action": "nuke"}, "action")):
        r = httpx.get(f"{url}/audit", params=bad, headers={"Authorization": f"Bearer {rw}"})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == field
    assert httpx.get(f"{url}/audit").status_code == 401


def test_local_cli_actions_are_audited_as_the_local_user(
    settings: Settings, api: tuple[str, str], tmp_path: Path
) -> None:
    url, rw = api
    me = f"cli:{getpass.getuser()}"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(TRAIN | {"name": "audit-cli"}))
    code, out = farm_cli(settings, "submit", str(spec), "--json")
    assert code == 0, out
    job = json.loads(out)["id"]
    manifest = tmp_path / "shots.yaml"
    manifest.write_text(
        "defaults: {kind: train, epochs: 1, pool: nowhere}\n"
        "shots:\n  - {name: audit-b1}\n  - {name: audit-b2}\n"
    )
    code, out = farm_cli(settings, "batch", str(manifest), "--no-wait")
    assert code == 0, out
    assert farm_cli(settings, "priority", str(job), "70")[0] == 0
    assert farm_cli(settings, "cancel", str(job))[0] == 0
    assert farm_cli(settings, "project", "set", "audit-cli-show", "--max-running", "3")[0] == 0
    assert farm_cli(settings, "token", "create", "--name", "audit-tmp")[0] == 0
    assert farm_cli(settings, "token", "revoke", "audit-tmp")[0] == 0
    before = rows_count(settings)
    assert farm_cli(settings, "cancel", "999999")[0] != 0
    assert farm_cli(settings, "project", "set", "audit-bad", "--weight", "0")[0] == 2
    assert farm_cli(settings, "token", "revoke", "audit-tmp")[0] != 0
    assert rows_count(settings) == before

    code, out = farm_cli(settings, "audit", "--json", "--actor", me, "--limit", "8")
    assert code == 0, out
    rows = json.loads(out)
    assert [r["action"] for r in rows] == [
        "token_revoke", "token_create", "project_set", "cancel", "priority",
        "submit", "submit", "submit",
    ]  # fmt: skip
    batch = [r for r in rows[5:7]]
    assert {r["detail"]["name"] for r in batch} == {"audit-b1", "audit-b2"}
    assert batch[0]["request_id"] == batch[1]["request_id"] != rows[7]["request_id"]
    assert all(r["request_id"] for r in rows)
    code, out = farm_cli(settings, "audit", "--json", "--job", str(job))
    assert [r["action"] for r in json.loads(out)] == ["cancel", "priority", "submit"]
    code, out = farm_cli(settings, "audit", "--action", "token_revoke")
    assert code == 0 and "audit-tmp" in out, out
    for bad, field in ((("--since", "soon"), "since"), (("--limit", "0"), "limit"),
                       (("--action", "nuke"), "action")):  # fmt: skip
        code, out = farm_cli(settings, "audit", *bad)
        assert code == 2 and field in out, out

    # the same listing through the API, as a remote CLI reads it
    code, out = farm_cli(settings, "audit", "--json", "--job", str(job),
                         FARM_API_URL=url, FARM_API_TOKEN=rw)  # fmt: skip
    assert code == 0, out
    assert [r["actor"] for r in json.loads(out)] == [me] * 3
    code, out = farm_cli(settings, "audit", "--since", "soon", FARM_API_URL=url,
                         FARM_API_TOKEN=rw)  # fmt: skip
    assert code == 2 and "since" in out, out
