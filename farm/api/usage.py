"""``GET /usage``: what the farm spent, rolled up from its attempts (farm.usage)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from farm.api.app import principal
from farm.config import Settings
from farm.db import session_scope
from farm.specs import PROJECT_PATTERN
from farm.tokens import Principal
from farm.usage import usage

Reader = Annotated[Principal, Depends(principal)]
router = APIRouter()


class UsagePublic(BaseModel):
    """Seconds as decimal strings: exact, so the rows add up to the cent."""

    key: str = Field(description="the project, day (YYYY-MM-DD, UTC), job id or worker")
    attempts: int
    wall_s: str
    gpu_s: str = Field(description="wall time of attempts on a cuda device")
    cpu_s: str
    lost_s: str = Field(description="of it, attempts of dead workers, up to their lease")


@router.get("/usage", response_model=list[UsagePublic], tags=["usage"], operation_id="usage")
def get_usage(
    request: Request,
    _: Reader,
    by: Literal["project", "day", "job", "worker"] = "project",
    project: Annotated[str | None, Query(pattern=PROJECT_PATTERN)] = None,
) -> list[UsagePublic]:
    """Attempts, wall, GPU, CPU and lost seconds, by project, day, job or worker."""
    settings: Settings = request.app.state.settings
    with session_scope(settings) as session:
        rows = usage(session, by, project)
    return [
        UsagePublic(key=r.key, attempts=r.attempts, wall_s=str(r.wall_s), gpu_s=str(r.gpu_s),
                    cpu_s=str(r.cpu_s), lost_s=str(r.lost_s))
        for r in rows
    ]  # fmt: skip
