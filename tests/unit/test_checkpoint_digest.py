"""A worker hashes a checkpoint once while it is unchanged, and again once it is replaced."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from workers import checkpoint
from workers.checkpoint import checkpoint_sha256


def test_an_unchanged_checkpoint_is_not_read_again(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.safetensors"
    path.write_bytes(b"weights")
    reads: list[Path] = []
    real = checkpoint.sha256_file
    monkeypatch.setattr(checkpoint, "sha256_file", lambda p: reads.append(p) or real(p))
    first = checkpoint_sha256(path)
    assert checkpoint_sha256(path) == first == hashlib.sha256(b"weights").hexdigest()
    assert reads == [path]


def test_a_checkpoint_replaced_by_a_rename_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "b.safetensors"
    path.write_bytes(b"weights")
    checkpoint_sha256(path)
    new = tmp_path / ".b.tmp.safetensors"
    new.write_bytes(b"WEIGHTS")  # same size; save_checkpoint replaces by rename
    st = path.stat()
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old time
    os.replace(new, path)
    assert checkpoint_sha256(path) == hashlib.sha256(b"WEIGHTS").hexdigest()
