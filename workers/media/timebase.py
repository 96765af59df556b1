"""Frame rates as ffmpeg should see them, and MP4 track timescales that keep frames exact."""

from __future__ import annotations

from fractions import Fraction

__all__ = ["rate", "timescale"]


def rate(fps: float) -> Fraction:
    """Turn a float fps into the rational ffmpeg should see.

    ``30000 / 1001`` arrives as 29.97002997...; handing ffmpeg that decimal would give it an
    ugly rational and frame durations that do not divide the track timescale.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return Fraction(fps).limit_denominator(100_000)


def timescale(frame_rate: Fraction) -> int:
    """An MP4 track timescale in which one frame lasts a whole number of ticks.

    Every segment gets the same one, so stream-copied packets keep exact timestamps. 90 kHz
    covers 24, 25, 30, 50, 60 and 30000/1001; other rates use a multiple of the numerator.
    """
    if (90_000 * frame_rate.denominator) % frame_rate.numerator == 0:
        return 90_000
    return frame_rate.numerator * max(1, -(-10_000 // frame_rate.numerator))
