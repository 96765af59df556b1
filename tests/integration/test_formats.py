"""Every output format against the real ffmpeg: decode, count, compare, join, mux, preview.

Needs only the ffmpeg binary shipped in imageio-ffmpeg (no database, broker or GPU).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import wave
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from workers.audio import audio_duration
from workers.encode import EncodeError, PipelinedWriter, PipeWriter, ffmpeg_binary, probe_video
from workers.formats import describe_output, get_format, verify_output
from workers.formats.base import OutputFormat
from workers.previews import contact_sheet, poster_frame

pytestmark = [pytest.mark.integration, pytest.mark.one_pass]

W, H = 64, 48
FPS = 24.0
SIZES = [7, 13, 5]
VIDEO_FORMATS = ["h264", "h265", "vp9", "prores", "ffv1", "gif"]


@pytest.fixture(scope="module")
def ff() -> str:
    return ffmpeg_binary()


def gray_frames(count: int, start: int = 0) -> np.ndarray:
    """A moving ramp on a per-frame level that steps by 7, so each frame is distinct."""
    t = np.arange(start, start + count)[:, None, None]
    y = np.arange(H)[None, :, None]
    x = np.arange(W)[None, None, :]
    img = 20 + (t * 7) % 180 + (x + y + 2 * t) % 48
    return np.ascontiguousarray(img.astype(np.uint8))


def rgb_frames(count: int) -> np.ndarray:
    g = gray_frames(count)
    return np.ascontiguousarray(np.stack([g, 255 - g, np.roll(g, 5, axis=2)], axis=-1))


def render(
    fmt: OutputFormat,
    folder: Path,
    frames: np.ndarray,
    numbers: Sequence[int],
    sizes: Sequence[int],
    ff: str,
    *,
    pix_fmt_in: str = "gray",
    out_name: str | None = None,
    audio: Path | None = None,
) -> Path:
    """Encode ``frames`` in chunks of ``sizes`` and assemble them, as the stages would."""
    out = folder / (out_name or ("sh.####.png" if fmt.is_sequence else f"out{fmt.extension}"))
    options = {"path": str(out)}
    segments = []
    start = 0
    for i, n in enumerate(sizes):
        seg = folder / ".segments" / f"chunk-{i:05d}{fmt.segment_suffix}"
        seg.parent.mkdir(parents=True, exist_ok=True)
        part = numbers[start : start + n]
        with fmt.open_segment(seg, W, H, FPS, pix_fmt_in, part, options, ffmpeg=ff) as w:
            w.write(frames[start : start + n])
        segments.append(seg)
        start += n
    return fmt.assemble(
        segments, out, len(frames), FPS, audio, ffmpeg=ff, frame_numbers=list(numbers),
        options={"path": str(out)}, width=W, height=H, pix_fmt_in=pix_fmt_in,
    )  # fmt: skip


def decode(ff: str, src: Path | Sequence[Path], pix_fmt: str, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(src, Path):
        inputs = ["-i", str(src)]
    else:
        listing = src[0].parent / ".test.ffconcat"
        listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{p}'\n" for p in src))
        inputs = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    raw = subprocess.run(
        [ff, "-v", "error", "-nostdin", *inputs, "-map", "0:v:0", "-fps_mode", "passthrough",
         "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:"],
        check=True,
        capture_output=True,
    ).stdout  # fmt: skip
    if not isinstance(src, Path):
        (src[0].parent / ".test.ffconcat").unlink()
    dtype = np.dtype("<u2") if "16" in pix_fmt or "48" in pix_fmt else np.dtype(np.uint8)
    return np.frombuffer(raw, dtype).reshape(-1, *shape)


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".segments"))


@pytest.mark.parametrize("name", VIDEO_FORMATS)
def test_every_video_format_joins_to_exact_frames_size_and_rate(
    tmp_path: Path, ff: str, name: str
) -> None:
    fmt = get_format(name)
    src = gray_frames(sum(SIZES))
    out = render(fmt, tmp_path, src, range(1, 26), SIZES, ff)

    assert visible(tmp_path) == [out.name]
    info = describe_output(out, name, ffmpeg=ff)
    assert (info["codec"], info["width"], info["height"]) == (fmt.codec, W, H)
    assert info["frames"] == 25
    assert info["duration"] == pytest.approx(25 / FPS, abs=1 / FPS)
    assert info["fps"] == pytest.approx(25.0 if name == "gif" else FPS, abs=0.01)
    assert info["size"] == out.stat().st_size > 0
    decoded = decode(ff, out, "gray", (H, W)).astype(np.int16)
    assert decoded.shape == (25, H, W)
    means = decoded.reshape(25, -1).mean(axis=1) - src.reshape(25, -1).mean(axis=1)
    assert np.abs(means).max() < 3.0, "a frame is missing, doubled or out of order"


def test_h265_is_tagged_hvc1_for_quicktime(tmp_path: Path, ff: str) -> None:
    out = render(get_format("h265"), tmp_path, gray_frames(25), range(25), SIZES, ff)
    data = out.read_bytes()
    assert b"hvc1" in data and b"hev1" not in data


def test_vp9_join_keeps_timestamps_continuous(tmp_path: Path, ff: str) -> None:
    out = render(get_format("vp9"), tmp_path, gray_frames(25), range(25), SIZES, ff)
    text = subprocess.run(
        [ff, "-v", "error", "-i", str(out), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tb = re.search(r"^#tb 0: (\d+)/(\d+)$", text, re.MULTILINE)
    assert tb is not None
    pts = sorted(int(line.split(",")[2]) for line in text.splitlines() if line[:1].isdigit())
    assert len(pts) == 25 and pts[0] == 0
    steps = np.diff(pts) * Fraction(int(tb[1]), int(tb[2]))
    assert all(abs(float(s) - 1 / FPS) <= 0.0011 for s in steps), steps


@pytest.mark.parametrize(
    ("name", "pix_fmt_in", "read_as"),
    [
        ("ffv1", "gray", "gray"),
        ("ffv1", "rgb24", "rgb24"),
        ("png8", "gray", "gray"),
        ("png8", "rgb24", "rgb24"),
        ("png16", "gray", "gray16le"),
    ],
)
def test_lossless_chunked_and_whole_renders_decode_identically(
    tmp_path: Path, ff: str, name: str, pix_fmt_in: str, read_as: str
) -> None:
    fmt = get_format(name)
    src = gray_frames(25) if pix_fmt_in == "gray" else rgb_frames(25)
    shape = src.shape[1:]
    outs = []
    for label, sizes in (("chunked", SIZES), ("whole", [25])):
        folder = tmp_path / label
        folder.mkdir()
        out = render(fmt, folder, src, range(1001, 1026), sizes, ff, pix_fmt_in=pix_fmt_in)
        outs.append(fmt.frame_files(out) if fmt.is_sequence else out)  # type: ignore[attr-defined]
    chunked, whole = (decode(ff, o, read_as, shape) for o in outs)
    assert chunked.tobytes() == whole.tobytes()
    expected = src.astype(np.uint16) * 257 if read_as == "gray16le" else src
    assert chunked.tobytes() == np.ascontiguousarray(expected, dtype=chunked.dtype).tobytes()


def test_png16_passes_uint16_frames_through(tmp_path: Path, ff: str) -> None:
    src = (gray_frames(4).astype(np.uint16) * 200 + 3).astype(np.uint16)
    out = render(get_format("png16"), tmp_path, src, [1, 2, 3, 4], [4], ff, pix_fmt_in="gray16le")
    files = get_format("png16").frame_files(out)  # type: ignore[attr-defined]
    assert decode(ff, files, "gray16le", (H, W)).tobytes() == src.astype("<u2").tobytes()


@pytest.mark.parametrize(
    ("numbers", "sizes", "first", "last"),
    [
        (list(range(1001, 1011)), [3, 4, 3], "sh010.1001.png", "sh010.1010.png"),
        (list(range(1, 21, 2)), [5, 5], "sh010.0001.png", "sh010.0019.png"),
    ],
    ids=["1001-1010", "1-20x2"],
)
def test_sequence_names_are_the_jobs_frame_numbers(
    tmp_path: Path, ff: str, numbers: list[int], sizes: list[int], first: str, last: str
) -> None:
    fmt = get_format("png8")
    out = render(fmt, tmp_path, gray_frames(10), numbers, sizes, ff, out_name="sh010.####.png")
    assert visible(tmp_path) == sorted(f"sh010.{n:04d}.png" for n in numbers)
    info = describe_output(out, fmt, ffmpeg=ff)
    assert (info["first"], info["last"], info["frames"]) == (first, last, 10)
    assert (info["width"], info["height"]) == (W, H)
    files = fmt.frame_files(out)  # type: ignore[attr-defined]
    assert decode(ff, files, "gray", (H, W)).tobytes() == gray_frames(10).tobytes()
    # A re-run of assembly finds the frames in place and passes.
    segs = sorted((tmp_path / ".segments").iterdir())
    fmt.assemble(segs, out, 10, FPS, ffmpeg=ff, frame_numbers=numbers)


def test_printf_template_and_stray_frames_are_refused(tmp_path: Path, ff: str) -> None:
    fmt = get_format("png8")
    (tmp_path / "sh.0099.png").write_bytes(b"old")
    with pytest.raises(EncodeError, match="does not render"):
        render(fmt, tmp_path, gray_frames(3), [1, 2, 3], [3], ff, out_name="sh.%04d.png")
    assert visible(tmp_path) == ["sh.0099.png"]


def test_gif_palette_comes_from_the_frames(tmp_path: Path, ff: str) -> None:
    fmt = get_format("gif")
    assert "palettegen" in " ".join(fmt.assemble_args({}))  # type: ignore[attr-defined]
    src = gray_frames(12)
    out = render(fmt, tmp_path / "gray", src, range(12), [5, 7], ff)
    rgb = decode(ff, out, "rgb24", (H, W, 3)).astype(np.int16)
    assert np.abs(rgb - src[..., None].astype(np.int16)).max() <= 2

    colour = rgb_frames(12)
    out = render(fmt, tmp_path / "rgb", colour, range(12), [5, 7], ff, pix_fmt_in="rgb24")
    err = np.abs(decode(ff, out, "rgb24", (H, W, 3)).astype(np.int16) - colour).mean()
    default = tmp_path / "default.gif"
    seg = tmp_path / "rgb" / ".segments" / "chunk-00000.mkv"
    subprocess.run([ff, "-v", "error", "-i", str(seg), "-f", "gif", str(default)], check=True)
    rgb_default = decode(ff, default, "rgb24", (H, W, 3)).astype(np.int16)
    default_err = np.abs(rgb_default - colour[:5]).mean()
    assert err < 3.0 and default_err > 2 * err, (err, default_err)


def write_sine(path: Path, seconds: float, rate: int = 44100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


@pytest.mark.parametrize(
    ("name", "seconds", "codec"),
    [("h264", 3.0, "aac"), ("h264", 0.3, "aac"), ("vp9", 3.0, "opus"), ("prores", 0.5, "aac")],
)
def test_audio_is_muxed_to_the_picture_length(
    tmp_path: Path, ff: str, name: str, seconds: float, codec: str
) -> None:
    wav = write_sine(tmp_path / "tone.wav", seconds)
    out = render(get_format(name), tmp_path / "v", gray_frames(25), range(25), SIZES, ff, audio=wav)
    assert visible(out.parent) == [out.name]
    assert audio_duration(out, ffmpeg=ff) == pytest.approx(25 / FPS, abs=1 / FPS)
    verify_output(out, name, ffmpeg=ff, expected_frames=25, fps=FPS)
    err = subprocess.run([ff, "-hide_banner", "-i", str(out)], capture_output=True, text=True)
    assert re.search(rf"Audio: {codec}\b", err.stderr), err.stderr


def test_audio_errors_leave_nothing(tmp_path: Path, ff: str) -> None:
    wav = write_sine(tmp_path / "tone.wav", 1.0)
    with pytest.raises(EncodeError, match="gif output cannot carry audio"):
        render(get_format("gif"), tmp_path / "g", gray_frames(4), range(4), [4], ff, audio=wav)
    with pytest.raises(EncodeError, match="does not exist"):
        render(get_format("h264"), tmp_path / "m", gray_frames(4), range(4), [4], ff,
               audio=tmp_path / "missing.wav")  # fmt: skip
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really" * 50)
    with pytest.raises(EncodeError, match="cannot be decoded") as info:
        render(get_format("h264"), tmp_path / "j", gray_frames(4), range(4), [4], ff, audio=junk)
    assert info.value.stderr_tail.strip()
    for folder in ("g", "m", "j"):
        assert visible(tmp_path / folder) == []


@pytest.mark.parametrize("kind", ["video", "sequence"])
def test_previews_have_the_expected_dimensions(tmp_path: Path, ff: str, kind: str) -> None:
    fmt = get_format("h264" if kind == "video" else "png16")
    out = render(fmt, tmp_path, gray_frames(25), range(101, 126), SIZES, ff)
    source = out if kind == "video" else fmt.frame_files(out)  # type: ignore[attr-defined]
    poster, pw, ph = poster_frame(source, tmp_path / "p" / "poster.png", ffmpeg=ff)
    assert (pw, ph) == (W, H)
    sheet, sw, sh = contact_sheet(
        source, tmp_path / "p" / "sheet.png", ffmpeg=ff, count=10, columns=4,
        frame_numbers=list(range(101, 126)),
    )  # fmt: skip
    assert (sw, sh) == (4 * W + 3 * 2, 3 * H + 2 * 2)
    for path, size in ((poster, (pw, ph)), (sheet, (sw, sh))):
        info = probe_video(path, ffmpeg=ff)
        assert (info["width"], info["height"]) == size
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["poster.png", "sheet.png"]
    middle = decode(ff, poster, "gray", (H, W)).astype(np.int16)
    assert abs(middle.mean() - gray_frames(25)[12].mean()) < 3


def test_wrong_expected_count_fails_verification_and_leaves_nothing(
    tmp_path: Path, ff: str
) -> None:
    fmt = get_format("ffv1")
    seg = tmp_path / "s.mkv"
    with fmt.open_segment(seg, W, H, FPS, "gray", range(5), ffmpeg=ff) as w:
        w.write(gray_frames(5))
    with pytest.raises(EncodeError, match="holds 5 frames, expected 6"):
        fmt.assemble([seg], tmp_path / "out.mkv", 6, FPS, ffmpeg=ff)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mkv"]


def test_broken_segment_raises_with_stderr_tail_and_leaves_nothing(tmp_path: Path, ff: str) -> None:
    junk = tmp_path / "s.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(EncodeError) as info:
        get_format("h264").assemble([junk], tmp_path / "out.mp4", 3, FPS, ffmpeg=ff)
    assert info.value.stderr_tail.strip() and info.value.stderr_tail.strip() in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp4"]


@pytest.mark.parametrize("name", ["h265", "png8"])
def test_killed_encoder_leaves_no_partial_output(tmp_path: Path, ff: str, name: str) -> None:
    fmt = get_format(name)
    seg = tmp_path / f"chunk{fmt.segment_suffix}"
    opts = {"path": str(tmp_path / "a.####.png")} if fmt.is_sequence else {}
    with (
        pytest.raises(EncodeError),
        fmt.open_segment(seg, W, H, FPS, "gray", range(500), opts, ffmpeg=ff) as w,
    ):
        w.write(gray_frames(10))
        assert isinstance(w, PipeWriter) and w._proc is not None
        time.sleep(0.2)
        os.kill(w._proc.pid, signal.SIGKILL)
        w._proc.wait()
        for _ in range(200):
            w.write(gray_frames(5))
    assert list(tmp_path.iterdir()) == []


def test_bad_requests_fail_before_ffmpeg_starts(tmp_path: Path, ff: str) -> None:
    with pytest.raises(ValueError, match="yuv420p"):
        get_format("h264").open_segment(tmp_path / "a.mp4", 63, 48, FPS, "gray", [1], ffmpeg=ff)
    with pytest.raises(ValueError, match="no frame placeholder"):
        get_format("png8").open_segment(
            tmp_path / "c", W, H, FPS, "gray", [1], {"path": "x.png"}, ffmpeg=ff
        )
    with pytest.raises(ValueError, match="unknown output format"):
        get_format("mpeg2")
    assert list(tmp_path.iterdir()) == []


def test_frame_count_must_match_frame_numbers(tmp_path: Path, ff: str) -> None:
    fmt = get_format("ffv1")
    with (
        pytest.raises(EncodeError, match="got 3 frames for 4 frame numbers"),
        fmt.open_segment(tmp_path / "s.mkv", W, H, FPS, "gray", [1, 2, 3, 4], ffmpeg=ff) as w,
    ):
        w.write(gray_frames(3))
    assert list(tmp_path.iterdir()) == []


def test_pipelined_writer_encodes_everything_in_order(tmp_path: Path, ff: str) -> None:
    fmt = get_format("ffv1")
    src = gray_frames(25)
    inner = fmt.open_segment(tmp_path / "p.mkv", W, H, FPS, "gray", range(25), ffmpeg=ff)
    with PipelinedWriter(inner, depth=2) as w:
        for part in np.array_split(src, 6):
            w.write(part)
    assert w.frames_written == 25
    assert decode(ff, tmp_path / "p.mkv", "gray", (H, W)).tobytes() == src.tobytes()


def test_pipelined_writer_raises_thread_errors_and_leaves_nothing(tmp_path: Path, ff: str) -> None:
    inner = get_format("ffv1").open_segment(
        tmp_path / "p.mkv", W, H, FPS, "gray", range(25), ffmpeg=ff
    )
    with pytest.raises(ValueError, match="must have shape"), PipelinedWriter(inner) as w:
        w.write(gray_frames(5))
        w.write(np.zeros((2, H, W + 2), np.uint8))
        for _ in range(50):
            w.write(gray_frames(5))
            time.sleep(0.01)
    assert list(tmp_path.iterdir()) == []
