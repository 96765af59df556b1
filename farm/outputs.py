"""Where outputs live. Every path a job writes is confined to the output root; the paths it
reads are confined by :mod:`farm.inputs`."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class OutsideOutputRoot(ValueError):
    """Raised when a path would resolve outside the output root."""


def resolve_ref(root: Path, ref: str) -> Path | None:
    """``ref`` with symlinks and ``..`` followed, a relative one taken under ``root``; None
    when it names no usable path (a NUL byte, a symlink loop)."""
    p = Path(ref)
    try:
        return (p if p.is_absolute() else root / p).resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def within(path: Path, root: Path) -> bool:
    """Whether the resolved ``path`` is ``root`` or below it (both resolved)."""
    return path == root or root in path.parents


def confine(root: Path, relative: str) -> Path:
    """Resolve ``relative`` under ``root``; refuse absolute paths elsewhere and ``..`` escapes."""
    root = root.resolve()
    target = resolve_ref(root, relative)
    if target is None:
        raise OutsideOutputRoot(f"{relative!r} is not a usable path")
    if not within(target, root):
        raise OutsideOutputRoot(f"{relative!r} is outside the output root {root}")
    if target == root:
        raise OutsideOutputRoot(f"{relative!r} names the output root itself, not a file")
    return target


def relative_to_root(root: Path, path: Path) -> str:
    return str(PurePosixPath(path.resolve().relative_to(root.resolve())))


def default_output(kind: str, name: str) -> str:
    return f"checkpoints/{name}.safetensors" if kind == "train" else f"renders/{name}.mp4"


def segment_path(root: Path, job_id: int, index: int) -> Path:
    """Segments of one job live apart from finished outputs, one file per chunk."""
    return root.resolve() / ".segments" / f"job-{job_id}" / f"chunk-{index:05d}.mp4"
