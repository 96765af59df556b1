"""The shared farm's admin resources: ``/projects`` (shares, farm.projects) and ``/limits``
(named counters, farm.limits). Each is read by any token and set only by an admin token
(``farm token create --admin``): a share or a limit decides what every project gets, so a
token that may submit may not change them. The change and its audit row are one
transaction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from farm.api.app import administering, json_typed, principal
from farm.audit import Actor
from farm.config import Settings
from farm.db import session_scope
from farm.limits import LimitView, list_limits, set_limit
from farm.projects import ProjectView, list_projects, set_project
from farm.specs import PROJECT_PATTERN
from farm.tokens import Principal

Reader = Annotated[Principal, Depends(principal)]
Acting = Annotated[Actor, Depends(administering)]
Name = Annotated[str, Path(pattern=PROJECT_PATTERN)]
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


class LimitPublic(BaseModel):
    name: str
    count: int = Field(description="tasks that may hold it at once, farm-wide")
    held: int = Field(description="tasks running or sent that hold it now")


class LimitChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=0, le=2**31 - 1)


TypedProject = Annotated[None, Depends(json_typed(TypeAdapter(ProjectChange)))]
TypedLimit = Annotated[None, Depends(json_typed(TypeAdapter(LimitChange)))]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _project(p: ProjectView) -> ProjectPublic:
    return ProjectPublic(name=p.name, weight=p.weight, max_running=p.max_running, running=p.running)


def _limit(v: LimitView) -> LimitPublic:
    return LimitPublic(name=v.name, count=v.count, held=v.held)


@router.get("/projects", response_model=list[ProjectPublic], tags=["projects"],
            operation_id="list_projects")  # fmt: skip
def get_projects(request: Request, _: Reader) -> list[ProjectPublic]:
    """Every project: its weight, cap and what it runs now."""
    with session_scope(_settings(request)) as session:
        return [_project(p) for p in list_projects(session)]


@router.put("/projects/{name}", response_model=ProjectPublic, tags=["projects"],
            operation_id="set_project")  # fmt: skip
def put_project(
    request: Request, actor: Acting, _typed: TypedProject, name: Name, change: ProjectChange
) -> ProjectPublic:
    """Create a project or change its weight or cap (running tasks are not stopped)."""
    with session_scope(_settings(request)) as session:
        p = set_project(
            session,
            name,
            weight=change.weight,
            max_running=change.max_running,
            clear_cap="max_running" in change.model_fields_set and change.max_running is None,
            actor=actor,
        )
    return _project(p)


@router.get("/limits", response_model=list[LimitPublic], tags=["limits"],
            operation_id="list_limits")  # fmt: skip
def get_limits(request: Request, _: Reader) -> list[LimitPublic]:
    """Every limit: its count and how many tasks hold it now."""
    with session_scope(_settings(request)) as session:
        return [_limit(v) for v in list_limits(session)]


@router.put("/limits/{name}", response_model=LimitPublic, tags=["limits"],
            operation_id="set_limit")  # fmt: skip
def put_limit(
    request: Request, actor: Acting, _typed: TypedLimit, name: Name, change: LimitChange
) -> LimitPublic:
    """Create a limit or change its count (tasks holding it now are not stopped)."""
    with session_scope(_settings(request)) as session:
        return _limit(set_limit(session, name, change.count, actor=actor))
