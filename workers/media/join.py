"""Joining segments with the concat demuxer: by stream copy, or as the input of a re-encode.

Segments are encoded so that the concat demuxer can join them by stream copy and the joined
file holds exactly the sum of the segments' frames (see ``workers/formats/``). The join reads
every packet of every segment, so it is also where a damaged segment shows: it runs with
``-xerror`` and fails on any error-level line (a Matroska block cut short is logged and
copied short otherwise, leaving a joined file that reads cleanly).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from workers.media.check import read_facts
from workers.media.process import (
    GLOBAL_ARGS,
    EncodeError,
    run_ffmpeg,
    temp_sibling,
    unlink_quietly,
)

__all__ = ["concat_copy", "concat_quote", "concat_segments"]


def concat_quote(path: Path) -> str:
    """Quote a path for a concat list: inside '...' nothing is special, so a ' is spelled '\\''."""
    text = str(path)
    if "\n" in text or "\r" in text:
        raise ValueError(f"cannot list a path containing a line break: {text!r}")
    return "'" + text.replace("'", "'\\''") + "'"


def concat_copy(
    segments: Sequence[Path],
    out: Path,
    *,
    ffmpeg: str,
    output_args: Sequence[str],
    durations: Sequence[float] | None = None,
    what: str | None = None,
) -> None:
    """Run the concat demuxer over ``segments`` into ``out`` (no count, no rename).

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
        lines.append(f"file {concat_quote(seg_path)}")
        if durations is not None:
            lines.append(f"duration {durations[i]:.9f}")
    try:
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = [
            ffmpeg,
            *GLOBAL_ARGS,
            "-loglevel",
            "level+warning",
            "-xerror",
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
        what = what or f"concatenating {len(segments)} segments into {out.name}"
        run_ffmpeg(args, what, strict=True)
    finally:
        unlink_quietly(listing)


def concat_segments(
    segments: Sequence[Path],
    out: Path,
    *,
    ffmpeg: str,
    expected_frames: int | None = None,
    fps: float | None = None,
) -> None:
    """Join MP4 segments by stream copy into ``out``, checking the result before it appears.

    No re-encode: segments were made compatible at encode time, so joining is cheap and
    lossless. The result's packets are counted (one per frame: no B-frames); ``fps`` is only
    used to check that the joined duration matches the frame count.
    """
    if not segments:
        raise ValueError("concat_segments needs at least one segment")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(out)
    try:
        concat_copy(
            segments,
            tmp,
            ffmpeg=ffmpeg,
            output_args=["-map", "0:v:0", "-c", "copy", "-movflags", "+faststart", "-f", "mp4"],
        )
        facts = read_facts(tmp, ffmpeg=ffmpeg, method="packets")
        frames, secs = facts.frames, facts.duration_s
        if facts.errors:
            raise EncodeError(f"assembled video is damaged: {facts.errors[0]}")
        if expected_frames is not None and frames != expected_frames:
            raise EncodeError(f"assembled video has {frames} frames, expected {expected_frames}")
        if fps is not None and abs(secs - frames / fps) > 1.0 / fps:
            raise EncodeError(
                f"assembled video lasts {secs:.3f}s but {frames} frames at {fps:g} fps "
                f"should last {frames / fps:.3f}s"
            )
        os.replace(tmp, out)
    finally:
        unlink_quietly(tmp)
