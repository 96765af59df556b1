"""Liveness of the two servers the farm needs."""

from __future__ import annotations

from celery import Celery
from sqlalchemy import text

from farm.config import Settings
from farm.db import get_engine


def check(settings: Settings, celery: Celery) -> tuple[str, str]:
    try:
        with get_engine(settings).connect() as conn:
            conn.execute(text("SELECT 1"))
        db = "ok"
    except Exception as e:
        db = f"error: {type(e).__name__}"
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        broker = "ok"
    except Exception as e:
        broker = f"error: {type(e).__name__}"
    return db, broker
