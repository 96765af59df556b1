"""What a stage is given and what it gives back: the task it runs (:class:`TaskContext`), the
outputs it made (:class:`Result`), and the failure another attempt cannot fix
(:class:`PermanentError`). Stages, trainers and modes import these and nothing else of the
worker's machinery."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import InterfaceError, OperationalError

from farm.config import Settings
from farm.db import session_scope
from farm.dispatch import Outgoing
from farm.errors import TaskLost
from farm.models import Task
from farm.states import TaskKind

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """A failure another attempt cannot fix (bad data set, corrupt checkpoint): the task
    fails at once instead of being retried."""


@dataclass
class Output:
    kind: str
    path: Path
    size: int
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    outputs: list[Output] = field(default_factory=list)
    # Artifact kinds of this job that the success supersedes (rows go in the same commit).
    supersedes: tuple[str, ...] = ()
    # Runs only once the success is committed (e.g. deleting the segments an assembly used).
    after_commit: Callable[[], None] | None = None


@dataclass
class TaskContext:
    settings: Settings
    task_id: int
    job_id: int
    job_name: str
    kind: TaskKind
    attempt: int
    spec: dict[str, Any]
    frames: str | None
    position: int
    frame_count: int
    index: int
    worker: str
    queue: str = ""
    max_attempts: int = 1
    outgoing: list[Outgoing] = field(default_factory=list)
    # The queues this worker consumes: a stage its success opens in one of them it may take.
    consumes: frozenset[str] = frozenset()
    lost: threading.Event = field(default_factory=threading.Event)
    # Where the stage's own lines go (the attempt's log, :mod:`workers.tasklog`), beside
    # the progress row: set by the runner for the attempt, None outside one.
    log_line: Callable[[str], None] | None = None
    # A task's first progress is written a ``min_interval_s`` after it starts, like the next
    # ones: a short task writes none (its outcome says it all).
    _last_progress: float = field(default_factory=time.monotonic)
    # The fair share let this delivery's chain go on (farm.dispatch.chain_share), decided
    # once a delivery: its chain lasts FARM_CHAIN_S at most, so the decision is that fresh;
    # the projects it saw, so that one arriving since ends the chain. None: not decided.
    share_known: frozenset[str] | None = None
    # The newest checkpoint of the jobs this one depends on, read with the claim (None: none
    # then, or not read): what ``checkpoint: job:<name>`` resolves to.
    dependency_checkpoint: str | None = None
    # When the progress values last changed (monotonic; 0: never): what stall_s watches.
    progress_moved_at: float = 0.0
    _last_values: dict[str, Any] | None = None

    def check(self) -> None:
        """Raise TaskLost if the task was taken from us; stages call this between batches."""
        if self.lost.is_set():
            raise TaskLost(f"task {self.task_id} attempt {self.attempt} is no longer ours")

    def progress(self, values: dict[str, Any], *, min_interval_s: float = 1.0) -> None:
        now = time.monotonic()
        if values != self._last_values:
            self._last_values, self.progress_moved_at = dict(values), now
        if now - self._last_progress < min_interval_s:
            return
        self._last_progress = now
        if self.log_line is not None:
            self.log_line("progress " + " ".join(f"{k}={v}" for k, v in values.items()))
        try:
            with session_scope(self.settings) as s:
                s.execute(
                    update(Task)
                    .where(Task.id == self.task_id, Task.attempts == self.attempt)
                    .values(progress=values)
                )
        except (OperationalError, InterfaceError) as e:
            # Progress is for people watching; a database outage must not fail the render
            # (the lease decides whether the attempt is still ours).
            log.warning("task %s: progress not recorded: %s", self.task_id, e.orig)
