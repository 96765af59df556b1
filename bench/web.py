"""Figures for the web monitor (docs/web.md):

1. The jobs page (``GET /``, a logged-in session cookie) through a real ``farm api`` process
   with 10,000 jobs in the database: p50 and p95 over repeated requests, unfiltered, filtered,
   sorted and deep in the keyset pages; and a job page with 200 tasks and 600 events.
2. Event to screen (needs playwright and chromium; ``--skip-browser``: not run): a job page
   open in headless chromium while this script moves the job's tasks through
   queued -> running -> succeeded at random moments, one committed transition at a time;
   each delay is from the commit to the moment the browser's DOM shows the new state
   (a MutationObserver's ``Date.now()``; one machine, one clock). A state that lasts less
   than the stream's tick may never be shown: the count seen says how many were.

    PYTHONPATH=. python bench/web.py [--jobs 10000] [--requests 300] [--changes 40]
                                     [--skip-browser] [--chromium /usr/bin/chromium]

Needs PostgreSQL and Redis: FARM_DATABASE_URL's server (a fresh database is created and
dropped) or this machine's 127.0.0.1:5432, and FARM_BROKER_URL or 127.0.0.1:6379/14.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import insert, select

from farm.config import Settings
from farm.db import get_engine, session_scope
from farm.lifecycle import lock_task, transition
from farm.models import Event, Job, Task
from farm.runtime import child_env
from farm.states import JobState, TaskKind, TaskState
from farm.tokens import create
from tests.integration.harness import fresh_database, make_settings

STATES = [JobState.SUCCEEDED] * 6 + [JobState.QUEUED, JobState.RUNNING, JobState.FAILED]


def fill_jobs(settings: Settings, n: int) -> None:
    """``n`` jobs across states, tags, submitters and pools, with task counters (the page
    draws progress from them); no tasks rows: the page never reads them."""
    rows = []
    for i in range(n):
        state = STATES[i % len(STATES)]
        done = 4 if state is JobState.SUCCEEDED else i % 4
        rows.append({
            "name": f"shot-{i}", "kind": "render" if i % 10 else "train", "state": state,
            "spec": {"kind": "render"}, "priority": 30 + i % 50, "tags": [f"seq{i % 20}"],
            "submitter": f"artist{i % 7}", "pool": "gpu" if i % 3 == 0 else None,
            "tasks_succeeded": done, "tasks_queued": 4 - done,
        })  # fmt: skip
    with get_engine(settings).begin() as conn:
        conn.execute(insert(Job), rows)


def big_job(settings: Settings, chunks: int) -> int:
    """A finished render of ``chunks`` chunks and three events each, for the job page."""
    with session_scope(settings) as s:
        job = Job(name="big-render", kind="render", state=JobState.SUCCEEDED,
                  spec={"kind": "render", "frames": f"1-{chunks * 10}"},
                  tasks_succeeded=chunks)  # fmt: skip
        s.add(job)
        s.flush()
        for i in range(chunks):
            s.add(Task(job_id=job.id, kind=TaskKind.RENDER_CHUNK, index=i, queue="cpu",
                       frames=f"{i * 10 + 1}-{i * 10 + 10}", position=i * 10, frame_count=10,
                       state=TaskState.SUCCEEDED, attempts=1, worker="gpu0@bench",
                       progress={"frames": 10, "of": 10}))  # fmt: skip
        s.flush()
        ids = s.execute(select(Task.id).where(Task.job_id == job.id)).scalars().all()
        for tid in ids:
            for src, dst in ((None, "queued"), ("queued", "running"), ("running", "succeeded")):
                s.add(Event(job_id=job.id, task_id=tid, from_state=src, to_state=dst))
        return job.id


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(settings: Settings) -> Iterator[str]:
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "farm", "api", "--port", str(port)],
        env=child_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def logged_in(url: str, token: str) -> Iterator[httpx.Client]:
    """A client holding a session cookie, logged in through the login form."""
    with httpx.Client(base_url=url, headers={"Origin": url}) as c:
        form = c.get("/ui/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        c.post("/ui/login", data={"token": token, "csrf": csrf.group(1), "next": "/"})
        assert "farm_session" in c.cookies, "login failed"
        yield c


def page_latency(c: httpx.Client, path: str, requests: int) -> tuple[float, float]:
    c.get(path).raise_for_status()
    times = []
    for _ in range(requests):
        t = time.perf_counter()
        r = c.get(path)
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    return statistics.median(times), percentile(times, 0.95)


def deep_page(c: httpx.Client, pages: int) -> str:
    """The query string of the jobs page ``pages`` pages down (following Next page)."""
    path = "/?limit=50"
    for _ in range(pages):
        found = re.search(r'rel="next" href="([^"]+)"', c.get(path).text)
        if found is None:
            break
        path = found.group(1).replace("&amp;", "&")
    return path


def event_to_screen(
    settings: Settings, url: str, token: str, changes: int, chromium: str
) -> list[float]:
    from playwright.sync_api import sync_playwright

    tasks = max(1, changes // 2)
    with session_scope(settings) as s:
        spec = {"kind": "render", "frames": f"1-{tasks * 10}"}
        job = Job(name="watched", kind="render", state=JobState.QUEUED, spec=spec,
                  tasks_queued=tasks)  # fmt: skip
        s.add(job)
        s.flush()
        for i in range(tasks):
            frames = f"{i * 10 + 1}-{i * 10 + 10}"
            s.add(Task(job_id=job.id, kind=TaskKind.RENDER_CHUNK, index=i, queue="bench",
                       frames=frames, position=i * 10, frame_count=10))  # fmt: skip
        job_id = job.id
    with session_scope(settings) as s:
        ids = s.execute(select(Task.id).where(Task.job_id == job_id).order_by(Task.id))
        task_ids = list(ids.scalars())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{url}/ui/login?next=/ui/jobs/{job_id}")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{url}/ui/jobs/{job_id}")
        page.wait_for_function("document.getElementById('live-status').textContent === 'live'")
        page.evaluate(
            """() => { window.__seen = {};
            const note = () => document.querySelectorAll('li.task').forEach(el => {
                const key = el.dataset.taskId + ':' + el.dataset.state;
                if (!(key in window.__seen)) window.__seen[key] = Date.now(); });
            note();
            new MutationObserver(note).observe(document.body, {subtree: true, childList: true});
            }"""
        )
        committed: dict[str, float] = {}
        rng = random.Random(14)
        plan = [(t, dst) for t in task_ids for dst in (TaskState.RUNNING, TaskState.SUCCEEDED)]
        for task_id, dst in plan[:changes]:
            time.sleep(rng.uniform(0.3, 1.2))  # not in step with the server's tick
            with session_scope(settings) as s:
                task = lock_task(s, task_id)
                assert task is not None
                transition(s, task, dst, worker="bench")
            committed[f"{task_id}:{dst.value}"] = time.time()
        page.wait_for_timeout(2000)
        seen = page.evaluate("window.__seen")
        browser.close()
    return [seen[k] / 1000 - t for k, t in committed.items() if k in seen]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--chromium", default=os.environ.get("FARM_TEST_CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()
    base = os.environ.get("FARM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    broker = os.environ.get("FARM_BROKER_URL", "redis://127.0.0.1:6379/14")
    root = Path(tempfile.mkdtemp(prefix="farm-bench-web-"))
    with fresh_database(base) as url:
        s = make_settings(url, broker, root)
        fill_jobs(s, args.jobs)
        big = big_job(s, 200)
        token = create(s, "bench")
        with api_server(s) as api, logged_in(api, token) as c:
            deep = deep_page(c, 100)
            pages = [
                ("jobs page: GET /", "/"),
                ("filtered: ?tag=seq7&state=failed", "/?tag=seq7&state=failed"),
                ("name contains: ?name=shot-12", "/?name=shot-12"),
                ("sorted: ?sort=priority&limit=200", "/?sort=priority&limit=200"),
                ("100 pages down (keyset)", deep),
                ("a job of 200 tasks, 600 events", f"/ui/jobs/{big}"),
            ]
            print(f"{args.jobs} jobs, {args.requests} requests each, logged-in session cookie:")
            for label, path in pages:
                p50, p95 = page_latency(c, path, args.requests)
                print(f"  {label:38s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
            if args.skip_browser:
                return
            delays = event_to_screen(s, api, token, args.changes, args.chromium)
            ms = sorted(1000 * d for d in delays)
            print(
                f"event to screen, {len(ms)} task state changes seen in chromium:"
                f" p50 {statistics.median(ms):.0f} ms  p95 {percentile(ms, 0.95):.0f} ms"
                f"  max {ms[-1]:.0f} ms"
            )


if __name__ == "__main__":
    main()
