"""The shared farm's fair share: which project's task goes out next.

Stride scheduling over projects: a project's *pass* after it is handed its k-th next task is
``(in_flight + k - 0.5) / weight``, where ``in_flight`` counts its tasks of the queue running
or sent (the half is Sainte-Laguë's divisor: with ``in_flight + k``, D'Hondt's, ties and
rounding favour the heavier project, which measured 0.74 of the running tasks for a 2:1
share of three workers instead of 0.67); the dispatcher sends the tasks of lowest pass
first (priority, then age, inside a project), and never more in flight than a project's
``max_running``. Projects without ready work take no part, so what they leave unused goes
to the others. The dispatcher does this in SQL (``farm.dispatch._PICK_FAIR``), one index
probe per project; the functions here are the same arithmetic on plain values, for tests
and the docs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Share:
    """A project as the fair share sees it in one queue."""

    weight: float
    max_running: int | None = None
    in_flight: int = 0


def pass_after(share: Share, k: int) -> float:
    """The project's pass once it has been handed ``k`` more tasks."""
    return (share.in_flight + k - 0.5) / share.weight


def stride_order(
    shares: Mapping[str, Share], ready: Mapping[str, Sequence[tuple[int, int]]], room: int
) -> list[int]:
    """The ids to send, in order, for ``room`` slots: ``ready`` holds each project's ready
    ``(priority, id)`` pairs. Ties of pass go to the higher priority, then the older id."""
    candidates: list[tuple[float, int, int]] = []
    for name, tasks in ready.items():
        share = shares[name]
        ordered = sorted(tasks, key=lambda t: (-t[0], t[1]))
        for k, (priority, task_id) in enumerate(ordered, start=1):
            if share.max_running is not None and share.in_flight + k > share.max_running:
                break
            candidates.append((pass_after(share, k), -priority, task_id))
    return [task_id for _, _, task_id in sorted(candidates)[: max(room, 0)]]


def may_chain(mine: str, shares: Mapping[str, Share], waiting: set[str]) -> bool:
    """Whether a worker that just finished a task of ``mine`` (no longer counted in flight)
    may go on with that project's next one without the dispatcher: only when the project is
    under its cap and every other project with ready work (``waiting``) would come after it
    (a tie yields, so a project that has just arrived is not kept waiting by chains)."""
    me = shares[mine]
    if me.max_running is not None and me.in_flight + 1 > me.max_running:
        return False
    for name in waiting - {mine}:
        other = shares[name]
        if other.max_running is not None and other.in_flight + 1 > other.max_running:
            continue
        if pass_after(other, 1) <= pass_after(me, 1):
            return False
    return True


def fair_split(
    weights: Mapping[str, float],
    slots: int,
    caps: Mapping[str, int | None] | None = None,
    demand: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """The running tasks each project is entitled to out of ``slots``: in proportion to its
    weight, none above its cap or its demand, what those leave over shared out again by
    weight among the rest (water filling). The target the tests hold the dispatcher to."""
    caps, demand = caps or {}, demand or {}
    limit = {p: float(min(_cap(caps.get(p), slots), demand.get(p, slots))) for p in weights}
    share = dict.fromkeys(weights, 0.0)
    left, open_ = float(slots), set(weights)
    while open_ and left > 1e-9:
        total = sum(weights[p] for p in open_)
        grant = {p: left * weights[p] / total for p in open_}
        full = {p for p in open_ if share[p] + grant[p] >= limit[p] - 1e-9}
        if not full:
            for p in open_:
                share[p] += grant[p]
            break
        for p in full:
            left -= limit[p] - share[p]
            share[p] = limit[p]
        open_ -= full
    return share


def _cap(cap: int | None, slots: int) -> int:
    return slots if cap is None else cap
