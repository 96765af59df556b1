"""Running ffmpeg: which binary, how a run fails, and where its output is written first.

Every ffmpeg call runs as an argument list (never a shell) with stderr going to an anonymous
temporary file: a chatty ffmpeg can then never block on a full pipe, and the tail of what it
said is still there to put into the error when something fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO

import imageio_ffmpeg

__all__ = [
    "GLOBAL_ARGS",
    "STDERR_TAIL_CHARS",
    "EncodeError",
    "error_lines",
    "ffmpeg_binary",
    "run_ffmpeg",
    "stderr_tail",
    "temp_sibling",
    "unlink_quietly",
]

STDERR_TAIL_CHARS = 2000
GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-nostats")
# With ``-loglevel level+...`` every line carries its level: "[mov @ 0x..] [error] ...".
_ERROR_LINE = re.compile(r"^.*\[(?:error|fatal|panic)\] .*$", re.MULTILINE)


class EncodeError(RuntimeError):
    """Raised when an ffmpeg run fails or produces something other than what was asked for.

    The stderr tail travels with the error because ffmpeg's own words are usually the only
    way to tell a bad preset from a full disk once the process is gone.
    """

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        self.stderr_tail = stderr_tail
        text = message
        if stderr_tail.strip():
            text = f"{message}\n--- ffmpeg stderr (tail) ---\n{stderr_tail.rstrip()}"
        super().__init__(text)


def ffmpeg_binary(override: str | None = None) -> str:
    """Resolve the ffmpeg to run: the FARM_FFMPEG setting if set, else the one in the wheel.

    A configured binary that cannot be found is an error rather than a silent fallback, so a
    typo in the setting does not quietly change which ffmpeg (and which encoders) renders use.
    """
    if override:
        candidate = Path(override).expanduser()
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        found = shutil.which(override)
        if found:
            return found
        raise EncodeError(f"FARM_FFMPEG={override!r} is not an executable file or on PATH")
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def stderr_tail(stream: IO[bytes], limit: int = STDERR_TAIL_CHARS) -> str:
    """The last ``limit`` characters written to a stderr file that is still open."""
    stream.flush()
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - limit * 4))
    return stream.read().decode("utf-8", errors="replace")[-limit:]


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def temp_sibling(path: Path, suffix: str | None = None) -> Path:
    """A hidden name next to ``path`` so ``os.replace`` stays on one filesystem (atomic).

    The temporary keeps the real extension because ffmpeg picks muxer defaults from it.
    """
    ext = suffix if suffix is not None else (path.suffix or ".mp4")
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}{ext}")


def error_lines(stderr: str) -> list[str]:
    """The error-level lines of a run logged with ``-loglevel level+...``.

    ffmpeg exits 0 after some damage it can read past: Matroska logs "Truncating packet of
    size N to M" for a cut-off block and carries on, so a clean exit alone does not say that
    every packet was whole.
    """
    return [m.group().strip() for m in _ERROR_LINE.finditer(stderr)]


def run_ffmpeg(args: list[str], what: str, *, strict: bool = False) -> tuple[str, str]:
    """Run ffmpeg to completion; return (stdout, stderr). Raise with the tail on failure.

    ``strict``: the arguments log with ``level+`` (see :func:`error_lines`) and any
    error-level line fails the run too, not only a non-zero exit.
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, check=False
        )
        err.seek(0)
        stderr = err.read().decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise EncodeError(
            f"{what} failed (ffmpeg exit code {proc.returncode})",
            stderr[-STDERR_TAIL_CHARS:],
        )
    if strict:
        errors = error_lines(stderr)
        if errors:
            raise EncodeError(
                f"{what}: ffmpeg reported damage ({errors[0]})", stderr[-STDERR_TAIL_CHARS:]
            )
    return proc.stdout.decode("utf-8", errors="replace"), stderr
