"""``GET /audit``: who did what (farm.audit), newest first, filtered and paged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from farm.api.app import principal
from farm.audit import ACTIONS, MAX_LIMIT, SINCE_PATTERN, Action, list_audit, make_filter
from farm.config import Settings
from farm.db import session_scope
from farm.tokens import Principal

# Any token reads the audit: it names tokens and actions, never a secret, as GET /jobs
# names each job's submitter.
Reader = Annotated[Principal, Depends(principal)]
router = APIRouter()
_PRINTABLE = r"^[^\x00-\x1f]+$"


class AuditPublic(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="the token's name, or FARM_SUBMITTER / cli:<user> locally")
    action: str = Field(description=", ".join(ACTIONS))
    target_kind: str = Field(description="job, worker, token, project or limit")
    target: str = Field(description="the job's id, or the worker's, token's, project's name")
    request_id: str | None = Field(description="the request's X-Request-ID")
    detail: dict[str, Any] = Field(description="e.g. the old and new priority")


class AuditPage(BaseModel):
    items: list[AuditPublic]
    next_before: int | None = Field(description="pass as `before` for the next page")


@router.get("/audit", response_model=AuditPage, tags=["audit"], operation_id="list_audit")
def get_audit(
    request: Request,
    _: Reader,
    since: Annotated[
        str | None,
        Query(pattern=SINCE_PATTERN, description="`90s`, `15m`, `1h`, `2d`, `1w`, or a date"),
    ] = None,
    action: Action | None = None,
    actor: Annotated[str | None, Query(max_length=128, pattern=_PRINTABLE)] = None,
    job: Annotated[int | None, Query(ge=1, le=2**62, description="rows about this job")] = None,
    target: Annotated[str | None, Query(max_length=255, pattern=_PRINTABLE)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> AuditPage:
    """Operator actions, newest first; page with `before` = the previous page's
    `next_before`. A bad filter is refused (422) naming it."""
    settings: Settings = request.app.state.settings
    f = make_filter(datetime.now(UTC), since=since, action=action, actor=actor, job=job,
                    target=target, before=before, limit=limit)  # fmt: skip
    with session_scope(settings) as session:
        rows, nxt = list_audit(session, f)
    return AuditPage(items=[AuditPublic.model_validate(r) for r in rows], next_before=nxt)
