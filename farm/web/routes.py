"""The monitor's pages and forms. Each route checks who asks (farm.web.auth), calls one query
or action and renders a template; every POST answers with a redirect (post/redirect/get), its
outcome carried to the next page by a signed flash cookie. None is in the OpenAPI document."""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from farm.api.app import request_id
from farm.audit import Actor
from farm.errors import JobNotFound, JobStateError, SpecError, WorkerNotFound
from farm.tokens import Principal, authenticate, hash_token
from farm.web import actions, frames
from farm.web import session as sess
from farm.web.auth import (
    Controller,
    PageViewer,
    ResourceViewer,
    SessionPoster,
    Viewer,
    check_origin,
    form_of,
    key_of,
    settings_of,
)
from farm.web.listing import PAGE_SIZES, SORTS, STATES, parse_filters
from farm.web.live import PROGRESS
from farm.web.queries import job_view, jobs_page
from farm.web.regions import job_regions, jobs_regions, workers_regions
from farm.web.templating import page, signature

router = APIRouter(include_in_schema=False)
Form = Annotated[dict[str, str], Depends(form_of)]
MAX_ID = 2**62


def _cookie_flags(request: Request) -> dict[str, Any]:
    """Lax, not Strict: a link to a job pasted in a chat or a ticket opens it logged in (a
    top-level GET). Cross-site POSTs still carry no cookie, and each needs the CSRF token."""
    return {"httponly": True, "samesite": "lax", "secure": request.url.scheme == "https"}


def _flash(request: Request) -> dict[str, Any] | None:
    return sess.unsign(key_of(request), "flash", request.cookies.get(sess.FLASH_COOKIE))


def _redirect(request: Request, to: str, message: str, kind: str = "ok") -> RedirectResponse:
    resp = RedirectResponse(to, status_code=303)
    value = sess.sign(key_of(request), "flash", {"kind": kind, "text": message})
    resp.set_cookie(
        sess.FLASH_COOKIE, value, max_age=sess.FLASH_MAX_AGE_S, path="/", **_cookie_flags(request)
    )
    return resp


def _page(
    request: Request, name: str, viewer: Viewer | None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    flash = _flash(request) if viewer is not None else None
    regions: dict[str, str] = ctx.pop("regions", {})
    resp = page(
        name, status, viewer=viewer, flash=flash, regions=regions,
        sigs={k: signature(v) for k, v in regions.items()}, **ctx,
    )  # fmt: skip
    if flash is not None:
        resp.delete_cookie(sess.FLASH_COOKIE, path="/")
    return resp


# --- logging in and out ---------------------------------------------------------------


def _login_page(request: Request, status: int, error: str | None, next_path: str) -> Response:
    nonce = secrets.token_urlsafe(16)
    resp = _page(
        request, "login.html", None, status, error=error, next_path=sess.safe_next(next_path),
        csrf=sess.csrf_token(key_of(request), nonce),
    )  # fmt: skip
    resp.set_cookie(
        sess.LOGIN_COOKIE, nonce, max_age=sess.LOGIN_MAX_AGE_S, path="/ui/login",
        **{**_cookie_flags(request), "samesite": "strict"},
    )  # fmt: skip
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="farm monitor"'
    return resp


@router.get("/ui/login")
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, 200, None, next)


@router.post("/ui/login")
def login(request: Request, form: Form) -> Response:
    """A login form is CSRF-checked too (against the nonce cookie its page set), so another
    site cannot log a browser in under the other site's own token."""
    check_origin(request)
    nonce = request.cookies.get(sess.LOGIN_COOKIE)
    next_path = sess.safe_next(form.get("next"))
    if not sess.csrf_ok(key_of(request), nonce, form.get("csrf")):
        return _login_page(request, 403, "The login form expired: try again.", next_path)
    token = form.get("token", "").strip()
    who: Principal | None = authenticate(settings_of(request), token) if token else None
    if who is None:
        return _login_page(request, 401, "That token is not valid, or it was revoked.", next_path)
    cookie = sess.encode_session(key_of(request), sess.new_session(hash_token(token), time.time()))
    resp = RedirectResponse(next_path, status_code=303)
    resp.set_cookie(
        sess.SESSION_COOKIE, cookie, max_age=sess.SESSION_MAX_AGE_S, path="/",
        **_cookie_flags(request),
    )  # fmt: skip
    resp.delete_cookie(sess.LOGIN_COOKIE, path="/ui/login")
    return resp


@router.post("/ui/logout")
def logout(request: Request, _: SessionPoster) -> Response:
    resp = RedirectResponse("/ui/login", status_code=303)
    resp.delete_cookie(sess.SESSION_COOKIE, path="/")
    return resp


# --- jobs -----------------------------------------------------------------------------


@router.get("/")
def jobs(request: Request, viewer: PageViewer) -> Response:
    filters, problems = parse_filters(request.query_params)
    found = jobs_page(settings_of(request), filters)
    query = filters.query()
    return _page(
        request, "jobs.html", viewer, regions=jobs_regions(found, filters, viewer),
        filters=filters, problems=problems, states=STATES, sorts=SORTS, page_sizes=PAGE_SIZES,
        live_url="/ui/live/jobs" + (f"?{query}" if query else ""), nav="jobs",
    )  # fmt: skip


def _job_id(job_id: int) -> int:
    if not 1 <= job_id <= MAX_ID:
        raise JobNotFound(str(job_id))
    return job_id


def _not_found(request: Request, viewer: Viewer, what: str) -> Response:
    return _page(request, "error.html", viewer, 404, title="Not found", message=what)


@router.get("/ui/jobs/{job_id}")
def job(request: Request, viewer: PageViewer, job_id: int) -> Response:
    settings = settings_of(request)
    try:
        view = job_view(settings, _job_id(job_id))
    except JobNotFound:
        return _not_found(request, viewer, f"There is no job {job_id}.")
    return _page(
        request, "job.html", viewer, job=view,
        regions=job_regions(settings, view, viewer, PROGRESS),
        live_url=f"/ui/live/jobs/{job_id}", nav="jobs",
    )  # fmt: skip


@router.post("/ui/jobs/{job_id}/{verb}")
def job_action(
    request: Request, viewer: Controller, form: Form, job_id: int, verb: str
) -> Response:
    settings, celery = settings_of(request), request.app.state.celery
    actor = Actor(viewer.who.name, request_id(request))
    back = f"/ui/jobs/{job_id}"
    try:
        if verb == "priority":
            try:
                priority = int(form.get("priority", ""))
            except ValueError:
                return _redirect(request, back, "Priority: a whole number from 0 to 100.", "error")
            message = actions.set_priority(settings, celery, _job_id(job_id), priority, actor)
        elif verb in actions.JOB_VERBS:
            message = actions.job_verb(settings, celery, _job_id(job_id), verb, actor)
        else:
            return _not_found(request, viewer, f"No such action: {verb}.")
    except JobNotFound:
        return _not_found(request, viewer, f"There is no job {job_id}.")
    except JobStateError as e:
        return _redirect(request, back, f"Not done: {e}.", "error")
    except SpecError as e:
        return _redirect(request, back, "; ".join(f"{f} {r}" for f, r in e.problems), "error")
    return _redirect(request, back, message)


@router.get("/ui/jobs/{job_id}/frame.png")
def latest_frame(request: Request, _: ResourceViewer, job_id: int) -> Response:
    """The job's newest kept preview while it renders; its output's last frame when done."""
    settings = settings_of(request)
    try:
        view = job_view(settings, _job_id(job_id))
    except JobNotFound:
        return Response("no such job", status_code=404)
    done = frames.finished_frame(settings, view["artifacts"])
    if done is not None:
        media = "image/png" if done.suffix.lower() == ".png" else "application/octet-stream"
        return FileResponse(done, media_type=media, headers={"Cache-Control": "private"})
    kept = frames.latest_preview(settings, job_id)
    body = frames.preview_png(kept[1]) if kept else None
    if body is None:
        return Response("no frame yet", status_code=404)
    return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/ui/artifacts/{artifact_id}/content")
def artifact(request: Request, viewer: ResourceViewer, artifact_id: int) -> Response:
    """The REST download route's twin for the session cookie: the same code (Range requests
    answered with 206, so a <video> seeks), reached without a bearer token."""
    from farm.api.routes import download

    return download(request, viewer.who, artifact_id)


# --- workers --------------------------------------------------------------------------


@router.get("/ui/workers")
def workers(request: Request, viewer: PageViewer, stopped: bool = False) -> Response:
    from farm.registry import list_workers

    found = list_workers(settings_of(request), include_stopped=stopped)
    return _page(
        request, "workers.html", viewer, regions=workers_regions(found, viewer), stopped=stopped,
        live_url="/ui/live/workers" + ("?stopped=true" if stopped else ""), nav="workers",
    )  # fmt: skip


@router.post("/ui/workers/{name}/{verb}")
def worker_action(request: Request, viewer: Controller, name: str, verb: str) -> Response:
    if verb not in ("drain", "undrain"):
        return _not_found(request, viewer, f"No such action: {verb}.")
    try:
        actor = Actor(viewer.who.name, request_id(request))
        message = actions.drain(settings_of(request), name, verb == "drain", actor)
    except WorkerNotFound:
        return _not_found(request, viewer, f"There is no worker {name}.")
    return _redirect(request, "/ui/workers", message)


def refused(reason: str) -> Response:
    """The answer to a POST that may not act (farm.web.auth.Refused)."""
    return page(
        "error.html", 403, viewer=None, flash=None, regions={}, sigs={}, title="Refused",
        message=reason,
    )  # fmt: skip
