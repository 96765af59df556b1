"""Rendering and encoding side by side: a writer's ``write`` calls moved to a thread."""

from __future__ import annotations

import queue
import threading
from types import TracebackType
from typing import Any, Protocol, Self

import numpy as np

__all__ = ["FrameSink", "PipelinedWriter"]


class FrameSink(Protocol):
    """What a render loop needs from a writer: ``write`` batches inside a ``with`` block."""

    frames_written: int

    def write(self, frames: np.ndarray) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any: ...


_STOP = object()


class PipelinedWriter:
    """Move a writer's ``write`` calls to a thread so rendering and encoding overlap.

    A pipe write blocks while ffmpeg is busy with earlier frames; done inline, the model then
    idles for the length of that wait. With a thread in between, the model computes batch n+1
    while batch n drains into ffmpeg (the write releases the GIL). The queue is bounded so a
    fast model cannot pile up more than ``depth`` batches of memory ahead of a slow encoder.
    An exception in the thread is raised to the caller at its next ``write`` or at the end of
    the ``with`` block, and the wrapped writer is then aborted (nothing is left behind).

    Ownership of each array passes to the writer: do not modify it after ``write``.
    """

    def __init__(self, writer: FrameSink, *, depth: int = 3) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.writer = writer
        self.depth = depth
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def frames_written(self) -> int:
        return self.writer.frames_written

    def __enter__(self) -> Self:
        self.writer.__enter__()
        self._thread = threading.Thread(target=self._drain, name="ffmpeg-writer", daemon=True)
        self._thread.start()
        return self

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue
            try:
                self.writer.write(item)  # type: ignore[arg-type]
            except BaseException as exc:
                self._error = exc

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, frames: np.ndarray) -> None:
        if self._thread is None:
            raise RuntimeError("PipelinedWriter.write() called outside its `with` block")
        self._raise_pending()
        while True:
            try:
                self._queue.put(frames, timeout=0.5)
                return
            except queue.Full:
                self._raise_pending()
                if not self._thread.is_alive():
                    raise RuntimeError("the ffmpeg writer thread is gone") from None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            if exc_type is not None:
                self._error = self._error or exc
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if exc_type is None and self._error is not None:
            err = self._error
            self.writer.__exit__(type(err), err, err.__traceback__)
            raise err
        self.writer.__exit__(exc_type, exc, tb)
