"""ProRes 422 HQ in QuickTime MOV: the editorial hand-off format.

``prores_ks`` profile 3 is 422 HQ, at 10 bits (``yuv422p10le``); ``-vendor apl0`` makes the
file look like Apple's encoder to tools that check. Every ProRes frame is intra-coded, so any
cut is a clean join and segments concatenate by stream copy without GOP settings.
Intra-only also makes it packet-exact: one packet is one frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farm.formats import RULES
from workers.formats.base import VideoFormat


class ProRes(VideoFormat):
    rules = RULES["prores"]
    pix_fmt = "yuv422p10le"
    packet_exact = True  # intra-only: one packet per frame

    def encode_args(
        self, width: int, height: int, fps: float, pix_fmt_in: str, options: Mapping[str, Any]
    ) -> list[str]:
        return ["-c:v", "prores_ks", "-profile:v", "3", "-vendor", "apl0"]


FORMAT = ProRes()
