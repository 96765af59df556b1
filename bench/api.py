"""Figures for studio integration: batch submission throughput and API list latency.

1. ``farm batch`` on a 500-row manifest: dry run (validate + plan), real submission
   (records 500 jobs with their chunk tasks in one transaction; ``--no-wait``), the same
   manifest again (every row found by its key), and, on a fresh database in the same run,
   the old way: a transaction per row (``PER_ROW``, what ``farm batch`` did before), as jobs
   per second of the whole command, process start included, and of the submission itself.
2. ``GET /jobs`` latency through a real API server process with 10,000 jobs in the database:
   p50 and p95 over repeated requests, unfiltered and filtered (``--skip-list``: not run).

    PYTHONPATH=. python bench/api.py [--rows 500] [--jobs 10000] [--requests 300] [--skip-list]

Needs PostgreSQL and Redis: FARM_DATABASE_URL's server (a fresh database is created and
dropped) or this machine's 127.0.0.1:5432, and FARM_BROKER_URL or 127.0.0.1:6379/14.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from farm.config import Settings
from farm.db import get_engine
from farm.models import Job
from farm.runtime import child_env
from farm.tokens import create
from tests.integration.harness import fresh_database, make_settings

# The submission loop ``farm batch`` had before it recorded a manifest in one transaction:
# one ``submit`` (its own transaction) per row, then one dispatch pass.
PER_ROW = """
import sys, time
from pathlib import Path
from farm.backend import backend
from farm.batch import expand, order, read_manifest
from farm.config import Settings
started = time.perf_counter()
rows, _ = expand(*read_manifest(Path(sys.argv[1])))
rows, _ = order(rows)
with backend(Settings()) as be:
    for r in rows:
        be.submit(r.data, r.idempotency_key(), dispatch=False)
    be.flush()
secs = time.perf_counter() - started
print(f"submitted {len(rows)} jobs in {secs:.2f}s ({len(rows) / secs:.0f}/s)")
"""


def write_manifest(root: Path, rows: int) -> Path:
    ckpt = root / "out" / "bench.safetensors"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"placeholder: the jobs are only recorded, never run")
    manifest = root / "shots.yaml"
    lines = [f"  - {{seq: sq{i // 100:02d}, shot: sh{i:04d}}}" for i in range(rows)]
    manifest.write_text(
        "defaults: {kind: render, checkpoint: bench.safetensors, frames: 1-100, chunk_size: 25,"
        " name: '{seq}_{shot}', output: 'shots/{seq}/{shot}.mp4'}\nshots:\n" + "\n".join(lines)
    )
    return manifest


def timed(settings: Settings, rows: int, command: list[str]) -> tuple[float, float]:
    """Jobs per second of the whole command (process start to exit) and of the part the
    command itself reports (reading the manifest to the last job recorded)."""
    started = time.perf_counter()
    res = subprocess.run(
        [sys.executable, *command], env=child_env(settings), capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(res.stdout + res.stderr)
    wall = rows / (time.perf_counter() - started)
    found = re.search(r"in (\d+\.\d+)s \(", res.stdout)
    return wall, rows / float(found.group(1)) if found else float("nan")


def batch_figures(base: str, broker: str, rows: int, root: Path) -> dict[str, tuple[float, float]]:
    manifest = str(write_manifest(root, rows))
    batch = ["-m", "farm", "batch", manifest]
    out = {}
    with fresh_database(base) as url:
        s = make_settings(url, broker, root)
        out["dry run"] = timed(s, rows, [*batch, "--dry-run"])
        out["one transaction"] = timed(s, rows, [*batch, "--no-wait"])
        out["again (all exist)"] = timed(s, rows, [*batch, "--no-wait"])
    with fresh_database(base) as url:
        out["per row (before)"] = timed(
            make_settings(url, broker, root), rows, ["-c", PER_ROW, manifest]
        )
    return out


def fill_jobs(settings: Settings, n: int) -> None:
    rows = [
        {"name": f"shot-{i}", "kind": "render", "state": "succeeded", "spec": {"kind": "render"},
         "priority": 50, "tags": [f"seq{i % 20}"], "submitter": "bench"}
        for i in range(n)
    ]  # fmt: skip
    with get_engine(settings).begin() as conn:
        conn.execute(insert(Job), rows)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def api_latency(settings: Settings, requests: int) -> dict[str, tuple[float, float]]:
    port = 18765
    token = create(settings, f"bench-{time.time_ns()}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "farm", "api", "--port", str(port)],
        env=child_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        results = {}
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers) as c:
            for label, query in [
                ("GET /jobs?limit=50", "/jobs?limit=50"),
                ("GET /jobs?tag=seq7&limit=50", "/jobs?tag=seq7&limit=50"),
                ("GET /jobs?state=succeeded&limit=200", "/jobs?state=succeeded&limit=200"),
            ]:
                c.get(query).raise_for_status()
                times = []
                for _ in range(requests):
                    t = time.perf_counter()
                    c.get(query).raise_for_status()
                    times.append((time.perf_counter() - t) * 1000)
                results[label] = (statistics.median(times), percentile(times, 0.95))
        return results
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--skip-list", action="store_true", help="batch figures only")
    args = ap.parse_args()
    base = os.environ.get("FARM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    broker = os.environ.get("FARM_BROKER_URL", "redis://127.0.0.1:6379/14")
    root = Path(tempfile.mkdtemp(prefix="farm-bench-api-"))
    figures = batch_figures(base, broker, args.rows, root)
    print(f"farm batch, {args.rows} rows (jobs/s: whole command / submission as reported):")
    for label, (wall, own) in figures.items():
        print(f"  {label:20s} {wall:6.0f} / {own:6.0f}")
    new, old = figures["one transaction"], figures["per row (before)"]
    print(f"  one transaction / per row: {new[0] / old[0]:.1f}x whole, {new[1] / old[1]:.1f}x own")
    if args.skip_list:
        return
    with fresh_database(base) as url:
        s = make_settings(url, broker, root)
        fill_jobs(s, args.jobs)
        for label, (p50, p95) in api_latency(s, args.requests).items():
            print(f"{label:40s} with {args.jobs} jobs: p50 {p50:.1f} ms  p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
