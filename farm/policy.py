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
    """Whether a worker that just finished a task of ``mine`` (no longer counted) may go on
    with that project's next one without the dispatcher. ``shares`` counts each project's
    *running* tasks of the queue in ``in_flight`` (its cap, on tasks running or sent, is
    checked beforehand: ``farm.dispatch.chain_share``); ``waiting``: the other projects
    with ready work, under their caps. The chain goes on while ``mine`` stays within its fair
    target of the running tasks (water filling, :func:`fair_split`, over the running tasks
    plus the chained one), rounded as Sainte-Lague rounds: up from a half.

    Yielding whenever another project's stride pass ties or comes first (part 1's rule)
    yielded at nearly every completion: the messages already sent count in flight, so the
    lighter project's pass is at or past the other's whenever the window is full. A worker
    that yields pays a broker message per task; one that goes on pays none, and the
    dispatcher's stride pick still decides every message, so a project arriving late is
    kept waiting by chains for at most ``FARM_CHAIN_S`` of a delivery."""
    active = (waiting | {p for p, s in shares.items() if s.in_flight > 0}) | {mine}
    if active == {mine}:
        return True
    slots = sum(shares[p].in_flight for p in active) + 1
    demand = {p: shares[p].in_flight for p in active - waiting - {mine}}
    caps = {p: shares[p].max_running for p in active}
    target = fair_split({p: shares[p].weight for p in active}, slots, caps, demand)
    return shares[mine].in_flight + 1 <= target[mine] + 0.5


def claim_instead(mine: str, shares: Mapping[str, Share], waiting: set[str]) -> str | None:
    """The project whose task a worker should claim instead of the delivered one of ``mine``,
    or None to claim the delivered one: the same rule as :func:`may_chain` (``shares`` count
    running tasks; ``waiting``: the other projects with ready unsent work, under their caps),
    applied when the message arrives instead of when it was sent. A message waits in the
    broker behind the window's others (every busy worker's next task plus
    ``FARM_DISPATCH_AHEAD``); decided only at its send, a project arriving meanwhile would
    wait for all of them, one to two chunks' time. Of the waiting projects, the one furthest
    below its share: the lowest ``(running + 0.5) / weight``, the Sainte-Lague quotient of
    its next running task."""
    others = waiting - {mine}
    if not others or may_chain(mine, shares, others):
        return None
    return min(others, key=lambda p: ((shares[p].in_flight + 0.5) / shares[p].weight, p))


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
