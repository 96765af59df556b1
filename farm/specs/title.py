"""``mode: title``: a word split into letter shots over the frame range."""

from __future__ import annotations

from typing import Any


def title_shots(
    text: str, total: int, hold: int | None = None, transition: int | None = None
) -> list[tuple[str, int, int]]:
    """``(character, hold, transition)`` per letter of a title over ``total`` frames.

    A space is a pause, not a shot: the letter before it holds one more hold's worth of
    frames (leading spaces are dropped). Given both ``hold`` and ``transition``, the title
    must be exactly ``total`` frames long. Given one, the other is derived; given neither,
    holds and transitions share the range 3 : 2. Frames left over by the rounding go to
    the holds, one each from the first letter on. Raises ValueError naming what is wrong.
    """
    letters: list[list[Any]] = []  # [character, hold units]
    for ch in text:
        if ch == " ":
            if letters:
                letters[-1][1] += 1
        else:
            letters.append([ch, 1])
    if not letters:
        raise ValueError("a title needs at least one character that is not a space")
    units = sum(u for _, u in letters)
    gaps = len(letters) - 1
    if hold is not None and transition is not None:
        want = hold * units + transition * gaps
        if want != total:
            raise ValueError(
                f"hold {hold} and transition {transition} make {want} frames; the range has {total}"
            )
        return [(c, hold * u, transition if i < gaps else 0) for i, (c, u) in enumerate(letters)]
    if transition is None:
        if hold is not None:
            transition = (total - hold * units) // gaps if gaps else 0
        else:
            transition = (2 * total) // (3 * units + 2 * gaps) if gaps else 0
    rest = total - transition * gaps
    if transition < 0 or rest < units:
        raise ValueError(
            f"{total} frames are too few for {len(letters)} letters: each needs a frame to hold"
        )
    base, extra = divmod(rest, units)
    out, unit = [], 0
    for i, (c, u) in enumerate(letters):
        h = sum(base + (1 if unit + k < extra else 0) for k in range(u))
        unit += u
        out.append((c, h, transition if i < gaps else 0))
    return out
