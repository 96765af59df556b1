"""What an output format is: checks on a spec, a segment writer, and a way to join segments.

A format is one object with no per-job state; the render-chunk stage opens one segment per
chunk with ``open_segment`` and the assembly stage calls ``assemble`` once. Formats that can
be joined by stream copy encode their segments so the join is exact (every segment starts on
a keyframe, no B-frames, identical codec parameters); the others re-encode or move files.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from farm.formats import FormatRules, OptionCheck, Problem, bitrate, int_in, one_of
from workers.encode import (
    EncodeError,
    PipeWriter,
    _rate,
    _temp_sibling,
    _timescale,
    _unlink_quietly,
    concat_copy,
    probe_video,
    verify_video,
)

log = logging.getLogger(__name__)

_bitrate = bitrate

__all__ = [
    "OptionCheck",
    "OutputFormat",
    "Problem",
    "VideoFormat",
    "int_in",
    "one_of",
]

_BT709 = [
    "-colorspace",
    "bt709",
    "-color_primaries",
    "bt709",
    "-color_trc",
    "bt709",
    "-color_range",
    "tv",
]


class OutputFormat(ABC):
    """The interface every output format implements; subclasses set the class attributes.

    ``options`` is the ``output`` section of a render spec minus the format name: ``path``
    (where the result goes, its extension picks the container), ``audio`` (a file to mux in),
    and the codec options listed in ``option_checks``.
    """

    # What the control plane checks at submission; the worker reads the same rules.
    rules: ClassVar[FormatRules]

    def __getattr__(self, attr: str) -> Any:
        # name, codec, containers, chroma, limits, options... come from the shared rules.
        if attr == "rules":
            raise AttributeError(attr)
        return getattr(self.rules, attr)

    @property
    def extension(self) -> str:
        return next(iter(self.containers))

    @property
    def container(self) -> str:
        return self.containers[self.extension]

    @property
    def segment_suffix(self) -> str:
        """The suffix of a chunk's segment (a directory for sequences: ``""``)."""
        return self.extension

    def __repr__(self) -> str:
        return f"<OutputFormat {self.name}>"

    def validate(
        self, width: int, height: int, fps: float, options: Mapping[str, Any] | None = None
    ) -> list[Problem]:
        """Every reason the format cannot produce this output, as (field, reason) pairs."""
        return self.rules.validate(width, height, fps, options)

    def check(
        self, width: int, height: int, fps: float, options: Mapping[str, Any] | None = None
    ) -> None:
        """``validate`` that raises ValueError naming every problem."""
        problems = self.validate(width, height, fps, options)
        if problems:
            text = "; ".join(f"{field}: {reason}" for field, reason in problems)
            raise ValueError(f"invalid {self.name} output: {text}")

    def muxer_for(self, path: Path) -> str:
        return self.containers.get(Path(path).suffix.lower(), self.container)

    @abstractmethod
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
        """Each format module implements this."""

    @abstractmethod
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
    ) -> Path:
        """Each format module implements this."""

    def describe(
        self, path: Path, *, ffmpeg: str, counted: tuple[int, float] | None = None
    ) -> dict[str, Any]:
        info = probe_video(path, ffmpeg=ffmpeg, counted=counted)
        info.update(
            format=self.name,
            container=self.muxer_for(path),
            size=Path(path).stat().st_size,
            path=str(path),
        )
        return info

    def verify(
        self, path: Path, *, ffmpeg: str, expected_frames: int, fps: float
    ) -> tuple[int, float]:
        return verify_video(path, ffmpeg=ffmpeg, expected_frames=expected_frames, fps=fps)

    def _refuse_audio(self, audio: Path | None) -> None:
        if audio is not None and self.audio_codec is None:
            raise EncodeError(f"{self.name} output cannot carry audio; refusing to mux {audio}")


class VideoFormat(OutputFormat):
    """A single-file video whose segments are joined by stream copy.

    Subclasses give ``encode_args``: the codec arguments with the GOP and B-frame settings
    that make their segments joinable.
    """

    pix_fmt: ClassVar[str] = "yuv420p"
    color_tags: ClassVar[bool] = True

    @abstractmethod
    def encode_args(
        self, width: int, height: int, fps: float, pix_fmt_in: str, options: Mapping[str, Any]
    ) -> list[str]:
        """Each format module implements this."""

    def output_args(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        pix_fmt_in: str,
        options: Mapping[str, Any],
    ) -> list[str]:
        args = self.encode_args(width, height, fps, pix_fmt_in, options)
        if self.color_tags:
            scale = f"scale=out_color_matrix=bt709:out_range=tv,format={self.pix_fmt}"
            args = ["-vf", scale, *args, *_BT709]
        return [
            *args,
            "-fps_mode",
            "passthrough",
            "-map_metadata",
            "-1",
            *self._mux_args(path, fps),
        ]

    def _mux_args(self, path: Path, fps: float) -> list[str]:
        muxer = self.muxer_for(path)
        args = ["-f", muxer]
        if muxer in ("mp4", "mov"):
            args += [
                "-video_track_timescale",
                str(_timescale(_rate(fps))),
                "-movflags",
                "+faststart",
            ]
        return args

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
        opts.pop("pix_fmt_in", None)
        path = Path(path)
        return PipeWriter(
            path,
            width,
            height,
            fps,
            ffmpeg=ffmpeg,
            pix_fmt_in=pix_fmt_in,
            output_args=self.output_args(path, width, height, fps, pix_fmt_in, opts),
            expected_frames=len(frame_numbers),
        )

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
    ) -> Path:
        """Join by stream copy, decode the result to check it, mux audio, then rename."""
        self._refuse_audio(audio)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_sibling(out)
        try:
            concat_copy(
                segments,
                tmp,
                ffmpeg=ffmpeg,
                output_args=["-map", "0:v:0", "-c", "copy", *self._mux_args(out, fps)],
            )
            self.verify(tmp, ffmpeg=ffmpeg, expected_frames=expected_frames, fps=fps)
            if audio is not None:
                from workers.audio import mux_audio

                mux_audio(tmp, audio, out, fmt=self, ffmpeg=ffmpeg, frames=expected_frames, fps=fps)
            else:
                os.replace(tmp, out)
        finally:
            _unlink_quietly(tmp)
        return out
