"""``farm demo``: the main job, end to end through the real queue.

It answers for everything it starts (see :mod:`farm.standalone`): a worker that exits ends
the demo within a poll, with the last lines of its log; so does a broker that refuses work
for good; SIGINT and SIGTERM stop the worker and the embedded servers on the way out.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from farm.config import Settings
from farm.errors import FarmError
from farm.queries import wait_for_job
from farm.specs import parse_spec
from farm.standalone import standalone
from farm.submit import submit

# A conditional VAE learns the signed distance fields of four letters in the fonts that ship
# in matplotlib's wheel; the title shades the decoded fields into crisp colour edges at 720p.
TRAIN = {
    "kind": "train",
    "model": "vae",
    "dataset": "glyphs",
    "charset": "AFMR",
    "conditional": True,
    "target": "sdf",
    # Wider than a shape cVAE's default of 2: the title encodes each letter of one font,
    # so a latent that keeps the font's details serves it best (bench/demo_legibility.py).
    "latent_dim": 16,
    # Nor the shape cVAE's posterior floor (min_std 0.5): it is for prior samples, and the
    # title decodes encoder means, which keep more of the font's detail without it.
    "min_std": 0.0,
    "image_size": 32,
    "epochs": 120,
    "seed": 0,
}
RENDER = {
    "kind": "render",
    "mode": "title",
    "text": "FARM",
    "style": "DejaVuSans-Bold",
    "frames": "1-96",
    "chunk_size": 48,
    "fps": 24,
    "width": 1280,
    "height": 720,
    "colors": {
        "fill": "#f5c542",
        "outline": "#fff4d6",
        "shadow": "#0b0d1a",
        "background": "#1b1f3b",
        "smooth_px": 0.6,
    },
    "output": "demo.mp4",
}


def run_demo(settings: Settings, console: Console) -> Path:
    started = time.monotonic()
    with standalone(settings, "demo-worker") as farm:
        s, celery = farm.settings, farm.celery
        console.print(f"worker started (log: {farm.worker.log_path})")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        train = submit(s, celery, parse_spec({**TRAIN, "name": f"demo-glyphs-{stamp}"}))
        console.print(f"train job {train.job_id} submitted")
        spec = {**RENDER, "name": f"demo-render-{stamp}", "checkpoint": f"job:{train.job_id}"}
        render = submit(s, celery, parse_spec(spec))
        console.print(f"render job {render.job_id} submitted (waits for the checkpoint)")
        for job in (train, render):
            row = wait_for_job(s, job.job_id, on_poll=farm.check)
            if row["state"] != "succeeded":
                raise FarmError(f"demo job {job.job_id} {row['state']}: {row['error']}")
            console.print(f"job {job.job_id} ({job.name}) succeeded")
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")
    return s.output_root_abs() / "demo.mp4"
