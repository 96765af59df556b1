"""The processes a command starts and answers for (workers, the API): each in its own
session, its output drained by a thread into a log file (and echoed where asked) with the
last lines kept, watched while the command waits, and all of them stopped when it ends.

Own sessions mean a terminal's Ctrl-C reaches the command alone, which then stops its
children in order (SIGTERM, a grace period, then SIGKILL to the whole process group, so a
worker's prefork children go too). Draining output in a thread keeps a chatty child from
blocking on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from farm.config import Settings
from farm.errors import FarmError
from farm.runtime import available_cpus, child_env, shared_threads

TAIL_LINES = 30


@dataclass
class Child:
    """One started process, its log and the last lines it wrote."""

    name: str
    args: list[str]
    proc: subprocess.Popen[bytes]
    log_path: Path | None
    started: float = field(default_factory=time.monotonic)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def uptime_s(self) -> float:
        return time.monotonic() - self.started

    def last_lines(self) -> str:
        if self.reader is not None:
            self.reader.join(2.0)  # what it wrote before exiting
        return "".join(self.tail).rstrip()


class ChildExited(FarmError):
    """Raised when a process the command started exits while the command still needs it."""

    def __init__(self, child: Child, code: int) -> None:
        self.child, self.code = child, code
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        where = f" (log: {child.log_path})" if child.log_path else ""
        lines = child.last_lines() or "(it wrote nothing)"
        super().__init__(
            f"{child.name} (pid {child.pid}) exited unexpectedly, {how}{where}; "
            f"its last lines:\n{lines}"
        )


def _drain(child: Child, stream: IO[bytes], echo: IO[str] | None) -> None:
    log = child.log_path.open("ab") if child.log_path else None
    try:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            child.tail.append(line)
            if log is not None:
                log.write(raw)
                log.flush()
            if echo is not None:
                with contextlib.suppress(ValueError, OSError):
                    echo.write(line)
                    echo.flush()
    finally:
        stream.close()
        if log is not None:
            log.close()


def start_child(
    name: str,
    args: Sequence[str],
    env: dict[str, str],
    *,
    log_file: Path | None = None,
    echo: IO[str] | None = None,
) -> Child:
    """Start ``args`` in a session of its own; its stdout and stderr go to ``log_file``
    (appended) and to ``echo`` (a terminal), and its last lines are kept either way."""
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        list(args),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    child = Child(name, list(args), proc, log_file)
    assert proc.stdout is not None
    child.reader = threading.Thread(
        target=_drain, args=(child, proc.stdout, echo), name=f"drain-{name}", daemon=True
    )
    child.reader.start()
    return child


def worker_args(queues: str = "gpu,cpu", name: str | None = None) -> list[str]:
    args = [sys.executable, "-m", "farm", "worker", "--queues", queues]
    return [*args, "--name", name] if name else args


def start_worker(
    settings: Settings,
    queues: str = "gpu,cpu",
    *,
    name: str = "worker",
    log_file: Path | None = None,
    echo: IO[str] | None = None,
    of: int = 1,
) -> Child:
    """A ``farm worker`` child on the resolved servers, one ``of`` that many the command
    starts here (they share the CPUs out: :func:`farm.runtime.shared_threads`)."""
    env = child_env(settings)
    threads = shared_threads(settings.worker_threads, of, available_cpus())
    if threads is not None:
        env["FARM_WORKER_THREADS"] = str(threads)
    return start_child(name, worker_args(queues), env, log_file=log_file, echo=echo)


def stop_children(children: Sequence[Child], grace_s: float = 8.0) -> None:
    """SIGTERM every child (a worker then finishes or gives up its task), wait up to
    ``grace_s`` for all of them together, then SIGKILL the process groups still there."""
    for c in children:
        if c.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                c.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for c in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(max(0.0, deadline - time.monotonic()))
    for c in children:
        # The group too: a worker's pool processes outlive a killed parent otherwise.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(c.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(5)
        if c.reader is not None:
            c.reader.join(2.0)


@dataclass
class Restarts:
    """The restart policy of ``farm up``'s workers, as a pure decision.

    A worker that exits within ``start_s`` of its start failed to start (a missing module,
    an unwritable output root, a refused broker): starting it again would fail the same
    way, so the command stops and says why. One that crashes later is restarted after
    1, 2, 4 … 60 s, at most ``limit`` times in ``window_s``; past that the command stops.
    """

    start_s: float = 30.0
    limit: int = 5
    window_s: float = 600.0
    times: list[float] = field(default_factory=list)

    def delay_s(self, uptime_s: float, now: float) -> float | None:
        """Seconds to wait before restarting, or None to give up."""
        if uptime_s < self.start_s:
            return None
        self.times = [t for t in self.times if now - t < self.window_s]
        if len(self.times) >= self.limit:
            return None
        self.times.append(now)
        return float(min(60, 2 ** (len(self.times) - 1)))


class Supervisor:
    """The children of one command: started, watched and stopped together."""

    def __init__(self, grace_s: float = 8.0) -> None:
        self.children: list[Child] = []
        self.grace_s = grace_s

    def add(self, child: Child) -> Child:
        self.children.append(child)
        return child

    def replace(self, old: Child, new: Child) -> None:
        self.children[self.children.index(old)] = new

    def exited(self) -> list[tuple[Child, int]]:
        return [(c, code) for c in self.children if (code := c.proc.poll()) is not None]

    def check(self) -> None:
        """Raise :class:`ChildExited` for the first child that is no longer running."""
        for child, code in self.exited():
            raise ChildExited(child, code)

    def stop(self) -> None:
        stop_children(self.children, self.grace_s)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class Interrupted(BaseException):
    """Raised in the main thread when SIGINT or SIGTERM arrives, so that every ``finally``
    and context manager on the way out stops what it started. A BaseException, like
    KeyboardInterrupt, so that ``except Exception`` does not swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` once; later ones are ignored while the
    command cleans up (which is bounded: children get ``grace_s``, then SIGKILL).

    The exception is raised wherever the main thread happens to be, and cleanup code there
    may replace it with one of its own (SQLAlchemy's pre-ping, interrupted mid-query, raises
    psycopg's "can't change autocommit" from its ``finally``). So once a signal has fired,
    whatever escapes the block leaves as :class:`Interrupted`, the other chained to it."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    fired: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        if fired:
            return
        fired.append(signum)
        raise Interrupted(signum)

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    except Interrupted:
        raise
    except BaseException as e:
        if fired:
            raise Interrupted(fired[0]) from e
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def watch(
    supervisor: Supervisor,
    done: Callable[[], bool],
    *,
    poll_s: float = 0.5,
    also: Callable[[], None] | None = None,
) -> None:
    """Wait until ``done()``, checking the children (and ``also``) every ``poll_s``."""
    while True:
        supervisor.check()
        if also is not None:
            also()
        if done():
            return
        time.sleep(poll_s)
