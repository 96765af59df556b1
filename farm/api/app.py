"""The REST API: an app factory, authentication, and the one place errors become HTTP."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from farm.audit import Actor, request_id_or_new
from farm.celery_app import make_celery
from farm.config import Settings
from farm.errors import (
    BrokerUnusable,
    FarmError,
    JobNotFound,
    JobStateError,
    SpecError,
    TaskNotFound,
    WorkerNotFound,
)
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


def administrator(who: Annotated[Principal, Depends(writer)]) -> Principal:
    """A token that may change the shared farm's policy (``farm token create --admin``)."""
    if not who.admin:
        raise HTTPException(
            403, f"token {who.name!r} is not an admin token (farm token create --admin)"
        )
    return who


def administering(request: Request, who: Annotated[Principal, Depends(administrator)]) -> Actor:
    """An admin, as the audit log names it."""
    return Actor(who.name, request_id(request))


def request_id(request: Request) -> str:
    """The request's id (:class:`RequestId`), also for an app built without the middleware."""
    return str(getattr(request.state, "request_id", None) or request_id_or_new(None))


def acting(request: Request, who: Annotated[Principal, Depends(writer)]) -> Actor:
    """A writer, as the audit log names it: its token's name and the request's id."""
    return Actor(who.name, request_id(request))


class RequestId:
    """Gives every HTTP request an id: the client's ``X-Request-ID`` if it is a sane one (up
    to 128 of ``A-Za-z0-9._:/+=-``), else a fresh one; kept in ``request.state.request_id``
    for the audit log and sent back in the answer's ``X-Request-ID``. Plain ASGI, so a
    streamed answer (a followed log) streams as before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = request_id_or_new(given.decode("latin-1") if given is not None else None)
        scope.setdefault("state", {})["request_id"] = rid

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", rid.encode())]
            await send(message)

        await self.app(scope, receive, tagged)


def _json_number(text: str) -> int | float:
    """JSON Schema's integer is any number without a fraction (``22.0`` too); pydantic's strict
    mode takes only ``22``."""
    value = float(text)
    return int(value) if value.is_integer() else value


def json_typed(adapter: TypeAdapter[Any]) -> Callable[[Request], Awaitable[None]]:
    """A dependency holding a JSON body to the types the OpenAPI document gives it. The spec
    models are lax for YAML and CSV manifests (``"64"`` or ``true`` for an integer); over JSON
    a value of another type is refused (422) as the schema says, not coerced (JSON's ``true``
    is not the number 1). Declare it after the token's dependency, so an unauthenticated
    request still gets its 401 first. Every route taking a JSON body declares it."""

    async def check(request: Request) -> None:
        try:
            body = json.loads(await request.body(), parse_float=_json_number)
        except ValueError:
            return  # not JSON: FastAPI's own body parsing answers that
        try:
            adapter.validate_json(json.dumps(body), strict=True)
        except ValidationError as e:
            raise RequestValidationError([_no_bool(err) for err in e.errors()]) from None

    return check


_NOT_BOOL = {"int_type": "must be an integer, not a boolean",
             "float_type": "must be a number, not a boolean"}  # fmt: skip


def _no_bool(err: Any) -> Any:
    """Pydantic's "valid integer" for a ``true`` says why, as the field's refusal."""
    if isinstance(err.get("input"), bool) and err.get("type") in _NOT_BOOL:
        return {**err, "msg": _NOT_BOOL[err["type"]]}
    return err


def _error(
    status: int, message: str, problems: list[tuple[str, str]] | None = None
) -> JSONResponse:
    body = {"error": message, "problems": [{"field": f, "reason": r} for f, r in problems or []]}
    return JSONResponse(body, status_code=status)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def allowed_methods(request: Request) -> str:
    """The methods some route serves at the request's path, for a 405's ``Allow``. The router
    stops at the first route that matches the path but not the method (``/jobs``: the POST
    route) and names that route's methods only, so ask every route about every method."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    found = []
    for method in HTTP_METHODS:
        probe = {"type": "http", "path": path, "root_path": root, "method": method}
        if any(r.matches(probe)[0] is Match.FULL for r in request.app.router.routes):
            found.append(method)
    return ", ".join(found)


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
    app.add_middleware(RequestId)
    app.include_router(router)
    from farm.web import install as install_monitor

    install_monitor(app)  # the web monitor at / (farm/web): its pages, static files, errors

    @app.exception_handler(SpecError)
    async def spec_error(_: Request, e: SpecError) -> JSONResponse:
        return _error(422, "invalid job spec", e.problems)

    @app.exception_handler(JobNotFound)
    async def not_found(_: Request, e: JobNotFound) -> JSONResponse:
        return _error(404, str(e))

    @app.exception_handler(TaskNotFound)
    async def no_task(_: Request, e: TaskNotFound) -> JSONResponse:
        return _error(404, str(e))

    @app.exception_handler(WorkerNotFound)
    async def no_worker(_: Request, e: WorkerNotFound) -> JSONResponse:
        return _error(404, str(e))

    @app.exception_handler(JobStateError)
    async def conflict(_: Request, e: JobStateError) -> JSONResponse:
        return _error(409, str(e))

    @app.exception_handler(BrokerUnusable)
    async def broker_unusable(_: Request, e: BrokerUnusable) -> JSONResponse:
        return _error(503, str(e))

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
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        resp = _error(e.status_code, str(e.detail))
        for k, v in (e.headers or {}).items():
            resp.headers[k] = v
        if e.status_code == 405 and (allow := allowed_methods(request)):
            resp.headers["Allow"] = allow
        return resp

    return app
