"""H.264 in MP4: the default delivery format, plays everywhere.

``-bf 0`` keeps PTS equal to DTS (no edit list, exact segment durations) and x264 opens every
segment with an IDR frame, so stream-copied segments join exactly; ``+faststart`` moves the
index to the front so a browser can start playing before the download ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workers.formats.base import OptionCheck, VideoFormat, _bitrate, int_in, one_of

PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)


def rate_control(options: Mapping[str, Any], default_crf: int) -> list[str]:
    if "bitrate" in options:
        rate = str(options["bitrate"])
        return ["-b:v", rate, "-maxrate", rate, "-bufsize", rate]
    return ["-crf", str(options.get("crf", default_crf))]


class H264(VideoFormat):
    name = "h264"
    codec = "h264"
    containers: ClassVar[Mapping[str, str]] = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
    chroma = "420"
    audio_codec = "aac"
    option_checks: ClassVar[Mapping[str, OptionCheck]] = {
        "crf": int_in(0, 51),
        "bitrate": _bitrate,
        "preset": one_of(*PRESETS),
        "keyint": int_in(1, 1000),
    }

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
