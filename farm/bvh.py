"""What submission can tell about a ``bvh:<file or folder>`` data set without a worker: that
each file is BVH text with a hierarchy and at least two frames of motion, that its joints
name the ones the skeleton needs (the retargeting's own table, :data:`NAMES`), and which
action its name gives.

A full parse (``pybvh``, the retargeting) is the worker's, in ``workers/datasets/bvh.py``;
the control plane imports neither, so this reads the header with plain Python, enough to
refuse a missing, empty or foreign file before a training task is queued for it. The files
a folder holds and the action in a file's name follow the worker's rules exactly (visible
``.bvh`` files, not recursive; the one action the stem names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.families import MOTION_ACTIONS

# Candidate names per joint, compared lower-case without separators or a "rig:" prefix.
NAMES: dict[str, tuple[str, ...]] = {
    "root": ("hips", "hip", "pelvis", "root"),
    "spine": ("spine1", "chest", "spine2", "spine"),
    "neck": ("neck", "neck1"),
    "head": ("head",),
    **{
        f"{s}_{joint}": tuple(n.format(side=side, s=s) for n in names)
        for s, side in (("l", "left"), ("r", "right"))
        for joint, names in (
            ("shoulder", ("{side}arm", "{side}uparm", "{side}upperarm", "{s}shldr",
                          "{s}upperarm", "{side}shoulder")),
            ("elbow", ("{side}forearm", "{side}lowarm", "{side}lowerarm", "{s}forearm")),
            ("hand", ("{side}hand", "{s}hand", "{side}wrist")),
            ("hip", ("{side}upleg", "{side}upperleg", "{side}thigh", "{s}thigh", "{side}hip")),
            ("knee", ("{side}leg", "{side}lowleg", "{side}lowerleg", "{s}shin", "{side}knee")),
            ("foot", ("{side}foot", "{s}foot", "{side}ankle")),
        )
    },
}  # fmt: skip
REQUIRED = ("root", "l_hip", "l_knee", "l_foot", "r_hip", "r_knee", "r_foot")

# The header of a real capture is a few kilobytes; a file with none in this many lines is not BVH.
MAX_HEADER_LINES = 20_000


@dataclass(frozen=True)
class BvhHeader:
    """A file's hierarchy and motion header: joint names in file order, the channels a frame
    holds, the frame count and the frame time in seconds."""

    joints: tuple[str, ...]
    channels: int
    frames: int
    frame_time_s: float


class BvhError(ValueError):
    """Raised when a file is not BVH a worker could train on; the message names the file."""


def bvh_files(path: Path) -> list[Path]:
    """The file itself, or the visible ``.bvh`` files of a folder (sorted, not recursive)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BvhError(f"{path} does not exist")
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() == ".bvh"
    )
    if not files:
        raise BvhError(f"no BVH files in {path} (looked for .bvh)")
    return files


def read_header(path: Path) -> BvhHeader:
    """The header of ``path`` and a check that its first frame has a value per channel."""
    joints: list[str] = []
    channels = 0
    frames: int | None = None
    frame_time: float | None = None
    try:
        with path.open(encoding="utf-8") as f:
            words = _first_words(f.readline())
            if words[:1] != ["HIERARCHY"]:
                raise BvhError(f"{path}: not a BVH file (it does not start with HIERARCHY)")
            for number, line in enumerate(f, start=2):
                words = _first_words(line)
                if not words:
                    continue
                if words[0] in ("ROOT", "JOINT") and len(words) > 1:
                    joints.append(" ".join(words[1:]))
                elif words[0] == "CHANNELS":
                    channels += _number(path, number, words[1:2], int, "CHANNELS")
                elif words[0] == "Frames:":
                    frames = _number(path, number, words[1:2], int, "Frames")
                elif words[:2] == ["Frame", "Time:"]:
                    frame_time = _number(path, number, words[2:3], float, "Frame Time")
                    first = f.readline().split()
                    break
                if number > MAX_HEADER_LINES:
                    raise BvhError(f"{path}: no MOTION header in its first {number} lines")
            else:
                first = []
    except UnicodeDecodeError:
        raise BvhError(f"{path}: not a BVH file (not UTF-8 text)") from None
    except OSError as e:
        raise BvhError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not joints:
        raise BvhError(f"{path}: its HIERARCHY has no ROOT joint")
    if frames is None or frame_time is None:
        raise BvhError(f"{path}: no MOTION section with Frames and Frame Time")
    if frames < 2:
        raise BvhError(f"{path}: has {frames} frame(s), needs at least 2")
    if not frame_time > 0:
        raise BvhError(f"{path}: Frame Time must be positive, is {frame_time:g}")
    if len(first) != channels:
        raise BvhError(f"{path}: its first frame has {len(first)} values for {channels} channels")
    return BvhHeader(tuple(joints), channels, frames, frame_time)


def _first_words(line: str) -> list[str]:
    return line.replace("\ufeff", "").split()


def _number(path: Path, line: int, words: list[str], kind: type[Any], what: str) -> Any:
    try:
        return kind(words[0])
    except (IndexError, ValueError):
        raise BvhError(f"{path}: line {line}: {what} needs a number") from None


def file_action(path: Path) -> str:
    """The one action ``path``'s name gives (``walk_03.bvh`` -> ``walk``), as the worker
    reads it when the spec names none."""
    named = [a for a in MOTION_ACTIONS if a in path.stem.lower()]
    if len(named) != 1:
        have = "none" if not named else "several (" + ", ".join(named) + ")"
        raise BvhError(
            f"{path}: its name must name one action ({', '.join(MOTION_ACTIONS)}), it names {have}"
        )
    return named[0]


def bvh_actions(path: Path) -> tuple[str, ...]:
    """The actions of the data set at ``path``, in :data:`MOTION_ACTIONS` order, after
    checking every file's header; raises :class:`BvhError` on the first bad file."""
    found: set[str] = set()
    for f in bvh_files(path):
        missing_joints(f, read_header(f).joints)
        found.add(file_action(f))
    return tuple(a for a in MOTION_ACTIONS if a in found)


def joint_key(name: str) -> str:
    return re.sub(r"[\s_.\-]", "", name.split(":")[-1].lower())


def match_joints(names: list[str]) -> dict[str, int]:
    """Our joint -> index into ``names`` for every joint a name matches."""
    keys = {joint_key(n): i for i, n in enumerate(names)}
    out: dict[str, int] = {}
    for joint, candidates in NAMES.items():
        for c in candidates:
            if c in keys:
                out[joint] = keys[c]
                break
    return out


def missing_joints(path: Path, joints: tuple[str, ...]) -> None:
    """Raise unless the rig names every joint the retargeting needs (the legs and the root)."""
    found = match_joints(list(joints))
    missing = [j for j in REQUIRED if j not in found]
    if missing:
        raise BvhError(
            f"{path}: no joints the skeleton can use for {', '.join(missing)} "
            f"(the file has {', '.join(joints[:12])}); expected CMU or Mixamo names"
        )
