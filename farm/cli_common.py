"""Console helpers shared by the CLI modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from farm.backend import Backend
from farm.errors import FarmError

FINISHED = ("succeeded", "failed", "canceled")
console = Console()
err = Console(stderr=True, soft_wrap=True)  # paths and log lines unbroken


def _fail(e: FarmError) -> typer.Exit:
    err.print(f"[red]error:[/red] {e}", highlight=False)
    return typer.Exit(e.exit_code)


def _follow_all(
    be: Backend,
    job_ids: list[int],
    poll_s: float = 0.5,
    on_poll: Callable[[], None] | None = None,
) -> dict[int, dict[str, Any]]:
    """A progress bar per job until every job has ended; returns their last rows.
    ``on_poll`` runs each round (a watcher of the processes the job depends on)."""
    last: dict[int, dict[str, Any]] = {}
    with Progress(
        TextColumn("{task.description} [{task.fields[state]}]"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} tasks"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        overall = bar.add_task(f"{len(job_ids)} job(s)", total=len(job_ids), state="")
        bars = (
            {}
            if len(job_ids) > 10
            else {j: bar.add_task(f"job {j}", total=1, state="queued") for j in job_ids}
        )
        pending = set(job_ids)
        while pending:
            if on_poll is not None:
                on_poll()
            for j in sorted(pending):
                row = be.job(str(j))
                last[j] = row
                if j in bars:
                    t = row["tasks"]
                    bar.update(bars[j], total=t["total"], completed=t.get("succeeded", 0),
                               state=row["state"])  # fmt: skip
                if row["state"] in FINISHED:
                    pending.discard(j)
            bar.update(overall, completed=len(job_ids) - len(pending),
                       state=f"{len(pending)} running")  # fmt: skip
            if pending:
                time.sleep(poll_s)
    return last
