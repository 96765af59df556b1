"""The shared farm's admin surface on a real database: ``farm project set/list`` through
typer's CliRunner (the command reads the test farm's settings from the environment, as a
shell would give them) and ``GET /projects`` / ``PUT /projects/{name}`` through a real API
server, with bad input refused naming the field and nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from farm.cli import app
from farm.config import Settings
from farm.db import session_scope
from farm.errors import FarmError
from farm.models import Project
from farm.runtime import child_env
from farm.tokens import create
from tests.integration.harness import make_settings
from tests.integration.test_api import spawn_api


@pytest.fixture(scope="module")
def settings(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return make_settings(database_url, broker_url, tmp_path_factory.mktemp("share-admin"))


def farm_cli(settings: Settings, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={**child_env(settings), "COLUMNS": "200"})
    return result.exit_code, result.output


def _project(settings: Settings, name: str) -> Project | None:
    with session_scope(settings) as s:
        p = s.get(Project, name)
        if p is not None:
            s.expunge(p)
        return p


def test_project_set_and_list_through_the_cli(settings: Settings) -> None:
    code, out = farm_cli(settings, "project", "set", "cli-show", "--weight", "2.5",
                         "--max-running", "4")  # fmt: skip
    assert code == 0, out
    assert "project cli-show: weight 2.5, max running 4" in out
    p = _project(settings, "cli-show")
    assert p is not None and (p.weight, p.max_running) == (2.5, 4)
    code, out = farm_cli(settings, "project", "set", "cli-show", "--no-cap")
    assert code == 0 and "max running none" in out, out
    p = _project(settings, "cli-show")
    assert p is not None and (p.weight, p.max_running) == (2.5, None)  # weight kept
    code, out = farm_cli(settings, "project", "list", "--json")
    assert code == 0, out
    listed = {p["name"]: p for p in json.loads(out)}
    assert listed["cli-show"]["weight"] == 2.5 and listed["cli-show"]["max_running"] is None
    assert "default" in listed
    code, out = farm_cli(settings, "project", "list")
    assert code == 0 and "cli-show" in out and "2.5" in out, out


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("bad-weight", "--weight", "0"), "weight"),
        (("bad-weight", "--weight", "-1"), "weight"),
        (("bad-cap", "--max-running", "-1"), "max_running"),
        (("Bad Name",), "name"),
    ],
)
def test_project_set_refuses_bad_input_naming_the_field(
    settings: Settings, args: tuple[str, ...], field: str
) -> None:
    code, out = farm_cli(settings, "project", "set", *args)
    assert code != 0
    assert field in out, out
    assert _project(settings, args[0]) is None


@pytest.fixture(scope="module")
def api(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, str]]:
    log = Path(tmp_path_factory.mktemp("share-admin-api")) / "api.log"
    url, proc = spawn_api(settings, log)
    try:
        yield (
            url,
            create(settings, "admin-rw", admin=True),
            create(settings, "admin-ro", read_only=True),
        )
    finally:
        proc.terminate()
        proc.wait(10)


def test_projects_api_reads_changes_and_refuses(
    settings: Settings, api: tuple[str, str, str]
) -> None:
    url, rw, ro = api
    auth = {"Authorization": f"Bearer {rw}"}
    r = httpx.put(f"{url}/projects/api-show", json={"weight": 3, "max_running": 2}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "api-show", "weight": 3.0, "max_running": 2, "running": {}}
    r = httpx.put(f"{url}/projects/api-show", json={"max_running": None}, headers=auth)
    assert r.status_code == 200 and r.json()["max_running"] is None and r.json()["weight"] == 3
    r = httpx.get(f"{url}/projects", headers={"Authorization": f"Bearer {ro}"})
    assert r.status_code == 200
    assert {p["name"] for p in r.json()} >= {"default", "api-show"}
    # a read-only token reads but may not change a share, nor may a submitting one that is
    # not admin; no token reads nothing
    writer = create(settings, "admin-not", read_only=False)
    for token in (ro, writer):
        r = httpx.put(f"{url}/projects/api-show", json={"weight": 9},
                      headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 403, r.text
    r = httpx.put(f"{url}/limits/api-show", json={"count": 1},
                  headers={"Authorization": f"Bearer {writer}"})  # fmt: skip
    assert r.status_code == 403 and "admin" in r.text
    with pytest.raises(FarmError, match="not both"):
        create(settings, "admin-both", read_only=True, admin=True)
    assert httpx.get(f"{url}/projects").status_code == 401
    for body, field in (({"weight": 0}, "weight"), ({"max_running": -1}, "max_running"),
                        ({"wieght": 2}, "wieght")):  # fmt: skip
        r = httpx.put(f"{url}/projects/api-bad", json=body, headers=auth)
        assert r.status_code == 422, r.text
        assert field in r.text
    r = httpx.put(f"{url}/projects/Not%20A%20Name", json={"weight": 1}, headers=auth)
    assert r.status_code == 422 and "name" in r.text
    assert _project(settings, "api-bad") is None
    p = _project(settings, "api-show")
    assert p is not None and p.weight == 3.0


def test_limit_set_and_list_through_the_cli(settings: Settings) -> None:
    code, out = farm_cli(settings, "limit", "set", "cli-lic", "3")
    assert code == 0 and "limit cli-lic: count 3, held 0" in out, out
    code, out = farm_cli(settings, "limit", "set", "cli-lic", "1")
    assert code == 0, out
    code, out = farm_cli(settings, "limit", "list", "--json")
    assert code == 0, out
    assert {"name": "cli-lic", "count": 1, "held": 0} in json.loads(out)
    code, out = farm_cli(settings, "limit", "set", "cli-neg", "--", "-1")
    assert code != 0 and "count" in out, out
    code, out = farm_cli(settings, "limit", "list")
    assert code == 0 and "cli-lic" in out and "cli-neg" not in out, out


def test_limits_api_reads_changes_and_refuses(api: tuple[str, str, str]) -> None:
    url, rw, ro = api
    auth = {"Authorization": f"Bearer {rw}"}
    r = httpx.put(f"{url}/limits/api-lic", json={"count": 2}, headers=auth)
    assert r.status_code == 200 and r.json() == {"name": "api-lic", "count": 2, "held": 0}
    r = httpx.get(f"{url}/limits", headers={"Authorization": f"Bearer {ro}"})
    assert r.status_code == 200 and {"name": "api-lic", "count": 2, "held": 0} in r.json()
    r = httpx.put(f"{url}/limits/api-lic", json={"count": 5},
                  headers={"Authorization": f"Bearer {ro}"})  # fmt: skip
    assert r.status_code == 403
    for body in ({"count": -1}, {}, {"count": 1, "extra": 1}):
        r = httpx.put(f"{url}/limits/api-neg", json=body, headers=auth)
        assert r.status_code == 422, r.text
    r = httpx.get(f"{url}/limits", headers=auth)
    assert "api-neg" not in {v["name"] for v in r.json()}
