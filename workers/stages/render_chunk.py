"""Render-chunk stage: decode this chunk's slice of the latent walk into one video segment.

The latent of a frame depends only on its position in the whole job, so any chunking of
the range renders the same frames and the segments join seamlessly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from sqlalchemy import select

from farm.db import session_scope
from farm.frames import parse_frames
from farm.models import Artifact, JobDependency
from farm.outputs import confine, segment_path
from workers.checkpoint import sha256_file
from workers.device import device, load_model
from workers.encode import SegmentWriter, ffmpeg_binary
from workers.models.vae import ConvVAE
from workers.render import keyframe_latents, render_frames, walk_latents
from workers.runner import Output, Result, TaskContext


def checkpoint_for(ctx: TaskContext) -> Path:
    ref = str(ctx.spec["checkpoint"])
    if not ref.startswith("job:"):
        return confine(ctx.settings.output_root_abs(), ref)
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


def run(ctx: TaskContext) -> Result:
    spec = ctx.spec
    model, meta, digest = load_model(checkpoint_for(ctx))
    if not isinstance(model, ConvVAE):
        raise TypeError(f"render needs a VAE checkpoint, got {type(model).__name__}")
    total = len(parse_frames(spec["frames"]))
    means = torch.tensor(meta["class_means"], dtype=torch.float32)
    keys = keyframe_latents(means, spec["keyframes"], means.shape[1])
    positions = range(ctx.position, ctx.position + ctx.frame_count)
    latents = walk_latents(keys, list(positions), total)  # (N, D)
    out = segment_path(ctx.settings.output_root_abs(), ctx.job_id, ctx.index)
    out.parent.mkdir(parents=True, exist_ok=True)
    width, height = spec["width"], spec["height"]
    with SegmentWriter(
        out, width, height, spec["fps"], ffmpeg=ffmpeg_binary(ctx.settings.ffmpeg)
    ) as writer:
        done = 0
        for frames in render_frames(
            model, latents, width, height, batch_size=spec["batch_size"], device=device()
        ):
            ctx.check()
            writer.write(frames)
            done += frames.shape[0]
            ctx.progress({"frames": done, "of": ctx.frame_count})
    meta_out = {
        "frames": ctx.frames,
        "frame_count": ctx.frame_count,
        "checkpoint_sha256": digest,
    }
    return Result([Output("segment", out, out.stat().st_size, sha256_file(out), meta_out)])
