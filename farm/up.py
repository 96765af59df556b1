"""``farm up``: the farm in the foreground, watched.

Workers that crash after they started are restarted (see :class:`farm.processes.Restarts`
for the limit and back-off, said on the terminal each time); a worker that fails while
starting, the API exiting, or a broker that refuses work for good stop the whole farm with
the reason and the last lines of the log, and a non-zero exit.
"""

from __future__ import annotations

import sys
import threading
import time

from rich.console import Console

from farm.config import Settings
from farm.processes import Child, ChildExited, Restarts, Supervisor, start_child, start_worker
from farm.runtime import child_env, services
from farm.sweeper import SweeperThread

POLL_S = 0.5


def _how(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def run_up(settings: Settings, *, workers: int, queues: str, api: bool, console: Console) -> None:
    from farm.celery_app import make_celery

    stop = threading.Event()
    with services(settings, own=True) as s, Supervisor() as children:
        logs = s.data_dir.resolve() / "logs"

        def worker(i: int) -> Child:
            name = f"worker {i}"
            log = logs / f"up-worker-{i}.log"
            return start_worker(s, queues, name=name, log_file=log, echo=sys.stderr, of=workers)

        for i in range(1, workers + 1):
            children.add(worker(i))
        if api:
            args = [sys.executable, "-m", "farm", "api"]
            children.add(
                start_child(
                    "api", args, child_env(s), log_file=logs / "up-api.log", echo=sys.stderr
                )
            )
        console.print(f"farm up: database {s.database_url}, broker {s.broker_url}")
        if api:
            console.print(f"API on http://{s.api_host}:{s.api_port} (tokens: farm token create)")
        sweeper = SweeperThread(s, make_celery(s), stop)
        sweeper.start()
        policies: dict[str, Restarts] = {}
        due: dict[str, float] = {}  # worker name -> when to restart it
        try:
            while True:
                sweeper.check()
                now = time.monotonic()
                for child, code in children.exited():
                    if child.name in due:  # exited earlier, waiting out its back-off
                        if now >= due[child.name]:
                            del due[child.name]
                            children.replace(child, worker(int(child.name.split()[-1])))
                            console.print(f"{child.name} restarted")
                        continue
                    if child.name == "api":
                        raise ChildExited(child, code)
                    policy = policies.setdefault(child.name, Restarts(start_s=s.worker_start_s))
                    delay = policy.delay_s(child.uptime_s(), now)
                    if delay is None:
                        raise ChildExited(child, code)
                    due[child.name] = now + delay
                    console.print(
                        f"[yellow]{child.name} exited ({_how(code)}); restarting it in "
                        f"{delay:.0f} s (restart {len(policy.times)} of {policy.limit} "
                        f"allowed in {policy.window_s / 60:.0f} min); its last lines:[/yellow]\n"
                        f"{child.last_lines()}",
                        highlight=False,
                    )
                time.sleep(POLL_S)
        finally:
            stop.set()
            sweeper.join(5)
