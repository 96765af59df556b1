"""Assembly's check against the real ffmpeg: damaged or short segments are caught without
decoding, ``verify: decode`` decodes, and a job of one segment takes it as its output.

Needs only the ffmpeg binary shipped in imageio-ffmpeg (no database, broker or GPU).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from workers.encode import EncodeError, count_frames, ffmpeg_binary, read_stream
from workers.formats import get_format
from workers.formats.base import OutputFormat
from workers.media.mp4 import sample_table_facts

pytestmark = [pytest.mark.integration, pytest.mark.one_pass]

W, H = 64, 48
FPS = 24.0
VIDEO_FORMATS = ["h264", "h265", "vp9", "prores", "ffv1", "gif"]


@pytest.fixture(scope="module")
def ff() -> str:
    return ffmpeg_binary()


def gray_frames(count: int, start: int = 0) -> np.ndarray:
    t = np.arange(start, start + count)[:, None, None]
    y = np.arange(H)[None, :, None]
    x = np.arange(W)[None, None, :]
    return np.ascontiguousarray((20 + (t * 7) % 180 + (x + y + 2 * t) % 48).astype(np.uint8))


def segments(
    fmt: OutputFormat, folder: Path, sizes: Sequence[int], ff: str, fps: float = FPS
) -> list[Path]:
    """Encode consecutive chunks of ``gray_frames`` as the render-chunk stage would."""
    out, start = [], 0
    for i, n in enumerate(sizes):
        seg = folder / ".segments" / f"chunk-{i:05d}{fmt.segment_suffix}"
        seg.parent.mkdir(parents=True, exist_ok=True)
        with fmt.open_segment(seg, W, H, fps, "gray", range(start, start + n), ffmpeg=ff) as w:
            w.write(gray_frames(n, start))
        out.append(seg)
        start += n
    return out


def assemble(
    fmt: OutputFormat, segs: list[Path], out: Path, frames: int, ff: str, **kw: object
) -> Path:
    options = {"path": str(out), **kw.pop("options", {})}  # type: ignore[dict-item]
    kw = {"width": W, "height": H, "pix_fmt_in": "gray", **kw}
    return fmt.assemble(segs, out, frames, FPS, ffmpeg=ff, options=options, **kw)  # type: ignore[arg-type]


def out_path(fmt: OutputFormat, folder: Path) -> Path:
    return folder / f"out{fmt.extension}"


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".segments")


@pytest.mark.parametrize("cut", [3, "40%"])
@pytest.mark.parametrize("where", ["middle", "only"])
@pytest.mark.parametrize("name", VIDEO_FORMATS)
def test_a_truncated_segment_is_caught_by_the_packet_check(
    tmp_path: Path, ff: str, name: str, where: str, cut: int | str
) -> None:
    fmt = get_format(name)
    segs = segments(fmt, tmp_path, [7, 9, 6] if where == "middle" else [12], ff)
    victim = segs[1] if where == "middle" else segs[0]
    data = victim.read_bytes()
    keep = len(data) - cut if isinstance(cut, int) else int(len(data) * 0.6)
    victim.write_bytes(data[:keep])
    frames = 22 if where == "middle" else 12
    with pytest.raises(EncodeError):
        assemble(fmt, segs, out_path(fmt, tmp_path), frames, ff)
    assert visible(tmp_path) == []


def drop_last_packet(seg: Path, fmt: OutputFormat, ff: str) -> None:
    """Rewrite ``seg`` by stream copy without its last packet: a whole, valid, short file."""
    frames, _ = count_frames(seg, ffmpeg=ff, decode=False)
    short = seg.with_name(f"short{seg.suffix}")
    muxer = fmt.muxer_for(seg) if not name_is_gif(fmt) else "matroska"
    subprocess.run(
        [ff, "-v", "error", "-i", str(seg), "-map", "0:v:0", "-c", "copy", "-frames:v",
         str(frames - 1), "-f", muxer, str(short)],
        check=True,
    )  # fmt: skip
    os.replace(short, seg)


def name_is_gif(fmt: OutputFormat) -> bool:
    return fmt.name == "gif"


@pytest.mark.parametrize("name", VIDEO_FORMATS)
def test_a_segment_missing_its_last_packet_is_caught(tmp_path: Path, ff: str, name: str) -> None:
    fmt = get_format(name)
    segs = segments(fmt, tmp_path, [7, 9, 6], ff)
    drop_last_packet(segs[1], fmt, ff)
    with pytest.raises(EncodeError, match=r"(holds|decodes to) 21 frames, expected 22"):
        assemble(fmt, segs, out_path(fmt, tmp_path), 22, ff)
    assert visible(tmp_path) == []


def damage_inside(path: Path, at: float = 0.6, span: int = 24) -> None:
    """Overwrite bytes inside the media data: the container still reads cleanly."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start : start + span] = bytes(b ^ 0x5A for b in data[start : start + span])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", VIDEO_FORMATS)
def test_every_format_passes_both_checks_when_whole(tmp_path: Path, ff: str, name: str) -> None:
    fmt = get_format(name)
    segs = segments(fmt, tmp_path, [7, 9, 6], ff)
    out = out_path(fmt, tmp_path)
    for verify in ("packets", "decode"):
        assemble(fmt, segs, out, 22, ff, options={"verify": verify})
        assert fmt.verify(out, ffmpeg=ff, expected_frames=22, fps=FPS, method=verify) == (
            22, pytest.approx(22 / FPS, abs=0.011),
        )  # fmt: skip


@pytest.mark.parametrize("name", ["ffv1", "prores"])
def test_verify_decode_decodes_and_sees_damage_inside_frames(
    tmp_path: Path, ff: str, name: str
) -> None:
    fmt = get_format(name)
    segs = segments(fmt, tmp_path, [12], ff)
    damage_inside(segs[0])
    out = out_path(fmt, tmp_path)
    # Counting packets cannot see inside them: the frames are all there.
    assemble(fmt, segs, out, 12, ff)
    assert count_frames(out, ffmpeg=ff, decode=False)[0] == 12
    out.unlink()
    with pytest.raises(EncodeError, match=r"is damaged: .*\[error\]|decoding .* failed"):
        assemble(fmt, segs, out, 12, ff, options={"verify": "decode"})
    assert visible(tmp_path) == []


@pytest.mark.parametrize("name", ["h264", "h265", "vp9", "prores", "ffv1"])
def test_one_segment_becomes_the_output_without_a_concat(
    tmp_path: Path, ff: str, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    fmt = get_format(name)
    segs = segments(fmt, tmp_path, [25], ff)
    out = out_path(fmt, tmp_path)
    with caplog.at_level(logging.INFO, logger="workers.formats.base"):
        assemble(fmt, segs, out, 25, ff)
    assert os.stat(segs[0]).st_ino == os.stat(out).st_ino  # the same file: no copy was made
    assert "no concat" in caplog.text
    assert visible(tmp_path) == [out.name]
    assert count_frames(out, ffmpeg=ff) == (25, pytest.approx(25 / FPS, abs=0.01))
    raw = subprocess.run(
        [ff, "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    decoded = np.frombuffer(raw, np.uint8).reshape(25, H, W).astype(np.int16)
    means = decoded.reshape(25, -1).mean(axis=1) - gray_frames(25).reshape(25, -1).mean(axis=1)
    assert np.abs(means).max() < 3.0
    # The segment keeps its name until the stage removes the segments after committing, so
    # an assembly that runs again finds it and passes again.
    assemble(fmt, segs, out, 25, ff)
    assert os.stat(segs[0]).st_ino == os.stat(out).st_ino


def test_an_mov_output_of_mp4_segments_is_remuxed_not_linked(tmp_path: Path, ff: str) -> None:
    fmt = get_format("h264")
    segs = segments(fmt, tmp_path, [10], ff)
    out = tmp_path / "out.mov"
    assemble(fmt, segs, out, 10, ff)
    assert os.stat(segs[0]).st_ino != os.stat(out).st_ino
    assert out.read_bytes()[8:12] == b"qt  "


def test_a_wrong_size_or_pixel_format_is_caught(tmp_path: Path, ff: str) -> None:
    h264 = get_format("h264")
    segs = segments(h264, tmp_path / "a", [5, 5], ff)
    with pytest.raises(EncodeError, match="width is 64, expected 66"):
        assemble(h264, segs, out_path(h264, tmp_path / "a"), 10, ff, width=W + 2)
    ffv1 = get_format("ffv1")
    segs = segments(ffv1, tmp_path / "b", [5], ff)
    with pytest.raises(EncodeError, match="pixel format is gray, expected bgr0"):
        assemble(ffv1, segs, out_path(ffv1, tmp_path / "b"), 5, ff, pix_fmt_in="rgb24")


@pytest.mark.parametrize("fps", [24.0, 30000 / 1001], ids=["24fps", "29.97fps"])
@pytest.mark.parametrize("name", ["h264", "h265", "prores"])
def test_mp4_sample_tables_agree_with_ffmpegs_packet_count(
    tmp_path: Path, ff: str, name: str, fps: float
) -> None:
    fmt = get_format(name)
    segs = segments(fmt, tmp_path, [1, 8, 13], ff, fps=fps)
    out = tmp_path / f"joined{fmt.extension}"
    fmt.assemble(segs, out, 22, fps, ffmpeg=ff, width=W, height=H, pix_fmt_in="gray")
    for path, frames in ((segs[0], 1), (segs[2], 13), (out, 22)):
        tables, demux = sample_table_facts(path), read_stream(path, ffmpeg=ff)
        assert tables is not None
        assert (tables.frames, tables.codec, tables.width, tables.height, tables.pix_fmt) == (
            demux.frames, demux.codec, demux.width, demux.height, demux.pix_fmt,
        )  # fmt: skip
        assert tables.frames == frames
        assert tables.duration_s == pytest.approx(frames / fps, abs=1e-6)
        assert tables.fps == pytest.approx(fps) and tables.errors == ()


def sequence_segments(fmt: OutputFormat, folder: Path, ff: str) -> tuple[list[Path], Path]:
    template = folder / "shot" / "sh.####.png"
    segs, start = [], 1
    for i, n in enumerate([4, 5]):
        seg = folder / ".segments" / f"chunk-{i:05d}"
        seg.parent.mkdir(parents=True, exist_ok=True)
        numbers = range(start, start + n)
        with fmt.open_segment(
            seg, W, H, FPS, "gray", numbers, {"path": str(template)}, ffmpeg=ff
        ) as w:
            w.write(gray_frames(n, start))
        segs.append(seg)
        start += n
    return segs, template


def assemble_sequence(
    fmt: OutputFormat, segs: list[Path], template: Path, ff: str, **options: str
) -> Path:
    return fmt.assemble(
        segs, template, 9, FPS, ffmpeg=ff, frame_numbers=list(range(1, 10)),
        options={"path": str(template), **options}, width=W, height=H, pix_fmt_in="gray",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "words"),
    [("cut", "frame sh.0006.png is cut short"), ("empty", "frame sh.0006.png is not a PNG")],
)
@pytest.mark.parametrize("name", ["png8", "png16"])
def test_a_sequence_frame_cut_short_or_empty_is_caught_by_its_bytes(
    tmp_path: Path, ff: str, name: str, damage: str, words: str
) -> None:
    fmt = get_format(name)
    segs, template = sequence_segments(fmt, tmp_path, ff)
    frame = segs[1] / "sh.0006.png"
    frame.write_bytes(frame.read_bytes()[:-20] if damage == "cut" else b"")
    with pytest.raises(EncodeError, match=words):
        assemble_sequence(fmt, segs, template, ff)


def test_a_sequence_of_the_wrong_depth_is_caught(tmp_path: Path, ff: str) -> None:
    png8 = get_format("png8")
    segs, template = sequence_segments(png8, tmp_path, ff)
    with pytest.raises(EncodeError, match=r"is 64x48, 8-bit colour type 0; expected 64x48, 16"):
        assemble_sequence(get_format("png16"), segs, template, ff)


def test_sequence_verify_decode_decodes_every_frame(tmp_path: Path, ff: str) -> None:
    fmt = get_format("png8")
    segs, template = sequence_segments(fmt, tmp_path, ff)
    damage_inside(segs[1] / "sh.0007.png", at=0.5, span=8)  # inside IDAT: the ends still match
    assemble_sequence(fmt, segs, template, ff)
    with pytest.raises(EncodeError, match="decoding 9 frames"):
        assemble_sequence(fmt, segs, template, ff, verify="decode")
