"""A real farm for integration tests: its own database and Redis index on real servers, real
worker processes started through ``farm worker``, and the sweeper as a real ``farm sweep``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy import make_url, select

from farm.celery_app import make_celery
from farm.config import Settings
from farm.db import dispose_engines, session_scope
from farm.migrate import upgrade
from farm.queries import job_detail, wait_for_job
from farm.runtime import child_env
from farm.specs import parse_spec
from farm.submit import submit

FAST = {
    "lease_s": 4.0,
    "heartbeat_s": 1.0,
    "unclaimed_s": 3.0,
    "sweep_interval_s": 0.5,
    "retry_backoff_s": 0.2,
}


def admin_url(database_url: str) -> str:
    url = make_url(database_url)
    return url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


@contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    name = f"farm_t_{uuid.uuid4().hex[:10]}"
    admin = admin_url(base_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engines()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Farm:
    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.celery = make_celery(settings)
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis = redis.Redis.from_url(str(settings.broker_url))

    def _spawn(
        self,
        args: list[str],
        tag: str,
        *,
        prefix: Sequence[str] = (),
        env_overrides: Mapping[str, str] | None = None,
        module: str = "farm",
    ) -> subprocess.Popen[bytes]:
        """Start ``farm ARGS`` in its own session; ``prefix`` wraps the command (for example
        ``ip netns exec NS``), ``env_overrides`` replace variables of its environment and
        ``module`` runs another entry point with the same CLI."""
        log = open(self.log_dir / f"{tag}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", module, *args],
            env={**child_env(self.settings), **(env_overrides or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start_worker(
        self,
        queues: str = "gpu,cpu",
        *,
        name: str | None = None,
        prefix: Sequence[str] = (),
        env_overrides: Mapping[str, str] | None = None,
        tag: str = "worker",
        module: str = "farm",
        options: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        args = ["worker", "--queues", queues, *(["--name", name] if name else []), *options]
        return self._spawn(args, tag, prefix=prefix, env_overrides=env_overrides, module=module)

    def start_sweeper(
        self, env_overrides: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        return self._spawn(["sweep", "--loop"], "sweeper", env_overrides=env_overrides)

    def submit(self, spec: dict[str, Any], **kw: Any) -> int:
        return submit(self.settings, self.celery, parse_spec(spec), **kw).job_id

    def wait(self, job_id: int, timeout_s: float = 180) -> dict[str, Any]:
        return wait_for_job(self.settings, job_id, timeout_s=timeout_s, poll_s=0.2)

    def detail(self, job_id: int) -> dict[str, Any]:
        return job_detail(self.settings, str(job_id))

    def session(self):  # type: ignore[no-untyped-def]
        return session_scope(self.settings)

    def wait_until(
        self, predicate: Any, timeout_s: float = 60, what: str = "", poll_s: float = 0.1
    ) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(poll_s)
        raise TimeoutError(f"timed out waiting for {what or predicate}")

    def kill_first_attempt_at(self, job_id: int, counter: str, at_least: int) -> None:
        """SIGKILL the pool process running the job's only task once its first attempt is
        past a resume file: the file on disk, or its progress ``counter`` (a step, an epoch)
        at ``at_least``. Progress is written at most once a second, and on a quiet box a tiny
        training can finish inside that second, so the file is watched too."""
        from farm.models import Job, Task
        from farm.outputs import default_output
        from workers.checkpoint import resume_path

        with self.session() as s:
            name = s.execute(select(Job.name).where(Job.id == job_id)).scalar_one()
        resume = resume_path(self.settings.output_root_abs() / default_output("train", name))

        def pid_when_there() -> int | None:
            with self.session() as s:
                task = s.execute(select(Task).where(Task.job_id == job_id)).scalar_one()
            if task.attempts != 1 or task.worker_pid is None:
                return None
            done = (task.progress or {}).get(counter, 0)
            return task.worker_pid if done >= at_least or resume.is_file() else None

        pid = self.wait_until(pid_when_there, 120, f"{counter} {at_least}", poll_s=0.02)
        os.kill(pid, signal.SIGKILL)

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        for p in self.procs:
            self.stop(p)
        self.redis.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )


def make_settings(database_url: str, broker_url: str, root: Path, **overrides: Any) -> Settings:
    s = Settings(
        database_url=database_url,
        broker_url=broker_url,
        output_root=root / "out",
        data_dir=root / "data",
        **{**FAST, **overrides},
    )
    upgrade(s)
    return s
