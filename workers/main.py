"""Starting a Celery worker process for the farm (what ``farm worker`` runs)."""

from __future__ import annotations

import socket

from farm.celery_app import make_celery
from farm.config import Settings
from farm.planner import CPU_QUEUE, GPU_QUEUE
from workers.tasks import register


def run_worker(
    settings: Settings,
    *,
    queues: str = f"{GPU_QUEUE},{CPU_QUEUE}",
    concurrency: int = 1,
    name: str | None = None,
    loglevel: str = "INFO",
) -> None:
    """Prefork pool: models and CUDA live in the child, which a crash can take down alone."""
    app = make_celery(settings)
    register(app, settings)
    node = name or f"farm-{queues.replace(',', '+')}@{socket.gethostname()}"
    app.worker_main(
        [
            "worker",
            "--queues", queues,
            "--concurrency", str(concurrency),
            "--pool", "prefork",
            "--hostname", node,
            "--task-events",
            "--without-gossip",
            "--without-mingle",
            f"--loglevel={loglevel}",
        ]
    )  # fmt: skip
