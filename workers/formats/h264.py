"""H.264 in MP4: the default delivery format, plays everywhere.

``-bf 0`` keeps PTS equal to DTS (no edit list, exact segment durations) and x264 opens every
segment with an IDR frame, so stream-copied segments join exactly; ``+faststart`` moves the
index to the front so a browser can start playing before the download ends.

No alpha: RGBA frames are composited over ``output.background`` (default black) in numpy
before the pipe (:mod:`workers.media.alpha`), and colour is converted to bt709 4:2:0.

Packet-exact: x264 emits one access unit (one packet) per input frame and, with no B-frames,
in display order; it never drops or merges frames, so counting packets counts frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farm.formats import RULES, X264_PRESETS
from workers.formats.base import VideoFormat

PRESETS = X264_PRESETS


def rate_control(options: Mapping[str, Any], default_crf: int) -> list[str]:
    if "bitrate" in options:
        rate = str(options["bitrate"])
        return ["-b:v", rate, "-maxrate", rate, "-bufsize", rate]
    return ["-crf", str(options.get("crf", default_crf))]


class H264(VideoFormat):
    rules = RULES["h264"]
    packet_exact = True  # -bf 0: one packet per frame, in order (see the module docstring)

    def encode_args(
        self, width: int, height: int, fps: float, pix_fmt_in: str, options: Mapping[str, Any]
    ) -> list[str]:
        return [
            "-c:v",
            "libx264",
            "-preset",
            str(options.get("preset", "veryfast")),
            *rate_control(options, 18),
            "-bf",
            "0",
            "-g",
            str(options.get("keyint", 250)),
        ]


FORMAT = H264()
