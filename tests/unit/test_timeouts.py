"""The timeout rules' arithmetic: which values apply to a task, what is refused, and which
rule an attempt breaks when (the heartbeat thread's check, on a clock given to it)."""

from __future__ import annotations

import pytest

from farm.config import Settings
from farm.states import TaskKind
from farm.timeouts import Timeouts, effective, parse_defaults, problems
from workers.context import TaskContext
from workers.runner import Heartbeat

DEFAULTS = {"render_chunk": {"stall_s": 600.0}, "assemble": {"max_run_s": 900.0}}


def test_a_jobs_values_win_for_its_main_tasks_the_defaults_elsewhere() -> None:
    spec = {"max_run_s": 60, "min_run_s": None, "stall_s": 20}
    assert effective(spec, "render_chunk", DEFAULTS) == Timeouts(60.0, None, 20.0)
    assert effective({}, "render_chunk", DEFAULTS) == Timeouts(None, None, 600.0)
    # an assembly is not held to the chunks' values
    assert effective(spec, "assemble", DEFAULTS) == Timeouts(900.0, None, None)
    assert effective(spec, "train", {}) == Timeouts(60.0, None, 20.0)


def test_below_the_heartbeat_or_a_minimum_not_below_the_maximum_is_refused() -> None:
    assert problems({"max_run_s": 10, "stall_s": 10, "min_run_s": 0.1}, 10) == []
    found = problems({"stall_s": 5, "max_run_s": 4, "min_run_s": 4}, 10)
    assert [f for f, _ in found] == ["max_run_s", "stall_s", "min_run_s"]
    assert "below the heartbeat interval (10 s" in found[0][1]
    assert "not below max_run_s" in found[2][1]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[1]", "object of task kinds"),
        ('{"render": {"stall_s": 60}}', "default_timeouts.render: not a task kind"),
        ('{"render_chunk": {"stall": 60}}', "default_timeouts.render_chunk.stall"),
        ('{"render_chunk": {"stall_s": -1}}', "> 0"),
        ('{"render_chunk": {"stall_s": 5}}', "below the heartbeat interval"),
        ("{nope", "not JSON"),
    ],
)
def test_bad_defaults_are_refused_naming_where(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="default_timeouts") as e:
        parse_defaults(text, 10.0)
    assert why in str(e.value)


def test_settings_refuse_bad_defaults_when_built() -> None:
    assert Settings(default_timeouts='{"train": {"max_run_s": 3600}}').timeout_defaults() == {
        "train": {"max_run_s": 3600.0}
    }
    with pytest.raises(ValueError, match="below the heartbeat"):
        Settings(heartbeat_s=10, default_timeouts='{"train": {"stall_s": 1}}')


def _beat(timeouts: Timeouts) -> Heartbeat:
    ctx = TaskContext(
        settings=Settings(), task_id=1, job_id=1, job_name="j", kind=TaskKind.RENDER_CHUNK,
        attempt=1, spec={}, frames="1", position=0, frame_count=1, index=0, worker="w",
    )  # fmt: skip
    beat = Heartbeat(ctx, timeouts)
    beat.started = 100.0
    return beat


def test_the_rule_that_fires_and_when() -> None:
    beat = _beat(Timeouts(max_run_s=50, stall_s=10))
    assert beat.broken_rule(109) is None
    assert beat.broken_rule(111) == "stall_s: no progress for 11 s"
    beat.ctx.progress_moved_at = 105.0  # progress moved: the stall counts from then
    assert beat.broken_rule(111) is None
    assert beat.broken_rule(116) == "stall_s: no progress for 11 s"
    beat.ctx.progress_moved_at = 149.0
    assert beat.broken_rule(151) == "max_run_s exceeded (ran 51 s)"
    assert _beat(Timeouts()).broken_rule(10_000) is None


def test_progress_moves_only_when_its_values_change() -> None:
    ctx = _beat(Timeouts()).ctx
    ctx.settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none")
    ctx._last_values = {"step": 1}
    ctx.progress_moved_at = 5.0
    ctx._last_progress = float("inf")  # throttled: nothing is written
    ctx.progress({"step": 1})
    assert ctx.progress_moved_at == 5.0
    ctx.progress({"step": 2})
    assert ctx.progress_moved_at > 5.0
