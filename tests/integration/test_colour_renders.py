"""Colour through the farm: a tiny glyph-SDF cVAE renders a shaded title and a storyboard
whose shots change colour, and a tiny
VAE trained on a user's RGBA art a latent walk; the videos are decoded and checked for frame
count, size, colour, and frames identical whatever the chunking."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.harness import Farm
from workers.encode import ffmpeg_binary

pytestmark = pytest.mark.one_pass

GLYPHS = {"kind": "train", "name": "glyphs-c", "dataset": "glyphs", "target": "sdf",
          "charset": "ABC", "fonts": ["DejaVuSans", "DejaVuSans-Bold"], "heldout_fonts": [],
          "conditional": True, "image_size": 16, "epochs": 3, "latent_dim": 2}  # fmt: skip
RED, BLUE, GREEN = "#ff0000", "#0000ff", "#00ff00"


@pytest.fixture(scope="module")
def trained(farm: Farm) -> dict[str, int]:
    ids = {"glyphs": farm.submit(GLYPHS)}
    for job_id in ids.values():
        assert farm.wait(job_id, timeout_s=300)["state"] == "succeeded", farm.logs()
    return ids


def decode(video: Path, width: int, height: int) -> np.ndarray:
    """Every frame of ``video`` as RGB ``(N, H, W, 3)``."""
    raw = subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-i", str(video), "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def near(frames: np.ndarray, colour: str, tol: int = 8) -> float:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return float((np.abs(frames.astype(np.int16) - rgb).max(-1) <= tol).mean())


def rendered(farm: Farm, spec: dict[str, Any]) -> np.ndarray:
    job_id = farm.submit(spec)
    assert farm.wait(job_id, timeout_s=180)["state"] == "succeeded", farm.logs()
    video = next(a for a in farm.detail(job_id)["artifacts"] if a["kind"] == "video")
    return decode(Path(video["path"]), spec["width"], spec["height"])


def test_a_glyph_title_is_shaded_in_the_specs_colours(farm: Farm, trained: dict[str, int]) -> None:
    spec = {"kind": "render", "mode": "title", "text": "CAB", "style": "DejaVuSans-Bold",
            "checkpoint": f"job:{trained['glyphs']}", "frames": "1-20", "width": 64,
            "height": 48, "colors": {"fill": RED, "background": BLUE, "smooth_px": 0.5},
            "output": {"path": "renders/title.mkv", "format": "ffv1"}}  # fmt: skip
    chunked = rendered(farm, {**spec, "name": "title-7", "chunk_size": 7})
    assert chunked.shape == (20, 48, 64, 3)
    assert near(chunked, BLUE) > 0.4 and near(chunked, RED) > 0.02
    # Anti-aliased, not thresholded: some pixels lie between the two colours.
    between = (chunked[..., 0] > 40) & (chunked[..., 0] < 215)
    assert between.mean() > 0.001
    whole = rendered(farm, {**spec, "name": "title-1",
                            "output": {"path": "renders/title-1.mkv", "format": "ffv1"},
                            "chunk_size": 20})  # fmt: skip
    assert np.array_equal(chunked, whole)


def test_a_storyboard_changes_colour_per_shot(farm: Farm, trained: dict[str, int]) -> None:
    shots = [{"class": "A", "hold": 3, "transition": 3, "colors": {"fill": RED}},
             {"class": "B", "hold": 3, "colors": {"fill": GREEN}}]  # fmt: skip
    spec = {"kind": "render", "name": "glyph-story", "mode": "storyboard", "storyboard": shots,
            "checkpoint": f"job:{trained['glyphs']}", "frames": "1-9", "width": 48,
            "height": 48, "chunk_size": 4, "colors": {"background": BLUE},
            "output": {"path": "renders/story.mkv", "format": "ffv1"}}  # fmt: skip
    frames = rendered(farm, spec)
    assert frames.shape == (9, 48, 48, 3)
    assert near(frames[0], RED) > 0.02 and near(frames[0], GREEN) == 0.0
    assert near(frames[8], GREEN) > 0.02 and near(frames[8], RED) == 0.0
    assert near(frames, BLUE) > 0.4


def test_a_users_colour_art_trains_and_renders_in_colour(
    farm: Farm, trained: dict[str, int]
) -> None:
    from PIL import Image, ImageDraw

    art = farm.settings.output_root_abs() / "art"
    art.mkdir(parents=True, exist_ok=True)
    for i in range(16):
        img = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
        box = (3 + i % 3, 3, 12 + i % 3, 12)
        colour = (230, 40, 30, 255) if i % 2 else (30, 60, 230, 255)
        ImageDraw.Draw(img).ellipse(box, fill=colour)
        img.save(art / f"sprite{i:02d}.png")
    job = farm.submit({"kind": "train", "name": "art", "dataset": "images:art",
                       "image_size": 16, "epochs": 30, "latent_dim": 2})  # fmt: skip
    assert farm.wait(job, timeout_s=240)["state"] == "succeeded", farm.logs()
    spec = {"kind": "render", "name": "art-walk", "checkpoint": f"job:{job}",
            "keyframes": ["seed:1", "seed:2"], "frames": "1-6", "width": 32, "height": 32,
            "colors": {"background": GREEN},
            "output": {"path": "renders/art.mkv", "format": "ffv1"}}  # fmt: skip
    frames = rendered(farm, spec)
    assert frames.shape == (6, 32, 32, 3)
    assert near(frames, GREEN, tol=40) > 0.3  # the model's own transparency, over green
    # The sprites keep their colour: red, blue or the purple between, where they cover the
    # green. A grey model over green could only make pixels with green >= red = blue there.
    f = frames.astype(np.int16)
    inside = np.abs(f - np.array([0, 255, 0], dtype=np.int16)).max(-1) > 150
    tinted = np.maximum(f[..., 0], f[..., 2]) > f[..., 1] + 15
    assert inside.mean() > 0.02 and tinted[inside].mean() > 0.5
