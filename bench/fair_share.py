"""The fair share with real workers, in chunk times: how soon a project that arrives late gets
its first task and its share, and the split two projects at weights 2:1 keep.

Three real farm workers (``workers.main.run_worker``, prefork, concurrency 1) whose stages
sleep ``--chunk-s`` and produce nothing; the claim, chain, completion and dispatch around
them are the real path, with a sweeper in this process as ``farm up`` runs one.

- **split**: projects at weights 2:1, ``--split-tasks`` chunks each, submitted together; the
  running tasks per project are sampled every 0.1 s while both still have queued work.
  Prints the heavier project's share of the running tasks and its deviation from 2/3.
- **late** (``--runs`` times): a project of weight 1 fills every worker; a moment later (two
  chunks, plus a different fraction of a chunk each run, so the submission lands at every
  phase of the workers' chunks) a project of weight 2 submits. Prints, in chunk times from
  the late job's commit, when its first task started and when it held its share (2 of 3
  workers), and for each run what every worker started until then: the project, and whether
  the task came by a broker message sent before the submission ("stale"), one sent after
  it ("msg"), a chained claim in its predecessor's completion ("chain"), or a claim that
  took it in place of the delivered task ("swap", ``farm.dispatch.fairer_task``).

    PYTHONPATH=. python bench/fair_share.py [--chunk-s 1.0] [--runs 8] [--split-tasks 60]

Servers as in ``bench/dispatch.py``: a fresh database on FARM_DATABASE_URL's server (dropped
at the end), an empty Redis index (or FARM_BROKER_URL, our keys removed).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import text

from bench.dispatch import DEFAULT_DB, Workers, _interrupt, broker, fresh_database
from farm.celery_app import make_celery
from farm.config import Settings
from farm.db import session_scope
from farm.dispatch import dispatch_ready
from farm.migrate import upgrade
from farm.models import Job, Task
from farm.runtime import child_env
from farm.states import JobState, TaskKind, TaskState
from farm.sweeper import sweep_forever

WORKERS = 3


def sleeping_worker(queue: str, name: str) -> None:
    """Worker entry: a real farm worker whose stages sleep FARM_BENCH_STAGE_S."""
    import workers.runner as runner
    from workers.main import run_worker

    stage_s = float(os.environ["FARM_BENCH_STAGE_S"])

    def stage(ctx: object) -> runner.Result:
        time.sleep(stage_s)
        return runner.Result()

    runner.stage_for = lambda kind: stage
    run_worker(Settings(), queues=queue, concurrency=1, name=name)


class SleepingWorkers(Workers):
    """bench.dispatch's worker processes, started from this script."""

    def start(self, args: list[str], env: dict[str, str], tag: str) -> None:
        log = self.log_dir / f"{tag}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((proc, log))


def submit(
    settings: Settings, queue: str, project: str, weight: float, n: int
) -> tuple[int, float]:
    """One job of n ready render chunks in ``project``, as submission records them, then the
    dispatch pass submission runs; returns (job id, the commit's epoch)."""
    with session_scope(settings) as s:
        s.execute(
            text(
                "INSERT INTO projects (name, weight) VALUES (:n, :w)"
                " ON CONFLICT (name) DO UPDATE SET weight = :w"
            ),
            {"n": project, "w": weight},
        )
        job = Job(
            name=f"{project}-{uuid.uuid4().hex[:6]}",
            kind="render",
            state=JobState.QUEUED,
            spec={"kind": "render", "bench": "sleep"},
            priority=50,
            pool=queue.partition(".")[2] or None,
            project=project,
            tasks_queued=n,
        )
        s.add(job)
        s.flush()
        s.add_all(
            Task(
                job_id=job.id,
                kind=TaskKind.RENDER_CHUNK,
                stage=0,
                index=i,
                queue=queue,
                frames=f"{i + 1}",
                position=i,
                frame_count=1,
                state=TaskState.QUEUED,
                attempts=0,
                max_attempts=3,
                sends=0,
                ready=True,
                priority=50,
                project=project,
                stage_end=n,
            )
            for i in range(n)
        )
        job_id = job.id
    with session_scope(settings) as s:  # after the commit: the moment the work exists
        committed = float(s.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar())
    dispatch_ready(settings, make_celery(settings), [queue])
    return job_id, committed


def running(settings: Settings, queue: str) -> dict[str, int]:
    with session_scope(settings) as s:
        rows = s.execute(
            text(
                "SELECT project, count(*) FROM tasks WHERE queue = :q AND state = 'running'"
                " GROUP BY project"
            ),
            {"q": queue},
        ).all()
    return {p: int(n) for p, n in rows}


def queued(settings: Settings, queue: str) -> dict[str, int]:
    with session_scope(settings) as s:
        rows = s.execute(
            text(
                "SELECT project, count(*) FROM tasks WHERE queue = :q AND state = 'queued'"
                " GROUP BY project"
            ),
            {"q": queue},
        ).all()
    return {p: int(n) for p, n in rows}


def settle_queue(settings: Settings, queue: str, jobs: list[int]) -> None:
    """Pause the jobs, then wait until nothing of the queue runs or waits in the broker."""
    with session_scope(settings) as s:
        s.execute(text("UPDATE jobs SET paused = true WHERE id = ANY(:j)"), {"j": jobs})
    deadline = time.monotonic() + 60
    busy = text(
        "SELECT count(*) FROM tasks WHERE queue = :q AND (state = 'running'"
        " OR (state = 'queued' AND sent_at IS NOT NULL))"
    )
    while time.monotonic() < deadline:
        with session_scope(settings) as s:
            if s.execute(busy, {"q": queue}).scalar_one() == 0:
                return
        time.sleep(0.1)
    raise SystemExit("the queue did not drain after pausing")


def split_run(settings: Settings, queue: str, n: int) -> tuple[float, int]:
    a, _ = submit(settings, queue, "alpha", 2.0, n)
    b, _ = submit(settings, queue, "beta", 1.0, n)
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        left = queued(settings, queue)
        if left.get("alpha", 0) < WORKERS or left.get("beta", 0) < WORKERS:
            break
        now = running(settings, queue)
        if now:
            samples.append((now.get("alpha", 0), now.get("beta", 0)))
        time.sleep(0.1)
    settle_queue(settings, queue, [a, b])
    x, y = sum(s[0] for s in samples), sum(s[1] for s in samples)
    return x / max(x + y, 1), len(samples)


def late_run(settings: Settings, queue: str, chunk_s: float, rng: random.Random) -> dict:
    tag = uuid.uuid4().hex[:4]
    early, late = f"early{tag}", f"late{tag}"
    e, _ = submit(settings, queue, early, 1.0, 400)
    deadline = time.monotonic() + 60
    while running(settings, queue).get(early, 0) < WORKERS:
        if time.monotonic() > deadline:
            raise SystemExit("the early project never filled the workers")
        time.sleep(0.05)
    time.sleep(2 * chunk_s + rng.random() * chunk_s)
    lj, t0 = submit(settings, queue, late, 2.0, 100)
    share_at = None
    deadline = time.monotonic() + 30 * chunk_s + 10
    while time.monotonic() < deadline:
        if running(settings, queue).get(late, 0) >= 2:
            with session_scope(settings) as s:
                share_at = float(s.execute(text("SELECT extract(epoch FROM now())")).scalar())
            break
        time.sleep(0.02)
    settle_queue(settings, queue, [e, lj])
    with session_scope(settings) as s:
        rows = s.execute(
            text(
                # A chained claim starts the task in its predecessor's completion (one
                # transaction, one now()); a claim that took it in place of the delivered
                # task marks it sent in the claim's.
                "SELECT t.project, e.worker, extract(epoch FROM e.at),"
                " extract(epoch FROM t.sent_at), CASE WHEN EXISTS (SELECT 1 FROM events d"
                " WHERE d.worker = e.worker AND d.to_state = 'succeeded' AND d.at = e.at)"
                " THEN 'chain' WHEN t.sent_at = e.at THEN 'swap' END"
                " FROM events e JOIN tasks t ON t.id = e.task_id"
                " WHERE e.to_state = 'running' AND t.job_id = ANY(:j) AND e.at >= to_timestamp(:t0)"
                " ORDER BY e.at"
            ),
            {"j": [e, lj], "t0": t0},
        ).all()
    late_starts = [float(at) for p, _, at, _, _ in rows if p == late]
    first = late_starts[0] if late_starts else None
    until = share_at if share_at is not None else first
    between: dict[str, list[str]] = {}
    for project, worker, at, sent, how in rows:
        if until is not None and float(at) > until:
            break
        how = how or ("stale" if sent is not None and float(sent) < t0 else "msg")
        between.setdefault(worker or "?", []).append(f"{project[:-4]}:{how}")
    return {
        "first": None if first is None else (first - t0) / chunk_s,
        "share": None if share_at is None else (share_at - t0) / chunk_s,
        "between": between,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunk-s", type=float, default=1.0, help="each task's sleep")
    ap.add_argument("--runs", type=int, default=8, help="late arrivals to measure")
    ap.add_argument("--split-tasks", type=int, default=60, help="chunks per project, 0: no split")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-dir", type=Path, help="keep the workers' logs here")
    ap.add_argument("--role", choices=["worker"], help=argparse.SUPPRESS)
    ap.add_argument("--queue", help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "worker":
        sleeping_worker(a.queue, a.name)
        return
    run(a)


def run(a: argparse.Namespace) -> None:
    run_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        signal.signal(signal.SIGTERM, _interrupt)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-share-")))
        broker_url = stack.enter_context(broker(run_id))
        database_url = stack.enter_context(
            fresh_database(os.environ.get("FARM_DATABASE_URL") or DEFAULT_DB)
        )
        logging.basicConfig(filename=tmp / "sweeper.log", level=logging.WARNING)
        settings = Settings(
            database_url=database_url,
            broker_url=broker_url,
            output_root=tmp / "out",
            data_dir=tmp / "data",
            lease_s=30.0,
            heartbeat_s=2.0,
            sweep_interval_s=1.0,
        )
        upgrade(settings)
        celery = make_celery(settings)
        stop = threading.Event()
        sweeper = threading.Thread(
            target=sweep_forever, args=(settings, celery, stop), name="sweeper", daemon=True
        )
        sweeper.start()
        stack.callback(sweeper.join, 10)
        stack.callback(stop.set)
        log_dir = a.log_dir or tmp
        log_dir.mkdir(parents=True, exist_ok=True)
        procs = SleepingWorkers(log_dir)
        stack.callback(procs.stop)
        queue = f"gpu.share{run_id}"
        names = [f"share{i}-{run_id}@bench" for i in range(WORKERS)]
        env = {**child_env(settings), "FARM_BENCH_STAGE_S": str(a.chunk_s)}
        for i, name in enumerate(names):
            procs.start(["--role", "worker", "--queue", queue, "--name", name], env, f"w{i}")
        procs.wait_ready(celery, names)
        print(
            f"{WORKERS} workers, chunks of {a.chunk_s}s, FARM_CHAIN_S {settings.chain_s},"
            f" FARM_DISPATCH_AHEAD {settings.dispatch_ahead}; load {os.getloadavg()[0]:.1f}"
        )
        if a.split_tasks:
            share, n = split_run(settings, queue, a.split_tasks)
            dev = abs(share - 2 / 3) / (2 / 3)
            print(
                f"split 2:1: {share:.3f} of the running tasks for the heavier project over"
                f" {n} samples, deviation {dev:.1%}"
            )
        rng = random.Random(a.seed)
        firsts, shares = [], []
        for i in range(a.runs):
            r = late_run(settings, queue, a.chunk_s, rng)
            firsts.append(r["first"] if r["first"] is not None else float("inf"))
            shares.append(r["share"] if r["share"] is not None else float("inf"))
            ran = "; ".join(
                f"{w.split('-')[0]}: {' '.join(v)}" for w, v in sorted(r["between"].items())
            )
            print(
                f"late run {i + 1}: first task {firsts[-1]:.2f}, share {shares[-1]:.2f} chunks;"
                f" what each worker started until its share: {ran}"
            )
        if firsts:
            print(
                f"late project, in chunk times ({a.chunk_s}s) from its commit, {a.runs} runs:"
                f" first task median {statistics.median(firsts):.2f} max {max(firsts):.2f};"
                f" share (2 of 3) median {statistics.median(shares):.2f} max {max(shares):.2f};"
                f" load {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
