"""What the API speaks: pydantic schemas, separate from the ORM models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from farm.states import JobState


class Problem(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a message, and for invalid input each field with its reason."""

    error: str
    problems: list[Problem] = Field(default_factory=list)


class TaskCounts(BaseModel):
    model_config = ConfigDict(extra="allow")
    total: int


class JobPublic(BaseModel):
    id: int
    name: str
    kind: str
    state: JobState
    priority: int
    paused: bool
    tags: list[str]
    pool: str | None
    submitter: str
    tasks: TaskCounts
    progress: float = Field(description="share of tasks succeeded, 0..1")
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12, "name": "sh010", "kind": "render", "state": "running",
                    "priority": 50, "paused": False, "tags": ["seq01"], "pool": None,
                    "submitter": "pipeline", "tasks": {"total": 5, "succeeded": 2, "running": 1,
                    "queued": 2}, "progress": 0.4, "error": None,
                    "created_at": "2026-11-25T10:00:00+00:00",
                    "started_at": "2026-11-25T10:00:01+00:00", "finished_at": None,
                }
            ]
        }
    )  # fmt: skip


class TaskPublic(BaseModel):
    id: int
    kind: str
    index: int
    frames: str | None
    state: str
    attempts: int
    max_attempts: int
    worker: str | None
    progress: dict[str, Any] | None
    error: str | None


class ArtifactPublic(BaseModel):
    id: int
    kind: str
    path: str
    size: int
    sha256: str
    meta: dict[str, Any]
    download: str = Field(description="URL path that serves the file (supports Range)")


class WorkerFailures(BaseModel):
    worker: str
    failures: int
    blocked: bool = Field(description="the worker receives none of this job's tasks any more")
    blocked_at: str | None
    last_error: str | None


class JobDetail(JobPublic):
    spec: dict[str, Any]
    task_list: list[TaskPublic]
    artifacts: list[ArtifactPublic]
    worker_failures: list[WorkerFailures] = Field(
        description="workers that failed this job's tasks; blocked ones get no more of them"
    )


class WorkerPublic(BaseModel):
    name: str = Field(description="node name: pool, GPU and host (default-gpu0@render07)")
    host: str
    pool: str | None
    gpu: int | None
    queues: str
    pid: int
    state: str = Field(description="starting | idle | busy | draining | drained | stopped | lost")
    task_id: int | None
    job_id: int | None
    frames: str | None
    tasks_succeeded: int
    tasks_failed: int
    last_seen_s: float = Field(description="seconds since its last heartbeat")
    started_at: str
    versions: dict[str, Any]


class JobPage(BaseModel):
    items: list[JobPublic]
    next_before: int | None = Field(description="pass as ?before= for the next page")


class PriorityChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"priority": 90}]})
    priority: int = Field(ge=0, le=100)


class Health(BaseModel):
    database: str
    broker: str


class LogLinePublic(BaseModel):
    """One line of a task attempt's log: one JSON object a line of the answer."""

    task_id: int
    attempt: int
    seq: int = Field(description="the line's number in its attempt, from 0")
    at: float = Field(description="when it was written, seconds since the epoch")
    level: str = Field(
        description="info, warning, error, progress; marker: the dropped lines; end: a followed"
        " task has ended",
    )
    text: str
