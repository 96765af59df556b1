"""PNG files checked by their bytes, without decoding them.

A PNG opens with an 8-byte signature and an IHDR chunk (size, bit depth, colour type, with a
CRC) and ends with a fixed 12-byte IEND chunk. Reading those 45 bytes of each frame proves
that the file is a PNG of the asked-for size and pixel layout and that it was written to its
end: a frame cut short loses its IEND. What lies between (the compressed rows) is only seen
by decoding, which ``verify: decode`` still does.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HEAD_BYTES", "PNG_LAYOUTS", "TAIL_BYTES", "PngLayout", "png_problem", "read_ends"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
HEAD_BYTES = len(SIGNATURE) + 8 + 13 + 4  # length, "IHDR", 13 bytes of fields, CRC
TAIL_BYTES = len(IEND)
# The stored pixel format -> (bit depth, PNG colour type: 0 gray, 2 RGB, 6 RGBA).
PNG_LAYOUTS = {
    "gray": (8, 0),
    "rgb24": (8, 2),
    "rgba": (8, 6),
    "gray16be": (16, 0),
    "rgb48be": (16, 2),
    "rgba64be": (16, 6),
}


@dataclass(frozen=True)
class PngLayout:
    """What every frame's IHDR must say; a ``None`` field is not checked."""

    width: int | None = None
    height: int | None = None
    bit_depth: int | None = None
    color_type: int | None = None

    def differs(self, got: PngLayout) -> bool:
        pairs = zip(
            (self.width, self.height, self.bit_depth, self.color_type),
            (got.width, got.height, got.bit_depth, got.color_type),
            strict=True,
        )
        return any(want is not None and want != have for want, have in pairs)

    def __str__(self) -> str:
        size = f"{self.width or '?'}x{self.height or '?'}"
        return f"{size}, {self.bit_depth or '?'}-bit colour type {self.color_type}"


def png_problem(head: bytes, tail: bytes, want: PngLayout) -> str | None:
    """Why a file whose first and last bytes are ``head`` and ``tail`` is not a whole PNG of
    layout ``want``, or ``None`` when it is."""
    if len(head) < HEAD_BYTES or not head.startswith(SIGNATURE):
        return "is not a PNG (no PNG signature)"
    length, kind = struct.unpack(">I4s", head[8:16])
    fields, crc = head[16:29], struct.unpack(">I", head[29:33])[0]
    if kind != b"IHDR" or length != 13 or zlib.crc32(kind + fields) != crc:
        return "has a damaged PNG header (IHDR)"
    got = PngLayout(*struct.unpack(">IIBB", fields[:10]))
    if want.differs(got):
        return f"is {got}; expected {want}"
    if tail != IEND:
        return "is cut short (no IEND chunk at its end)"
    return None


def read_ends(path: Path) -> tuple[bytes, bytes]:
    """The first ``HEAD_BYTES`` and the last ``TAIL_BYTES`` of a file (two short reads)."""
    with Path(path).open("rb") as fh:
        head = fh.read(HEAD_BYTES)
        size = fh.seek(0, 2)
        fh.seek(max(0, size - TAIL_BYTES))
        return head, fh.read(TAIL_BYTES)
