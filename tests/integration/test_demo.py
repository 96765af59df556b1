"""``farm demo``, the main job, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from farm.demo import RENDER
from farm.frames import parse_frames
from workers.encode import count_frames, ffmpeg_binary, probe_video

pytestmark = pytest.mark.one_pass


def decoded_frame(video: Path, index: int, width: int, height: int) -> np.ndarray:
    """Frame ``index`` of ``video`` as RGB ``(H, W, 3)``, decoded by the bundled ffmpeg."""
    raw = subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-i", str(video), "-vf", f"select=eq(n\\,{index})",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def near(frame: np.ndarray, colour: str, tol: float = 12.0) -> float:
    """The share of ``frame``'s pixels within ``tol`` of ``colour`` (``#rrggbb``)."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    return float((np.abs(frame.astype(np.float64) - rgb).max(-1) <= tol).mean())


def test_farm_demo_renders_the_colour_title(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_DATA_DIR"] = str(tmp_path / "data")
    # No URLs at all, so the demo starts (and stops) its own embedded servers.
    out = tmp_path / "renders"
    res = subprocess.run(
        [sys.executable, "-m", "farm", "demo", "--out", str(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    video = Path(res.stdout.strip().splitlines()[-1])
    assert video == (out / "demo.mp4").resolve()
    frames = len(parse_frames(RENDER["frames"]))
    assert count_frames(video, ffmpeg=ffmpeg_binary())[0] == frames
    info = probe_video(video, ffmpeg=ffmpeg_binary())
    width, height = RENDER["width"], RENDER["height"]
    assert (info["width"], info["height"]) == (width, height)
    # The first letter, held: the fill's colour on the background's, as the spec asks.
    first = decoded_frame(video, 2, width, height)
    colors = RENDER["colors"]
    assert 0.02 < near(first, colors["fill"]) < 0.5
    assert near(first, colors["background"]) > 0.5
    assert not (tmp_path / "data" / "runtime.json").exists()
