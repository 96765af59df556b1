"""The output formats the farm can write, as rules the control plane checks at submission.

The encoders live in ``workers/formats/`` (one module per format); this module holds only
what a submission must know to refuse an impossible output before anything is recorded:
containers, chroma subsampling, limits, options and their checks, sequence templates.
Pure, and importable without torch or ffmpeg.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Problem = tuple[str, str]
OptionCheck = Callable[[Any], str | None]


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


def bitrate(value: Any) -> str | None:
    text = str(value)
    digits = text[:-1] if text[-1:] in ("k", "K", "M") else text
    if isinstance(value, bool) or not digits.isdigit() or int(digits) <= 0:
        return f"must be a positive bitrate like 8M or 2500k, got {value!r}"
    return None


_HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def parse_colour(text: str) -> tuple[int, int, int]:
    """``#rgb`` or ``#rrggbb`` as an (r, g, b) triple of 0..255 (``#fa0`` is ``#ffaa00``).

    Here, not in the workers, so that submission refuses a bad ``background`` with the same
    parser the encoder later uses."""
    if not isinstance(text, str) or not _HEX_COLOUR.fullmatch(text):
        raise ValueError(f"must be a colour like #rrggbb or #rgb, got {text!r}")
    digits = text[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return r, g, b


def colour(value: Any) -> str | None:
    try:
        parse_colour(value)
    except ValueError as e:
        return str(e)
    return None


def path_option(value: Any) -> str | None:
    return None if isinstance(value, str) and value else f"must be a path, got {value!r}"


_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%(0\d+)?d")
_ANY_PRINTF = re.compile(r"%[-+ #0]*\d*[a-zA-Z]")


class TemplateError(ValueError):
    """A sequence path template that cannot name frames."""


def parse_template(template: str) -> tuple[str, int, str]:
    """Split a template's file name into (prefix, padding, suffix); the folder stays in prefix.

    The placeholder must be in the file name, exactly once: a frame number in a folder name
    would scatter one shot over many folders.
    """
    folder, name = os.path.split(template)
    if "#" in folder or "%" in folder:
        raise TemplateError(
            f"the frame placeholder must be in the file name, not the folder: {template!r}"
        )
    hashes = list(_HASHES.finditer(name))
    printfs = list(_PRINTF.finditer(name))
    others = [m for m in _ANY_PRINTF.finditer(name) if not _PRINTF.fullmatch(m.group())]
    if others:
        raise TemplateError(
            f"unsupported placeholder {others[0].group()!r} in {template!r}: use #### or %04d"
        )
    found = hashes + printfs
    if not found:
        raise TemplateError(
            f"{template!r} has no frame placeholder: add #### or %04d to the file name"
        )
    if len(found) > 1:
        raise TemplateError(f"{template!r} has {len(found)} frame placeholders; use exactly one")
    m = found[0]
    pad = int(m.group(1) or 1) if m.group().startswith("%") else len(m.group())
    prefix = os.path.join(folder, name[: m.start()]) if folder else name[: m.start()]
    return prefix, pad, name[m.end() :]


X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow",
)  # fmt: skip
GIF_DITHERS = ("sierra2_4a", "floyd_steinberg", "bayer", "none")
# How assembly checks a finished output (``output.verify``): ``packets`` (the default) counts
# frames from the container without decoding them and compares the stream's parameters;
# ``decode`` decodes every frame instead. Sequences check their files' bytes, or decode them.
VERIFY_METHODS = ("packets", "decode")
_verify = one_of(*VERIFY_METHODS)
# Input pixel formats: (B, H, W) gray, (B, H, W, 3) RGB, (B, H, W, 4) RGBA with straight alpha.
_8_BIT_PIX = ("gray", "rgb24", "rgba")
_ALL_PIX = (*_8_BIT_PIX, "gray16le", "rgb48le", "rgba64le")
# Frames with alpha; a format that cannot store it composites them over ``background``.
ALPHA_PIX_FMTS = ("rgba", "rgba64le")


@dataclass(frozen=True)
class FormatRules:
    name: str
    codec: str  # the codec name a decoder reports
    containers: Mapping[str, str]  # extension -> ffmpeg muxer; the first is the default
    chroma: str | None = None  # "420" or "422": subsampled chroma wants even sizes
    max_side: int = 8192
    max_fps: float = 240.0
    input_pix_fmts: tuple[str, ...] = _8_BIT_PIX
    # Whether the stored stream can hold alpha; the others flatten RGBA over ``background``.
    keeps_alpha: bool = False
    can_stream_copy: bool = True
    audio_codec: str | None = None
    is_sequence: bool = False
    option_checks: Mapping[str, OptionCheck] = field(default_factory=dict)

    @property
    def extension(self) -> str:
        return next(iter(self.containers))

    def validate(
        self, width: int, height: int, fps: float, options: Mapping[str, Any] | None = None
    ) -> list[Problem]:
        """Every reason this format cannot produce the output, as (field, reason) pairs, so a
        spec author fixes them all in one round trip."""
        opts = dict(options or {})
        problems: list[Problem] = []
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                problems.append((name, f"must be a positive integer, got {value!r}"))
            elif value > self.max_side:
                problems.append((name, f"{self.name} allows at most {self.max_side}, got {value}"))
        if not problems:
            problems += self._dimension_problems(width, height)
        if not isinstance(fps, int | float) or isinstance(fps, bool) or not fps > 0:
            problems.append(("fps", f"must be positive, got {fps!r}"))
        elif fps > self.max_fps:
            problems.append(("fps", f"{self.name} allows at most {self.max_fps:g} fps, got {fps}"))
        known = {"path", "audio", "pix_fmt_in", "verify", *self.option_checks}
        if not self.keeps_alpha:
            known.add("background")
        for key, value in opts.items():
            if key == "background" and self.keeps_alpha:
                problems.append(
                    (
                        "output.background",
                        f"{self.name} keeps alpha, so it composites over no background; "
                        "only formats that flatten alpha (h264, h265, gif) take one",
                    )
                )
            elif key not in known:
                problems.append(
                    (f"output.{key}", f"not an option of {self.name} ({', '.join(sorted(known))})")
                )
            elif key in self.option_checks:
                reason = self.option_checks[key](value)
                if reason:
                    problems.append((f"output.{key}", reason))
        if "path" in opts:
            reason = path_option(opts["path"])
            if reason:
                problems.append(("output.path", reason))
            else:
                problems += self._path_problems(str(opts["path"]))
        if "verify" in opts:
            reason = _verify(opts["verify"])
            if reason:
                problems.append(("output.verify", reason))
        if "background" in opts and not self.keeps_alpha:
            reason = colour(opts["background"])
            if reason:
                problems.append(("output.background", reason))
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
            where = ext or "extensionless"
            return [("output.path", f"a {where} file cannot hold {self.name}; use {allowed}")]
        if self.is_sequence:
            try:
                parse_template(path)
            except TemplateError as e:
                return [("output.path", str(e))]
        return []


_X26X = {
    "crf": int_in(0, 51),
    "bitrate": bitrate,
    "preset": one_of(*X264_PRESETS),
    "keyint": int_in(1, 1000),
}
_MP4ISH = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
RULES: dict[str, FormatRules] = {
    r.name: r
    for r in (
        FormatRules("h264", "h264", _MP4ISH, chroma="420", audio_codec="aac", option_checks=_X26X),
        FormatRules("h265", "hevc", _MP4ISH, chroma="420", audio_codec="aac", option_checks=_X26X),
        FormatRules(
            "vp9", "vp9", {".webm": "webm", ".mkv": "matroska"}, chroma="420",
            audio_codec="libopus",
            keeps_alpha=True,
            option_checks={"crf": int_in(0, 63), "bitrate": bitrate, "speed": int_in(0, 8),
                           "keyint": int_in(1, 1000)},
        ),
        FormatRules("prores", "prores", {".mov": "mov"}, chroma="422", input_pix_fmts=_ALL_PIX,
                    audio_codec="aac", keeps_alpha=True),
        # GIF: a larger one is a mistake; delays are in 1/100 s, players stretch short ones.
        FormatRules(
            "gif", "gif", {".gif": "gif"}, max_side=1920, max_fps=50.0, can_stream_copy=False,
            option_checks={"dither": one_of(*GIF_DITHERS), "max_colors": int_in(2, 256),
                           "loop": int_in(-1, 65535)},
        ),
        FormatRules("png8", "png", {".png": "image2"}, can_stream_copy=False, is_sequence=True,
                    keeps_alpha=True, option_checks={"compression_level": int_in(0, 9)}),
        FormatRules("png16", "png", {".png": "image2"}, input_pix_fmts=_ALL_PIX,
                    can_stream_copy=False, is_sequence=True, keeps_alpha=True,
                    option_checks={"compression_level": int_in(0, 9)}),
        FormatRules("ffv1", "ffv1", {".mkv": "matroska"}, input_pix_fmts=_ALL_PIX,
                    keeps_alpha=True),
    )
}  # fmt: skip


class UnknownFormat(ValueError):
    """A format name that no module provides."""


def known_formats() -> list[str]:
    return list(RULES)


def get_rules(name: str) -> FormatRules:
    rules = RULES.get(str(name).lower())
    if rules is None:
        raise UnknownFormat(
            f"unknown output format {name!r}; known formats: {', '.join(known_formats())}"
        )
    return rules


def format_for_path(path: str) -> str:
    """The format a bare output path implies: its extension's default format."""
    ext = os.path.splitext(path)[1].lower()
    for rules in RULES.values():
        if rules.extension == ext and not rules.is_sequence:
            return rules.name
    return "png8" if ext == ".png" else "h264"
