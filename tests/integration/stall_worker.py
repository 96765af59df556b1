"""``farm`` whose stages misbehave by the job's name, for tests of timeouts and stall
detection with the real worker, heartbeat thread, claims and retries around them:

- ``hang-*``: reports progress once, then hangs in a loop that never checks (a stuck CUDA
  call) while the heartbeat thread goes on;
- ``slow-*``: reports moving progress every 0.3 s for 30 s;
- ``moving-*``: reports moving progress every 0.3 s for ``FARM_TEST_MOVING_S`` (4) s, then
  returns;
- ``fast-*``: returns at once; anything else sleeps 0.2 s.

    python -m tests.integration.stall_worker worker --queues gpu
"""

from __future__ import annotations

import os
import time

import workers.runner as runner
from farm.cli import app
from workers.context import TaskContext

_MOVING_S = float(os.environ.get("FARM_TEST_MOVING_S", "4"))


def _moving(ctx: TaskContext, seconds: float) -> None:
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        ctx.progress({"step": i}, min_interval_s=0)
        ctx.check()
        time.sleep(0.3)


def _stage(kind: object) -> runner.Stage:
    def stage(ctx: TaskContext) -> runner.Result:
        name = ctx.job_name
        if name.startswith("hang-"):
            ctx.progress({"step": 1}, min_interval_s=0)
            while True:  # never checks: only the heartbeat thread can tell
                time.sleep(0.05)
        if name.startswith("slow-"):
            _moving(ctx, 30)
        elif name.startswith("moving-"):
            _moving(ctx, _MOVING_S)
        elif not name.startswith("fast-"):
            time.sleep(0.2)
        return runner.Result()

    return stage


runner.stage_for = _stage

if __name__ == "__main__":
    app(prog_name="farm")
