"""``GET /projects`` and ``PUT /projects/{name}``: the shares of the farm (farm.policy)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from farm.api.app import principal, writer
from farm.config import Settings
from farm.db import session_scope
from farm.projects import ProjectView, list_projects, set_project
from farm.specs import PROJECT_PATTERN
from farm.tokens import Principal

Reader = Annotated[Principal, Depends(principal)]
# Tokens have no admin role: any token that may submit may change a project's share.
Writer = Annotated[Principal, Depends(writer)]
router = APIRouter()


class ProjectPublic(BaseModel):
    name: str
    weight: float
    max_running: int | None = Field(description="cap of tasks in flight per queue; null: none")
    running: dict[str, int] = Field(description="running tasks by queue")


class ProjectChange(BaseModel):
    """Fields left out keep their value; ``max_running: null`` removes the cap."""

    model_config = ConfigDict(extra="forbid")

    weight: float | None = Field(default=None, ge=0.001, le=1_000_000, allow_inf_nan=False)
    max_running: int | None = Field(default=None, ge=0, le=2**31 - 1)

    @field_validator("weight", "max_running", mode="before")
    @classmethod
    def _not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):  # JSON's true is not the number 1
            raise ValueError("must be a number, not a boolean")
        return v


def _public(p: ProjectView) -> ProjectPublic:
    return ProjectPublic(name=p.name, weight=p.weight, max_running=p.max_running, running=p.running)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/projects", response_model=list[ProjectPublic], tags=["projects"],
            operation_id="list_projects")  # fmt: skip
def get_projects(request: Request, _: Reader) -> list[ProjectPublic]:
    """Every project: its weight, cap and what it runs now."""
    with session_scope(_settings(request)) as session:
        return [_public(p) for p in list_projects(session)]


@router.put("/projects/{name}", response_model=ProjectPublic, tags=["projects"],
            operation_id="set_project")  # fmt: skip
def put_project(
    request: Request,
    _: Writer,
    name: Annotated[str, Path(pattern=PROJECT_PATTERN)],
    change: ProjectChange,
) -> ProjectPublic:
    """Create a project or change its weight or cap (running tasks are not stopped)."""
    with session_scope(_settings(request)) as session:
        p = set_project(
            session,
            name,
            weight=change.weight,
            max_running=change.max_running,
            clear_cap="max_running" in change.model_fields_set and change.max_running is None,
        )
    return _public(p)
