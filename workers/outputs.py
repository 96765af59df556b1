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


def file_stamp(path: Path) -> list[int]:
    """What tells a file's bytes apart without reading them: its device, inode, size and
    modification time (a list, as it is stored in an artifact's JSON metadata)."""
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def digest_known(path: Path, known: tuple[int, str, object] | None) -> tuple[int, str]:
    """(size, sha256) of a file, taken from ``known`` (size, sha256, and the
    :func:`file_stamp` taken before those were read) while the file is still that one,
    unchanged: a job's lone segment that became its output by a hard link is not read a
    second time. Anything else is read."""
    if known is not None and path.is_file() and file_stamp(path) == known[2]:
        return known[0], known[1]
    return digest(path)
