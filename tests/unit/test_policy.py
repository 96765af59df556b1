"""The fair share's arithmetic (farm.policy) and the project field, without servers."""

from __future__ import annotations

import pytest

from farm.errors import SpecError
from farm.policy import Share, fair_split, may_chain, stride_order
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


def test_may_chain_yields_to_a_newcomer_and_keeps_a_fair_split() -> None:
    # 3 workers at 2:1, a's worker finished one: a has 1 in flight (pass 0.75), b 1 (1.5).
    assert may_chain("a", {"a": Share(2.0, in_flight=1), "b": Share(1.0, in_flight=1)}, {"b"})
    # b's worker finished: b 0 (pass 0.5), a 2 (pass 1.25): b goes on.
    assert may_chain("b", {"a": Share(2.0, in_flight=2), "b": Share(1.0, in_flight=0)}, {"a"})
    # a newcomer c with nothing in flight (0.5) comes before a (0.75): a yields.
    shares = {"a": Share(2.0, in_flight=1), "c": Share(1.0)}
    assert not may_chain("a", shares, {"c"})
    assert may_chain("a", {"a": Share(1.0, in_flight=0)}, set())
    assert not may_chain("a", {"a": Share(1.0, max_running=1, in_flight=1)}, set())
    # a capped-out project does not stop the chain
    assert may_chain("a", {"a": Share(1.0, in_flight=3), "c": Share(1.0, 0)}, {"c"})


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
