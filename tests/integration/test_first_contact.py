"""First contact: no command waits on a dead worker or an unusable broker, and signals stop
everything a command started. Real commands, real servers, real worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from farm.embedded import redis_server_binary
from farm.models import Task
from farm.tokens import create
from tests.integration.harness import fresh_database, make_settings

EXTERNAL = os.environ.get("FARM_TEST_SERVERS", "embedded") == "external"
embedded_only = pytest.mark.skipif(
    EXTERNAL, reason="tests the embedded servers' shutdown; runs in the embedded pass"
)
TRAIN = {"kind": "train", "name": "fc-vae", "epochs": 1, "latent_dim": 4}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a new user's shell: no FARM_* settings but a data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


@dataclass
class Command:
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def text(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_for(self, needle: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while needle not in self.text():
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {needle!r} after {timeout_s}s:\n{self.text()}"
            time.sleep(0.2)

    def finish(self, timeout_s: float) -> tuple[int, float]:
        """Its exit code and how long it took to exit from now."""
        started = time.monotonic()
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError(f"still running after {timeout_s}s:\n{self.text()}") from None
        return code, time.monotonic() - started


@pytest.fixture
def run(tmp_path: Path) -> Iterator[object]:
    started: list[Command] = []

    def start(args: list[str], env: dict[str, str]) -> Command:
        n = len(started)
        out, err = tmp_path / f"cmd-{n}.out", tmp_path / f"cmd-{n}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(
                [sys.executable, "-m", "farm", *args],
                env=env, cwd=tmp_path, stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        started.append(Command(proc, out, err))
        return started[-1]

    yield start
    for c in started:
        if c.proc.poll() is None:
            os.killpg(c.proc.pid, signal.SIGKILL)
            c.proc.wait()


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _workers(pid: int) -> list[psutil.Process]:
    out = []
    for p in _tree(pid):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if cmd[1:4] == ["-m", "farm", "worker"]:
            out.append(p)
    return out


def _wait_workers(pid: int, n: int, timeout_s: float = 60) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while len(found := _workers(pid)) < n:
        assert time.monotonic() < deadline, f"{len(found)} of {n} workers after {timeout_s}s"
        time.sleep(0.2)
    return found


def _left_behind(data_dir: Path, tree: list[psutil.Process]) -> list[str]:
    """Processes still alive that the command started, or whose command line names its data
    directory (the embedded PostgreSQL daemonises, so it is not in the tree)."""
    alive = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in psutil.process_iter(["cmdline"]):
        if str(data_dir) in " ".join(p.info["cmdline"] or []):
            alive.append(p)
    return [" ".join(p.cmdline()) for p in alive if p.pid != os.getpid()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_db(servers: tuple[str, str]) -> Iterator[str]:
    """A database of the test's own: what the sweeper sends is this test's work alone."""
    with fresh_database(servers[0]) as url:
        yield url


@pytest.fixture
def train_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(TRAIN))
    return path


@embedded_only
def test_demo_whose_worker_cannot_start_stops_with_its_log(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cmd = run(["demo", "--out", "/proc/nowhere"], _env(tmp_path))
    code, _ = cmd.finish(timeout_s=120)
    text = cmd.text()
    assert code == 1, text
    assert "exited unexpectedly" in text and "cannot write to the output root" in text
    assert _left_behind(tmp_path / "data", []) == []


@embedded_only
def test_demo_says_within_seconds_that_its_worker_was_killed_and_stops_all(  # type: ignore[no-untyped-def]
    run, tmp_path: Path
) -> None:
    cmd = run(["demo", "--out", str(tmp_path / "out")], _env(tmp_path))
    cmd.wait_for("train job", timeout_s=120)
    (worker,) = _wait_workers(cmd.proc.pid, 1)
    tree = _tree(cmd.proc.pid)
    worker.kill()
    code, took = cmd.finish(timeout_s=30)
    assert code == 1, cmd.text()
    assert "killed by signal 9" in cmd.text() and "demo-worker.log" in cmd.text()
    assert took < 5 + 15, took  # noticed within 5 s, then everything stopped
    assert _left_behind(tmp_path / "data", tree) == []


@embedded_only
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_demo_and_every_process_it_started(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, sig: int, code: int
) -> None:
    cmd = run(["demo", "--out", str(tmp_path / "out")], _env(tmp_path))
    cmd.wait_for("train job", timeout_s=120)
    _wait_workers(cmd.proc.pid, 1)
    tree = _tree(cmd.proc.pid)
    os.kill(cmd.proc.pid, sig)
    got, took = cmd.finish(timeout_s=30)
    assert got == code, cmd.text()
    assert took <= 15, took
    assert _left_behind(tmp_path / "data", tree) == []


@embedded_only
def test_farm_up_restarts_a_crashed_worker_and_sigterm_stops_everything(  # type: ignore[no-untyped-def]
    run, tmp_path: Path
) -> None:
    env = _env(tmp_path, FARM_WORKER_START_S="2", FARM_OUTPUT_ROOT=str(tmp_path / "out"))
    cmd = run(["up", "--workers", "2", "--no-api"], env)
    cmd.wait_for("farm up:", timeout_s=120)
    first = _wait_workers(cmd.proc.pid, 2)
    time.sleep(3)  # past FARM_WORKER_START_S: a crash now is not a start failure
    first[0].kill()
    cmd.wait_for("restarting it in 1 s", timeout_s=5)
    cmd.wait_for("restarted", timeout_s=10)
    now = _wait_workers(cmd.proc.pid, 2)
    assert {p.pid for p in now} != {p.pid for p in first}
    tree = _tree(cmd.proc.pid)
    os.kill(cmd.proc.pid, signal.SIGTERM)
    code, took = cmd.finish(timeout_s=30)
    assert code == 143, cmd.text()
    assert took <= 15, took
    assert not (tmp_path / "data" / "runtime.json").exists()
    assert _left_behind(tmp_path / "data", tree) == []


@embedded_only
def test_farm_up_whose_worker_cannot_start_stops_and_sigint_exits_130(  # type: ignore[no-untyped-def]
    run, tmp_path: Path
) -> None:
    env = _env(tmp_path, FARM_OUTPUT_ROOT="/proc/nowhere")
    cmd = run(["up", "--no-api"], env)
    code, _ = cmd.finish(timeout_s=120)
    assert code == 1, cmd.text()
    assert "exited unexpectedly" in cmd.text() and "cannot write to the output root" in cmd.text()
    assert not (tmp_path / "data" / "runtime.json").exists()
    assert _left_behind(tmp_path / "data", []) == []
    ok = run(["up", "--no-api"], _env(tmp_path, FARM_OUTPUT_ROOT=str(tmp_path / "out")))
    ok.wait_for("farm up:", timeout_s=120)
    tree = _tree(ok.proc.pid) + _wait_workers(ok.proc.pid, 1)
    os.kill(ok.proc.pid, signal.SIGINT)
    code, took = ok.finish(timeout_s=30)
    assert code == 130, ok.text()
    assert took <= 15, took
    assert not (tmp_path / "data" / "runtime.json").exists()
    assert _left_behind(tmp_path / "data", tree) == []


@embedded_only
def test_submit_wait_runs_a_watched_worker_when_no_farm_is_up(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, train_yaml: Path
) -> None:
    bad = run(["submit", str(train_yaml), "--wait"], _env(tmp_path, FARM_OUTPUT_ROOT="/proc/x"))
    code, _ = bad.finish(timeout_s=120)
    assert code == 1, bad.text()
    assert "exited unexpectedly" in bad.text() and "submit-worker.log" in bad.text()
    good = run(["submit", str(train_yaml), "--wait"], _env(tmp_path))
    code, _ = good.finish(timeout_s=240)
    assert code == 0, good.text()
    assert _left_behind(tmp_path / "data", []) == []


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[str]:
    """A real Redis that wants a password the farm is not given."""
    port = _free_port()
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
         "--requirepass", "not-given", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def test_a_refused_password_is_said_once_and_every_command_stops(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, own_db: str, locked_redis: str, train_yaml: Path
) -> None:
    database_url = own_db
    settings = make_settings(database_url, locked_redis, tmp_path)
    env = _env(tmp_path, FARM_DATABASE_URL=database_url, FARM_BROKER_URL=locked_redis)
    sub = run(["submit", str(train_yaml)], env)
    code, _ = sub.finish(timeout_s=60)
    assert code == 1, sub.text()
    assert sub.text().count("refused authentication") == 1
    assert "is recorded and will be sent once this is fixed" in sub.text()
    sweep = run(["sweep", "--loop"], env)
    code, _ = sweep.finish(timeout_s=60)
    assert code == 1 and "refused authentication" in sweep.text(), sweep.text()
    demo = run(["demo", "--out", str(tmp_path / "out")], env)
    code, _ = demo.finish(timeout_s=120)
    assert code == 1 and "refused authentication" in demo.text(), demo.text()
    port = _free_port()
    api = run(["api", "--port", str(port)], env)
    token = create(settings, "fc")
    url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/openapi.json", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            assert api.proc.poll() is None and time.monotonic() < deadline, api.text()
            time.sleep(0.2)
    made = httpx.post(f"{url}/jobs", json={**TRAIN, "name": "fc-api"}, headers=auth, timeout=30)
    assert made.status_code == 201, made.text  # recorded: a retry would only find it again
    resumed = httpx.post(f"{url}/jobs/{made.json()['id']}/resume", headers=auth, timeout=30)
    assert resumed.status_code == 409, resumed.text  # not paused: refused as ever
    paused = httpx.post(f"{url}/jobs/{made.json()['id']}/pause", headers=auth, timeout=30)
    assert paused.status_code == 200 and paused.json()["paused"], paused.text
    health = httpx.get(f"{url}/health", timeout=30)
    assert health.status_code == 503 and health.json()["broker"] != "ok", health.text
    assert "refused authentication" in api.text()
    from farm.db import session_scope

    with session_scope(settings) as s:
        tasks = s.query(Task).all()
    assert len(tasks) >= 3 and all(t.sent_at is None for t in tasks)  # recorded, not sent


def test_a_broker_outage_is_retried_with_growing_backoff_until_it_is_back(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, own_db: str, train_yaml: Path
) -> None:
    database_url = own_db
    port = _free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    settings = make_settings(database_url, broker, tmp_path)
    env = _env(tmp_path, FARM_DATABASE_URL=database_url, FARM_BROKER_URL=broker)
    sub = run(["submit", str(train_yaml)], env)
    code, _ = sub.finish(timeout_s=60)
    assert code == 0, sub.text()  # recorded; the sweeper sends it once the broker is back
    job_id = int(sub.out.read_text().split()[-1])
    sweep = run(["sweep", "--loop"], {**env, "FARM_SWEEP_INTERVAL_S": "0.2"})
    sweep.wait_for("retrying in 4 s", timeout_s=30)
    text = sweep.text()
    assert "retrying in 1 s" in text and "retrying in 2 s" in text
    since = {line.split("since ")[1][:8] for line in text.splitlines() if "since " in line}
    assert len(since) == 1, text
    server = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sweep.wait_for("reachable again", timeout_s=30)
        from farm.db import session_scope

        with session_scope(settings) as s:
            tasks = s.query(Task).filter(Task.job_id == job_id).all()
        assert [t.sends for t in tasks if t.ready] == [1]
        os.kill(sweep.proc.pid, signal.SIGTERM)
        sweep.finish(timeout_s=15)
    finally:
        server.terminate()
        server.wait(10)
