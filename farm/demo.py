"""``farm demo``: the main job, end to end through the real queue."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.console import Console

from farm.config import Settings
from farm.errors import FarmError
from farm.queries import wait_for_job
from farm.runtime import services
from farm.specs import parse_spec
from farm.submit import submit
from farm.sweeper import sweep_forever

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
    from farm.celery_app import make_celery
    from farm.cli import start_worker_process, stop_process

    started = time.monotonic()
    stop = threading.Event()
    with services(settings) as s:
        celery = make_celery(s)
        log = s.data_dir.resolve() / "logs" / "demo-worker.log"
        worker = start_worker_process(s, log_file=log)
        console.print(f"worker started (log: {log})")
        sweeper = threading.Thread(target=sweep_forever, args=(s, celery, stop), daemon=True)
        sweeper.start()
        try:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            train = submit(s, celery, parse_spec({**TRAIN, "name": f"demo-vae-{stamp}"}))
            console.print(f"train job {train.job_id} submitted")
            spec = {**RENDER, "name": f"demo-render-{stamp}", "checkpoint": f"job:{train.job_id}"}
            render = submit(s, celery, parse_spec(spec))
            console.print(f"render job {render.job_id} submitted (waits for the checkpoint)")
            for job in (train, render):
                row = wait_for_job(s, job.job_id, timeout_s=900)
                if row["state"] != "succeeded":
                    raise FarmError(f"demo job {job.job_id} {row['state']}: {row['error']}")
                console.print(f"job {job.job_id} ({job.name}) succeeded")
        finally:
            stop.set()
            stop_process(worker)
    path = s.output_root_abs() / "demo.mp4"
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")
    return path
