"""The control plane's light BVH check (``farm/bvh.py``): what submission refuses in a
``bvh:`` data set before any worker parses it, and that what it accepts the worker reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.bvh import BvhError, bvh_actions, read_header
from farm.families import ModelInfo, info_from_metadata
from farm.resolve import sequence_problems
from farm.specs import RenderSpec, parse_spec
from tests.unit.test_bvh import CMU, KNOBS, write_bvh
from workers.datasets.motion import make_clip

GOOD_HEAD = "HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n  CHANNELS 3 Xposition Yposition Zposition\n"


def clip_file(path: Path, action: str = "walk", frames: int = 8) -> Path:
    angles, root, _, _, _ = make_clip(action, KNOBS, frames, 24.0, 0.0)
    write_bvh(path, angles, root, 24.0, CMU)
    return path


def test_a_real_capture_passes_and_its_header_matches_the_worker(tmp_path: Path) -> None:
    from workers.datasets import load_dataset

    path = clip_file(tmp_path / "walk_01.bvh")
    header = read_header(path)
    assert header.frames == 8 and header.joints[0] == "Hips"
    assert header.channels == 6 + 3 * (len(header.joints) - 1)
    assert abs(header.frame_time_s - 1 / 24) < 1e-6
    assert bvh_actions(path) == ("walk",)
    clips = load_dataset(f"bvh:{path}", 16, options={"frames": 4, "split": "all"})
    assert len(clips.meta["clips"]) == 2


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not UTF-8 text"),
        (b"", "does not start with HIERARCHY"),
        (b"ROOT Hips\n", "does not start with HIERARCHY"),
        (b"HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n", "no MOTION section"),
        (b"HIERARCHY\nMOTION\nFrames: 2\nFrame Time: 0.04\n1 2 3\n", "no ROOT joint"),
        (GOOD_HEAD.encode() + b"}\nMOTION\nFrames: 0\nFrame Time: 0.04\n", "0 frame(s)"),
        (GOOD_HEAD.encode() + b"}\nMOTION\nFrames: 1\nFrame Time: 0.04\n1 2 3\n", "1 frame(s)"),
        (GOOD_HEAD.encode() + b"}\nMOTION\nFrames: two\n", "Frames needs a number"),
        (GOOD_HEAD.encode() + b"}\nMOTION\nFrames: 2\nFrame Time: 0\n1 2 3\n", "positive"),
        (GOOD_HEAD.encode() + b"}\nMOTION\nFrames: 2\nFrame Time: 0.04\n1 2\n", "2 values"),
    ],
)
def test_a_file_that_is_not_usable_bvh_is_refused_by_name(
    tmp_path: Path, text: bytes, why: str
) -> None:
    path = tmp_path / "walk.bvh"
    path.write_bytes(text)
    with pytest.raises(
        BvhError, match=r"walk\.bvh: .*" + why.replace("(", r"\(").replace(")", r"\)")
    ):
        bvh_actions(path)


def test_a_folder_gives_its_files_actions_and_each_name_must_name_one(tmp_path: Path) -> None:
    with pytest.raises(BvhError, match="does not exist"):
        bvh_actions(tmp_path / "missing")
    with pytest.raises(BvhError, match="no BVH files"):
        bvh_actions(tmp_path)
    clip_file(tmp_path / "Run.bvh", "run")
    clip_file(tmp_path / "walk_2.bvh")
    (tmp_path / ".hidden.bvh").write_text("junk")
    (tmp_path / "notes.txt").write_text("junk")
    assert bvh_actions(tmp_path) == ("walk", "run")
    clip_file(tmp_path / "take7.bvh")
    with pytest.raises(BvhError, match=r"take7\.bvh: its name must name one action"):
        bvh_actions(tmp_path)


def test_a_render_of_an_action_the_model_never_saw_names_the_shot() -> None:
    spec = parse_spec({"kind": "render", "checkpoint": "job:m", "mode": "motion",
                       "frames": "1-20", "actions": [{"action": "walk", "frames": 12},
                                                     {"action": "wave", "frames": 8}]})  # fmt: skip
    assert isinstance(spec, RenderSpec)
    actions = ("idle", "walk", "run", "jump", "wave", "sit")
    info = ModelInfo("motion", False, 6, None, classes=actions, trained=("walk", "run"))
    problems = sequence_problems(spec, info)
    assert [f for f, _ in problems] == ["actions.1.action"]
    assert "trained on walk, run only" in problems[0][1]
    assert sequence_problems(spec, ModelInfo("motion", False, 6, None, classes=actions)) == []
    meta = {"family": "motion", "config": {}, "classes": list(actions), "trained_classes": ["walk"]}
    assert info_from_metadata(meta).trained == ("walk",)


def test_a_rig_without_the_joints_the_skeleton_needs_is_refused_at_submission(
    tmp_path: Path,
) -> None:
    """Legs named in no convention the retargeting knows: refused from the header, with the
    joints it lacks, as the worker would refuse the parsed rig."""
    from workers.datasets import load_dataset
    from workers.datasets.base import DatasetError

    angles, root, _, _, _ = make_clip("walk", KNOBS, 8, 24.0, 0.0)
    odd = {**CMU, "l_hip": "Thigh_A", "l_knee": "Shin_A", "r_foot": "Paw_B"}
    path = tmp_path / "walk_rig.bvh"
    write_bvh(path, angles, root, 24.0, odd)
    why = r"walk_rig\.bvh: no joints the skeleton can use for l_hip, l_knee, r_foot"
    with pytest.raises(BvhError, match=why):
        bvh_actions(path)
    with pytest.raises(DatasetError, match=why):
        load_dataset(f"bvh:{path}", 16, options={"frames": 4, "split": "all"})
