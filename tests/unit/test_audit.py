"""The audit log's pure parts: ``--since`` and the filters, with ``now`` passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from farm.audit import EARLIEST, AuditFilter, make_filter, parse_since, request_id_or_new
from farm.errors import SpecError

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("1h", NOW - timedelta(hours=1)),
        ("2d", NOW - timedelta(days=2)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-11-30", datetime(2026, 11, 30, tzinfo=UTC)),
        ("2026-11-30T08:15", datetime(2026, 11, 30, 8, 15, tzinfo=UTC)),
        ("2026-11-30T08:15:00+02:00", datetime(2026, 11, 30, 6, 15, tzinfo=UTC)),
        ("2026-11-30T08:15:00Z", datetime(2026, 11, 30, 8, 15, tzinfo=UTC)),
    ],
)
def test_since_reads_ages_dates_and_times(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "1y", "h", "-1h", "1.5h", "2026-13-01", "2026-02-30",
                                  "yesterday", "12345678w", "2026-12-01T25:00"])  # fmt: skip
def test_since_refuses_what_is_not_an_age_or_a_date_naming_it(text: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_since(text, NOW)
    assert [f for f, _ in e.value.problems] == ["since"]


def test_an_age_older_than_the_calendar_means_since_the_start() -> None:
    assert parse_since("9999999w", NOW) == parse_since("999999w", NOW) == EARLIEST


def test_filters_are_built_when_all_are_good() -> None:
    f = make_filter(NOW, since="1h", action="cancel", actor="pipeline", job=7, limit=10)
    assert f == AuditFilter(NOW - timedelta(hours=1), "cancel", "pipeline", 7, None, None, 10)
    assert make_filter(NOW) == AuditFilter()


def test_every_bad_filter_is_named_at_once() -> None:
    with pytest.raises(SpecError) as e:
        make_filter(NOW, since="soon", action="nuke", actor="a\x00", job=0, before=-1, limit=0)
    assert [f for f, _ in e.value.problems] == [
        "since", "action", "actor", "job", "before", "limit"
    ]  # fmt: skip


def test_a_sane_request_id_is_kept_and_any_other_replaced() -> None:
    assert request_id_or_new("req-1.a:b") == "req-1.a:b"
    for bad in (None, "", "has space", "x" * 129, "nul\x00"):
        made = request_id_or_new(bad)
        assert made != bad and len(made) == 32
