"""Database models. PostgreSQL is the source of truth; the broker only carries wake-ups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from farm.states import JobState, TaskKind, TaskState

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# A task that holds its limits: running, or sent and not yet claimed (farm.limits).
HOLDING = (
    "cardinality(limits) > 0 AND (state = 'running' OR (state = 'queued' AND sent_at IS NOT NULL))"
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        create_constraint=False,
    )


Timestamp = DateTime(timezone=True)


class Project(Base):
    """A share of the farm (farm.policy): under contention its running tasks per queue stay
    in proportion to ``weight``, never above ``max_running`` (NULL: no cap)."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    max_running: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())

    __table_args__ = (
        CheckConstraint("weight > 0", name="weight_positive"),
        CheckConstraint("max_running IS NULL OR max_running >= 0", name="max_running_not_negative"),
    )


class Limit(Base):
    """A named counter for a scarce resource (farm.limits): never more tasks running or sent
    that hold it than ``count``, farm-wide. What is held is counted from task rows, so a
    task the sweeper requeues frees what it held."""

    __tablename__ = "limits"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())

    __table_args__ = (CheckConstraint("count >= 0", name="count_not_negative"),)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[JobState] = mapped_column(_enum(JobState), default=JobState.QUEUED)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB)
    priority: Mapped[int] = mapped_column(Integer, default=50, server_default="50")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    error: Mapped[str | None] = mapped_column(Text)
    # Who submitted it (the API token's name, or "cli"), its tags and worker pool.
    submitter: Mapped[str] = mapped_column(String(128), default="cli", server_default="cli")
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list, server_default="{}")
    pool: Mapped[str | None] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(
        ForeignKey("projects.name"), default="default", server_default="default"
    )
    # A paused job's queued tasks are held back; running ones finish.
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_events: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), default=list, server_default="{}"
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # How many of its tasks are in each state, kept by every transition in its transaction:
    # the job's state derives from these without reading its tasks (farm.lifecycle).
    tasks_queued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tasks_running: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tasks_succeeded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tasks_failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tasks_canceled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    tasks: Mapped[list[Task]] = relationship(back_populates="job", order_by="Task.id")

    __table_args__ = (
        Index("ix_jobs_name", "name"),
        Index("ix_jobs_state_created", "state", "created_at"),
        Index("ix_jobs_submitter", "submitter"),
        Index("ix_jobs_tags", "tags", postgresql_using="gin"),
        # Retention's scan of old finished jobs (farm.retention).
        Index(
            "ix_jobs_finished_at",
            "finished_at",
            "id",
            postgresql_where=text("state IN ('succeeded', 'failed', 'canceled')"),
        ),
    )


class JobDependency(Base):
    """The job waits for ``depends_on_id`` to succeed, and fails if it fails."""

    __tablename__ = "job_dependencies"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    depends_on_id: Mapped[int] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_job_dependencies_depends_on_id", "depends_on_id"),)


class Task(Base):
    """One unit of work: a training run, one chunk of frames, or the assembly of a video."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[TaskKind] = mapped_column(_enum(TaskKind))
    # Tasks of stage n+1 start only once every task of stage n has succeeded.
    stage: Mapped[int] = mapped_column(Integer, default=0)
    index: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[str] = mapped_column(String(64))
    frames: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    frame_count: Mapped[int] = mapped_column(Integer, default=0)
    # Every earlier stage of its job, and every job it waits for, has succeeded. Set once
    # (submission, a stage's last success, a dependency's success) and never cleared, so the
    # dispatcher reads the ready work off one index instead of re-deriving it per pass.
    ready: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Tasks of the job up to and including this one's stage. No task leaves SUCCEEDED and a
    # stage becomes ready only when the earlier ones have succeeded, so the stage is done
    # exactly when the job's ``tasks_succeeded`` reaches this (farm.lifecycle).
    stage_end: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The job's priority and project, copied so that the ready indexes are in send order.
    priority: Mapped[int] = mapped_column(Integer, default=50, server_default="50")
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    # The limits (farm.limits) the task holds while running or sent: its job's ``limits``.
    limits: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list, server_default="{}")
    state: Mapped[TaskState] = mapped_column(_enum(TaskState), default=TaskState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    not_before: Mapped[datetime | None] = mapped_column(Timestamp)
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    worker: Mapped[str | None] = mapped_column(String(255))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)

    job: Mapped[Job] = relationship(back_populates="tasks")

    __table_args__ = (
        Index("ix_tasks_job_id_stage", "job_id", "stage"),
        # The dispatcher's and the sweeper's hot queries touch only unfinished tasks.
        Index("ix_tasks_queued", "sent_at", postgresql_where=text("state = 'queued'")),
        Index(
            "ix_tasks_running_lease", "lease_expires_at", postgresql_where=text("state = 'running'")
        ),
        # A queue's dispatch window counts these; as index-only scans over entries of live
        # rows (an index scan marks the dead ones), not bitmap scans visiting every dead row.
        # By project too: the fair share counts each project's tasks in flight off these.
        Index(
            "ix_tasks_running_queue",
            "queue",
            "project",
            postgresql_where=text("state = 'running'"),
        ),
        Index(
            "ix_tasks_sent_queue",
            "queue",
            "project",
            postgresql_where=text("state = 'queued' AND sent_at IS NOT NULL"),
        ),
        Index(
            "ix_tasks_ready",
            "queue",
            text("priority DESC"),
            "id",
            postgresql_where=text("state = 'queued' AND sent_at IS NULL AND ready"),
        ),
        # Each project's ready tasks in send order: the fair-share pick reads one probe per
        # project off this (farm.policy).
        Index(
            "ix_tasks_ready_project",
            "queue",
            "project",
            text("priority DESC"),
            "id",
            postgresql_where=text("state = 'queued' AND sent_at IS NULL AND ready"),
        ),
        # Tasks holding a limit (running or sent, with limits): what farm.limits counts.
        Index(
            "ix_tasks_holding",
            "id",
            postgresql_where=text(HOLDING),
        ),
        # A job's ready tasks in order: what a worker's chained claim takes next.
        Index(
            "ix_tasks_ready_job",
            "job_id",
            "id",
            postgresql_where=text("state = 'queued' AND sent_at IS NULL AND ready"),
        ),
    )


class Attempt(Base):
    """One attempt's accounting (farm.usage): its wall time on the device it held. Written in
    the statement that ends the attempt; a dead worker's is written by the sweeper, counted
    up to its lease's expiry and marked ``lost``; a canceled one by the cancel, and moved on
    to when its worker stopped. The bill outlives the job: ``task_id`` and ``job_id`` are
    plain ids, not foreign keys, and the job's project, submitter and pool are copied in,
    so a purge (farm.retention) leaves every roll-up as it was."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_id: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[int] = mapped_column(BigInteger)
    project: Mapped[str] = mapped_column(String(64))
    submitter: Mapped[str] = mapped_column(String(128), default="cli", server_default="cli")
    pool: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(255))
    # "cuda:N <model>" or "cpu"
    device: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    ended_at: Mapped[datetime] = mapped_column(Timestamp)
    # succeeded | failed | retried (failed, queued again) | lost (its worker died) | canceled
    outcome: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("task_id", "attempt", name="uq_attempts_task_id"),
        Index("ix_attempts_ended_at", "ended_at"),
    )


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())

    __table_args__ = (
        # A task that runs twice rewrites the same artifact row instead of adding one.
        Index("uq_artifacts_job_id_path", "job_id", "path", unique=True),
        # What deleting a task (its foreign key's SET NULL) looks up; whether another job's
        # artifact names a file a purge would delete (hash: a path has no length limit).
        Index("ix_artifacts_task_id", "task_id"),
        Index("ix_artifacts_path", "path", postgresql_using="hash"),
    )


class TaskLog(Base):
    """One attempt's log (see :mod:`farm.logbuffer`): its head and tail lines as
    ``[seq, at, level, text]`` rows, rewritten whole by the worker about every second, so a
    worker killed mid-task leaves it as of its last flush. ``done`` once the attempt ended."""

    __tablename__ = "task_logs"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker: Mapped[str | None] = mapped_column(String(255))
    lines: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    next_seq: Mapped[int] = mapped_column(Integer, default=0)
    dropped_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class Event(Base):
    """Every state transition, with time, worker host, attempt number and error text."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String(255))
    attempt: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_events_job_id_at", "job_id", "at"),
        # What deleting a task (its foreign key's cascade) looks up: a purge's every task.
        Index("ix_events_task_id", "task_id"),
    )


class Worker(Base):
    """A worker process as it reports itself; its state shown to people derives from
    ``state`` and how long ago it was last heard from (:func:`farm.registry.shown_state`)."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pool: Mapped[str | None] = mapped_column(String(64))
    gpu: Mapped[int | None] = mapped_column(Integer)
    queues: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    versions: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # idle | busy | stopped (what the worker last said; "lost" is derived, never stored)
    state: Mapped[str] = mapped_column(String(16), default="idle")
    # Asked to take no more work (``farm worker --drain NAME``); the worker obeys at its
    # next heartbeat, and its claims refuse new tasks from then on.
    draining: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    tasks_succeeded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tasks_failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class WorkerFailure(Base):
    """How often a worker failed one job's tasks; at ``FARM_BLOCK_AFTER`` failures the worker
    is blocked from that job (the "bad worker" rule) and its tasks go elsewhere."""

    __tablename__ = "worker_failures"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    worker: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    blocked_at: Mapped[datetime | None] = mapped_column(Timestamp)


class ApiToken(Base):
    """A bearer token for the API; only its sha256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # May change the shared farm's projects and limits (farm.api.admin); never read-only.
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)


class WebhookDelivery(Base):
    """One job event to deliver to the job's callback URL, retried with backoff."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # pending -> delivered | failed (gave up after the retry window)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        Index("ix_webhook_deliveries_job_id", "job_id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )


class AuditLog(Base):
    """Who did what (farm.audit): one row per operator action, written in its transaction."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    # the API token's name, or FARM_SUBMITTER / cli:<user> for the CLI on the database
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    # job | worker | token | project | limit
    target_kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
    )
