"""What the monitor's buttons do: the operator verbs of farm.control and the registry's drain,
then a dispatch pass, exactly as the REST API's control routes do; audited as the session's
token (farm.audit)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery

from farm import control
from farm.audit import Actor
from farm.config import Settings
from farm.errors import BrokerUnusable

log = logging.getLogger(__name__)

# verb -> (the service function, what the page says once it is done)
JOB_VERBS: dict[str, tuple[Callable[..., Any], str]] = {
    "pause": (control.pause, "paused: queued chunks are held back, running ones finish"),
    "resume": (control.resume, "resumed: held-back chunks go out again"),
    "cancel": (control.cancel, "canceled: queued tasks never start, running ones stop"),
    "retry": (control.retry, "retried: the failed tasks are queued again"),
}


def _dispatch(settings: Settings, celery: Celery, what: str) -> None:
    from farm.dispatch import dispatch_ready

    try:
        dispatch_ready(settings, celery)
    except BrokerUnusable as e:  # recorded; sending waits for a mended broker
        log.error("%s: %s", what, e)


def job_verb(settings: Settings, celery: Celery, job_id: int, verb: str, actor: Actor) -> str:
    """Run ``verb`` on the job; raises JobNotFound, JobStateError."""
    fn, done = JOB_VERBS[verb]
    fn(settings, str(job_id), actor=actor)
    _dispatch(settings, celery, f"job {job_id}")
    return f"Job {job_id} {done}."


def set_priority(
    settings: Settings, celery: Celery, job_id: int, priority: int, actor: Actor
) -> str:
    """Raises JobNotFound, JobStateError, SpecError (out of 0-100)."""
    control.set_priority(settings, str(job_id), priority, actor=actor)
    _dispatch(settings, celery, f"job {job_id}")
    return f"Job {job_id}: priority {priority}."


def drain(settings: Settings, name: str, draining: bool, actor: Actor) -> str:
    """Raises WorkerNotFound."""
    from farm.registry import set_draining

    set_draining(settings, name, draining, actor=actor)
    if draining:
        return f"Worker {name} drains: it finishes its task and takes no more."
    return f"Worker {name} takes work again."
