"""BVH motion capture retargeted to the motion skeleton: round trip of a procedural clip
exported as BVH text with CMU and Mixamo joint names, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workers.datasets import load_dataset
from workers.datasets.base import DatasetError
from workers.datasets.motion import JOINTS, OFFSETS, PARENTS, make_clip

CMU = {
    "root": "Hips", "spine": "Spine1", "neck": "Neck", "head": "Head",
    "l_shoulder": "LeftArm", "l_elbow": "LeftForeArm", "l_hand": "LeftHand",
    "r_shoulder": "RightArm", "r_elbow": "RightForeArm", "r_hand": "RightHand",
    "l_hip": "LeftUpLeg", "l_knee": "LeftLeg", "l_foot": "LeftFoot",
    "r_hip": "RightUpLeg", "r_knee": "RightLeg", "r_foot": "RightFoot",
}  # fmt: skip
SIDE = {"l_shoulder": 18.0, "r_shoulder": -18.0, "l_hip": 12.0, "r_hip": -12.0}


def write_bvh(path: Path, angles: np.ndarray, root: np.ndarray, fps: float,
              names: dict[str, str]) -> None:  # fmt: skip
    """Our 2D clip as a Y-up BVH in centimetres, facing +Z, left at +X: each joint angle is
    a rotation about X (ours turn forward towards up, BVH's turn up towards forward, hence
    the sign)."""
    children = {j: [c for c in range(len(JOINTS)) if PARENTS[c] == j] for j in range(16)}
    order: list[int] = []
    lines: list[str] = []

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        name = JOINTS[j]
        ox, oy = OFFSETS[j] * 100
        kind = "ROOT" if j == 0 else "JOINT"
        lines.append(f"{pad}{kind} {names[name]}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {SIDE.get(name, 0.0):.4f} {oy:.4f} {ox:.4f}")
        if j == 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition "
                         "Zrotation Xrotation Yrotation")  # fmt: skip
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        order.append(j)
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            lines.append(f"{pad}  End Site")
            lines.append(pad + "  {")
            lines.append(f"{pad}    OFFSET 0.0 -5.0 0.0")
            lines.append(pad + "  }")
        lines.append(pad + "}")

    lines.append("HIERARCHY")
    emit(0, 0)
    lines += ["MOTION", f"Frames: {len(angles)}", f"Frame Time: {1 / fps:.8f}"]
    for t in range(len(angles)):
        vals = [0.0, root[t, 1] * 100, root[t, 0] * 100]
        for j in order:
            vals += [0.0, -np.degrees(angles[t, j]), 0.0]
        lines.append(" ".join(f"{v:.6f}" for v in vals))
    path.write_text("\n".join(lines) + "\n")


KNOBS = {"speed": 1.0, "stride": 1.0, "bounce": 0.5, "lean": 0.05, "arm_swing": 1.0}


def test_a_procedural_walk_survives_the_round_trip_through_bvh(tmp_path: Path) -> None:
    angles, root, _, _, _ = make_clip("walk", KNOBS, 48, 24.0, 0.3)
    write_bvh(tmp_path / "walk_01.bvh", angles, root, 24.0, CMU)
    ds = load_dataset(f"bvh:{tmp_path / 'walk_01.bvh'}", 16, options={"frames": 48, "split": "all"})
    clips = ds.meta["clips"]
    assert ds.classes is not None and ds.labels is not None
    assert ds.classes[int(ds.labels[0])] == "walk"
    got = clips.angles[0]
    # leaf joints (head, hands, feet) carry no bones below them, so they are not recovered
    moving = [j for j, name in enumerate(JOINTS) if not name.endswith(("head", "hand", "foot"))]
    np.testing.assert_allclose(got[:, moving], angles[:, moving], atol=1e-4)
    np.testing.assert_allclose(clips.root[0, :, 1], root[:, 1], atol=1e-4)
    np.testing.assert_allclose(clips.root[0, :, 0], root[:, 0] - root[0, 0], atol=1e-4)
    assert clips.contacts[0].any(axis=1).mean() > 0.5


def test_mixamo_names_and_a_folder_and_resampling(tmp_path: Path) -> None:
    mixamo = {k: f"mixamorig:{v}" for k, v in CMU.items()}
    angles, root, _, _, _ = make_clip("wave", KNOBS, 60, 30.0, 0.0)
    write_bvh(tmp_path / "a.bvh", angles, root, 30.0, mixamo)
    write_bvh(tmp_path / "b.bvh", angles, root, 30.0, CMU)
    options = {"frames": 12, "fps": 24, "action": "wave", "split": "all"}
    ds = load_dataset(f"bvh:{tmp_path}", 16, options=options)
    clips = ds.meta["clips"]
    assert clips.angles.shape == (2 * 4, 12, 16)  # 60 frames at 30 fps -> 48 at 24 -> 4 clips
    np.testing.assert_allclose(clips.angles[0], clips.angles[4], atol=1e-9)


def test_an_unparseable_file_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "walk.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    with pytest.raises(DatasetError, match=r"walk\.bvh: cannot parse BVH"):
        load_dataset(f"bvh:{bad}", 16)


def test_a_rig_without_usable_joints_is_refused(tmp_path: Path) -> None:
    names = {k: f"bone{i}" for i, k in enumerate(CMU)}
    angles, root, _, _, _ = make_clip("idle", KNOBS, 8, 24.0, 0.0)
    write_bvh(tmp_path / "idle.bvh", angles, root, 24.0, names)
    with pytest.raises(DatasetError, match=r"idle\.bvh: no joints the skeleton can use"):
        load_dataset(f"bvh:{tmp_path / 'idle.bvh'}", 16)


def test_the_action_must_be_known(tmp_path: Path) -> None:
    angles, root, _, _, _ = make_clip("idle", KNOBS, 8, 24.0, 0.0)
    write_bvh(tmp_path / "take7.bvh", angles, root, 24.0, CMU)
    with pytest.raises(DatasetError, match="set the option action"):
        load_dataset(f"bvh:{tmp_path / 'take7.bvh'}", 16, options={"frames": 8})
