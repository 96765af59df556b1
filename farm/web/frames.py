"""The job page's "last rendered frame": while a render runs, the newest of the frames its
chunks keep for the previews (``.segments/job-N/preview-POSITION.npy``, written atomically by
:func:`workers.previews.keep_preview_frames`); once it is done, the output's last frame (the
last file of an image sequence, or decoded once from the video with ffmpeg and cached in the
data directory). Everything read is confined to the output root."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from farm.config import Settings
from farm.outputs import OutsideOutputRoot, confine, segment_path

_PREVIEW = re.compile(r"^preview-(\d{9})\.npy$")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".dpx")


def latest_preview(settings: Settings, job_id: int) -> tuple[int, Path] | None:
    """(position in the job's frame list, file) of the furthest frame kept so far."""
    folder = segment_path(settings.output_root_abs(), job_id, 0).parent
    try:
        names = [(int(m.group(1)), n) for n in _names(folder) if (m := _PREVIEW.match(n))]
    except OSError:
        return None
    if not names:
        return None
    position, name = max(names)
    return position, folder / name


def _names(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir()]


def png(image: np.ndarray) -> bytes:
    """An 8-bit gray or RGB image as PNG (zlib, no dependency)."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    h, w = img.shape[:2]
    color = 2 if img.ndim == 3 else 0
    raw = b"".join(b"\x00" + row.tobytes() for row in img.reshape(h, -1))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def preview_png(path: Path) -> bytes | None:
    try:
        frame = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # removed by the assembly meanwhile
    if frame.ndim not in (2, 3):
        return None
    return png(frame)


def finished_frame(settings: Settings, artifacts: list[Mapping[str, Any]]) -> Path | None:
    """The last frame of the job's output, as a file: the sequence's last image, or the
    video's last frame decoded once into ``data_dir/web-cache``."""
    root = settings.output_root_abs()
    for a in artifacts:
        try:
            path = confine(root, a["path"])
        except OutsideOutputRoot:
            continue
        if a["kind"] == "sequence" and path.is_dir():
            frames = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if frames:
                return frames[-1]
        if a["kind"] == "video" and path.is_file():
            return _last_video_frame(settings, path, a["id"], a["sha256"])
    return None


def _last_video_frame(settings: Settings, video: Path, artifact_id: int, sha: str) -> Path | None:
    cache = Path(settings.data_dir).resolve() / "web-cache"
    out = cache / f"last-{artifact_id}-{sha[:16]}.png"
    if out.is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    # Seek to a second before the end and keep overwriting one image: the last frame remains.
    cmd = [
        _ffmpeg(settings), "-v", "error", "-y", "-sseof", "-1", "-i", str(video),
        "-update", "1", "-frames:v", "100000", str(tmp),
    ]  # fmt: skip
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        tmp.unlink(missing_ok=True)
        return None
    if not tmp.is_file():
        return None
    tmp.replace(out)
    return out


def _ffmpeg(settings: Settings) -> str:
    if settings.ffmpeg:
        return settings.ffmpeg
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())
