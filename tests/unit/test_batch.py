"""Batch manifests: which rows a skipped row takes with it, and how refused rows are named."""

from __future__ import annotations

from farm.batch import Row, expand, order, without
from farm.errors import FarmError, SpecError
from farm.submit import SubmissionsRejected

BASE = {"kind": "render", "checkpoint": "c.safetensors", "frames": "1-4", "name": "{shot}"}


def rows(*shots: dict[str, object]) -> list[Row]:
    expanded, errors = expand(BASE, list(shots))
    assert errors == []
    ordered, cycles = order(expanded)
    assert cycles == []
    return ordered


def names(kept: list[Row]) -> list[str]:
    return [r.name for r in kept]


def test_without_drops_a_bad_row_and_everything_that_waits_for_it_directly_or_not() -> None:
    manifest = rows(
        {"shot": "a"},
        {"shot": "b", "after": ["a"]},
        {"shot": "c", "after": ["b"]},
        {"shot": "d", "checkpoint": "job:c"},
        {"shot": "e"},
        {"shot": "f", "after": ["e"]},
    )
    assert names(without(manifest, {1})) == ["e", "f"]
    assert names(without(manifest, {3})) == ["a", "b", "e", "f"]
    assert names(without(manifest, {6})) == ["a", "b", "c", "d", "e"]
    assert names(without(manifest, set())) == ["a", "b", "c", "d", "e", "f"]


def test_without_drops_every_row_of_a_cycle_when_one_is_named() -> None:
    expanded, _ = expand(BASE, [{"shot": "x", "after": ["y"]}, {"shot": "y", "after": ["x"]}])
    ordered, cycles = order(expanded)
    assert len(cycles) == 1
    assert without(ordered, {cycles[0].row}) == []


def test_rows_are_ordered_dependencies_first() -> None:
    ordered = rows({"shot": "late", "after": ["early"]}, {"shot": "early"})
    assert names(ordered) == ["early", "late"]


def test_rejected_submissions_are_named_by_position_with_their_fields() -> None:
    e = SubmissionsRejected(
        {
            2: SpecError([("checkpoint", "unknown checkpoint: no job 'x'")]),
            0: FarmError("idempotency key 'k' was used for job 7 with a different spec"),
        },
        ["sh010", "sh020", "sh030"],
    )
    assert list(e.problems) == [0, 2]
    assert e.problems[2] == [("checkpoint", "unknown checkpoint: no job 'x'")]
    assert e.problems[0][0][0] == "idempotency_key"
    assert e.exit_code == 2
    assert str(e).splitlines() == [
        "2 of 3 submissions invalid; nothing recorded:",
        "  #1 (sh010): idempotency_key: idempotency key 'k' was used for job 7 with a different"
        " spec",
        "  #3 (sh030): checkpoint: unknown checkpoint: no job 'x'",
    ]
