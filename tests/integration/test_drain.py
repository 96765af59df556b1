"""Ten thousand queued tasks across a hundred jobs, drained by two workers, with the database
and the broker agreeing at the end.

The jobs are real submissions (a train job and 100 renders of 99 one-frame chunks and an
assembly each, waiting on it), run by real worker processes whose stages do nothing
(``tests/integration/noop_worker.py``): what is under test is the farm's bookkeeping at scale
(dependency release, dispatch windows, claims, completions, job states), not rendering.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from farm.models import Event, Job, Task
from tests.integration.harness import Farm, make_settings

pytestmark = [pytest.mark.faults, pytest.mark.one_pass]

JOBS, CHUNKS = 100, 99  # + one assembly per job: 10,000 render tasks, and the train task


@pytest.fixture(scope="module")
def farm(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("drain")
    # Default lease and lost-message timings: at this volume a busy 2-core machine can stall
    # a worker for seconds, which must not be mistaken for a lost one.
    f = Farm(
        make_settings(
            database_url, broker_url, root, lease_s=60.0, heartbeat_s=5.0, unclaimed_s=60.0
        ),
        root,
    )
    try:
        yield f
    finally:
        f.close()


def test_ten_thousand_tasks_drained_by_two_workers(farm: Farm) -> None:
    train = farm.submit({"kind": "train", "name": "drain-model", "epochs": 1})
    for i in range(JOBS):
        farm.submit(
            {"kind": "render", "name": f"drain{i:03d}", "checkpoint": "job:drain-model",
             "frames": f"1-{CHUNKS}", "chunk_size": 1, "width": 64, "height": 64}
        )  # fmt: skip
    with farm.session() as s:
        total = s.execute(select(func.count()).select_from(Task)).scalar_one()
    assert total == JOBS * (CHUNKS + 1) + 1

    started = time.monotonic()
    workers = [
        farm.start_worker(name=f"drain{i}@test", module="tests.integration.noop_worker")
        for i in range(2)
    ]
    farm.start_sweeper()

    def finished() -> bool:
        with farm.session() as s:
            left = s.execute(
                select(func.count()).select_from(Task).where(Task.state != "succeeded")
            ).scalar_one()
        return left == 0

    farm.wait_until(finished, 900, "all tasks succeeded")
    elapsed = time.monotonic() - started
    for w in workers:  # graceful: each acknowledges what it ran
        farm.stop(w)

    with farm.session() as s:
        states = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        successes = s.execute(
            select(func.count(), func.count(func.distinct(Event.task_id))).where(
                Event.to_state == "succeeded", Event.task_id.is_not(None)
            )
        ).one()
        attempts, sends = s.execute(select(func.sum(Task.attempts), func.sum(Task.sends))).one()
        counters = s.execute(
            select(func.sum(Job.tasks_succeeded), func.sum(Job.tasks_queued + Job.tasks_running))
        ).one()
        by_worker = dict(
            s.execute(
                select(Task.worker, func.count()).where(Task.id != train).group_by(Task.worker)
            ).all()
        )
    assert states == {"succeeded": JOBS + 1}
    assert successes == (total, total)  # every task succeeded exactly once
    assert counters == (total, 0)  # the jobs' counters agree with their tasks
    # The broker agrees: nothing left in the queues, nothing delivered and unacknowledged.
    assert farm.redis.llen("gpu") == 0 and farm.redis.llen("cpu") == 0
    assert farm.redis.hlen("unacked") == 0
    assert attempts == total, "a task was claimed twice"
    assert sends == total, "a task was handed out twice"
    assert set(by_worker) == {"drain0@test", "drain1@test"}
    print(
        f"\ndrain: {total} tasks in {JOBS + 1} jobs by 2 workers in {elapsed:.1f}s "
        f"({total / elapsed:.0f} tasks/s); per worker {by_worker}"
    )
