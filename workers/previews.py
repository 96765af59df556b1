"""Poster frames and contact sheets, cut from the finished output (video or sequence).

From the assembled result (:func:`poster_frame`, :func:`contact_sheet`, decoded by ffmpeg)
a preview shows what was delivered, after encoding, and a re-run of assembly can remake them;
they are 8-bit RGB PNGs, RGBA where the output stores alpha. From the frames the chunks kept
(:func:`previews_from_kept`) they are written with Pillow in the frames' own layout: grey,
RGB or RGBA. Either way under a temporary name, renamed when complete.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workers.encode import _run, _temp_sibling, _unlink_quietly, count_frames, probe_video
from workers.formats.sequence import concat_listing
from workers.png import write_png

__all__ = ["Source", "contact_sheet", "find_font", "poster_frame"]

Source = Path | Sequence[Path]
_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
)
_SAFE_PATH = re.compile(r"^[\w/.-]+$")


def find_font() -> Path | None:
    """A TrueType font for frame labels; without one, sheets simply have no labels."""
    for candidate in _FONTS:
        if Path(candidate).is_file() and _SAFE_PATH.match(candidate):
            return Path(candidate)
    return None


class _Input:
    """ffmpeg input arguments for a video file or an ordered list of frame files."""

    def __init__(self, source: Source, out: Path, ffmpeg: str) -> None:
        self.listing: Path | None = None
        if isinstance(source, str | os.PathLike):
            self.args = ["-i", str(source)]
            self.first = Path(source)
            self.count = count_frames(Path(source), ffmpeg=ffmpeg)[0]
        else:
            files = [Path(p) for p in source]
            if not files:
                raise ValueError("no frames to preview")
            self.listing = out.with_name(f".{out.name}.{secrets.token_hex(4)}.ffconcat")
            concat_listing(files, self.listing)
            self.args = ["-f", "concat", "-safe", "0", "-i", str(self.listing)]
            self.first = files[0]
            self.count = len(files)
        info = probe_video(self.first, ffmpeg=ffmpeg)
        self.width, self.height = int(info["width"]), int(info["height"])
        self.png_pix_fmt = "rgba" if has_alpha(info.get("pix_fmt")) else "rgb24"

    def close(self) -> None:
        if self.listing is not None:
            _unlink_quietly(self.listing)


def has_alpha(pix_fmt: str | None) -> bool:
    """Whether a decoder's pixel format carries alpha (``yuva444p12le``, ``rgba``, ``bgra``,
    ``gbrap16le``, ``ya8``...). VP9's alpha is invisible to ffmpeg's own decoder, so a VP9
    preview from the file is opaque; previews from the kept frames are not."""
    if not pix_fmt:
        return False
    return bool(re.match(r"^(yuva|gbrap|ya\d|rgba|bgra|argb|abgr)", pix_fmt))


def _select(indexes: Sequence[int]) -> str:
    return "select='" + "+".join(f"eq(n,{i})" for i in indexes) + "'"


def _write_png(ffmpeg: str, src: _Input, graph: str, out: Path, what: str) -> None:
    tmp = _temp_sibling(out, ".png")
    try:
        _run(
            [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", *src.args,
             "-map", "0:v:0", "-vf", graph, "-fps_mode", "passthrough", "-frames:v", "1",
             "-update", "1", "-f", "image2", "-c:v", "png", "-y", str(tmp)],
            what,
        )  # fmt: skip
        if not tmp.is_file():
            raise FileNotFoundError(f"ffmpeg wrote no {what}")
        os.replace(tmp, out)
    finally:
        _unlink_quietly(tmp)


def poster_frame(
    source: Source, out: Path, *, ffmpeg: str, index: int | None = None
) -> tuple[Path, int, int]:
    """Write frame ``index`` (default: the middle one) of ``source`` as a PNG.

    Returns (path, width, height).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    src = _Input(source, out, ffmpeg)
    try:
        i = src.count // 2 if index is None else index
        if not 0 <= i < src.count:
            raise ValueError(f"frame index {i} is outside 0..{src.count - 1}")
        graph = f"{_select([i])},format={src.png_pix_fmt}"
        _write_png(ffmpeg, src, graph, out, f"poster frame of {out.name}")
        return out, src.width, src.height
    finally:
        src.close()


def sheet_indexes(total: int, count: int) -> list[int]:
    """``count`` frame indexes spread evenly over ``total``, first and last included."""
    count = max(1, min(count, total))
    if count == 1:
        return [total // 2]
    return sorted({round(k * (total - 1) / (count - 1)) for k in range(count)})


def contact_sheet(
    source: Source,
    out: Path,
    *,
    ffmpeg: str,
    count: int = 12,
    columns: int = 4,
    thumb_width: int | None = None,
    padding: int = 2,
    frame_numbers: Sequence[int] | None = None,
    font: Path | None = None,
) -> tuple[Path, int, int]:
    """Write a grid of ``count`` evenly spaced frames as a PNG; returns (path, width, height).

    Thumbnails are ``thumb_width`` wide (default: the frame's own width, at most 320) with
    the frame's aspect. With ``frame_numbers`` (the job's numbers of the source's frames, an
    evenly stepped range) and a font, each thumbnail is labelled with its frame number.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    src = _Input(source, out, ffmpeg)
    try:
        indexes = sheet_indexes(src.count, count)
        cols = max(1, min(columns, len(indexes)))
        rows = math.ceil(len(indexes) / cols)
        tw = thumb_width or min(src.width, 320)
        th = max(2, 2 * round(src.height * tw / src.width / 2))
        steps = []
        label_font = font or find_font()
        if frame_numbers is not None and label_font is not None and len(frame_numbers) > 0:
            start = frame_numbers[0]
            step = frame_numbers[1] - start if len(frame_numbers) > 1 else 1
            if list(frame_numbers) == [start + step * k for k in range(len(frame_numbers))]:
                size = max(8, th // 6)
                steps.append(
                    f"drawtext=fontfile={label_font}:text='%{{eif\\:n*{step}+{start}\\:d}}'"
                    f":x=3:y=h-th-3:fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.5"
                )
        steps += [
            _select(indexes),
            f"scale={tw}:{th}",
            f"tile={cols}x{rows}:padding={padding}:color=black",
            f"format={src.png_pix_fmt}",
        ]
        _write_png(ffmpeg, src, ",".join(steps), out, f"contact sheet {out.name}")
        width = cols * tw + (cols - 1) * padding
        height = rows * th + (rows - 1) * padding
        return out, width, height
    finally:
        src.close()


# Previews from frames in memory: each chunk keeps the few frames the previews need while it
# renders them, so assembly tiles them instead of decoding the whole video again.

PREVIEW_COUNT = 12
PREVIEW_COLUMNS = 4


def preview_positions(total: int, count: int = PREVIEW_COUNT) -> set[int]:
    """Positions (0-based, in the job's frame list) of the poster and contact-sheet frames."""
    return {total // 2, *sheet_indexes(total, count)}


def keep_preview_frames(folder: Path, start: int, frames: np.ndarray, wanted: set[int]) -> None:
    """Save the wanted frames of a batch that starts at position ``start`` (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames.shape[0]):
        if start + i in wanted:
            dest = folder / f"preview-{start + i:09d}.npy"
            tmp = folder / f".{dest.name}.{os.getpid()}.tmp"
            with tmp.open("wb") as f:
                np.save(f, frames[i])
            os.replace(tmp, dest)


def _thumb(frame: np.ndarray, width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if w <= width:
        return frame
    height = max(2, 2 * round(h * width / w / 2))
    ys = (np.arange(height) * h / height).astype(int)
    xs = (np.arange(width) * w / width).astype(int)
    return frame[ys][:, xs]


def previews_from_kept(
    folder: Path, total: int, out_dir: Path, padding: int = 2
) -> tuple[tuple[Path, int, int], tuple[Path, int, int]] | None:
    """Poster and contact sheet from the frames the chunks kept; None if any is missing."""
    positions = sorted(preview_positions(total))
    files = [folder / f"preview-{p:09d}.npy" for p in positions]
    if not all(f.is_file() for f in files):
        return None
    frames = {p: np.load(f) for p, f in zip(positions, files, strict=True)}
    poster = frames[total // 2]
    poster_path = out_dir / "poster.png"
    write_png(poster_path, poster)
    thumbs = [_thumb(frames[p], 320) for p in sheet_indexes(total, PREVIEW_COUNT)]
    th, tw = thumbs[0].shape[:2]
    cols = max(1, min(PREVIEW_COLUMNS, len(thumbs)))
    rows = math.ceil(len(thumbs) / cols)
    channels = thumbs[0].shape[2:]  # () for grey, (3,) or (4,): channel-last colour
    sheet_hw = (rows * th + (rows - 1) * padding, cols * tw + (cols - 1) * padding)
    sheet = np.zeros((*sheet_hw, *channels), np.uint8)  # padding: black (clear for RGBA)
    for k, t in enumerate(thumbs):
        r, c = divmod(k, cols)
        y, x = r * (th + padding), c * (tw + padding)
        sheet[y : y + th, x : x + tw] = t
    sheet_path = out_dir / "contact.png"
    write_png(sheet_path, sheet)
    return (poster_path, poster.shape[1], poster.shape[0]), (
        sheet_path,
        sheet.shape[1],
        sheet.shape[0],
    )
