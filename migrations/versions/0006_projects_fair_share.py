"""projects: weights and caps for the fair share; the project on jobs and tasks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_READY = "state = 'queued' AND sent_at IS NULL AND ready"
_RUNNING = "state = 'running'"
_SENT = "state = 'queued' AND sent_at IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("weight", sa.Float(), server_default="1", nullable=False),
        sa.Column("max_running", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("weight > 0", name="ck_projects_weight_positive"),
        sa.CheckConstraint(
            "max_running IS NULL OR max_running >= 0", name="ck_projects_max_running_not_negative"
        ),
        sa.PrimaryKeyConstraint("name", name="pk_projects"),
    )
    op.execute("INSERT INTO projects (name) VALUES ('default')")
    op.add_column(
        "jobs", sa.Column("project", sa.String(length=64), server_default="default", nullable=False)
    )
    op.create_foreign_key("fk_jobs_project_projects", "jobs", "projects", ["project"], ["name"])
    op.add_column(
        "tasks",
        sa.Column("project", sa.String(length=64), server_default="default", nullable=False),
    )
    for name, where in (("ix_tasks_running_queue", _RUNNING), ("ix_tasks_sent_queue", _SENT)):
        op.drop_index(name, table_name="tasks")
        op.create_index(name, "tasks", ["queue", "project"], postgresql_where=sa.text(where))
    op.create_index(
        "ix_tasks_ready_project",
        "tasks",
        ["queue", "project", sa.text("priority DESC"), "id"],
        postgresql_where=sa.text(_READY),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_ready_project", table_name="tasks")
    for name, where in (("ix_tasks_running_queue", _RUNNING), ("ix_tasks_sent_queue", _SENT)):
        op.drop_index(name, table_name="tasks")
        op.create_index(name, "tasks", ["queue"], postgresql_where=sa.text(where))
    op.drop_column("tasks", "project")
    op.drop_constraint("fk_jobs_project_projects", "jobs", type_="foreignkey")
    op.drop_column("jobs", "project")
    op.drop_table("projects")
