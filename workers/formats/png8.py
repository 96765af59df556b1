"""8-bit PNG image sequences (gray, RGB or RGBA with its alpha, as rendered)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from farm.formats import RULES
from workers.formats.sequence import SequenceFormat


class PNG8(SequenceFormat):
    rules = RULES["png8"]
    stored_pix_fmt: ClassVar[Mapping[str, str]] = {
        "gray": "gray",
        "rgb24": "rgb24",
        "rgba": "rgba",
    }


FORMAT = PNG8()
