"""``GET /usage``: what the farm spent, rolled up from its attempts (farm.usage)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from farm.ages import WHEN_PATTERN, parse_when
from farm.api.app import principal
from farm.config import Settings
from farm.db import session_scope
from farm.errors import InvalidOption
from farm.specs import PROJECT_PATTERN
from farm.tokens import Principal
from farm.usage import to_csv, usage

Reader = Annotated[Principal, Depends(principal)]
router = APIRouter()


class UsagePublic(BaseModel):
    """Seconds as decimal strings: exact, so the rows add up to the cent."""

    key: str = Field(
        description="the project, submitter, pool, day (YYYY-MM-DD, UTC), job id or worker"
    )
    attempts: int
    wall_s: str
    gpu_s: str = Field(description="wall time of attempts on a cuda device")
    cpu_s: str
    lost_s: str = Field(description="of it, attempts of dead workers, up to their lease")


_WHEN = (
    "attempts ended from (since) or before (until) then: an age (7d, 12h) or a date or time"
    " (2026-11-01, 2026-11-01T12:00Z; UTC unless it names its offset)"
)
When = Annotated[str | None, Query(description=_WHEN, pattern=WHEN_PATTERN)]


@router.get(
    "/usage",
    response_model=list[UsagePublic],
    tags=["usage"],
    operation_id="usage",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_usage(
    request: Request,
    _: Reader,
    by: Literal["project", "submitter", "pool", "day", "job", "worker"] = "project",
    project: Annotated[str | None, Query(pattern=PROJECT_PATTERN)] = None,
    since: When = None,
    until: When = None,
    format: Literal["json", "csv"] = "json",
) -> list[UsagePublic] | PlainTextResponse:
    """Attempts, wall, GPU, CPU and lost seconds, by project, submitter, pool, day, job or
    worker; ``format=csv`` for a spreadsheet. A window that ends before it starts answers
    no rows (the CLI refuses it: a person's typo, where here it is a computed range)."""
    now = datetime.now(UTC)
    try:
        start = None if since is None else parse_when("since", since, now)
        end = None if until is None else parse_when("until", until, now)
    except InvalidOption as e:
        raise RequestValidationError(
            [{"loc": ("query", e.option), "msg": e.reason, "type": "value_error"}]
        ) from None
    settings: Settings = request.app.state.settings
    with session_scope(settings) as session:
        rows = usage(session, by, project, start, end)
    if format == "csv":
        return PlainTextResponse(to_csv(rows, by), media_type="text/csv")
    return [UsagePublic.model_validate(r.public()) for r in rows]
