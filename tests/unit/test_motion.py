"""The procedural motion data: forward kinematics, determinism, foot contacts, the loader."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from workers.datasets import load_dataset
from workers.datasets.base import DatasetError
from workers.datasets.motion import (
    ACTIONS,
    FEET,
    JOINTS,
    J,
    MotionClips,
    forward_kinematics,
    generate,
)
from workers.models.motion import (
    MotionConfig,
    MotionRNN,
    action_weights,
    frames_for,
    rollout,
    train_motion,
)
from workers.models.vae import TrainingStopped, TrainState


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


# --- the model -------------------------------------------------------------------------

TINY = MotionConfig(hidden=16, starts=2)


def _tiny_clips() -> MotionClips:
    return generate(["idle", "walk"], 3, 16, 24.0, seed=0, split="train")


def _tiny_model() -> MotionRNN:
    model, _, _ = train_motion(_tiny_clips(), TINY, epochs=2, batch_size=4, lr=3e-3, seed=0,
                               window=10)  # fmt: skip
    return model


def test_action_weights_blend_over_the_given_frames() -> None:
    w = action_weights([("idle", 3), ("walk", 4)], 6, blend=2)
    assert w.shape == (7, 6)
    assert w[:3, 0].tolist() == [1.0, 1.0, 1.0]
    # smoothstep at 1/3 and 2/3 of the way, then all walk
    np.testing.assert_allclose(w[3:5, 1].numpy(), [7 / 27, 20 / 27], rtol=1e-6)
    np.testing.assert_allclose(w.sum(1).numpy(), 1.0, rtol=1e-6)
    assert w[5:, 1].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="dance"):
        action_weights([("dance", 3)], 6, blend=2)


def test_training_loss_falls_in_a_few_seconds() -> None:
    torch.set_num_threads(1)
    clips = generate(["idle", "walk"], 4, 20, 24.0, seed=0, split="train")
    _, history, _ = train_motion(clips, TINY, epochs=6, batch_size=4, lr=1e-2, seed=0,
                                 window=12)  # fmt: skip
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert history[-1]["free"] < history[0]["free"]


def test_resumed_training_matches_an_uninterrupted_run() -> None:
    clips = _tiny_clips()
    kw = {"epochs": 3, "batch_size": 4, "lr": 3e-3, "seed": 1, "window": 10}
    full, _, _ = train_motion(clips, TINY, **kw)  # type: ignore[arg-type]
    states: list[TrainState] = []
    with pytest.raises(TrainingStopped):
        train_motion(clips, TINY, **kw, on_checkpoint=states.append,  # type: ignore[arg-type]
                     should_stop=lambda: len(states) >= 1)  # fmt: skip
    resumed, history, _ = train_motion(clips, TINY, **kw, resume_state=states[0])  # type: ignore[arg-type]
    assert len(history) == 3
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_rollout_is_deterministic_for_a_seed() -> None:
    model = _tiny_model()
    a = rollout(model, [("idle", 6), ("walk", 10)], seed=3, blend=4)
    b = rollout(model, [("idle", 6), ("walk", 10)], seed=3, blend=4)
    assert a.positions.shape == (16, 16, 2)
    np.testing.assert_array_equal(a.positions, b.positions)
    starts = {rollout(model, [("idle", 2)], seed=s).positions[0].tobytes() for s in range(8)}
    assert len(starts) > 1, "the seed picks the starting pose"
    assert a.positions[..., 1].min() > -1e-6, "grounded: no foot under the floor"


def test_frames_for_any_chunking_gives_bit_identical_poses() -> None:
    model = _tiny_model()
    schedule = [("idle", 40), ("walk", 60)]
    whole = frames_for(model, schedule, 5, list(range(100)), n_frames=100)
    for size in (1, 7, 50):
        parts = [
            frames_for(model, schedule, 5, list(range(s, min(s + size, 100))), n_frames=100)
            for s in range(0, 100, size)
        ]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    with pytest.raises(ValueError, match="past the shot"):
        frames_for(model, schedule, 5, [100], n_frames=100)


def test_the_control_plane_knows_the_family_with_the_same_defaults() -> None:
    from farm.families import BUILTIN
    from workers.models import get_family
    from workers.models import motion as motion_model

    assert dict(BUILTIN["motion"].defaults) == motion_model.DEFAULTS
    assert get_family("motion").model_cls is MotionRNN


def test_generated_feet_are_planted_while_down() -> None:
    run = rollout(_tiny_model(), [("walk", 30)], seed=0)
    feet = run.positions[:, list(FEET), :]  # (T, 2, 2)
    down = feet[..., 1] < 0.02
    held = down[1:] & down[:-1]
    step = np.abs(np.diff(feet[..., 0], axis=0))
    rows = held.any(axis=1)
    assert rows.any()
    assert np.where(held, step, np.inf)[rows].min(axis=1).max() < 1e-9


def test_the_learning_rate_falls_along_a_cosine_to_its_floor() -> None:
    from workers.models.loop import cosine_lr

    rates = [cosine_lr(1e-2, 0.05, e, 5) for e in range(1, 6)]
    assert rates[0] == 1e-2 and abs(rates[-1] - 5e-4) < 1e-12
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert cosine_lr(3e-3, 1.0, 4, 9) == 3e-3
