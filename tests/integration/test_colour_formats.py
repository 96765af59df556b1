"""Colour and alpha through every output format, judged by decoding the result.

Six 64x48 frames of solid red, green and blue patches (the lower half half-transparent in
the RGBA case) go through each format's segment writers and assembly (two chunks, so the
join is exercised), then the bundled ffmpeg decodes the output and the colours are compared:
lossless formats exactly, ProRes within a few levels, 4:2:0 codecs and GIF's palette on patch
means away from the edges, where chroma subsampling blurs. Alpha is compared where the format
keeps it; elsewhere the frames must come back flattened over the background.

Needs only the ffmpeg binary shipped in imageio-ffmpeg (no database, broker or GPU).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.integration.test_formats import render
from workers.encode import ffmpeg_binary
from workers.formats import get_format
from workers.media.alpha import flatten
from workers.previews import contact_sheet, poster_frame, previews_from_kept

pytestmark = [pytest.mark.integration, pytest.mark.one_pass]

W, H, FRAMES = 64, 48, 6
COLUMNS = ((0, 21), (21, 42), (42, 64))
COLOURS = ((200, 30, 40), (40, 180, 60), (30, 50, 210))  # red, green, blue, off the clip
HALF = 128  # alpha of the lower half
ALL = ["h264", "h265", "vp9", "prores", "ffv1", "gif", "png8", "png16"]
KEEPS_ALPHA = ["vp9", "prores", "ffv1", "png8", "png16"]
FLATTENS = ["h264", "h265", "gif"]
# Largest allowed difference of a patch mean, per format: 0 is exact.
TOLERANCE = {"ffv1": 0, "png8": 0, "png16": 0, "prores": 4, "h264": 6, "h265": 6, "vp9": 6,
             "gif": 6}  # fmt: skip
ALPHA_TOLERANCE = {"ffv1": 0, "png8": 0, "png16": 0, "prores": 1, "vp9": 3}


@pytest.fixture(scope="module")
def ff() -> str:
    return ffmpeg_binary()


def rgba_frames() -> np.ndarray:
    frames = np.zeros((FRAMES, H, W, 4), np.uint8)  # (B, H, W, 4)
    for (x0, x1), rgb in zip(COLUMNS, COLOURS, strict=True):
        frames[:, :, x0:x1, :3] = rgb
    frames[..., 3] = 255
    frames[:, H // 2 :, :, 3] = HALF
    return frames


def patches(frames: np.ndarray) -> np.ndarray:
    """Mean of each patch's interior (4 px in from its edges), per frame:
    (B, 2 halves, 3 columns, C)."""
    rows = ((4, H // 2 - 4), (H // 2 + 4, H - 4))
    return np.array(
        [
            [[frames[:, y0:y1, x0 + 4 : x1 - 4].mean(axis=(1, 2)) for x0, x1 in COLUMNS]
             for y0, y1 in rows]
        ]
    ).squeeze(0).transpose(2, 0, 1, 3)  # fmt: skip


def decode(
    ff: str, out: Path, pix_fmt: str, channels: int, *, vp9_alpha: bool = False
) -> np.ndarray:
    """Every frame of ``out`` (a video, or a sequence template) as raw ``pix_fmt``."""
    fmt_dtype = (
        np.dtype("<u2") if pix_fmt.endswith("64le") or pix_fmt.endswith("48le") else np.uint8
    )
    if "#" in out.name:
        files = sorted(out.parent.glob(out.name.replace("####", "*")))
        listing = out.parent / ".decode.ffconcat"
        listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{p}'\n" for p in files))
        inputs = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    else:
        # ffmpeg's own VP9 decoder drops the alpha plane; libvpx's decodes it.
        inputs = [*(["-c:v", "libvpx-vp9"] if vp9_alpha else []), "-i", str(out)]
    raw = subprocess.run(
        [ff, "-v", "error", "-nostdin", *inputs, "-map", "0:v:0", "-fps_mode", "passthrough",
         "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    frames = np.frombuffer(raw, fmt_dtype).reshape(-1, H, W, channels)
    if fmt_dtype != np.uint8:  # judge 16-bit output on the 8-bit scale it was widened from
        assert (frames % 257 == 0).all(), "16-bit samples are not 8-bit ones times 257"
        frames = (frames // 257).astype(np.uint8)
    return frames


def write(fmt_name: str, folder: Path, frames: np.ndarray, ff: str, **options: object) -> Path:
    """Two chunks and assembly, as the stages run them; the output's path."""
    fmt = get_format(fmt_name)
    pix_fmt_in = {3: "rgb24", 4: "rgba"}[frames.shape[-1]]
    if not options:
        return render(fmt, folder, frames, range(1, FRAMES + 1), [4, 2], ff, pix_fmt_in=pix_fmt_in)
    out = folder / ("sh.####.png" if fmt.is_sequence else f"out{fmt.extension}")
    opts = {"path": str(out), **options}
    segments = []
    for i, (start, stop) in enumerate(((0, 4), (4, FRAMES))):
        seg = folder / ".segments" / f"chunk-{i:05d}{fmt.segment_suffix}"
        seg.parent.mkdir(parents=True, exist_ok=True)
        numbers = list(range(start + 1, stop + 1))
        with fmt.open_segment(seg, W, H, 24.0, pix_fmt_in, numbers, opts, ffmpeg=ff) as w:
            w.write(frames[start:stop])
        segments.append(seg)
    return fmt.assemble(
        segments, out, FRAMES, 24.0, ffmpeg=ff, frame_numbers=list(range(1, FRAMES + 1)),
        options=opts, width=W, height=H, pix_fmt_in=pix_fmt_in,
    )  # fmt: skip


def assert_close(name: str, got: np.ndarray, want: np.ndarray, tolerance: float) -> None:
    worst = float(np.abs(got.astype(float) - want.astype(float)).max())
    assert worst <= tolerance, f"{name}: patch means differ by up to {worst:.2f} > {tolerance}"


@pytest.mark.parametrize("name", ALL)
def test_rgb_frames_come_back_in_their_colours(tmp_path: Path, ff: str, name: str) -> None:
    src = np.ascontiguousarray(rgba_frames()[..., :3])
    out = write(name, tmp_path, src, ff)
    pix_fmt = "rgb48le" if name == "png16" else "rgb24"
    got = decode(ff, out, pix_fmt, 3)
    assert got.shape == src.shape
    if TOLERANCE[name] == 0:
        assert np.array_equal(got, src)
    assert_close(name, patches(got), patches(src), TOLERANCE[name])


@pytest.mark.parametrize("name", KEEPS_ALPHA)
def test_rgba_frames_keep_colour_and_alpha_where_the_format_stores_it(
    tmp_path: Path, ff: str, name: str
) -> None:
    src = rgba_frames()
    out = write(name, tmp_path, src, ff)
    pix_fmt = "rgba64le" if name == "png16" else "rgba"
    got = decode(ff, out, pix_fmt, 4, vp9_alpha=name == "vp9")
    assert got.shape == src.shape
    if TOLERANCE[name] == 0:
        assert np.array_equal(got, src), f"{name} is lossless but changed the frames"
    want, have = patches(src), patches(got)
    assert_close(name, have[..., :3], want[..., :3], TOLERANCE[name])
    assert_close(f"{name} alpha", have[..., 3], want[..., 3], ALPHA_TOLERANCE[name])
    assert abs(have[:, 1, :, 3].mean() - HALF) <= ALPHA_TOLERANCE[name]  # half, not opaque


@pytest.mark.parametrize(
    ("name", "background"), [("h264", "#336699"), ("h265", None), ("gif", "#fff")]
)
def test_rgba_frames_are_flattened_over_the_background_where_alpha_cannot_be_stored(
    tmp_path: Path, ff: str, name: str, background: str | None
) -> None:
    src = rgba_frames()
    options = {"background": background} if background else {}
    out = write(name, tmp_path, src, ff, **options)
    colour = {"#336699": (0x33, 0x66, 0x99), "#fff": (255, 255, 255), None: (0, 0, 0)}[background]
    want = flatten(src, colour)
    got = decode(ff, out, "rgb24", 3)
    assert got.shape == want.shape
    assert_close(name, patches(got), patches(want), TOLERANCE[name])
    # the lower half really is mixed with the background, not the frame's own colour
    assert_close(name, patches(got)[:, 1], patches(want)[:, 1], TOLERANCE[name])
    assert np.abs(patches(want)[:, 1] - patches(src)[:, 1, :, :3]).max() > 3 * TOLERANCE[name]


def test_previews_from_kept_rgba_frames_are_rgba_pngs(tmp_path: Path) -> None:
    frames = rgba_frames()
    for i in range(FRAMES):
        np.save(tmp_path / f"preview-{i:09d}.npy", frames[i])
    made = previews_from_kept(tmp_path, FRAMES, tmp_path / "out")
    assert made is not None
    (poster, pw, ph), (sheet, sw, sh) = made
    with Image.open(poster) as im:
        assert im.mode == "RGBA" and (pw, ph) == (W, H) == im.size
        assert np.array_equal(np.asarray(im), frames[FRAMES // 2])
    with Image.open(sheet) as im:
        assert im.mode == "RGBA" and im.size == (sw, sh)
        assert np.array_equal(np.asarray(im)[:H, :W], frames[0])


@pytest.mark.parametrize(("name", "mode"), [("prores", "RGBA"), ("h264", "RGB"), ("png8", "RGBA")])
def test_previews_decoded_from_the_output_keep_its_colour_and_alpha(
    tmp_path: Path, ff: str, name: str, mode: str
) -> None:
    fmt = get_format(name)
    out = write(name, tmp_path, rgba_frames(), ff)
    source: Path | Sequence[Path] = fmt.frame_files(out) if fmt.is_sequence else out
    poster, _, _ = poster_frame(source, tmp_path / "p" / "poster.png", ffmpeg=ff)
    sheet, _, _ = contact_sheet(source, tmp_path / "p" / "contact.png", ffmpeg=ff, count=4)
    for png in (poster, sheet):
        with Image.open(png) as im:
            assert im.mode == mode
    with Image.open(poster) as im:
        pixels = np.asarray(im).astype(int)
    red = pixels[8, 8, :3]
    assert abs(red - np.array(COLOURS[0])).max() <= 6
    if mode == "RGBA":
        assert pixels[8, 8, 3] == 255 and abs(pixels[H - 8, 8, 3] - HALF) <= 1
