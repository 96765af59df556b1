"""Submission: resolve against the database (:mod:`farm.resolve`), record the jobs and their
tasks, then send.

A submission (one job, or a whole batch of them) is committed in one transaction before any
message is sent: every job of a batch, or none. The same transaction marks what the queues'
windows have room for (the dispatcher's :func:`farm.dispatch.take`, as a claim does), sent
once it commits; a crash between the two leaves marked tasks that the sweeper's check for
lost messages sends again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from celery import Celery
from sqlalchemy import String, any_, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farm.audit import Actor, record_many
from farm.broker import HEALTH
from farm.config import Settings
from farm.db import session_scope
from farm.dispatch import Outgoing, ready_queues, send_all, take
from farm.errors import BrokerUnusable, FarmError, SpecError
from farm.models import Event, Job, JobDependency, Task
from farm.planner import plan, stage_ends
from farm.projects import ensure as ensure_projects
from farm.resolve import Resolving, fingerprint, resolve
from farm.specs import RenderSpec, TrainSpec
from farm.states import JobState

log = logging.getLogger(__name__)
_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence('jobs', 'id')) FROM generate_series(1, :n)")


@dataclass(frozen=True)
class Submission:
    """One job to record: its parsed spec, and the key that makes resending it safe."""

    spec: TrainSpec | RenderSpec
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Submitted:
    job_id: int
    name: str
    created: bool


class SubmissionsRejected(FarmError):
    """Raised when any of several submissions is invalid; none of them was recorded.
    ``errors`` holds each bad one's own error by its position, ``problems`` its fields."""

    exit_code = 2

    def __init__(self, errors: dict[int, FarmError], labels: list[str]) -> None:
        self.errors = errors
        self.problems = {i: _problems(e) for i, e in sorted(errors.items())}
        lines = [
            f"#{i + 1} ({labels[i]}): {field}: {reason}"
            for i, found in self.problems.items()
            for field, reason in found
        ]
        super().__init__(
            f"{len(errors)} of {len(labels)} submissions invalid; nothing recorded:\n  "
            + "\n  ".join(lines)
        )


def _problems(e: FarmError) -> list[tuple[str, str]]:
    return e.problems if isinstance(e, SpecError) else [("idempotency_key", str(e))]


class _Known(NamedTuple):
    """A job found by its idempotency key: what a replay gets back, and how to tell one."""

    job_id: int
    name: str
    fingerprint: str | None


class _New(NamedTuple):
    """A job being recorded (its id taken from the sequence), with what its rows are made of."""

    job_id: int
    key: str | None
    spec: TrainSpec | RenderSpec
    stored: dict[str, object]
    deps: list[int]


def submit(
    settings: Settings,
    celery: Celery | None,
    spec: TrainSpec | RenderSpec,
    *,
    idempotency_key: str | None = None,
    submitter: str = "cli",
    actor: Actor | None = None,
) -> Submitted:
    """Record the job (or find the one already made with this key) and send what is ready.
    Raises the job's own error (a :class:`SpecError`, or a key used for another spec)."""
    try:
        return submit_many(
            settings, celery, [Submission(spec, idempotency_key)], submitter=submitter, actor=actor
        )[0]
    except SubmissionsRejected as e:
        raise e.errors[0] from None


def submit_many(
    settings: Settings,
    celery: Celery | None,
    submissions: Sequence[Submission],
    *,
    submitter: str = "cli",
    actor: Actor | None = None,
) -> list[Submitted]:
    """Record every submission in one transaction, or none of them, then send what is ready.
    ``actor`` (None: the submitter, without a request id) is who the audit log names.

    A submission whose idempotency key exists already (same spec) gives that job back,
    recording nothing. A concurrent submission committing one of the same keys first makes
    this transaction's insert fail as a whole; it is then run once more, and sees that job
    as existing."""
    for attempt in (1, 2):
        outgoing: list[Outgoing] = []
        try:
            with session_scope(settings) as session:
                made = record(session, settings, submissions, submitter=submitter, actor=actor)
                if (
                    celery is not None
                    and any(m.created for m in made)
                    and HEALTH.may_send(str(settings.broker_url))
                ):
                    outgoing = take(
                        session,
                        ready_queues(session),
                        settings.dispatch_ahead,
                        fair=settings.fair_share,
                    )
            break
        except IntegrityError:
            if attempt == 2 or all(s.idempotency_key is None for s in submissions):
                raise
            log.info("an idempotency key was taken meanwhile; recording the batch again")
    created = [m.job_id for m in made if m.created]
    if celery is not None and outgoing:
        try:
            send_all(settings, celery, outgoing)
        except BrokerUnusable as e:  # recorded, but nothing will send it until this is fixed
            raise e.for_job(created[0]) from e.__cause__
        except Exception as e:  # the jobs are recorded; the sweeper sends them later
            log.warning("%d job(s) from %s recorded, not sent yet: %s", len(created), created[0], e)
    return made


def record(
    session: Session,
    settings: Settings,
    submissions: Sequence[Submission],
    *,
    submitter: str,
    actor: Actor | None = None,
) -> list[Submitted]:
    """Record the jobs, their tasks, dependencies, first events and audit rows in the caller's
    transaction, in order: a submission may depend (``after``, ``checkpoint: job:``) on an
    earlier one. Raises :class:`SubmissionsRejected` naming every bad one; the caller then
    rolls back, so nothing of them is kept."""
    keys = [s.idempotency_key for s in submissions if s.idempotency_key is not None]
    known = _by_keys(session, keys)
    ids = iter(_new_ids(session, sum(1 for s in submissions if s.idempotency_key not in known)))
    ctx = Resolving(session, settings)
    errors: dict[int, FarmError] = {}
    made: list[Submitted] = []
    new: list[_New] = []
    for i, sub in enumerate(submissions):
        key, spec = sub.idempotency_key, sub.spec
        if key is not None and key in known:
            found = known[key]
            if found.fingerprint != fingerprint(spec):
                errors[i] = FarmError(
                    f"idempotency key {key!r} was used for job {found.job_id} with a different spec"
                )
            made.append(Submitted(found.job_id, found.name, created=False))
            continue
        try:
            stored, deps = resolve(session, settings, spec, ctx)
        except SpecError as e:
            errors[i] = e
            continue
        job_id, name = next(ids), str(stored["name"])
        # What later submissions naming this one find (it is inserted below, with the rest).
        ctx.recorded(Job(id=job_id, name=name, kind=spec.kind, spec=stored))
        if key is not None:
            known[key] = _Known(job_id, name, str(stored["fingerprint"]))
        new.append(_New(job_id, key, spec, stored, deps))
        made.append(Submitted(job_id, name, created=True))
    if errors:
        raise SubmissionsRejected(errors, [_label(s.spec) for s in submissions])
    _insert(session, settings, new, submitter)
    batch = {"batch": len(new)} if len(new) > 1 else {}
    record_many(
        session, actor or Actor(submitter), "submit", "job",
        ((str(n.job_id), {"name": n.stored["name"], "kind": n.spec.kind,
          "project": n.spec.project} | batch) for n in new),
    )  # fmt: skip
    return made


def _by_keys(session: Session, keys: list[str]) -> dict[str, _Known]:
    if not keys:
        return {}
    rows = session.execute(
        select(Job.idempotency_key, Job.id, Job.name, Job.spec["fingerprint"].astext).where(
            Job.idempotency_key == any_(bindparam("keys", keys, type_=ARRAY(String)))
        )
    )
    return {str(key): _Known(job_id, name, fp) for key, job_id, name, fp in rows}


def _new_ids(session: Session, n: int) -> list[int]:
    """Ids for ``n`` new jobs, taken from the jobs' sequence at once: rows that name each
    other can then be inserted together, without a RETURNING (unused ones are a gap)."""
    if n == 0:
        return []
    return list(session.execute(_NEXT_IDS, {"n": n}).scalars())


def _insert(session: Session, settings: Settings, new: list[_New], submitter: str) -> None:
    """The new jobs, their tasks, dependencies and "submitted" events: one executemany a
    table, which psycopg pipelines (their ids known, nothing needs a RETURNING)."""
    batch = {n.job_id for n in new}
    done = _succeeded(session, {d for n in new for d in n.deps} - batch)
    jobs: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for job_id, key, spec, stored, deps in new:
        planned = plan(spec)
        jobs.append(
            {
                "id": job_id, "name": stored["name"], "kind": spec.kind, "state": JobState.QUEUED,
                "spec": stored, "priority": spec.priority, "idempotency_key": key,
                "submitter": submitter, "tags": list(spec.tags), "pool": spec.pool,
                "project": spec.project,
                "webhook_url": spec.webhook.url if spec.webhook else None,
                "webhook_events": list(spec.webhook.events) if spec.webhook else [],
                "tasks_queued": len(planned),
            }
        )  # fmt: skip
        attempts = spec.max_attempts or settings.max_attempts
        first, ends = min(p.stage for p in planned), stage_ends(planned)
        free = all(d in done for d in deps)
        tasks += (
            vars(p) | {"job_id": job_id, "max_attempts": attempts, "priority": spec.priority,
                       "project": spec.project, "limits": list(dict.fromkeys(spec.limits)),
                       "ready": free and p.stage == first, "stage_end": ends[p.stage]}
            for p in planned
        )  # fmt: skip
        links += ({"job_id": job_id, "depends_on_id": d} for d in deps)
    events = [{"job_id": n.job_id, "to_state": "queued", "message": "submitted"} for n in new]
    if settings.auto_create_projects:  # else resolve() refused the unknown ones
        ensure_projects(session, (n.spec.project for n in new))
    conn = session.connection()
    for model, rows in ((Job, jobs), (Task, tasks), (JobDependency, links), (Event, events)):
        if rows:
            conn.execute(insert(model.__table__), rows)  # type: ignore[arg-type]


def _succeeded(session: Session, deps: set[int]) -> set[int]:
    """Which of these jobs have succeeded, so their new dependents may start now. FOR SHARE
    waits out (and then blocks) a dependency's state change, so a dependency that succeeds
    meanwhile either is seen here or sees the new job when it releases its dependents
    (farm.lifecycle). Locked in id order, in one statement."""
    if not deps:
        return set()
    rows = session.execute(
        select(Job.id, Job.state)
        .where(Job.id.in_(sorted(deps)))
        .order_by(Job.id)
        .with_for_update(read=True)
    )
    return {job_id for job_id, state in rows if state is JobState.SUCCEEDED}


def _label(spec: TrainSpec | RenderSpec) -> str:
    return spec.name or spec.kind
