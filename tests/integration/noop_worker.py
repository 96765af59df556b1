"""``farm`` with stages that do nothing, for tests of the farm's own machinery at scale: the
worker process, claims, leases, completions, job states and dispatch are the real ones; only
the rendering (``workers.runner.stage_for``) is replaced.

    python -m tests.integration.noop_worker worker --queues gpu,cpu
"""

from __future__ import annotations

import workers.runner as runner
from farm.cli import app


def _noop(kind: object) -> runner.Stage:
    return lambda ctx: runner.Result()


runner.stage_for = _noop

if __name__ == "__main__":
    app(prog_name="farm")
