"""Capture one task attempt's log while it runs, and keep the store up to date.

For the attempt's duration a :class:`TaskLogHandler` sits on the farm's and the workers'
loggers in the pool process (which runs one task at a time, so what they say then is about
this task: the harness, the stage, its progress lines, ffmpeg's stderr carried by an
``EncodeError``, the traceback of a failure). A flusher thread writes the buffer about every
``flush_s`` while it has changed, and once more when the attempt ends, so a worker killed
mid-task leaves its log as of its last second.

That last flush is the flusher's, after the attempt: the worker goes on with a chained task
(the job's assembly) while it is written, instead of waiting for the write. The next task's
outcome is recorded only once it is stored (:func:`wait_flushed`), so a job is never seen
finished before the logs of the tasks its worker ran before its last one.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from farm.config import Settings
from farm.logbuffer import LogBuffer
from farm.tasklogs import write

CAPTURED = ("farm", "workers")  # the loggers whose records become the task's log
FLUSH_S = 1.0
log = logging.getLogger(__name__)


class TaskLogHandler(logging.Handler):
    def __init__(self, buf: LogBuffer) -> None:
        super().__init__(logging.INFO)
        self.buf = buf
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:  # called under self.lock
        try:
            self.buf.append(record.created, record.levelname.lower(), self.format(record))
        except Exception:
            self.handleError(record)


class TaskLogger(threading.Thread):
    """The capture and its flusher for one attempt; use :func:`capture`."""

    def __init__(
        self, settings: Settings, task_id: int, attempt: int, worker: str, buf: LogBuffer
    ) -> None:
        super().__init__(name=f"tasklog-{task_id}", daemon=True)
        self.settings, self.task_id, self.attempt, self.worker = settings, task_id, attempt, worker
        self.handler = TaskLogHandler(buf)
        self.stop_event = threading.Event()
        self.flushes = 0
        self.flush_s_total = 0.0

    def append(self, level: str, text: str) -> None:
        """A line that is not a log record (a stage's progress)."""
        self.handler.acquire()
        try:
            self.handler.buf.append(time.time(), level, text)
        finally:
            self.handler.release()

    def run(self) -> None:
        while not self.stop_event.wait(FLUSH_S):
            self.flush(done=False)
        self.flush(done=True)

    def flush(self, *, done: bool) -> None:
        buf = self.handler.buf
        self.handler.acquire()
        try:
            if not (buf.changed or done):
                return
            buf.mark_flushed()
            # A copy of what to write, so the stage's logging does not wait on the database.
            snap = LogBuffer(buf.head_bytes, buf.tail_bytes)
            snap.head, snap.tail = list(buf.head), buf.tail.copy()
            snap.next_seq, snap.dropped_bytes = buf.next_seq, buf.dropped_bytes
            snap.dropped_lines, snap.first_dropped = buf.dropped_lines, buf.first_dropped
        finally:
            self.handler.release()
        t0 = time.perf_counter()
        try:
            write(self.settings, self.task_id, self.attempt, snap, self.worker, done=done)
        except Exception as e:  # a database blip: the next flush carries the same lines
            buf.changed = True
            # Not through our loggers: this line would itself mark the buffer changed.
            logging.getLogger("celery").warning("task %s: log not stored: %s", self.task_id, e)
        self.flushes += 1
        self.flush_s_total += time.perf_counter() - t0


# The last attempt's logger, while its last flush may still be under way.
_pending: TaskLogger | None = None


def wait_flushed(timeout_s: float = 5.0) -> None:
    """Wait until the previous attempt's last flush is written (at once if it is)."""
    global _pending
    if _pending is not None:
        _pending.join(timeout=timeout_s)
        _pending = None


atexit.register(wait_flushed)


@contextmanager
def capture(
    settings: Settings, task_id: int, attempt: int, worker: str, buf: LogBuffer | None = None
) -> Iterator[TaskLogger]:
    """Capture the farm's log records into the attempt's log while the block runs; its last
    flush is written after the block, by the flusher (:func:`wait_flushed`)."""
    global _pending
    tl = TaskLogger(settings, task_id, attempt, worker, buf or LogBuffer())
    loggers = [logging.getLogger(n) for n in CAPTURED]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)  # the task's log wants INFO whatever the console shows
        lg.addHandler(tl.handler)
    tl.start()
    try:
        yield tl
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(tl.handler)
            lg.setLevel(level)
        wait_flushed()  # at most one attempt's last flush outstanding
        tl.stop_event.set()  # the flusher writes the last flush and ends
        _pending = tl
