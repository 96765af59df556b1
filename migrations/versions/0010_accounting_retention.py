"""accounting survives retention: attempts keep their job's submitter and pool and no longer
reference jobs or tasks (a purge deletes those, never the bill); indexes a purge needs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_FINISHED = "state IN ('succeeded', 'failed', 'canceled')"


def upgrade() -> None:
    op.drop_constraint("fk_attempts_task_id_tasks", "attempts", type_="foreignkey")
    op.drop_constraint("fk_attempts_job_id_jobs", "attempts", type_="foreignkey")
    op.add_column(
        "attempts",
        sa.Column("submitter", sa.String(length=128), server_default="cli", nullable=False),
    )
    op.add_column("attempts", sa.Column("pool", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE attempts a SET submitter = j.submitter, pool = j.pool FROM jobs j"
        " WHERE j.id = a.job_id"
    )
    # Retention's scan of old finished jobs, and the lookups its deletes make: each deleted
    # task's events and artifacts (their foreign keys' actions), each job's deliveries, and
    # whether another job's artifact names a file it would delete.
    op.create_index(
        "ix_jobs_finished_at", "jobs", ["finished_at", "id"], postgresql_where=sa.text(_FINISHED)
    )
    op.create_index("ix_events_task_id", "events", ["task_id"])
    op.create_index("ix_artifacts_task_id", "artifacts", ["task_id"])
    op.create_index("ix_artifacts_path", "artifacts", ["path"], postgresql_using="hash")
    op.create_index("ix_webhook_deliveries_job_id", "webhook_deliveries", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_job_id", table_name="webhook_deliveries")
    op.drop_index("ix_artifacts_path", table_name="artifacts")
    op.drop_index("ix_artifacts_task_id", table_name="artifacts")
    op.drop_index("ix_events_task_id", table_name="events")
    op.drop_index("ix_jobs_finished_at", table_name="jobs")
    op.drop_column("attempts", "pool")
    op.drop_column("attempts", "submitter")
    # The bill of jobs purged since has no job to point to any more.
    op.execute(
        "DELETE FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = a.task_id)"
    )
    op.create_foreign_key(
        "fk_attempts_job_id_jobs", "attempts", "jobs", ["job_id"], ["id"], ondelete="CASCADE"
    )
    op.create_foreign_key(
        "fk_attempts_task_id_tasks", "attempts", "tasks", ["task_id"], ["id"], ondelete="CASCADE"
    )
