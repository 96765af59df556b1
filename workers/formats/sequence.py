"""Image sequences: one file per frame, named by a path template with the job's frame numbers.

``shots/sh010/sh010.####.png`` or ``shots/sh010/sh010.%04d.png``: the placeholder's width is
the minimum number of digits (``####`` and ``%04d`` pad to four, ``#`` and ``%d`` do not pad),
and numbers that need more digits get them. Frame numbers are the job's own (1001-1100, or
every second one for ``x2``), never a count from 1.

A chunk runs one ffmpeg for all its frames (one process per frame costs tens of
milliseconds each) writing ``f000000000.png``, ``f000000001.png``... into a hidden folder,
because the image2 muxer can only number consecutively and a stepped or listed range is not
consecutive. When ffmpeg succeeds each file is renamed to its real frame number, and the
folder is renamed to the segment's name: a chunk's frames appear all at once or not at all.
Assembly moves the frames into the template's folder and checks that exactly the expected
names exist and that each is a whole PNG of the asked-for size and layout, by its first and
last bytes (:mod:`workers.media.stills`); ``verify: decode`` decodes every frame as well.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from farm.formats import parse_template
from workers.formats.base import OutputFormat
from workers.formats.verification import Verification
from workers.media.join import concat_quote
from workers.media.probe import probe_video
from workers.media.process import STDERR_TAIL_CHARS, EncodeError, run_ffmpeg
from workers.media.stills import PNG_LAYOUTS, PngLayout, png_problem, read_ends
from workers.media.writer import PipeWriter

_TEMP_PATTERN = "f%09d"


def frame_name(template: str, number: int) -> str:
    """The path of frame ``number`` under ``template`` (the folder part kept as written)."""
    prefix, pad, suffix = parse_template(template)
    sign = "-" if number < 0 else ""
    return f"{prefix}{sign}{abs(number):0{pad}d}{suffix}"


def frame_regex(template: str) -> re.Pattern[str]:
    """Matches the file names (no folder) a template can produce, capturing the number."""
    prefix, _, suffix = parse_template(template)
    base = os.path.basename(prefix)
    return re.compile(rf"^{re.escape(base)}(-?\d+){re.escape(suffix)}$")


class SequenceWriter(PipeWriter):
    """One chunk of an image sequence: a folder of frames named by their frame numbers."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        ffmpeg: str,
        pix_fmt_in: str,
        output_args: Sequence[str],
        names: Sequence[str],
        widen: bool,
    ) -> None:
        path = Path(path)
        self.staging = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        super().__init__(
            path,
            width,
            height,
            fps,
            ffmpeg=ffmpeg,
            pix_fmt_in=pix_fmt_in,
            output_args=output_args,
            widen=widen,
            tmp_path=self.staging / f"{_TEMP_PATTERN}.png",
            expected_frames=len(names),
        )
        self.names = list(names)

    def _prepare(self) -> None:
        self.staging.mkdir(parents=True)

    def _commit(self) -> None:
        written = sorted(p.name for p in self.staging.iterdir())
        wanted = [f"{_TEMP_PATTERN % i}.png" for i in range(self.frames_written)]
        if written != wanted:
            raise EncodeError(
                f"{self.path.name}: wrote {self.frames_written} frames but ffmpeg produced "
                f"{len(written)} files",
                self.stderr_tail(),
            )
        for temp, name in zip(wanted, self.names, strict=True):
            os.replace(self.staging / temp, self.staging / name)
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self.staging, self.path)

    def _discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class SequenceFormat(OutputFormat):
    """Image sequences; subclasses choose the codec and the stored pixel formats."""

    widen: ClassVar[bool] = False
    stored_pix_fmt: ClassVar[Mapping[str, str]] = {}

    @property
    def segment_suffix(self) -> str:
        return ""

    def encode_args(self, pix_fmt_in: str, options: Mapping[str, Any]) -> list[str]:
        return [
            "-c:v",
            self.codec,
            "-pix_fmt",
            self.stored_pix_fmt[pix_fmt_in],
            "-compression_level",
            str(options.get("compression_level", 3)),
            "-fps_mode",
            "passthrough",
            "-start_number",
            "0",
            "-f",
            "image2",
        ]

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
        """``options["path"]`` (the template) is required: it names the frames in the chunk."""
        opts = dict(options or {})
        if "path" not in opts:
            raise ValueError(f"{self.name} needs options['path'], the sequence's path template")
        self.check(width, height, fps, {**opts, "pix_fmt_in": pix_fmt_in})
        if len(set(frame_numbers)) != len(frame_numbers):
            raise ValueError("frame_numbers has duplicates; each frame needs its own file")
        names = [os.path.basename(frame_name(str(opts["path"]), n)) for n in frame_numbers]
        return SequenceWriter(
            Path(path),
            width,
            height,
            fps,
            ffmpeg=ffmpeg,
            pix_fmt_in=pix_fmt_in,
            output_args=self.encode_args(pix_fmt_in, opts),
            names=names,
            widen=self.widen,
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
        """Move every chunk's frames into the template's folder; check the set is exact.

        Runs again safely: frames already moved are found in place. Frames of this template
        that the job did not render (a previous, longer render) are refused before anything
        moves, because a sequence with stray frames is not the shot that was asked for.
        """
        self._refuse_audio(audio)
        if frame_numbers is None:
            raise ValueError(f"{self.name} assembly needs the job's frame_numbers")
        if len(frame_numbers) != expected_frames:
            raise ValueError(
                f"{len(frame_numbers)} frame numbers for {expected_frames} expected frames"
            )
        template = str(out)
        folder = Path(template).parent
        folder.mkdir(parents=True, exist_ok=True)
        expected = [os.path.basename(frame_name(template, n)) for n in frame_numbers]
        wanted = set(expected)
        pattern = frame_regex(template)
        stray = sorted(p.name for p in folder.iterdir() if pattern.match(p.name))
        stray = [n for n in stray if n not in wanted]
        if stray:
            raise EncodeError(
                f"{folder} already holds {len(stray)} frames this job does not render "
                f"(e.g. {stray[0]}); remove them or render to another folder"
            )
        for seg in segments:
            seg = Path(seg)
            if not seg.is_dir():
                raise EncodeError(f"segment {seg} does not exist")
            for item in seg.iterdir():
                if item.name not in wanted:
                    raise EncodeError(f"segment {seg.name} holds an unexpected file {item.name}")
        for seg in segments:
            for item in sorted(Path(seg).iterdir()):
                os.replace(item, folder / item.name)
        self.verify(
            out, ffmpeg=ffmpeg, expected_frames=expected_frames, fps=fps, names=expected,
            width=width, height=height, pix_fmt_in=pix_fmt_in, method=self.verification(options),
        )  # fmt: skip
        return Path(out)

    def frame_files(self, template: Path) -> list[Path]:
        """The frames of ``template`` on disk, in frame-number order."""
        folder = Path(template).parent
        if not folder.is_dir():
            return []
        pattern = frame_regex(str(template))
        found = []
        for p in folder.iterdir():
            m = pattern.match(p.name)
            if m is not None:
                found.append((int(m.group(1)), p))
        return [p for _, p in sorted(found)]

    def png_layout(
        self, width: int | None, height: int | None, pix_fmt_in: str | None
    ) -> PngLayout:
        """What each frame's header must say; without the input's pixel format, only what
        every input of this format shares (png16 is always 16-bit)."""
        stored = [self.stored_pix_fmt[pix_fmt_in]] if pix_fmt_in else self.stored_pix_fmt.values()
        depths = {PNG_LAYOUTS[p][0] for p in stored}
        colors = {PNG_LAYOUTS[p][1] for p in stored}
        return PngLayout(width, height, _only(depths), _only(colors))

    def verify(
        self,
        path: Path,
        *,
        ffmpeg: str,
        expected_frames: int,
        fps: float,
        names: Sequence[str] | None = None,
        width: int | None = None,
        height: int | None = None,
        pix_fmt_in: str | None = None,
        method: Verification | None = None,
        label: str | None = None,
    ) -> tuple[int, float]:
        """The exact set of frame files (``names`` when given), then each file by its bytes
        (``files``, the default) or every frame decoded (``decode``). Errors name the
        frames themselves, so ``label`` is not needed."""
        files = self.frame_files(path)
        problems = name_problems([p.name for p in files], names, expected_frames)
        if problems:
            raise EncodeError(f"{Path(path).parent}: {'; '.join(problems)}")
        if (method or self.verification()) == "decode":
            decoded = decode_count(files, ffmpeg=ffmpeg)
            if decoded != expected_frames:
                raise EncodeError(f"only {decoded} of {expected_frames} frames decode")
            return decoded, decoded / fps
        layout = self.png_layout(width, height, pix_fmt_in)
        for f in files:
            problem = png_problem(*read_ends(f), layout)
            if problem is not None:
                raise EncodeError(f"frame {f.name} {problem}")
        return len(files), len(files) / fps

    def describe(
        self, path: Path, *, ffmpeg: str, counted: tuple[int, float] | None = None
    ) -> dict[str, Any]:
        files = self.frame_files(path)
        if not files:
            raise EncodeError(f"no frames of {path} exist")
        first = probe_still(files[0], ffmpeg=ffmpeg)
        return {
            "format": self.name,
            "codec": self.codec,
            "path": str(path),
            "folder": str(Path(path).parent),
            "first": files[0].name,
            "last": files[-1].name,
            "frames": len(files),
            "width": first["width"],
            "height": first["height"],
            "size": sum(p.stat().st_size for p in files),
        }


def _only(values: set[int]) -> int | None:
    return next(iter(values)) if len(values) == 1 else None


def name_problems(
    found: Sequence[str], expected: Sequence[str] | None, expected_frames: int
) -> list[str]:
    """How the frame files ``found`` differ from the ``expected`` names (or, without names,
    from the expected count): missing frames, then the count."""
    problems = []
    if expected is not None:
        have = set(found)
        missing = [n for n in expected if n not in have]
        if missing:
            problems.append(f"{len(missing)} frames are missing (e.g. {missing[0]})")
    if len(found) != expected_frames:
        problems.append(f"holds {len(found)} frames, expected {expected_frames}")
    return problems


def concat_listing(files: Sequence[Path], listing: Path) -> None:
    lines = ["ffconcat version 1.0", *(f"file {concat_quote(Path(f).resolve())}" for f in files)]
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")


def decode_count(files: Sequence[Path], *, ffmpeg: str) -> int:
    """Decode every file (one concat input) and count the frames that came out; a decoding
    error fails the count (a PNG decoder conceals a cut-off frame and carries on)."""
    if not files:
        return 0
    folder = Path(files[0]).parent
    listing = folder / f".decode-{os.getpid()}-{secrets.token_hex(4)}.ffconcat"
    try:
        concat_listing(files, listing)
        stdout, stderr = run_ffmpeg(
            [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error",
             "-xerror", "-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v:0",
             "-fps_mode", "passthrough", "-f", "null", "-progress", "pipe:1", "-"],
            f"decoding {len(files)} frames in {folder}",
            strict=True,
        )  # fmt: skip
    finally:
        listing.unlink(missing_ok=True)
    counts = re.findall(r"^frame=(\d+)$", stdout, re.MULTILINE)
    if not counts:
        raise EncodeError(
            f"ffmpeg reported no frame count for {folder}", stderr[-STDERR_TAIL_CHARS:]
        )
    return int(counts[-1])


def probe_still(path: Path, *, ffmpeg: str) -> dict[str, Any]:
    info = probe_video(path, ffmpeg=ffmpeg)
    return {"width": info["width"], "height": info["height"], "codec": info["codec"]}
