"""Animated GIF with a palette computed from every frame of the shot.

GIF cannot be joined by stream copy: each file carries its own palette, and a palette per
chunk would make the colours jump at chunk boundaries. So chunks write lossless FFV1
intermediates (one file per chunk, exact pixels, joinable by the concat demuxer, far smaller
and faster than PNG frames), and assembly re-encodes once: ``palettegen`` over all frames,
``paletteuse`` to map them. ffmpeg's fallback without this is a fixed 3-3-2 RGB palette, which
bands grayscale badly.

No alpha: GIF's transparency is one palette entry, all or nothing, so RGBA frames are
composited over ``output.background`` (default black) in numpy before the pipe
(:mod:`workers.media.alpha`) and the intermediates hold the flattened RGB.

The re-encode decodes every intermediate (``-xerror``: a damaged one fails it), and the GIF
it writes is packet-exact: the encoder writes one image per frame (an unchanged frame is a
1x1 image, still one) and the demuxer reads one packet per image. GIF stores no frame rate,
only a delay per frame in 1/100 s, so its rate is not compared; its duration is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from farm.formats import GIF_DITHERS, RULES
from workers.formats.base import OutputFormat, log
from workers.formats.ffv1 import ffv1_args
from workers.media.check import Expected
from workers.media.join import concat_copy
from workers.media.process import temp_sibling, unlink_quietly
from workers.media.writer import PipeWriter

DITHERS = GIF_DITHERS


class GIF(OutputFormat):
    rules = RULES["gif"]
    packet_exact = True  # one image, one packet, per frame (see the module docstring)

    @property
    def segment_suffix(self) -> str:
        return ".mkv"

    def open_segment(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        pix_fmt_in: str,
        frame_numbers: Sequence[int],
        options: Mapping[str, Any] | None = None,
        *,
        ffmpeg: str,
    ) -> PipeWriter:
        opts = {k: v for k, v in (options or {}).items() if k not in ("path", "audio")}
        self.check(width, height, fps, {**opts, "pix_fmt_in": pix_fmt_in})
        path = Path(path)
        encoded = self.encoder_input(pix_fmt_in)
        return PipeWriter(
            path,
            width,
            height,
            fps,
            ffmpeg=ffmpeg,
            pix_fmt_in=pix_fmt_in,
            output_args=[*ffv1_args(encoded), "-fps_mode", "passthrough", "-f", "matroska"],
            tmp_path=temp_sibling(path, ".mkv"),
            expected_frames=len(frame_numbers),
            flatten_over=self.flatten_over(pix_fmt_in, opts),
        )

    def expected_stream(
        self,
        frames: int,
        fps: float,
        width: int | None = None,
        height: int | None = None,
        pix_fmt_in: str | None = None,
    ) -> Expected:
        # The decoder reports palette GIFs as bgra whatever was asked, and the rate it shows
        # is a guess from the first delays (25 for 4/100 s frames at 24 fps).
        want = super().expected_stream(frames, fps, width, height, pix_fmt_in)
        return replace(want, pix_fmt=None, check_rate=False)

    def palette_filter(self, options: Mapping[str, Any]) -> str:
        colors = int(options.get("max_colors", 256))
        dither = str(options.get("dither", "sierra2_4a"))
        return (
            f"[0:v]split[a][b];[a]palettegen=max_colors={colors}:stats_mode=full"
            f":reserve_transparent=0[p];[b][p]paletteuse=dither={dither}:diff_mode=rectangle"
        )

    def assemble_args(self, options: Mapping[str, Any]) -> list[str]:
        return [
            "-filter_complex",
            self.palette_filter(options),
            "-fps_mode",
            "passthrough",
            "-loop",
            str(options.get("loop", 0)),
            "-f",
            "gif",
        ]

    def assemble(
        self,
        segments: Sequence[Path],
        out: Path,
        expected_frames: int,
        fps: float,
        audio: Path | None = None,
        *,
        ffmpeg: str,
        frame_numbers: Sequence[int] | None = None,
        options: Mapping[str, Any] | None = None,
        width: int | None = None,
        height: int | None = None,
        pix_fmt_in: str | None = None,
    ) -> Path:
        self._refuse_audio(audio)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        log.info(
            "gif cannot be joined by stream copy: re-encoding %d segments of %d frames once, "
            "with one palette from all frames, into %s",
            len(segments),
            expected_frames,
            out.name,
        )
        method = self.verification(options)
        tmp = temp_sibling(out)
        try:
            concat_copy(
                segments,
                tmp,
                ffmpeg=ffmpeg,
                output_args=self.assemble_args(options or {}),
                what=f"re-encoding {len(segments)} segments into {out.name} with a palette",
            )
            self.verify(
                tmp, ffmpeg=ffmpeg, expected_frames=expected_frames, fps=fps, width=width,
                height=height, pix_fmt_in=pix_fmt_in, method=method, label=out.name,
            )  # fmt: skip
            os.replace(tmp, out)
        finally:
            unlink_quietly(tmp)
        return out


FORMAT = GIF()
