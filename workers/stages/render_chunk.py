"""Render-chunk stage: render this chunk's slice of the job's mode into one segment.

Every mode (:mod:`workers.modes`) maps a frame's position in the whole job to its picture, so
any chunking of the range renders the same frames and the segments join seamlessly. Frames
are computed batch by batch while a writer thread feeds the previous batch to ffmpeg.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from sqlalchemy import select

from farm.db import session_scope
from farm.frames import parse_frames
from farm.inputs import OutsideInputRoots, confine_input, input_roots
from farm.models import Artifact, JobDependency
from workers.checkpoint import CheckpointError
from workers.context import Output, PermanentError, Result, TaskContext
from workers.device import device, load_model
from workers.encode import PipelinedWriter, ffmpeg_binary
from workers.formats import get_format
from workers.media.writer import pix_fmt_of
from workers.modes import RenderJob, get_mode
from workers.outputs import digest, file_stamp, segment_for
from workers.previews import keep_preview_frames, preview_positions
from workers.trainers.base import farm_version


def checkpoint_for(ctx: TaskContext) -> Path:
    ref = str(ctx.spec["checkpoint"])
    if not ref.startswith("job:"):
        try:  # again here: this worker's roots may differ, a link may have changed
            return confine_input(ctx.settings, ref)
        except OutsideInputRoots as e:
            raise PermanentError(f"checkpoint: {e}") from None
    if ctx.dependency_checkpoint is not None:  # read with the claim
        return Path(ctx.dependency_checkpoint)
    with session_scope(ctx.settings) as s:
        path = s.execute(
            select(Artifact.path)
            .join(JobDependency, JobDependency.depends_on_id == Artifact.job_id)
            .where(JobDependency.job_id == ctx.job_id, Artifact.kind == "checkpoint")
            .order_by(Artifact.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    if path is None:
        raise RuntimeError(f"the train job behind {ref!r} recorded no checkpoint")
    return Path(path)


def open_job(ctx: TaskContext, total: int) -> tuple[RenderJob, str]:
    """The loaded checkpoint as a :class:`RenderJob`, and its sha256. A checkpoint that
    cannot be read fails the task for good: another attempt would read the same bytes."""
    try:
        model, meta, sha = load_model(checkpoint_for(ctx))
    except CheckpointError as e:
        raise PermanentError(str(e)) from e
    root = ctx.settings.output_root_abs()
    return RenderJob(ctx.spec, model, meta, total, device(), root, input_roots(ctx.settings)), sha


def provenance(spec: dict[str, object], sha: str) -> dict[str, object]:
    """What reproduces the frames: same checkpoint, spec, seed and versions, same pixels."""
    return {
        "checkpoint_sha256": sha,
        "mode": spec.get("mode", "latent_walk"),
        "seed": spec.get("seed", 0),
        "torch": torch.__version__,
        "farm": farm_version(),
    }


def run(ctx: TaskContext) -> Result:
    spec = ctx.spec
    out_spec = spec["output"]
    fmt = get_format(out_spec["format"])
    total = len(parse_frames(spec["frames"]))
    job, checkpoint_sha = open_job(ctx, total)
    mode = get_mode(str(spec.get("mode", "latent_walk")))
    positions = list(range(ctx.position, ctx.position + ctx.frame_count))
    seg = segment_for(ctx.settings.output_root_abs(), ctx.job_id, ctx.index, fmt.segment_suffix)
    seg.parent.mkdir(parents=True, exist_ok=True)
    width, height = spec["width"], spec["height"]
    options = {k: v for k, v in out_spec["options"].items() if k != "audio"}
    if fmt.is_sequence:
        options["path"] = out_spec["path"]
    # The writer's input pixel format is the first batch's (grey, RGB, RGBA): the mode decides
    # the layout, the same for every batch, and the writer refuses a later batch that differs.
    batches = iter(mode(job, positions))
    first = next(batches, None)
    if first is None:
        raise RuntimeError(f"mode {spec.get('mode', 'latent_walk')!r} yielded no frames")
    pix_fmt_in = pix_fmt_of(first)
    writer = fmt.open_segment(
        seg, width, height, spec["fps"], pix_fmt_in, parse_frames(ctx.frames or ""), options,
        ffmpeg=ffmpeg_binary(ctx.settings.ffmpeg),
    )  # fmt: skip
    wanted = preview_positions(total)
    kept = segment_for(ctx.settings.output_root_abs(), ctx.job_id, 0, "").parent
    with PipelinedWriter(writer) as w:
        done = 0
        for frames in itertools.chain([first], batches):
            ctx.check()
            keep_preview_frames(kept, ctx.position + done, frames, wanted)
            w.write(frames)
            done += frames.shape[0]
            ctx.progress({"frames": done, "of": ctx.frame_count})
    stamp = None if fmt.is_sequence else file_stamp(seg)  # before reading: a change shows
    size, sha = digest(seg)
    info = {"frames": ctx.frames, "frame_count": ctx.frame_count, "format": fmt.name,
            "pix_fmt_in": pix_fmt_in, "stamp": stamp,
            **provenance(spec, checkpoint_sha)}  # fmt: skip
    return Result([Output("segment", seg, size, sha, info)])
