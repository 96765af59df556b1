"""8-bit PNG image sequences (gray or RGB, as rendered)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from workers.formats.base import OptionCheck, int_in
from workers.formats.sequence import SequenceFormat


class PNG8(SequenceFormat):
    name = "png8"
    codec = "png"
    containers: ClassVar[Mapping[str, str]] = {".png": "image2"}
    stored_pix_fmt: ClassVar[Mapping[str, str]] = {"gray": "gray", "rgb24": "rgb24"}
    option_checks: ClassVar[Mapping[str, OptionCheck]] = {"compression_level": int_in(0, 9)}


FORMAT = PNG8()
