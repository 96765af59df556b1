"""The audit log: who did what to the farm, written in the transaction of the change itself.

Every operator action (submit, cancel, retry, pause, resume, priority, drain, undrain, token
creation and revocation, project and limit changes) calls :func:`record` with the session
that makes the change, so a rolled-back action leaves no row and a committed one always has
its row. The actor is the API token's name (the web monitor's session is a token too), or
``FARM_SUBMITTER`` / ``cli:<user>`` for the CLI on the database directly; the request id is
the API's ``X-Request-ID`` (one per CLI command locally).
"""

from __future__ import annotations

import getpass
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from farm.errors import SpecError
from farm.models import AuditLog

Action = Literal[
    "submit", "cancel", "retry", "pause", "resume", "priority", "drain", "undrain",
    "token_create", "token_revoke", "project_set", "limit_set", "purge",
]  # fmt: skip
ACTIONS: tuple[str, ...] = get_args(Action)
TargetKind = Literal["job", "worker", "token", "project", "limit", "jobs"]

# What a client may send as its X-Request-ID; anything else is replaced by a fresh id.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_AGE = re.compile(r"^(\d{1,7})([smhdw])$")
# What --since / ?since= may be: an age, or an ISO date or time (the API's schema says so).
SINCE_PATTERN = (
    r"^(\d{1,7}[smhdw]|\d{4}-\d{2}-\d{2}"
    r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?)$"
)
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_LIMIT = 500


@dataclass(frozen=True)
class Actor:
    """Who acts, and the request (or CLI command) the action came in."""

    name: str
    request_id: str | None = None


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_or_new(given: str | None) -> str:
    """The client's request id if it is a sane one, else a fresh one."""
    if given is not None and REQUEST_ID_PATTERN.match(given):
        return given
    return new_request_id()


def local_actor() -> Actor:
    """The CLI on the database directly: ``FARM_SUBMITTER`` if set, else ``cli:<login>``;
    one request id for the command, so the rows of one batch group together."""
    name = os.environ.get("FARM_SUBMITTER")
    if not name:
        try:
            name = f"cli:{getpass.getuser()}"
        except Exception:  # no login name (a container without a passwd entry)
            name = "cli"
    return Actor(name[:128], new_request_id())


def record(
    session: Session,
    actor: Actor | None,
    action: Action,
    target_kind: TargetKind,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit row in the caller's transaction (``actor`` None: the local CLI user)."""
    record_many(session, actor, action, target_kind, [(target, detail or {})])


def record_many(
    session: Session,
    actor: Actor | None,
    action: Action,
    target_kind: TargetKind,
    items: Iterable[tuple[str, dict[str, Any]]],
) -> None:
    """Rows for one action on several targets (a batch's jobs), in one executemany."""
    who = actor or local_actor()
    rows = [
        {"actor": who.name, "action": action, "target_kind": target_kind, "target": target,
         "request_id": who.request_id, "detail": detail}
        for target, detail in items
    ]  # fmt: skip
    if rows:
        session.connection().execute(insert(AuditLog.__table__), rows)  # type: ignore[arg-type]


def parse_since(text: str, now: datetime) -> datetime:
    """``90s``, ``15m``, ``1h``, ``2d``, ``1w`` before ``now`` (an age older than the calendar
    means since the start); or a date (``2026-12-01``, midnight UTC) or an ISO time (without
    a zone: UTC). Raises SpecError naming ``since``."""
    value = text.strip()
    if not re.match(SINCE_PATTERN, value):
        reason = "must be an age (90s, 15m, 1h, 2d, 1w) or a date (2026-12-01[T10:00[Z]])"
        raise SpecError([("since", f"{text!r}: {reason}")])
    if m := _AGE.match(value):
        try:
            return max(now - timedelta(seconds=int(m[1]) * _UNIT_S[m[2]]), EARLIEST)
        except OverflowError:
            return EARLIEST
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise SpecError([("since", f"{text!r} is not a valid date ({e})")]) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AuditFilter:
    """What to list: rows newer than ``since`` and older than id ``before``, newest first."""

    since: datetime | None = None
    action: str | None = None
    actor: str | None = None
    job: int | None = None
    target: str | None = None
    before: int | None = None
    limit: int = 50


def _no_control(field: str, value: str | None) -> list[tuple[str, str]]:
    if value is not None and (not value or len(value) > 255 or any(ord(c) < 32 for c in value)):
        return [(field, "must be 1-255 printable characters")]
    return []


def make_filter(
    now: datetime,
    *,
    since: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    job: int | None = None,
    target: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> AuditFilter:
    """Check every filter and build the query's; raises SpecError naming each bad one."""
    problems: list[tuple[str, str]] = []
    at = None
    if since is not None:
        try:
            at = parse_since(since, now)
        except SpecError as e:
            problems += e.problems
    if action is not None and action not in ACTIONS:
        problems.append(("action", f"{action!r} is not one of {', '.join(ACTIONS)}"))
    problems += _no_control("actor", actor) + _no_control("target", target)
    if job is not None and not 1 <= job <= 2**62:
        problems.append(("job", f"must be a job id from 1 to 2**62, not {job}"))
    if before is not None and not 1 <= before <= 2**62:
        problems.append(("before", f"must be an id from 1 to 2**62, not {before}"))
    if not 1 <= limit <= MAX_LIMIT:
        problems.append(("limit", f"must be from 1 to {MAX_LIMIT}, not {limit}"))
    if problems:
        raise SpecError(problems)
    return AuditFilter(at, action, actor, job, target, before, limit)


def list_audit(session: Session, f: AuditFilter) -> tuple[list[dict[str, Any]], int | None]:
    """One page of rows, newest first, and the ``before`` of the next page (None: last)."""
    q = select(AuditLog).order_by(AuditLog.id.desc()).limit(f.limit + 1)
    if f.since is not None:
        q = q.where(AuditLog.at >= f.since)
    if f.action is not None:
        q = q.where(AuditLog.action == f.action)
    if f.actor is not None:
        q = q.where(AuditLog.actor == f.actor)
    if f.job is not None:
        q = q.where(AuditLog.target_kind == "job", AuditLog.target == str(f.job))
    if f.target is not None:
        q = q.where(AuditLog.target == f.target)
    if f.before is not None:
        q = q.where(AuditLog.id < f.before)
    rows = list(session.execute(q).scalars())
    page = [as_json(r) for r in rows[: f.limit]]
    return page, (rows[f.limit - 1].id if len(rows) > f.limit else None)


def as_json(r: AuditLog) -> dict[str, Any]:
    return {
        "id": r.id, "at": r.at.isoformat(), "actor": r.actor, "action": r.action,
        "target_kind": r.target_kind, "target": r.target, "request_id": r.request_id,
        "detail": r.detail,
    }  # fmt: skip
