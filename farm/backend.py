"""What the CLI drives: the farm's database directly, or a remote farm through its API
(when ``FARM_API_URL`` is set). Both give the same plain dicts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from farm.config import Settings
from farm.errors import FarmError, JobNotFound, JobStateError, SpecError, TaskNotFound


class Backend(Protocol):
    def submit(
        self, spec: dict[str, Any], key: str | None, dispatch: bool = True
    ) -> dict[str, Any]: ...
    def submit_many(self, specs: list[tuple[dict[str, Any], str | None]]) -> list[dict[str, Any]]:
        """Submit (spec, idempotency key) pairs; each gives {id, name, created}."""
        ...

    def job(self, ref: str) -> dict[str, Any]: ...
    def jobs(self, limit: int) -> list[dict[str, Any]]: ...
    def control(self, verb: str, ref: str, *args: Any) -> dict[str, Any]: ...
    def workers(self, include_stopped: bool) -> list[dict[str, Any]]: ...
    def drain(self, name: str, draining: bool) -> None: ...
    def flush(self) -> None: ...
    def task_logs(
        self, task_id: int, attempt: int | None, follow: bool
    ) -> Iterator[dict[str, Any]]:
        """A task attempt's log lines as dicts (:class:`farm.api.schemas.LogLinePublic`)."""
        ...

    def audit(self, **filters: Any) -> dict[str, Any]:
        """A page of the audit log, ``{items, next_before}`` (farm.audit.make_filter's
        keywords; a bad one raises SpecError naming it)."""
        ...


class LocalBackend:
    """The database directly; its actions are audited as the local user (farm.audit), all
    under one request id for the command."""

    def __init__(self, settings: Settings) -> None:
        from farm.audit import local_actor
        from farm.celery_app import make_celery

        self.settings = settings
        self.celery = make_celery(settings)
        self.actor = local_actor()

    def submit(
        self, spec: dict[str, Any], key: str | None, dispatch: bool = True
    ) -> dict[str, Any]:
        from farm.specs import parse_spec
        from farm.submit import submit

        made = submit(
            self.settings,
            self.celery if dispatch else None,
            parse_spec(spec),
            idempotency_key=key,
            submitter=os.environ.get("FARM_SUBMITTER", "cli"),
            actor=self.actor,
        )
        return {"id": made.job_id, "name": made.name, "created": made.created}

    def submit_many(self, specs: list[tuple[dict[str, Any], str | None]]) -> list[dict[str, Any]]:
        """All in one transaction, or none (:class:`farm.submit.SubmissionsRejected` names
        each bad one); then one dispatch pass."""
        from farm.specs import parse_spec
        from farm.submit import Submission, submit_many

        made = submit_many(
            self.settings,
            self.celery,
            [Submission(parse_spec(spec), key) for spec, key in specs],
            submitter=os.environ.get("FARM_SUBMITTER", "cli"),
            actor=self.actor,
        )
        return [{"id": m.job_id, "name": m.name, "created": m.created} for m in made]

    def job(self, ref: str) -> dict[str, Any]:
        from farm.queries import job_detail

        return job_detail(self.settings, ref)

    def jobs(self, limit: int) -> list[dict[str, Any]]:
        from farm.queries import list_jobs

        return list_jobs(self.settings, limit)

    def control(self, verb: str, ref: str, *args: Any) -> dict[str, Any]:
        from farm import control

        verbs: dict[str, Callable[..., Any]] = {
            "cancel": control.cancel,
            "retry": control.retry,
            "pause": control.pause,
            "resume": control.resume,
            "priority": control.set_priority,
        }
        verbs[verb](self.settings, ref, *args, actor=self.actor)
        self.flush()
        return self.job(ref)

    def workers(self, include_stopped: bool) -> list[dict[str, Any]]:
        from farm.registry import list_workers

        return list_workers(self.settings, include_stopped=include_stopped)

    def drain(self, name: str, draining: bool) -> None:
        from farm.registry import set_draining

        set_draining(self.settings, name, draining, actor=self.actor)

    def flush(self) -> None:
        from farm.dispatch import dispatch_ready

        dispatch_ready(self.settings, self.celery)

    def task_logs(
        self, task_id: int, attempt: int | None, follow: bool
    ) -> Iterator[dict[str, Any]]:
        from farm import tasklogs

        if follow:
            for k, line in tasklogs.follow(self.settings, task_id, attempt):
                yield tasklogs.as_json(task_id, k, line)
            return
        chunk = tasklogs.read(self.settings, task_id, attempt)
        for line in chunk.lines:
            yield tasklogs.as_json(task_id, chunk.attempt, line)

    def audit(self, **filters: Any) -> dict[str, Any]:
        from datetime import UTC, datetime

        from farm.audit import list_audit, make_filter
        from farm.db import session_scope

        f = make_filter(datetime.now(UTC), **filters)
        with session_scope(self.settings) as session:
            items, nxt = list_audit(session, f)
        return {"items": items, "next_before": nxt}


class ApiBackend:
    def __init__(self, url: str, token: str | None) -> None:
        from farm.client import FarmClient

        self.client = FarmClient(url, token)

    def _ref(self, ref: str) -> int:
        if ref.isdigit():
            return int(ref)
        items = self.client.list_jobs(name=ref, limit=1)["items"]
        if not items:
            raise JobNotFound(ref)
        return int(items[0]["id"])

    def _mapped(self, fn: Any, *args: Any, **kw: Any) -> dict[str, Any]:
        from farm.client import FarmAPIError

        try:
            return dict(fn(*args, **kw))
        except FarmAPIError as e:
            if e.status == 422 and e.problems:
                raise SpecError([(p["field"], p["reason"]) for p in e.problems]) from None
            if e.status == 404:
                raise JobNotFound(e.message) from None
            if e.status == 409:
                err = JobStateError(0, "", "")
                err.args = (e.message,)
                raise err from None
            raise FarmError(str(e)) from None

    def submit(
        self, spec: dict[str, Any], key: str | None, dispatch: bool = True
    ) -> dict[str, Any]:
        job = self._mapped(self.client.submit, spec, idempotency_key=key)
        return {"id": job["id"], "name": job["name"], "created": True}

    def submit_many(self, specs: list[tuple[dict[str, Any], str | None]]) -> list[dict[str, Any]]:
        """One POST a job: the API has no batch route, so a row refused part-way leaves the
        rows before it submitted (their keys make resubmitting the fixed manifest safe)."""
        return [self.submit(spec, key) for spec, key in specs]

    def job(self, ref: str) -> dict[str, Any]:
        return self._mapped(self.client.job, self._ref(ref))

    def jobs(self, limit: int) -> list[dict[str, Any]]:
        return list(self._mapped(self.client.list_jobs, limit=limit)["items"])

    def control(self, verb: str, ref: str, *args: Any) -> dict[str, Any]:
        job_id = self._ref(ref)
        if verb == "priority":
            return self._mapped(self.client.set_priority, job_id, *args)
        return self._mapped(getattr(self.client, verb), job_id)

    def workers(self, include_stopped: bool) -> list[dict[str, Any]]:
        from farm.client import FarmAPIError

        try:
            return self.client.workers(include_stopped=include_stopped)
        except FarmAPIError as e:
            raise FarmError(str(e)) from None

    def drain(self, name: str, draining: bool) -> None:
        from farm.client import FarmAPIError

        try:
            self.client.drain(name, draining=draining)
        except FarmAPIError as e:
            raise FarmError(e.message) from None

    def flush(self) -> None:
        return None

    def task_logs(
        self, task_id: int, attempt: int | None, follow: bool
    ) -> Iterator[dict[str, Any]]:
        from farm.client import FarmAPIError

        try:
            yield from self.client.task_logs(task_id, attempt=attempt, follow=follow)
        except FarmAPIError as e:
            if e.status == 404:
                raise TaskNotFound(task_id, attempt) from None
            raise FarmError(str(e)) from None

    def audit(self, **filters: Any) -> dict[str, Any]:
        return self._mapped(self.client.audit, **filters)


@contextmanager
def backend(settings: Settings) -> Iterator[Backend]:
    url = os.environ.get("FARM_API_URL")
    if url:
        api = ApiBackend(url, os.environ.get("FARM_API_TOKEN"))
        try:
            yield api
        finally:
            api.client.close()
        return
    from farm.runtime import services

    with services(settings) as s:
        yield LocalBackend(s)
