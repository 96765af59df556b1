"""Unit tests for a user's own images and videos in their own colours: grey stays grey, RGB
stays RGB, transparency stays straight RGBA, and the channels option converts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workers.datasets import DatasetError, convert_channels, load_dataset, load_image_folder
from workers.datasets.video import load_video, pix_fmt_channels


def rgba_sprite(path: Path, size: int = 40) -> None:
    """An opaque red disc on a transparent ground whose hidden colour is green: a resize that
    ignored alpha would bleed green into the disc's edge."""
    c = np.arange(size) + 0.5
    disc = (c[None, :] - size / 2) ** 2 + (c[:, None] - size / 2) ** 2 < (size * 0.35) ** 2
    px = np.zeros((size, size, 4), np.uint8)
    px[..., 1] = 255  # green under the transparency
    px[disc] = (255, 0, 0, 255)
    Image.fromarray(px, "RGBA").save(path)


def test_images_with_alpha_keep_four_straight_channels(tmp_path: Path) -> None:
    rgba_sprite(tmp_path / "a.png")
    x = load_image_folder(tmp_path, 16)
    assert x.shape == (1, 4, 16, 16) and x.dtype == torch.float32
    alpha = x[0, 3]
    edge = (alpha > 0.05) & (alpha < 0.95)
    assert edge.sum() > 8
    # Straight alpha: the edge keeps the disc's colour, not a red-green mix.
    assert torch.all(x[0, 0][edge] > 0.95) and torch.all(x[0, 1][edge] < 0.05)
    assert float(alpha[8, 8]) == 1.0 and float(alpha[0, 0]) == 0.0


def test_a_folder_with_any_alpha_is_rgba_and_colour_without_it_is_rgb(tmp_path: Path) -> None:
    Image.new("RGB", (20, 10), (10, 200, 30)).save(tmp_path / "b.jpg", quality=100)
    Image.new("L", (10, 10), 128).save(tmp_path / "c.png")
    rgb = load_image_folder(tmp_path, 8)
    assert rgb.shape == (2, 3, 8, 8)
    assert rgb[0, :, 4, 4].tolist() == pytest.approx([10 / 255, 200 / 255, 30 / 255], abs=0.03)
    assert torch.allclose(rgb[1], torch.full((3, 8, 8), 128 / 255))  # grey repeated
    rgba_sprite(tmp_path / "a.png")
    mixed = load_image_folder(tmp_path, 8)
    assert mixed.shape == (3, 4, 8, 8)
    assert torch.all(mixed[1:, 3] == 1.0)  # files without alpha are opaque


def test_palette_transparency_counts_as_alpha(tmp_path: Path) -> None:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 255, 0])
    img.paste(1, (2, 2, 6, 6))
    img.save(tmp_path / "p.png", transparency=0)
    x = load_image_folder(tmp_path, 8)
    assert x.shape == (1, 4, 8, 8)
    assert float(x[0, 3, 0, 0]) == 0.0 and x[0, :, 4, 4].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_the_channels_option_converts_by_luma_and_over_black(tmp_path: Path) -> None:
    rgba_sprite(tmp_path / "a.png")
    d4 = load_dataset(f"images:{tmp_path}", 16)
    d3 = load_dataset(f"images:{tmp_path}", 16, options={"channels": 3})
    d1 = load_dataset(f"images:{tmp_path}", 16, options={"channels": 1})
    assert (d4.channels, d3.channels, d1.channels) == (4, 3, 1)
    assert torch.allclose(d3.data, d4.data[:, :3] * d4.data[:, 3:])  # over black
    assert torch.allclose(d1.data[0, 0, 8, 8], torch.tensor(0.299), atol=1e-3)  # red's luma
    assert float(d3.data[0, 1].max()) < 0.05  # no hidden green


def test_images_with_alpha_give_a_field_when_asked(tmp_path: Path) -> None:
    rgba_sprite(tmp_path / "a.png", size=64)
    d = load_dataset(f"images:{tmp_path}", 32, options={"target": "sdf"})
    assert d.has_shapes and d.sdf is not None and d.sdf.shape == (1, 1, 32, 32)
    c = np.arange(32) + 0.5
    want = 32 * 0.35 - np.hypot(c[None, :] - 16, c[:, None] - 16)  # the disc, in pixels
    got = d.sdf[0, 0].numpy() * d.sdf_spread_px
    band = np.abs(want) < 3
    assert np.abs(got[band] - want[band]).max() < 0.35  # the file is a 64 px raster
    Image.new("RGB", (8, 8)).save(tmp_path / "opaque.png")
    assert load_dataset(f"images:{tmp_path}", 16).sdf is None
    plain = tmp_path / "plain"
    plain.mkdir()
    Image.new("RGB", (8, 8)).save(plain / "x.png")
    with pytest.raises(DatasetError, match="has alpha"):
        load_dataset(f"images:{plain}", 16, options={"target": "sdf"})


def test_sixteen_bit_grey_keeps_its_scale(tmp_path: Path) -> None:
    arr = np.full((8, 8), 40000, np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    x = load_image_folder(tmp_path, 4)
    assert x.shape == (1, 1, 4, 4)
    assert float(x.mean()) == pytest.approx(40000 / 65535, abs=1e-3)


def _encode(path: Path, frames: np.ndarray, pix_fmt: str) -> None:
    import imageio_ffmpeg

    _, h, w, _ = frames.shape
    args = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "rawvideo"]
    args += ["-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "5", "-i", "pipe:0"]
    args += ["-c:v", "ffv1", "-pix_fmt", pix_fmt, str(path)]
    subprocess.run(args, input=frames.tobytes(), check=True)


def test_colour_video_decodes_rgb_and_converts_on_request(tmp_path: Path) -> None:
    frames = np.zeros((3, 12, 16, 3), np.uint8)
    frames[..., 0] = 200  # red
    frames[..., 2] = np.arange(3)[:, None, None] * 100  # blue rises
    path = tmp_path / "clip.mkv"
    _encode(path, frames, "bgr0")
    x = load_video(path, 8)
    assert x.shape == (3, 3, 8, 8)
    assert x[2, :, 4, 4].tolist() == pytest.approx([200 / 255, 0.0, 200 / 255], abs=0.02)
    grey = load_dataset(f"video:{path}", 8, options={"channels": 1})
    assert grey.data.shape == (3, 1, 8, 8)
    assert float(grey.data[0, 0, 4, 4]) == pytest.approx(0.299 * 200 / 255, abs=0.02)
    assert load_dataset(f"video:{path}", 8, options={"max_frames": 2}).data.shape[0] == 2


def test_pixel_formats_map_to_channels() -> None:
    assert [pix_fmt_channels(f) for f in ("gray", "gray16le", "yuv420p", "rgb24")] == [1, 1, 3, 3]
    assert [pix_fmt_channels(f) for f in ("yuva444p", "rgba", "gbrap", "ya8")] == [4, 4, 4, 4]


def test_convert_channels_round_trips_and_composites() -> None:
    grey = torch.rand(2, 1, 4, 4)
    rgb = convert_channels(grey, 3)
    assert rgb.shape == (2, 3, 4, 4) and torch.equal(rgb[:, 1:2], grey)
    assert torch.allclose(convert_channels(rgb, 1), grey, atol=1e-6)  # luma of grey is grey
    rgba = convert_channels(grey, 4)
    assert torch.all(rgba[:, 3] == 1.0)
    clips = torch.rand(2, 5, 4, 6, 6)  # (N, T, C, S, S)
    over = convert_channels(clips, 3)
    assert over.shape == (2, 5, 3, 6, 6)
    assert torch.allclose(over, clips[:, :, :3] * clips[:, :, 3:])
    assert convert_channels(clips, 4) is clips
