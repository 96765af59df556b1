"""What an output format is: checks on a spec, a segment writer, and a way to join segments.

A format is one object with no per-job state; the render-chunk stage opens one segment per
chunk with ``open_segment`` and the assembly stage calls ``assemble`` once. Formats that can
be joined by stream copy encode their segments so the join is exact (every segment starts on
a keyframe, no B-frames, identical codec parameters); the others re-encode or move files.
The result is checked before it takes its final name (see :mod:`workers.formats.verification`
for which check); a job of one segment in the output's container takes that segment as its
output, with no join.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from farm.formats import (
    ALPHA_PIX_FMTS,
    FormatRules,
    OptionCheck,
    Problem,
    bitrate,
    int_in,
    one_of,
    parse_colour,
)
from workers.formats.verification import Verification, adopts_segment, choose_verification
from workers.media.check import Expected, Method, verify_video
from workers.media.join import concat_copy
from workers.media.probe import probe_video
from workers.media.process import EncodeError, temp_sibling, unlink_quietly
from workers.media.timebase import rate, timescale
from workers.media.writer import PipeWriter

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
    # True where this format's encoder settings make one packet one shown frame in every
    # output (no frames hidden in or split over packets): counting packets is then counting
    # frames, and assembly checks without decoding. Each module sets it and says why it
    # holds; a new format is decoded until it does.
    packet_exact: ClassVar[bool] = False

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

    def encoder_input(self, pix_fmt_in: str) -> str:
        """The pixel format ffmpeg reads for ``pix_fmt_in`` frames: RGBA is flattened to RGB
        before the pipe where the format cannot store alpha (``keeps_alpha`` in its rules)."""
        if pix_fmt_in in ALPHA_PIX_FMTS and not self.keeps_alpha:
            return "rgb24" if pix_fmt_in == "rgba" else "rgb48le"
        return pix_fmt_in

    def flatten_over(
        self, pix_fmt_in: str, options: Mapping[str, Any]
    ) -> tuple[int, int, int] | None:
        """The colour RGBA frames are composited over (``output.background``, else black),
        or ``None`` where the frames keep their alpha (or have none)."""
        if self.encoder_input(pix_fmt_in) == pix_fmt_in:
            return None
        return parse_colour(str(options.get("background", "#000000")))

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
        width: int | None = None,
        height: int | None = None,
        pix_fmt_in: str | None = None,
    ) -> Path:
        """Join ``segments`` into ``out`` and check it against the frames, the rate and
        (where given) the size and input pixel format it was rendered with; nothing has the
        final name until the check passes. Each format module implements this."""

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

    def verification(self, options: Mapping[str, Any] | None = None) -> Verification:
        """The check assembly runs: the output's ``verify`` option within what is exact."""
        asked = (options or {}).get("verify")
        return choose_verification(
            packet_exact=self.packet_exact, is_sequence=self.is_sequence, asked=asked
        )

    def stored_pix_fmt_for(self, pix_fmt_in: str | None) -> str | None:
        """The pixel format a decoder reports for an output of ``pix_fmt_in`` frames
        (``None``: not checked, or not known without the input's)."""
        return None

    def expected_stream(
        self,
        frames: int,
        fps: float,
        width: int | None = None,
        height: int | None = None,
        pix_fmt_in: str | None = None,
    ) -> Expected:
        """What a finished output of these frames must read as."""
        return Expected(
            frames=frames,
            fps=fps,
            codec=self.codec,
            width=width,
            height=height,
            pix_fmt=self.stored_pix_fmt_for(pix_fmt_in),
        )

    def verify(
        self,
        path: Path,
        *,
        ffmpeg: str,
        expected_frames: int,
        fps: float,
        width: int | None = None,
        height: int | None = None,
        pix_fmt_in: str | None = None,
        method: Verification | None = None,
        label: str | None = None,
    ) -> tuple[int, float]:
        """Raise EncodeError unless ``path`` holds ``expected_frames`` frames lasting
        frames / fps within one frame, with the codec (and size and pixel format, where
        given) asked for. ``method`` defaults to the format's own (:meth:`verification`);
        ``label`` names the file in errors."""
        chosen = method or self.verification()
        how: Method = "packets" if chosen != "decode" and self.packet_exact else "decode"
        want = self.expected_stream(expected_frames, fps, width, height, pix_fmt_in)
        return verify_video(
            path, ffmpeg=ffmpeg, expected_frames=expected_frames, fps=fps, method=how,
            expected=want, label=label,
        )  # fmt: skip

    def _refuse_audio(self, audio: Path | None) -> None:
        if audio is not None and self.audio_codec is None:
            raise EncodeError(f"{self.name} output cannot carry audio; refusing to mux {audio}")


class VideoFormat(OutputFormat):
    """A single-file video whose segments are joined by stream copy.

    Subclasses give ``encode_args``: the codec arguments with the GOP and B-frame settings
    that make their segments joinable.
    """

    pix_fmt: ClassVar[str] = "yuv420p"
    # What frames with alpha are encoded as, where the codec stores alpha (ProRes 4444, VP9).
    alpha_pix_fmt: ClassVar[str | None] = None
    color_tags: ClassVar[bool] = True

    def pix_fmt_for(self, pix_fmt_in: str) -> str:
        """The pixel format the encoder is given: ``alpha_pix_fmt`` for frames with alpha,
        else ``pix_fmt``, to which every input is converted."""
        if self.alpha_pix_fmt is not None and pix_fmt_in in ALPHA_PIX_FMTS:
            return self.alpha_pix_fmt
        return self.pix_fmt

    def stored_pix_fmt_for(self, pix_fmt_in: str | None) -> str | None:
        return self.pix_fmt if pix_fmt_in is None else self.pix_fmt_for(pix_fmt_in)

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
            fmt = self.pix_fmt_for(pix_fmt_in)
            scale = f"scale=out_color_matrix=bt709:out_range=tv,format={fmt}"
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
                str(timescale(rate(fps))),
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
        opts.pop("verify", None)
        over = self.flatten_over(pix_fmt_in, opts)
        opts.pop("background", None)
        path = Path(path)
        encoded = self.encoder_input(pix_fmt_in)
        return PipeWriter(
            path,
            width,
            height,
            fps,
            ffmpeg=ffmpeg,
            pix_fmt_in=pix_fmt_in,
            output_args=self.output_args(path, width, height, fps, encoded, opts),
            expected_frames=len(frame_numbers),
            flatten_over=over,
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
        width: int | None = None,
        height: int | None = None,
        pix_fmt_in: str | None = None,
    ) -> Path:
        """Join by stream copy (or take the one segment as it is), check the result, mux
        audio, then rename into place."""
        self._refuse_audio(audio)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        method = self.verification(options)
        tmp = temp_sibling(out)
        try:
            if not self._adopt(segments, tmp, out, audio):
                concat_copy(
                    segments,
                    tmp,
                    ffmpeg=ffmpeg,
                    output_args=["-map", "0:v:0", "-c", "copy", *self._mux_args(out, fps)],
                )
            self.verify(
                tmp, ffmpeg=ffmpeg, expected_frames=expected_frames, fps=fps, width=width,
                height=height, pix_fmt_in=pix_fmt_in, method=method, label=out.name,
            )  # fmt: skip
            if audio is not None:
                from workers.audio import mux_audio

                mux_audio(tmp, audio, out, fmt=self, ffmpeg=ffmpeg, frames=expected_frames, fps=fps)
            else:
                os.replace(tmp, out)
        finally:
            unlink_quietly(tmp)
        return out

    def _adopt(self, segments: Sequence[Path], tmp: Path, out: Path, audio: Path | None) -> bool:
        """Give a lone segment that already is the output a second name, ``tmp``.

        A hard link rather than a rename: the output shares the segment's bytes (no copy)
        while the segment keeps its own name until assembly's success is committed, so an
        assembly that runs again after its worker died still finds it. Segments live under
        the output root's ``.segments/``, on the output's filesystem; where a link is refused
        anyway (a filesystem without them) the segment is copied by the concat as before.
        """
        if not segments or not adopts_segment(
            len(segments),
            self.muxer_for(segments[0]),
            self.muxer_for(out),
            has_audio=audio is not None,
        ):
            return False
        segment = Path(segments[0])
        if not segment.is_file():
            raise EncodeError(f"segment {segment} does not exist")
        try:
            os.link(segment, tmp)
        except OSError as e:
            log.info("cannot link %s into place (%s): joining by stream copy", segment.name, e)
            return False
        log.info("one segment: %s becomes %s as it is, no concat", segment.name, out.name)
        return True
