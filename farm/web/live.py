"""Live pages: server-sent events fed from the database.

Each open page holds one ``EventSource``. Its stream polls a cheap watermark every
``TICK_S`` (the newest event id, plus for a job its priority, pause flag and running tasks'
progress, which move without events), re-renders the page's regions only when the
watermark moved, and pushes the regions whose HTML changed. The rate is bounded per
connection whatever the farm does; a quiet farm costs one indexed query per tick per page.

A stream re-checks its session's token every ``RECHECK_S`` (a revoked token's pages stop
updating and go back to the login page) and ends after ``LIFETIME_S``; its last
message has the page open the next one at once (which sends every region once more, ignored
where unchanged). uvicorn waits for open responses before it exits, so this bounds how long open
pages hold up a stopping ``farm api`` (uvicorn's ``timeout_graceful_shutdown`` shortens it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from farm.errors import JobNotFound
from farm.tokens import principal_by_hash
from farm.web.auth import ResourceViewer, Viewer, settings_of
from farm.web.listing import parse_filters
from farm.web.queries import (
    job_view,
    job_watermark,
    jobs_page,
    jobs_watermark,
)
from farm.web.regions import Regions, job_regions, jobs_regions, workers_regions
from farm.web.templating import signature
from farm.web.training import ProgressLog

TICK_S = 0.5
WORKERS_TICK_S = 1.0
# A jobs page re-renders this often even with no new event: a priority change writes none.
REFRESH_S = 10.0
RECHECK_S = 5.0
KEEPALIVE_S = 15.0
LIFETIME_S = 30.0
# The progress records this process has seen, for the training plots (farm.web.training).
PROGRESS = ProgressLog()

router = APIRouter(include_in_schema=False)


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def stream(
    request: Request,
    viewer: Viewer,
    mark: Callable[[], Any] | None,
    regions: Callable[[], Regions],
    tick_s: float = TICK_S,
    refresh_s: float = REFRESH_S,
) -> AsyncIterator[str]:
    """Push ``regions()`` whenever ``mark()`` changes (every tick if ``mark`` is None, and
    at least every ``refresh_s``), only the regions whose HTML changed since the last push."""
    settings = settings_of(request)
    sent: dict[str, str] = {}
    last_mark: Any = object()
    started = last_check = last_sent = time.monotonic()
    last_render = float("-inf")
    yield "retry: 500\n\n"
    while not await request.is_disconnected():
        now = time.monotonic()
        if now - started > LIFETIME_S:
            yield _event("again", {})  # the page opens its next stream at once
            return
        if now - last_check > RECHECK_S:
            last_check = now
            alive = await run_in_threadpool(principal_by_hash, settings, viewer.session.token_hash)
            if alive is None:
                yield _event("logout", {})
                return
        current = await run_in_threadpool(mark) if mark is not None else now
        if current != last_mark or now - last_render >= refresh_s:
            last_mark, last_render = current, now
            try:
                html = await run_in_threadpool(regions)
            except JobNotFound:
                yield _event("gone", {})
                return
            changed = {k: v for k, v in html.items() if sent.get(k) != v}
            if changed:
                sent.update(changed)
                last_sent = now
                payload = {k: {"html": v, "sig": signature(v)} for k, v in changed.items()}
                yield _event("regions", payload)
        if now - last_sent > KEEPALIVE_S:
            last_sent = now
            yield ": keepalive\n\n"
        await asyncio.sleep(tick_s)


def _sse(body: AsyncIterator[str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


@router.get("/ui/live/jobs")
async def live_jobs(request: Request, viewer: ResourceViewer) -> StreamingResponse:
    settings = settings_of(request)
    filters, _ = parse_filters(request.query_params)

    def regions() -> Regions:
        return jobs_regions(jobs_page(settings, filters), filters, viewer)

    return _sse(stream(request, viewer, lambda: jobs_watermark(settings), regions))


@router.get("/ui/live/jobs/{job_id}")
async def live_job(request: Request, viewer: ResourceViewer, job_id: int) -> Response:
    settings = settings_of(request)
    if not 1 <= job_id <= 2**62:
        return Response("no such job", status_code=404)

    def regions() -> Regions:
        return job_regions(settings, job_view(settings, job_id), viewer, PROGRESS)

    return _sse(stream(request, viewer, lambda: job_watermark(settings, job_id), regions))


@router.get("/ui/live/workers")
async def live_workers(
    request: Request, viewer: ResourceViewer, stopped: bool = False
) -> StreamingResponse:
    from farm.registry import list_workers

    settings = settings_of(request)

    def regions() -> Regions:
        return workers_regions(list_workers(settings, include_stopped=stopped), viewer)

    return _sse(stream(request, viewer, None, regions, tick_s=WORKERS_TICK_S))
