"""``bvh:<file or folder>``: a user's own motion capture, retargeted to the ``motion``
skeleton (:mod:`workers.datasets.motion`) so the motion model trains on it unchanged.

Files are read with ``pybvh`` (PyPI, maintained, numpy only; it does the BVH forward
kinematics and finds the up axis). The rig's joints are matched to ours by name (CMU,
Mixamo and common variants, :data:`NAMES`); the world positions are projected onto the
sagittal plane (up, and the direction of travel), and each of our joint angles is read back
from the projected bone directions, so any rig with the named joints maps onto the same
16 angles. The legs set the scale. Each file is cut into clips of ``frames`` frames at
``fps``; the action is the ``action`` option or an action named in the file's name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy.signal import hilbert

from farm.bvh import BvhError, match_joints, missing_joints
from workers.datasets.base import Dataset, DatasetError, Request, confine_files, folder_files
from workers.datasets.motion import (
    ACTIONS,
    CONTACT_EPS,
    FEET,
    JOINTS,
    KNOBS,
    OFFSETS,
    PARENTS,
    MotionClips,
    clips_dataset,
    forward_kinematics,
)

OPTIONS = ("channels", "split", "frames", "fps", "action")
# The child whose bone sets each joint's world angle (leaves follow their parent).
DEFINING = {
    "root": "spine", "spine": "neck", "neck": "head",
    "l_shoulder": "l_elbow", "l_elbow": "l_hand", "r_shoulder": "r_elbow", "r_elbow": "r_hand",
    "l_hip": "l_knee", "l_knee": "l_foot", "r_hip": "r_knee", "r_knee": "r_foot",
}  # fmt: skip
FALLBACK = {"spine": "neck", "neck": "head", "head": "neck"}


def retarget(world: np.ndarray, up: np.ndarray, found: dict[str, int]) -> tuple[np.ndarray, ...]:
    """``(angles (F, 16), root (F, 2))`` from a rig's world positions ``(F, Jr, 3)`` with
    ``up`` the unit up vector (flipped if it puts the feet above the hips) and ``found``
    mapping our joints to the rig's."""
    h = world[:, found["root"]]  # (F, 3)
    feet = world[:, [found["l_foot"], found["r_foot"]]].mean(axis=1)
    if np.mean((h - feet) @ up) < 0:  # the library's up is a guess; the hips are above the feet
        up = -up
    travel = (h[-1] - h[0]) - np.dot(h[-1] - h[0], up) * up
    if np.linalg.norm(travel) < 1e-3 * np.ptp(world[0] @ up):  # in place: face ahead
        travel = np.cross(world[0, found["l_hip"]] - world[0, found["r_hip"]], up)
    if np.linalg.norm(travel) < 1e-9:
        raise ValueError("cannot tell which way the rig faces (it neither travels nor has hips)")
    fwd = travel / np.linalg.norm(travel)
    fwd = fwd - np.dot(fwd, up) * up
    fwd /= np.linalg.norm(fwd)
    plane = np.stack([world @ fwd, world @ up], axis=-1)  # (F, Jr, 2)
    leg = np.mean(
        [
            np.linalg.norm(world[:, found[f"{s}_hip"]] - world[:, found[f"{s}_knee"]], axis=-1)
            + np.linalg.norm(world[:, found[f"{s}_knee"]] - world[:, found[f"{s}_foot"]], axis=-1)
            for s in "lr"
        ]
    )
    scale = 0.84 / max(float(leg), 1e-9)

    def at(joint: str) -> np.ndarray:
        while joint not in found:
            joint = FALLBACK.get(joint) or JOINTS[PARENTS[JOINTS.index(joint)]]
        return plane[:, found[joint]]

    world_angle = np.zeros((len(world), len(JOINTS)))
    for j, name in enumerate(JOINTS):
        child = DEFINING.get(name)
        if child is None or (name not in found and name not in ("spine", "neck")):
            world_angle[:, j] = world_angle[:, PARENTS[j]] if j else 0.0
            continue
        bone = at(child) - at(name)
        if np.allclose(bone, 0.0):
            world_angle[:, j] = world_angle[:, PARENTS[j]]
            continue
        down = OFFSETS[JOINTS.index(child)][1] < 0
        world_angle[:, j] = np.arctan2(bone[:, 1], bone[:, 0]) + (np.pi / 2 if down else -np.pi / 2)
    local = world_angle.copy()
    for j in range(1, len(JOINTS)):
        local[:, j] = world_angle[:, j] - world_angle[:, PARENTS[j]]
    local = np.unwrap(np.mod(local + np.pi, 2 * np.pi) - np.pi, axis=0)
    root = plane[:, found["root"]] * scale
    return local, root


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, int], float]:
    import pybvh

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rig = pybvh.read_bvh_file(path)
            world = rig.joint_positions()  # (F, Jr, 3)
            up = np.asarray(rig.up_axis.vector, dtype=np.float64)
    except Exception as e:  # pybvh raises many kinds on malformed text
        raise DatasetError(f"{path}: cannot parse BVH: {type(e).__name__}: {e}") from None
    try:  # as submission checked it from the header; again for the parsed rig
        missing_joints(path, tuple(rig.joint_names))
    except BvhError as e:
        raise DatasetError(str(e)) from None
    found = match_joints(list(rig.joint_names))
    if world.shape[0] < 2:
        raise DatasetError(f"{path}: has {world.shape[0]} frame(s), needs at least 2")
    return world, up, found, float(rig.fps)


def _resample(x: np.ndarray, src_fps: float, fps: float) -> np.ndarray:
    t_src = np.arange(len(x)) / src_fps
    t = np.arange(0.0, t_src[-1] + 1e-9, 1.0 / fps)
    flat = x.reshape(len(x), -1)
    out = np.stack([np.interp(t, t_src, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape(len(t), *x.shape[1:])


def _action(req: Request, path: Path) -> int:
    if "action" in req.options:
        return ACTIONS.index(req.choice("action", ACTIONS, "idle"))
    named = [a for a in ACTIONS if a in path.stem.lower()]
    if len(named) != 1:
        raise DatasetError(
            f"{path}: set the option action ({', '.join(ACTIONS)}); the file name names "
            + ("none" if not named else "several")
        )
    return ACTIONS.index(named[0])


def file_clips(req: Request, path: Path, frames: int, fps: float) -> MotionClips:
    """One file's clips, ``frames`` long and not overlapping (the tail is dropped)."""
    world, up, found, src_fps = _read(path)
    try:
        angles, root = retarget(world, up, found)
    except ValueError as e:
        raise DatasetError(f"{path}: {e}") from None
    angles, root = _resample(angles, src_fps, fps), _resample(root, src_fps, fps)
    if len(angles) < frames:
        raise DatasetError(
            f"{path}: {len(angles)} frames at {fps:g} fps, fewer than frames={frames}"
        )
    feet_y = forward_kinematics(angles, root)[:, FEET, 1]  # (T, 2)
    floor = feet_y.min()
    root[:, 1] -= floor
    contacts = feet_y - floor < CONTACT_EPS
    dx = np.diff(root[:, 0], prepend=root[0, 0])
    dx[0] = dx[1] if len(dx) > 1 else 0.0
    hip = angles[:, JOINTS.index("l_hip")]
    phase = np.unwrap(np.angle(hilbert(hip - hip.mean())))
    n = len(angles) // frames
    cut = slice(0, n * frames)

    def clips_of(x: np.ndarray) -> np.ndarray:
        return x[cut].reshape(n, frames, *x.shape[1:])

    action = _action(req, path)
    clip_root = clips_of(root).copy()
    clip_root[..., 0] -= clip_root[:, :1, 0]  # each clip starts at x = 0
    return MotionClips(
        angles=clips_of(angles),
        root=clip_root,
        root_dx=clips_of(dx),
        phase=clips_of(phase),
        contacts=clips_of(contacts),
        actions=np.full(n, action, np.int64),
        knobs={k: np.full(n, np.nan) for k in KNOBS},
        fps=fps,
    )


def _concat(parts: list[MotionClips]) -> MotionClips:
    return MotionClips(
        **{
            k: np.concatenate([getattr(p, k) for p in parts])
            for k in ("angles", "root", "root_dx", "phase", "contacts", "actions")
        },
        knobs={k: np.concatenate([p.knobs[k] for p in parts]) for k in KNOBS},
        fps=parts[0].fps,
    )


def load(req: Request) -> Dataset:
    """Options: ``frames`` per clip (default 48), ``fps`` (default 24), ``action`` (for every
    file; default: the action in each file's name), ``split`` ("train": four clips in five,
    "heldout": the fifth, or "all")."""
    req.check_options(OPTIONS)
    if req.options.get("channels", 1) != 1:
        raise DatasetError(f"{req.name}: channels must be 1 (the thumbnails are grey)")
    size = req.shape_size(8, 128)
    split = req.choice("split", ("train", "heldout", "all"), "train")
    frames = req.integer("frames", 48, 3, 10_000)
    fps = req.number("fps", 24.0, 1.0, 240.0)
    source = Path(req.path())
    files = [source] if source.is_file() else folder_files(source, frozenset({".bvh"}), "BVH file")
    confine_files(files, req.roots)
    clips = _concat([file_clips(req, f, frames, fps) for f in files])
    index = np.arange(len(clips))
    keep = {"train": index % 5 != 4, "heldout": index % 5 == 4, "all": index >= 0}[split]
    if not keep.any():
        raise DatasetError(f"{req.name}: the {split} split has no clips ({len(clips)} in all)")
    chosen = MotionClips(
        **{
            k: getattr(clips, k)[keep]
            for k in ("angles", "root", "root_dx", "phase", "contacts", "actions")
        },
        knobs={k: v[keep] for k, v in clips.knobs.items()},
        fps=fps,
    )
    return clips_dataset(req.name, chosen, size, {"split": split, "files": [str(f) for f in files]})
