"""Figures for studio integration: batch submission throughput and API list latency.

1. ``farm batch`` on a 500-row manifest: dry run (validate + plan) and real submission
   (records 500 jobs with their chunk tasks; ``--no-wait``), as jobs per second.
2. ``GET /jobs`` latency through a real API server process with 10,000 jobs in the database:
   p50 and p95 over repeated requests, unfiltered and filtered.

    PYTHONPATH=. python bench/api.py [--rows 500] [--jobs 10000] [--requests 300]

Needs PostgreSQL and Redis: FARM_DATABASE_URL's server (a fresh database is created and
dropped) or this machine's 127.0.0.1:5432, and FARM_BROKER_URL or 127.0.0.1:6379/14.
"""

from __future__ import annotations

import argparse
import os
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


def batch_figures(settings: Settings, rows: int, root: Path) -> tuple[float, float]:
    ckpt = root / "out" / "bench.safetensors"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"placeholder: the jobs are only recorded, never run")
    manifest = root / "shots.yaml"
    lines = [f"  - {{seq: sq{i // 100:02d}, shot: sh{i:04d}}}" for i in range(rows)]
    manifest.write_text(
        "defaults: {kind: render, checkpoint: bench.safetensors, frames: 1-100, chunk_size: 25,"
        " name: '{seq}_{shot}', output: 'shots/{seq}/{shot}.mp4'}\nshots:\n" + "\n".join(lines)
    )
    env = child_env(settings)
    out = []
    for args in (["--dry-run"], ["--no-wait"]):
        started = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "farm", "batch", str(manifest), *args],
            env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if res.returncode != 0:
            raise SystemExit(res.stdout + res.stderr)
        out.append(rows / (time.perf_counter() - started))
    return out[0], out[1]


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
    args = ap.parse_args()
    base = os.environ.get("FARM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    broker = os.environ.get("FARM_BROKER_URL", "redis://127.0.0.1:6379/14")
    root = Path(tempfile.mkdtemp(prefix="farm-bench-api-"))
    with fresh_database(base) as url:
        s = make_settings(url, broker, root)
        dry, real = batch_figures(s, args.rows, root)
        print(
            f"farm batch, {args.rows} rows: dry run {dry:.0f} jobs/s, submission {real:.0f} jobs/s"
        )
    with fresh_database(base) as url:
        s = make_settings(url, broker, root)
        fill_jobs(s, args.jobs)
        for label, (p50, p95) in api_latency(s, args.requests).items():
            print(f"{label:40s} with {args.jobs} jobs: p50 {p50:.1f} ms  p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
