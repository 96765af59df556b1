"""Unit tests for moving digits, user image folders, videos and data set names."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from workers.datasets import (
    DatasetError,
    load_dataset,
    load_image_folder,
    load_video,
    moving_digits,
)


def _png(path: Path, gray: np.ndarray) -> None:
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_moving_digits_shape_range_and_determinism() -> None:
    a = moving_digits(3, 5, canvas=24, digit_size=8, seed=1)
    assert a.shape == (3, 5, 1, 24, 24)
    assert a.dtype == torch.float32
    assert float(a.min()) >= 0.0
    assert float(a.max()) <= 1.0
    assert torch.equal(a, moving_digits(3, 5, canvas=24, digit_size=8, seed=1))
    assert not torch.equal(a, moving_digits(3, 5, canvas=24, digit_size=8, seed=2))


def test_moving_digits_moves_and_two_digits_add_ink() -> None:
    a = moving_digits(4, 6, canvas=32, seed=0)
    assert not torch.equal(a[:, 0], a[:, 1])  # frames differ: the digits move
    two = moving_digits(4, 6, canvas=32, digits_per_seq=2, seed=0)
    assert float(two.sum()) > float(a.sum())


def test_moving_digits_bounce_stays_in_canvas() -> None:
    # Fast digits on a small canvas hit the walls many times; ink must never be cut off,
    # so every frame keeps the first frame's total ink (one digit, no overlap).
    clips = moving_digits(8, 40, canvas=20, digit_size=8, speed=(3.0, 5.0), seed=3)
    ink = clips.sum(dim=(2, 3, 4))  # (N, T)
    assert torch.allclose(ink, ink[:, :1].expand_as(ink), rtol=1e-5)
    # And the digit visits both halves of the canvas, i.e. it really bounces around.
    cols = clips.sum(dim=(2, 3))  # (N, T, W)
    assert float(cols[..., :10].sum()) > 0 and float(cols[..., 10:].sum()) > 0


def test_image_folder_of_different_sizes(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", np.full((10, 30), 200, np.uint8))
    wide = np.zeros((40, 20), np.uint8)
    wide[:, 10:] = 255
    _png(tmp_path / "b.png", wide)
    (tmp_path / "notes.txt").write_text("ignored")
    x = load_image_folder(tmp_path, 8)
    assert x.shape == (2, 1, 8, 8)
    assert x.dtype == torch.float32
    assert float(x[0].mean()) == pytest.approx(200 / 255, abs=0.02)
    # Centre crop keeps the left/right split of b.png.
    assert float(x[1, 0, :, :3].mean()) < 0.1
    assert float(x[1, 0, :, -3:].mean()) > 0.9


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found") as info:
        load_image_folder(tmp_path / "absent", 8)
    assert "absent" in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_image_folder(empty, 8)
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("hello")
    with pytest.raises(DatasetError, match="no images"):
        load_image_folder(texts, 8)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DatasetError, match=r"broken\.png"):
        load_image_folder(bad, 8)


def test_video_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_video(tmp_path / "absent.mp4", 8)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty"):
        load_video(empty, 8)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DatasetError, match=r"junk\.mp4"):
        load_video(junk, 8)


def test_video_decodes_frames(tmp_path: Path) -> None:
    import imageio_ffmpeg

    path = tmp_path / "clip.mkv"
    frames = np.stack([np.full((12, 16), 40 * i, np.uint8) for i in range(5)])
    args = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "rawvideo"]
    args += ["-pix_fmt", "gray", "-s", "16x12", "-r", "5", "-i", "pipe:0"]
    args += ["-c:v", "ffv1", "-pix_fmt", "gray", str(path)]
    subprocess.run(args, input=frames.tobytes(), check=True)
    x = load_video(path, 8)
    assert x.shape == (5, 1, 8, 8)
    assert float(x[4].mean()) == pytest.approx(160 / 255, abs=0.02)
    assert load_video(path, 8, max_frames=2).shape == (2, 1, 8, 8)
    assert load_dataset(f"video:{path}", 8).data.shape == (5, 1, 8, 8)


def test_load_dataset_names(tmp_path: Path) -> None:
    d = load_dataset("digits", 16)
    assert d.data.shape == (1797, 1, 16, 16)
    assert d.labels is not None
    m = load_dataset("moving-digits", 16)
    assert m.is_sequences
    assert m.data.shape[2:] == (1, 16, 16)
    for bad in ("mnist", "images:", "video", "cifar:10"):
        with pytest.raises(DatasetError, match="unknown data set"):
            load_dataset(bad, 16)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(f"images:{tmp_path / 'nope'}", 16)
