"""Timeouts and stall detection with real workers (``tests/integration/stall_worker.py``): a
stage that hangs while its heartbeat runs fails with ``stall_s`` on each attempt (retries
apply, each recorded in the events) and the worker's process recovers; one that runs too
long fails with ``max_run_s``, one that finishes too fast with ``min_run_s``; moving
progress is not a stall; timeouts below the heartbeat interval are refused at submission."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from farm.errors import SpecError
from farm.models import Event, Task
from farm.specs import parse_spec
from farm.submit import submit
from tests.integration.harness import Farm, make_settings

HEARTBEAT_S = 1.0


@pytest.fixture(scope="module")
def farm(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("timeouts")
    settings = make_settings(
        database_url, broker_url, root, heartbeat_s=HEARTBEAT_S, lease_s=10.0,
        retry_backoff_s=0.2,
    )  # fmt: skip
    f = Farm(settings, root)
    model = f.submit({"kind": "train", "name": "stall-model", "epochs": 1})
    for i in range(2):
        f.start_worker("gpu", name=f"stall{i}@test", module="tests.integration.stall_worker")
    f.start_worker("cpu", name="stallcpu@test", module="tests.integration.noop_worker")
    f.start_sweeper()
    try:
        assert f.wait(model, 120)["state"] == "succeeded", f.logs()
        yield f
    finally:
        f.close()


def _shot(name: str, **kw: object) -> dict[str, object]:
    return {"kind": "render", "name": name, "checkpoint": "job:stall-model", "frames": "1-1",
            "chunk_size": 1, "width": 64, "height": 64, **kw}  # fmt: skip


def _chunk(farm: Farm, job_id: int) -> tuple[Task, list[Event]]:
    with farm.session() as s:
        task = s.execute(
            select(Task).where(Task.job_id == job_id, Task.kind == "render_chunk")
        ).scalar_one()
        events = list(
            s.execute(select(Event).where(Event.task_id == task.id).order_by(Event.id)).scalars()
        )
        s.expunge_all()
    return task, events


def test_timeouts_below_the_heartbeat_or_crossed_are_refused(farm: Farm) -> None:
    for field, extra in (("stall_s", {"stall_s": 0.5}), ("max_run_s", {"max_run_s": 0.2})):
        with pytest.raises(SpecError) as e:
            submit(farm.settings, None, parse_spec(_shot("refused", **extra)))
        assert e.value.problems[0][0] == field
        assert "below the heartbeat interval" in e.value.problems[0][1]
    with pytest.raises(SpecError) as e:
        submit(farm.settings, None, parse_spec(_shot("refused", min_run_s=5, max_run_s=5)))
    assert e.value.problems[0][0] == "min_run_s"


def test_a_hung_stage_fails_by_stall_s_on_every_attempt(farm: Farm) -> None:
    job = farm.submit(_shot("hang-shot", stall_s=2, max_attempts=2))
    assert farm.wait(job, 120)["state"] == "failed", farm.logs()
    task, events = _chunk(farm, job)
    assert task.attempts == 2
    assert task.error is not None and task.error.startswith("stall_s: no progress for"), task.error
    fired = [e for e in events if (e.message or "").startswith("stall_s: no progress for")]
    assert [e.to_state for e in fired] == ["queued", "failed"], [
        (e.to_state, e.message) for e in events
    ]
    started = [e for e in events if e.to_state == "running"]
    detect = [(f.at - s.at).total_seconds() for s, f in zip(started, fired, strict=True)]
    print(f"stall detected {', '.join(f'{d:.2f}' for d in detect)} s after the attempt started"
          f" (stall_s 2, heartbeat {HEARTBEAT_S} s)")  # fmt: skip
    assert all(2.0 <= d <= 2.0 + 2 * HEARTBEAT_S + 2.0 for d in detect), detect
    # The stuck processes were replaced: the workers still run work.
    ok = farm.submit(_shot("after-hang"))
    assert farm.wait(ok, 120)["state"] == "succeeded", farm.logs()


def test_too_long_and_too_fast_attempts_fail_naming_the_rule(farm: Farm) -> None:
    slow = farm.submit(_shot("slow-shot", max_run_s=2, max_attempts=1))
    fast = farm.submit(_shot("fast-shot", min_run_s=5, max_attempts=1))
    assert farm.wait(slow, 120)["state"] == "failed"
    assert farm.wait(fast, 120)["state"] == "failed"
    task, events = _chunk(farm, slow)
    assert task.error is not None and task.error.startswith("max_run_s exceeded (ran "), task.error
    assert events[-1].to_state == "failed" and events[-1].message == task.error
    task, events = _chunk(farm, fast)
    assert task.error is not None and task.error.startswith("min_run_s: finished in "), task.error
    assert events[-1].to_state == "failed" and events[-1].message == task.error


def test_moving_progress_is_not_a_stall(farm: Farm) -> None:
    job = farm.submit(_shot("moving-shot", stall_s=2, max_run_s=30, min_run_s=1))
    assert farm.wait(job, 120)["state"] == "succeeded", farm.logs()
    task, _ = _chunk(farm, job)
    assert task.attempts == 1
