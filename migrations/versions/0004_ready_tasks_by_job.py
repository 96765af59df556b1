"""ready tasks by job: the index a worker's chained claim reads

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

READY = "state = 'queued' AND sent_at IS NULL AND ready"


def upgrade() -> None:
    op.create_index(
        "ix_tasks_ready_job",
        "tasks",
        ["job_id", "id"],
        unique=False,
        postgresql_where=sa.text(READY),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_ready_job", table_name="tasks", postgresql_where=sa.text(READY))
