"""What the farm costs over a bare script for the same render.

Renders the same 1,000-frame 64x64 latent walk twice in one run: once through the farm
(submit -> PostgreSQL -> Redis -> Celery worker -> ffmpeg segments -> assembly -> video
recorded as done) and once as a bare script (the same checkpoint, the same model code and
the same segment writer, encoder arguments included; no queue, no database). Both sides
are warmed up first. Prints both times and their ratio (target: farm / bare <= 1.05), and
each back-to-back pair's ratio and difference (on a shared machine the load drifts between
pairs more than within one).

A farm run ends when the job's finishing transaction commits, as a PostgreSQL notification
tells it (a trigger the bench installs on ``jobs`` for its run), not at a poll of the job's
state. ``--phases`` prints each run's events in milliseconds after the submission began.

    python bench/render_overhead.py [--frames 1000] [--chunk-size 1000] [--repeats 3]
                                    [--size 64] [--workers 1] [--phases]

Uses FARM_DATABASE_URL / FARM_BROKER_URL when set, else the embedded servers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
import torch
from sqlalchemy import text

from farm.celery_app import make_celery
from farm.config import Settings
from farm.db import get_engine, session_scope
from farm.processes import start_worker, stop_children
from farm.queries import wait_for_job
from farm.runtime import services
from farm.specs import parse_spec
from farm.submit import submit
from workers.checkpoint import load_checkpoint
from workers.encode import PipelinedWriter, count_frames, ffmpeg_binary
from workers.formats import RENDER_PIX_FMT, get_format
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
    # The segment writer a chunk opens for this output (the h264 format's, with its colour
    # conversion and tags) in the same pipeline (encoding overlaps rendering), so the two
    # sides differ only by what the farm adds: queue, database, checks, previews.
    fmt = get_format("h264")
    segment = fmt.open_segment(
        out, size, size, 24, RENDER_PIX_FMT, range(frames), {}, ffmpeg=ffmpeg_binary()
    )
    with PipelinedWriter(segment) as w:
        for batch_frames in render_frames(model, latents, size, size, batch_size=batch):  # type: ignore[arg-type]
            w.write(batch_frames)
    return time.perf_counter() - started


class FinishWaiter:
    """Wakes when a job finishes, from a PostgreSQL notification sent by a trigger that the
    bench installs (and removes) on ``jobs``: the farm's time, not a poll interval's.

    The trigger fires in the transaction that finishes the job, so the notification arrives
    at that commit. A missed one cannot hang the bench: each second without one, the job's
    state is read."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.conn = psycopg.connect(_psycopg_url(s), autocommit=True)
        self.conn.execute(_TRIGGER)
        self.conn.execute(f"LISTEN {_CHANNEL}")

    def wait(self, job_id: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for note in self.conn.notifies(timeout=1.0, stop_after=1):
                if note.payload == str(job_id):
                    return
            state = self.conn.execute("SELECT state FROM jobs WHERE id = %s", (job_id,)).fetchone()
            if state is not None and str(state[0]).lower() in _FINISHED:
                return
        raise TimeoutError(f"job {job_id} not finished after {timeout_s}s")

    def close(self) -> None:
        self.conn.execute(f"DROP TRIGGER IF EXISTS {_CHANNEL} ON jobs")
        self.conn.execute(f"DROP FUNCTION IF EXISTS {_CHANNEL}()")
        self.conn.close()


_CHANNEL = "bench_job_finished"
_FINISHED = ("succeeded", "failed", "canceled")
_TRIGGER = f"""
CREATE OR REPLACE FUNCTION {_CHANNEL}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{_CHANNEL}', NEW.id::text); RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER {_CHANNEL} AFTER UPDATE OF state ON jobs FOR EACH ROW
WHEN (lower(NEW.state::text) IN ('succeeded', 'failed', 'canceled'))
EXECUTE FUNCTION {_CHANNEL}();
"""


def _psycopg_url(s: Settings) -> str:
    return get_engine(s).url.set(drivername="postgresql").render_as_string(hide_password=False)


def farm_render(
    s: Settings,
    waiter: FinishWaiter,
    celery: object,
    frames: int,
    chunk: int,
    size: int,
    batch: int,
    n: int,
    phases: bool = False,
) -> float:
    spec = parse_spec(
        {
            "kind": "render", "name": f"bench-{n}-{time.time_ns()}", "checkpoint": "job:bench-vae",
            "frames": f"1-{frames}", "chunk_size": chunk, "width": size, "height": size,
            "keyframes": KEYFRAMES, "batch_size": batch, "output": f"bench/farm-{n}.mp4",
        }
    )  # fmt: skip
    wall0 = time.time()
    started = time.perf_counter()
    job = submit(s, celery, spec)  # type: ignore[arg-type]
    submitted = time.perf_counter()
    waiter.wait(job.job_id, timeout_s=600)
    elapsed = time.perf_counter() - started
    row = wait_for_job(s, job.job_id, timeout_s=5)
    if row["state"] != "succeeded":
        raise SystemExit(f"farm render failed: {row['error']}")
    if phases:
        print_phases(s, job.job_id, wall0, submitted - started, elapsed)
    return elapsed


def print_phases(s: Settings, job_id: int, wall0: float, submit_s: float, total_s: float) -> None:
    """The job's events as milliseconds after the submission started (an event's time is
    its transaction's start), so a run's total can be split into its phases."""
    with session_scope(s) as session:
        rows = session.execute(
            text(
                "SELECT extract(epoch FROM e.at) AS at, t.kind, t.index, e.to_state"
                " FROM events e LEFT JOIN tasks t ON t.id = e.task_id"
                " WHERE e.job_id = :job ORDER BY e.at, e.id"
            ),
            {"job": job_id},
        ).all()
    parts = [f"submit() {submit_s * 1000:.0f}"]
    for r in rows:
        what = f"{r.kind}[{r.index}]" if r.kind else "job"
        parts.append(f"{what}->{r.to_state} {(float(r.at) - wall0) * 1000:.0f}")
    parts.append(f"seen {total_s * 1000:.0f}")
    print("  phases (ms after submit):", ", ".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="farm worker processes")
    ap.add_argument(
        "--phases", action="store_true", help="print each farm run's events, in ms after submit"
    )
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="farm-bench-"))
    settings = Settings(output_root=root / "out", data_dir=root / "data")
    with services(settings) as s:
        celery = make_celery(s)
        workers = [
            start_worker(s, name=f"worker {i}", log_file=root / f"worker-{i}.log", of=args.workers)
            for i in range(args.workers)
        ]
        waiter = FinishWaiter(s)
        try:
            train = submit(
                s, celery, parse_spec({"kind": "train", "name": "bench-vae", "epochs": 3})
            )
            if wait_for_job(s, train.job_id, timeout_s=600)["state"] != "succeeded":
                raise SystemExit("training the benchmark checkpoint failed")
            ckpt = s.output_root_abs() / "checkpoints" / "bench-vae.safetensors"
            warm_chunk = max(1, 50 // args.workers)  # one chunk for each worker to warm up
            farm_render(s, waiter, celery, 50, warm_chunk, args.size, args.batch, -1)
            bare_render(ckpt, 50, root / "warm.mp4", args.size, args.batch)
            farm_t, bare_t = [], []
            for i in range(args.repeats):  # interleaved, so drift hits both sides alike
                farm_t.append(
                    farm_render(
                        s,
                        waiter,
                        celery,
                        args.frames,
                        args.chunk_size,
                        args.size,
                        args.batch,
                        i,
                        args.phases,
                    )
                )
                out = root / f"bare-{i}.mp4"
                bare_t.append(bare_render(ckpt, args.frames, out, args.size, args.batch))
                assert count_frames(out, ffmpeg=ffmpeg_binary())[0] == args.frames
        finally:
            stop_children(workers, grace_s=30)
            waiter.close()
    f, b = statistics.median(farm_t), statistics.median(bare_t)
    print(
        f"frames={args.frames} size={args.size}x{args.size} "
        f"chunk_size={args.chunk_size} workers={args.workers} repeats={args.repeats}"
    )
    print(f"farm  median {f:.3f}s  runs {[round(x, 3) for x in farm_t]}")
    print(f"bare  median {b:.3f}s  runs {[round(x, 3) for x in bare_t]}")
    print(f"farm / bare = {f / b:.3f}  (target <= 1.05)")
    # Each pair ran back to back, so its ratio and difference see the same load.
    ratios = sorted(x / y for x, y in zip(farm_t, bare_t, strict=True))
    extra = sorted(x - y for x, y in zip(farm_t, bare_t, strict=True))
    print(
        f"per pair: farm / bare median {statistics.median(ratios):.3f} "
        f"({ratios[0]:.3f}-{ratios[-1]:.3f}); farm - bare median "
        f"{statistics.median(extra) * 1000:.0f} ms ({extra[0] * 1000:.0f}-{extra[-1] * 1000:.0f})"
    )
    print(f"worker logs: {root}")


if __name__ == "__main__":
    main()
