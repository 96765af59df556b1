"""Engines and sessions. Engines are made per process (never shared across a fork)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
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
_engines: dict[tuple[int, str, bool], tuple[Engine, sessionmaker[Session]]] = {}


def get_engine(settings: Settings, *, ping: bool = True) -> Engine:
    """One pooled engine per (process, URL, ping): a forked child builds its own.

    ``ping`` tests a pooled connection before handing it out (a round trip), so a restarted
    database costs nobody an error. The workers' per-task writes skip it: they retry through
    outages themselves (``workers.claims.with_db_retry``), and the first failure renews the
    pool."""
    return _pooled(settings, ping)[0]


def _pooled(settings: Settings, ping: bool) -> tuple[Engine, sessionmaker[Session]]:
    # The session factory is made once per engine: each sessionmaker defines a new Session
    # class, which SQLAlchemy's event system must register, far dearer than a session.
    url = settings.sqlalchemy_url()
    key = (os.getpid(), url, ping)
    pooled = _engines.get(key)
    if pooled is None:
        engine = create_engine(
            url,
            pool_pre_ping=ping,
            pool_size=5,
            max_overflow=5,
            connect_args={"connect_timeout": 10, "options": SESSION_OPTIONS, **KEEPALIVES},
        )
        pooled = _engines[key] = (engine, sessionmaker(bind=engine, expire_on_commit=False))
    return pooled


def dispose_engines() -> None:
    for key, (engine, _) in list(_engines.items()):
        if key[0] == os.getpid():
            engine.dispose()
        _engines.pop(key, None)


@contextmanager
def session_scope(settings: Settings, *, ping: bool = True) -> Iterator[Session]:
    """A unit of work: committed on success, rolled back on any exception."""
    session = _pooled(settings, ping)[1]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_RELAXED = text("SET LOCAL synchronous_commit = off")


def relax_commit(session: Session) -> None:
    """Let this transaction's commit return before its WAL reaches the disk (about 3.5 ms of
    fsync on the box the benchmarks ran on), for the worker's hot writes whose loss in a
    server crash the farm already survives: a lost claim looks like a lost message (the
    sweeper sends it again, and the worker's late completion records nothing), a lost chunk
    success like a lost worker (its lease expires, it runs again). Nothing is lost that a
    later synchronous commit, such as the one that finishes the job, has not made durable:
    WAL is flushed in order. Never for a transaction that finishes a job or takes a
    submission."""
    session.execute(_RELAXED)
