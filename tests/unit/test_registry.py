"""The registry's and the state machine's pure decisions: shown worker states, names, pools,
GPU pinning, and what a transition writes on a task row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from farm.errors import InvalidTransition
from farm.lifecycle import task_fields
from farm.registry import gpu_index, pool_of, shown_state, with_suffix
from farm.states import TaskState as T

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "draining", "silent_s", "shown"),
    [
        ("idle", False, 1, "idle"),
        ("busy", False, 59, "busy"),
        ("busy", False, 61, "lost"),  # silent past the lease: lost, whatever it last said
        ("idle", True, 61, "lost"),
        ("busy", True, 1, "draining"),
        ("idle", True, 1, "drained"),
        ("starting", False, 1, "starting"),
        ("stopped", False, 3600, "stopped"),  # a clean stop is never shown as lost
    ],
)
def test_shown_state(state: str, draining: bool, silent_s: float, shown: str) -> None:
    seen = NOW - timedelta(seconds=silent_s)
    assert shown_state(state, draining, seen, NOW, timeout_s=60) == shown


def test_with_suffix_keeps_the_host() -> None:
    assert with_suffix("default-cpu@render07", 1) == "default-cpu@render07"
    assert with_suffix("default-cpu@render07", 2) == "default-cpu-2@render07"
    assert with_suffix("plain", 3) == "plain-3"


def test_pool_of_queues() -> None:
    assert pool_of("gpu,cpu") is None
    assert pool_of("gpu.a100") == "a100"
    assert pool_of("cpu,gpu.studio-a") == "studio-a"


def test_gpu_index_from_the_pinning() -> None:
    assert gpu_index({"CUDA_VISIBLE_DEVICES": "3"}) == 3
    assert gpu_index({"CUDA_VISIBLE_DEVICES": "0,1"}) is None
    assert gpu_index({}) is None


def test_task_fields_per_transition() -> None:
    claimed = task_fields(T.QUEUED, T.RUNNING, NOW, None)
    assert claimed == {"state": T.RUNNING, "started_at": NOW, "finished_at": None, "error": None}
    done = task_fields(T.RUNNING, T.SUCCEEDED, NOW, None)
    assert done == {"state": T.SUCCEEDED, "finished_at": NOW, "lease_expires_at": None}
    again = task_fields(T.RUNNING, T.QUEUED, NOW, "boom")
    assert again["sent_at"] is None and again["error"] == "boom"
    assert task_fields(T.FAILED, T.QUEUED, NOW, "retried by operator").get("error") is None
    assert task_fields(T.QUEUED, T.FAILED, NOW, "dependency failed")["error"] == (
        "dependency failed"
    )
    with pytest.raises(InvalidTransition):
        task_fields(T.SUCCEEDED, T.QUEUED, NOW, None)
