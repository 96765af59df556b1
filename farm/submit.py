"""Submission: validate against the database, record the job and its tasks, then send.

The job and all its tasks are committed in one transaction before any message is sent;
sending is the dispatcher's job, which a crash between the two cannot skip (the sweeper
sends whatever is ready and unsent).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farm.config import Settings
from farm.db import session_scope
from farm.dispatch import dispatch_ready
from farm.errors import BrokerUnusable, FarmError, JobNotFound, SpecError
from farm.families import (
    BUILTIN,
    ModelInfo,
    info_from_metadata,
    info_from_train_spec,
    read_sidecar,
)
from farm.inputs import OutsideInputRoots, confine_input, dataset_input, input_roots
from farm.models import Event, Job, JobDependency, Task
from farm.outputs import OutsideOutputRoot, confine, default_output
from farm.planner import plan, stage_ends
from farm.specs import MAX_ID, LatentKeyframe, OutputSpec, RenderSpec, TrainSpec
from farm.states import JobState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submitted:
    job_id: int
    name: str
    created: bool


def find_job(session: Session, ref: str | int) -> Job:
    """A job by id, or the newest job with that name."""
    text = str(ref)
    if text.isdigit():
        job = session.get(Job, int(text)) if int(text) <= MAX_ID else None
    else:
        job = session.execute(
            select(Job).where(Job.name == text).order_by(Job.id.desc()).limit(1)
        ).scalar_one_or_none()
    if job is None:
        raise JobNotFound(text)
    return job


def resolve(
    session: Session, settings: Settings, spec: TrainSpec | RenderSpec
) -> tuple[dict[str, object], list[int]]:
    """The spec as stored (name and output filled in) and the jobs it depends on."""
    problems: list[tuple[str, str]] = []
    name = spec.name or f"{spec.kind}-{uuid.uuid4().hex[:8]}"
    root = settings.output_root_abs()
    readable = input_roots(settings)  # what the job may read: the output root and input roots
    stored_output: object
    if isinstance(spec, RenderSpec):
        fmt, output, options = spec.output_plan(name)
        problems += spec.format_problems(name)
        field = "output.path" if isinstance(spec.output, OutputSpec) else "output"
        keep = isinstance(spec.output, OutputSpec) and spec.output.keep_segments
        stored_output = {"format": fmt, "path": output, "options": options, "keep_segments": keep}
        audio = options.get("audio")
        if audio:
            try:
                if not confine_input(readable, str(audio)).is_file():
                    problems.append(("output.audio", f"{audio!r} does not exist"))
            except OutsideInputRoots as e:
                problems.append(("output.audio", str(e)))
    else:
        output = spec.output or default_output(spec.kind, name)
        stored_output, field = output, "output"
        try:
            data = dataset_input(readable, spec.dataset)
        except OutsideInputRoots as e:
            problems.append(("dataset", str(e)))
        else:
            if data is not None and not data.exists():
                problems.append(("dataset", f"{data} does not exist"))
    try:
        confine(root, output)
    except OutsideOutputRoot as e:
        problems.append((field, str(e)))
    deps: list[int] = []
    if isinstance(spec, RenderSpec):
        ref = spec.checkpoint
        info: ModelInfo | None = None
        if ref.startswith("job:"):
            try:
                dep = find_job(session, ref[4:])
            except JobNotFound:
                problems.append(("checkpoint", f"unknown checkpoint: no job {ref[4:]!r}"))
            else:
                if dep.kind != "train":
                    problems.append(
                        ("checkpoint", f"job {dep.id} ({dep.name}) is a {dep.kind} job, not train")
                    )
                else:
                    info = info_from_train_spec(dep.spec)
                deps.append(dep.id)
        else:
            try:
                path = confine_input(readable, ref)
            except OutsideInputRoots as e:
                problems.append(("checkpoint", str(e)))
            else:
                if not path.is_file():
                    problems.append(("checkpoint", f"unknown checkpoint: {path} does not exist"))
                else:
                    meta = _sidecar(readable, path)
                    info = info_from_metadata(meta) if meta is not None else None
        if info is not None:
            problems += model_problems(spec, info)
    for i, after_ref in enumerate(spec.after):
        try:
            after = find_job(session, after_ref)
        except JobNotFound:
            problems.append((f"after.{i}", f"no job {str(after_ref)!r}"))
        else:
            if after.id not in deps:
                deps.append(after.id)
    if problems:
        raise SpecError(problems)
    stored = spec.model_dump(mode="json")
    stored.update(name=name, output=stored_output, fingerprint=fingerprint(spec))
    return stored, deps


def _sidecar(readable: tuple[Path, ...], checkpoint: Path) -> dict[str, Any] | None:
    """The checkpoint's JSON sidecar, unless it is a link out of the readable roots."""
    try:
        confine_input(readable, str(checkpoint.with_suffix(".json")))
    except OutsideInputRoots:
        return None
    return read_sidecar(checkpoint)


def model_problems(spec: RenderSpec, info: ModelInfo) -> list[tuple[str, str]]:
    """What the checkpoint's family, classes and latent size rule out for this render."""
    family = BUILTIN.get(info.family)
    if family is None:
        return []  # a plugin family: its worker-side mode decides
    if spec.mode not in family.modes:
        modes = ", ".join(sorted(family.modes))
        return [("checkpoint", f"a {info.family} checkpoint cannot render {spec.mode!r} ({modes})")]
    out: list[tuple[str, str]] = []
    if spec.mode == "storyboard":
        if not info.conditional:
            out.append(("storyboard", f"needs a conditional model; this {info.family} is not"))
        for i, shot in enumerate(spec.storyboard or []):
            if info.conditional and shot.class_ >= info.num_classes:
                out.append(
                    (f"storyboard.{i}.class", f"the model knows classes 0..{info.num_classes - 1}")
                )
    if spec.mode == "latent_walk":
        for i, key in enumerate(spec.keyframes):
            if isinstance(key, bool):
                continue
            if isinstance(key, int) and key >= info.num_classes:
                known = f"0..{info.num_classes - 1}" if info.num_classes else "no classes"
                out.append((f"keyframes.{i}", f"class {key}: the model knows {known}"))
            want = info.latent_dim
            if isinstance(key, LatentKeyframe) and want is not None and len(key.latent) != want:
                got = len(key.latent)
                out.append((f"keyframes.{i}", f"latent has {got} values; the model's has {want}"))
    return out


def submit(
    settings: Settings,
    celery: Celery | None,
    spec: TrainSpec | RenderSpec,
    *,
    idempotency_key: str | None = None,
    submitter: str = "cli",
) -> Submitted:
    """Record the job (or find the one already made with this key) and send what is ready."""
    try:
        with session_scope(settings) as session:
            if idempotency_key is not None:
                existing = _by_key(session, idempotency_key, spec)
                if existing is not None:
                    return existing
            stored, deps = resolve(session, settings, spec)
            job = Job(
                name=str(stored["name"]),
                kind=spec.kind,
                state=JobState.QUEUED,
                spec=stored,
                priority=spec.priority,
                idempotency_key=idempotency_key,
                submitter=submitter,
                tags=list(spec.tags),
                pool=spec.pool,
                webhook_url=spec.webhook.url if spec.webhook else None,
                webhook_events=list(spec.webhook.events) if spec.webhook else [],
            )
            planned = plan(spec)
            job.tasks_queued = len(planned)
            session.add(job)
            session.flush()
            attempts = spec.max_attempts or settings.max_attempts
            first, ends = min(p.stage for p in planned), stage_ends(planned)
            free = _dependencies_succeeded(session, deps)
            for p in planned:
                session.add(
                    Task(
                        job_id=job.id,
                        kind=p.kind,
                        stage=p.stage,
                        index=p.index,
                        queue=p.queue,
                        frames=p.frames,
                        position=p.position,
                        frame_count=p.frame_count,
                        max_attempts=attempts,
                        priority=spec.priority,
                        ready=free and p.stage == first,
                        stage_end=ends[p.stage],
                    )
                )
            for dep in deps:
                session.add(JobDependency(job_id=job.id, depends_on_id=dep))
            session.add(Event(job_id=job.id, to_state="queued", message="submitted"))
            result = Submitted(job.id, job.name, created=True)
    except IntegrityError:
        if idempotency_key is None:
            raise
        with session_scope(settings) as session:
            again = _by_key(session, idempotency_key, spec)
        if again is None:
            raise
        return again
    if celery is not None:
        try:
            dispatch_ready(settings, celery)
        except BrokerUnusable as e:  # recorded, but nothing will send it until this is fixed
            raise e.for_job(result.job_id) from e.__cause__
        except Exception as e:  # the job is recorded; the sweeper sends it later
            log.warning("job %s recorded but not sent yet: %s", result.job_id, e)
    return result


def _dependencies_succeeded(session: Session, deps: list[int]) -> bool:
    """Whether the new job may start now. FOR SHARE waits out (and then blocks) a dependency's
    state change, so a dependency that succeeds meanwhile either is seen here or sees the new
    job when it releases its dependents (farm.lifecycle)."""
    if not deps:
        return True
    states = session.execute(
        select(Job.state).where(Job.id.in_(deps)).with_for_update(read=True)
    ).scalars()
    return all(state is JobState.SUCCEEDED for state in states)


def fingerprint(spec: TrainSpec | RenderSpec) -> str:
    """What a submission asked for, so an idempotent replay can be told from a conflict."""
    canon = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def _by_key(session: Session, key: str, spec: TrainSpec | RenderSpec) -> Submitted | None:
    job = session.execute(select(Job).where(Job.idempotency_key == key)).scalar_one_or_none()
    if job is None:
        return None
    if job.spec.get("fingerprint") != fingerprint(spec):
        raise FarmError(f"idempotency key {key!r} was used for job {job.id} with a different spec")
    return Submitted(job.id, job.name, created=False)
