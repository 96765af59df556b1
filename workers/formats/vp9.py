"""VP9 in WebM, for the web.

Constant quality (``-crf`` with ``-b:v 0``). Alternate reference frames are turned off: they
are invisible frames that libvpx packs with a visible one, which is harmless for playback,
but without them every packet is one displayed frame and a segment's last packet ends
exactly at its duration, so the concat demuxer's joins leave no gap. Each segment starts
with a keyframe (libvpx always opens with one), so stream copy joins them.

Frames with alpha are encoded from ``yuva420p``: libvpx codes the alpha plane as a second
stream that WebM carries beside each frame (``BlockAdditional``, ``alpha_mode: 1``), which a
stream-copy join keeps. ffmpeg's own VP9 decoder ignores it and reports ``yuv420p``, so that
is the stored format the check compares; decoding the alpha needs ``-c:v libvpx-vp9`` before
the input.

Packet-exact for the same reason: with ``-auto-alt-ref 0`` no packet carries an invisible
frame, so one packet is one shown frame (and with ffmpeg's default ``-drop-threshold 0``
libvpx drops none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farm.formats import RULES
from workers.formats.base import VideoFormat


class VP9(VideoFormat):
    rules = RULES["vp9"]
    alpha_pix_fmt = "yuva420p"
    packet_exact = True  # -auto-alt-ref 0: every packet is one shown frame

    def stored_pix_fmt_for(self, pix_fmt_in: str | None) -> str | None:
        return self.pix_fmt  # alpha or not: ffmpeg's native decoder reports the colour planes

    def encode_args(
        self, width: int, height: int, fps: float, pix_fmt_in: str, options: Mapping[str, Any]
    ) -> list[str]:
        if "bitrate" in options:
            rate = ["-b:v", str(options["bitrate"])]
        else:
            rate = ["-crf", str(options.get("crf", 31)), "-b:v", "0"]
        return [
            "-c:v",
            "libvpx-vp9",
            *rate,
            "-deadline",
            "good",
            "-cpu-used",
            str(options.get("speed", 5)),
            "-row-mt",
            "1",
            "-auto-alt-ref",
            "0",
            "-g",
            str(options.get("keyint", 240)),
        ]


FORMAT = VP9()
