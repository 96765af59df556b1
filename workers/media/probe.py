"""What a video holds, read with ffmpeg alone (the wheel ships no ffprobe).

One pass over the file gives both its stream summary (codec, size, pixel format, rate, the
container's duration: what ``ffmpeg -i`` prints) and its frame count, either by decoding
every frame or by demuxing with stream copy and counting packets (``decode=False``).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.media.process import (
    GLOBAL_ARGS,
    STDERR_TAIL_CHARS,
    EncodeError,
    error_lines,
    run_ffmpeg,
)

__all__ = ["StreamFacts", "count_frames", "parse_summary", "probe_video", "read_stream"]

_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO_RE = re.compile(
    r"Stream #\d+:\d+\S*.*?: Video: (?P<codec>[\w-]+).*?,\s*(?P<w>\d{1,5})x(?P<h>\d{1,5})\b"
)
# "h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 64x48": the pixel
# format is the first field after the codec and its parenthesised profile and tag.
_PIX_FMT_RE = re.compile(r"Video: [\w-]+(?: \([^()]*\))*, (?P<pix>[0-9a-z_]+)")
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) fps\b")
_TBR_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) tbr\b")
_PROGRESS_RE = re.compile(r"^(frame|out_time_us)=(\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class StreamFacts:
    """One read of a video's first video stream.

    ``fps`` is the average rate ffmpeg reports, ``tbr`` its guess at the base rate (they
    differ for GIF, whose frames carry delays in 1/100 s); ``errors`` the error-level lines
    the read logged (a demuxer that read past damage).
    """

    frames: int
    duration_s: float
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    pix_fmt: str | None = None
    fps: float | None = None
    tbr: float | None = None
    errors: tuple[str, ...] = ()
    decoded: bool = False


def _number(match: re.Match[str] | None) -> float | None:
    if match is None:
        return None
    return float(match.group(1)) * (1000 if match.group(2) else 1)


def parse_summary(stderr: str) -> dict[str, Any]:
    """The input's first video stream as ``ffmpeg -i`` prints it, and the container duration.

    Only the text before the output section counts, so an output stream (``wrapped_avframe``
    for a decode to null) is never taken for the input's.
    """
    text = re.split(r"^(?:\S* )?(?:Output #0|Stream mapping:)", stderr, maxsplit=1, flags=re.M)[0]
    video = _VIDEO_RE.search(text)
    info: dict[str, Any] = {"duration": None}
    duration = _DURATION_RE.search(text)
    if duration is not None:
        hours, minutes, seconds = duration.groups()
        info["duration"] = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if video is None:
        return info
    line = text[video.start() :].split("\n", 1)[0]
    pix = _PIX_FMT_RE.search(line)
    info.update(
        codec=video.group("codec"),
        width=int(video.group("w")),
        height=int(video.group("h")),
        pix_fmt=pix.group("pix") if pix else None,
        fps=_number(_FPS_RE.search(line)),
        tbr=_number(_TBR_RE.search(line)),
    )
    return info


def _scan(path: Path, ffmpeg: str, *, decode: bool, strict: bool) -> StreamFacts:
    path = Path(path)
    if not path.is_file():
        raise EncodeError(f"cannot count frames: {path} does not exist")
    args = [
        ffmpeg,
        *GLOBAL_ARGS,
        "-loglevel",
        "level+info" if strict else "info",
        # A corrupt packet (MP4's sample table promises bytes the file does not have) or a
        # decoding error then ends the run with an error instead of a warning.
        *(("-xerror",) if strict else ()),
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
    what = f"{'decoding' if decode else 'reading the packets of'} {path.name}"
    stdout, stderr = run_ffmpeg(args, what)
    progress = dict(_PROGRESS_RE.findall(stdout))
    if "frame" not in progress:
        raise EncodeError(
            f"ffmpeg reported no frame count for {path.name}", stderr[-STDERR_TAIL_CHARS:]
        )
    info = parse_summary(stderr)
    secs = info.pop("duration")
    if secs is None:
        out_us = progress.get("out_time_us", "N/A")
        secs = int(out_us) / 1e6 if out_us.lstrip("-").isdigit() else 0.0
    return StreamFacts(
        frames=int(progress["frame"]),
        duration_s=secs,
        errors=tuple(error_lines(stderr)) if strict else (),
        decoded=decode,
        **info,
    )


def read_stream(path: Path, *, ffmpeg: str, decode: bool = False) -> StreamFacts:
    """Read ``path`` once, strictly: its stream summary, and its frames counted by packets
    (``decode=False``, a demux with stream copy) or by decoding every one.

    Strict means ``-xerror`` plus the error-level lines kept in ``errors``, so damage that
    ffmpeg reads past is still seen. For segments encoded so that one packet is one shown
    frame (see ``OutputFormat.packet_exact``) the packet count is the frame count exactly.
    """
    return _scan(path, ffmpeg, decode=decode, strict=True)


def count_frames(path: Path, *, ffmpeg: str, decode: bool = True) -> tuple[int, float]:
    """Count frames by decoding every one, and return (frames, duration in seconds).

    The duration is the container's (what a player shows), falling back to the last
    timestamp. This runs the configured binary rather than
    ``imageio_ffmpeg.count_frames_and_secs``, which always uses the wheel's. ``decode=False``
    counts packets by stream copy instead: for a segment just encoded, it proves no frame
    was dropped at a fraction of the cost. Lenient: damage ffmpeg reads past is not an error
    here; :func:`read_stream` is the strict read that assembly's check uses.
    """
    facts = _scan(path, ffmpeg, decode=decode, strict=False)
    return facts.frames, facts.duration_s


def probe_video(
    path: Path, *, ffmpeg: str, counted: tuple[int, float] | None = None
) -> dict[str, Any]:
    """Describe a video for artifact metadata.

    ``ffmpeg -i`` with no output prints the stream summary and exits non-zero by design, so
    the exit code is ignored and the summary parsed; the frame count comes from a decode
    unless ``counted`` gives (frames, seconds) a caller has just verified.
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
    info = parse_summary(stderr)
    if "codec" not in info:
        raise EncodeError(f"no video stream found in {path.name}", stderr[-STDERR_TAIL_CHARS:])
    frames, duration = counted if counted is not None else count_frames(path, ffmpeg=ffmpeg)
    return {
        "width": info["width"],
        "height": info["height"],
        "fps": info["fps"] if info["fps"] is not None else info["tbr"],
        "codec": info["codec"],
        "pix_fmt": info.get("pix_fmt"),
        "frames": frames,
        "duration": duration,
    }
