"""Celery tasks: thin edges with explicit names. Each takes a task id and hands over to the
runner, which loads everything else from the database."""

from __future__ import annotations

from celery import Celery, Task

from farm.celery_app import TASK_NAMES
from farm.config import Settings
from workers.runner import execute


def register(app: Celery, settings: Settings, queues: str = "") -> None:
    consumes = frozenset(q for q in queues.split(",") if q)
    for name in TASK_NAMES.values():

        def run(self: Task, task_id: int, _name: str = name) -> str:
            # The node name (``pool-gpu0@host``) is the worker's identity in the registry and
            # the blocklist; it outlives the pool process that runs the task.
            return execute(settings, app, task_id, worker=self.request.hostname, consumes=consumes)

        app.task(name=name, ignore_result=True, bind=True)(run)
