"""Engines and sessions. Engines are made per process (never shared across a fork)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from farm.config import Settings

_engines: dict[tuple[int, str], Engine] = {}


def get_engine(settings: Settings) -> Engine:
    """One pooled engine per (process, URL): a forked child builds its own."""
    url = settings.sqlalchemy_url()
    key = (os.getpid(), url)
    engine = _engines.get(key)
    if engine is None:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
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
