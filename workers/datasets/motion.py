"""``motion``: a procedural 2D character, seen from the side, that idles, walks, runs, jumps,
waves and sits, as joint-angle clips with their foot contacts, deterministic by seed.

The skeleton has 16 joints in a tree (:data:`JOINTS`, :data:`PARENTS`); each joint's angle
rotates the bones to its children, BVH-style, so ``angles (T, 16)`` plus the root's position
are a whole pose and :func:`forward_kinematics` turns them into joint positions. Angles are
parametric gait cycles (a phase plus sinusoids, after Perlin 1995, "Real Time Responsive
Animation with Personality"), with style knobs drawn per clip from the seed. The root's height
puts the lowest foot on the ground, and its forward step cancels the supporting foot's slide,
so a foot in contact stays put (foot skate of the data is near zero by construction).

Clips do not fit the image contract of :class:`Dataset`, so the arrays live in a
:class:`MotionClips` (``meta["clips"]``); the Dataset's ``data`` is the clips drawn as small
grey thumbnails at ``image_size`` (``(N, T, 1, S, S)``), its labels the actions and its
factors the style knobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from workers.datasets.base import Dataset, DatasetError, Request

JOINTS = (
    "root", "spine", "neck", "head",
    "l_shoulder", "l_elbow", "l_hand", "r_shoulder", "r_elbow", "r_hand",
    "l_hip", "l_knee", "l_foot", "r_hip", "r_knee", "r_foot",
)  # fmt: skip
J = {name: i for i, name in enumerate(JOINTS)}
PARENTS = (-1, 0, 1, 2, 2, 4, 5, 2, 7, 8, 0, 10, 11, 0, 13, 14)
# Each joint's offset from its parent in the parent's frame at rest (standing, arms down),
# in body units: about 1.7 tall with the head.
OFFSETS = np.array(
    [
        [0, 0], [0, 0.25], [0, 0.25], [0, 0.14],
        [0, 0], [0, -0.28], [0, -0.26], [0, 0], [0, -0.28], [0, -0.26],
        [0, 0], [0, -0.42], [0, -0.42], [0, 0], [0, -0.42], [0, -0.42],
    ],
    dtype=np.float64,
)  # fmt: skip
FEET = (J["l_foot"], J["r_foot"])
ACTIONS = ("idle", "walk", "run", "jump", "wave", "sit")
KNOBS = ("speed", "stride", "bounce", "lean", "arm_swing")
CONTACT_EPS = 0.02  # a foot this close to the ground (body units) is in contact
OPTIONS = ("channels", "split", "clips", "frames", "fps", "actions")


@dataclass
class MotionClips:
    """Clips as arrays, the form the motion model trains on.

    ``angles`` ``(N, T, 16)`` radians; ``root`` ``(N, T, 2)`` the root's world position (x
    forward, y up); ``root_dx`` ``(N, T)`` its forward step into each frame (frame 0 repeats
    frame 1's); ``phase`` ``(N, T)`` the cycle phase in radians (unwrapped); ``contacts``
    ``(N, T, 2)`` bool, left and right foot; ``actions`` ``(N,)`` indexing :data:`ACTIONS`;
    ``knobs`` the per-clip style values.
    """

    angles: np.ndarray
    root: np.ndarray
    root_dx: np.ndarray
    phase: np.ndarray
    contacts: np.ndarray
    actions: np.ndarray
    knobs: dict[str, np.ndarray]
    fps: float

    def __len__(self) -> int:
        return int(self.angles.shape[0])

    def positions(self) -> np.ndarray:
        """Joint positions ``(N, T, 16, 2)``."""
        return forward_kinematics(self.angles, self.root)

    def features(self) -> np.ndarray:
        """The model's per-frame vector ``(N, T, 18)``: 16 angles, root step, root height."""
        return np.concatenate(
            [self.angles, self.root_dx[..., None], self.root[..., 1:2]], axis=-1
        ).astype(np.float32)


def forward_kinematics(angles: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Joint positions ``(..., 16, 2)`` from ``angles`` ``(..., 16)`` and the root's position
    ``(..., 2)``: joint j sits at its parent plus ``OFFSETS[j]`` rotated by the parent's world
    angle, the sum of the angles from the root down to that parent."""
    world = np.zeros(angles.shape, dtype=np.float64)
    pos = np.zeros((*angles.shape, 2), dtype=np.float64)
    pos[..., 0, :] = root
    world[..., 0] = angles[..., 0]
    for j in range(1, len(JOINTS)):
        p = PARENTS[j]
        c, s = np.cos(world[..., p]), np.sin(world[..., p])
        ox, oy = OFFSETS[j]
        pos[..., j, 0] = pos[..., p, 0] + c * ox - s * oy
        pos[..., j, 1] = pos[..., p, 1] + s * ox + c * oy
        world[..., j] = world[..., p] + angles[..., j]
    return pos


def draw_knobs(rng: np.random.Generator) -> dict[str, float]:
    """One clip's style: cadence and amplitude multipliers, stance-knee bounce, lean (rad)."""
    return {
        "speed": float(rng.uniform(0.8, 1.25)),
        "stride": float(rng.uniform(0.75, 1.25)),
        "bounce": float(rng.uniform(0.0, 1.0)),
        "lean": float(rng.uniform(-0.05, 0.15)),
        "arm_swing": float(rng.uniform(0.6, 1.4)),
    }


Gait = Callable[[np.ndarray, dict[str, float]], tuple[np.ndarray, np.ndarray]]
# The foot that carries the body, where the gait decides it (walk, run); elsewhere the lowest.
STANCE: dict[str, Callable[[np.ndarray], np.ndarray]] = {}


def _set_torso(a: np.ndarray, lean: np.ndarray | float) -> None:
    """Lean the torso forward (negative angle: clockwise, towards +x) keeping the legs: the
    root angle turns the hips too, so they take the opposite angle."""
    a[:, J["root"]] = -lean
    a[:, J["l_hip"]] += lean
    a[:, J["r_hip"]] += lean


def _swing_bump(p: np.ndarray) -> np.ndarray:
    """Knee flexion of a swing, a half sine over phases -pi/2..pi/3 of that leg: it bends
    while the thigh passes under the hip (the only time a bent knee lifts the foot) and is
    straight again before the heel strikes at pi/2."""
    s = (np.mod(p + np.pi / 2, 2 * np.pi)) / (5 * np.pi / 6)
    return np.where(s < 1.0, np.sin(np.pi * np.clip(s, 0.0, 1.0)), 0.0)


def _legs_cycle(a: np.ndarray, phi: np.ndarray, hip: float, knee: float, stance: float) -> None:
    """Hip ``hip * sin(phi)`` (flexion forward is positive), the knee bending back in the
    swing (when the hip moves forward) and by ``stance`` under load; the right leg half a
    cycle later."""
    for side, shift in (("l", 0.0), ("r", np.pi)):
        p = phi + shift
        a[:, J[f"{side}_hip"]] += hip * np.sin(p)
        a[:, J[f"{side}_knee"]] = -knee * _swing_bump(p) - stance * np.maximum(0.0, -np.cos(p))


def _stance_foot(phi: np.ndarray) -> np.ndarray:
    """Which foot carries the body in a gait cycle: the left while its hip moves back."""
    return np.where(np.cos(phi) < 0, 0, 1)


def _arms_swing(a: np.ndarray, phi: np.ndarray, swing: float, elbow: float) -> None:
    """Arms swing against the legs on the same side."""
    a[:, J["l_shoulder"]] = -swing * np.sin(phi)
    a[:, J["r_shoulder"]] = -swing * np.sin(phi + np.pi)
    for side, shift in (("l", 0.0), ("r", np.pi)):
        a[:, J[f"{side}_elbow"]] = elbow + 0.15 * elbow * np.sin(phi + shift)


def _idle(t: np.ndarray, k: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    phi = 2 * np.pi * 0.3 * k["speed"] * t  # breathing
    a = np.zeros((len(t), len(JOINTS)))
    a[:, J["spine"]] = 0.03 * np.sin(phi)
    a[:, J["neck"]] = -0.02 * np.sin(phi)
    a[:, J["l_shoulder"]] = 0.05 * k["arm_swing"] * np.sin(phi)
    a[:, J["r_shoulder"]] = -0.05 * k["arm_swing"] * np.sin(phi)
    a[:, J["l_elbow"]] = a[:, J["r_elbow"]] = 0.15
    a[:, J["l_hip"]] = 0.06
    a[:, J["r_hip"]] = -0.06
    _set_torso(a, 0.3 * k["lean"])
    return a, phi


def _walk(t: np.ndarray, k: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    phi = 2 * np.pi * 0.95 * k["speed"] * t
    a = np.zeros((len(t), len(JOINTS)))
    _legs_cycle(a, phi, 0.42 * k["stride"], 0.9, 0.15 * k["bounce"])
    _arms_swing(a, phi, 0.35 * k["arm_swing"], 0.25)
    a[:, J["spine"]] = 0.03 * np.sin(2 * phi)
    _set_torso(a, 0.05 + 0.5 * k["lean"])
    return a, phi


def _run(t: np.ndarray, k: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    phi = 2 * np.pi * 1.45 * k["speed"] * t
    a = np.zeros((len(t), len(JOINTS)))
    _legs_cycle(a, phi, 0.7 * k["stride"], 1.7, 0.3 + 0.3 * k["bounce"])
    _arms_swing(a, phi, 0.6 * k["arm_swing"], 1.45)
    _set_torso(a, 0.2 + k["lean"])
    return a, phi


def _jump(t: np.ndarray, k: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    phi = 2 * np.pi * 0.8 * k["speed"] * t
    u = np.mod(phi, 2 * np.pi) / (2 * np.pi)
    crouch = np.where(u < 0.35, np.sin(np.pi * u / 0.35), 0.0)
    crouch += np.where(u > 0.85, 0.5 * np.sin(np.pi * (u - 0.85) / 0.15), 0.0)
    tuck = np.where((u >= 0.35) & (u <= 0.85), np.sin(np.pi * (u - 0.35) / 0.5), 0.0)
    depth = 0.6 + 0.3 * k["bounce"]
    a = np.zeros((len(t), len(JOINTS)))
    for side in ("l", "r"):
        a[:, J[f"{side}_hip"]] = depth * crouch + 0.5 * tuck
        a[:, J[f"{side}_knee"]] = -2 * depth * crouch - 0.8 * tuck
    arm = k["arm_swing"] * (-0.6 * crouch + 2.2 * tuck)
    a[:, J["l_shoulder"]] = arm
    a[:, J["r_shoulder"]] = arm
    a[:, J["l_elbow"]] = a[:, J["r_elbow"]] = 0.3
    _set_torso(a, 0.5 * depth * crouch + 0.5 * k["lean"])
    return a, phi


def _wave(t: np.ndarray, k: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    phi = 2 * np.pi * 1.6 * k["speed"] * t
    a = np.zeros((len(t), len(JOINTS)))
    a[:, J["r_shoulder"]] = 2.5 + 0.1 * k["stride"]
    a[:, J["r_elbow"]] = 0.4 + 0.45 * k["arm_swing"] * np.sin(phi)
    a[:, J["l_shoulder"]] = 0.05 * np.sin(phi / 4)
    a[:, J["l_elbow"]] = 0.15
    a[:, J["l_hip"]] = 0.06
    a[:, J["r_hip"]] = -0.06
    _set_torso(a, 0.02 * np.sin(phi) + 0.2 * k["lean"])
    return a, phi


def _sit(t: np.ndarray, k: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    phi = 2 * np.pi * 0.3 * k["speed"] * t  # breathing, seated
    a = np.zeros((len(t), len(JOINTS)))
    for side, spread in (("l", 0.01), ("r", -0.01)):
        a[:, J[f"{side}_hip"]] = np.pi / 2 + spread
        a[:, J[f"{side}_knee"]] = -np.pi / 2 - spread
    a[:, J["l_shoulder"]] = a[:, J["r_shoulder"]] = 0.6 + 0.05 * np.sin(phi)
    a[:, J["l_elbow"]] = a[:, J["r_elbow"]] = 0.5
    a[:, J["spine"]] = 0.03 * np.sin(phi)
    _set_torso(a, 0.1 + 0.5 * k["lean"])
    return a, phi


GAITS: dict[str, Gait] = {
    "idle": _idle,
    "walk": _walk,
    "run": _run,
    "jump": _jump,
    "wave": _wave,
    "sit": _sit,
}
STANCE.update(walk=_stance_foot, run=_stance_foot)


def _flight(action: str, phi: np.ndarray, k: dict[str, float]) -> np.ndarray:
    """Height of the lowest foot above the ground: a jump's arc, a run's short hops."""
    if action == "jump":
        u = np.mod(phi, 2 * np.pi) / (2 * np.pi)
        s = np.clip((u - 0.35) / 0.5, 0.0, 1.0)
        return (0.25 + 0.2 * k["bounce"]) * 4 * s * (1 - s)
    if action == "run":
        return 0.04 * (0.5 + k["bounce"]) * np.maximum(0.0, np.sin(2 * phi)) ** 2
    return np.zeros_like(phi)


def place_root(
    angles: np.ndarray,
    lift: np.ndarray,
    stance: np.ndarray | None = None,
    flight_dx: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(root (T, 2), root_dx (T,), contacts (T, 2))`` for joint angles ``(T, 16)``: the root
    is as high as puts the lowest foot ``lift`` above the ground, and each step forward is
    what keeps the lowest foot in contact where it was (in flight: the previous step).
    ``stance`` (T,) (0 left, 1 right), where the gait knows it, is the only foot that can be
    in contact. ``flight_dx`` (T,), when given, is the step wherever no foot is down (a
    model's own prediction) instead of the previous step."""
    rel = forward_kinematics(angles, np.zeros((len(angles), 2)))[:, FEET, :]  # (T, 2, 2)
    height = lift - rel[:, :, 1].min(axis=1)
    foot_y = rel[:, :, 1] + height[:, None]
    contacts = foot_y < CONTACT_EPS
    if stance is not None:  # the swing foot skims the ground; it carries nothing
        contacts &= np.arange(2)[None, :] == stance[:, None]
    dx = np.zeros(len(angles))
    for t in range(1, len(angles)):
        both = contacts[t] & contacts[t - 1]
        if both.any():
            f = int(np.argmin(np.where(both, foot_y[t], np.inf)))
        else:
            dx[t] = dx[t - 1] if flight_dx is None else flight_dx[t]
            continue
        dx[t] = -(rel[t, f, 0] - rel[t - 1, f, 0])
    if len(dx) > 1:
        dx[0] = dx[1] if flight_dx is None else flight_dx[0]
    x = np.cumsum(dx) - dx[0]
    return np.stack([x, height], axis=1), dx, contacts


def make_clip(
    action: str, knobs: dict[str, float], n_frames: int, fps: float, phase0: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One clip: ``(angles, root, root_dx, phase, contacts)``, starting at phase ``phase0``."""
    gait = GAITS[action]
    base_rate = float(gait(np.array([0.0, 1.0]), knobs)[1][1])  # phase per second
    t = np.arange(n_frames) / fps + phase0 / max(base_rate, 1e-6)
    angles, phase = gait(t, knobs)
    stance = STANCE[action](phase) if action in STANCE else None
    root, dx, contacts = place_root(angles, _flight(action, phase, knobs), stance)
    return angles, root, dx, phase, contacts


def generate(
    actions: list[str], clips: int, n_frames: int, fps: float, seed: int, split: str
) -> MotionClips:
    """``clips`` clips per action; each clip's style and start phase come from a generator
    seeded by (seed, split, action, index), so the held-out split never shares a clip's seed
    with the training split and every clip is the same on every machine."""
    splits = {"train": (0,), "heldout": (1,), "all": (0, 1)}[split]
    rows: list[tuple[np.ndarray, ...]] = []
    labels: list[int] = []
    knob_rows: list[dict[str, float]] = []
    for s in splits:
        for action in actions:
            a = ACTIONS.index(action)
            for i in range(clips):
                rng = np.random.default_rng([seed, s, a, i])
                knobs = draw_knobs(rng)
                rows.append(make_clip(action, knobs, n_frames, fps, rng.uniform(0, 2 * np.pi)))
                labels.append(a)
                knob_rows.append(knobs)
    angles, root, dx, phase, contacts = (np.stack(col) for col in zip(*rows, strict=True))
    return MotionClips(
        angles=angles,
        root=root,
        root_dx=dx,
        phase=phase,
        contacts=contacts,
        actions=np.array(labels, dtype=np.int64),
        knobs={k: np.array([r[k] for r in knob_rows]) for k in KNOBS},
        fps=fps,
    )


def thumbnails(clips: MotionClips, size: int) -> torch.Tensor:
    """The clips drawn dark on white at ``size`` px, camera on the root: ``(N, T, 1, S, S)``."""
    from workers.draw import SkeletonStyle, render_skeletons

    pos = clips.positions()  # (N, T, J, 2)
    n, t = pos.shape[:2]
    flat = pos.reshape(n * t, len(JOINTS), 2)  # (N*T, J, 2)
    centre = np.stack([flat[:, 0, 0], np.full(n * t, 0.8)], axis=1)
    grey = SkeletonStyle(
        far=(255, 255, 255), torso=(255, 255, 255), near=(255, 255, 255), head=(255, 255, 255),
        background=(0, 0, 0),
    )  # fmt: skip
    frames = render_skeletons(flat, size, size, centre=centre, scale=size / 2.1, style=grey)
    ink = torch.from_numpy(frames[..., 0].astype(np.float32) / 255.0)  # (N*T, S, S)
    return ink.view(n, t, 1, size, size)


def clips_dataset(name: str, clips: MotionClips, size: int, meta: dict[str, object]) -> Dataset:
    """The :class:`Dataset` view of ``clips``: thumbnails, actions as labels, knobs as factors."""
    return Dataset(
        name,
        thumbnails(clips, size),
        torch.from_numpy(clips.actions),
        classes=list(ACTIONS),
        factors={k: torch.from_numpy(v).float() for k, v in clips.knobs.items()},
        meta={**meta, "clips": clips, "fps": clips.fps, "joints": list(JOINTS)},
    )


def load(req: Request) -> Dataset:
    """Options: ``split`` ("train", "heldout" or "all"), ``clips`` per action (default 48),
    ``frames`` per clip (default 48), ``fps`` (default 24), ``actions`` (default all six)."""
    req.check_options(OPTIONS)
    if req.options.get("channels", 1) != 1:
        raise DatasetError(f"{req.name}: channels must be 1 (the thumbnails are grey)")
    size = req.shape_size(8, 128)
    split = req.choice("split", ("train", "heldout", "all"), "train")
    actions = req.names("actions") or list(ACTIONS)
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown:
        raise DatasetError(
            f"{req.name}: unknown action(s) {', '.join(unknown)} (have {', '.join(ACTIONS)})"
        )
    clips = generate(
        actions,
        req.integer("clips", 48, 1, 2000),
        req.integer("frames", 48, 2, 1000),
        req.number("fps", 24.0, 1.0, 240.0),
        req.seed,
        split,
    )
    return clips_dataset(req.name, clips, size, {"split": split})
