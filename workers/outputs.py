"""Files and folders as artifacts: where a chunk's segment goes and how an output is hashed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from farm.outputs import segment_path


def segment_for(root: Path, job_id: int, index: int, suffix: str) -> Path:
    """A chunk's segment: a file with the format's suffix, or a folder for sequences."""
    return segment_path(root, job_id, index).with_suffix(suffix)


def digest(path: Path, files: list[Path] | None = None, chunk: int = 1 << 20) -> tuple[int, str]:
    """(size, sha256) of a file, or of a folder's files (``files``, else all of them) in
    order, their names included."""
    h = hashlib.sha256()
    if path.is_dir() and files is None:
        files = sorted(p for p in path.rglob("*") if p.is_file())
    size = 0
    for f in files if files is not None else [path]:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
                size += len(block)
    return size, h.hexdigest()
