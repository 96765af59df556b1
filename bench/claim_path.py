"""The database's share of a farm task: the workers' claim and completion in a loop, in one
process, with no Celery and no contention, on a fresh database holding one job of N ready
tasks (as submission records them).

Prints the time per task, the median of each step and how many statements (round trips, not
counting BEGIN and COMMIT) each step sends; then the same for a second job of N tasks run as
one chain (each completion claiming the next task in its transaction, as a worker does for
short tasks). ``bench/dispatch.py`` measures the same path through real workers beside bare
Celery.

    python bench/claim_path.py [--tasks 1000]

Database: ``FARM_BENCH_DATABASE_URL`` names a server (default this machine's PostgreSQL,
``postgresql://postgres@127.0.0.1:5432/postgres``); the bench creates a database of its own
there and drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import event, insert, make_url, select
from sqlalchemy.engine import Engine

from farm.config import Settings
from farm.db import dispose_engines, session_scope
from farm.migrate import upgrade
from farm.models import Job, Task, Worker
from farm.states import JobState, TaskKind, TaskState
from workers.claims import claim, complete
from workers.context import Result

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKER = "bench@claim-path"


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    name = f"bench_claim_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def seed(settings: Settings, n: int, *, worker: bool = True) -> list[int]:
    with session_scope(settings) as s:
        job = s.execute(
            insert(Job)
            .values(name="claim-path", kind="render", state=JobState.QUEUED, spec={},
                    priority=50, tasks_queued=n)
            .returning(Job.id)
        ).scalar_one()  # fmt: skip
        s.execute(
            insert(Task),
            [
                {"job_id": job, "kind": TaskKind.RENDER_CHUNK, "queue": "gpu", "index": i,
                 "stage": 0, "frames": str(i + 1), "position": i, "frame_count": 1,
                 "state": TaskState.QUEUED, "attempts": 0, "max_attempts": 3, "sends": 0,
                 "ready": True, "priority": 50, "stage_end": n}
                for i in range(n)
            ],
        )  # fmt: skip
        if worker:
            s.execute(
                insert(Worker).values(name=WORKER, host="bench", queues="gpu", pid=os.getpid(),
                                      versions={}, state="idle")
            )  # fmt: skip
        return list(
            s.execute(select(Task.id).where(Task.job_id == job).order_by(Task.id)).scalars()
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=1000)
    a = ap.parse_args()
    statements = [0]

    @event.listens_for(Engine, "before_cursor_execute")
    def count(*_: Any) -> None:
        statements[0] += 1

    server = os.environ.get("FARM_BENCH_DATABASE_URL", DEFAULT_DB)
    with scratch_database(server) as url:
        settings = Settings(database_url=url, broker_url="redis://unused")
        upgrade(settings)
        ids = seed(settings, a.tasks)
        claims, completions = [], []
        sent: Counter[tuple[int, int]] = Counter()
        started = time.perf_counter()
        for task_id in ids:
            before, t0 = statements[0], time.perf_counter()
            ctx = claim(settings, task_id, WORKER)
            t1, between = time.perf_counter(), statements[0]
            if ctx is None:
                raise SystemExit(f"task {task_id} was not claimed")
            if not complete(ctx, Result()).recorded:
                raise SystemExit(f"task {task_id} was not completed")
            claims.append(t1 - t0)
            completions.append(time.perf_counter() - t1)
            sent[(between - before, statements[0] - between)] += 1
        elapsed = time.perf_counter() - started
        (per_claim, per_completion), _ = sent.most_common(1)[0]  # the usual task
        print(
            f"{a.tasks} tasks, one message each: {elapsed / a.tasks * 1000:.2f} ms per task; "
            f"claim p50 {statistics.median(claims) * 1000:.2f} ms, {per_claim} statements; "
            f"completion p50 {statistics.median(completions) * 1000:.2f} ms, "
            f"{per_completion} statements (BEGIN and COMMIT not counted)"
        )
        chained(settings, a.tasks, statements)


def chained(settings: Settings, n: int, statements: list[int]) -> None:
    """The same tasks run as one chain: each completion claims the next in its transaction."""
    ids = seed(settings, n, worker=False)
    ctx = claim(settings, ids[0], WORKER)
    if ctx is None:
        raise SystemExit(f"task {ids[0]} was not claimed")
    steps: list[float] = []
    per_step: Counter[int] = Counter()
    started = time.perf_counter()
    while ctx is not None:
        before, t0 = statements[0], time.perf_counter()
        done = complete(ctx, Result(), chain=True)
        if not done.recorded:
            raise SystemExit(f"task {ctx.task_id} was not completed")
        steps.append(time.perf_counter() - t0)
        per_step[statements[0] - before] += 1
        ctx = done.next_task
    elapsed = time.perf_counter() - started
    if len(steps) < n - settings.dispatch_ahead - 1:
        raise SystemExit(f"the chain ran {len(steps)} of {n} tasks")
    print(
        f"{len(steps)} tasks chained: {elapsed / len(steps) * 1000:.2f} ms per task; "
        f"completion with the next claim p50 {statistics.median(steps) * 1000:.2f} ms, "
        f"{per_step.most_common(1)[0][0]} statements"
    )


if __name__ == "__main__":
    main()
