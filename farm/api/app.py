"""The REST API: an app factory, authentication, and the one place errors become HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from farm.celery_app import make_celery
from farm.config import Settings
from farm.errors import FarmError, JobNotFound, JobStateError, SpecError, WorkerNotFound
from farm.tokens import Principal, authenticate

_bearer = HTTPBearer(auto_error=False, description="a token from `farm token create`")


def principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    who = authenticate(request.app.state.settings, creds.credentials)
    if who is None:
        raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return who


def writer(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if who.read_only:
        raise HTTPException(403, f"token {who.name!r} is read-only")
    return who


def _error(
    status: int, message: str, problems: list[tuple[str, str]] | None = None
) -> JSONResponse:
    body = {"error": message, "problems": [{"field": f, "reason": r} for f, r in problems or []]}
    return JSONResponse(body, status_code=status)


def create_app(settings: Settings) -> FastAPI:
    """``settings`` must point at running servers (see farm.runtime.services)."""
    from farm.api.routes import router

    app = FastAPI(
        title="farm",
        version="0.1.0",
        description="Render farm for AI animation: submit, follow and control jobs.",
    )
    app.state.settings = settings
    app.state.celery = make_celery(settings)
    app.include_router(router)

    @app.exception_handler(SpecError)
    async def spec_error(_: Request, e: SpecError) -> JSONResponse:
        return _error(422, "invalid job spec", e.problems)

    @app.exception_handler(JobNotFound)
    async def not_found(_: Request, e: JobNotFound) -> JSONResponse:
        return _error(404, str(e))

    @app.exception_handler(WorkerNotFound)
    async def no_worker(_: Request, e: WorkerNotFound) -> JSONResponse:
        return _error(404, str(e))

    @app.exception_handler(JobStateError)
    async def conflict(_: Request, e: JobStateError) -> JSONResponse:
        return _error(409, str(e))

    @app.exception_handler(FarmError)
    async def farm_error(_: Request, e: FarmError) -> JSONResponse:
        return _error(409 if "idempotency" in str(e) else 400, str(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        problems = []
        for err in e.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            loc = [p for p in loc if p not in ("train", "render")]
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append((".".join(loc) or "body", msg))
        return _error(422, "invalid request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        resp = _error(e.status_code, str(e.detail))
        for k, v in (e.headers or {}).items():
            resp.headers[k] = v
        return resp

    return app
