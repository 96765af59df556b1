"""One worker process per GPU: the decisions (which GPUs, which names, which queues) are
pure; starting the processes is the CLI's edge."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from farm.errors import FarmError
from farm.planner import CPU_QUEUE, GPU_QUEUE


def visible_gpus() -> list[int]:
    """GPU indexes from nvidia-smi, without importing torch or touching CUDA here."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [int(line) for line in out.split() if line.strip().isdigit()]


def choose_gpus(spec: str, available: list[int]) -> list[int]:
    """``all`` or ``0,1``; an index that is not there is an error, not a silent CPU worker."""
    if spec == "all":
        return available
    wanted = [int(x) for x in spec.split(",") if x.strip()]
    missing = [g for g in wanted if g not in available]
    if missing:
        raise FarmError(f"--gpus {spec}: no GPU {missing} here (found {available or 'none'})")
    return wanted


def queues_for(pool: str | None, queues: str | None) -> str:
    if queues:
        return queues
    return f"{GPU_QUEUE}.{pool}" if pool else f"{GPU_QUEUE},{CPU_QUEUE}"


def node_name(pool: str | None, gpu: int | None, host: str | None = None) -> str:
    """Celery node names say host, pool and GPU: ``a100-gpu1@render07``."""
    where = host or socket.gethostname()
    return f"{pool or 'default'}-{'cpu' if gpu is None else f'gpu{gpu}'}@{where}"


def check_output_root(root: Path) -> None:
    """A worker that cannot write to the shared output root fails at start, not per task."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".farm-write-check-"):
            pass
    except OSError as e:
        raise FarmError(
            f"cannot write to the output root {root} ({e.strerror}): mount the shared output "
            "storage there, or set FARM_OUTPUT_ROOT"
        ) from None


def gpu_env(env: dict[str, str], gpu: int) -> dict[str, str]:
    return {**env, "CUDA_VISIBLE_DEVICES": str(gpu)}
