"""The "bad worker" rule: a worker that fails one job's tasks ``FARM_BLOCK_AFTER`` times is
blocked from that job, so a broken box (a bad driver, a full disk, a missing codec) stops
eating the job's attempts while the job goes on elsewhere."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from farm.models import WorkerFailure


def record_failure(
    session: Session, job_id: int, worker: str | None, error: str | None, block_after: int
) -> bool:
    """Count a failed attempt against (job, worker); returns whether the worker is now
    blocked from the job. ``block_after`` 0 turns the rule off."""
    if worker is None or block_after <= 0:
        return False
    stmt = insert(WorkerFailure).values(
        job_id=job_id,
        worker=worker,
        failures=1,
        last_error=(error or "")[-500:],
        blocked_at=func.now() if block_after <= 1 else None,
    )
    blocked_at = session.execute(
        stmt.on_conflict_do_update(
            index_elements=["job_id", "worker"],
            set_={
                "failures": WorkerFailure.failures + 1,
                "last_error": stmt.excluded.last_error,
                "blocked_at": case(
                    (
                        WorkerFailure.blocked_at.is_(None)
                        & (WorkerFailure.failures + 1 >= block_after),
                        func.now(),
                    ),
                    else_=WorkerFailure.blocked_at,
                ),
            },
        ).returning(WorkerFailure.blocked_at)
    ).scalar_one()
    return blocked_at is not None


def job_blocks(session: Session, job_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(WorkerFailure).where(WorkerFailure.job_id == job_id).order_by(WorkerFailure.worker)
    ).scalars()
    return [
        {
            "worker": r.worker,
            "failures": r.failures,
            "blocked": r.blocked_at is not None,
            "blocked_at": r.blocked_at.isoformat() if r.blocked_at else None,
            "last_error": r.last_error,
        }
        for r in rows
    ]
