"""The device a worker's attempts are accounted on (farm.usage): ``cuda:N <model>`` or
``cpu``. Read once per child process, without importing torch where no stage has: a worker
whose stages never touched CUDA (the CPU queue, tests' stand-in stages) ran on the CPU."""

from __future__ import annotations

import sys

_found: list[str] = []


def device_label() -> str:
    if _found:
        return _found[0]
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return "cpu"  # not kept: a later stage may yet take the GPU
    index = torch.cuda.current_device()
    _found.append(f"cuda:{index} {torch.cuda.get_device_name(index)}")
    return _found[0]
