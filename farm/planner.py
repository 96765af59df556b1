"""Spec -> tasks. Pure: the same spec always gives the same plan, with no database involved."""

from __future__ import annotations

from dataclasses import dataclass

from farm.frames import chunk, format_frames
from farm.specs import RenderSpec, TrainSpec
from farm.states import TaskKind

GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"
# The stage a finished one opens, and the queue it runs in: the worker whose success opened
# it may claim it in the same transaction (workers.claims), if it consumes that queue.
NEXT_STAGE = {TaskKind.RENDER_CHUNK: (TaskKind.ASSEMBLE,)}
QUEUE_OF = {TaskKind.ASSEMBLE: CPU_QUEUE}


@dataclass(frozen=True)
class PlannedTask:
    kind: TaskKind
    stage: int
    index: int
    queue: str
    frames: str | None = None
    position: int = 0
    frame_count: int = 0


def model_queue(pool: str | None) -> str:
    """Model work of a pooled job goes to that pool's queue, which only its workers consume."""
    return f"{GPU_QUEUE}.{pool}" if pool else GPU_QUEUE


def stage_ends(tasks: list[PlannedTask]) -> dict[int, int]:
    """Stage -> how many tasks are in it and the stages before it: the job's success count
    at which that stage is done."""
    return {s: sum(1 for t in tasks if t.stage <= s) for s in {t.stage for t in tasks}}


def plan(spec: TrainSpec | RenderSpec) -> list[PlannedTask]:
    gpu = model_queue(spec.pool)
    if isinstance(spec, TrainSpec):
        return [PlannedTask(TaskKind.TRAIN, stage=0, index=0, queue=gpu)]
    if spec.mode == "sample_grid":
        return [PlannedTask(TaskKind.SAMPLE_GRID, stage=0, index=0, queue=gpu)]
    frames = spec.frame_list()
    tasks = [
        PlannedTask(
            TaskKind.RENDER_CHUNK,
            stage=0,
            index=i,
            queue=gpu,
            frames=format_frames(part),
            position=pos,
            frame_count=len(part),
        )
        for i, (pos, part) in enumerate(chunk(frames, spec.chunk_size))
    ]
    tasks.append(
        PlannedTask(
            TaskKind.ASSEMBLE,
            stage=1,
            index=0,
            queue=QUEUE_OF[TaskKind.ASSEMBLE],
            frames=format_frames(frames),
            frame_count=len(frames),
        )
    )
    return tasks


def describe(kind: TaskKind, job_name: str, frames: str | None) -> str:
    """The label Flower and logs show for a task: which job and which frames."""
    if kind is TaskKind.RENDER_CHUNK:
        return f"render {job_name} [{frames}]"
    if kind is TaskKind.ASSEMBLE:
        return f"assemble {job_name} [{frames}]"
    if kind is TaskKind.SAMPLE_GRID:
        return f"sample grid {job_name}"
    return f"train {job_name}"
