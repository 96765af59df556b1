"""A storyboard's shots as a timeline: which class each frame shows and how far a morph has
gone, as pure functions of the shots and the frame's position, so any chunking of a render
gives the same frames; the class weights and latents a conditional model is driven by."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from workers.render import ease, seed_keys, slerp


def parse_storyboard(
    shots: Sequence[Mapping[str, Any]], num_classes: int = 10
) -> list[tuple[int, int, int]]:
    """Validate shots ``{"class": c, "hold": frames, "transition": frames}`` into
    ``(class, hold, transition)`` tuples; errors name the shot and field.

    Shot ``i`` shows its class for ``hold`` frames, then morphs into shot ``i + 1``'s class
    over ``transition`` frames; the last shot's transition is ignored (there is nothing to
    morph into). ``transition`` defaults to 0.
    """
    if len(shots) == 0:
        raise ValueError("a storyboard needs at least one shot")
    out = []
    for i, shot in enumerate(shots):
        unknown = set(shot) - {"class", "hold", "transition", "colors"}
        if unknown:
            raise ValueError(f"shot {i}: unknown field(s) {sorted(unknown)}")
        vals = {}
        for key, low in (("class", 0), ("hold", 1), ("transition", 0)):
            v = shot.get(key, 0 if key == "transition" else None)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"shot {i}: {key!r} must be an integer >= {low}, got {v!r}")
            vals[key] = v
        if vals["class"] >= num_classes:
            raise ValueError(f"shot {i}: 'class' must be < {num_classes}, got {vals['class']}")
        out.append((vals["class"], vals["hold"], vals["transition"]))
    return out


def storyboard_length(shots: Sequence[Mapping[str, Any]]) -> int:
    """Total frames: every hold plus every transition but the last shot's."""
    plan = parse_storyboard(shots, num_classes=1 << 30)
    return sum(h for _, h, _ in plan) + sum(t for _, _, t in plan[:-1])


def storyboard_place(shots: Sequence[Mapping[str, Any]], position: int) -> tuple[int, float]:
    """``(shot index, t)`` for frame ``position``: holding shot ``i`` (``t == 0``) or eased
    ``t`` of the way from shot ``i`` to ``i + 1`` (as :func:`storyboard_frame`); for
    per-shot colours."""
    i, u = _locate(parse_storyboard(shots, num_classes=1 << 30), position)
    return i, u * u * (3.0 - 2.0 * u)


def _locate(plan: Sequence[tuple[int, int, int]], position: int) -> tuple[int, float]:
    """``(shot index, u)``: ``u = 0`` while holding shot ``i``, ``0 < u < 1`` in its
    transition to ``i + 1``."""
    if position < 0:
        raise ValueError(f"position {position} is outside the storyboard")
    p = position
    for i, (_, hold, trans) in enumerate(plan):
        if p < hold:
            return i, 0.0
        p -= hold
        if i == len(plan) - 1:
            break
        if p < trans:
            # Both ends excluded: the frames before and after are the holds themselves.
            return i, (p + 1) / (trans + 1)
        p -= trans
    raise ValueError(f"position {position} is outside the storyboard")


def storyboard_frame(
    shots: Sequence[Mapping[str, Any]], position: int, num_classes: int = 10
) -> tuple[int, int, float]:
    """``(class_a, class_b, t)`` for frame ``position``: show ``(1 - t) * a + t * b``.

    A pure function of the shots and the position (``t`` is eased with smoothstep in plain
    Python floats), so any chunking of a render yields the same frames. While holding,
    ``class_a == class_b`` and ``t == 0``.
    """
    plan = parse_storyboard(shots, num_classes)
    i, u = _locate(plan, position)
    if u == 0.0:
        return plan[i][0], plan[i][0], 0.0
    return plan[i][0], plan[i + 1][0], u * u * (3.0 - 2.0 * u)


def storyboard_class_weights(
    shots: Sequence[Mapping[str, Any]], positions: Sequence[int], num_classes: int = 10
) -> torch.Tensor:
    """Class weights ``(P, num_classes)`` for conditional models, row ``i`` from
    :func:`storyboard_frame` at ``positions[i]``."""
    out = torch.zeros(len(positions), num_classes, dtype=torch.float32)
    for row, p in enumerate(positions):
        a, b, t = storyboard_frame(shots, p, num_classes)
        out[row, a] += 1.0 - t
        out[row, b] += t
    return out  # (P, C)


def storyboard_latents(
    shots: Sequence[Mapping[str, Any]],
    positions: Sequence[int],
    latent_dim: int,
    *,
    seed: int = 0,
    num_classes: int = 10,
    keys: torch.Tensor | None = None,
) -> torch.Tensor:
    """Latents ``(P, D)`` that hold one latent per shot and slerp to the next shot's during
    transitions, with the same ``t`` as the class weights, so style and class morph
    together. The latents are ``keys`` ``(K, D)`` when given, else noise (shot ``i`` uses
    seed ``seed + i``)."""
    plan = parse_storyboard(shots, num_classes)
    if keys is None:
        keys = seed_keys([seed + i for i in range(len(plan))], latent_dim)  # (K, D)
    elif keys.shape != (len(plan), latent_dim):
        raise ValueError(f"keys must be ({len(plan)}, {latent_dim}), got {tuple(keys.shape)}")
    rows = []
    for p in positions:
        i, u = _locate(plan, p)
        if u == 0.0:
            rows.append(keys[i])
        else:
            t = torch.tensor(u, dtype=torch.float32)
            rows.append(slerp(keys[i], keys[i + 1], ease(t)))
    if not rows:
        return torch.empty(0, latent_dim)
    return torch.stack(rows)  # (P, D)


def storyboard_keyframes(shots: Sequence[Mapping[str, Any]], num_classes: int = 10) -> list[int]:
    """Positions of the held frames, whose requested class is unambiguous (for scoring)."""
    total = storyboard_length(shots)
    return [p for p in range(total) if storyboard_frame(shots, p, num_classes)[2] == 0.0]
