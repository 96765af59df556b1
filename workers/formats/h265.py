"""H.265/HEVC in MP4, tagged ``hvc1`` so QuickTime and Apple devices play it.

Joinable segments need what x264 gives by default, asked of x265 explicitly: ``bframes=0``
(no reordering, so no composition offsets to stitch), ``no-open-gop=1`` (every keyframe is an
IDR whose pictures never reference the previous segment), and the same parameters for every
segment so the first segment's ``hvcC`` parameter sets describe all of them.

No alpha: like H.264, RGBA frames are flattened over ``output.background`` (default black)
before the pipe.

Packet-exact: x265 emits one access unit per input frame, and ``bframes=0`` keeps them in
display order with no frame held back or dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farm.formats import RULES
from workers.formats.base import VideoFormat
from workers.formats.h264 import rate_control


class H265(VideoFormat):
    rules = RULES["h265"]
    packet_exact = True  # bframes=0: one access unit per frame, in order

    def encode_args(
        self, width: int, height: int, fps: float, pix_fmt_in: str, options: Mapping[str, Any]
    ) -> list[str]:
        keyint = int(options.get("keyint", 250))
        params = f"keyint={keyint}:min-keyint=1:no-open-gop=1:bframes=0:log-level=error"
        return [
            "-c:v",
            "libx265",
            "-preset",
            str(options.get("preset", "veryfast")),
            *rate_control(options, 22),
            "-x265-params",
            params,
            "-tag:v",
            "hvc1",
        ]


FORMAT = H265()
