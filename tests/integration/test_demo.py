"""``farm demo``, the main job, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workers.encode import count_frames, ffmpeg_binary, probe_video


def test_farm_demo_renders_the_digit_morph(
    database_url: str, broker_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_DATA_DIR"] = str(tmp_path / "data")
    if os.environ.get("FARM_TEST_SERVERS", "embedded") == "external":
        env.update(FARM_DATABASE_URL=database_url, FARM_BROKER_URL=broker_url)
    # else: no URLs at all, so the demo starts (and stops) its own embedded servers.
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
    assert count_frames(video, ffmpeg=ffmpeg_binary())[0] == 240
    info = probe_video(video, ffmpeg=ffmpeg_binary())
    assert (info["width"], info["height"]) == (256, 256)
    assert not (tmp_path / "data" / "runtime.json").exists()
