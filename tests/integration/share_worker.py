"""``farm`` whose stages sleep ``FARM_TEST_STAGE_S`` seconds and produce nothing: tasks that
stay running long enough for the fair share's split to be watched, with the real worker,
claims, chains, completions and dispatch around them.

    FARM_TEST_STAGE_S=0.5 python -m tests.integration.share_worker worker --queues gpu,cpu
"""

from __future__ import annotations

import os
import time

import workers.runner as runner
from farm.cli import app

_STAGE_S = float(os.environ.get("FARM_TEST_STAGE_S", "0.5"))


def _sleeping(kind: object) -> runner.Stage:
    def stage(ctx: object) -> runner.Result:
        time.sleep(_STAGE_S)
        return runner.Result()

    return stage


runner.stage_for = _sleeping

if __name__ == "__main__":
    app(prog_name="farm")
