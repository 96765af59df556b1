"""Schema migrations through Alembic, serialized across processes by an advisory lock."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from farm.config import Settings
from farm.db import get_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = 7_316_220_001


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", settings.sqlalchemy_url().replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe when several processes start at once."""
    _run(settings, lambda cfg: command.upgrade(cfg, revision))


def downgrade(settings: Settings, revision: str) -> None:
    _run(settings, lambda cfg: command.downgrade(cfg, revision))


def _run(settings: Settings, fn: object) -> None:
    engine = get_engine(settings)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        try:
            cfg = alembic_config(settings)
            cfg.attributes["connection"] = conn
            fn(cfg)  # type: ignore[operator]
            conn.commit()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            conn.commit()
