"""``farm audit``: who did what, from the database or through ``FARM_API_URL``."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from farm.backend import backend
from farm.cli_common import _fail, console
from farm.config import Settings
from farm.errors import FarmError


def audit_command(
    since: str | None = typer.Option(None, "--since", help="1h, 2d, 1w, or 2026-12-01"),
    action: str | None = typer.Option(None, "--action", help="cancel, submit, drain, ..."),
    actor: str | None = typer.Option(None, "--actor", help="a token's name, or cli:<user>"),
    job: int | None = typer.Option(None, "--job", help="rows about this job id"),
    target: str | None = typer.Option(None, "--target", help="a worker, token, project, limit"),
    limit: int = typer.Option(50, "--limit", help="rows, newest first (1-500)"),
    before: int | None = typer.Option(None, "--before", help="rows older than this id"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Operator actions, newest first: who, when, request id, what and on what."""
    try:
        with backend(Settings()) as be:
            page = be.audit(since=since, action=action, actor=actor, job=job, target=target,
                            limit=limit, before=before)  # fmt: skip
    except FarmError as e:
        raise _fail(e) from None
    if as_json:
        console.print_json(json.dumps(page["items"]))
        return
    table = Table("id", "at", "actor", "action", "target", "request", "detail")
    for r in page["items"]:
        table.add_row(
            str(r["id"]), str(r["at"])[:19], r["actor"], r["action"],
            f"{r['target_kind']} {r['target']}", (r["request_id"] or "")[:12],
            json.dumps(r["detail"]) if r["detail"] else "",
        )  # fmt: skip
    console.print(table)
    if page["next_before"] is not None:
        console.print(f"more: --before {page['next_before']}", style="dim")
