"""CLI commands for operators and pipelines: tokens, the API server, Flower, batches, logs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from farm.backend import Backend, backend
from farm.cli_common import _fail, _follow_all, console, err
from farm.config import Settings
from farm.errors import FarmError

if TYPE_CHECKING:
    from farm.batch import Row, RowError

token_app = typer.Typer(help="API tokens.")


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., "--name", help="who uses it; recorded on their jobs"),
    read_only: bool = typer.Option(False, "--read-only", help="can read, not submit or control"),
    admin: bool = typer.Option(False, "--admin", help="may also set projects and limits"),
) -> None:
    """Create a token and print it (it is stored hashed and cannot be shown again)."""
    from farm.runtime import services
    from farm.tokens import create

    try:
        with services(Settings()) as s:
            console.print(create(s, name, read_only=read_only, admin=admin))
    except FarmError as e:
        raise _fail(e) from None


@token_app.command("list")
def token_list() -> None:
    from farm.runtime import services
    from farm.tokens import list_tokens

    table = Table("name", "role", "created", "last used", "revoked")
    with services(Settings()) as s:
        for t in list_tokens(s):
            role = "read-only" if t["read_only"] else "admin" if t["admin"] else "write"
            table.add_row(
                str(t["name"]), role, str(t["created_at"] or "")[:19],
                str(t["last_used_at"] or "")[:19], str(t["revoked_at"] or "")[:19],
            )  # fmt: skip
    console.print(table)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    from farm.runtime import services
    from farm.tokens import revoke

    try:
        with services(Settings()) as s:
            revoke(s, name)
    except FarmError as e:
        raise _fail(e) from None
    console.print(f"token {name!r} revoked")


def api(
    host: str | None = typer.Option(None, help="default FARM_API_HOST (127.0.0.1)"),
    port: int | None = typer.Option(None, help="default FARM_API_PORT (8000)"),
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs)."""
    import uvicorn

    from farm.api.app import create_app
    from farm.runtime import services

    settings = Settings()
    with services(settings) as s:
        uvicorn.run(
            create_app(s),
            host=host or s.api_host,
            port=port or s.api_port,
            log_level="warning",
            # The monitor's live streams would hold a shutdown for up to 30 s each.
            timeout_graceful_shutdown=5,
        )


def flower(port: int | None = typer.Option(None, help="default FARM_FLOWER_PORT (5555)")) -> None:
    """Start Flower on the farm's broker, behind basic authentication (FARM_FLOWER_BASIC_AUTH
    as user:password; Flower is refused without it)."""
    from farm.celery_app import make_celery
    from farm.runtime import services

    settings = Settings()
    auth = settings.flower_basic_auth
    if not auth or ":" not in auth or auth.endswith(":"):
        raise _fail(FarmError("set FARM_FLOWER_BASIC_AUTH=user:password: Flower needs a login"))
    with services(settings, migrate=False) as s:
        # The farm's own app, so Flower speaks its configuration (JSON only, its broker).
        make_celery(s).start(
            [
                "flower", f"--port={port or s.flower_port}", f"--basic-auth={auth}",
                "--purge_offline_workers=60",
            ]
        )  # fmt: skip


def batch(
    manifest: Path = typer.Argument(..., help="YAML or CSV manifest"),
    defaults: Path | None = typer.Option(None, help="YAML of shared defaults (for CSV)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and print the plan only"),
    skip_invalid: bool = typer.Option(False, help="submit the valid rows, skip the others"),
    wait: bool = typer.Option(True, help="follow the batch until every job ends"),
) -> None:
    """Submit many jobs from one manifest; the same manifest twice makes no duplicates."""
    from farm.batch import expand, order, read_manifest

    started = time.perf_counter()
    try:
        base, shots = read_manifest(manifest, defaults)
        rows, errors = expand(base, shots)
        rows, cycle_errors = order(rows)
        errors += cycle_errors
    except FarmError as e:
        raise _fail(e) from None
    if errors:
        rows = _refuse_or_skip(rows, errors, skip_invalid)
    plan = Table("row", "name", "kind", "frames", "after", "output", title=f"{len(rows)} job(s)")
    for r in rows:
        spec: Any = r.spec
        plan.add_row(
            str(r.row), r.name, spec.kind, getattr(spec, "frames", "") or "",
            ", ".join(r.needs), spec.output or "",
        )  # fmt: skip
    if dry_run:
        console.print(plan)
        secs = time.perf_counter() - started
        console.print(f"dry run: {len(rows)} rows valid in {secs:.2f}s ({len(rows) / secs:.0f}/s)")
        return
    try:
        with backend(Settings()) as be:
            ids, new = _submit_rows(be, rows, skip_invalid)
            secs = time.perf_counter() - started
            console.print(
                f"submitted {len(ids)} jobs ({new} new) in {secs:.2f}s ({len(ids) / secs:.0f}/s)"
            )
            if not wait:
                return
            last = _follow_all(be, list(ids.values()), poll_s=1.0)
    except FarmError as e:
        raise _fail(e) from None
    summary = Table("name", "id", "state", "outputs", title="batch summary")
    for name, job_id in ids.items():
        row = last[job_id]
        outs = ", ".join(a["path"] for a in row.get("artifacts", []) if a["kind"] != "segment")
        summary.add_row(name, str(job_id), row["state"], outs)
    console.print(summary)
    states = [last[j]["state"] for j in ids.values()]
    console.print(
        f"{states.count('succeeded')} succeeded, {states.count('failed')} failed, "
        f"{states.count('canceled')} canceled"
    )
    if any(s != "succeeded" for s in states):
        raise typer.Exit(1)


def _submit_rows(be: Backend, rows: list[Row], skip_invalid: bool) -> tuple[dict[str, int], int]:
    """Every row in one go (one transaction on a local farm); rows the database refuses
    (an unknown checkpoint, a reused key) are named like invalid rows, and skipped with their
    dependents if asked, the rest submitted again."""
    from farm.batch import RowError
    from farm.submit import SubmissionsRejected

    while True:
        try:
            made = be.submit_many([(r.data, r.idempotency_key()) for r in rows])
        except SubmissionsRejected as e:
            errors = [
                RowError(rows[i].row, rows[i].label, field, reason)
                for i, found in e.problems.items()
                for field, reason in found
            ]
            rows = _refuse_or_skip(rows, errors, skip_invalid)
            continue
        ids = {r.name: m["id"] for r, m in zip(rows, made, strict=True)}
        return ids, sum(1 for m in made if m["created"])


def _refuse_or_skip(rows: list[Row], errors: list[RowError], skip_invalid: bool) -> list[Row]:
    """Print the bad rows; refuse the batch, or (``--skip-invalid``) drop them and the rows
    that depend on them."""
    from farm.batch import ManifestError, without

    table = Table("row", "shot", "field", "reason", title="invalid rows")
    for e in errors:
        table.add_row(str(e.row), e.label, e.field, e.reason)
    err.print(table)
    bad = {e.row for e in errors}
    if not skip_invalid:
        raise _fail(ManifestError(f"{len(bad)} invalid row(s); nothing submitted"))
    return without(rows, bad)


def logs(
    job: str = typer.Argument(..., help="job id or name"),
    task: int | None = typer.Option(None, "--task", help="a task id (default: every task)"),
    attempt: int | None = typer.Option(None, "--attempt", min=1, help="default: the latest"),
    follow: bool = typer.Option(
        False,
        "--follow",
        "-f",
        help="print lines as they come, through retries, until the task ends",
    ),
) -> None:
    """Print a job's task logs: each attempt's worker log, progress lines, ffmpeg's stderr
    and tracebacks. With --follow, waits on each task in turn, from --attempt (default: the
    latest) through its retries, until it ends."""
    from datetime import datetime

    try:
        with backend(Settings()) as be:
            ids = [int(t["id"]) for t in be.job(job)["task_list"]]
            if task is not None:
                if task not in ids:
                    raise FarmError(f"task {task} is not one of job {job}'s tasks")
                ids = [task]
            for task_id in ids:
                shown: int | None = None
                for line in be.task_logs(task_id, attempt, follow):
                    if line["level"] == "end":
                        typer.echo(f"=== task {task_id}: {line['text'].removeprefix('task ')} ===")
                        continue
                    if line["attempt"] != shown:
                        shown = line["attempt"]
                        typer.echo(f"=== task {task_id} attempt {shown} ===")
                    at = datetime.fromtimestamp(line["at"]).strftime("%H:%M:%S")
                    typer.echo(f"{at} {line['level']:<8} {line['text']}")
    except FarmError as e:
        raise _fail(e) from None


def register(app: typer.Typer) -> None:
    from farm import cli_audit, cli_share

    cli_share.register(app)
    app.command("audit")(cli_audit.audit_command)
    app.add_typer(token_app, name="token")
    app.command()(api)
    app.command()(flower)
    app.command()(batch)
    app.command()(logs)
