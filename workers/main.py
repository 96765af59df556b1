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
    max_tasks_per_child: int | None = None,
    max_memory_mb: int | None = None,
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
            *([f"--max-tasks-per-child={max_tasks_per_child}"] if max_tasks_per_child else []),
            *([f"--max-memory-per-child={max_memory_mb * 1024}"] if max_memory_mb else []),
        ]
    )  # fmt: skip
