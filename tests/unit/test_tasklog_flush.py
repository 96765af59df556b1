"""The last flush of an attempt's log is written by its flusher after the attempt, and
``wait_flushed`` is what orders it before the next outcome."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from farm.config import Settings
from farm.logbuffer import LogBuffer
from workers import tasklog


def test_last_flush_is_written_after_the_block_and_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[tuple[bool, list[str]]] = []
    release = threading.Event()

    def slow_write(
        settings: Settings, task_id: int, attempt: int, buf: LogBuffer, worker: str, *, done: bool
    ) -> None:
        release.wait(5)
        written.append((done, [line.text for line in buf.snapshot()]))

    monkeypatch.setattr(tasklog, "write", slow_write)
    started = time.monotonic()
    with tasklog.capture(Settings(), 1, 1, "w"):
        logging.getLogger("workers.test").info("the stage's line")
    assert time.monotonic() - started < 2, "the block waited for the write"
    assert written == []  # still being written: the worker has moved on
    release.set()
    tasklog.wait_flushed()
    assert written[-1][0] is True
    assert any("the stage's line" in text for text in written[-1][1])
    tasklog.wait_flushed()  # nothing outstanding: returns at once


def test_a_second_attempt_waits_for_the_first_ones_last_flush(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order: list[tuple[int, bool]] = []

    def write(
        settings: Settings, task_id: int, attempt: int, buf: LogBuffer, worker: str, *, done: bool
    ) -> None:
        time.sleep(0.05)
        order.append((task_id, done))

    monkeypatch.setattr(tasklog, "write", write)
    with tasklog.capture(Settings(), 1, 1, "w"):
        pass
    with tasklog.capture(Settings(), 2, 1, "w"):
        pass
    tasklog.wait_flushed()
    assert order.index((1, True)) < order.index((2, True))
