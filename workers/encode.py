"""The ffmpeg edge of the render farm: encode frame segments, join them, inspect the results.

Every ffmpeg call runs as an argument list (never a shell) with stderr going to an anonymous
temporary file: a chatty ffmpeg can then never block on a full pipe, and the tail of what it
said is still there to put into the error when something fails.

Segments are encoded so that the concat demuxer can join them by stream copy and the joined
file holds exactly the sum of the segments' frames (see ``SegmentWriter``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, Self

import ffmpeg as ffmpeg_python
import imageio_ffmpeg
import numpy as np

__all__ = [
    "INPUT_PIX_FMTS",
    "EncodeError",
    "FrameSink",
    "PipeWriter",
    "PipelinedWriter",
    "SegmentWriter",
    "concat_copy",
    "concat_segments",
    "count_frames",
    "ffmpeg_binary",
    "probe_video",
    "verify_video",
]

STDERR_TAIL_CHARS = 2000
_GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-nostats")


class EncodeError(RuntimeError):
    """An ffmpeg run failed or produced something other than what was asked for.

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


def _tail(stream: IO[bytes], limit: int = STDERR_TAIL_CHARS) -> str:
    stream.flush()
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - limit * 4))
    return stream.read().decode("utf-8", errors="replace")[-limit:]


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _temp_sibling(path: Path, suffix: str | None = None) -> Path:
    """A hidden name next to ``path`` so ``os.replace`` stays on one filesystem (atomic).

    The temporary keeps the real extension because ffmpeg picks muxer defaults from it.
    """
    ext = suffix if suffix is not None else (path.suffix or ".mp4")
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}{ext}")


def _run(args: list[str], what: str) -> tuple[str, str]:
    """Run ffmpeg to completion; return (stdout, stderr). Raise with the tail on failure."""
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
    return proc.stdout.decode("utf-8", errors="replace"), stderr


def _rate(fps: float) -> Fraction:
    """Turn a float fps into the rational ffmpeg should see.

    ``30000 / 1001`` arrives as 29.97002997...; handing ffmpeg that decimal would give it an
    ugly rational and frame durations that do not divide the track timescale.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return Fraction(fps).limit_denominator(100_000)


def _timescale(rate: Fraction) -> int:
    """An MP4 track timescale in which one frame lasts a whole number of ticks.

    Every segment gets the same one, so stream-copied packets keep exact timestamps. 90 kHz
    covers 24, 25, 30, 50, 60 and 30000/1001; other rates use a multiple of the numerator.
    """
    if (90_000 * rate.denominator) % rate.numerator == 0:
        return 90_000
    return rate.numerator * max(1, -(-10_000 // rate.numerator))


# Input pixel format on the pipe -> (numpy dtype, channels; 0 means a (B, H, W) array).
INPUT_PIX_FMTS: dict[str, tuple[type[np.integer[Any]], int]] = {
    "gray": (np.uint8, 0),
    "rgb24": (np.uint8, 3),
    "gray16le": (np.uint16, 0),
    "rgb48le": (np.uint16, 3),
}
_WIDENED = {"gray": "gray16le", "rgb24": "rgb48le"}


class PipeWriter:
    """Pipe raw frames into one ffmpeg process whose output appears only once it is verified.

    The base of every segment writer: subclasses say what ffmpeg writes (``output_args``) and
    how a finished temporary becomes the real thing (``_commit``); the pipe, the stderr file,
    frame checks and cleanup on failure are shared. ``widen`` feeds 8-bit frames to a 16-bit
    encode as ``v * 257``, which maps 0..255 exactly onto 0..65535 (255 * 257 == 65535), so a
    16-bit output of 8-bit frames is the same picture rather than a darker one.
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
        self.rate = _rate(fps)
        self.ffmpeg = ffmpeg
        self.pix_fmt_in = pix_fmt_in
        self.pipe_pix_fmt = _WIDENED.get(pix_fmt_in, pix_fmt_in) if widen else pix_fmt_in
        self.widen = widen
        self.output_args = list(output_args)
        self.frames_written = 0
        self.expected_frames = expected_frames
        self.tmp_path = tmp_path if tmp_path is not None else _temp_sibling(self.path)
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
            *_GLOBAL_ARGS,
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
        return "" if self._stderr is None else _tail(self._stderr)

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

    def _commit(self) -> None:
        encoded, _ = count_frames(self.tmp_path, ffmpeg=self.ffmpeg, decode=False)
        if encoded != self.frames_written:
            raise EncodeError(
                f"{self.path.name}: wrote {self.frames_written} frames but ffmpeg encoded "
                f"{encoded}",
                self.stderr_tail(),
            )
        os.replace(self.tmp_path, self.path)

    def _discard(self) -> None:
        _unlink_quietly(self.tmp_path)

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


class SegmentWriter(PipeWriter):
    """Pipe raw grayscale frames into ffmpeg and produce one H.264 MP4 segment.

    Encoding choices exist for the later stream-copy concat: identical codec settings for all
    segments (so the first segment's SPS/PPS describe every segment), no B-frames (so PTS equals
    DTS, there is no edit list or composition offset, and each segment's duration is exactly
    frames x frame duration, which is where the concat demuxer starts the next file), a fixed
    track timescale in which a frame is a whole number of ticks, and passthrough frame timing
    so ffmpeg never duplicates or drops a frame. x264 opens every stream with an IDR frame, so
    each segment decodes on its own and after a cut.

    The output is written under a hidden temporary name and only renamed into place after the
    frame count has been checked, so a crashed or half-written segment never carries the final
    name.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        ffmpeg: str,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(
                f"width and height must be positive and even for yuv420p: {width}x{height}"
            )
        super().__init__(path, width, height, fps, ffmpeg=ffmpeg, pix_fmt_in="gray")
        self.crf = crf
        self.preset = preset

    def command(self) -> list[str]:
        """The full ffmpeg argument list, exposed so the exact encode can be logged or tested."""
        stream = ffmpeg_python.input(
            "pipe:",
            format="rawvideo",
            pix_fmt="gray",
            s=f"{self.width}x{self.height}",
            framerate=f"{self.rate.numerator}/{self.rate.denominator}",
        ).output(
            str(self.tmp_path),
            format="mp4",
            vcodec="libx264",
            pix_fmt="yuv420p",
            crf=self.crf,
            preset=self.preset,
            bf=0,
            fps_mode="passthrough",
            video_track_timescale=_timescale(self.rate),
            movflags="+faststart",
            map_metadata=-1,
        )
        args: list[str] = ffmpeg_python.get_args(stream, overwrite_output=True)
        return [self.ffmpeg, *_GLOBAL_ARGS, "-loglevel", "warning", *args]


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


def _concat_quote(path: Path) -> str:
    """Quote a path for a concat list: inside '...' nothing is special, so a ' is spelled '\\''."""
    text = str(path)
    if "\n" in text or "\r" in text:
        raise ValueError(f"cannot list a path containing a line break: {text!r}")
    return "'" + text.replace("'", "'\\''") + "'"


def concat_segments(
    segments: Sequence[Path],
    out: Path,
    *,
    ffmpeg: str,
    expected_frames: int | None = None,
    fps: float | None = None,
) -> None:
    """Join segments by stream copy into ``out``, checking the result before it appears.

    No re-encode: segments were made compatible at encode time, so joining is cheap and
    lossless. ``fps`` is only used to check that the joined duration matches the frame count.
    """
    if not segments:
        raise ValueError("concat_segments needs at least one segment")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(out)
    try:
        concat_copy(
            segments,
            tmp,
            ffmpeg=ffmpeg,
            output_args=["-map", "0:v:0", "-c", "copy", "-movflags", "+faststart", "-f", "mp4"],
        )
        frames, secs = count_frames(tmp, ffmpeg=ffmpeg)
        if expected_frames is not None and frames != expected_frames:
            raise EncodeError(f"assembled video has {frames} frames, expected {expected_frames}")
        if fps is not None and abs(secs - frames / fps) > 1.0 / fps:
            raise EncodeError(
                f"assembled video lasts {secs:.3f}s but {frames} frames at {fps:g} fps "
                f"should last {frames / fps:.3f}s"
            )
        os.replace(tmp, out)
    finally:
        _unlink_quietly(tmp)


def concat_copy(
    segments: Sequence[Path],
    out: Path,
    *,
    ffmpeg: str,
    output_args: Sequence[str],
    durations: Sequence[float] | None = None,
    what: str | None = None,
) -> None:
    """Run the concat demuxer over ``segments`` into ``out`` (no checks, no rename).

    ``durations`` (seconds per segment, frames / fps) are written into the listing: the demuxer
    starts each file where the previous one ends, and in containers with millisecond
    timestamps (WebM, Matroska) the probed duration is rounded, so without them the joins
    could gain or lose a millisecond per segment.
    """
    if not segments:
        raise ValueError("concat needs at least one segment")
    if durations is not None and len(durations) != len(segments):
        raise ValueError("durations must have one entry per segment")
    out = Path(out)
    listing = out.with_name(f".{out.name}.concat-{os.getpid()}-{secrets.token_hex(4)}.txt")
    lines = ["ffconcat version 1.0"]
    for i, seg in enumerate(segments):
        seg_path = Path(seg).resolve()
        if not seg_path.is_file():
            raise EncodeError(f"segment {seg_path} does not exist")
        lines.append(f"file {_concat_quote(seg_path)}")
        if durations is not None:
            lines.append(f"duration {durations[i]:.9f}")
    try:
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = [
            ffmpeg,
            *_GLOBAL_ARGS,
            "-loglevel",
            "warning",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            *output_args,
            "-y",
            str(out),
        ]
        _run(args, what or f"concatenating {len(segments)} segments into {out.name}")
    finally:
        _unlink_quietly(listing)


def verify_video(
    path: Path, *, ffmpeg: str, expected_frames: int | None, fps: float | None
) -> tuple[int, float]:
    """Decode ``path`` and hold it to the spec: the frame count, and a duration of
    frames / fps within one frame. Returns (frames, seconds)."""
    frames, secs = count_frames(path, ffmpeg=ffmpeg)
    name = Path(path).name
    if expected_frames is not None and frames != expected_frames:
        raise EncodeError(f"{name} decodes to {frames} frames, expected {expected_frames}")
    if fps is not None and abs(secs - frames / fps) > 1.0 / fps:
        raise EncodeError(
            f"{name} lasts {secs:.3f}s but {frames} frames at {fps:g} fps "
            f"should last {frames / fps:.3f}s"
        )
    return frames, secs


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO_RE = re.compile(
    r"Stream #\d+:\d+\S*.*?: Video: (?P<codec>[\w-]+).*?,\s*(?P<w>\d{1,5})x(?P<h>\d{1,5})\b"
)
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) (?:fps|tbr)\b")
_PROGRESS_RE = re.compile(r"^(frame|out_time_us)=(\S+)$", re.MULTILINE)


def _container_duration(stderr: str) -> float | None:
    match = _DURATION_RE.search(stderr)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def count_frames(path: Path, *, ffmpeg: str, decode: bool = True) -> tuple[int, float]:
    """Count frames by decoding every one, and return (frames, duration in seconds).

    Decoding is slower than trusting the container's sample table, but the point of the count
    is to catch a segment or join that would not play back as the frames we rendered; only a
    decoder notices a truncated or undecodable stream. The duration is the container's (what
    a player shows), falling back to the decoder's last timestamp. This runs the configured
    binary rather than ``imageio_ffmpeg.count_frames_and_secs``, which always uses the wheel's.
    ``decode=False`` counts packets by stream copy instead: for a segment just encoded, which
    the final decode at assembly checks again, it proves no frame was dropped at a fraction
    of the cost.
    """
    path = Path(path)
    if not path.is_file():
        raise EncodeError(f"cannot count frames: {path} does not exist")
    args = [
        ffmpeg,
        *_GLOBAL_ARGS,
        "-loglevel",
        "info",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        *(() if decode else ("-c", "copy")),
        "-f",
        "null",
        "-progress",
        "pipe:1",
        "-",
    ]
    stdout, stderr = _run(args, f"decoding {path.name}")
    progress = dict(_PROGRESS_RE.findall(stdout))
    if "frame" not in progress:
        raise EncodeError(
            f"ffmpeg reported no frame count for {path.name}", stderr[-STDERR_TAIL_CHARS:]
        )
    frames = int(progress["frame"])
    secs = _container_duration(stderr)
    if secs is None:
        out_us = progress.get("out_time_us", "N/A")
        secs = int(out_us) / 1e6 if out_us.lstrip("-").isdigit() else 0.0
    return frames, secs


def probe_video(
    path: Path, *, ffmpeg: str, counted: tuple[int, float] | None = None
) -> dict[str, Any]:
    """Describe a video for artifact metadata without ffprobe, which the wheel does not ship.

    ``ffmpeg -i`` with no output prints the stream summary and exits non-zero by design, so
    the exit code is ignored and the summary parsed; the frame count comes from a decode.
    """
    path = Path(path)
    if not path.is_file():
        raise EncodeError(f"cannot probe: {path} does not exist")
    with tempfile.TemporaryFile() as err:
        subprocess.run(
            [ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            check=False,
        )
        err.seek(0)
        stderr = err.read().decode("utf-8", errors="replace")
    video = _VIDEO_RE.search(stderr)
    if video is None:
        raise EncodeError(f"no video stream found in {path.name}", stderr[-STDERR_TAIL_CHARS:])
    line = stderr[video.start() :].split("\n", 1)[0]
    fps: float | None = None
    fps_match = _FPS_RE.search(line)
    if fps_match is not None:
        fps = float(fps_match.group(1)) * (1000 if fps_match.group(2) else 1)
    # ``counted``: (frames, seconds) a caller has just verified by decoding; no second decode.
    frames, duration = counted if counted is not None else count_frames(path, ffmpeg=ffmpeg)
    return {
        "width": int(video.group("w")),
        "height": int(video.group("h")),
        "fps": fps,
        "codec": video.group("codec"),
        "frames": frames,
        "duration": duration,
    }
