"""FFV1 in Matroska: lossless, for exactness checks and as an archival master.

The frames keep their own pixel format (gray stays gray, rgb24 is stored as planar ``gbrp``,
which is the same samples reordered; RGBA keeps its alpha as ``bgra`` or ``gbrap16le``), so
decoding gives back the exact input, alpha included. ``-g 1`` makes
every frame a keyframe, so any segment boundary is a clean join, and FFV1 is intra-only:
one packet is one frame (packet-exact). ``-slicecrc 1`` puts a CRC in every slice, so a
decode (``verify: decode``) also proves the stored bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farm.formats import RULES
from workers.formats.base import VideoFormat

STORED_PIX_FMT = {
    "gray": "gray",
    "rgb24": "gbrp",
    "rgba": "bgra",
    "gray16le": "gray16le",
    "rgb48le": "gbrp16le",
    "rgba64le": "gbrap16le",
}
# What the decoder reports: it hands 8-bit RGB out packed as bgr0 (the same samples).
DECODED_PIX_FMT = {**STORED_PIX_FMT, "rgb24": "bgr0"}


def ffv1_args(pix_fmt_in: str) -> list[str]:
    return [
        "-c:v",
        "ffv1",
        "-level",
        "3",
        "-g",
        "1",
        "-slicecrc",
        "1",
        "-pix_fmt",
        STORED_PIX_FMT[pix_fmt_in],
    ]


class FFV1(VideoFormat):
    rules = RULES["ffv1"]
    color_tags = False
    packet_exact = True  # intra-only: one packet per frame

    def stored_pix_fmt_for(self, pix_fmt_in: str | None) -> str | None:
        return None if pix_fmt_in is None else DECODED_PIX_FMT[pix_fmt_in]

    def encode_args(
        self, width: int, height: int, fps: float, pix_fmt_in: str, options: Mapping[str, Any]
    ) -> list[str]:
        return ffv1_args(pix_fmt_in)


FORMAT = FFV1()
