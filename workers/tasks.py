"""Celery tasks: thin edges with explicit names. Each takes a task id and hands over to the
runner, which loads everything else from the database."""

from __future__ import annotations

from celery import Celery

from farm.celery_app import TASK_NAMES
from farm.config import Settings
from workers.runner import execute


def register(app: Celery, settings: Settings) -> None:
    for name in TASK_NAMES.values():

        def run(task_id: int, _name: str = name) -> str:
            return execute(settings, app, task_id)

        app.task(name=name, ignore_result=True)(run)
