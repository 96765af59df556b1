"""limits: named counters for scarce resources; the limits each task holds

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_HOLDING = (
    "cardinality(limits) > 0 AND (state = 'running' OR (state = 'queued' AND sent_at IS NOT NULL))"
)


def upgrade() -> None:
    op.create_table(
        "limits",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("count >= 0", name="ck_limits_count_not_negative"),
        sa.PrimaryKeyConstraint("name", name="pk_limits"),
    )
    op.add_column(
        "tasks",
        sa.Column("limits", sa.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
    )
    op.create_index("ix_tasks_holding", "tasks", ["id"], postgresql_where=sa.text(_HOLDING))


def downgrade() -> None:
    op.drop_index("ix_tasks_holding", table_name="tasks")
    op.drop_column("tasks", "limits")
    op.drop_table("limits")
