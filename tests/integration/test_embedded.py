"""The embedded default starts real servers under the data directory and stops them."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from farm.embedded import EmbeddedServers, read_runtime
from tests.integration.conftest import private_dir


def test_embedded_servers_start_serve_and_stop() -> None:
    with private_dir("farm-test-embedded-unit-") as tmp_path:
        _start_serve_and_stop(tmp_path)


def _start_serve_and_stop(tmp_path: Path) -> None:
    with EmbeddedServers(tmp_path / "farm") as servers:
        servers.write_runtime()
        assert read_runtime(tmp_path / "farm") == {
            "database_url": servers.database_url,
            "broker_url": servers.broker_url,
        }
        with psycopg.connect(servers.database_url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("farm",)
        client = redis.Redis.from_url(servers.broker_url)
        assert client.ping()
        servers.remove_runtime()
    assert (tmp_path / "farm" / "postgres" / "PG_VERSION").is_file()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert read_runtime(tmp_path / "farm") is None
