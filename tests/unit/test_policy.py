"""The fair share's arithmetic (farm.policy) and the project field, without servers."""

from __future__ import annotations

import pytest

from farm.errors import SpecError
from farm.policy import Share, claim_instead, fair_split, may_chain, stride_order
from farm.projects import check
from farm.specs import parse_spec


def test_stride_order_gives_two_to_one_from_nothing_in_flight() -> None:
    shares = {"a": Share(2.0), "b": Share(1.0)}
    ready = {"a": [(50, i) for i in range(1, 10)], "b": [(50, i) for i in range(100, 110)]}
    # passes: a 0.25 0.75 1.25 1.75 ..., b 0.5 1.5 2.5 ...
    assert stride_order(shares, ready, 6) == [1, 100, 2, 3, 101, 4]


def test_stride_order_counts_what_is_in_flight_and_orders_by_priority_inside() -> None:
    shares = {"a": Share(2.0, in_flight=4), "b": Share(1.0, in_flight=0)}
    ready = {"a": [(50, 1), (90, 2)], "b": [(10, 100), (80, 101)]}
    # a: 2.25 2.75; b: 0.5 (the 80 first) 1.5
    assert stride_order(shares, ready, 3) == [101, 100, 2]


def test_stride_order_holds_a_cap_and_lends_what_is_left() -> None:
    shares = {"a": Share(10.0, max_running=2, in_flight=1), "b": Share(1.0)}
    ready = {"a": [(50, i) for i in range(1, 5)], "b": [(50, i) for i in range(100, 104)]}
    assert stride_order(shares, ready, 4) == [1, 100, 101, 102]


def test_stride_order_lends_an_idle_project_share() -> None:
    shares = {"a": Share(1.0), "b": Share(100.0)}
    assert stride_order(shares, {"a": [(50, 1), (50, 2)], "b": []}, 2) == [1, 2]


def test_may_chain_keeps_a_fair_split_and_yields_to_a_newcomer() -> None:
    # in_flight counts running tasks here. 3 workers at 2:1, a's worker finished one: a runs
    # 1, b 1; a's target of 3 is 2: it goes on. b's worker finished: b's target is 1.
    assert may_chain("a", {"a": Share(2.0, in_flight=1), "b": Share(1.0, in_flight=1)}, {"b"})
    assert may_chain("b", {"a": Share(2.0, in_flight=2), "b": Share(1.0, in_flight=0)}, {"a"})
    # 2 workers at 2:1: b's target is 2/3 of a worker, rounded up from a half: one.
    assert may_chain("b", {"a": Share(2.0, in_flight=1), "b": Share(1.0, in_flight=0)}, {"a"})
    # a newcomer c at weight 2 while a fills 3 workers: a's target is 1, it runs 2 more.
    shares = {"a": Share(1.0, in_flight=2), "c": Share(2.0)}
    assert not may_chain("a", shares, {"c"})
    # over its target at equal weights: 3 of 3 against 1.5
    assert not may_chain("a", {"a": Share(1.0, in_flight=2), "b": Share(1.0)}, {"b"})
    assert may_chain("a", {"a": Share(1.0, in_flight=0)}, set())
    # a project with no ready work keeps what it runs, no more: a's target is 4 - 2
    shares = {"a": Share(1.0, in_flight=1), "d": Share(3.0, in_flight=2)}
    assert may_chain("a", shares, set())
    # a project without ready work and nothing running (or capped out) takes no part
    assert may_chain("a", {"a": Share(1.0, in_flight=3), "c": Share(1.0, 0)}, set())


def test_claim_instead_gives_a_late_project_the_next_claims_until_its_share() -> None:
    # 3 workers: a (weight 1) ran all three; c (weight 2) arrived. A message of a's arrives
    # as a worker is free (a runs 2): c's task instead, and again at a's next (a 1, c 1); at
    # c's share (a 1, c 2) a's message claims a's task.
    assert claim_instead("a", {"a": Share(1.0, in_flight=2), "c": Share(2.0)}, {"c"}) == "c"
    shares = {"a": Share(1.0, in_flight=1), "c": Share(2.0, in_flight=1)}
    assert claim_instead("a", shares, {"c"}) == "c"
    assert claim_instead("a", {"a": Share(1.0), "c": Share(2.0, in_flight=2)}, {"c"}) is None
    # c's own message at its share is c's (it is not over its target).
    assert (
        claim_instead("c", {"a": Share(1.0, in_flight=1), "c": Share(2.0, in_flight=1)}, {"a"})
        is None
    )


def test_claim_instead_picks_the_project_furthest_below_its_share() -> None:
    # a runs 3 of 4; b (weight 1, 1 running) and d (weight 3, none): (0 + 0.5) / 3 < 1.5 / 1
    shares = {"a": Share(1.0, in_flight=3), "b": Share(1.0, in_flight=1), "d": Share(3.0)}
    assert claim_instead("a", shares, {"b", "d"}) == "d"
    # nobody waiting, or only the delivered task's own project: the delivered task
    assert claim_instead("a", {"a": Share(1.0, in_flight=3)}, set()) is None
    assert claim_instead("a", {"a": Share(1.0, in_flight=3)}, {"a"}) is None


@pytest.mark.parametrize(
    ("weights", "slots", "caps", "demand", "want"),
    [
        ({"a": 2, "b": 1}, 9, None, None, {"a": 6, "b": 3}),
        ({"a": 2, "b": 1}, 9, {"a": 3}, None, {"a": 3, "b": 6}),
        ({"a": 2, "b": 1, "c": 1}, 8, None, {"c": 1}, {"a": 14 / 3, "b": 7 / 3, "c": 1}),
        ({"a": 1, "b": 1}, 4, {"a": 0}, {"b": 2}, {"a": 0, "b": 2}),
    ],
)
def test_fair_split_water_fills_caps_and_demand(
    weights: dict[str, float],
    slots: int,
    caps: dict[str, int | None] | None,
    demand: dict[str, int] | None,
    want: dict[str, float],
) -> None:
    got = fair_split(weights, slots, caps, demand)
    assert got == pytest.approx(want)


def test_project_field_defaults_and_is_validated() -> None:
    spec = parse_spec({"kind": "train", "name": "t"})
    assert spec.project == "default"
    assert parse_spec({"kind": "train", "project": "show-2_b"}).project == "show-2_b"
    for bad in ("Show", "-x", "a" * 64, "a b", ""):
        with pytest.raises(SpecError) as e:
            parse_spec({"kind": "train", "project": bad})
        assert e.value.problems[0][0] == "project"


@pytest.mark.parametrize(
    ("weight", "cap", "field"),
    [(0.0, None, "weight"), (-1.0, None, "weight"), (float("nan"), None, "weight"),
     (1.0, -1, "max_running")],
)  # fmt: skip
def test_bad_weight_or_cap_is_refused_naming_the_field(
    weight: float, cap: int | None, field: str
) -> None:
    with pytest.raises(SpecError) as e:
        check("p", weight, cap)
    assert [f for f, _ in e.value.problems] == [field]
