"""Accounting: what the farm spent, rolled up from the attempts (table ``attempts``), one row
per attempt ended: by its worker; by the sweeper for a dead worker's, counted up to its
lease's expiry and marked ``lost``; by a cancel for one it stopped, marked ``canceled`` and
counted up to when its worker actually stopped (the worker moves it on; a worker that died
meanwhile leaves it counted up to the cancel).

Seconds are PostgreSQL ``numeric`` (``extract(epoch ...)`` of microsecond timestamps) and
stay :class:`~decimal.Decimal` here, so a roll-up equals the sum of its attempts exactly.
GPU-seconds are the wall time of attempts on a ``cuda`` device, CPU-seconds of the rest.
Each row carries its job's project, submitter and pool, and no foreign key: a purge of old
jobs (farm.retention) leaves the bill as it was.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args

from sqlalchemy import text
from sqlalchemy.orm import Session

By = Literal["project", "submitter", "pool", "day", "job", "worker"]
BY: tuple[str, ...] = get_args(By)
_KEYS: dict[str, str] = {
    "project": "project",
    "submitter": "submitter",
    "pool": "coalesce(pool, 'default')",
    "day": "to_char(date_trunc('day', ended_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')",
    "job": "job_id::text",
    "worker": "coalesce(worker, '')",
}
_WALL = "extract(epoch FROM ended_at - started_at)"
_GPU = "device LIKE 'cuda%'"


@dataclass(frozen=True)
class Usage:
    key: str
    attempts: int
    wall_s: Decimal
    gpu_s: Decimal
    cpu_s: Decimal
    lost_s: Decimal

    def public(self) -> dict[str, str | int]:
        """Seconds as decimal strings: exact, as JSON numbers would not be."""
        out: dict[str, str | int] = {"key": self.key, "attempts": self.attempts}
        for name in ("wall_s", "gpu_s", "cpu_s", "lost_s"):
            out[name] = str(getattr(self, name))
        return out


def usage(
    session: Session,
    by: By = "project",
    project: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Usage]:
    """The attempts that ended in [``since``, ``until``) (all, by default), of ``project``
    (all), by ``by``."""
    key = _KEYS[by]
    sql = text(
        f"SELECT {key} AS k, count(*), coalesce(sum({_WALL}), 0),"
        f" coalesce(sum({_WALL}) FILTER (WHERE {_GPU}), 0),"
        f" coalesce(sum({_WALL}) FILTER (WHERE NOT {_GPU}), 0),"
        f" coalesce(sum({_WALL}) FILTER (WHERE outcome = 'lost'), 0)"
        " FROM attempts WHERE (CAST(:project AS text) IS NULL OR project = :project)"
        " AND (CAST(:since AS timestamptz) IS NULL OR ended_at >= :since)"
        " AND (CAST(:until AS timestamptz) IS NULL OR ended_at < :until)"
        " GROUP BY k ORDER BY k"
    )
    rows = session.execute(sql, {"project": project, "since": since, "until": until}).all()
    return [Usage(str(k), int(n), Decimal(w), Decimal(g), Decimal(c), Decimal(lo))
            for k, n, w, g, c, lo in rows]  # fmt: skip


def to_csv(rows: Sequence[Usage], by: str) -> str:
    """The roll-up as CSV, a header first: the key's column is named for ``by``."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([by, "attempts", "wall_s", "gpu_s", "cpu_s", "lost_s"])
    for r in rows:
        w.writerow([r.key, r.attempts, r.wall_s, r.gpu_s, r.cpu_s, r.lost_s])
    return out.getvalue()


@dataclass(frozen=True)
class Totals:
    """Since the farm began, for Prometheus counters (farm.metrics): seconds by (project,
    pool) and attempts by (project, outcome). Attempts are never deleted and their times
    only move later, so these never go down."""

    seconds: dict[tuple[str, str], tuple[Decimal, Decimal]]  # (gpu_s, cpu_s)
    attempts: dict[tuple[str, str], int]


def totals(session: Session) -> Totals:
    seconds = session.execute(
        text(
            f"SELECT project, coalesce(pool, 'default') AS p,"
            f" coalesce(sum({_WALL}) FILTER (WHERE {_GPU}), 0),"
            f" coalesce(sum({_WALL}) FILTER (WHERE NOT {_GPU}), 0)"
            " FROM attempts GROUP BY project, p ORDER BY project, p"
        )
    ).all()
    counts = session.execute(
        text(
            "SELECT project, outcome, count(*) FROM attempts GROUP BY project, outcome"
            " ORDER BY project, outcome"
        )
    ).all()
    return Totals(
        {(p, pool): (Decimal(g), Decimal(c)) for p, pool, g, c in seconds},
        {(p, o): int(n) for p, o, n in counts},
    )


# A running attempt the cancel ends (farm.control.cancel), before the task moves: counted up
# to the cancel, on the device of its worker's last accounted attempt; the worker, when its
# stage stops, moves ``ended_at`` on and writes its own device (workers.claims.stopped).
_CANCELED_ATTEMPT = text(
    "INSERT INTO attempts (task_id, job_id, project, submitter, pool, attempt, worker, device,"
    " started_at, ended_at, outcome) SELECT t.id, t.job_id, t.project, j.submitter, j.pool,"
    " t.attempts, t.worker, coalesce((SELECT a.device FROM attempts a WHERE a.worker = t.worker"
    " ORDER BY a.id DESC LIMIT 1), 'unknown'), t.started_at, greatest(t.started_at, now()),"
    " 'canceled' FROM tasks t JOIN jobs j ON j.id = t.job_id"
    " WHERE t.id = :task AND t.state = 'running' AND t.started_at IS NOT NULL"
    " ON CONFLICT DO NOTHING"
)


def record_canceled(session: Session, task_id: int) -> None:
    """Account the running attempt of ``task_id`` as canceled (call before it moves)."""
    session.execute(_CANCELED_ATTEMPT, {"task": task_id})
