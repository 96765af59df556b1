"""Output formats for renders, by name: ``get_format("prores")``.

Each format is a module in this package exposing ``FORMAT``; adding one is adding a module
and a line to ``_MODULES``, with no branching on names anywhere else.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

from farm.formats import Problem, UnknownFormat, known_formats
from workers.formats.base import OutputFormat
from workers.formats.verification import Verification

__all__ = [
    "RENDER_PIX_FMT",
    "OutputFormat",
    "Problem",
    "UnknownFormat",
    "describe_output",
    "get_format",
    "known_formats",
    "verify_output",
]

# What a render's segments were written from when their record does not say: the chunk stage
# picks the input pixel format from its first batch (gray, rgb24 or rgba) and records it as
# the segment's ``pix_fmt_in``, which assembly checks the output against; segments recorded
# before colour renders were all gray.
RENDER_PIX_FMT = "gray"

_MODULES = {
    "h264": "h264",
    "h265": "h265",
    "vp9": "vp9",
    "prores": "prores",
    "gif": "gif",
    "png8": "png8",
    "png16": "png16",
    "ffv1": "ffv1",
}


@cache
def get_format(name: str) -> OutputFormat:
    module = _MODULES.get(str(name).lower())
    if module is None:
        raise UnknownFormat(
            f"unknown output format {name!r}; known formats: {', '.join(known_formats())}"
        )
    fmt = importlib.import_module(f"{__name__}.{module}").FORMAT
    assert isinstance(fmt, OutputFormat)
    return fmt


def _as_format(fmt: OutputFormat | str) -> OutputFormat:
    return fmt if isinstance(fmt, OutputFormat) else get_format(fmt)


def describe_output(
    path: Path,
    fmt: OutputFormat | str,
    *,
    ffmpeg: str,
    counted: tuple[int, float] | None = None,
) -> dict[str, Any]:
    """Artifact metadata: codec, size in pixels and bytes, frames, duration, frame rate (for a
    sequence: its folder, first and last frame names and count)."""
    return _as_format(fmt).describe(Path(path), ffmpeg=ffmpeg, counted=counted)


def verify_output(
    path: Path,
    fmt: OutputFormat | str,
    *,
    ffmpeg: str,
    expected_frames: int,
    fps: float,
    method: Verification | None = None,
) -> tuple[int, float]:
    """Check a finished output; raise EncodeError unless it holds ``expected_frames`` frames
    lasting ``expected_frames / fps`` seconds within one frame, in the format's codec.
    ``method``: ``packets``, ``decode`` or (sequences) ``files``; the format's own if unset."""
    return _as_format(fmt).verify(
        Path(path), ffmpeg=ffmpeg, expected_frames=expected_frames, fps=fps, method=method
    )
