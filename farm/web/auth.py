"""Who is looking at the monitor, and whether a POST may act: FastAPI dependencies over the
signed session cookie (:mod:`farm.web.session`).

- Pages need a session whose token is still valid (else a redirect to the login page);
  the live stream, images and downloads answer 401 instead.
- Every POST is checked, before anything else, for coming from this site (``Origin``, else
  ``Referer``) and for the session's CSRF token in its form; then a read-only token is
  refused (403). The cookie is ``SameSite=Lax``, so a cross-site POST carries none anyway.
- The REST API never reads this cookie: its routes take bearer tokens only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from farm.config import Settings
from farm.tokens import Principal, principal_by_hash
from farm.web import session as sess

MAX_FORM_BYTES = 16 * 1024


class LoginRequired(Exception):
    """Raised when a page is asked for without a valid session: answered with the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class NotAuthenticated(Exception):
    """Raised when a stream, image or download is asked for without a valid session: 401."""


class Refused(Exception):
    """Raised when a POST may not act (another site, a missing or wrong CSRF token, a
    read-only token): 403 with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Viewer:
    who: Principal
    session: sess.Session
    csrf: str

    @property
    def can_control(self) -> bool:
        return not self.who.read_only


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def key_of(request: Request) -> bytes:
    """The signing key, read from the data directory once per app."""
    key: bytes | None = getattr(request.app.state, "web_key", None)
    if key is None:
        key = request.app.state.web_key = sess.secret(settings_of(request).data_dir)
    return key


def current(request: Request) -> Viewer | None:
    key = key_of(request)
    found = sess.decode_session(key, request.cookies.get(sess.SESSION_COOKIE), time.time())
    if found is None:
        return None
    who = principal_by_hash(settings_of(request), found.token_hash)
    if who is None:
        return None
    return Viewer(who, found, sess.csrf_token(key, found.nonce))


async def _current(request: Request) -> Viewer | None:
    return await run_in_threadpool(current, request)


async def page_viewer(request: Request) -> Viewer:
    viewer = await _current(request)
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return viewer


async def resource_viewer(request: Request) -> Viewer:
    viewer = await _current(request)
    if viewer is None:
        raise NotAuthenticated()
    return viewer


async def form_of(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, first value of each field (the forms
    are ours: a few short fields; no multipart parser needed)."""
    cached: dict[str, str] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused("form too large")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form: dict[str, str] = {}
    if ctype == "application/x-www-form-urlencoded":
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        form = {k: v[0] for k, v in parsed.items()}
    request.state.form = form
    return form


def check_origin(request: Request) -> None:
    h = request.headers
    if not sess.same_origin(h.get("host"), h.get("origin"), h.get("referer")):
        raise Refused("this form was not sent from the farm monitor's own pages")


async def controller(request: Request) -> Viewer:
    """A POST that acts: from this site, with this session's CSRF token, by a token that may
    control the farm. A request without a session is refused too (403, not a login page:
    a form post is never where a login should begin)."""
    check_origin(request)
    form = await form_of(request)
    viewer = await _current(request)
    if viewer is None:
        raise Refused("not logged in (or the session's token was revoked)")
    if not sess.csrf_ok(key_of(request), viewer.session.nonce, form.get("csrf")):
        raise Refused("missing or wrong CSRF token: reload the page and try again")
    if viewer.who.read_only:
        raise Refused(f"token {viewer.who.name!r} is read-only")
    return viewer


async def session_poster(request: Request) -> Viewer:
    """A POST any logged-in viewer may make (logging out): same origin and CSRF checks."""
    check_origin(request)
    form = await form_of(request)
    viewer = await _current(request)
    if viewer is None:
        raise LoginRequired("/")
    if not sess.csrf_ok(key_of(request), viewer.session.nonce, form.get("csrf")):
        raise Refused("missing or wrong CSRF token: reload the page and try again")
    return viewer


PageViewer = Annotated[Viewer, Depends(page_viewer)]
ResourceViewer = Annotated[Viewer, Depends(resource_viewer)]
Controller = Annotated[Viewer, Depends(controller)]
SessionPoster = Annotated[Viewer, Depends(session_poster)]
