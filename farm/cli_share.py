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
    by: str = typer.Option("project", "--by", help="project, day, job or worker"),
    project: str | None = typer.Option(None, "--project", help="only this project"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """What the farm spent: attempts, wall, GPU and CPU seconds (lost: a dead worker's)."""
    from farm.db import session_scope
    from farm.runtime import services
    from farm.usage import usage

    if by not in ("project", "day", "job", "worker"):
        raise _fail(FarmError(f"--by: {by!r} is not one of project, day, job, worker"))
    with services(Settings()) as s, session_scope(s) as session:
        rows = usage(session, by, project)  # type: ignore[arg-type]
    if as_json:
        out = [{"key": r.key, "attempts": r.attempts, "wall_s": str(r.wall_s),
                "gpu_s": str(r.gpu_s), "cpu_s": str(r.cpu_s), "lost_s": str(r.lost_s)}
               for r in rows]  # fmt: skip
        console.print_json(json.dumps(out))
        return
    table = Table(by, "attempts", "wall s", "GPU s", "CPU s", "lost s")
    for r in rows:
        table.add_row(r.key, str(r.attempts), *(f"{v:.3f}" for v in
                      (r.wall_s, r.gpu_s, r.cpu_s, r.lost_s)))  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")
    app.add_typer(limit_app, name="limit")
    app.command("usage")(usage_command)
