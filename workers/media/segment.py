"""The plain H.264 segment writer, with its arguments built by ffmpeg-python.

The output formats (``workers/formats/``) build their own :class:`PipeWriter`; this one stays
for the benches and the encode tests, which pin the exact H.264 command.
"""

from __future__ import annotations

from pathlib import Path

import ffmpeg as ffmpeg_python

from workers.media.process import GLOBAL_ARGS
from workers.media.timebase import timescale
from workers.media.writer import PipeWriter

__all__ = ["SegmentWriter"]


class SegmentWriter(PipeWriter):
    """Pipe raw grayscale frames into ffmpeg and produce one H.264 MP4 segment.

    Encoding choices exist for the later stream-copy concat: identical codec settings for all
    segments (so the first segment's SPS/PPS describe every segment), no B-frames (so PTS equals
    DTS, there is no edit list or composition offset, and each segment's duration is exactly
    frames x frame duration, which is where the concat demuxer starts the next file), a fixed
    track timescale in which a frame is a whole number of ticks, and passthrough frame timing
    so ffmpeg never duplicates or drops a frame. x264 opens every stream with an IDR frame, so
    each segment decodes on its own and after a cut.

    The output is written under a hidden temporary name and only renamed into place after the
    frame count has been checked, so a crashed or half-written segment never carries the final
    name.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        ffmpeg: str,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(
                f"width and height must be positive and even for yuv420p: {width}x{height}"
            )
        super().__init__(path, width, height, fps, ffmpeg=ffmpeg, pix_fmt_in="gray")
        self.crf = crf
        self.preset = preset

    def command(self) -> list[str]:
        """The full ffmpeg argument list, exposed so the exact encode can be logged or tested."""
        stream = ffmpeg_python.input(
            "pipe:",
            format="rawvideo",
            pix_fmt="gray",
            s=f"{self.width}x{self.height}",
            framerate=f"{self.rate.numerator}/{self.rate.denominator}",
        ).output(
            str(self.tmp_path),
            format="mp4",
            vcodec="libx264",
            pix_fmt="yuv420p",
            crf=self.crf,
            preset=self.preset,
            bf=0,
            fps_mode="passthrough",
            video_track_timescale=timescale(self.rate),
            movflags="+faststart",
            map_metadata=-1,
        )
        args: list[str] = ffmpeg_python.get_args(stream, overwrite_output=True)
        return [self.ffmpeg, *GLOBAL_ARGS, "-loglevel", "warning", *args]
