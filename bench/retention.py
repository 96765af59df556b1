"""Retention under a steady stream: does the database stay small once old jobs are purged?

In a scratch database: ``--jobs`` small jobs submitted through the farm's own batch path
(``farm.submit.submit_many``, ``--per-batch`` a transaction, no broker), in ``--rounds``
rounds. Every tenth is a render of the train job before it (``checkpoint: job:``; two
chunks and an assembly), the rest train jobs (one task). Each round is then marked done
by SQL as a worker would have left it (the task rows succeeded, two events per task and
two per job, one attempt per task, a small task log, one artifact per job, no files),
finished 40 days ago, and purged with ``farm.retention.purge`` (``--batch`` jobs a
transaction). Figures: ``pg_database_size`` and the main tables' sizes (with their
indexes and TOAST) empty, after each round's submission and completion, after its purge,
and after a plain ``VACUUM`` (what autovacuum does: the space is reused by the next round,
the files do not shrink); the purge's throughput (jobs/s) and its longest transaction.
The second and later rounds show whether the freed space is reused: the database after
round N should be about the size after round 1. ``attempts`` is never purged (it is the
bill): it is the one table that grows, by about its row size per attempt.

    PYTHONPATH=. python bench/retention.py [--jobs 100000] [--rounds 2] [--batch 500]

Needs PostgreSQL: FARM_DATABASE_URL's server (a fresh database is created and dropped) or
this machine's 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from farm.config import Settings
from farm.db import get_engine, session_scope
from farm.retention import purge
from farm.specs import parse_spec
from farm.submit import Submission, submit_many
from tests.integration.harness import fresh_database, make_settings

TABLES = ("jobs", "tasks", "events", "artifacts", "task_logs", "attempts")
LOG = (
    '[[0, 0.0, "info", "workers.runner: task 1 (job 1 train) attempt 1: start"],'
    ' [1, 0.9, "info", "progress 100%"], [2, 1.0, "info", "task 1 attempt 1: succeeded"]]'
)


def sizes(settings: Settings) -> dict[str, int]:
    with session_scope(settings) as s:
        out = {"database": int(s.execute(text("SELECT pg_database_size(current_database())"))
                               .scalar_one())}  # fmt: skip
        for t in TABLES:
            out[t] = int(s.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar_one())
    return out


def rows(settings: Settings) -> dict[str, int]:
    with session_scope(settings) as s:
        return {t: int(s.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES}


def specs(start: int, n: int) -> list[Submission]:
    out = []
    for i in range(start, start + n):
        if i % 10 == 9:
            spec = {"kind": "render", "name": f"r{i}", "checkpoint": f"job:t{i - 1}",
                    "frames": "1-8", "chunk_size": 4, "width": 32, "height": 32}  # fmt: skip
        else:
            spec = {"kind": "train", "name": f"t{i}", "epochs": 1}
        out.append(Submission(parse_spec(spec)))
    return out


# What the workers would have left: each task succeeded after one attempt, with its events,
# attempt, log and the job's artifact and events; finished 40 days ago.
_FINISH = (
    "UPDATE tasks SET state = 'succeeded', attempts = 1, worker = 'bench@host',"
    " started_at = now() - interval '40 days 1 minute', finished_at = now() - interval '40 days'"
    " WHERE state = 'queued'",
    "INSERT INTO events (job_id, task_id, at, from_state, to_state, worker, attempt)"
    " SELECT job_id, id, started_at, 'queued', 'running', worker, 1 FROM tasks WHERE id > :after"
    " UNION ALL SELECT job_id, id, finished_at, 'running', 'succeeded', worker, 1 FROM tasks"
    " WHERE id > :after",
    "INSERT INTO attempts (task_id, job_id, project, submitter, pool, attempt, worker, device,"
    " started_at, ended_at, outcome) SELECT t.id, t.job_id, t.project, j.submitter, j.pool, 1,"
    " t.worker, 'cuda:0 bench', t.started_at, t.finished_at, 'succeeded'"
    " FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE t.id > :after",
    "INSERT INTO task_logs (task_id, attempt, worker, lines, next_seq, dropped_bytes, done)"
    " SELECT id, 1, worker, CAST(:log AS jsonb), 3, 0, true FROM tasks WHERE id > :after",
    "INSERT INTO artifacts (job_id, task_id, kind, path, size, sha256, meta)"
    " SELECT j.id, NULL, CASE WHEN j.kind = 'train' THEN 'checkpoint' ELSE 'video' END,"
    " '/nonexistent/bench/' || j.id || '.out', 1000, repeat('0', 64), '{}' FROM jobs j"
    " WHERE j.state = 'queued'",
    "INSERT INTO events (job_id, at, from_state, to_state) SELECT id, now() - interval '40 days',"
    " 'running', 'succeeded' FROM jobs WHERE state = 'queued'",
    "UPDATE jobs SET state = 'succeeded', started_at = now() - interval '40 days 1 minute',"
    " finished_at = now() - interval '40 days', tasks_succeeded = tasks_queued, tasks_queued = 0"
    " WHERE state = 'queued'",
)


def finish(settings: Settings) -> None:
    with session_scope(settings) as s:
        after = int(s.execute(text("SELECT coalesce(max(task_id), 0) FROM attempts")).scalar_one())
        for sql in _FINISH:
            s.execute(text(sql), {"after": after, "log": LOG})


def vacuum(settings: Settings) -> None:
    with get_engine(settings).connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("VACUUM (ANALYZE)"))


def mb(n: int) -> str:
    return f"{n / 2**20:8.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=100_000, help="jobs per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=500, help="jobs per purge transaction")
    ap.add_argument("--per-batch", type=int, default=1000, help="jobs per submission")
    args = ap.parse_args()
    base = os.environ.get("FARM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with tempfile.TemporaryDirectory() as root, fresh_database(base) as url:
        settings = make_settings(url, "redis://127.0.0.1:6379/14", Path(root))
        table: list[tuple[str, dict[str, int], dict[str, int]]] = []
        table.append(("empty", sizes(settings), rows(settings)))
        for r in range(args.rounds):
            began = time.monotonic()
            for start in range(r * args.jobs, (r + 1) * args.jobs, args.per_batch):
                n = min(args.per_batch, (r + 1) * args.jobs - start)
                submit_many(settings, None, specs(start, n))
            submitted_s = time.monotonic() - began
            finish(settings)
            table.append((f"round {r + 1}: submitted, done", sizes(settings), rows(settings)))
            with session_scope(settings) as s:
                cutoff = s.execute(select(func.now())).scalar_one() - timedelta(days=30)
            report = purge(settings, cutoff, keep_artifacts=True, batch=args.batch)
            table.append((f"round {r + 1}: purged", sizes(settings), rows(settings)))
            vacuum(settings)
            table.append((f"round {r + 1}: VACUUM", sizes(settings), rows(settings)))
            print(
                f"round {r + 1}: {args.jobs} jobs submitted in {submitted_s:.1f} s"
                f" ({args.jobs / submitted_s:.0f} jobs/s); purged {report.jobs} jobs,"
                f" {report.tasks} tasks, {report.events} events in {report.seconds:.1f} s:"
                f" {report.jobs / max(report.seconds, 1e-9):.0f} jobs/s, {report.batches}"
                f" transactions of <= {args.batch} jobs,"
                f" longest {report.longest_transaction_s:.3f} s"
            )
        print()
        print(f"{'':28} {'database':>8} " + " ".join(f"{t:>9}" for t in TABLES) + "   (MiB)")
        for label, sz, _ in table:
            print(f"{label:28} {mb(sz['database'])} " + " ".join(f"{mb(sz[t]):>9}" for t in TABLES))
        print()
        print(f"{'rows':28} {'':8} " + " ".join(f"{t:>9}" for t in TABLES))
        for label, _, n in table:
            print(f"{label:28} {'':8} " + " ".join(f"{n[t]:>9}" for t in TABLES))
        print(f"\nload: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")


if __name__ == "__main__":
    main()
