"""The ``farm`` command line. Thin: it builds settings, resolves servers, calls services."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from farm import cli_ops
from farm.backend import backend
from farm.cli_common import _fail, _follow_all, console, err
from farm.config import Settings
from farm.errors import FarmError
from farm.processes import Interrupted, interruptible
from farm.runtime import child_env, services

if TYPE_CHECKING:
    from celery import Celery

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
db_app = typer.Typer(help="Database schema migrations.")
app.add_typer(db_app, name="db")


def _celery(settings: Settings) -> Celery:
    from farm.celery_app import make_celery

    return make_celery(settings)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """farm: train generative models and render animation with them on a Celery render farm."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _interruptible_exit(e: Interrupted, what: str) -> typer.Exit:
    err.print(f"{what}: {e} received; everything it started is stopped", highlight=False)
    return typer.Exit(e.exit_code)


@app.command()
def up(
    workers: int = typer.Option(1, min=1, help="worker processes to start"),
    queues: str = typer.Option("gpu,cpu", help="queues those workers consume"),
    api: bool = typer.Option(True, help="serve the REST API too (FARM_API_HOST:FARM_API_PORT)"),
) -> None:
    """Run the farm in the foreground: servers if needed, workers, the sweeper and the API.

    A worker that crashes after starting is restarted (back-off 1-60 s, at most 5 times in
    10 minutes); one that fails while starting, or the API exiting, stops the farm with the
    last lines of its log. Ctrl-C or SIGTERM stops everything (exit 130 / 143)."""
    from farm.embedded import read_runtime
    from farm.up import run_up

    settings = Settings()
    if settings.embedded and read_runtime(settings.data_dir) is not None:
        raise _fail(FarmError(f"a farm is already up on {settings.data_dir.resolve()}"))
    try:
        with interruptible():
            run_up(settings, workers=workers, queues=queues, api=api, console=console)
    except Interrupted as e:
        raise _interruptible_exit(e, "farm up") from None
    except FarmError as e:
        raise _fail(e) from None


@app.command()
def worker(
    queues: str | None = typer.Option(None, help="queues to consume (default gpu,cpu)"),
    pool: str | None = typer.Option(None, help="consume only this pool's queue, gpu.POOL"),
    gpus: str | None = typer.Option(None, help="'all' or '0,1': one worker process per GPU"),
    concurrency: int = typer.Option(1, min=1),
    name: str | None = typer.Option(None, help="Celery node name"),
    max_tasks_per_child: int | None = typer.Option(
        None, min=1, help="recycle the pool process after this many tasks (no chaining)"
    ),
    max_memory_mb: int | None = typer.Option(
        None, min=1, help="recycle the pool process once it holds this much memory"
    ),
    drain: str | None = typer.Option(
        None, metavar="NAME", help="drain a running worker (it finishes its task, takes no more)"
    ),
    undrain: str | None = typer.Option(None, metavar="NAME", help="let a drained worker work"),
) -> None:
    """Run a Celery worker: a real worker process whose prefork child runs the models.

    SIGTERM drains it: the running task finishes and no new one is taken. Recycling happens
    between tasks, so the task a child was running is never lost. With --drain NAME (or
    --undrain NAME) it starts nothing: it asks that worker, by its name in `farm workers`.
    """
    if drain or undrain:
        _drain(drain or undrain or "", draining=bool(drain))
        return
    from farm.fleet import (
        check_output_root,
        choose_gpus,
        gpu_env,
        node_name,
        queues_for,
        visible_gpus,
    )

    q = queues_for(pool, queues)
    settings = Settings()
    try:
        check_output_root(settings.output_root_abs())
    except FarmError as e:
        raise _fail(e) from None
    recycle = []
    if max_tasks_per_child:
        recycle += ["--max-tasks-per-child", str(max_tasks_per_child)]
    if max_memory_mb:
        recycle += ["--max-memory-mb", str(max_memory_mb)]
    if gpus is not None:
        try:
            chosen = choose_gpus(gpus, visible_gpus())
        except FarmError as e:
            raise _fail(e) from None
        with services(settings, migrate=False) as s:
            env = child_env(s)

            def spawn(gpu: int | None) -> subprocess.Popen[bytes]:
                args = ["worker", "--queues", q, "--name", node_name(pool, gpu), *recycle]
                return subprocess.Popen(
                    [sys.executable, "-m", "farm", *args],
                    env=env if gpu is None else gpu_env(env, gpu),
                )

            procs = [spawn(g) for g in chosen] or [spawn(None)]
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            while not stop.is_set() and any(p.poll() is None for p in procs):
                stop.wait(1.0)
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                p.wait()
        return
    from workers.main import run_worker

    with services(settings, migrate=False) as s:
        run_worker(
            s, queues=q, concurrency=concurrency, name=name or node_name(pool, None),
            max_tasks_per_child=max_tasks_per_child, max_memory_mb=max_memory_mb,
        )  # fmt: skip


def _drain(name: str, *, draining: bool) -> None:
    try:
        with backend(Settings()) as be:
            be.drain(name, draining)
    except FarmError as e:
        raise _fail(e) from None
    if draining:
        console.print(f"worker {name}: draining (it finishes its running task, then takes none)")
    else:
        console.print(f"worker {name}: taking work again")


@app.command()
def workers(
    include_stopped: bool = typer.Option(False, "--all", help="also workers that stopped"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The worker registry: host, pool, GPU, state, running task, heartbeat, versions."""
    try:
        with backend(Settings()) as be:
            rows = be.workers(include_stopped)
    except FarmError as e:
        raise _fail(e) from None
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("name", "state", "pool", "gpu", "task", "done/failed", "seen", "versions")
    for w in rows:
        task = f"{w['task_id']} (job {w['job_id']} {w['frames'] or ''})" if w["task_id"] else ""
        v, gpu = w["versions"], "" if w["gpu"] is None else str(w["gpu"])
        table.add_row(
            w["name"], w["state"], w["pool"] or "default", gpu,
            task.replace(" )", ")"), f"{w['tasks_succeeded']}/{w['tasks_failed']}",
            f"{w['last_seen_s']:.0f}s ago",
            f"farm {v.get('farm')} torch {v.get('torch')} py {v.get('python')}",
        )  # fmt: skip
    console.print(table)


@app.command()
def submit(
    spec: Path = typer.Argument(..., help="job spec, YAML or JSON"),
    wait: bool = typer.Option(False, help="follow the job until it ends; exit 0 only on success"),
    idempotency_key: str | None = typer.Option(None, help="submit at most once per key"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Submit a job; prints its id.

    With --wait and no farm running for this data directory (embedded servers, no `farm up`),
    it runs one itself for the wait: the servers, a worker and the sweeper, watched, and
    stopped when the job ends or the command is interrupted."""
    from farm.embedded import read_runtime
    from farm.specs import load_spec

    settings = Settings()
    alone = (
        wait
        and settings.embedded
        and not os.environ.get("FARM_API_URL")
        and read_runtime(settings.data_dir) is None
    )
    try:
        data = load_spec(spec).model_dump(mode="json", exclude_defaults=True)
        with interruptible():
            if alone:
                _submit_alone(settings, data, idempotency_key, as_json)
            with backend(settings) as be:
                made = be.submit(data, idempotency_key)
                _print_made(made, as_json)
                if wait:
                    _exit_with(_follow_all(be, [made["id"]])[made["id"]])
    except Interrupted as e:
        raise _interruptible_exit(e, "farm submit") from None
    except FarmError as e:
        raise _fail(e) from None


def _print_made(made: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(data=made)
    else:
        console.print(made["id"])


def _exit_with(row: dict[str, Any]) -> typer.Exit:
    if row["state"] != "succeeded":
        err.print(f"job {row['id']} {row['state']}: {row['error'] or ''}", highlight=False)
    raise typer.Exit(0 if row["state"] == "succeeded" else 1)


def _submit_alone(settings: Settings, data: dict[str, Any], key: str | None, as_json: bool) -> None:
    from farm.backend import LocalBackend
    from farm.standalone import standalone

    with standalone(settings, "submit-worker") as farm:
        err.print(f"no farm is up: running a worker for this job (log: {farm.worker.log_path})")
        be = LocalBackend(farm.settings)
        made = be.submit(data, key)
        _print_made(made, as_json)
        row = _follow_all(be, [made["id"]], on_poll=farm.check)[made["id"]]
    raise _exit_with(row)


@app.command()
def status(
    job: str | None = typer.Argument(None, help="job id or name"),
    as_json: bool = typer.Option(False, "--json"),
    limit: int = typer.Option(50, min=1),
) -> None:
    """Show the jobs, or one job with its tasks, artifacts and events."""
    try:
        with backend(Settings()) as be:
            data: Any = be.job(job) if job else be.jobs(limit)
    except FarmError as e:
        raise _fail(e) from None
    if as_json:
        console.print_json(json.dumps(data))
    elif job:
        _print_job(data)
    else:
        table = Table("id", "name", "kind", "state", "tasks", "created", "error")
        for r in data:
            t = r["tasks"]
            state = r["state"] + (" (paused)" if r.get("paused") else "")
            table.add_row(
                str(r["id"]), r["name"], r["kind"], state,
                f"{t.get('succeeded', 0)}/{t['total']}", (r["created_at"] or "")[:19],
                (r["error"] or "")[:60],
            )  # fmt: skip
        console.print(table)


def _progress(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    if "epoch" in p:
        loss = p.get("loss")
        return f"epoch {p['epoch']}/{p.get('epochs', '?')}" + (f" loss {loss:.2f}" if loss else "")
    if "frames" in p:
        return f"{p['frames']}/{p.get('of', '?')} frames"
    return json.dumps(p)


def _print_job(d: dict[str, Any]) -> None:
    paused = " (paused)" if d.get("paused") else ""
    console.print(f"[bold]job {d['id']}[/bold] {d['name']} ({d['kind']}): {d['state']}{paused}")
    if d["error"]:
        console.print(f"error: {d['error']}", highlight=False)
    tasks = Table("task", "kind", "frames", "state", "attempts", "worker", "progress", "error")
    for t in d["task_list"]:
        tasks.add_row(
            str(t["id"]), t["kind"], t["frames"] or "", t["state"],
            f"{t['attempts']}/{t['max_attempts']}", t["worker"] or "",
            _progress(t["progress"]), (t["error"] or "")[-60:],
        )  # fmt: skip
    console.print(tasks)
    for f in d.get("worker_failures", []):
        blocked = "blocked from this job" if f["blocked"] else "not blocked"
        console.print(
            f"worker {f['worker']}: {f['failures']} failed attempts, {blocked}", highlight=False
        )
    for a in d["artifacts"]:
        console.print(f"{a['kind']}: {a['path']} ({a['size']} bytes, sha256 {a['sha256'][:12]})")


def _control(verb: str, job: str, *args: Any) -> None:
    try:
        with backend(Settings()) as be:
            row = be.control(verb, job, *args)
    except FarmError as e:
        raise _fail(e) from None
    paused = " (paused)" if row.get("paused") else ""
    console.print(
        f"job {row['id']} ({row['name']}): {row['state']}{paused}, priority {row['priority']}"
    )


@app.command()
def cancel(job: str) -> None:
    """Cancel a job: queued tasks never start, running ones stop at their next heartbeat."""
    _control("cancel", job)


@app.command()
def retry(job: str) -> None:
    """Re-run a failed job's failed tasks only."""
    _control("retry", job)


@app.command()
def pause(job: str) -> None:
    """Hold back a job's queued chunks; running ones finish."""
    _control("pause", job)


@app.command()
def resume(job: str) -> None:
    """Send a paused job's held-back chunks again."""
    _control("resume", job)


@app.command()
def priority(job: str, value: int = typer.Argument(..., min=0, max=100)) -> None:
    """Change a job's priority (0-100); its unsent chunks go out in the new order."""
    _control("priority", job, value)


@app.command()
def sweep(loop: bool = typer.Option(False, help="keep sweeping until interrupted")) -> None:
    """Re-queue work of lost workers and re-send lost messages (``farm up`` does this too)."""
    from farm.sweeper import sweep_forever, sweep_once

    try:
        with services(Settings()) as s:
            celery = _celery(s)
            if loop:
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                with contextlib.suppress(KeyboardInterrupt):
                    sweep_forever(s, celery, stop)
                return
            for d in sweep_once(s, celery):
                console.print(f"task {d.task_id}: {d.action} ({d.reason})")
    except FarmError as e:
        raise _fail(e) from None


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION."""
    from farm.migrate import upgrade as do_upgrade

    with services(Settings(), migrate=False) as s:
        do_upgrade(s, revision)
        console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    from farm.migrate import downgrade as do_downgrade

    with services(Settings(), migrate=False) as s:
        do_downgrade(s, revision)
        console.print(f"database at {revision}")


@app.command()
def demo(out: Path = typer.Option(Path("out"), help="where demo.mp4 lands")) -> None:
    """Train a glyph cVAE briefly and render a 1280x720 colour title, F→A→R→M, to OUT/demo.mp4
    through the farm."""
    from farm.demo import run_demo

    os.environ.setdefault("FARM_OUTPUT_ROOT", str(out))
    settings = Settings(output_root=out)
    try:
        with interruptible():
            path = run_demo(settings, console=err)
    except Interrupted as e:
        raise _interruptible_exit(e, "farm demo") from None
    except FarmError as e:
        raise _fail(e) from None
    console.print(str(path))


cli_ops.register(app)
