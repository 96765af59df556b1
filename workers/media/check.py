"""Holding a finished video to what was asked: frames, duration and stream parameters.

The decision is :func:`mismatches`, a pure function of what a read found
(:class:`~workers.media.probe.StreamFacts`) and what was asked (:class:`Expected`);
:func:`verify_video` reads the file and raises on any mismatch. ``packets`` reads an MP4 or
MOV file's sample tables (:mod:`workers.media.mp4`, no process) and has ffmpeg count the
packets of anything else; ``decode`` has ffmpeg decode every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workers.media.mp4 import sample_table_facts
from workers.media.probe import StreamFacts, read_stream
from workers.media.process import EncodeError

__all__ = ["Expected", "Method", "mismatches", "read_facts", "verify_video"]

Method = Literal["packets", "decode"]
# ffmpeg prints rates rounded to two decimals ("29.97 fps"): anything closer is the same rate.
_RATE_TOLERANCE = 0.006


@dataclass(frozen=True)
class Expected:
    """What a video must be. ``None`` fields are not checked: a caller that does not know
    the size, or a container that stores no rate (GIF's delays are per frame)."""

    frames: int | None
    fps: float | None
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    pix_fmt: str | None = None
    check_rate: bool = True


def mismatches(name: str, facts: StreamFacts, want: Expected) -> list[str]:
    """Every way ``facts`` (a read of the file ``name``) differs from ``want``, in words.

    The duration must be frames / fps within one frame: a join that left a gap or an overlap
    shows there even when every frame is present.
    """
    out = [f"{name} is damaged: {line}" for line in facts.errors[:1]]
    counted = "decodes to" if facts.decoded else "holds"
    if want.frames is not None and facts.frames != want.frames:
        out.append(f"{name} {counted} {facts.frames} frames, expected {want.frames}")
    if want.fps is not None and abs(facts.duration_s - facts.frames / want.fps) > 1.0 / want.fps:
        out.append(
            f"{name} lasts {facts.duration_s:.3f}s but {facts.frames} frames at {want.fps:g} "
            f"fps should last {facts.frames / want.fps:.3f}s"
        )
    for field, got, asked in (
        ("codec", facts.codec, want.codec),
        ("width", facts.width, want.width),
        ("height", facts.height, want.height),
        ("pixel format", facts.pix_fmt, want.pix_fmt),
    ):
        if asked is not None and got != asked:
            out.append(f"{name}: {field} is {got}, expected {asked}")
    if want.check_rate and want.fps is not None:
        rates = [r for r in (facts.fps, facts.tbr) if r is not None]
        if not any(abs(r - want.fps) <= _RATE_TOLERANCE for r in rates):
            shown = "/".join(f"{r:g}" for r in rates) or "unknown"
            out.append(f"{name}: frame rate is {shown} fps, expected {want.fps:g}")
    return out


def read_facts(path: Path, *, ffmpeg: str, method: Method) -> StreamFacts:
    """One read of ``path`` by ``method``: the sample tables where they can vouch for the
    file, else ffmpeg's packet count; or a decode of every frame."""
    if method == "packets":
        facts = sample_table_facts(path)
        if facts is not None:
            return facts
    return read_stream(path, ffmpeg=ffmpeg, decode=method == "decode")


def verify_video(
    path: Path,
    *,
    ffmpeg: str,
    expected_frames: int | None,
    fps: float | None,
    method: Method = "decode",
    expected: Expected | None = None,
    label: str | None = None,
) -> tuple[int, float]:
    """Read ``path`` (``method``: count packets, or decode every frame) and hold it to the
    spec: the frame count, a duration of frames / fps within one frame, and the stream
    parameters in ``expected`` where given (which then wins over ``expected_frames`` and
    ``fps``). ``label`` names the file in errors (the output a temporary will become).
    Returns (frames, seconds)."""
    facts = read_facts(path, ffmpeg=ffmpeg, method=method)
    want = expected or Expected(frames=expected_frames, fps=fps, check_rate=False)
    problems = mismatches(label or Path(path).name, facts, want)
    if problems:
        raise EncodeError("; ".join(problems), "\n".join(facts.errors))
    return facts.frames, facts.duration_s
