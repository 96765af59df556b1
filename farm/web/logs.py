"""The job page's task log view: one task's log as server-sent events, followed as it is
written, through the task's retries, until the task ends.

Events: ``lines`` (``{"attempt", "lines": [[seq, at, level, text], ...]}``), ``end``
(``{"state"}``: the task has ended), and after ``live.LIFETIME_S`` ``again`` (``{"attempt",
"after"}``: the page reconnects from there, so a stream never holds a connection for long).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from farm.errors import TaskNotFound
from farm.tasklogs import END_GRACE_S, read
from farm.web.auth import ResourceViewer, settings_of
from farm.web.live import LIFETIME_S, TICK_S, _event, _sse

router = APIRouter(include_in_schema=False)


async def _lines(
    request: Request, task_id: int, attempt: int | None, after: int
) -> AsyncIterator[str]:
    settings = settings_of(request)
    started = time.monotonic()
    grace_until: float | None = None
    first = await run_in_threadpool(read, settings, task_id, attempt)
    k = max(first.attempt, 1)
    yield "retry: 1000\n\n"
    while not await request.is_disconnected():
        chunk = await run_in_threadpool(read, settings, task_id, k, after)
        if chunk.lines:
            after = chunk.lines[-1].seq
            yield _event("lines", {"attempt": k, "lines": [x.as_row() for x in chunk.lines]})
        if chunk.attempts > k:
            k, after = k + 1, -1
            continue
        if chunk.task_over:  # see farm.tasklogs.follow: the worker's last flush comes after
            grace_until = grace_until or time.monotonic() + END_GRACE_S
            if chunk.closed or time.monotonic() > grace_until:
                yield _event("end", {"state": chunk.state})
                return
        if time.monotonic() - started > LIFETIME_S:
            yield _event("again", {"attempt": k, "after": after})
            return
        await asyncio.sleep(TICK_S)


@router.get("/ui/live/tasks/{task_id}/log")
async def live_task_log(
    request: Request,
    _: ResourceViewer,
    task_id: int,
    attempt: int | None = None,
    after: int = -1,
) -> Response:
    if not 1 <= task_id <= 2**62 or (attempt is not None and not 1 <= attempt <= 2**31):
        return Response("no such task", status_code=404)
    try:
        await run_in_threadpool(read, settings_of(request), task_id, attempt)
    except TaskNotFound:
        return Response("no such task", status_code=404)
    return _sse(_lines(request, task_id, attempt, max(after, -1)))
