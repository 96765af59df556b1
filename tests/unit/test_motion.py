"""The procedural motion data: forward kinematics, determinism, foot contacts, the loader."""

from __future__ import annotations

import numpy as np
import pytest

from workers.datasets import load_dataset
from workers.datasets.base import DatasetError
from workers.datasets.motion import (
    ACTIONS,
    FEET,
    JOINTS,
    J,
    forward_kinematics,
    generate,
)


def test_rest_pose_stands_on_the_ground_with_arms_down() -> None:
    pos = forward_kinematics(np.zeros(16), np.array([0.0, 0.84]))
    assert pos.shape == (16, 2)
    np.testing.assert_allclose(pos[J["head"]], [0.0, 1.48])
    np.testing.assert_allclose(pos[J["l_hand"]], [0.0, 0.80])
    np.testing.assert_allclose(pos[J["r_foot"]], [0.0, 0.0], atol=1e-12)


def test_shoulder_and_elbow_rotate_the_bones_below_them() -> None:
    a = np.zeros(16)
    a[J["l_shoulder"]] = np.pi / 2  # upper arm forward, horizontal
    a[J["l_elbow"]] = np.pi / 2  # forearm straight up
    pos = forward_kinematics(a, np.array([0.0, 0.84]))
    np.testing.assert_allclose(pos[J["l_elbow"]], [0.28, 1.34], atol=1e-12)
    np.testing.assert_allclose(pos[J["l_hand"]], [0.28, 1.60], atol=1e-12)
    np.testing.assert_allclose(pos[J["r_hand"]], [0.0, 0.80], atol=1e-12)  # untouched


def test_root_angle_turns_the_whole_tree() -> None:
    a = np.zeros(16)
    a[J["root"]] = -np.pi / 2  # torso pitched forward flat
    pos = forward_kinematics(a, np.array([1.0, 0.84]))
    np.testing.assert_allclose(pos[J["spine"]], [1.25, 0.84], atol=1e-12)
    np.testing.assert_allclose(pos[J["l_knee"]], [0.58, 0.84], atol=1e-12)


def test_clips_are_deterministic_by_seed_and_differ_across_seeds() -> None:
    a = generate(list(ACTIONS), 2, 24, 24.0, seed=3, split="train")
    b = generate(list(ACTIONS), 2, 24, 24.0, seed=3, split="train")
    c = generate(list(ACTIONS), 2, 24, 24.0, seed=4, split="train")
    np.testing.assert_array_equal(a.angles, b.angles)
    np.testing.assert_array_equal(a.root, b.root)
    assert not np.allclose(a.angles, c.angles)


def test_heldout_clips_use_other_seeds_than_train() -> None:
    train = generate(["walk"], 4, 24, 24.0, seed=0, split="train")
    held = generate(["walk"], 4, 24, 24.0, seed=0, split="heldout")
    for k in train.knobs:
        assert not set(train.knobs[k]) & set(held.knobs[k])
    both = generate(["walk"], 4, 24, 24.0, seed=0, split="all")
    assert len(both) == 8


@pytest.mark.parametrize("action", ACTIONS)
def test_a_foot_in_contact_barely_moves_and_is_on_the_ground(action: str) -> None:
    clips = generate([action], 6, 72, 24.0, seed=1, split="train")
    pos = clips.positions()[:, :, list(FEET), :]  # (N, T, 2, 2)
    assert clips.contacts.any(axis=2).mean() > 0.3, "some foot is down a good share of frames"
    held = clips.contacts[:, 1:] & clips.contacts[:, :-1]
    step = np.abs(np.diff(pos[..., 0], axis=1))  # (N, T-1, 2)
    assert step[held].max() < 1e-9
    assert pos[..., 1][clips.contacts].max() < 0.02
    assert pos[..., 1].min() > -1e-9, "no foot goes through the floor"


def test_walk_and_run_travel_forward_and_idle_stays() -> None:
    clips = generate(["idle", "walk", "run"], 4, 48, 24.0, seed=2, split="train")
    speed = {a: clips.root_dx[clips.actions == ACTIONS.index(a)].mean() for a in ACTIONS[:3]}
    assert abs(speed["idle"]) < 1e-9
    assert 0.02 < speed["walk"] < speed["run"]
    swing = np.abs(np.diff(clips.positions()[..., FEET[0], 0], axis=1))
    assert swing[clips.actions == 1].max() > 0.05, "a walking foot swings"


def test_loader_gives_thumbnails_labels_and_clips() -> None:
    ds = load_dataset("motion", 12, seed=0, options={"clips": 2, "frames": 10})
    clips = ds.meta["clips"]
    assert tuple(ds.data.shape) == (12, 10, 1, 12, 12)
    assert ds.classes == list(ACTIONS)
    assert ds.labels is not None and ds.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert ds.data.max() == 1.0 and ds.data.mean() < 0.5
    assert clips.features().shape == (12, 10, len(JOINTS) + 2)
    assert ds.factors is not None and set(ds.factors) >= {"speed", "stride", "lean"}


def test_loader_refuses_unknown_action_and_option() -> None:
    with pytest.raises(DatasetError, match=r"unknown action.*dance"):
        load_dataset("motion", 12, options={"actions": ["walk", "dance"]})
    with pytest.raises(DatasetError, match="unknown option"):
        load_dataset("motion", 12, options={"speed": 2})
