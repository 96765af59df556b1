"""The log store's bounds: a task attempt's log keeps its head and its tail."""

from __future__ import annotations

import logging

from farm.logbuffer import MARKER, MAX_LINE_BYTES, LogBuffer
from workers.media.process import EncodeError
from workers.tasklog import TaskLogHandler


def _texts(buf: LogBuffer) -> list[str]:
    return [x.text for x in buf.snapshot()]


def test_small_log_is_kept_whole_without_marker() -> None:
    buf = LogBuffer(head_bytes=100, tail_bytes=100)
    buf.append(1.0, "info", "one\ntwo")
    buf.append(2.0, "info", "three")
    assert _texts(buf) == ["one", "two", "three"]
    assert [x.seq for x in buf.snapshot()] == [0, 1, 2]
    assert buf.dropped_bytes == 0


def test_overflow_keeps_head_and_tail_with_a_marker_counting_the_dropped_bytes() -> None:
    buf = LogBuffer(head_bytes=20, tail_bytes=20)
    for i in range(100):
        buf.append(float(i), "info", f"line{i:03d}")  # 8 bytes a line with its newline
    lines = buf.snapshot()
    assert [x.text for x in lines[:2]] == ["line000", "line001"]  # 16 of 20 head bytes
    marker = lines[2]
    assert marker.level == MARKER
    assert marker.seq == 2  # the first line it stands for
    assert [x.text for x in lines[3:]] == ["line098", "line099"]
    assert marker.text == "… 768 bytes dropped (96 lines) …"
    assert buf.dropped_bytes == 96 * 8
    assert buf.size <= 40
    assert buf.next_seq == 100


def test_bounds_hold_however_much_is_logged() -> None:
    buf = LogBuffer(head_bytes=1000, tail_bytes=2000)
    for i in range(20_000):
        buf.append(0.0, "info", "x" * (i % 300))
    assert buf.size <= 3000
    assert sum(x.size for x in buf.snapshot() if x.level != MARKER) == buf.size
    seqs = [x.seq for x in buf.snapshot()]
    assert seqs == sorted(seqs)  # a follower's `after` works across the marker


def test_head_stays_fixed_once_a_line_went_to_the_tail() -> None:
    buf = LogBuffer(head_bytes=10, tail_bytes=100)
    buf.append(0.0, "info", "aaaa")  # 5
    buf.append(0.0, "info", "bbbbbbbb")  # 9: does not fit, goes to the tail
    buf.append(0.0, "info", "c")  # would fit the head, but order is kept
    assert _texts(buf) == ["aaaa", "bbbbbbbb", "c"]
    assert [x.text for x in buf.head] == ["aaaa"]


def test_a_huge_line_is_cut_so_the_tail_keeps_several() -> None:
    buf = LogBuffer(head_bytes=0, tail_bytes=4 * MAX_LINE_BYTES)
    buf.append(0.0, "info", "y" * (10 * MAX_LINE_BYTES))
    (line,) = buf.snapshot()
    assert line.size <= MAX_LINE_BYTES
    assert line.text.endswith("bytes cut")


def test_changed_tracks_what_a_flush_must_write() -> None:
    buf = LogBuffer()
    assert not buf.changed
    buf.append(0.0, "info", "x")
    assert buf.changed
    buf.mark_flushed()
    assert not buf.changed


def test_handler_captures_traceback_and_ffmpeg_stderr_of_a_failure() -> None:
    buf = LogBuffer()
    handler = TaskLogHandler(buf)
    logger = logging.getLogger("farm.test_logbuffer")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.debug("not kept: below INFO")
        logger.info("task 7 start")
        try:
            raise EncodeError("ffmpeg exited 1", "Unknown encoder 'libnope'\n")
        except EncodeError:
            logger.exception("task 7 attempt 1 failed")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(_texts(buf))
    assert "not kept" not in text
    assert "farm.test_logbuffer: task 7 start" in text
    assert "Traceback (most recent call last):" in text
    assert "Unknown encoder 'libnope'" in text
    levels = {x.level for x in buf.snapshot()}
    assert levels == {"info", "error"}


def test_nul_and_lone_surrogates_cannot_make_a_flush_fail() -> None:
    buf = LogBuffer()
    buf.append(0.0, "info", "a\x00b \udb23 c")
    (line,) = buf.snapshot()
    assert "\x00" not in line.text and line.text.startswith("a\\0b ")
    line.text.encode("utf-8")  # strict: would raise on a lone surrogate
