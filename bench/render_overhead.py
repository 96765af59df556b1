"""What the farm costs over a bare script for the same render.

Renders the same 1,000-frame 64x64 latent walk twice in one run: once through the farm
(submit -> PostgreSQL -> Redis -> Celery worker -> ffmpeg segments -> assembly -> video
recorded as done) and once as a bare script (the same checkpoint, the same model code and
the same ffmpeg pipe; no queue, no database). Both sides are warmed up first. Prints both
times and their ratio (target: farm / bare <= 1.05).

    python bench/render_overhead.py [--frames 1000] [--chunk-size 1000] [--repeats 3]
                                    [--size 64] [--workers 1]

Uses FARM_DATABASE_URL / FARM_BROKER_URL when set, else the embedded servers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from farm.celery_app import make_celery
from farm.config import Settings
from farm.processes import start_worker, stop_children
from farm.queries import wait_for_job
from farm.runtime import services
from farm.specs import parse_spec
from farm.submit import submit
from workers.checkpoint import load_checkpoint
from workers.encode import PipelinedWriter, SegmentWriter, count_frames, ffmpeg_binary
from workers.models import get_family
from workers.render import keyframe_latents, render_frames, walk_latents

KEYFRAMES = list(range(10))


def bare_render(checkpoint: Path, frames: int, out: Path, size: int, batch: int) -> float:
    started = time.perf_counter()
    weights, meta = load_checkpoint(checkpoint)
    family = get_family(meta["family"])
    model = family.model_cls(family.config_cls(**meta["config"]))
    model.load_state_dict(weights)
    model.eval()
    means = torch.tensor(meta["class_means"], dtype=torch.float32)
    keys = keyframe_latents(means, KEYFRAMES, means.shape[1])
    latents = walk_latents(keys, list(range(frames)), frames)
    # The same writer pipeline a chunk uses (encoding overlaps rendering), so the two sides
    # differ only by what the farm adds: queue, database, checks, previews.
    with PipelinedWriter(SegmentWriter(out, size, size, 24, ffmpeg=ffmpeg_binary())) as w:
        for batch_frames in render_frames(model, latents, size, size, batch_size=batch):  # type: ignore[arg-type]
            w.write(batch_frames)
    return time.perf_counter() - started


def farm_render(
    s: Settings, celery: object, frames: int, chunk: int, size: int, batch: int, n: int
) -> float:
    spec = parse_spec(
        {
            "kind": "render", "name": f"bench-{n}-{time.time_ns()}", "checkpoint": "job:bench-vae",
            "frames": f"1-{frames}", "chunk_size": chunk, "width": size, "height": size,
            "keyframes": KEYFRAMES, "batch_size": batch, "output": f"bench/farm-{n}.mp4",
        }
    )  # fmt: skip
    started = time.perf_counter()
    job = submit(s, celery, spec)  # type: ignore[arg-type]
    row = wait_for_job(s, job.job_id, poll_s=0.02, timeout_s=600)
    elapsed = time.perf_counter() - started
    if row["state"] != "succeeded":
        raise SystemExit(f"farm render failed: {row['error']}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="farm worker processes")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="farm-bench-"))
    settings = Settings(output_root=root / "out", data_dir=root / "data")
    with services(settings) as s:
        celery = make_celery(s)
        workers = [
            start_worker(s, name=f"worker {i}", log_file=root / f"worker-{i}.log")
            for i in range(args.workers)
        ]
        try:
            train = submit(
                s, celery, parse_spec({"kind": "train", "name": "bench-vae", "epochs": 3})
            )
            if wait_for_job(s, train.job_id, timeout_s=600)["state"] != "succeeded":
                raise SystemExit("training the benchmark checkpoint failed")
            ckpt = s.output_root_abs() / "checkpoints" / "bench-vae.safetensors"
            warm_chunk = max(1, 50 // args.workers)  # one chunk for each worker to warm up
            farm_render(s, celery, 50, warm_chunk, args.size, args.batch, -1)
            bare_render(ckpt, 50, root / "warm.mp4", args.size, args.batch)
            farm_t, bare_t = [], []
            for i in range(args.repeats):  # interleaved, so drift hits both sides alike
                farm_t.append(
                    farm_render(s, celery, args.frames, args.chunk_size, args.size, args.batch, i)
                )
                out = root / f"bare-{i}.mp4"
                bare_t.append(bare_render(ckpt, args.frames, out, args.size, args.batch))
                assert count_frames(out, ffmpeg=ffmpeg_binary())[0] == args.frames
        finally:
            stop_children(workers, grace_s=30)
    f, b = statistics.median(farm_t), statistics.median(bare_t)
    print(
        f"frames={args.frames} size={args.size}x{args.size} "
        f"chunk_size={args.chunk_size} workers={args.workers} repeats={args.repeats}"
    )
    print(f"farm  median {f:.3f}s  runs {[round(x, 3) for x in farm_t]}")
    print(f"bare  median {b:.3f}s  runs {[round(x, 3) for x in bare_t]}")
    print(f"farm / bare = {f / b:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
