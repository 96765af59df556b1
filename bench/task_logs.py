"""Figures for the task log store (farm/logbuffer.py, farm/tasklogs.py, workers/tasklog.py).

1. Capture: microseconds per log record through ``TaskLogHandler`` into the buffer.
2. Flush: milliseconds and stored bytes per ``write()`` of a render chunk's log (a start
   line, one progress line a second for ``--seconds``, the outcome: what a chunk logs), and
   of a full buffer (head and tail full, the worst case of every flush).
3. Per task: the flushes a chunk of ``--seconds`` costs (one a second while lines come, plus
   the last), as database time per second of rendering.

    PYTHONPATH=. python bench/task_logs.py [--seconds 60] [--repeat 50]

Needs PostgreSQL: FARM_DATABASE_URL's server (a fresh database is created and dropped) or
this machine's 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select, text

from farm.db import session_scope
from farm.logbuffer import LogBuffer
from farm.models import Job, Task, TaskLog
from farm.states import TaskKind
from farm.tasklogs import write
from tests.integration.harness import fresh_database, make_settings
from workers.tasklog import TaskLogHandler


def chunk_log(seconds: int) -> LogBuffer:
    buf = LogBuffer()
    buf.append(0.0, "info", "workers.runner: task 12 (job 3 render_chunk) attempt 1: start")
    for i in range(seconds):
        buf.append(float(i), "progress", f"progress frames={i * 4} of=240 fps=4.1 eta_s={60 - i}")
    buf.append(float(seconds), "info", "workers.runner: task 12 attempt 1: succeeded")
    return buf


def full_log() -> LogBuffer:
    buf = LogBuffer()
    for i in range(5000):
        buf.append(float(i), "info", f"farm.something: line {i} " + "x" * 80)
    return buf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()

    buf = LogBuffer()
    logger = logging.getLogger("farm.bench_task_logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(TaskLogHandler(buf))
    n = 20_000
    t0 = time.perf_counter()
    for i in range(n):
        logger.info("task %s progress %s", 12, i)
    print(f"capture: {(time.perf_counter() - t0) / n * 1e6:.1f} us per record")

    base = os.environ.get("FARM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with tempfile.TemporaryDirectory() as root, fresh_database(base) as url:
        settings = make_settings(url, "redis://127.0.0.1:6379/14", Path(root))
        with session_scope(settings) as s:
            job = Job(name="bench", kind="render", spec={})
            s.add(job)
            s.flush()
            task = Task(job_id=job.id, kind=TaskKind.RENDER_CHUNK, queue="gpu")
            s.add(task)
            s.flush()
            task_id = task.id
        for name, log in (("render chunk", chunk_log(args.seconds)), ("full buffer", full_log())):
            write(settings, task_id, 1, log, "bench", done=False)  # warm the engine
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                write(settings, task_id, 1, log, "bench", done=False)
                times.append(time.perf_counter() - t0)
            with session_scope(settings) as s:
                stored = s.execute(
                    select(func.pg_column_size(TaskLog.lines)).where(TaskLog.task_id == task_id)
                ).scalar_one()
                s.execute(text("SELECT 1"))
            ms = statistics.median(times) * 1e3
            print(
                f"flush, {name}: {len(log.snapshot())} lines, {log.size} B of text,"
                f" {stored} B stored (TOAST-compressed JSONB), {ms:.2f} ms median"
                f" (p95 {sorted(times)[int(0.95 * len(times))] * 1e3:.2f} ms)"
            )
            if name == "render chunk":
                flushes = args.seconds + 1
                print(
                    f"per {args.seconds} s chunk: {flushes} flushes, {flushes * ms:.0f} ms of"
                    f" flush time ({flushes * ms / args.seconds:.2f} ms a second of rendering,"
                    f" on the flusher thread), final row {stored} B"
                )


if __name__ == "__main__":
    main()
