"""Unit tests for retention's and accounting's pure parts: ages and times as written on the
command line, the retention setting's floor, which files a purged artifact leaves to delete
(confined to the output root, links never followed, a sequence's frames only), and the
usage CSV."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from farm.ages import parse_age, parse_when, parse_window
from farm.config import Settings
from farm.errors import InvalidOption
from farm.retention import (
    START,
    Cursor,
    Doomed,
    PurgeReport,
    confined_file,
    delete_files,
    due_cutoff,
    files_of,
    past,
    sequence_frames,
)
from farm.usage import Usage, to_csv

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90s", 90), ("15m", 900), ("2w", 14 * 86400),
     ("1.5d", 129600), (" 7d ", 7 * 86400)],
)  # fmt: skip
def test_ages_in_every_unit(text: str, seconds: float) -> None:
    assert parse_age("--finished-before", text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["0d", "0", "-3d", "30", "d", "30 days", "1e3d", "", "3x", "99999999999999999999w"]
)
def test_bad_ages_are_refused_naming_the_option(text: str) -> None:
    with pytest.raises(InvalidOption) as e:
        parse_age("--finished-before", text)
    assert str(e.value).startswith("--finished-before: ")
    assert e.value.option == "--finished-before"


def test_zero_and_negative_ages_say_positive() -> None:
    for text in ("0d", "-3d", "0.0h"):
        with pytest.raises(InvalidOption, match="not a positive age"):
            parse_when("--finished-before", text, NOW)


def test_when_is_an_age_before_now_a_date_or_an_iso_time() -> None:
    assert parse_when("--since", "7d", NOW) == NOW - timedelta(days=7)
    assert parse_when("--since", "2026-11-01", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_when("--since", "2026-11-01T12:30:00+01:00", NOW) == datetime(
        2026, 11, 1, 11, 30, tzinfo=UTC
    )
    assert parse_when("--since", "2026-11-01T12:30:00Z", NOW) == datetime(
        2026, 11, 1, 12, 30, tzinfo=UTC
    )


def test_unreadable_time_is_refused_naming_the_option() -> None:
    with pytest.raises(InvalidOption, match=r"^--until: 'yesterday' is neither an age"):
        parse_when("--until", "yesterday", NOW)


def test_every_time_the_api_schema_admits_parses() -> None:
    import re

    from farm.ages import WHEN_PATTERN

    for ok in ("1s", "99999w", "7d", "1000-01-01", "9999-12-28T23:59:59-23:59",
               "2026-11-01T12:30", "2026-11-01T12:30Z", "2026-02-28T00:00:00+05:30"):  # fmt: skip
        assert re.match(WHEN_PATTERN, ok), ok
        parse_when("since", ok, NOW)
    for no in ("0d", "1.5d", "0999-01-01", "2026-02-30", "soon", "2026-11-01 12:00"):
        assert not re.match(WHEN_PATTERN, no), no


def test_window_must_not_be_empty() -> None:
    assert parse_window(None, None, NOW) == (None, None)
    assert parse_window("2d", "1d", NOW) == (NOW - timedelta(days=2), NOW - timedelta(days=1))
    with pytest.raises(InvalidOption, match=r"^until: '2d' is not after since '1d'"):
        parse_window("1d", "2d", NOW, ("since", "until"))


def test_retention_setting_is_off_by_default_and_at_least_a_day() -> None:
    assert Settings().retention_days is None
    assert due_cutoff(Settings(), NOW) is None
    assert due_cutoff(Settings(retention_days=30), NOW) == NOW - timedelta(days=30)
    for bad in (0, 0.5, -1):
        with pytest.raises(ValidationError, match=r"FARM_RETENTION_DAYS=.*at least 1 day"):
            Settings(retention_days=bad)


def test_env_retention_setting_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_RETENTION_DAYS", "0.25")
    with pytest.raises(ValidationError, match="retention_days"):
        Settings()


def test_files_are_confined_to_the_output_root(tmp_path: Path) -> None:
    root = (tmp_path / "out").resolve()
    (root / "renders").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    assert confined_file(root, str(root / "renders" / "a.mp4")) == root / "renders" / "a.mp4"
    assert confined_file(root, "renders/a.mp4") == root / "renders" / "a.mp4"
    assert confined_file(root, str(tmp_path / "x.mp4")) is None
    assert confined_file(root, "../x.mp4") is None
    assert confined_file(root, str(root / "escape" / "x.mp4")) is None  # a folder link out
    assert confined_file(root, str(root)) is None
    # the last component is not followed: unlinking a link removes the link only
    (root / "renders" / "link.mp4").symlink_to(outside / "target.mp4")
    assert confined_file(root, "renders/link.mp4") == root / "renders" / "link.mp4"


def test_sequence_frames_only_the_templates(tmp_path: Path) -> None:
    names = ["sh010.0001.png", "sh010.0002.png", "sh020.0001.png", "notes.txt", "sh010.png"]
    assert sequence_frames(tmp_path / "shots", "shots/sh010.####.png", names) == [
        "sh010.0001.png",
        "sh010.0002.png",
    ]
    assert sequence_frames(tmp_path, "no-placeholder.png", names) == []


def _doomed(where: Path, kind: str = "video", job: int = 7, **meta: object) -> Doomed:
    return Doomed(job, kind, str(where), dict(meta), datetime.now(UTC))


def test_purged_files_go_and_the_rest_stays(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "checkpoints").mkdir()
    ckpt = root / "checkpoints" / "m.safetensors"
    ckpt.write_bytes(b"w")
    ckpt.with_suffix(".json").write_text("{}")
    seq = root / "shots"
    seq.mkdir()
    for n in ("sh010.0001.png", "sh010.0002.png", "other.png"):
        (seq / n).write_bytes(b"p")
    previews = root / "previews" / "job-7"
    previews.mkdir(parents=True)
    poster = previews / "poster.png"
    poster.write_bytes(b"p")
    newer = root / "renders" / "again.mp4"
    newer.parent.mkdir()
    newer.write_bytes(b"v")
    made = datetime.now(UTC) - timedelta(hours=1)  # recorded an hour before its rewrite
    outside = tmp_path.parent / f"{tmp_path.name}-outside.mp4"
    outside.write_bytes(b"keep")
    doomed = [
        _doomed(ckpt, "checkpoint"),
        _doomed(seq, "sequence", path=str(seq / "sh010.####.png")),
        _doomed(poster, "poster"),
        Doomed(7, "video", str(newer), {}, made),
        _doomed(outside),
        _doomed(root / "shots", "video"),  # a folder that is no sequence: left alone
    ]
    report = PurgeReport(cutoff=NOW, dry_run=False)
    delete_files(root, doomed, report)
    assert not ckpt.exists() and not ckpt.with_suffix(".json").exists()
    assert sorted(os.listdir(seq)) == ["other.png"]
    assert not previews.exists()  # the job's own folder, empty now
    assert newer.exists() and outside.exists()
    assert report.files_deleted == 5
    assert report.files_kept == 3
    assert any("rewritten" in r for r in report.kept_reasons)
    assert any("outside the output root" in r for r in report.kept_reasons)
    assert files_of(root, _doomed(root / "missing.mp4")) == ([root / "missing.mp4"], None)


def test_usage_csv_is_exact() -> None:
    rows = [Usage("acct-a", 3, Decimal("1.000001"), Decimal("1.000001"), Decimal(0), Decimal(0))]
    assert to_csv(rows, "project") == (
        "project,attempts,wall_s,gpu_s,cpu_s,lost_s\nacct-a,3,1.000001,1.000001,0,0\n"
    )


def test_a_batch_moves_the_cursor_past_its_last_candidate() -> None:
    @dataclass
    class Row:
        id: int
        finished_at: datetime

    rows = [Row(9, NOW - timedelta(days=40)), Row(4, NOW - timedelta(days=39))]
    assert past(rows, 2) == Cursor(NOW - timedelta(days=39), 4)
    assert past(rows, 3) is None  # fewer than a batch: none are left after them
    assert past([], 2) is None
    assert START.at < rows[0].finished_at and START.id == 0
