"""What an output format is: checks on a spec, a segment writer, and a way to join segments.

A format is one object with no per-job state; the render-chunk stage opens one segment per
chunk with ``open_segment`` and the assembly stage calls ``assemble`` once. Formats that can
be joined by stream copy encode their segments so the join is exact (every segment starts on
a keyframe, no B-frames, identical codec parameters); the others re-encode or move files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

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

Problem = tuple[str, str]
OptionCheck = Callable[[Any], str | None]

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


def int_in(lo: int, hi: int) -> OptionCheck:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return f"must be an integer in {lo}..{hi}, got {value!r}"
        return None

    return check


def one_of(*choices: str) -> OptionCheck:
    def check(value: Any) -> str | None:
        if value not in choices:
            return f"must be one of {', '.join(choices)}, got {value!r}"
        return None

    return check


def _bitrate(value: Any) -> str | None:
    text = str(value)
    digits = text[:-1] if text[-1:] in ("k", "K", "M") else text
    if isinstance(value, bool) or not digits.isdigit() or int(digits) <= 0:
        return f"must be a positive bitrate like 8M or 2500k, got {value!r}"
    return None


def _path_option(value: Any) -> str | None:
    return None if isinstance(value, str) and value else f"must be a path, got {value!r}"


class OutputFormat:
    """The interface every output format implements; subclasses set the class attributes.

    ``options`` is the ``output`` section of a render spec minus the format name: ``path``
    (where the result goes, its extension picks the container), ``audio`` (a file to mux in),
    and the codec options listed in ``option_checks``.
    """

    name: ClassVar[str]
    codec: ClassVar[str]  # the codec name a decoder reports, for describe/verify
    containers: ClassVar[Mapping[str, str]]  # extension -> ffmpeg muxer; the first is default
    chroma: ClassVar[str | None] = None  # "420" or "422": subsampled chroma wants even sizes
    max_side: ClassVar[int] = 8192
    max_fps: ClassVar[float] = 240.0
    input_pix_fmts: ClassVar[tuple[str, ...]] = ("gray", "rgb24")
    can_stream_copy: ClassVar[bool] = True
    audio_codec: ClassVar[str | None] = None
    is_sequence: ClassVar[bool] = False
    option_checks: ClassVar[Mapping[str, OptionCheck]] = {}

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
        """Every reason the format cannot produce this output, as (field, reason) pairs.

        All problems are collected rather than the first raised, so a spec author fixes them
        in one round trip.
        """
        opts = dict(options or {})
        problems: list[Problem] = []
        for field, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append((field, f"must be a positive integer, got {value!r}"))
            elif value > self.max_side:
                problems.append((field, f"{self.name} allows at most {self.max_side}, got {value}"))
        if not problems:
            problems += self._dimension_problems(width, height)
        if not isinstance(fps, int | float) or isinstance(fps, bool) or not fps > 0:
            problems.append(("fps", f"must be positive, got {fps!r}"))
        elif fps > self.max_fps:
            problems.append(("fps", f"{self.name} allows at most {self.max_fps:g} fps, got {fps}"))
        known = {"path", "audio", "pix_fmt_in", *self.option_checks}
        for key, value in opts.items():
            if key not in known:
                problems.append(
                    (f"output.{key}", f"not an option of {self.name} ({', '.join(sorted(known))})")
                )
            elif key in self.option_checks:
                reason = self.option_checks[key](value)
                if reason:
                    problems.append((f"output.{key}", reason))
        if "path" in opts:
            reason = _path_option(opts["path"])
            if reason:
                problems.append(("output.path", reason))
            else:
                problems += self._path_problems(str(opts["path"]))
        if opts.get("audio") is not None and self.audio_codec is None:
            problems.append(("output.audio", f"{self.name} output cannot carry audio"))
        pix_fmt_in = opts.get("pix_fmt_in", "gray")
        if pix_fmt_in not in self.input_pix_fmts:
            takes = ", ".join(self.input_pix_fmts)
            problems.append(
                ("output.pix_fmt_in", f"{self.name} takes {takes} frames, got {pix_fmt_in!r}")
            )
        if "crf" in opts and "bitrate" in opts:
            problems.append(("output.bitrate", "give crf or bitrate, not both"))
        return problems

    def _dimension_problems(self, width: int, height: int) -> list[Problem]:
        sub = {"420": (True, True), "422": (True, False)}.get(self.chroma or "", (False, False))
        pix = {"420": "yuv420p", "422": "yuv422p"}.get(self.chroma or "", "")
        out: list[Problem] = []
        if sub[0] and width % 2:
            out.append(("width", f"{self.name} encodes {pix}, which needs an even width: {width}"))
        if sub[1] and height % 2:
            out.append(
                ("height", f"{self.name} encodes {pix}, which needs an even height: {height}")
            )
        return out

    def _path_problems(self, path: str) -> list[Problem]:
        ext = os.path.splitext(path)[1].lower()
        if ext not in self.containers:
            allowed = ", ".join(self.containers)
            return [
                (
                    "output.path",
                    f"a {ext or 'extensionless'} file cannot hold {self.name}; use {allowed}",
                )
            ]
        return []

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
        raise NotImplementedError

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
        raise NotImplementedError

    def describe(self, path: Path, *, ffmpeg: str) -> dict[str, Any]:
        info = probe_video(path, ffmpeg=ffmpeg)
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

    def encode_args(
        self, width: int, height: int, fps: float, pix_fmt_in: str, options: Mapping[str, Any]
    ) -> list[str]:
        raise NotImplementedError

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
