"""Raw frames into one ffmpeg process, whose output appears only once it is verified.

:class:`PipeWriter` is the base of every segment writer (each output format builds one with
its own ffmpeg output arguments); the pipe, the stderr file, frame checks, the packet count
of the result and cleanup on failure are shared.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import numpy as np

from workers.media.alpha import flatten
from workers.media.mp4 import sample_table_facts
from workers.media.probe import count_frames
from workers.media.process import GLOBAL_ARGS, EncodeError, temp_sibling, unlink_quietly
from workers.media.process import stderr_tail as read_tail
from workers.media.timebase import rate

__all__ = ["INPUT_PIX_FMTS", "PipeWriter", "pix_fmt_of"]

# Input pixel format on the pipe -> (numpy dtype, channels; 0 means a (B, H, W) array).
# RGBA is straight (not premultiplied) alpha, alpha last.
INPUT_PIX_FMTS: dict[str, tuple[type[np.integer[Any]], int]] = {
    "gray": (np.uint8, 0),
    "rgb24": (np.uint8, 3),
    "rgba": (np.uint8, 4),
    "gray16le": (np.uint16, 0),
    "rgb48le": (np.uint16, 3),
    "rgba64le": (np.uint16, 4),
}
_WIDENED = {"gray": "gray16le", "rgb24": "rgb48le", "rgba": "rgba64le"}
_FLATTENED = {"rgba": "rgb24", "rgba64le": "rgb48le"}


def pix_fmt_of(frames: np.ndarray) -> str:
    """The input pixel format of a frame batch, from its dtype and shape: ``(B, H, W)`` gray,
    ``(B, H, W, 3)`` RGB, ``(B, H, W, 4)`` RGBA; uint8 or uint16 (the ``16le`` formats)."""
    channels = {3: 0, 4: frames.shape[-1]}.get(frames.ndim) if frames.ndim else None
    for name, (dtype, want) in INPUT_PIX_FMTS.items():
        if frames.dtype == np.dtype(dtype) and channels == want:
            return name
    raise ValueError(
        f"frames must be uint8 or uint16 batches shaped (B, H, W), (B, H, W, 3) or "
        f"(B, H, W, 4), got {frames.dtype} {frames.shape}"
    )


class PipeWriter:
    """Pipe raw frames into one ffmpeg process whose output appears only once it is verified.

    The base of every segment writer: subclasses say what ffmpeg writes (``output_args``) and
    how a finished temporary becomes the real thing (``_commit``); the pipe, the stderr file,
    frame checks and cleanup on failure are shared. ``widen`` feeds 8-bit frames to a 16-bit
    encode as ``v * 257``, which maps 0..255 exactly onto 0..65535 (255 * 257 == 65535), so a
    16-bit output of 8-bit frames is the same picture rather than a darker one.
    ``flatten_over`` (an (r, g, b) colour) composites RGBA frames over it before the pipe,
    for encoders that cannot store alpha: ffmpeg then reads RGB (:mod:`workers.media.alpha`).
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        ffmpeg: str,
        pix_fmt_in: str = "gray",
        output_args: Sequence[str] = (),
        widen: bool = False,
        tmp_path: Path | None = None,
        expected_frames: int | None = None,
        flatten_over: tuple[int, int, int] | None = None,
    ) -> None:
        if pix_fmt_in not in INPUT_PIX_FMTS:
            raise ValueError(
                f"pix_fmt_in must be one of {', '.join(INPUT_PIX_FMTS)}, got {pix_fmt_in!r}"
            )
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive: {width}x{height}")
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.rate = rate(fps)
        self.ffmpeg = ffmpeg
        self.pix_fmt_in = pix_fmt_in
        self.flatten_over = flatten_over if pix_fmt_in in _FLATTENED else None
        piped = _FLATTENED[pix_fmt_in] if self.flatten_over is not None else pix_fmt_in
        self.pipe_pix_fmt = _WIDENED.get(piped, piped) if widen else piped
        self.widen = widen
        self.output_args = list(output_args)
        self.frames_written = 0
        self.expected_frames = expected_frames
        self.tmp_path = tmp_path if tmp_path is not None else temp_sibling(self.path)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def input_args(self) -> list[str]:
        return [
            "-f",
            "rawvideo",
            "-pix_fmt",
            self.pipe_pix_fmt,
            "-s",
            f"{self.width}x{self.height}",
            "-framerate",
            f"{self.rate.numerator}/{self.rate.denominator}",
            "-i",
            "pipe:",
        ]

    def command(self) -> list[str]:
        """The full ffmpeg argument list, exposed so the exact encode can be logged or tested."""
        return [
            self.ffmpeg,
            *GLOBAL_ARGS,
            "-loglevel",
            "warning",
            *self.input_args(),
            *self.output_args,
            "-y",
            str(self.tmp_path),
        ]

    def _prepare(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Self:
        self._prepare()
        self._stderr = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
            )
        except BaseException:
            self._stderr.close()
            self._stderr = None
            self._discard()
            raise
        return self

    def stderr_tail(self) -> str:
        return "" if self._stderr is None else read_tail(self._stderr)

    def _expected_shape(self) -> tuple[int, ...]:
        channels = INPUT_PIX_FMTS[self.pix_fmt_in][1]
        return (self.height, self.width, channels) if channels else (self.height, self.width)

    def _check_frames(self, frames: np.ndarray) -> np.ndarray:
        dtype, _ = INPUT_PIX_FMTS[self.pix_fmt_in]
        allowed = (np.dtype(dtype), np.dtype(np.uint16)) if self.widen else (np.dtype(dtype),)
        if not isinstance(frames, np.ndarray) or frames.dtype not in allowed:
            got = getattr(frames, "dtype", type(frames).__name__)
            names = " or ".join(str(d) for d in allowed)
            raise ValueError(f"frames must be a {names} numpy array, got {got}")
        shape = self._expected_shape()
        if frames.ndim == len(shape):
            frames = frames[np.newaxis]
        if frames.shape[1:] != shape:
            one = ", ".join(str(n) for n in shape)
            raise ValueError(f"frames must have shape (B, {one}) or ({one}), got {frames.shape}")
        if self.flatten_over is not None:
            frames = flatten(frames, self.flatten_over)  # (B, H, W, 4) -> (B, H, W, 3)
        if self.widen:
            frames = frames.astype("<u2") * np.uint16(257) if frames.dtype == np.uint8 else frames
            return np.ascontiguousarray(frames, dtype="<u2")
        return np.ascontiguousarray(frames)

    def write(self, frames: np.ndarray) -> None:
        """Queue frames for encoding: one frame, or a batch with a leading ``B`` axis."""
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError(f"{type(self).__name__}.write() called outside its `with` block")
        data = self._check_frames(frames)
        try:
            self._proc.stdin.write(data.data.cast("B"))
        except (BrokenPipeError, ValueError) as exc:
            self._proc.wait()
            raise EncodeError(
                f"ffmpeg stopped accepting frames for {self.path.name} "
                f"(exit code {self._proc.returncode})",
                self.stderr_tail(),
            ) from exc
        self.frames_written += data.shape[0]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._finish()
            else:
                self._abort()
        except BaseException:
            self._abort()
            raise
        finally:
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def _finish(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        code = proc.wait()
        if code != 0:
            raise EncodeError(
                f"encoding {self.path.name} failed (ffmpeg exit code {code})", self.stderr_tail()
            )
        if self.frames_written == 0:
            raise EncodeError(f"no frames were written to {self.path.name}", self.stderr_tail())
        if self.expected_frames is not None and self.frames_written != self.expected_frames:
            raise EncodeError(
                f"{self.path.name}: got {self.frames_written} frames for "
                f"{self.expected_frames} frame numbers"
            )
        self._commit()

    def _encoded_frames(self) -> int:
        """Frames in the finished file: from its sample tables where it is MP4/MOV (a read of
        a few kilobytes, where an ffmpeg process costs 25-35 ms a chunk), else ffmpeg's packet
        count by stream copy. Either counts packets, one per frame in what the farm writes."""
        if self.tmp_path.suffix.lower() in (".mp4", ".mov"):
            facts = sample_table_facts(self.tmp_path)
            if facts is not None and not facts.errors:
                return facts.frames
        return count_frames(self.tmp_path, ffmpeg=self.ffmpeg, decode=False)[0]

    def _commit(self) -> None:
        encoded = self._encoded_frames()
        if encoded != self.frames_written:
            raise EncodeError(
                f"{self.path.name}: wrote {self.frames_written} frames but ffmpeg encoded "
                f"{encoded}",
                self.stderr_tail(),
            )
        os.replace(self.tmp_path, self.path)

    def _discard(self) -> None:
        unlink_quietly(self.tmp_path)

    def _abort(self) -> None:
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            proc.wait()
        self._discard()
