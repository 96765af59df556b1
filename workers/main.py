"""Starting a Celery worker process for the farm (what ``farm worker`` runs), and keeping its
row in the worker registry: registered when ready, a heartbeat from the main process (so an
idle worker, or one whose model holds the child, is still seen alive), drain requests
obeyed, and "stopped" on the way out."""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from farm import registry
from farm.celery_app import make_celery
from farm.config import Settings
from farm.planner import CPU_QUEUE, GPU_QUEUE
from farm.runtime import available_cpus, torch_threads
from workers.tasks import register

log = logging.getLogger(__name__)


class Presence(threading.Thread):
    """The registry heartbeat of one worker node, and its drain switch."""

    def __init__(self, app: Celery, settings: Settings, name: str, queues: str) -> None:
        super().__init__(name="farm-presence", daemon=True)
        self.app, self.settings, self.name, self.queues = app, settings, name, queues
        self.stop_event = threading.Event()
        self.drained = False

    def run(self) -> None:
        try:
            registry.register(self.settings, registry.identity(self.name, self.queues))
        except Exception as e:
            log.warning("could not register worker %s: %s", self.name, e)
        while True:
            try:
                draining = registry.heartbeat(self.settings, self.name)
                if draining is None:  # the row is gone (a new database): register again
                    registry.register(self.settings, registry.identity(self.name, self.queues))
                elif draining != self.drained:
                    self.set_consuming(not draining)
            except Exception as e:  # a database outage: the next beat tries again
                log.warning("worker %s: registry heartbeat failed: %s", self.name, e)
            if self.stop_event.wait(self.settings.heartbeat_s):
                return

    def set_consuming(self, consume: bool) -> None:
        """Drain: stop consuming (the running task finishes; claims refuse anything already
        on its way), or start again. Sent through the broker to this node's own control
        channel, which its event loop handles."""
        for queue in self.queues.split(","):
            if consume:
                self.app.control.add_consumer(queue, destination=[self.name], reply=False)
            else:
                self.app.control.cancel_consumer(queue, destination=[self.name], reply=False)
        self.drained = not consume
        log.warning("worker %s: %s", self.name, "resumed" if consume else "draining")

    def stop(self) -> None:
        self.stop_event.set()
        try:
            registry.stopped(self.settings, self.name)
        except Exception as e:
            log.warning("could not mark worker %s stopped: %s", self.name, e)


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
    if max_tasks_per_child and settings.chain_s:
        # Celery counts deliveries, and a chain runs several tasks in one: recycling after
        # exactly N tasks needs a message per task.
        log.info("recycling every %s tasks: chaining off", max_tasks_per_child)
        settings = settings.model_copy(update={"chain_s": 0.0})
    app = make_celery(settings)
    register(app, settings, queues)
    node = registry.claim_name(
        settings, name or f"farm-{queues.replace(',', '+')}@{socket.gethostname()}"
    )
    presence = Presence(app, settings, node, queues)
    threads = torch_threads(settings.worker_threads, concurrency, available_cpus())

    def process_init(**_: Any) -> None:
        import torch

        torch.set_num_threads(threads)
        log.info("pool process %s: %d torch threads", os.getpid(), threads)

    def ready(**_: Any) -> None:
        presence.start()

    def shutdown(**_: Any) -> None:
        presence.stop()

    worker_process_init.connect(process_init, weak=False)
    worker_ready.connect(ready, weak=False)
    worker_shutdown.connect(shutdown, weak=False)
    app.worker_main(
        [
            "worker",
            "--queues", queues,
            "--concurrency", str(concurrency),
            "--pool", "prefork",
            "--hostname", node,
            # Task events only when always wanted; else a watching Flower switches them on.
            *(["--task-events"] if settings.task_events else []),
            "--without-gossip",
            "--without-mingle",
            f"--loglevel={loglevel}",
            *([f"--max-tasks-per-child={max_tasks_per_child}"] if max_tasks_per_child else []),
            *([f"--max-memory-per-child={max_memory_mb * 1024}"] if max_memory_mb else []),
        ]
    )  # fmt: skip
