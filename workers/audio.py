"""Mux a soundtrack into a finished video, cut or padded to exactly the picture's length.

The picture is stream-copied (it was verified already and re-encoding it would cost quality
and time); only the audio is encoded, to AAC for MP4/MOV and Opus for WebM, which is what
those containers' players expect. ``apad`` then ``atrim`` make the audio exactly
frames / fps long whatever its source length, instead of ``-shortest``, whose cut happens at
a packet boundary after muxer buffering and overshoots by up to a few hundred milliseconds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from workers.encode import EncodeError, _run, _temp_sibling, _unlink_quietly, count_frames

if TYPE_CHECKING:
    from workers.formats.base import OutputFormat

__all__ = ["audio_duration", "mux_audio"]

_OUT_TIME_RE = re.compile(r"^out_time_us=(\d+)$", re.MULTILINE)


def audio_duration(path: Path, *, ffmpeg: str) -> float:
    """Decode the first audio stream and return its length in seconds.

    Decoding rather than reading a header is the point: it is how a missing stream, a
    truncated file or a codec the build cannot decode is caught before any muxing.
    """
    path = Path(path)
    if not path.is_file():
        raise EncodeError(f"audio file {path} does not exist")
    try:
        stdout, _ = _run(
            [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-i",
             str(path), "-map", "0:a:0", "-f", "null", "-progress", "pipe:1", "-"],
            f"decoding audio file {path.name}",
        )  # fmt: skip
    except EncodeError as exc:
        raise EncodeError(
            f"audio file {path} cannot be decoded (no audio stream, or not a media file)",
            exc.stderr_tail,
        ) from exc
    times = _OUT_TIME_RE.findall(stdout)
    if not times:
        raise EncodeError(f"audio file {path} decodes to no audio")
    return int(times[-1]) / 1e6


def mux_audio(
    video: Path,
    audio: Path,
    out: Path,
    *,
    fmt: OutputFormat,
    ffmpeg: str,
    frames: int,
    fps: float,
    bitrate: str = "192k",
) -> Path:
    """Write ``video`` with ``audio`` as ``out`` (atomically); the audio lasts frames / fps."""
    if fmt.audio_codec is None:
        raise EncodeError(f"{fmt.name} output cannot carry audio; refusing to mux {audio}")
    audio_duration(audio, ffmpeg=ffmpeg)
    video, out = Path(video), Path(out)
    seconds = frames / fps
    muxer = fmt.muxer_for(out)
    tmp = _temp_sibling(out)
    args = [
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
        "-i", str(video), "-i", str(audio),
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
        "-af", f"apad=whole_dur={seconds:.6f},atrim=end={seconds:.6f}",
        "-c:a", fmt.audio_codec, "-b:a", bitrate, "-ar", "48000",
        "-map_metadata", "-1", "-f", muxer,
    ]  # fmt: skip
    if muxer in ("mp4", "mov"):
        args += ["-movflags", "+faststart"]
    try:
        _run([*args, "-y", str(tmp)], f"muxing {Path(audio).name} into {out.name}")
        got, _ = count_frames(tmp, ffmpeg=ffmpeg)
        if got != frames:
            raise EncodeError(f"{out.name} has {got} frames after muxing audio, expected {frames}")
        length = audio_duration(tmp, ffmpeg=ffmpeg)
        if abs(length - seconds) > 1.0 / fps:
            raise EncodeError(
                f"the audio in {out.name} lasts {length:.3f}s, the picture {seconds:.3f}s"
            )
        os.replace(tmp, out)
    finally:
        _unlink_quietly(tmp)
    return out
