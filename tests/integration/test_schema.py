"""Migrations are the schema: they agree with the models and go down and up again."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from farm.db import get_engine
from farm.migrate import downgrade, upgrade
from farm.models import Base
from tests.integration.harness import make_settings


def test_models_and_migrations_agree_and_round_trip(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, "redis://unused", tmp_path)
    engine = get_engine(settings)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    downgrade(settings, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(settings)
    assert {"jobs", "tasks", "artifacts", "events", "job_dependencies"} <= set(
        inspect(engine).get_table_names()
    )
