"""How assembly checks an output and whether it must join at all: pure decisions.

``packets`` (the default for video) counts frames from the container by demuxing with stream
copy, and compares the duration and the stream's codec, size, pixel format and rate with
what was asked. It is exact only where one packet is one shown frame, which each format's
encoder settings guarantee (``OutputFormat.packet_exact``); a format that cannot promise it
is decoded. ``decode`` (``output.verify: decode``) decodes every frame, as assembly always
used to. Image sequences are checked by their ``files``: the exact set of names, and each
frame's PNG signature, header and end, without decoding them.
"""

from __future__ import annotations

from typing import Literal

from farm.formats import VERIFY_METHODS

__all__ = ["Verification", "adopts_segment", "choose_verification"]

Verification = Literal["packets", "decode", "files"]


def choose_verification(*, packet_exact: bool, is_sequence: bool, asked: object) -> Verification:
    """The check an output gets: ``asked`` is its ``verify`` option (``None`` when unset)."""
    if asked is not None and asked not in VERIFY_METHODS:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_METHODS)}, got {asked!r}")
    if asked == "decode":
        return "decode"
    if is_sequence:
        return "files"
    return "packets" if packet_exact else "decode"


def adopts_segment(
    segment_count: int, segment_muxer: str, out_muxer: str, *, has_audio: bool
) -> bool:
    """Whether the one segment of a job already is its output, so it takes the output's
    name instead of being copied by a concat: one segment, written by the output's muxer
    (an ``.mov`` output of ``.mp4`` segments is remuxed), and no audio to add."""
    return segment_count == 1 and segment_muxer == out_muxer and not has_audio
