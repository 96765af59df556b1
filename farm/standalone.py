"""A farm for the length of one command (``farm demo``, ``farm submit --wait`` with nobody
else running one): servers, one worker and the sweeper, all watched while the command
waits and all stopped when it ends, however it ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from farm.config import Settings
from farm.processes import Child, Supervisor, start_worker
from farm.runtime import services
from farm.sweeper import SweeperThread

if TYPE_CHECKING:
    from celery import Celery


@dataclass
class Standalone:
    settings: Settings  # resolved: the servers' URLs are filled in
    celery: Celery
    worker: Child
    children: Supervisor
    sweeper: SweeperThread

    def check(self, *_: object) -> None:
        """Raise if the worker exited or the sweeper stopped; a wait loop's ``on_poll``."""
        self.children.check()
        self.sweeper.check()


@contextmanager
def standalone(settings: Settings, log_name: str) -> Iterator[Standalone]:
    """Servers (embedded unless configured), a worker logging to ``logs/<log_name>.log``
    under the data directory, and a sweeper thread."""
    from farm.celery_app import make_celery

    stop = threading.Event()
    with services(settings) as s, Supervisor() as children:
        celery = make_celery(s)
        log = s.data_dir.resolve() / "logs" / f"{log_name}.log"
        worker = children.add(start_worker(s, name=log_name, log_file=log))
        sweeper = SweeperThread(s, celery, stop)
        sweeper.start()
        try:
            yield Standalone(s, celery, worker, children, sweeper)
        finally:
            stop.set()
            sweeper.join(5)
