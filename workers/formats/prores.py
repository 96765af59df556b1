"""ProRes 422 HQ in QuickTime MOV, or 4444 with alpha: the editorial hand-off format.

``prores_ks`` profile 3 is 422 HQ, at 10 bits (``yuv422p10le``); frames with alpha are
encoded as profile 4444 from ``yuva444p10le`` instead, which keeps the alpha channel (and full
chroma) for compositing; ffmpeg's decoder reports 4444 as ``yuva444p12le``, the depth of the
profile rather than of what was fed to it. ``-vendor apl0`` makes the
file look like Apple's encoder to tools that check. Every ProRes frame is intra-coded, so any
cut is a clean join and segments concatenate by stream copy without GOP settings.
Intra-only also makes it packet-exact: one packet is one frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farm.formats import ALPHA_PIX_FMTS, RULES
from workers.formats.base import VideoFormat


class ProRes(VideoFormat):
    rules = RULES["prores"]
    pix_fmt = "yuv422p10le"
    alpha_pix_fmt = "yuva444p10le"
    packet_exact = True  # intra-only: one packet per frame

    def stored_pix_fmt_for(self, pix_fmt_in: str | None) -> str | None:
        return "yuva444p12le" if pix_fmt_in in ALPHA_PIX_FMTS else self.pix_fmt

    def encode_args(
        self, width: int, height: int, fps: float, pix_fmt_in: str, options: Mapping[str, Any]
    ) -> list[str]:
        profile = "4444" if pix_fmt_in in ALPHA_PIX_FMTS else "3"
        return ["-c:v", "prores_ks", "-profile:v", profile, "-vendor", "apl0"]


FORMAT = ProRes()
