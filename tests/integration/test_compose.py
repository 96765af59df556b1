"""docker-compose.yml renders, names every service, reserves a GPU for the GPU worker, and
takes its secrets from the environment only.

Needs ``docker-compose`` (or the ``docker compose`` plugin) on PATH, not a Docker engine:
``config`` only interpolates and validates the file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

DUMMIES = {
    "POSTGRES_PASSWORD": "dummy-pg-3f9a",
    "REDIS_PASSWORD": "dummy-redis-7c21",
    "FARM_WEBHOOK_SECRET": "dummy-webhook-5e08",
    "FARM_FLOWER_BASIC_AUTH": "admin:dummy-flower-91bd",
}
EXPECTED_SERVICES = {
    "postgres",
    "redis",
    "migrate",
    "api",
    "sweeper",
    "flower",
    "worker-cpu",
    "worker-gpu",
}
ONE_SHOT = {"migrate"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|AUTH|TOKEN", re.IGNORECASE)


@cache
def compose_command() -> tuple[str, ...] | None:
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ("docker", "compose")
    return None


pytestmark = [
    pytest.mark.one_pass,
    pytest.mark.skipif(
        compose_command() is None,
        reason="neither docker-compose nor the docker compose plugin is on PATH "
        "(apt-get install docker-compose)",
    ),
]


def run_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``config`` with exactly ``env`` as the secrets: an empty env file, so a developer's
    .env beside the compose file cannot fill in what the test leaves out."""
    cmd = compose_command()
    assert cmd is not None
    empty = tmp_path / "empty.env"
    empty.write_text("")
    base = {k: v for k, v in os.environ.items() if k not in DUMMIES and not k.startswith("FARM_")}
    return subprocess.run(
        [*cmd, "--env-file", str(empty), "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    proc = run_config(tmp_path_factory.mktemp("compose"), DUMMIES)
    assert proc.returncode == 0, proc.stderr
    data = yaml.safe_load(proc.stdout)
    assert isinstance(data, dict)
    return data


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the list form: ["KEY=value", ...]
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def url_password(value: str) -> str | None:
    if "://" not in value:
        return None
    try:
        return urlsplit(value).password
    except ValueError:
        return None


def test_every_service_is_there(rendered: dict[str, Any]) -> None:
    assert set(rendered["services"]) == EXPECTED_SERVICES


def test_gpu_worker_reserves_nvidia_gpus(rendered: dict[str, Any]) -> None:
    gpu = rendered["services"]["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    nvidia = [d for d in devices if d.get("driver") == "nvidia" and "gpu" in d["capabilities"]]
    assert nvidia, devices
    # "all" renders as -1 in Compose v2; a fixed count or explicit device ids are fine too.
    assert nvidia[0].get("count") in ("all", -1, 1, "1") or nvidia[0].get("device_ids")
    assert "gpu" in gpu["command"] and "cpu" not in gpu["command"]
    assert "deploy" not in rendered["services"]["worker-cpu"]


def test_long_running_services_restart_and_migrate_runs_once(rendered: dict[str, Any]) -> None:
    for name, service in rendered["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart", "no") == "no", name
        else:
            assert service.get("restart") in ("unless-stopped", "always"), name


def test_servers_urls_point_at_the_services(rendered: dict[str, Any]) -> None:
    for name, service in rendered["services"].items():
        env = environment(service)
        if name in ("postgres", "redis"):
            continue
        assert urlsplit(env["FARM_DATABASE_URL"]).hostname == "postgres", name
        assert urlsplit(env["FARM_BROKER_URL"]).hostname == "redis", name
        assert env["FARM_OUTPUT_ROOT"] == "/srv/farm/out", name


def test_outputs_volume_is_shared_at_the_output_root(rendered: dict[str, Any]) -> None:
    for name in ("api", "worker-cpu", "worker-gpu"):
        volumes = rendered["services"][name].get("volumes", [])
        mounts = {
            (v["source"], v["target"]) if isinstance(v, dict) else tuple(v.split(":")[:2])
            for v in volumes
        }
        assert ("outputs", "/srv/farm/out") in mounts, (name, volumes)
    assert "outputs" in rendered["volumes"]


def test_flower_requires_credentials_and_api_has_a_healthcheck(rendered: dict[str, Any]) -> None:
    flower = environment(rendered["services"]["flower"])
    assert flower["FARM_FLOWER_BASIC_AUTH"] == DUMMIES["FARM_FLOWER_BASIC_AUTH"]
    api = rendered["services"]["api"]
    assert "/health" in " ".join(api["healthcheck"]["test"])
    depends = api["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_no_literal_secret_in_the_rendered_file(rendered: dict[str, Any]) -> None:
    allowed = set(DUMMIES.values())
    for name, service in rendered["services"].items():
        for key, value in environment(service).items():
            if SECRET_KEY.search(key):
                assert value in allowed, f"{name}: {key} is not from the environment"
    for value in strings(rendered):
        password = url_password(value)
        if password is not None:
            assert password in allowed, f"literal password in URL {value!r}"
    for value in strings(rendered):
        words = value.split()
        for flag in ("--requirepass", "-a"):
            if flag in words[:-1]:
                given = words[words.index(flag) + 1].strip("\"'")
                assert given.startswith("$") or given in allowed, f"literal password in {value!r}"


def test_source_file_takes_every_secret_from_the_environment() -> None:
    source = yaml.safe_load(COMPOSE_FILE.read_text())
    for name, service in source["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if key == "<<":
                continue
            if SECRET_KEY.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value)), f"{name}: {key}={value}"
    for value in strings(source):
        password = url_password(value)
        if password is not None:
            assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", password), f"literal password in {value!r}"


@pytest.mark.parametrize("missing", sorted(DUMMIES))
def test_refuses_to_render_without_a_secret(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in DUMMIES.items() if k != missing}
    proc = run_config(tmp_path, env)
    assert proc.returncode != 0, f"rendered without {missing}"
    message = proc.stderr + proc.stdout
    assert missing in message, message
