"""The farm monitor: server-rendered pages for people, next to the REST API in ``farm api``.

``install(app)`` adds its routes (none in the OpenAPI document), its static files and the
answers to its own errors; see docs/web.md.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from farm.web.auth import LoginRequired, NotAuthenticated, Refused
from farm.web.templating import STATIC, STATIC_URL


def install(app: FastAPI) -> None:
    from urllib.parse import quote

    from farm.web.live import router as live_router
    from farm.web.logs import router as logs_router
    from farm.web.routes import refused
    from farm.web.routes import router as pages

    app.include_router(pages)
    app.include_router(live_router)
    app.include_router(logs_router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC), name="web-static")

    @app.exception_handler(LoginRequired)
    async def login_required(_: Request, e: LoginRequired) -> Response:
        target = "/ui/login" if e.next_path == "/" else f"/ui/login?next={quote(e.next_path)}"
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(_: Request, e: NotAuthenticated) -> Response:
        return PlainTextResponse("log in first: /ui/login", status_code=401)

    @app.exception_handler(Refused)
    async def refused_post(_: Request, e: Refused) -> Response:
        return refused(e.reason)
