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

TRAIN = {"kind": "train", "model": "vae", "dataset": "digits", "epochs": 30, "seed": 0}
RENDER = {
    "kind": "render",
    "frames": "1-240",
    "chunk_size": 60,
    "fps": 24,
    "width": 256,
    "height": 256,
    "keyframes": list(range(10)),
    "output": "demo.mp4",
}


def run_demo(settings: Settings, console: Console) -> Path:
    started = time.monotonic()
    with standalone(settings, "demo-worker") as farm:
        s, celery = farm.settings, farm.celery
        console.print(f"worker started (log: {farm.worker.log_path})")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        train = submit(s, celery, parse_spec({**TRAIN, "name": f"demo-vae-{stamp}"}))
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
