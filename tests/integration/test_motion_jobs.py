"""Motion and strokes as farm jobs (issue 13): train a tiny motion model and a tiny stroke
model through the farm, render an action storyboard and a written word, decode the videos
and check their length, size and chunk-size invariance; refuse bad renders at submission."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from farm.errors import SpecError
from tests.integration.harness import Farm
from workers.encode import count_frames, ffmpeg_binary

pytestmark = pytest.mark.one_pass

MOTION = {"kind": "train", "name": "motion-t", "model": "motion", "dataset": "motion",
          "epochs": 2, "clips": 2, "hidden": 16, "checkpoint_every": 1}  # fmt: skip
STROKES = {"kind": "train", "name": "strokes-t", "model": "strokes", "dataset": "strokes",
           "charset": "Hi", "epochs": 1, "hidden": 16}  # fmt: skip
ACTIONS = [
    {"action": "walk", "frames": 10},
    {"action": "jump", "frames": 6},
    {"action": "wave", "frames": 8},
]  # fmt: skip  (24 frames)
W, H = 48, 32


@pytest.fixture(scope="module")
def trained(farm: Farm) -> dict[str, int]:
    ids = {"motion": farm.submit(MOTION), "strokes": farm.submit(STROKES)}
    for job_id in ids.values():
        assert farm.wait(job_id, timeout_s=240)["state"] == "succeeded", farm.logs()
    return ids


def artifact(farm: Farm, job_id: int, kind: str) -> dict[str, Any]:
    return next(a for a in farm.detail(job_id)["artifacts"] if a["kind"] == kind)


def run_ok(farm: Farm, spec: dict[str, Any]) -> Path:
    job_id = farm.submit(spec)
    assert farm.wait(job_id, timeout_s=180)["state"] == "succeeded", farm.logs()
    return Path(artifact(farm, job_id, "video")["path"])


def rgb_frames(path: Path) -> np.ndarray:
    args = [ffmpeg_binary(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
            "rgb24", "-"]  # fmt: skip
    raw = subprocess.run(args, check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3)


def motion_spec(name: str, **kw: Any) -> dict[str, Any]:
    spec = {"kind": "render", "name": name, "checkpoint": "job:motion-t", "mode": "motion",
            "frames": "1-24", "actions": ACTIONS, "transition": 4, "width": W, "height": H,
            "seed": 3, "colors": {"fill": "#c03030", "background": "#f0f0e0"}}  # fmt: skip
    return {**spec, **kw}


def write_spec(name: str, **kw: Any) -> dict[str, Any]:
    spec = {"kind": "render", "name": name, "checkpoint": "job:strokes-t", "mode": "write",
            "frames": "1-16", "text": "Hi iH", "width": W, "height": H, "seed": 2,
            "line_px": 1.5}  # fmt: skip
    return {**spec, **kw}


def test_checkpoints_name_their_classes(farm: Farm, trained: dict[str, int]) -> None:
    for family, classes in (("motion", ["idle", "walk", "run", "jump", "wave", "sit"]),
                            ("strokes", ["H", "i"])):  # fmt: skip
        ckpt = Path(artifact(farm, trained[family], "checkpoint")["path"])
        meta = json.loads(ckpt.with_suffix(".json").read_text())
        assert meta["family"] == family
        assert meta["classes"] == classes
        if family == "motion":
            assert meta["trained_classes"] == classes
        assert len(meta["history"]) == {"motion": 2, "strokes": 1}[family]


def test_motion_storyboard_renders_and_chunks_seamlessly(
    farm: Farm, trained: dict[str, int]
) -> None:
    h264 = run_ok(farm, motion_spec("walk-h264", chunk_size=10))
    assert count_frames(h264, ffmpeg=ffmpeg_binary())[0] == 24
    decoded = []
    for name, size in (("walk-whole", 24), ("walk-chunked", 7)):
        out = {"format": "ffv1", "path": f"lossless/{name}.mkv"}
        decoded.append(rgb_frames(run_ok(farm, motion_spec(name, chunk_size=size, output=out))))
    whole, chunked = decoded
    assert whole.shape == (24, H, W, 3)
    assert np.array_equal(whole, chunked)
    fill = np.abs(whole.astype(int) - np.array([0xC0, 0x30, 0x30])).sum(-1) < 30
    assert fill.any(axis=(1, 2)).all(), "the figure is drawn in every frame in its fill colour"
    assert len({f.tobytes() for f in whole}) > 12, "the figure moves"


def test_written_word_renders_and_chunks_seamlessly(farm: Farm, trained: dict[str, int]) -> None:
    decoded = []
    for name, size in (("hi-whole", 16), ("hi-chunked", 7)):
        out = {"format": "ffv1", "path": f"lossless/{name}.mkv"}
        decoded.append(rgb_frames(run_ok(farm, write_spec(name, chunk_size=size, output=out))))
    whole, chunked = decoded
    assert whole.shape == (16, H, W, 3)
    assert np.array_equal(whole, chunked)
    ink = (whole < 200).any(-1).sum(axis=(1, 2))  # (F,) inked pixels per frame
    assert (np.diff(ink) >= 0).all() and ink[-1] > ink[0], "the pen only adds ink"
    assert (whole[-4:] == whole[-1]).all(), "the finished text holds (a quarter of the range)"


def test_bad_motion_and_write_renders_are_refused(farm: Farm, trained: dict[str, int]) -> None:
    bad_action = [ACTIONS[0], {"action": "moonwalk", "frames": 6}, ACTIONS[2]]
    cases = [
        (motion_spec("m1", actions=bad_action), "actions.1.action"),
        (motion_spec("m2", transition=7), "transition"),
        (motion_spec("m3", frames="1-30"), "frames"),
        (motion_spec("m4", colors={"glow": "red"}), "colors.glow"),
        (write_spec("w1", text="Hello"), "text"),
        (write_spec("w2", checkpoint="job:motion-t"), "checkpoint"),
        (write_spec("w3", style="gothiceng"), "style"),  # not a font the model trained on
        (motion_spec("m5", checkpoint="job:strokes-t"), "checkpoint"),
    ]
    for spec, field in cases:
        with pytest.raises(SpecError) as e:
            farm.submit(spec)
        assert field in [f for f, _ in e.value.problems], (field, e.value.problems)
    with pytest.raises(SpecError) as e:
        farm.submit({**MOTION, "name": "motion-bad", "dataset": "strokes"})
    assert [f for f, _ in e.value.problems] == ["dataset", "clips"]
    not_bvh = farm.settings.output_root_abs() / "mocap" / "walk.bvh"
    not_bvh.parent.mkdir(parents=True, exist_ok=True)
    not_bvh.write_text("Frames: 0\n")
    bvh = {"kind": "train", "model": "motion", "dataset": "bvh:mocap/walk.bvh", "epochs": 1}
    with pytest.raises(SpecError) as e:
        farm.submit({**bvh, "name": "bvh-bad"})
    assert [f for f, _ in e.value.problems] == ["dataset"]
    assert "not a BVH file" in e.value.problems[0][1]


def test_motion_over_a_background_picture_with_bone_sprites(
    farm: Farm, trained: dict[str, int]
) -> None:
    from PIL import Image

    root = farm.settings.output_root_abs()
    stripes = np.zeros((8, 12, 3), np.uint8)
    stripes[:, ::2] = (0, 0, 255)  # blue and black columns, 2 px apart
    Image.fromarray(stripes).save(root / "scenery.png")
    Image.new("RGBA", (4, 8), (0, 255, 0, 255)).save(root / "chest.png")
    scene = {"background_image": "scenery.png", "bone_sprites": {"chest": "chest.png"}}
    decoded = []
    for name, size in (("scene-whole", 24), ("scene-chunked", 7)):
        out = {"format": "ffv1", "path": f"lossless/{name}.mkv"}
        decoded.append(rgb_frames(run_ok(farm, motion_spec(name, chunk_size=size, output=out,
                                                           **scene))))  # fmt: skip
    whole, chunked = decoded
    assert np.array_equal(whole, chunked)
    blue = (whole[..., 2] > 150) & (whole[..., 0] < 80)
    green = (whole[..., 1] > 150) & (whole[..., 0] < 80) & (whole[..., 2] < 80)
    assert blue.mean() > 0.2, "the scenery shows behind the figure"
    assert green.any(axis=(1, 2)).all(), "the chest sprite is drawn in every frame"
    assert not np.array_equal(blue[0], blue[-1]), "the followed camera moves over the scenery"
    (root / "notes.png").write_text("not a picture")
    cases = [
        (motion_spec("s1", background_image="missing.png"), "background_image"),
        (motion_spec("s2", bone_sprites={"tail": "chest.png"}), "bone_sprites"),
        (motion_spec("s3", bone_sprites={"head": "notes.png"}), "bone_sprites.head"),
        (motion_spec("s4", background_image="/etc/hostname"), "background_image"),
        (write_spec("s5", bone_sprites={"head": "chest.png"}), "bone_sprites"),
    ]
    for spec, field in cases:
        with pytest.raises(SpecError) as e:
            farm.submit(spec)
        assert field in [f for f, _ in e.value.problems], (field, e.value.problems)


def test_a_killed_motion_training_resumes_where_its_resume_file_left_off(
    farm: Farm, trained: dict[str, int]
) -> None:
    """The worker process dies mid-training; the sweeper requeues the task and the next
    attempt goes on from the last resume file (not from epoch 0) to the epochs asked for."""
    from sqlalchemy import select

    from farm.models import Artifact, Task

    job_id = farm.submit({**MOTION, "name": "motion-kill", "epochs": 60, "checkpoint_every": 2})
    farm.kill_first_attempt_at(job_id, "epoch", 4)
    assert farm.wait(job_id, timeout_s=300)["state"] == "succeeded", farm.logs()
    with farm.session() as s:
        attempts = s.execute(select(Task.attempts).where(Task.job_id == job_id)).scalar_one()
        path = s.execute(
            select(Artifact.path).where(Artifact.job_id == job_id, Artifact.kind == "checkpoint")
        ).scalar_one()
    meta = json.loads(Path(path).with_suffix(".json").read_text())
    assert attempts >= 2
    assert meta["resumed_from_epoch"] >= 2 and meta["epoch"] == 60
    assert len(meta["history"]) == 60
