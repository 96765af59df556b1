"""What the farm's dispatch path costs over bare Celery, for work that does nothing.

One run, one Redis broker, two worker processes each side (prefork, concurrency 1, as
``farm worker`` runs them), N no-op tasks:

- **bare**: a tiny Celery app (JSON, ``acks_late``, prefetch 1) with a task that records
  ``sent`` (from its args) and its completion time in a Redis list; the list's length is the
  completion count the bench polls. No result backend. Run twice: *burst* (all N sent at
  once: throughput) and *windowed* (at most as many tasks outstanding as the farm allows
  itself, ``2 * workers + FARM_DISPATCH_AHEAD``: a round trip comparable with the farm's,
  which otherwise would be mostly time spent waiting behind the burst).
- **farm**: ``--jobs`` jobs sharing N ``render_chunk`` tasks inserted into the farm's tables in one
  transaction, then ``farm.dispatch.dispatch_ready`` (a submission's pass). The two workers are
  real farm workers (``workers.main.run_worker``) in which only ``workers.runner.stage_for``
  is replaced by a no-op stage returning ``Result()``; the dispatch window, claim, heartbeat
  thread, completion, job-state derivation, events and dispatch after each task are the real
  path. Round trip: the task's ``sent_at`` to its ``succeeded`` event.

The farm side runs with a sweeper (in the bench process, short leases) as ``farm up`` does,
so work lost to an error is recovered within seconds; a measured farm run is capped at
``--farm-cap-s`` (default 60 s) and cut short if nothing finishes for 15 s, and then reports
what finished, the tasks the sweeper had to recover and the deadlocks in the logs.

Prints the rows side by side and the ratios farm / bare (throughput, target >= 0.5; median
round trip against the windowed bare run, target <= 2). The farm's round trip runs from the
moment a task is handed to a worker (its message sent, or its chained claim: workers run the
next task of a job without a message while a delivery is younger than ``FARM_CHAIN_S``) to its
success. The farm runs twice: with the fair share off (today's priority-only dispatch) and
on, its jobs spread over ``--projects`` projects of weights 1, 2, ... (target: on >= 0.9 of
off). ``--unchained`` adds a farm run with ``FARM_CHAIN_S=0``: one message per task.
``--jobs`` spreads the farm's tasks over that many jobs (``--tasks 10000 --jobs 100`` is the
fleet issue's drain). ``--profile`` adds a farm run whose workers time the runner's steps, and
prints where a task's time goes.

    python bench/dispatch.py [--tasks 2000] [--jobs 10] [--profile] [--unchained] [--log-dir DIR]

Servers: ``FARM_BROKER_URL`` (the bench uses queue and key names of its own there and removes
its keys afterwards), else an empty database index of the Redis on 127.0.0.1:6379;
``FARM_DATABASE_URL``'s server (else 127.0.0.1:5432 as ``postgres``), on which the bench
creates a fresh database and drops it at the end (the named database is never written).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import Celery
from sqlalchemy import insert, make_url, text

from farm.celery_app import make_celery
from farm.config import Settings
from farm.db import dispose_engines, session_scope
from farm.migrate import upgrade
from farm.models import Job, Task
from farm.runtime import child_env
from farm.states import JobState, TaskKind, TaskState
from farm.sweeper import sweep_forever

WORKERS = 2
NOOP = "bench.noop"
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
DEADLINE_S = 120.0  # a bare run that takes longer is broken
STALL_S = 15.0


# ---------------------------------------------------------------------------- bare Celery side


def bare_app(broker: str) -> Celery:
    app = Celery("bench", broker=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


def bare_worker(broker: str, queue: str, name: str) -> None:
    """Worker entry: the tiny app and its no-op task (a Redis client per process)."""
    app = bare_app(broker)
    clients: dict[int, redis.Redis] = {}

    def noop(sent: float, key: str) -> None:
        done = time.time()
        r = clients.get(os.getpid())
        if r is None:
            r = clients[os.getpid()] = redis.Redis.from_url(broker)
        pipe = r.pipeline(transaction=False)
        pipe.rpush(f"{key}:rt", f"{sent} {done}")
        pipe.rpush(f"{key}:done", 1)
        pipe.execute()

    app.task(name=NOOP, ignore_result=True)(noop)
    app.worker_main(worker_args(queue, name))


def worker_args(queue: str, name: str) -> list[str]:
    # The flags farm.main.run_worker uses, less --task-events (the farm's own choice).
    return [
        "worker", "--queues", queue, "--concurrency", "1", "--pool", "prefork",
        "--hostname", name, "--without-gossip", "--without-mingle", "--loglevel=INFO",
    ]  # fmt: skip


# --------------------------------------------------------------------------------- farm side


def farm_worker(queue: str, name: str, profile_key: str | None) -> None:
    """Worker entry: a real farm worker whose stages do nothing (this process only)."""
    import workers.runner as runner
    from workers.main import run_worker

    runner.stage_for = lambda kind: lambda ctx: runner.Result()
    settings = Settings()
    if profile_key:
        instrument(settings, profile_key)
    run_worker(settings, queues=queue, concurrency=1, name=name)


def instrument(settings: Settings, key: str) -> None:
    """Time the runner's steps; one JSON record per task into a Redis list (a delivery's
    claim and send go into the record of its first task)."""
    import workers.runner as runner

    spans: dict[str, float] = {}

    def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spans[label] = spans.get(label, 0.0) + time.perf_counter() - started

        return wrapper

    import workers.claims as claims

    runner.claim = timed("claim", runner.claim)
    runner.complete = timed("complete", runner.complete)
    runner.send_all = timed("send", runner.send_all)
    claims._end_attempt = timed("  of which the move", claims._end_attempt)
    claims._chain = timed("  of which the chain", claims._chain)
    run = runner._run
    clients: dict[int, redis.Redis] = {}

    def timed_run(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return run(*args, **kwargs)
        finally:
            spans["task"] = time.perf_counter() - started
            r = clients.get(os.getpid())
            if r is None:
                r = clients[os.getpid()] = redis.Redis.from_url(str(settings.broker_url))
            r.rpush(key, json.dumps(spans))
            spans.clear()

    runner._run = timed_run


def insert_jobs(
    settings: Settings, queue: str, n: int, jobs: int, label: str, projects: int = 1
) -> tuple[list[int], float]:
    """``jobs`` jobs sharing n queued render_chunk tasks, as submission records them (ready,
    counted), in one transaction, job j in project ``bench{j % projects}`` (weight 1 + its
    number; one project: ``default``); returns (job ids, t0)."""
    per_job = [n // jobs + (1 if j < n % jobs else 0) for j in range(jobs)]
    names = ["default"] if projects <= 1 else [f"bench{p}" for p in range(projects)]
    with session_scope(settings) as s:
        s.execute(
            text("INSERT INTO projects (name, weight) VALUES (:n, :w) ON CONFLICT DO NOTHING"),
            [{"n": name, "w": 1.0 + p} for p, name in enumerate(names)],
        )
        t0 = s.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
        job_ids = (
            s.execute(
                insert(Job).returning(Job.id),
                [
                    {
                        "name": f"bench-{label}-{j}",
                        "kind": "render",
                        "state": JobState.QUEUED,
                        "spec": {"kind": "render", "name": f"bench-{label}-{j}", "bench": "no-op"},
                        "priority": 50,
                        "pool": queue.partition(".")[2] or None,
                        "project": names[j % len(names)],
                        "tasks_queued": count,
                    }
                    for j, count in enumerate(per_job)
                ],
            )
            .scalars()
            .all()
        )
        s.execute(
            insert(Task),
            [
                {
                    "job_id": job_id,
                    "kind": TaskKind.RENDER_CHUNK,
                    "stage": 0,
                    "index": i,
                    "queue": queue,
                    "frames": f"{i + 1}",
                    "position": i,
                    "frame_count": 1,
                    "state": TaskState.QUEUED,
                    "attempts": 0,
                    "max_attempts": settings.max_attempts,
                    "sends": 0,
                    "ready": True,
                    "priority": 50,
                    "project": names[j % len(names)],
                    "stage_end": count,
                }
                for j, (job_id, count) in enumerate(zip(job_ids, per_job, strict=True))
                for i in range(count)
            ],
        )
    return list(job_ids), float(t0)


@dataclass
class Row:
    label: str
    tasks: int
    seconds: float
    rts: list[float]
    # farm only: tasks the sweeper had to re-send (lost claim), or re-queue (lost completion)
    recovered: tuple[int, int] = (0, 0)
    deadlocks: int = 0
    stalled: str = ""
    chained: int = 0  # farm only: tasks started by a chained claim, without a message

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds if self.seconds > 0 else 0.0

    def pct(self, q: float) -> float:
        if not self.rts:
            return float("nan")
        ordered = sorted(self.rts)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def median(self) -> float:
        return statistics.median(self.rts) if self.rts else float("nan")


def run_farm(
    settings: Settings,
    celery: Celery,
    queue: str,
    n: int,
    jobs: int,
    label: str,
    cap_s: float,
    projects: int = 1,
) -> Row:
    """Submit n no-op tasks and wait until all succeed, for at most ``cap_s``, or until none
    has finished for STALL_S; a run cut short has its job paused (no leftover is sent again)
    and counts what finished."""
    from farm.dispatch import dispatch_ready

    job_ids, t0 = insert_jobs(settings, queue, n, jobs, label, projects)
    dispatch_ready(settings, celery)  # the pass submission runs in its transaction
    finished = text(
        "SELECT count(*) FROM tasks WHERE job_id = ANY(:j) AND state IN ('succeeded', 'failed')"
    )
    deadline = time.monotonic() + cap_s
    last, last_change = -1, time.monotonic()
    stalled = ""
    while True:
        with session_scope(settings) as s:
            done = s.execute(finished, {"j": job_ids}).scalar_one()
        now = time.monotonic()
        if done >= n:
            break
        if done != last:
            last, last_change = done, now
        if now - last_change > STALL_S or now > deadline:
            with session_scope(settings) as s:
                s.execute(text("UPDATE jobs SET paused = true WHERE id = ANY(:j)"), {"j": job_ids})
                stuck = s.execute(
                    text(
                        "SELECT state, sent_at IS NOT NULL AS sent, sends, attempts, count(*)"
                        " FROM tasks WHERE job_id = ANY(:j) AND state <> 'succeeded'"
                        " GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 6"
                    ),
                    {"j": job_ids},
                ).all()
            why = (
                f"cut at the {cap_s:.0f}s cap"
                if now > deadline
                else f"stalled: nothing finished for {now - last_change:.0f}s"
            )
            stalled = (
                f"{done}/{n} done, {why}; the rest as "
                f"(state, sent, sends, attempts, count): {[tuple(x) for x in stuck]}"
            )
            break
        time.sleep(0.1)
    with session_scope(settings) as s:
        rows = s.execute(
            text(
                "SELECT extract(epoch FROM t.sent_at), extract(epoch FROM e.at) FROM tasks t"
                " JOIN events e ON e.task_id = t.id AND e.to_state = 'succeeded'"
                " WHERE t.job_id = ANY(:j)"
            ),
            {"j": job_ids},
        ).all()
        # A chained claim marks the task sent in the transaction that starts it.
        failed, resent, reclaimed, chained = s.execute(
            text(
                "SELECT count(*) FILTER (WHERE state = 'failed'),"
                " count(*) FILTER (WHERE sends > 1), count(*) FILTER (WHERE attempts > 1),"
                " count(*) FILTER (WHERE sent_at = started_at)"
                " FROM tasks WHERE job_id = ANY(:j)"
            ),
            {"j": job_ids},
        ).one()
    if failed:
        raise SystemExit(f"farm run {label}: {failed} tasks failed")
    end = max((float(at) for _, at in rows), default=t0)
    # a task whose sent_at the sweeper cleared (a late message it took for lost) has no RT
    rts = [float(at) - float(sent) for sent, at in rows if sent is not None]
    row = Row("farm", len(rows), end - t0, rts)
    row.recovered = (int(resent), int(reclaimed))
    row.chained = int(chained)
    row.stalled = stalled
    return row


def run_bare(app: Celery, r: redis.Redis, queue: str, n: int, key: str, window: int | None) -> Row:
    """All n sent at once (window None), or at most ``window`` outstanding at any time."""
    r.delete(f"{key}:rt", f"{key}:done")
    deadline = time.monotonic() + DEADLINE_S

    def send() -> None:
        app.send_task(NOOP, args=[time.time(), key], queue=queue)

    t0 = time.time()
    if window is None:
        for _ in range(n):
            send()
        while (done := r.llen(f"{key}:rt")) < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"bare run: only {done}/{n} finished in {DEADLINE_S}s")
            time.sleep(0.005)
    else:
        sent = outstanding = done = 0
        while done < n:
            while outstanding < window and sent < n:
                send()
                sent += 1
                outstanding += 1
            if r.blpop([f"{key}:done"], timeout=5) is None and time.monotonic() > deadline:
                raise SystemExit(f"bare run: only {done}/{n} finished in {DEADLINE_S}s")
            outstanding -= 1
            done += 1
    pairs = [tuple(map(float, x.split())) for x in r.lrange(f"{key}:rt", 0, -1)]
    r.delete(f"{key}:rt", f"{key}:done")
    end = max(d for _, d in pairs)
    label = "bare (burst)" if window is None else f"bare (window {window})"
    return Row(label, n, end - t0, [d - s for s, d in pairs])


# ------------------------------------------------------------------------- processes, servers


class Workers:
    """Worker processes we started, each in its own session, stopped by their ids."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

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

    def wait_ready(self, app: Celery, names: list[str], timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for proc, log in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"worker exited ({proc.returncode}):\n{tail(log)}")
            replies = app.control.ping(destination=names, timeout=1.0)
            if {name for reply in replies for name in reply} >= set(names):
                return
        logs = "\n".join(tail(log) for _, log in self.procs)
        raise SystemExit(f"workers not ready in {timeout_s}s:\n{logs}")

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    name = f"bench_dispatch_{uuid.uuid4().hex[:10]}"
    url = make_url(base_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def broker(run_id: str) -> Iterator[str]:
    """FARM_BROKER_URL (our keys removed afterwards), else an empty local index (flushed)."""
    given = os.environ.get("FARM_BROKER_URL")
    if given:
        r = redis.Redis.from_url(given)
        try:
            yield given
        finally:
            keys = list(r.scan_iter(f"*{run_id}*"))
            if keys:
                r.delete(*keys)
        return
    for index in range(15, 9, -1):
        url = f"{DEFAULT_REDIS}/{index}"
        r = redis.Redis.from_url(url)
        if r.dbsize() == 0:
            break
    else:
        raise SystemExit("no empty Redis database index in 10-15 on 127.0.0.1:6379")
    try:
        yield url
    finally:
        r.flushdb()


# ------------------------------------------------------------------------------------ report


def report(rows: list[Row], burst: Row, windowed: Row) -> None:
    print(f"\n{'':48} {'tasks':>6} {'seconds':>8} {'tasks/s':>8} {'RT p50 ms':>10} {'p95 ms':>8}")
    for row in rows:
        print(
            f"{row.label:48} {row.tasks:6d} {row.seconds:8.2f} {row.rate:8.1f}"
            f" {row.median * 1e3:10.1f} {row.pct(0.95) * 1e3:8.1f}"
        )
    off = next((r for r in rows if r.label.endswith("policy off")), None)
    on = next((r for r in rows if "fair share" in r.label and "no chain" not in r.label), None)
    if off is not None and on is not None and off.rate > 0:
        ratio = on.rate / off.rate
        print(
            f"\nfair share on / off throughput:   {ratio:.2f}  (target >= 0.9: "
            f"{'met' if ratio >= 0.9 else 'NOT met'})"
        )
    for farm in rows:
        if not farm.label.startswith("farm"):
            continue
        tput = farm.rate / burst.rate
        rt = farm.median / windowed.median
        print(f"\n{farm.label}:")
        print(
            f"  throughput farm / bare:          {tput:.2f}  (target >= 0.5: "
            f"{'met' if tput >= 0.5 else 'NOT met'})"
        )
        print(
            f"  median round trip farm / bare:   {rt:.2f}  (against {windowed.label}; "
            f"target <= 2: {'met' if rt <= 2 else 'NOT met'}; against {burst.label}: "
            f"{farm.median / burst.median:.2f}, a median that is mostly time queued behind the "
            "burst)"
        )
        print(
            f"  chained claims:                  {farm.chained / max(farm.tasks, 1):.0%}"
            f" of tasks ({farm.tasks - farm.chained} broker messages)"
        )
        if farm.stalled:
            print(f"  INCOMPLETE: {farm.stalled}")
        resent, reclaimed = farm.recovered
        if resent or reclaimed or farm.deadlocks:
            print(
                f"  recovered by the sweeper: {resent} re-sent (claim lost), {reclaimed} "
                f"re-queued (completion lost); {farm.deadlocks} deadlocks in the logs"
            )


def print_profile(r: redis.Redis, key: str, farm: Row) -> None:
    records = [json.loads(x) for x in r.lrange(key, 0, -1)]
    if not records:
        return
    labels = ["task", "complete", "  of which the move", "  of which the chain", "claim", "send"]
    per_task_s = WORKERS / farm.rate
    print(
        f"\nwhere a farm task's time goes ({len(records)} tasks; per worker process "
        f"{per_task_s * 1e3:.1f} ms of wall time per task at {farm.rate:.0f} tasks/s):"
    )
    for label in labels:
        values = [rec.get(label, 0.0) for rec in records]
        print(
            f"  {label:22} mean {statistics.fmean(values) * 1e3:6.2f} ms"
            f"   p50 {statistics.median(values) * 1e3:6.2f} ms"
        )
    ours = statistics.fmean(
        rec["task"] + rec.get("claim", 0.0) + rec.get("send", 0.0) for rec in records
    )
    chained = sum(1 for rec in records if "claim" not in rec)
    print(f"  {'the rest':22} mean {(per_task_s - ours) * 1e3:6.2f} ms  (Celery, events, acks)")
    print(f"  {chained} of {len(records)} tasks chained (no broker message)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=2000, help="tasks per measured run")
    ap.add_argument("--warmup", type=int, default=40, help="tasks per warm-up run")
    ap.add_argument("--jobs", type=int, default=10, help="jobs the measured farm run's tasks share")
    ap.add_argument("--profile", action="store_true", help="time the runner's steps (extra run)")
    ap.add_argument(
        "--unchained", action="store_true", help="also a farm run with FARM_CHAIN_S=0 (extra run)"
    )
    ap.add_argument(
        "--projects", type=int, default=2,
        help="projects the fair-share run's jobs are spread over (weights 1, 2, ...)",
    )  # fmt: skip
    ap.add_argument("--log-dir", type=Path, help="keep the workers' logs here")
    ap.add_argument(
        "--farm-cap-s", type=float, default=60.0, help="longest a measured farm run may take"
    )
    ap.add_argument("--role", choices=["bare-worker", "farm-worker"], help=argparse.SUPPRESS)
    ap.add_argument("--queue", help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    ap.add_argument("--broker", help=argparse.SUPPRESS)
    ap.add_argument("--profile-key", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "bare-worker":
        bare_worker(a.broker, a.queue, a.name)
        return
    if a.role == "farm-worker":
        farm_worker(a.queue, a.name, a.profile_key)
        return
    run(a)


def run(a: argparse.Namespace) -> None:
    run_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        # SIGTERM takes the same way out as Ctrl-C: workers stopped, database dropped.
        signal.signal(signal.SIGTERM, _interrupt)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dispatch-")))
        broker_url = stack.enter_context(broker(run_id))
        base_db = os.environ.get("FARM_DATABASE_URL") or DEFAULT_DB
        database_url = stack.enter_context(fresh_database(base_db))
        print(f"broker {broker_url}, database {make_url(database_url).database}; {WORKERS} workers")
        r = redis.Redis.from_url(broker_url)
        log_dir = a.log_dir or tmp
        log_dir.mkdir(parents=True, exist_ok=True)
        procs = Workers(log_dir)
        stack.callback(procs.stop)
        sweeper_log = log_dir / "sweeper.log"
        logging.basicConfig(
            filename=sweeper_log, level=logging.WARNING, format="%(asctime)s %(message)s"
        )

        # bare Celery
        queue = f"bench-bare-{run_id}"
        names = [f"bare{i}-{run_id}@bench" for i in range(WORKERS)]
        for i, name in enumerate(names):
            args = ["--role", "bare-worker", "--broker", broker_url, "--queue", queue]
            procs.start([*args, "--name", name], dict(os.environ), f"bare{i}")
        app = bare_app(broker_url)
        procs.wait_ready(app, names)
        key = f"bench:{run_id}"
        run_bare(app, r, queue, a.warmup, key, None)
        burst = run_bare(app, r, queue, a.tasks, key, None)
        # A farm with a sweeper that recovers lost work within seconds, not minutes.
        settings = Settings(
            database_url=database_url,
            broker_url=broker_url,
            output_root=tmp / "out",
            data_dir=tmp / "data",
            lease_s=3.0,
            heartbeat_s=1.0,
            unclaimed_s=2.0,
            sweep_interval_s=1.0,
            max_attempts=10,
            retry_backoff_s=0.2,
        )
        window = 2 * WORKERS + settings.dispatch_ahead
        windowed = run_bare(app, r, queue, a.tasks, key, window)
        procs.stop()
        rows = [burst, windowed]

        # the farm
        upgrade(settings)
        celery = make_celery(settings)
        env = child_env(settings)
        stop = threading.Event()
        sweeper = threading.Thread(
            target=sweep_forever, args=(settings, celery, stop), name="sweeper", daemon=True
        )
        sweeper.start()
        stack.callback(sweeper.join, 10)
        stack.callback(stop.set)

        seen_in_sweeper = [0]

        def farm_run(
            tag: str, profile_key: str | None = None, chain: bool = True, fair: bool = True
        ) -> Row:
            queue = f"gpu.bench{run_id}{tag}"  # a pool queue: the farm's routing, our own name
            names = [f"farm{i}-{tag}-{run_id}@bench" for i in range(WORKERS)]
            logs = []
            for i, name in enumerate(names):
                args = ["--role", "farm-worker", "--queue", queue, "--name", name]
                args += ["--profile-key", profile_key] if profile_key else []
                extra = ({} if chain else {"FARM_CHAIN_S": "0"}) | (
                    {} if fair else {"FARM_FAIR_SHARE": "0"}
                )
                procs.start(args, {**env, **extra}, f"farm{i}-{tag}")
                logs.append(log_dir / f"farm{i}-{tag}.log")
            procs.wait_ready(celery, names)
            run_farm(settings, celery, queue, a.warmup, 1, f"warmup-{tag}-{run_id}", 30)
            if profile_key:
                r.delete(profile_key)
            row = run_farm(
                settings.model_copy(update={"fair_share": fair}), celery, queue, a.tasks,
                a.jobs, f"{tag}-{run_id}", a.farm_cap_s, a.projects if fair else 1,
            )  # fmt: skip
            procs.stop()
            row.label = f"farm ({a.jobs} jobs)" if chain else f"farm ({a.jobs} jobs, no chain)"
            row.label += f", fair share, {a.projects} projects" if fair else ", policy off"
            # deadlocks of the measured run and its warm-up alike: evidence, not a count per run
            # this run's and its warm-up's, in the workers' and the sweeper's logs
            marker = "psycopg.errors.DeadlockDetected: deadlock detected"
            row.deadlocks = sum(log.read_text(errors="replace").count(marker) for log in logs)
            sweeps = sweeper_log.read_text(errors="replace") if sweeper_log.exists() else ""
            row.deadlocks += sweeps.count(marker) - seen_in_sweeper[0]
            seen_in_sweeper[0] = sweeps.count(marker)
            return row

        # Today's dispatch (priority only) and the fair share over projects, in one run.
        rows.append(farm_run("off", fair=False))
        rows.append(farm_run("real"))
        if a.unchained:
            rows.append(farm_run("unchained", chain=False))
        report(rows, burst, windowed)
        if a.profile:
            profile_key = f"bench:{run_id}:profile"
            profiled = farm_run("profiled", profile_key=profile_key)
            print(f"\nprofiled run ({profiled.label}): {profiled.rate:.1f} tasks/s")
            print_profile(r, profile_key, profiled)
            r.delete(profile_key)


if __name__ == "__main__":
    main()
