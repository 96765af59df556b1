"""16-bit PNG image sequences, for compositing.

8-bit frames are widened by x257 on the way in (0 -> 0, 255 -> 65535, exact), so a 16-bit
sequence of an 8-bit render holds the same picture (alpha included: RGBA is stored as
``rgba64be``); uint16 frames pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from farm.formats import RULES
from workers.formats.sequence import SequenceFormat


class PNG16(SequenceFormat):
    rules = RULES["png16"]
    widen = True
    stored_pix_fmt: ClassVar[Mapping[str, str]] = {
        "gray": "gray16be",
        "rgb24": "rgb48be",
        "rgba": "rgba64be",
        "gray16le": "gray16be",
        "rgb48le": "rgb48be",
        "rgba64le": "rgba64be",
    }


FORMAT = PNG16()
