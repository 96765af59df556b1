"""Real-ffmpeg checks of the encode edge: exact frame counts survive encode and stream-copy joins.

Needs only the ffmpeg binary shipped in imageio-ffmpeg (no database, broker or GPU).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from workers.encode import (
    EncodeError,
    SegmentWriter,
    concat_segments,
    count_frames,
    ffmpeg_binary,
    probe_video,
)

pytestmark = [pytest.mark.integration, pytest.mark.one_pass]

SIZE = 64
NTSC = 30000 / 1001
FPS_CASES = [pytest.param(24.0, id="24fps"), pytest.param(NTSC, id="29.97fps")]


@pytest.fixture(scope="module")
def ff() -> str:
    return ffmpeg_binary()


def frames_for(start: int, count: int) -> np.ndarray:
    """A gradient that moves each frame, on a per-frame brightness level that never repeats.

    Levels step by 7 (coprime with 200), so every frame of the first 200 has a distinct mean
    and an off-by-one frame anywhere shows up as a mean error of about 7.
    """
    t = np.arange(start, start + count)[:, None, None]
    x = np.arange(SIZE)[None, None, :]
    level = 20 + (t * 7) % 200
    ramp = (x + 2 * t) % 32
    img = (level + ramp).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(img, (count, SIZE, SIZE)))


def read_args(ff: str, path: Path) -> list[str]:
    return [ff, "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0"]


def decode_gray(path: Path, ff: str) -> np.ndarray:
    raw = subprocess.run(
        [
            *read_args(ff, path),
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "pipe:",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, SIZE, SIZE)


def encode(path: Path, frames: np.ndarray, fps: float, ff: str) -> Path:
    with SegmentWriter(path, SIZE, SIZE, fps, ffmpeg=ff) as writer:
        for chunk in np.array_split(frames, 3):
            writer.write(chunk)
    assert writer.frames_written == len(frames)
    return path


def wait_for_partial_output(writer: SegmentWriter) -> None:
    """Make ffmpeg create its temp output so the cleanup under test has something to remove."""
    assert writer._proc is not None and writer._proc.stdin is not None
    writer._proc.stdin.flush()
    deadline = time.monotonic() + 10
    while not writer.tmp_path.exists():
        assert time.monotonic() < deadline, "ffmpeg never opened its output"
        time.sleep(0.02)


def frame_means(frames: np.ndarray) -> np.ndarray:
    return frames.reshape(len(frames), -1).mean(axis=1)


@pytest.mark.parametrize("fps", FPS_CASES)
def test_single_segment_has_exact_frames_size_and_rate(tmp_path: Path, ff: str, fps: float) -> None:
    src = frames_for(0, 37)
    out = encode(tmp_path / "seg.mp4", src, fps, ff)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.mp4"]
    frames, secs = count_frames(out, ffmpeg=ff)
    assert frames == 37
    assert abs(secs - 37 / fps) <= 1 / fps
    info = probe_video(out, ffmpeg=ff)
    assert (info["width"], info["height"], info["codec"]) == (SIZE, SIZE, "h264")
    assert info["fps"] == pytest.approx(fps, abs=0.01)
    assert info["frames"] == 37
    decoded = decode_gray(out, ff)
    assert decoded.shape == (37, SIZE, SIZE)
    np.testing.assert_allclose(frame_means(decoded), frame_means(src), atol=2.0)


def test_single_frame_writes_and_partial_file_is_hidden(tmp_path: Path, ff: str) -> None:
    final = tmp_path / "one.mp4"
    with SegmentWriter(final, SIZE, SIZE, 24.0, ffmpeg=ff) as writer:
        writer.write(frames_for(0, 1)[0])
        writer.write(frames_for(1, 2))
        assert not final.exists()
        assert writer.tmp_path.parent == tmp_path
        assert writer.tmp_path.name.startswith(f".one.mp4.tmp-{os.getpid()}-")
        assert writer.tmp_path.suffix == ".mp4"
    assert count_frames(final, ffmpeg=ff)[0] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["one.mp4"]


@pytest.mark.parametrize("fps", FPS_CASES)
def test_concat_by_stream_copy_keeps_every_frame_in_order(
    tmp_path: Path, ff: str, fps: float
) -> None:
    sizes = [50, 50, 23]
    src = frames_for(0, sum(sizes))
    segments: list[Path] = []
    start = 0
    for i, n in enumerate(sizes):
        segments.append(encode(tmp_path / f"seg{i:03d}.mp4", src[start : start + n], fps, ff))
        start += n

    out = tmp_path / "final" / "video.mp4"
    concat_segments(segments, out, ffmpeg=ff, expected_frames=123, fps=fps)

    frames, secs = count_frames(out, ffmpeg=ff)
    assert frames == 123
    assert abs(secs - 123 / fps) <= 1 / fps
    assert [p.name for p in out.parent.iterdir()] == ["video.mp4"]

    joined = decode_gray(out, ff)
    assert joined.shape == (123, SIZE, SIZE)
    np.testing.assert_allclose(frame_means(joined), frame_means(src), atol=2.0)
    per_segment = np.concatenate([decode_gray(seg, ff) for seg in segments])
    np.testing.assert_allclose(
        joined.astype(np.int16), per_segment.astype(np.int16), atol=1, rtol=0
    )

    time_base, pts = _packet_pts(out, ff)
    assert len(pts) == 123 and pts[0] == 0
    steps = set(np.diff(pts).tolist())
    assert len(steps) == 1, f"timestamps must advance by exactly one frame each: {steps}"
    assert steps.pop() * time_base == 1 / Fraction(fps).limit_denominator(100_000)


def _packet_pts(path: Path, ff: str) -> tuple[Fraction, list[int]]:
    """Packet timestamps as stored, with no decoder or frame-rate logic smoothing over gaps."""
    text = subprocess.run(
        [*read_args(ff, path), "-c", "copy", "-f", "framecrc", "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tb = re.search(r"^#tb 0: (\d+)/(\d+)$", text, re.MULTILINE)
    assert tb is not None, text[:500]
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    return Fraction(int(tb[1]), int(tb[2])), sorted(int(row[2]) for row in rows)


def test_concat_handles_quotes_in_paths(tmp_path: Path, ff: str) -> None:
    odd = tmp_path / "it's a 'dir'"
    a = encode(odd / "a.mp4", frames_for(0, 5), 24.0, ff)
    b = encode(odd / "b.mp4", frames_for(5, 6), 24.0, ff)
    out = odd / "out.mp4"
    concat_segments([a, b], out, ffmpeg=ff, expected_frames=11)
    assert count_frames(out, ffmpeg=ff)[0] == 11


def test_concat_with_wrong_expected_frames_leaves_no_output(tmp_path: Path, ff: str) -> None:
    segs = [encode(tmp_path / "s0.mp4", frames_for(0, 10), 24.0, ff)]
    segs.append(encode(tmp_path / "s1.mp4", frames_for(10, 10), 24.0, ff))
    out = tmp_path / "out.mp4"
    with pytest.raises(EncodeError, match="assembled video has 20 frames, expected 21"):
        concat_segments(segs, out, ffmpeg=ff, expected_frames=21)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0.mp4", "s1.mp4"]


def test_invalid_preset_raises_with_stderr_tail_and_leaves_nothing(tmp_path: Path, ff: str) -> None:
    with (
        pytest.raises(EncodeError) as info,
        SegmentWriter(tmp_path / "bad.mp4", SIZE, SIZE, 24.0, ffmpeg=ff, preset="warp9") as w,
    ):
        w.write(frames_for(0, 4))
    assert info.value.stderr_tail.strip()
    assert info.value.stderr_tail.strip() in str(info.value)
    assert "preset" in info.value.stderr_tail.lower()
    assert list(tmp_path.iterdir()) == []


def test_killed_ffmpeg_raises_and_leaves_nothing(tmp_path: Path, ff: str) -> None:
    with (
        pytest.raises(EncodeError),
        SegmentWriter(tmp_path / "k.mp4", SIZE, SIZE, 24.0, ffmpeg=ff) as w,
    ):
        w.write(frames_for(0, 30))
        wait_for_partial_output(w)
        assert w._proc is not None
        os.kill(w._proc.pid, signal.SIGKILL)
        w._proc.wait()
        for _ in range(200):
            w.write(frames_for(0, 20))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(np.zeros((2, SIZE, SIZE), np.float32), id="float32"),
        pytest.param(np.zeros((2, SIZE, SIZE), np.uint16), id="uint16"),
        pytest.param(np.zeros((2, SIZE, SIZE + 2), np.uint8), id="wrong-width"),
        pytest.param(np.zeros((2, SIZE, SIZE, 3), np.uint8), id="rgb"),
    ],
)
def test_bad_frames_raise_value_error_and_leave_nothing(
    tmp_path: Path, ff: str, bad: np.ndarray
) -> None:
    with (
        pytest.raises(ValueError),
        SegmentWriter(tmp_path / "v.mp4", SIZE, SIZE, 24.0, ffmpeg=ff) as w,
    ):
        w.write(frames_for(0, 30))
        wait_for_partial_output(w)
        w.write(bad)
    assert list(tmp_path.iterdir()) == []


def test_frame_count_mismatch_is_an_error(tmp_path: Path, ff: str) -> None:
    with (
        pytest.raises(EncodeError, match="wrote 4 frames but ffmpeg encoded 3"),
        SegmentWriter(tmp_path / "m.mp4", SIZE, SIZE, 24.0, ffmpeg=ff) as w,
    ):
        w.write(frames_for(0, 3))
        w.frames_written += 1
    assert list(tmp_path.iterdir()) == []


def test_exception_in_block_propagates_and_leaves_nothing(tmp_path: Path, ff: str) -> None:
    with (
        pytest.raises(KeyError),
        SegmentWriter(tmp_path / "x.mp4", SIZE, SIZE, 24.0, ffmpeg=ff) as w,
    ):
        w.write(frames_for(0, 30))
        wait_for_partial_output(w)
        raise KeyError("render failed")
    assert w._proc is not None and w._proc.returncode == -signal.SIGKILL
    assert list(tmp_path.iterdir()) == []


def test_no_frames_is_an_error(tmp_path: Path, ff: str) -> None:
    with pytest.raises(EncodeError), SegmentWriter(tmp_path / "e.mp4", SIZE, SIZE, 24.0, ffmpeg=ff):
        pass
    assert list(tmp_path.iterdir()) == []


def test_count_frames_rejects_unreadable_file(tmp_path: Path, ff: str) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(EncodeError):
        count_frames(junk, ffmpeg=ff)
    with pytest.raises(EncodeError):
        count_frames(tmp_path / "missing.mp4", ffmpeg=ff)


def test_ffmpeg_binary_resolution(tmp_path: Path, ff: str) -> None:
    assert Path(ffmpeg_binary()).is_file()
    assert ffmpeg_binary(ff) == ff
    with pytest.raises(EncodeError, match="FARM_FFMPEG"):
        ffmpeg_binary(str(tmp_path / "no-such-ffmpeg"))
