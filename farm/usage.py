"""Accounting: what the farm spent, rolled up from the attempts (table ``attempts``), one row
per attempt ended (by its worker, or by the sweeper for a dead worker's, counted up to its
lease's expiry and marked ``lost``).

Seconds are PostgreSQL ``numeric`` (``extract(epoch ...)`` of microsecond timestamps) and
stay :class:`~decimal.Decimal` here, so a roll-up equals the sum of its attempts exactly.
GPU-seconds are the wall time of attempts on a ``cuda`` device, CPU-seconds of the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

By = Literal["project", "day", "job", "worker"]
_KEYS: dict[str, str] = {
    "project": "project",
    "day": "to_char(date_trunc('day', ended_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')",
    "job": "job_id::text",
    "worker": "coalesce(worker, '')",
}
_WALL = "extract(epoch FROM ended_at - started_at)"


@dataclass(frozen=True)
class Usage:
    key: str
    attempts: int
    wall_s: Decimal
    gpu_s: Decimal
    cpu_s: Decimal
    lost_s: Decimal


def usage(
    session: Session, by: By = "project", project: str | None = None, since: datetime | None = None
) -> list[Usage]:
    """The attempts ended since ``since`` (all, by default), of ``project`` (all), by ``by``."""
    key = _KEYS[by]
    sql = text(
        f"SELECT {key} AS k, count(*), coalesce(sum({_WALL}), 0),"
        f" coalesce(sum({_WALL}) FILTER (WHERE device LIKE 'cuda%'), 0),"
        f" coalesce(sum({_WALL}) FILTER (WHERE device NOT LIKE 'cuda%'), 0),"
        f" coalesce(sum({_WALL}) FILTER (WHERE outcome = 'lost'), 0)"
        " FROM attempts WHERE (CAST(:project AS text) IS NULL OR project = :project)"
        " AND (CAST(:since AS timestamptz) IS NULL OR ended_at >= :since)"
        " GROUP BY k ORDER BY k"
    )
    rows = session.execute(sql, {"project": project, "since": since}).all()
    return [Usage(str(k), int(n), Decimal(w), Decimal(g), Decimal(c), Decimal(lo))
            for k, n, w, g, c, lo in rows]  # fmt: skip
