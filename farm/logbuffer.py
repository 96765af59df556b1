"""A task attempt's log, bounded: the first ``head_bytes`` and the last ``tail_bytes`` of it.

A render that loops on a warning must not fill the database, and the lines worth reading are
usually the first (what the task was asked to do) and the last (why it stopped). So the
buffer keeps whole lines from the start until the head is full, then a ring of the latest
lines; what falls out between them is counted and shown as one marker line. Pure: no clock,
no database; the worker's handler and the store feed it and read :meth:`snapshot`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

MARKER = "marker"
MAX_LINE_BYTES = 8192  # one line longer than this is cut, so the tail always holds several


@dataclass(frozen=True)
class LogLine:
    """One line: ``seq`` counts the attempt's lines from 0, so a follower asks for what came
    after the last it saw; a marker's ``seq`` is that of the first line it stands for."""

    seq: int
    at: float  # seconds since the epoch
    level: str
    text: str

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8", "replace")) + 1

    def as_row(self) -> list[object]:
        return [self.seq, self.at, self.level, self.text]

    @classmethod
    def from_row(cls, row: list[Any]) -> LogLine:
        seq, at, level, text = row
        return cls(int(seq), float(at), str(level), str(text))


def _clip(text: str) -> str:
    # PostgreSQL's JSONB refuses NUL, and lone surrogates do not encode: neither may make a
    # flush fail (every later flush carries the same line).
    text = text.replace("\x00", "\\0").encode("utf-8", "replace").decode("utf-8")
    raw = text.encode("utf-8")
    if len(raw) <= MAX_LINE_BYTES:
        return text
    cut = raw[: MAX_LINE_BYTES - 40].decode("utf-8", "ignore")
    return f"{cut} … {len(raw) - len(cut.encode())} bytes cut"


class LogBuffer:
    def __init__(self, head_bytes: int = 32_768, tail_bytes: int = 65_536) -> None:
        self.head_bytes, self.tail_bytes = head_bytes, tail_bytes
        self.head: list[LogLine] = []
        self.tail: deque[LogLine] = deque()
        self._head_size = self._tail_size = 0
        self.head_full = False
        self.next_seq = 0
        self.dropped_lines = self.dropped_bytes = 0
        self.first_dropped: int | None = None
        self.changed = False  # since the last :meth:`mark_flushed`

    def append(self, at: float, level: str, text: str) -> None:
        """Add ``text``, one line per line in it."""
        for part in text.splitlines() or [""]:
            line = LogLine(self.next_seq, at, level, _clip(part))
            self.next_seq += 1
            self.changed = True
            if not self.head_full and self._head_size + line.size <= self.head_bytes:
                self.head.append(line)
                self._head_size += line.size
                continue
            self.head_full = True  # once a line has gone to the tail, the head stays as it is
            self.tail.append(line)
            self._tail_size += line.size
            while self._tail_size > self.tail_bytes and len(self.tail) > 1:
                gone = self.tail.popleft()
                self._tail_size -= gone.size
                self.dropped_lines += 1
                self.dropped_bytes += gone.size
                if self.first_dropped is None:
                    self.first_dropped = gone.seq

    @property
    def size(self) -> int:
        return self._head_size + self._tail_size

    def snapshot(self) -> list[LogLine]:
        """Head, the marker for what was dropped (if anything was), then the tail."""
        lines = list(self.head)
        if self.first_dropped is not None:
            at = self.tail[0].at if self.tail else 0.0
            text = f"… {self.dropped_bytes} bytes dropped ({self.dropped_lines} lines) …"
            lines.append(LogLine(self.first_dropped, at, MARKER, text))
        lines.extend(self.tail)
        return lines

    def mark_flushed(self) -> None:
        self.changed = False
