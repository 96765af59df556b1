"""job task counters, ready tasks index, worker registry, worker blocklist

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATES = ("queued", "running", "succeeded", "failed", "canceled")
READY = "state = 'queued' AND sent_at IS NULL AND ready"
SENT = "state = 'queued' AND sent_at IS NOT NULL"


def upgrade() -> None:
    for state in STATES:
        op.add_column(
            "jobs", sa.Column(f"tasks_{state}", sa.Integer(), server_default="0", nullable=False)
        )
    op.add_column(
        "tasks", sa.Column("ready", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.add_column("tasks", sa.Column("priority", sa.Integer(), server_default="50", nullable=False))
    op.add_column("tasks", sa.Column("stage_end", sa.Integer(), server_default="1", nullable=False))
    op.execute(
        "UPDATE tasks SET stage_end = (SELECT count(*) FROM tasks e"
        " WHERE e.job_id = tasks.job_id AND e.stage <= tasks.stage)"
    )
    counts = ", ".join(
        f"tasks_{s} = (SELECT count(*) FROM tasks t WHERE t.job_id = jobs.id AND t.state = '{s}')"
        for s in STATES
    )
    op.execute(f"UPDATE jobs SET {counts}")
    op.execute("UPDATE tasks SET priority = jobs.priority FROM jobs WHERE jobs.id = tasks.job_id")
    # Ready: every earlier stage succeeded and every dependency succeeded.
    op.execute(
        "UPDATE tasks SET ready = true WHERE NOT EXISTS (SELECT 1 FROM tasks e"
        " WHERE e.job_id = tasks.job_id AND e.stage < tasks.stage AND e.state <> 'succeeded')"
        " AND NOT EXISTS (SELECT 1 FROM job_dependencies d JOIN jobs j ON j.id = d.depends_on_id"
        " WHERE d.job_id = tasks.job_id AND j.state <> 'succeeded')"
    )
    op.create_index(
        "ix_tasks_ready",
        "tasks",
        ["queue", sa.text("priority DESC"), "id"],
        unique=False,
        postgresql_where=sa.text(READY),
    )
    op.create_index(
        "ix_tasks_running_queue",
        "tasks",
        ["queue"],
        unique=False,
        postgresql_where=sa.text("state = 'running'"),
    )
    op.create_index(
        "ix_tasks_sent_queue",
        "tasks",
        ["queue"],
        unique=False,
        postgresql_where=sa.text(SENT),
    )
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pool", sa.String(length=64), nullable=True),
        sa.Column("gpu", sa.Integer(), nullable=True),
        sa.Column("queues", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("versions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("draining", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("tasks_succeeded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("tasks_failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_workers_task_id_tasks"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workers")),
    )
    op.create_table(
        "worker_failures",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_worker_failures_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "worker", name=op.f("pk_worker_failures")),
    )


def downgrade() -> None:
    op.drop_table("worker_failures")
    op.drop_table("workers")
    op.drop_index("ix_tasks_sent_queue", table_name="tasks", postgresql_where=sa.text(SENT))
    op.drop_index(
        "ix_tasks_running_queue", table_name="tasks", postgresql_where=sa.text("state = 'running'")
    )
    op.drop_index("ix_tasks_ready", table_name="tasks", postgresql_where=sa.text(READY))
    op.drop_column("tasks", "stage_end")
    op.drop_column("tasks", "priority")
    op.drop_column("tasks", "ready")
    for state in STATES:
        op.drop_column("jobs", f"tasks_{state}")
