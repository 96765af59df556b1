"""``GET /tasks/{task_id}/logs``: a task attempt's log as JSON lines, whole or followed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from farm.api.app import principal
from farm.api.schemas import LogLinePublic
from farm.config import Settings
from farm.errors import TaskNotFound
from farm.tasklogs import as_json, follow, read
from farm.tokens import Principal

NDJSON = "application/x-ndjson"
# A followed answer ends after this even if its task has not (without the ``end`` line: the
# client asks again from the attempt and seq it reached), so no connection is held for long.
FOLLOW_WINDOW_S = 3.0
Reader = Annotated[Principal, Depends(principal)]
router = APIRouter()


def _line(obj: dict[str, object]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"


@router.get(
    "/tasks/{task_id}/logs",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the log's lines, one JSON object a line; followed, as they come",
            "content": {NDJSON: {"schema": LogLinePublic.model_json_schema()}},
        }
    },
    tags=["tasks"],
    operation_id="get_task_logs",
)
def task_logs(
    request: Request,
    _: Reader,
    task_id: int,
    attempt: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="default: latest")] = None,
    after: Annotated[int, Query(ge=-1, le=2**31 - 1, description="only lines after seq")] = -1,
    follow_: Annotated[
        bool,
        Query(
            alias="follow",
            description="stream lines as they are written, from `attempt` (default: the"
            " latest) through the task's later attempts, for up to 3 s; a last line of level"
            " `end` says the task has ended, else ask again from the last attempt and seq",
        ),
    ] = False,
) -> StreamingResponse:
    """A task attempt's log: what its worker logged, the stage's progress lines, ffmpeg's
    stderr and any traceback, bounded (the head and the tail, with a marker line counting
    what was dropped between them)."""
    settings: Settings = request.app.state.settings
    if not 1 <= task_id <= 2**62:
        raise TaskNotFound(task_id)
    first = read(settings, task_id, attempt, after)  # a 404 now, not inside the stream

    def lines() -> Iterator[str]:
        if not follow_:
            for x in first.lines:
                yield _line(as_json(task_id, first.attempt, x))
            return
        for k, x in follow(settings, task_id, attempt, after=after, timeout_s=FOLLOW_WINDOW_S):
            yield _line(as_json(task_id, k, x))

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(lines(), media_type=NDJSON, headers=headers)
