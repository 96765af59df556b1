"""The fair share with real workers: projects at weights 2:1 keep a 2:1 split of running
tasks, and a project that arrives late starts within a chunk's time.

Three worker processes whose stages sleep ``STAGE_S`` (``tests/integration/share_worker.py``)
run render chunks of two or three projects; a sampler counts running tasks per project every
0.1 s while every project still has queued work (the contention the share is defined for).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from farm.models import Task
from farm.projects import set_project
from farm.specs import parse_spec
from farm.submit import Submission, submit_many
from tests.integration.harness import Farm, make_settings

pytestmark = pytest.mark.one_pass

STAGE_S = 1.0
WORKERS = 3


@pytest.fixture(scope="module")
def farm(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("share")
    f = Farm(make_settings(database_url, broker_url, root, lease_s=30.0, heartbeat_s=2.0), root)
    f.submit({"kind": "train", "name": "share-model", "epochs": 1, "project": "setup"})
    env = {"FARM_TEST_STAGE_S": str(STAGE_S)}
    for i in range(WORKERS):
        f.start_worker(
            "gpu", name=f"share{i}@test", module="tests.integration.share_worker",
            env_overrides=env,
        )  # fmt: skip
    f.start_worker("cpu", name="sharecpu@test", module="tests.integration.noop_worker")
    f.start_sweeper()
    try:
        f.wait_until(lambda: _done(f, "setup"), 120, "the model trained")
        yield f
    finally:
        f.close()


def _done(farm: Farm, project: str) -> bool:
    with farm.session() as s:
        left = s.execute(
            select(func.count())
            .select_from(Task)
            .where(Task.project == project, Task.state != "succeeded")
        ).scalar_one()
    return bool(left == 0)


def _shot(name: str, project: str, chunks: int) -> dict[str, object]:
    return {"kind": "render", "name": name, "checkpoint": "job:share-model", "project": project,
            "frames": f"1-{chunks}", "chunk_size": 1, "width": 64, "height": 64}  # fmt: skip


def _render(farm: Farm, name: str, project: str, chunks: int) -> int:
    return farm.submit(_shot(name, project, chunks))


def _counts(farm: Farm, queue: str = "gpu") -> tuple[dict[str, int], dict[str, int]]:
    """Running and queued tasks per project in the queue."""
    with farm.session() as s:
        rows = s.execute(
            select(Task.project, Task.state, func.count())
            .where(Task.queue == queue, Task.state.in_(("running", "queued")))
            .group_by(Task.project, Task.state)
        ).all()
    running = {p: n for p, st, n in rows if st == "running"}
    queued = {p: n for p, st, n in rows if st == "queued"}
    return running, queued


def test_two_projects_at_weights_two_to_one_keep_a_two_to_one_split(farm: Farm) -> None:
    with farm.session() as s:
        set_project(s, "alpha", weight=2)
        set_project(s, "beta", weight=1)
    # One submission of both, so neither starts ahead (a late one is the next test's).
    submit_many(
        farm.settings,
        farm.celery,
        [Submission(parse_spec(_shot(n, p, 60))) for n, p in (("alpha-shot", "alpha"),
                                                            ("beta-shot", "beta"))],
    )  # fmt: skip
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running, queued = _counts(farm)
        if queued.get("alpha", 0) < WORKERS or queued.get("beta", 0) < WORKERS:
            break  # contention over: one of them is about to run dry
        if running:
            samples.append((running.get("alpha", 0), running.get("beta", 0)))
        time.sleep(0.1)
    assert len(samples) >= 50, farm.logs()
    a, b = sum(x for x, _ in samples), sum(y for _, y in samples)
    share = a / (a + b)
    deviation = abs(share - 2 / 3) / (2 / 3)
    print(f"fair share 2:1: alpha {share:.3f} of running tasks over {len(samples)} samples,"
          f" deviation {deviation:.1%}")  # fmt: skip
    assert deviation <= 0.10, (share, samples)
    farm.wait_until(lambda: _done(farm, "alpha") and _done(farm, "beta"), 180, "all done")


def test_a_late_project_starts_within_a_chunk(farm: Farm) -> None:
    with farm.session() as s:
        set_project(s, "early", weight=1)
        set_project(s, "late", weight=2)
    _render(farm, "early-shot", "early", 60)
    farm.wait_until(lambda: _counts(farm)[0].get("early", 0) == WORKERS, 60, "early fills")
    time.sleep(2 * STAGE_S)
    submitted = time.monotonic()
    _render(farm, "late-shot", "late", 30)
    first = share = None
    while time.monotonic() - submitted < 30:
        n = _counts(farm)[0].get("late", 0)
        now = time.monotonic() - submitted
        first = first if first is not None or n == 0 else now
        if n >= 2:  # 2 of 3 workers at weights 2:1
            share = now
            break
        time.sleep(0.05)
    print(f"late project: first task after {first}s, its share (2 of 3) after {share}s,"
          f" chunks of {STAGE_S}s")  # fmt: skip
    assert share is not None and first is not None, farm.logs()
    # The next claim after the submission takes the late project's task in place of the
    # delivered one (farm.dispatch.fairer_task), however many messages the window holds:
    # within a chunk, plus half a second for a loaded test machine (the sampler's queries,
    # the worker's return to the broker). Before, the window's messages went first: 1.3 to
    # 2.0 chunks. Its share is left lenient here; bench/fair_share.py prints both figures.
    assert first <= STAGE_S + 0.5, (first, share)
    assert share <= 2.5 * STAGE_S + 1.0, (first, share)
