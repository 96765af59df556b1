"""The state machine: statuses, the allowed transitions with their reasons, job derivation.

Every status change goes through :func:`farm.lifecycle.transition`, which consults
:data:`TRANSITIONS`; nothing else assigns a status. The functions here are pure.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class TaskKind(enum.StrEnum):
    TRAIN = "train"
    RENDER_CHUNK = "render_chunk"
    ASSEMBLE = "assemble"
    # A render that is one image (a contact sheet of samples): no chunks, no assembly.
    SAMPLE_GRID = "sample_grid"


T = TaskState
TRANSITIONS: dict[tuple[TaskState, TaskState], str] = {
    (T.QUEUED, T.RUNNING): "a worker claimed the task",
    (T.QUEUED, T.CANCELED): "the job was canceled before the task ran",
    (
        T.QUEUED,
        T.FAILED,
    ): "the task cannot run: a dependency failed or its message was lost too often",
    (T.RUNNING, T.SUCCEEDED): "the worker finished and recorded its outputs",
    (T.RUNNING, T.QUEUED): "the attempt failed or its lease expired; attempts remain",
    (T.RUNNING, T.FAILED): "the attempt failed and no attempts remain",
    (T.RUNNING, T.CANCELED): "the job was canceled while the task ran",
    (T.FAILED, T.QUEUED): "an operator retried the failed task",
}

FINISHED_TASK = frozenset({T.SUCCEEDED, T.FAILED, T.CANCELED})
FINISHED_JOB = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})


def can_transition(src: TaskState, dst: TaskState) -> bool:
    return (src, dst) in TRANSITIONS


def derive_job_state(states: Iterable[TaskState]) -> JobState:
    """A job's state is a function of its tasks' states, never stored independently.

    Any failed task fails the job (its other chunks may still finish, so a retry re-runs
    only what failed); a job with canceled tasks and no failures is canceled.
    """
    seen = list(states)
    if not seen:
        return JobState.QUEUED
    if any(s is T.FAILED for s in seen):
        return JobState.FAILED
    if all(s is T.SUCCEEDED for s in seen):
        return JobState.SUCCEEDED
    if any(s is T.CANCELED for s in seen) and not any(s is T.RUNNING for s in seen):
        return JobState.CANCELED
    if any(s in (T.RUNNING, T.SUCCEEDED) for s in seen):
        return JobState.RUNNING
    return JobState.QUEUED


def retry_delay_s(attempt: int, base_s: float, cap_s: float = 300.0) -> float:
    """Exponential backoff before re-sending a failed attempt (attempt counts from 1)."""
    if base_s <= 0:
        return 0.0
    return float(min(cap_s, base_s * 2 ** max(0, attempt - 1)))
