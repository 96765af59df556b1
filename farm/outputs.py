"""Where outputs live. Every path a job names is confined to the output root."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class OutsideOutputRoot(ValueError):
    """Raised when a path would resolve outside the output root."""


def confine(root: Path, relative: str) -> Path:
    """Resolve ``relative`` under ``root``; refuse absolute paths elsewhere and ``..`` escapes."""
    root = root.resolve()
    p = Path(relative)
    target = (p if p.is_absolute() else root / p).resolve()
    if target != root and root not in target.parents:
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
