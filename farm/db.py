"""Engines and sessions. Engines are made per process (never shared across a fork)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from farm.config import Settings

# A peer that vanished mid-transaction (a worker host cut off) must not hold its row locks
# for the kernel's default two hours: the server drops a connection idle in a transaction,
# and both ends probe idle TCP connections.
SESSION_OPTIONS = (
    "-c idle_in_transaction_session_timeout=60000 -c tcp_keepalives_idle=15"
    " -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
_engines: dict[tuple[int, str], Engine] = {}


def get_engine(settings: Settings) -> Engine:
    """One pooled engine per (process, URL): a forked child builds its own."""
    url = settings.sqlalchemy_url()
    key = (os.getpid(), url)
    engine = _engines.get(key)
    if engine is None:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=5,
            connect_args={"connect_timeout": 10, "options": SESSION_OPTIONS, **KEEPALIVES},
        )
        _engines[key] = engine
    return engine


def dispose_engines() -> None:
    for key, engine in list(_engines.items()):
        if key[0] == os.getpid():
            engine.dispose()
        _engines.pop(key, None)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A unit of work: committed on success, rolled back on any exception."""
    factory = sessionmaker(bind=get_engine(settings), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
