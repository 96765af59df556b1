"""Limits: named counters for scarce resources (a licence server, a shared disk's bandwidth),
set by the CLI and API, taken by the tasks of jobs whose spec names them.

What a limit holds is never a counter of its own that a dead worker could leak: it is the
number of tasks whose ``limits`` name it and that are running or sent (:func:`held`; the
partial index ``ix_tasks_holding`` has the same predicate, ``farm.models.HOLDING``), so the
lease sweeper's requeue of a dead worker's task frees what it held. The dispatcher sends a
task only while each of its limits has room (:func:`farm.dispatch.take`), under one
farm-wide advisory lock, since a limit spans queues.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from farm.audit import Actor, record
from farm.errors import SpecError
from farm.models import Limit
from farm.specs import PROJECT_PATTERN


def held(name: str) -> str:
    """SQL for how many tasks hold the limit named by the SQL expression ``name`` (off the
    partial index ix_tasks_holding)."""
    return (
        "(SELECT count(*) FROM tasks h WHERE cardinality(h.limits) > 0 AND (h.state = 'running'"
        f" OR (h.state = 'queued' AND h.sent_at IS NOT NULL)) AND {name} = ANY(h.limits))"
    )


def room(task: str) -> str:
    """SQL: the task row ``task`` may start now, every limit it names having room."""
    return (
        f"(cardinality({task}.limits) = 0 OR NOT EXISTS (SELECT 1 FROM limits lim"
        f" WHERE lim.name = ANY({task}.limits) AND lim.count <= {held('lim.name')}))"
    )


_LIST = text("SELECT l.name, l.count, " + held("l.name") + " AS held FROM limits l ORDER BY l.name")


@dataclass(frozen=True)
class LimitView:
    """A limit as listed: its count and how many tasks hold it now."""

    name: str
    count: int
    held: int


def check(name: str, count: int) -> None:
    """Refuse a bad name or a negative count, naming the field (nothing is written)."""
    problems: list[tuple[str, str]] = []
    if not re.match(PROJECT_PATTERN, name):
        problems.append(("name", f"{name!r} must match {PROJECT_PATTERN}"))
    if count < 0:
        problems.append(("count", f"must be >= 0 (0 holds its tasks back), not {count}"))
    if problems:
        raise SpecError(problems)


def set_limit(session: Session, name: str, count: int, *, actor: Actor | None = None) -> LimitView:
    """Create a limit or change its count; tasks holding it go on (a lower count holds back
    the next ones until enough have finished). Audited with the old count (None: new)."""
    check(name, count)
    old = session.execute(
        select(Limit.count).where(Limit.name == name).with_for_update()
    ).scalar_one_or_none()
    stmt = insert(Limit).values(name=name, count=count)
    session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"count": count}))
    record(session, actor, "limit_set", "limit", name, {"old": old, "new": count})
    return next(v for v in list_limits(session) if v.name == name)


def list_limits(session: Session) -> list[LimitView]:
    return [LimitView(n, c, h) for n, c, h in session.execute(_LIST).all()]


def known(session: Session, names: Iterable[str]) -> set[str]:
    wanted = set(names)
    if not wanted:
        return set()
    return set(session.execute(select(Limit.name).where(Limit.name.in_(wanted))).scalars())
