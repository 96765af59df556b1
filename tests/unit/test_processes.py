"""The processes a command starts: watched, their last lines kept, stopped as a group."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from farm.processes import (
    ChildExited,
    Interrupted,
    Restarts,
    Supervisor,
    interruptible,
    start_child,
    stop_children,
)


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_that_exits_is_reported_with_its_last_lines_and_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    code = "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)"
    with Supervisor() as sup:
        child = sup.add(start_child("worker 1", _py(code), dict(os.environ), log_file=log))
        child.proc.wait(10)
        with pytest.raises(ChildExited) as got:
            sup.check()
    text = str(got.value)
    assert "worker 1" in text and "exit code 3" in text and str(log) in text
    assert "line 99" in text and "line 0\n" not in text  # the tail, not the whole log
    assert log.read_text().count("line") == 100


def test_a_killed_child_is_reported_as_killed() -> None:
    with Supervisor() as sup:
        child = sup.add(start_child("api", _py("import time; time.sleep(60)"), dict(os.environ)))
        sup.check()  # running: nothing to say
        child.proc.kill()
        child.proc.wait(10)
        with pytest.raises(ChildExited, match="killed by signal 9"):
            sup.check()


def test_stop_kills_a_child_that_ignores_sigterm_and_its_own_children() -> None:
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time;"
        " signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = start_child("stubborn", _py(code), dict(os.environ))
    deadline = time.monotonic() + 20
    while "ready" not in "".join(child.tail):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    tree = [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]
    assert len(tree) == 2
    started = time.monotonic()
    stop_children([child], grace_s=1.0)
    assert time.monotonic() - started < 8
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


def test_restarts_give_up_on_a_start_failure_and_after_the_limit() -> None:
    policy = Restarts(start_s=30, limit=3, window_s=600)
    assert policy.delay_s(uptime_s=2, now=0) is None  # failed while starting
    assert [policy.delay_s(uptime_s=100, now=t) for t in (10, 20, 30)] == [1, 2, 4]
    assert policy.delay_s(uptime_s=100, now=40) is None  # limit reached in the window
    assert policy.delay_s(uptime_s=100, now=615) == 4  # the first left the window: 2 recent


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_raises_once_with_the_shell_exit_code(sig: int, code: int) -> None:
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as got, interruptible():
        os.kill(os.getpid(), sig)
        time.sleep(1)
    assert got.value.exit_code == code
    assert signal.getsignal(sig) == before


def test_a_signal_stays_an_interrupt_when_cleanup_raises_another_error() -> None:
    """As SQLAlchemy's pre-ping does when the signal lands mid-query: its ``finally`` raises
    its own error, which must not turn SIGTERM into a plain failure (exit 1)."""
    with pytest.raises(Interrupted) as got, interruptible():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        finally:
            raise RuntimeError("can't change 'autocommit' now")
    assert got.value.exit_code == 143
    assert isinstance(got.value.__cause__, RuntimeError)


def test_an_error_without_a_signal_passes_through_unchanged() -> None:
    with pytest.raises(RuntimeError), interruptible():
        raise RuntimeError("plain")
