"""Projects: the shares of the farm (weights and caps), read and changed by the CLI and API.

What a project's weight and cap do to dispatch is :mod:`farm.policy`'s; here they are
validated and stored. A project is created on first use by a submission when the setting
``FARM_AUTO_CREATE_PROJECTS`` allows it (:func:`ensure`), else by ``farm project set``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from farm.audit import Actor, record
from farm.errors import SpecError
from farm.models import Project
from farm.specs import PROJECT_PATTERN

DEFAULT = "default"
_IN_FLIGHT = text(
    "SELECT project, queue, count(*) FROM tasks WHERE state = 'running' GROUP BY project, queue"
)


@dataclass(frozen=True)
class ProjectView:
    """A project as listed: its share and what it runs now, per queue."""

    name: str
    weight: float
    max_running: int | None
    running: dict[str, int]


# A share's pass divides by the weight: a weight near zero (5e-324) would overflow it.
MIN_WEIGHT = 0.001
MAX_WEIGHT = 1_000_000.0


def check(name: str, weight: float | None, max_running: int | None) -> None:
    """Refuse a bad name, a weight that is not a positive number, or a negative cap, naming
    each field (nothing is written)."""
    problems: list[tuple[str, str]] = []
    if not re.match(PROJECT_PATTERN, name):
        problems.append(("name", f"{name!r} must match {PROJECT_PATTERN}"))
    if weight is not None and (not math.isfinite(weight) or not MIN_WEIGHT <= weight <= MAX_WEIGHT):
        problems.append(
            ("weight", f"must be a number from {MIN_WEIGHT} to {MAX_WEIGHT:g}, not {weight}")
        )
    if max_running is not None and max_running < 0:
        problems.append(
            ("max_running", f"must be >= 0 (0 holds the project back), not {max_running}")
        )
    if problems:
        raise SpecError(problems)


def set_project(
    session: Session,
    name: str,
    *,
    weight: float | None = None,
    max_running: int | None = None,
    clear_cap: bool = False,
    actor: Actor | None = None,
) -> ProjectView:
    """Create or change a project; fields left as None keep their value (``clear_cap``
    removes the cap). Audited with the old and new values (None: it was created)."""
    check(name, weight, max_running)
    old = session.execute(
        select(Project.weight, Project.max_running).where(Project.name == name).with_for_update()
    ).one_or_none()
    values: dict[str, object] = {}
    if weight is not None:
        values["weight"] = weight
    if max_running is not None or clear_cap:
        values["max_running"] = max_running
    stmt = insert(Project).values(name=name, **values)
    stmt = (
        stmt.on_conflict_do_update(index_elements=["name"], set_=values)
        if values
        else stmt.on_conflict_do_nothing()
    )
    session.execute(stmt)
    new = next(p for p in list_projects(session) if p.name == name)
    was = None if old is None else {"weight": old.weight, "max_running": old.max_running}
    record(session, actor, "project_set", "project", name,
           {"old": was, "new": {"weight": new.weight, "max_running": new.max_running}})  # fmt: skip
    return new


def list_projects(session: Session) -> list[ProjectView]:
    running: dict[str, dict[str, int]] = {}
    for project, queue, n in session.execute(_IN_FLIGHT):
        running.setdefault(project, {})[queue] = n
    return [
        ProjectView(p.name, p.weight, p.max_running, running.get(p.name, {}))
        for p in session.execute(select(Project).order_by(Project.name)).scalars()
    ]


def known(session: Session, names: Iterable[str]) -> set[str]:
    wanted = sorted(set(names))
    if not wanted:
        return set()
    return set(session.execute(select(Project.name).where(Project.name.in_(wanted))).scalars())


def ensure(session: Session, names: Iterable[str]) -> None:
    """Create the projects not there yet (weight 1, no cap); a concurrent creation is fine."""
    rows = [{"name": n} for n in sorted(set(names))]
    if rows:
        session.execute(insert(Project).values(rows).on_conflict_do_nothing())
