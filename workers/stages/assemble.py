"""Assembly stage: join the chunk segments by stream copy into the job's video and check it.

Segments are removed only after the success is committed, so an assembly that runs again
(its first worker died after writing the video) still finds them.
"""

from __future__ import annotations

import shutil

from sqlalchemy import select

from farm.db import session_scope
from farm.models import Task
from farm.outputs import confine, segment_path
from farm.states import TaskKind
from workers.checkpoint import sha256_file
from workers.encode import concat_segments, ffmpeg_binary, probe_video
from workers.runner import Output, Result, TaskContext


def run(ctx: TaskContext) -> Result:
    spec = ctx.spec
    root = ctx.settings.output_root_abs()
    with session_scope(ctx.settings) as s:
        indexes = (
            s.execute(
                select(Task.index)
                .where(Task.job_id == ctx.job_id, Task.kind == TaskKind.RENDER_CHUNK)
                .order_by(Task.index)
            )
            .scalars()
            .all()
        )
    segments = [segment_path(root, ctx.job_id, i) for i in indexes]
    missing = [str(p) for p in segments if not p.is_file()]
    if missing:
        raise RuntimeError(f"missing segments: {', '.join(missing)}")
    out = confine(root, spec["output"])
    ffmpeg = ffmpeg_binary(ctx.settings.ffmpeg)
    concat_segments(segments, out, ffmpeg=ffmpeg, expected_frames=ctx.frame_count, fps=spec["fps"])
    info = probe_video(out, ffmpeg=ffmpeg)
    info.update(frames_range=ctx.frames, fps_requested=spec["fps"])
    seg_dir = segments[0].parent

    def remove_segments() -> None:
        shutil.rmtree(seg_dir, ignore_errors=True)

    return Result(
        [Output("video", out, out.stat().st_size, sha256_file(out), info)],
        supersedes=("segment",),
        after_commit=remove_segments,
    )
