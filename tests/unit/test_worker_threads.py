"""Torch threads per pool process: the setting wins, else the CPUs are shared out."""

from __future__ import annotations

import pytest

from farm.config import Settings
from farm.runtime import shared_threads
from workers.main import torch_threads


@pytest.mark.parametrize(
    ("configured", "concurrency", "cpus", "expected"),
    [(None, 1, 2, 2), (None, 2, 2, 1), (None, 4, 2, 1), (None, 2, 16, 8), (3, 4, 2, 3)],
)
def test_threads_per_process(
    configured: int | None, concurrency: int, cpus: int, expected: int
) -> None:
    assert torch_threads(configured, concurrency, cpus) == expected


def test_setting_refuses_zero() -> None:
    with pytest.raises(ValueError, match="worker_threads"):
        Settings(worker_threads=0)


@pytest.mark.parametrize(
    ("configured", "workers", "cpus", "expected"),
    [
        (None, 1, 16, None),  # one worker divides the CPUs by its own concurrency
        (None, 2, 2, 1),  # two workers on 2 cores: one thread each, not two
        (None, 4, 16, 4),
        (None, 3, 2, 1),  # never below one
        (6, 4, 16, 6),  # FARM_WORKER_THREADS wins
    ],
)
def test_workers_one_command_starts_share_the_cpus(
    configured: int | None, workers: int, cpus: int, expected: int | None
) -> None:
    assert shared_threads(configured, workers, cpus) == expected
