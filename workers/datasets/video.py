"""``video:<file>``: every frame of a user's video, decoded through the ffmpeg binary that
imageio-ffmpeg ships, in the video's own colours (grey, RGB, or RGBA when it has alpha)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from workers.datasets.base import Dataset, DatasetError, Request, convert_channels

# ffmpeg's raw output formats for 1, 3 and 4 channels.
_RAW_FORMATS = {1: "gray", 3: "rgb24", 4: "rgba"}
_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: (.*)")
_GREY = ("gray", "ya8", "ya16", "monob", "monow")
_ALPHA = ("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya8", "ya16")


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def pix_fmt_channels(pix_fmt: str) -> int:
    """1, 3 or 4 channels for an ffmpeg pixel format name (``gray``, ``yuv420p``, ``yuva444p``).
    Grey with alpha counts as RGBA: alpha outranks colour, since dropping it loses the shape."""
    if pix_fmt.startswith(_ALPHA):
        return 4
    return 1 if pix_fmt.startswith(_GREY) else 3


def _top_level_items(text: str) -> list[str]:
    """Split ffmpeg's stream description at commas outside parentheses:
    ``h264 (High), yuv420p(tv, bt709), 640x360`` -> three items."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return items


def probe_channels(source: Path) -> int:
    """The channels of the first video stream, from ffmpeg's description of the input (it
    prints one even though we ask for no output); 3 if that cannot be read, and the decode
    that follows reports any real problem."""
    args = [_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(source)]
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    match = _STREAM.search(proc.stderr.decode("utf-8", errors="replace"))
    if match is None:
        return 3
    items = _top_level_items(match.group(1))
    if len(items) < 2:
        return 3
    return pix_fmt_channels(items[1].split("(")[0].strip())


def ffmpeg_frames(source: Path, size: int, channels: int, *, max_frames: int | None) -> np.ndarray:
    """Decode ``source`` into frames ``(N, size, size, C)`` uint8.

    Scales the shorter side to ``size`` and centre-crops, so frames of any aspect ratio come
    out square without distortion. stderr goes to a temporary file rather than a pipe: a
    chatty decoder can fill a pipe's buffer and deadlock against our read of stdout.
    """
    fmt = _RAW_FORMATS[channels]
    vf = (
        f"scale={size}:{size}:force_original_aspect_ratio=increase:flags=area,"
        f"crop={size}:{size},format={fmt}"
    )
    args = [_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error"]
    args += ["-i", str(source), "-vf", vf, "-an", "-sn"]
    if max_frames is not None:
        args += ["-frames:v", str(max_frames)]
    args += ["-f", "rawvideo", "-pix_fmt", fmt, "pipe:1"]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=err, check=False)
        err.seek(0)
        message = err.read().decode("utf-8", errors="replace").strip()[-500:]
    frame_bytes = size * size * channels
    raw = proc.stdout
    if proc.returncode != 0 or len(raw) < frame_bytes:
        why = message or f"ffmpeg exited with {proc.returncode} and produced no frames"
        raise DatasetError(f"cannot decode {source}: {why}")
    n = len(raw) // frame_bytes
    arr = np.frombuffer(raw[: n * frame_bytes], dtype=np.uint8)
    return arr.reshape(n, size, size, channels)  # (N, S, S, C)


def load_video(
    path: str | Path,
    size: int,
    *,
    max_frames: int | None = None,
    channels: int | None = None,
) -> torch.Tensor:
    """Decode every frame of a video (up to ``max_frames``) to ``(N, C, size, size)`` float32
    in [0, 1], shorter side scaled to ``size``, centre-cropped. C is the video's own (1 for a
    grey stream, 4 when it carries alpha, else 3); ``channels`` converts."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    src = Path(path)
    if not src.is_file():
        raise DatasetError(f"video not found: {src}")
    if src.stat().st_size == 0:
        raise DatasetError(f"video is empty: {src}")
    frames = ffmpeg_frames(src, size, probe_channels(src), max_frames=max_frames)
    x = torch.from_numpy(frames.astype(np.float32) / 255.0).permute(0, 3, 1, 2)  # (N, C, S, S)
    x = x.contiguous()
    return convert_channels(x, channels).contiguous() if channels is not None else x


def load(req: Request) -> Dataset:
    req.check_options(("channels", "target", "max_frames"))
    req.choice("target", ("pixels",), "pixels")
    max_frames = req.options.get("max_frames")
    if max_frames is not None:
        max_frames = req.integer("max_frames", 1, 1, 10_000_000)
    x = load_video(req.path(), req.size, max_frames=max_frames, channels=req.channels())
    return Dataset(req.name, x)
