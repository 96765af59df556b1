"""Crash-safe model checkpoints: safetensors weights plus a JSON metadata sidecar.

Workers can be killed at any moment (preemption, OOM, revoked tasks), so a checkpoint is
written to temporary files and renamed into place, sidecar first and weights last: if the
``.safetensors`` file exists, the checkpoint is complete. The metadata is also embedded in the
safetensors header, which is the copy :func:`load_checkpoint` trusts, so a stale or missing
sidecar can never pair the wrong metadata with a set of weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

SCHEMA_VERSION = 1
_HEADER_KEY = "farm"
_SUFFIX = ".safetensors"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupted or from an unsupported schema."""


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{suffix}")


def save_checkpoint(path: Path, model: nn.Module, metadata: Mapping[str, Any]) -> None:
    """Atomically write ``model``'s weights to ``path`` and ``metadata`` next to it.

    ``metadata`` must be JSON-serialisable (store small arrays such as class means as nested
    lists); it is copied, never mutated, and gains ``"schema_version": 1``.
    """
    path = Path(path)
    if path.suffix != _SUFFIX:
        raise ValueError(f"checkpoint path must end with {_SUFFIX}: {path}")
    meta = {**dict(metadata), "schema_version": SCHEMA_VERSION}
    try:
        meta_json = json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint metadata is not JSON-serialisable: {exc}") from exc
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}

    path.parent.mkdir(parents=True, exist_ok=True)
    json_path = path.with_suffix(".json")
    tmp_json = _tmp_name(json_path, ".json")
    tmp_weights = _tmp_name(path, _SUFFIX)
    try:
        with open(tmp_json, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(meta, sort_keys=True, indent=2, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        save_file(tensors, str(tmp_weights), metadata={_HEADER_KEY: meta_json})
        _fsync_file(tmp_weights)
        os.replace(tmp_json, json_path)
        os.replace(tmp_weights, path)
    finally:
        for tmp in (tmp_json, tmp_weights):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def resume_path(checkpoint: Path) -> Path:
    """A training's resume file, next to the checkpoint it belongs to."""
    return checkpoint.with_name(checkpoint.stem + ".resume.safetensors")


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``(state_dict, metadata)`` from a checkpoint written by :func:`save_checkpoint`.

    Every failure mode (missing, truncated, corrupt, foreign or future-schema file) surfaces
    as :class:`CheckpointError` so callers can fail the job with one clear message.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint is truncated or corrupted: {path}: {exc}") from exc

    raw = header.get(_HEADER_KEY)
    if raw is None:
        raise CheckpointError(f"checkpoint has no {_HEADER_KEY!r} metadata in its header: {path}")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint header metadata is not valid JSON: {path}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint header metadata is not a JSON object: {path}")
    version = meta.get("schema_version")
    if version is None:
        raise CheckpointError(f"checkpoint metadata has no schema_version: {path}")
    if version != SCHEMA_VERSION:
        raise CheckpointError(
            f"unsupported checkpoint schema_version {version!r} (expected {SCHEMA_VERSION}): {path}"
        )
    return tensors, meta


def sha256_file(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so large artifacts don't need to fit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


_known_digests: dict[str, tuple[tuple[int, int, int, int], str]] = {}


def checkpoint_sha256(path: Path) -> str:
    """:func:`sha256_file`, remembered by this process while the file is the one it read
    (the same device, inode, size and modification time), so each task on a cached model
    does not hash its checkpoint again. A checkpoint is replaced by a rename (a new inode)
    and never written in place, so a changed file always reads again."""
    path = Path(path)
    st = path.stat()
    stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    known = _known_digests.get(str(path))
    if known is not None and known[0] == stamp:
        return known[1]
    sha = sha256_file(path)
    _known_digests[str(path)] = (stamp, sha)
    return sha
