"""Every path a job reads is confined: POST /jobs through a real API process (on its own
database and broker index) refuses each input field that points outside the output root and
FARM_INPUT_ROOTS, records nothing, and accepts what is under an input root; a real worker
whose own roots lack that input root fails the task for good before opening the path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from farm.config import Settings
from farm.db import session_scope
from farm.models import Job, Task
from farm.queries import wait_for_job
from farm.tokens import create
from tests.integration.harness import Farm, make_settings
from tests.integration.test_api import spawn_api

RENDER = {"kind": "render", "checkpoint": "c.safetensors", "frames": "1-24", "chunk_size": 12,
          "width": 64, "height": 64}  # fmt: skip
OUTSIDE = "outside the folders a job may read from"


@dataclass
class Api:
    url: str
    token: str
    settings: Settings
    library: Path
    elsewhere: Path
    log_dir: Path

    def post(self, spec: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.post(f"{self.url}/jobs", json=spec, headers=headers, timeout=30)

    def jobs(self) -> int:
        with session_scope(self.settings) as s:
            return int(s.execute(select(func.count()).select_from(Job)).scalar_one())


@pytest.fixture(scope="module")
def api(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("inputs")
    library = root / "library"  # the operator's read-only input root
    (library / "plates").mkdir(parents=True)
    (library / "plates" / "a.png").write_bytes(b"png")
    (library / "lib.safetensors").write_bytes(b"not a real checkpoint: nothing runs here")
    (library / "track.wav").write_bytes(b"wav")
    elsewhere = root / "elsewhere"  # readable by the API's user, but no root of the farm's
    elsewhere.mkdir()
    (elsewhere / "c.safetensors").write_bytes(b"x")
    settings = make_settings(database_url, broker_url, root, input_roots=str(library))
    out = settings.output_root_abs()
    out.mkdir(parents=True, exist_ok=True)
    (out / "c.safetensors").write_bytes(b"not a real checkpoint: nothing runs here")
    (out / "etc").symlink_to("/etc")  # a link inside the output root, pointing out
    (out / "plates").symlink_to(library / "plates")  # ... and one to the input root
    url, proc = spawn_api(settings, root / "api.log")
    try:
        yield Api(url, create(settings, "submitter"), settings, library, elsewhere, root)
    finally:
        proc.terminate()
        proc.wait(10)
        redis.Redis.from_url(broker_url).flushdb()


REFUSED = [
    ({"kind": "train", "dataset": "images:/root"}, "dataset", OUTSIDE),
    ({"kind": "train", "dataset": "video:/etc/hostname"}, "dataset", OUTSIDE),
    ({"kind": "train", "dataset": "images:../../../etc"}, "dataset", OUTSIDE),
    ({"kind": "train", "dataset": "images:etc"}, "dataset", OUTSIDE),
    ({"kind": "train", "dataset": "video:etc/hostname"}, "dataset", OUTSIDE),
    ({**RENDER, "output": {"path": "r.mp4", "audio": "/etc/hostname"}}, "output.audio", OUTSIDE),
    ({**RENDER, "output": {"path": "r.mp4", "audio": "etc/hostname"}}, "output.audio", OUTSIDE),
    ({**RENDER, "checkpoint": "/etc/hostname"}, "checkpoint", ".safetensors"),
    ({**RENDER, "checkpoint": "ELSEWHERE/c.safetensors"}, "checkpoint", OUTSIDE),
    ({**RENDER, "checkpoint": "../elsewhere/c.safetensors"}, "checkpoint", OUTSIDE),
]


@pytest.mark.parametrize(("spec", "field", "reason"), REFUSED)
def test_each_input_field_outside_the_roots_is_refused_and_nothing_recorded(
    api: Api, spec: dict[str, Any], field: str, reason: str
) -> None:
    spec = json.loads(json.dumps(spec).replace("ELSEWHERE", str(api.elsewhere)))
    before = api.jobs()
    r = api.post(spec)
    assert r.status_code == 422, r.text
    problems = r.json()["problems"]
    assert [p["field"] for p in problems] == [field], problems
    assert reason in problems[0]["reason"]
    assert api.jobs() == before


def test_a_worker_without_that_input_root_fails_the_task_for_good(api: Api) -> None:
    """The worker confines again before opening: here its FARM_INPUT_ROOTS lacks the library
    the API accepted the data set under, so the task fails at once, naming the field."""
    farm = Farm(api.settings, api.log_dir)
    farm.start_worker("gpu", env_overrides={"FARM_INPUT_ROOTS": ""})
    try:
        spec = {"kind": "train", "name": "other-roots", "dataset": f"images:{api.library}/plates"}
        r = api.post({**spec, "epochs": 1})
        assert r.status_code == 201, r.text
        job = wait_for_job(api.settings, r.json()["id"], timeout_s=120, poll_s=0.2)
        assert job["state"] == "failed", farm.logs()
        with session_scope(api.settings) as s:
            task = s.execute(select(Task).where(Task.job_id == r.json()["id"])).scalar_one()
            assert task.attempts == 1  # permanent: not retried
            error = str(task.error)
        assert "dataset: " in error and OUTSIDE in error, error
    finally:
        farm.close()


def test_inputs_under_an_input_root_are_accepted(api: Api) -> None:
    lib = api.library
    before = api.jobs()
    accepted: list[dict[str, Any]] = [
        {"kind": "train", "name": "lib-images", "dataset": f"images:{lib}/plates"},
        {"kind": "train", "name": "linked-images", "dataset": "images:plates"},
        {**RENDER, "name": "lib-render", "checkpoint": str(lib / "lib.safetensors"),
         "output": {"path": "r.mp4", "audio": str(lib / "track.wav")}},
    ]  # fmt: skip
    for spec in accepted:
        r = api.post(spec)
        assert r.status_code == 201, r.text
    assert api.jobs() == before + len(accepted)
