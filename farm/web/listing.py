"""The jobs page's filters, sort orders and keyset cursors: parsed from the query string and
written back into links, with no database (farm.web.queries runs them).

A cursor is the last row's sort key and id, so a page is ``WHERE (key, id) < (k, i)`` on
the sort's index order: the 200th page costs what the first does, and rows arriving
meanwhile never shift a page (``OFFSET`` would repeat or skip them).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from farm.states import JobState

KINDS = ("train", "render")
STATES = tuple(s.value for s in JobState)
PAGE_SIZES = (25, 50, 100, 200)


@dataclass(frozen=True)
class Sort:
    label: str
    column: str  # a Job column, or "id" alone
    descending: bool


SORTS: dict[str, Sort] = {
    "newest": Sort("newest first", "id", True),
    "oldest": Sort("oldest first", "id", False),
    "priority": Sort("highest priority first", "priority", True),
    "name": Sort("name (A to Z)", "name", False),
}
_TEXT = re.compile(r"^[^\x00-\x1f]{1,128}$")


@dataclass(frozen=True)
class JobFilters:
    state: str | None = None
    name: str | None = None  # a part of the name, any case
    tag: str | None = None
    submitter: str | None = None
    pool: str | None = None
    kind: str | None = None
    sort: str = "newest"
    limit: int = 50
    after: tuple[Any, int] | None = None  # the previous page's last (sort key, id)

    def query(self, **changes: Any) -> str:
        """This page's query string with ``changes`` (``after=None`` for the first page)."""
        f = replace(self, **changes)
        params = {k: getattr(f, k) for k in ("state", "name", "tag", "submitter", "pool", "kind")}
        if f.sort != "newest":
            params["sort"] = f.sort
        if f.limit != 50:
            params["limit"] = str(f.limit)
        if f.after is not None:
            params["after"] = encode_cursor(f.after)
        return urlencode({k: v for k, v in params.items() if v})

    @property
    def narrowed(self) -> bool:
        return any((self.state, self.name, self.tag, self.submitter, self.pool, self.kind))


def encode_cursor(key: tuple[Any, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).rstrip(b"=").decode()


def decode_cursor(text: str, sort: Sort) -> tuple[Any, int] | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value, last_id = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(last_id, int) or isinstance(last_id, bool):
        return None
    wanted = str if sort.column == "name" else int
    if sort.column == "id":
        value = last_id
    if not isinstance(value, wanted) or isinstance(value, bool):
        return None
    return value, last_id


def parse_filters(params: Mapping[str, str]) -> tuple[JobFilters, list[str]]:
    """Filters from a query string; what cannot be used is dropped and named in the problems
    (the page says so instead of failing)."""
    problems: list[str] = []

    def text(name: str) -> str | None:
        value = (params.get(name) or "").strip()
        if not value:
            return None
        if not _TEXT.match(value):
            problems.append(f"{name}: at most 128 printable characters")
            return None
        return value

    def choice(name: str, allowed: tuple[str, ...]) -> str | None:
        value = params.get(name) or None
        if value is not None and value not in allowed:
            problems.append(f"{name}: one of {', '.join(allowed)}")
            return None
        return value

    sort = choice("sort", tuple(SORTS)) or "newest"
    try:
        limit = int(params.get("limit") or 50)
    except ValueError:
        limit = 50
    if limit not in PAGE_SIZES:
        problems.append(f"limit: one of {', '.join(map(str, PAGE_SIZES))}")
        limit = 50
    after = None
    if params.get("after"):
        after = decode_cursor(params["after"], SORTS[sort])
        if after is None:
            problems.append("after: not a page of this sort order (showing the first page)")
    filters = JobFilters(
        state=choice("state", STATES), name=text("name"), tag=text("tag"),
        submitter=text("submitter"), pool=text("pool"), kind=choice("kind", KINDS),
        sort=sort, limit=limit, after=after,
    )  # fmt: skip
    return filters, problems


def cursor_of(row: Mapping[str, Any], sort: Sort) -> tuple[Any, int]:
    return (row[sort.column], int(row["id"]))
