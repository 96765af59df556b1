"""CLI commands of the shared farm: projects (weights, caps) and what they run, limits."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from farm.cli_common import _fail, console
from farm.config import Settings
from farm.errors import FarmError

project_app = typer.Typer(help="Projects: shares of the farm (weight, cap of running tasks).")


@project_app.command("set")
def project_set(
    name: str,
    weight: float | None = typer.Option(None, "--weight", help="share under contention (> 0)"),
    max_running: int | None = typer.Option(
        None, "--max-running", help="cap of tasks in flight per queue (>= 0)"
    ),
    no_cap: bool = typer.Option(False, "--no-cap", help="remove the cap"),
) -> None:
    """Create a project, or change its weight or cap; what it runs now is not stopped."""
    from farm.db import session_scope
    from farm.projects import set_project
    from farm.runtime import services

    try:
        with services(Settings()) as s, session_scope(s) as session:
            p = set_project(session, name, weight=weight, max_running=max_running, clear_cap=no_cap)
    except FarmError as e:
        raise _fail(e) from None
    cap = "none" if p.max_running is None else str(p.max_running)
    console.print(f"project {p.name}: weight {p.weight:g}, max running {cap}")


@project_app.command("list")
def project_list(as_json: bool = typer.Option(False, "--json")) -> None:
    from farm.db import session_scope
    from farm.projects import list_projects
    from farm.runtime import services

    with services(Settings()) as s, session_scope(s) as session:
        projects = list_projects(session)
    if as_json:
        console.print_json(json.dumps([vars(p) for p in projects]))
        return
    table = Table("project", "weight", "max running", "running")
    for p in projects:
        running = ", ".join(f"{q} {n}" for q, n in sorted(p.running.items())) or "-"
        cap = "-" if p.max_running is None else str(p.max_running)
        table.add_row(p.name, f"{p.weight:g}", cap, running)
    console.print(table)


limit_app = typer.Typer(help="Limits: named counters for scarce resources, farm-wide.")


@limit_app.command("set")
def limit_set(
    name: str, count: int = typer.Argument(..., help="tasks that may hold it at once (>= 0)")
) -> None:
    """Create a limit or change its count; tasks holding it now go on."""
    from farm.db import session_scope
    from farm.limits import set_limit
    from farm.runtime import services

    try:
        with services(Settings()) as s, session_scope(s) as session:
            v = set_limit(session, name, count)
    except FarmError as e:
        raise _fail(e) from None
    console.print(f"limit {v.name}: count {v.count}, held {v.held}")


@limit_app.command("list")
def limit_list(as_json: bool = typer.Option(False, "--json")) -> None:
    from farm.db import session_scope
    from farm.limits import list_limits
    from farm.runtime import services

    with services(Settings()) as s, session_scope(s) as session:
        limits = list_limits(session)
    if as_json:
        console.print_json(json.dumps([vars(v) for v in limits]))
        return
    table = Table("limit", "count", "held")
    for v in limits:
        table.add_row(v.name, str(v.count), str(v.held))
    console.print(table)


def usage_command(
    by: str = typer.Option("project", "--by", help="project, submitter, pool, day, job or worker"),
    project: str | None = typer.Option(None, "--project", help="only this project"),
    since: str | None = typer.Option(
        None, "--since", help="attempts ended from then: an age (7d, 12h) or a date/ISO time"
    ),
    until: str | None = typer.Option(None, "--until", help="attempts ended before then (same)"),
    as_json: bool = typer.Option(False, "--json"),
    as_csv: bool = typer.Option(False, "--csv"),
) -> None:
    """What the farm spent: attempts, wall, GPU and CPU seconds (lost: a dead worker's)."""
    from datetime import UTC, datetime

    from farm.ages import parse_window
    from farm.db import session_scope
    from farm.errors import InvalidOption
    from farm.runtime import services
    from farm.usage import BY, to_csv, usage

    try:
        if by not in BY:
            raise InvalidOption("--by", f"{by!r} is not one of {', '.join(BY)}")
        if as_json and as_csv:
            raise InvalidOption("--csv", "give --json or --csv, not both")
        start, end = parse_window(since, until, datetime.now(UTC))
    except FarmError as e:
        raise _fail(e) from None
    with services(Settings()) as s, session_scope(s) as session:
        rows = usage(session, by, project, start, end)  # type: ignore[arg-type]
    if as_json:
        console.print_json(json.dumps([r.public() for r in rows]))
        return
    if as_csv:
        typer.echo(to_csv(rows, by), nl=False)
        return
    table = Table(by, "attempts", "wall s", "GPU s", "CPU s", "lost s")
    for r in rows:
        table.add_row(r.key, str(r.attempts), *(f"{v:.3f}" for v in
                      (r.wall_s, r.gpu_s, r.cpu_s, r.lost_s)))  # fmt: skip
    console.print(table)


def purge_command(
    finished_before: str = typer.Option(
        ..., "--finished-before", help="an age (30d, 12h) or a past date/ISO time"
    ),
    keep_artifacts: bool = typer.Option(
        False, "--keep-artifacts", help="delete the rows, keep the artifacts' files"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would go; change nothing"),
    batch: int = typer.Option(500, "--batch", min=1, max=10000, help="jobs per transaction"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete finished jobs older than that, with their tasks, events, logs and artifacts;
    never unfinished work, nor a job a live job still needs. The bill (farm usage) stays."""
    from datetime import UTC, datetime

    from farm.ages import parse_when
    from farm.errors import InvalidOption
    from farm.retention import purge
    from farm.runtime import services

    now = datetime.now(UTC)
    try:
        cutoff = parse_when("--finished-before", finished_before, now)
        if cutoff >= now:
            raise InvalidOption(
                "--finished-before", f"{finished_before!r} is not in the past: it would take"
                " jobs that finish now"
            )  # fmt: skip
    except FarmError as e:
        raise _fail(e) from None
    with services(Settings()) as s:
        report = purge(s, cutoff, keep_artifacts=keep_artifacts, dry_run=dry_run, batch=batch)
    if as_json:
        console.print_json(json.dumps(report.public()))
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} {report.jobs} jobs finished before {cutoff:%Y-%m-%d %H:%M:%S} UTC:"
        f" {report.tasks} tasks, {report.events} events, {report.task_logs} task logs,"
        f" {report.artifacts} artifacts ({report.artifact_bytes} bytes),"
        f" {report.webhook_deliveries} webhook deliveries",
        highlight=False,
    )
    if not dry_run:
        console.print(
            f"files: {report.files_deleted} deleted, {report.files_kept} kept;"
            f" {report.batches} batches in {report.seconds:.2f} s,"
            f" longest transaction {report.longest_transaction_s:.3f} s",
            highlight=False,
        )
    if report.protected:
        console.print(f"kept {report.protected} older finished jobs a live job still needs")


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")
    app.add_typer(limit_app, name="limit")
    app.command("usage")(usage_command)
    app.command("purge")(purge_command)
