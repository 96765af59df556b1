"""Routes: each validates, calls one service function and maps its result to a schema."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import TypeAdapter

from farm.api.admin import router as admin_router
from farm.api.app import acting, json_typed, principal
from farm.api.audit import router as audit_router
from farm.api.logs import router as logs_router
from farm.api.schemas import (
    ArtifactPublic,
    ErrorBody,
    Health,
    JobDetail,
    JobPage,
    JobPublic,
    PriorityChange,
    WorkerPublic,
)
from farm.api.usage import router as usage_router
from farm.audit import Actor
from farm.config import Settings
from farm.errors import BrokerUnusable, JobNotFound
from farm.outputs import OutsideOutputRoot, confine
from farm.specs import NAME_PATTERN, JobSpec, RenderSpec, TrainSpec
from farm.states import JobState
from farm.tokens import Principal

log = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 409, 422, 503)
}
router = APIRouter(responses=ERRORS)
Reader = Annotated[Principal, Depends(principal)]
Acting = Annotated[Actor, Depends(acting)]  # a writing token, as the audit log names it
TypedSpec = Annotated[None, Depends(json_typed(TypeAdapter(JobSpec)))]
TypedPriority = Annotated[None, Depends(json_typed(TypeAdapter(PriorityChange)))]
MEDIA_TYPES = {
    ".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
    ".mkv": "video/x-matroska", ".gif": "image/gif", ".png": "image/png",
}  # fmt: skip
CONTENT = sorted({*MEDIA_TYPES.values(), "application/octet-stream"})
SPEC_EXAMPLE = {
    "kind": "render", "name": "sh010", "checkpoint": "job:vae-digits", "frames": "1001-1100",
    "chunk_size": 25, "width": 256, "height": 256, "keyframes": [3, 8, 0], "tags": ["seq01"],
}  # fmt: skip


def _link(operation_id: str, parameter: str, pointer: str) -> dict[str, Any]:
    """An OpenAPI link: call ``operation_id`` with ``parameter`` taken from this response's
    body at the JSON ``pointer`` (clients and schemathesis' stateful phase follow them)."""
    return {"operationId": operation_id, "parameters": {parameter: f"$response.body#{pointer}"}}


# What can be done with a job once an answer names it (its `id`): every route of the job.
JOB_OPERATIONS = (
    "get_job", "change_job_priority", "cancel_job", "retry_job", "pause_job", "resume_job",
    "list_job_artifacts",
)  # fmt: skip
JOB_LINKS = {op: _link(op, "job_id", "/id") for op in JOB_OPERATIONS}


def _links_from_job(operation_id: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of a route answering a job links to the job's other routes."""
    return {200: {"links": {k: v for k, v in JOB_LINKS.items() if k != operation_id}}}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _job(settings: Settings, job_id: int) -> dict[str, Any]:
    from farm.queries import job_detail

    detail = job_detail(settings, str(job_id))
    for a in detail["artifacts"]:
        a["download"] = f"/artifacts/{a['id']}/content"
    return detail


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health}},
    tags=["ops"],
    operation_id="health",
)
def health(request: Request, response: Response) -> Health:
    """Checks the database and the broker; needs no token."""
    from farm.health import check

    db, broker = check(_settings(request), request.app.state.celery)
    if db != "ok" or broker != "ok":
        response.status_code = 503
    return Health(database=db, broker=broker)


@router.post(
    "/jobs",
    response_model=JobPublic,
    status_code=201,
    responses={
        201: {"links": JOB_LINKS},
        200: {
            "model": JobPublic,
            "description": "the job this idempotency key made",
            "links": JOB_LINKS,
        },
    },
    tags=["jobs"],
    operation_id="create_job",
)
def create_job(
    request: Request,
    response: Response,
    who: Acting,
    _typed: TypedSpec,
    spec: Annotated[JobSpec, Body(examples=[SPEC_EXAMPLE])],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Submit a job (the same spec as `farm submit`). With an `Idempotency-Key` header a
    retried request returns the job the first one made (200) instead of a second job."""
    from farm.submit import submit

    s = _settings(request)
    body: TrainSpec | RenderSpec = spec
    try:
        made = submit(
            s, request.app.state.celery, body, idempotency_key=idempotency_key,
            submitter=who.name, actor=who,
        )  # fmt: skip
    except BrokerUnusable as e:
        if e.job_id is None:
            raise
        # Recorded: a retry would only find it again. The operator has to mend the broker
        # (GET /health says 503 meanwhile, and the sweeper stops its farm saying why).
        log.error("%s", e)
        return _job(s, e.job_id)
    if not made.created:
        response.status_code = 200
    return _job(s, made.job_id)


@router.get("/jobs", response_model=JobPage, tags=["jobs"], operation_id="list_jobs")
def list_jobs(
    request: Request,
    _: Reader,
    state: JobState | None = None,
    name: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    kind: Annotated[str | None, Query(pattern="^(train|render)$")] = None,
    tag: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    submitter: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> JobPage:
    """Jobs, newest first, filtered; page with `before` = the previous page's `next_before`."""
    from farm.queries import list_jobs_page

    rows, nxt = list_jobs_page(
        _settings(request),
        state=state.value if state else None,
        name=name,
        kind=kind,
        tag=tag,
        submitter=submitter,
        limit=limit,
        before=before,
    )
    return JobPage(items=[JobPublic.model_validate(r) for r in rows], next_before=nxt)


@router.get(
    "/jobs/{job_id}",
    response_model=JobDetail,
    responses=_links_from_job("get_job"),
    tags=["jobs"],
    operation_id="get_job",
)
def get_job(request: Request, _: Reader, job_id: int) -> dict[str, Any]:
    """A job with its tasks (state, attempts, progress), artifacts and spec."""
    _check_id(job_id)
    return _job(_settings(request), job_id)


def _check_id(job_id: int) -> None:
    if not 1 <= job_id <= 2**62:
        raise JobNotFound(str(job_id))


def _verb(request: Request, actor: Actor, job_id: int, fn: Any, *args: Any) -> dict[str, Any]:
    _check_id(job_id)
    s = _settings(request)
    fn(s, str(job_id), *args, actor=actor)
    from farm.dispatch import dispatch_ready

    try:
        dispatch_ready(s, request.app.state.celery)
    except BrokerUnusable as e:  # the change is recorded; sending waits for a mended broker
        log.error("job %s: %s", job_id, e)
    return _job(s, job_id)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobDetail,
    responses=_links_from_job("cancel_job"),
    tags=["control"],
    operation_id="cancel_job",
)
def cancel_job(request: Request, actor: Acting, job_id: int) -> dict[str, Any]:
    """Queued tasks never start; running ones stop at their next heartbeat. 409 if finished."""
    from farm.control import cancel

    return _verb(request, actor, job_id, cancel)


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobDetail,
    responses=_links_from_job("retry_job"),
    tags=["control"],
    operation_id="retry_job",
)
def retry_job(request: Request, actor: Acting, job_id: int) -> dict[str, Any]:
    """Re-run the failed tasks only. 409 unless the job failed."""
    from farm.control import retry

    return _verb(request, actor, job_id, retry)


@router.post(
    "/jobs/{job_id}/pause",
    response_model=JobDetail,
    responses=_links_from_job("pause_job"),
    tags=["control"],
    operation_id="pause_job",
)
def pause_job(request: Request, actor: Acting, job_id: int) -> dict[str, Any]:
    """Hold back queued chunks; running ones finish. 409 if finished or already paused."""
    from farm.control import pause

    return _verb(request, actor, job_id, pause)


@router.post(
    "/jobs/{job_id}/resume",
    response_model=JobDetail,
    responses=_links_from_job("resume_job"),
    tags=["control"],
    operation_id="resume_job",
)
def resume_job(request: Request, actor: Acting, job_id: int) -> dict[str, Any]:
    """Send the held-back chunks again. 409 unless paused."""
    from farm.control import resume

    return _verb(request, actor, job_id, resume)


@router.patch(
    "/jobs/{job_id}",
    response_model=JobDetail,
    responses=_links_from_job("change_job_priority"),
    tags=["control"],
    operation_id="change_job_priority",
)
def change_priority(
    request: Request, actor: Acting, _typed: TypedPriority, job_id: int, change: PriorityChange
) -> dict[str, Any]:
    """Change the job's priority (0-100): its unsent chunks go out in the new order."""
    from farm.control import set_priority

    return _verb(request, actor, job_id, set_priority, change.priority)


@router.get(
    "/jobs/{job_id}/artifacts",
    response_model=list[ArtifactPublic],
    tags=["artifacts"],
    operation_id="list_job_artifacts",
)
def list_artifacts(request: Request, _: Reader, job_id: int) -> list[dict[str, Any]]:
    _check_id(job_id)
    return list(_job(_settings(request), job_id)["artifacts"])


@router.get(
    "/artifacts/{artifact_id}/content",
    response_class=FileResponse,
    responses={
        200: {"content": {m: {} for m in CONTENT}},
        206: {"description": "the requested byte range", "content": {m: {} for m in CONTENT}},
    },
    tags=["artifacts"],
    operation_id="download_artifact",
)
def download(request: Request, _: Reader, artifact_id: int) -> FileResponse:
    """The artifact's file. Answers Range requests (206), so a browser can seek a video."""
    from farm.queries import artifact_path

    if not 1 <= artifact_id <= 2**62:
        raise JobNotFound(f"artifact {artifact_id}")
    s = _settings(request)
    found = artifact_path(s, artifact_id)
    if found is None:
        raise JobNotFound(f"artifact {artifact_id}")
    try:
        path = confine(s.output_root_abs(), found[0])
    except OutsideOutputRoot:
        raise JobNotFound(f"artifact {artifact_id}") from None
    if not Path(path).is_file():
        raise JobNotFound(f"artifact {artifact_id} (file gone)")
    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, filename=path.name)


@router.get(
    "/workers", response_model=list[WorkerPublic], tags=["workers"], operation_id="list_workers"
)
def list_workers(
    request: Request,
    _: Reader,
    include_stopped: Annotated[bool, Query(description="also workers that stopped")] = False,
) -> list[dict[str, Any]]:
    """The worker registry: each worker's host, pool, GPU, versions, running task and state
    (a worker silent for longer than a lease is shown as ``lost``)."""
    from farm.registry import list_workers

    return list_workers(_settings(request), include_stopped=include_stopped)


def _drain(request: Request, actor: Actor, name: str, draining: bool) -> dict[str, Any]:
    from farm.registry import list_workers, set_draining

    s = _settings(request)
    set_draining(s, name, draining, actor=actor)
    return next(w for w in list_workers(s, include_stopped=True) if w["name"] == name)


@router.post(
    "/workers/{name}/drain",
    response_model=WorkerPublic,
    responses={200: {"links": {"undrain_worker": _link("undrain_worker", "name", "/name")}}},
    tags=["workers"],
    operation_id="drain_worker",
)
def drain_worker(request: Request, actor: Acting, name: str) -> dict[str, Any]:
    """The worker finishes its running task and takes no more (at its next heartbeat)."""
    return _drain(request, actor, name, True)


@router.post(
    "/workers/{name}/undrain",
    response_model=WorkerPublic,
    responses={200: {"links": {"drain_worker": _link("drain_worker", "name", "/name")}}},
    tags=["workers"],
    operation_id="undrain_worker",
)
def undrain_worker(request: Request, actor: Acting, name: str) -> dict[str, Any]:
    """A drained worker takes work again."""
    return _drain(request, actor, name, False)


@router.get("/metrics", response_class=Response, tags=["ops"], operation_id="metrics")
def metrics(request: Request, _: Reader) -> Response:
    """Prometheus text exposition: jobs and tasks by state, queue depths, frames, durations."""
    from farm.metrics import render

    body, content_type = render(_settings(request), request.app.state.celery)
    return Response(body, media_type=content_type)


router.include_router(logs_router)  # GET /tasks/{task_id}/logs (farm.api.logs)
router.include_router(admin_router)  # GET /projects, /limits; PUT /projects/…, /limits/…
router.include_router(usage_router)  # GET /usage
router.include_router(audit_router)  # GET /audit
