"""Jinja2 for the monitor: one environment (autoescaping on), its filters, and HTML responses
with the headers every page carries (a strict Content-Security-Policy: scripts, styles and
media from this site only, no inline script, no framing)."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from farm.web import views

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATIC_URL = "/ui/static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none';"
        " form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Same-origin requests keep their Referer (the POST check's fallback); others get none.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=views.duration, size=views.size, file_name=views.file_name, pretty=_pretty,
        pct=_pct, num=_num,
    )  # fmt: skip
    env.globals.update(static=_static_url)
    return env


@functools.cache
def _static_url(name: str) -> str:
    """``/ui/static/NAME?v=HASH``: the file's content hash busts caches on upgrade."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]
    return f"{STATIC_URL}/{name}?v={digest}"


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(name, **context), status_code=status, headers=SECURITY_HEADERS)


def signature(html: str) -> str:
    """A region's fingerprint: the page and the live stream send it, and the browser swaps a
    region only when it differs from what it shows."""
    return hashlib.sha1(html.encode(), usedforsecurity=False).hexdigest()[:16]
