"""Frame ranges in the syntax render farm users know: ``1-240``, ``1-240x2``, ``1,5,10-20``.

A range is parsed into the ordered list of frame numbers it names; chunks are consecutive
slices of that list, so the frame at position ``i`` of the job is the same whichever
chunking renders it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_PART = re.compile(r"(?P<start>\d+)(?:\s*-\s*(?P<end>\d+)(?:\s*x\s*(?P<step>\d+))?)?")
MAX_FRAMES = 1_000_000


class FrameRangeError(ValueError):
    """Raised when a frame range string is malformed; the message says where."""


def parse_frames(text: str) -> list[int]:
    """Parse ``text`` into strictly increasing frame numbers, or raise FrameRangeError."""
    if not isinstance(text, str) or not text.strip():
        raise FrameRangeError("empty frame range")
    frames: list[int] = []
    for part_text in text.split(","):
        raw = part_text.strip()
        m = _PART.fullmatch(raw)
        if m is None:
            raise FrameRangeError(
                f"{raw!r} is not a frame, a range 'A-B' or a stepped range 'A-BxN'"
            )
        start = int(m["start"])
        end = int(m["end"]) if m["end"] is not None else start
        step = int(m["step"]) if m["step"] is not None else 1
        if end < start:
            raise FrameRangeError(f"{raw!r} ends before it starts")
        if step < 1:
            raise FrameRangeError(f"{raw!r} has a step below 1")
        if len(frames) + (end - start) // step + 1 > MAX_FRAMES:
            raise FrameRangeError(f"more than {MAX_FRAMES} frames")
        part = list(range(start, end + 1, step))
        if frames and part[0] <= frames[-1]:
            raise FrameRangeError(
                f"{raw!r} overlaps or precedes frame {frames[-1]}: list parts in increasing order"
            )
        frames.extend(part)
    return frames


def format_frames(frames: Sequence[int]) -> str:
    """The shortest spelling of ``frames`` in range syntax: the inverse of parse_frames."""
    if not frames:
        return ""
    parts: list[str] = []
    i = 0
    n = len(frames)
    while i < n:
        j = i
        if i + 1 < n:
            step = frames[i + 1] - frames[i]
            while j + 1 < n and frames[j + 1] - frames[j] == step:
                j += 1
            if j - i >= 2 or (j - i == 1 and step == 1):
                a, b = frames[i], frames[j]
                parts.append(f"{a}-{b}" if step == 1 else f"{a}-{b}x{step}")
                i = j + 1
                continue
        parts.append(str(frames[i]))
        i += 1
    return ",".join(parts)


def chunk(frames: Sequence[int], size: int) -> list[tuple[int, list[int]]]:
    """Split into consecutive chunks of ``size`` frames: (position of first frame, frames)."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [(i, list(frames[i : i + size])) for i in range(0, len(frames), size)]
