"""``GET /limits`` and ``PUT /limits/{name}``: named counters for scarce resources
(farm.limits)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from farm.api.app import principal, writer
from farm.config import Settings
from farm.db import session_scope
from farm.limits import LimitView, list_limits, set_limit
from farm.specs import PROJECT_PATTERN
from farm.tokens import Principal

Reader = Annotated[Principal, Depends(principal)]
Writer = Annotated[Principal, Depends(writer)]
router = APIRouter()


class LimitPublic(BaseModel):
    name: str
    count: int = Field(description="tasks that may hold it at once, farm-wide")
    held: int = Field(description="tasks running or sent that hold it now")


class LimitChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=0, le=2**31 - 1)

    @field_validator("count", mode="before")
    @classmethod
    def _not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):  # JSON's true is not the number 1
            raise ValueError("must be an integer, not a boolean")
        return v


def _public(v: LimitView) -> LimitPublic:
    return LimitPublic(name=v.name, count=v.count, held=v.held)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/limits", response_model=list[LimitPublic], tags=["limits"],
            operation_id="list_limits")  # fmt: skip
def get_limits(request: Request, _: Reader) -> list[LimitPublic]:
    """Every limit: its count and how many tasks hold it now."""
    with session_scope(_settings(request)) as session:
        return [_public(v) for v in list_limits(session)]


@router.put("/limits/{name}", response_model=LimitPublic, tags=["limits"],
            operation_id="set_limit")  # fmt: skip
def put_limit(
    request: Request,
    _: Writer,
    name: Annotated[str, Path(pattern=PROJECT_PATTERN)],
    change: LimitChange,
) -> LimitPublic:
    """Create a limit or change its count (tasks holding it now are not stopped)."""
    with session_scope(_settings(request)) as session:
        return _public(set_limit(session, name, change.count))
