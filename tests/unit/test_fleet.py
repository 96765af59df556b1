from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import FarmError
from farm.fleet import check_output_root, choose_gpus, gpu_env, node_name, queues_for


def test_all_gpus_or_a_list_and_a_missing_index_is_an_error() -> None:
    assert choose_gpus("all", [0, 1, 2]) == [0, 1, 2]
    assert choose_gpus("0,2", [0, 1, 2]) == [0, 2]
    assert choose_gpus("all", []) == []
    with pytest.raises(FarmError, match=r"no GPU \[3\]"):
        choose_gpus("1,3", [0, 1])


def test_pool_workers_consume_only_their_pool_queue() -> None:
    assert queues_for(None, None) == "gpu,cpu"
    assert queues_for("a100", None) == "gpu.a100"
    assert queues_for("a100", "cpu") == "cpu"


def test_worker_names_say_pool_gpu_and_host() -> None:
    assert node_name("a100", 1, "render07") == "a100-gpu1@render07"
    assert node_name(None, None, "box") == "default-cpu@box"
    assert gpu_env({"A": "1"}, 3) == {"A": "1", "CUDA_VISIBLE_DEVICES": "3"}


def test_unwritable_output_root_fails_fast(tmp_path: Path) -> None:
    check_output_root(tmp_path / "new" / "root")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FarmError, match="cannot write to the output root"):
        check_output_root(blocker / "under-a-file")
