"""Unit tests for turning a spec into tasks (farm.planner)."""

from __future__ import annotations

from farm.planner import CPU_QUEUE, GPU_QUEUE, PlannedTask, describe, plan, stage_ends
from farm.specs import parse_spec
from farm.states import TaskKind


def _render(frames: str, chunk_size: int) -> list[PlannedTask]:
    return plan(
        parse_spec(
            {"kind": "render", "checkpoint": "job:t", "frames": frames, "chunk_size": chunk_size}
        )
    )


def test_queue_names() -> None:
    assert (GPU_QUEUE, CPU_QUEUE) == ("gpu", "cpu")


def test_render_plan_is_gpu_chunks_then_one_cpu_assemble() -> None:
    assert _render("1-10", 4) == [
        PlannedTask(TaskKind.RENDER_CHUNK, 0, 0, "gpu", "1-4", position=0, frame_count=4),
        PlannedTask(TaskKind.RENDER_CHUNK, 0, 1, "gpu", "5-8", position=4, frame_count=4),
        PlannedTask(TaskKind.RENDER_CHUNK, 0, 2, "gpu", "9-10", position=8, frame_count=2),
        PlannedTask(TaskKind.ASSEMBLE, 1, 0, "cpu", "1-10", position=0, frame_count=10),
    ]


def test_render_plan_fields_by_name() -> None:
    tasks = _render("1-10", 4)
    chunks, assemble = tasks[:-1], tasks[-1]
    assert [t.frames for t in chunks] == ["1-4", "5-8", "9-10"]
    assert [t.position for t in chunks] == [0, 4, 8]
    assert [t.frame_count for t in chunks] == [4, 4, 2]
    assert [t.index for t in chunks] == [0, 1, 2]
    assert {t.stage for t in chunks} == {0}
    assert {t.queue for t in chunks} == {"gpu"}
    assert {t.kind for t in chunks} == {TaskKind.RENDER_CHUNK}
    assert assemble.kind is TaskKind.ASSEMBLE
    assert (assemble.stage, assemble.index, assemble.queue) == (1, 0, "cpu")
    assert (assemble.frames, assemble.frame_count) == ("1-10", 10)


def test_stepped_render_chunks_keep_the_step() -> None:
    assert _render("1-20x2", 4) == [
        PlannedTask(TaskKind.RENDER_CHUNK, 0, 0, "gpu", "1-7x2", position=0, frame_count=4),
        PlannedTask(TaskKind.RENDER_CHUNK, 0, 1, "gpu", "9-15x2", position=4, frame_count=4),
        PlannedTask(TaskKind.RENDER_CHUNK, 0, 2, "gpu", "17,19", position=8, frame_count=2),
        PlannedTask(TaskKind.ASSEMBLE, 1, 0, "cpu", "1-19x2", position=0, frame_count=10),
    ]


def test_stepped_render_with_default_chunk_is_one_chunk() -> None:
    tasks = plan(parse_spec({"kind": "render", "checkpoint": "job:t", "frames": "1-20x2"}))
    assert [(t.kind, t.frames, t.position, t.frame_count) for t in tasks] == [
        (TaskKind.RENDER_CHUNK, "1-19x2", 0, 10),
        (TaskKind.ASSEMBLE, "1-19x2", 0, 10),
    ]


def test_mixed_range_chunks_by_position_across_parts() -> None:
    tasks = _render("1,5,10-20", 5)
    assert [(t.frames, t.position, t.frame_count) for t in tasks] == [
        ("1,5,10-12", 0, 5),
        ("13-17", 5, 5),
        ("18-20", 10, 3),
        ("1,5,10-20", 0, 13),
    ]


def test_single_frame_render_is_one_chunk_and_assemble() -> None:
    tasks = _render("7", 50)
    assert [(t.kind, t.stage, t.queue, t.frames, t.frame_count) for t in tasks] == [
        (TaskKind.RENDER_CHUNK, 0, "gpu", "7", 1),
        (TaskKind.ASSEMBLE, 1, "cpu", "7", 1),
    ]


def test_plan_is_deterministic() -> None:
    assert _render("1001-1100", 30) == _render("1001-1100", 30)


def test_chunk_counts_sum_to_assemble_count() -> None:
    tasks = _render("1001-1100", 30)
    assert [t.frame_count for t in tasks[:-1]] == [30, 30, 30, 10]
    assert sum(t.frame_count for t in tasks[:-1]) == tasks[-1].frame_count == 100


def test_train_spec_plans_one_gpu_train_task() -> None:
    assert plan(parse_spec({"kind": "train"})) == [
        PlannedTask(TaskKind.TRAIN, stage=0, index=0, queue="gpu")
    ]


def test_train_task_has_no_frames() -> None:
    (task,) = plan(parse_spec({"kind": "train", "epochs": 3}))
    assert (task.frames, task.position, task.frame_count) == (None, 0, 0)


def test_describe_render_chunk() -> None:
    assert describe(TaskKind.RENDER_CHUNK, "sh010", "1001-1050") == "render sh010 [1001-1050]"


def test_describe_assemble() -> None:
    assert describe(TaskKind.ASSEMBLE, "sh010", "1001-1100") == "assemble sh010 [1001-1100]"


def test_describe_train_ignores_frames() -> None:
    assert describe(TaskKind.TRAIN, "vae-1", None) == "train vae-1"


def test_stage_ends_count_the_tasks_through_each_stage() -> None:
    # Three chunks end stage 0 at three successes; the assembly ends the job at four.
    assert stage_ends(_render("1-10", 4)) == {0: 3, 1: 4}
    assert stage_ends(_render("1", 1)) == {0: 1, 1: 2}
