"""Resolving a spec against the database and the file system before it is recorded: the
jobs it names (``job:NAME`` checkpoints, ``after``), the paths it reads and writes, and what
its checkpoint's model rules out. Nothing here writes; :mod:`farm.submit` records what passes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.bvh import BvhError, bvh_actions
from farm.colors import ColorError, colour_problems, parse_color
from farm.config import Settings
from farm.datafiles import data_problems, picture_problems
from farm.errors import JobNotFound, SpecError
from farm.families import (
    BUILTIN,
    SEQUENCE_FAMILIES,
    ModelInfo,
    info_from_metadata,
    info_from_train_spec,
    read_sidecar,
)
from farm.inputs import OutsideInputRoots, confine_input, dataset_input, input_file, input_roots
from farm.models import Job
from farm.outputs import OutsideOutputRoot, confine, default_output
from farm.specs import MAX_ID, ClassKeyframe, LatentKeyframe, OutputSpec, RenderSpec, TrainSpec
from farm.timeouts import RULES as TIMEOUT_RULES
from farm.timeouts import problems as timeout_problems


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


class Resolving:
    """What :func:`resolve` reads, kept for a run of submissions in one transaction: the
    roots; each name's newest job, queried once (a job recorded earlier in the run, with its
    id but not inserted yet, is its name's newest); each checkpoint file's verdict."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.root = settings.output_root_abs()
        self.readable = input_roots(settings)  # the output root and the input roots
        self.by_name: dict[str, Job | None] = {}
        self.files: dict[str, tuple[list[tuple[str, str]], ModelInfo | None]] = {}
        self.auto_projects = settings.auto_create_projects
        self.projects: dict[str, bool] = {}
        self.limits: set[str] = set()

    def project_problems(self, name: str) -> list[tuple[str, str]]:
        """An unknown project is refused unless the farm creates projects on first use."""
        if self.auto_projects:
            return []
        if name not in self.projects:
            from farm.projects import known

            self.projects[name] = name in known(self.session, [name])
        if self.projects[name]:
            return []
        return [
            (
                "project",
                f"unknown project {name!r} (FARM_AUTO_CREATE_PROJECTS is off:"
                f" create it with farm project set {name})",
            )
        ]

    def limit_problems(self, names: list[str]) -> list[tuple[str, str]]:
        """Limits are never created on first use: a typo would hold nothing back."""
        unknown = [n for n in names if n not in self.limits]
        if unknown:
            from farm.limits import known

            found = known(self.session, unknown)
            self.limits.update(found)
        return [
            (f"limits.{i}", f"unknown limit {n!r} (create it with farm limit set {n} COUNT)")
            for i, n in enumerate(names)
            if n not in self.limits
        ]

    def job(self, ref: str | int) -> Job:
        text = str(ref)
        if text.isdigit():
            return find_job(self.session, text)
        if text not in self.by_name:
            try:
                self.by_name[text] = find_job(self.session, text)
            except JobNotFound:
                self.by_name[text] = None
        job = self.by_name[text]
        if job is None:
            raise JobNotFound(text)
        return job

    def recorded(self, job: Job) -> None:
        self.by_name[job.name] = job

    def checkpoint_file(self, ref: str) -> tuple[list[tuple[str, str]], ModelInfo | None]:
        """A checkpoint named by path: its problems, or what its sidecar says of the model."""
        if ref not in self.files:
            self.files[ref] = _checkpoint_file(self.readable, ref)
        return self.files[ref]


def resolve(
    session: Session,
    settings: Settings,
    spec: TrainSpec | RenderSpec,
    ctx: Resolving | None = None,
) -> tuple[dict[str, object], list[int]]:
    """The spec as stored (name and output filled in) and the jobs it depends on; ``ctx``
    carries what earlier submissions of the same run looked up."""
    ctx = ctx or Resolving(session, settings)
    problems: list[tuple[str, str]] = ctx.project_problems(spec.project)
    problems += ctx.limit_problems(spec.limits)
    problems += timeout_problems({r: getattr(spec, r) for r in TIMEOUT_RULES}, settings.heartbeat_s)
    name = spec.name or f"{spec.kind}-{uuid.uuid4().hex[:8]}"
    readable = ctx.readable
    stored_output: object
    if isinstance(spec, RenderSpec):
        fmt, output, options = spec.output_plan(name)
        problems += spec.format_problems(name)
        field = "output.path" if isinstance(spec.output, OutputSpec) else "output"
        keep = isinstance(spec.output, OutputSpec) and spec.output.keep_segments
        stored_output = {"format": fmt, "path": output, "options": options, "keep_segments": keep}
        pictures = {"background_image": spec.background_image} | {
            f"bone_sprites.{bone}": ref for bone, ref in (spec.bone_sprites or {}).items()
        }
        problems += picture_problems(readable, pictures)
        audio = options.get("audio")
        if audio:
            _, why = input_file(readable, str(audio))
            if why is not None:
                problems.append(("output.audio", why))
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
            elif data is not None and spec.dataset.startswith("bvh:"):
                try:
                    bvh_actions(data)
                except BvhError as e:
                    problems.append(("dataset", str(e)))
            elif isinstance(spec, TrainSpec):
                problems += data_problems(
                    spec.dataset,
                    data,
                    target=spec.target,
                    charset=spec.charset,
                    fonts=spec.fonts,
                    heldout_fonts=spec.heldout_fonts,
                )
    try:
        confine(ctx.root, output)
    except OutsideOutputRoot as e:
        problems.append((field, str(e)))
    deps: list[int] = []
    if isinstance(spec, RenderSpec):
        ref = spec.checkpoint
        info: ModelInfo | None = None
        if ref.startswith("job:"):
            try:
                dep = ctx.job(ref[4:])
            except JobNotFound:
                problems.append(("checkpoint", f"unknown checkpoint: no job {ref[4:]!r}"))
            else:
                if dep.kind != "train":
                    problems.append(
                        ("checkpoint", f"job {dep.id} ({dep.name}) is a {dep.kind} job, not train")
                    )
                else:
                    info = _with_trained_actions(info_from_train_spec(dep.spec), dep.spec, readable)
                deps.append(dep.id)
        else:
            found, info = ctx.checkpoint_file(ref)
            problems += found
        if info is not None:
            problems += model_problems(spec, info)
    for i, after_ref in enumerate(spec.after):
        try:
            after = ctx.job(after_ref)
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


def _with_trained_actions(
    info: ModelInfo, train: dict[str, Any], readable: tuple[Path, ...]
) -> ModelInfo:
    """A BVH-trained motion model knows only the actions its files name: read them from the
    files now (the train job may not have run yet); unchanged when they cannot be read (the
    train job refuses that itself)."""
    dataset = str(train.get("dataset", ""))
    if not dataset.startswith("bvh:"):
        return info
    try:
        path = dataset_input(readable, dataset)
        actions = bvh_actions(path) if path is not None else ()
    except (OutsideInputRoots, BvhError):
        return info
    return dataclasses.replace(info, trained=actions)


def _checkpoint_file(
    readable: tuple[Path, ...], ref: str
) -> tuple[list[tuple[str, str]], ModelInfo | None]:
    try:
        path = confine_input(readable, ref)
    except OutsideInputRoots as e:
        return [("checkpoint", str(e))], None
    if not path.is_file():
        return [("checkpoint", f"unknown checkpoint: {path} does not exist")], None
    meta = _sidecar(readable, path)
    return [], info_from_metadata(meta) if meta is not None else None


def _sidecar(readable: tuple[Path, ...], checkpoint: Path) -> dict[str, Any] | None:
    """The checkpoint's JSON sidecar, unless it is a link out of the readable roots."""
    try:
        confine_input(readable, str(checkpoint.with_suffix(".json")))
    except OutsideInputRoots:
        return None
    return read_sidecar(checkpoint)


def style_problem(style: str, info: ModelInfo) -> str | None:
    """Why ``style`` (a font the model was trained on) cannot be rendered, or None."""
    if info.family != "vae":
        return f"styles need a VAE with style_means; a {info.family} has none"
    if info.styles and style not in info.styles:
        return f"{style!r}: the model's styles are {', '.join(info.styles)}"
    return None


def model_problems(spec: RenderSpec, info: ModelInfo) -> list[tuple[str, str]]:
    """What the checkpoint's family, classes, styles, latent size and colours rule out for
    this render."""
    family = BUILTIN.get(info.family)
    if family is None:
        return []  # a plugin family: its worker-side mode decides
    if spec.mode not in family.modes:
        modes = ", ".join(sorted(family.modes))
        return [("checkpoint", f"a {info.family} checkpoint cannot render {spec.mode!r} ({modes})")]
    if info.family in SEQUENCE_FAMILIES:
        return sequence_problems(spec, info)
    out: list[tuple[str, str]] = []
    if spec.mode == "storyboard":
        if not info.conditional:
            out.append(("storyboard", f"needs a conditional model; this {info.family} is not"))
        else:
            for i, shot in enumerate(spec.storyboard or []):
                reason = class_problem(shot.class_, info)
                if reason:
                    out.append((f"storyboard.{i}.class", reason))
    if spec.mode == "title":
        if not info.conditional:
            out.append(
                (
                    "mode",
                    f"a title needs a conditional model (cVAE or cGAN); this {info.family} is not",
                )
            )
        elif spec.text is not None:
            missing = [c for c in dict.fromkeys(spec.text) if c != " " and c not in info.classes]
            if missing:
                chars = ", ".join(repr(c) for c in missing)
                out.append(("text", f"{chars} not in the model's charset ({_charset(info)})"))
        if spec.style is not None:
            reason = style_problem(spec.style, info)
            if reason:
                out.append(("style", reason))
    if spec.mode == "latent_walk":
        out += _keyframe_problems(spec, info)
    return out + colour_problems(spec, info)


# --- motion and strokes renders (issue 13) ---
# What the motion and write modes draw with: the figure or the ink, and the ground.
VECTOR_COLOURS = frozenset({"fill", "background"})


def sequence_problems(spec: RenderSpec, info: ModelInfo) -> list[tuple[str, str]]:
    """A motion render's actions and a write render's characters against the checkpoint's
    classes (its actions, its charset), and the colours a vector drawing takes: ``fill``
    (limbs or ink) and ``background``."""
    out: list[tuple[str, str]] = []
    if spec.mode == "motion":
        for i, shot in enumerate(spec.actions or []):
            if info.classes and shot.action not in info.classes:
                known = ", ".join(info.classes)
                out.append((f"actions.{i}.action", f"{shot.action!r}: the model's are {known}"))
            elif info.trained and shot.action not in info.trained:
                known = ", ".join(info.trained)
                why = f"{shot.action!r}: the model was trained on {known} only"
                out.append((f"actions.{i}.action", why))
    if spec.mode == "write" and spec.text is not None:
        missing = [c for c in dict.fromkeys(spec.text) if c != " " and c not in info.classes]
        if missing:
            chars = ", ".join(repr(c) for c in missing)
            out.append(("text", f"{chars} not in the stroke model's charset ({_charset(info)})"))
    # the styles: the checkpoint's fonts, or (before it exists) the spec's less the held out
    fonts = info.styles
    if spec.mode == "write" and spec.style is not None and fonts and spec.style not in fonts:
        why = f"{spec.style!r}: the model was trained on the fonts {', '.join(fonts)}"
        out.append(("style", why))
    if spec.colors is not None:
        for option, value in spec.colors.model_dump(exclude_none=True).items():
            if option not in VECTOR_COLOURS:
                why = f"mode {spec.mode!r} draws with 'fill' and 'background' only"
                out.append((f"colors.{option}", why))
            else:
                try:
                    parse_color(value)
                except ColorError as e:
                    out.append((f"colors.{option}", str(e)))
    return out


def _charset(info: ModelInfo) -> str:
    if not info.classes:
        return f"classes 0..{info.num_classes - 1}" if info.num_classes else "no classes"
    text = "".join(info.classes) if all(len(c) == 1 for c in info.classes) else None
    shown = text if text is not None else ", ".join(info.classes)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def class_problem(ref: int | str, info: ModelInfo) -> str | None:
    """Why the model cannot show class ``ref`` (a label index or a class name), or None."""
    if isinstance(ref, str):
        if ref not in info.classes:
            return f"{ref!r} is not in the model's charset ({_charset(info)})"
        return None
    if ref >= info.num_classes:
        known = f"0..{info.num_classes - 1}" if info.num_classes else "no classes"
        return f"class {ref}: the model knows {known}"
    return None


def _keyframe_problems(spec: RenderSpec, info: ModelInfo) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i, key in enumerate(spec.keyframes):
        if isinstance(key, bool):
            continue
        if isinstance(key, int):
            reason = class_problem(key, info)
            if reason:
                out.append((f"keyframes.{i}", reason))
        if isinstance(key, ClassKeyframe):
            reason = class_problem(key.class_, info)
            if reason:
                out.append((f"keyframes.{i}.class", reason))
            if key.style is not None:
                reason = style_problem(key.style, info)
                if reason:
                    out.append((f"keyframes.{i}.style", reason))
        want = info.latent_dim
        if isinstance(key, LatentKeyframe) and want is not None and len(key.latent) != want:
            got = len(key.latent)
            out.append((f"keyframes.{i}", f"latent has {got} values; the model's has {want}"))
    return out


def fingerprint(spec: TrainSpec | RenderSpec) -> str:
    """What a submission asked for, so an idempotent replay can be told from a conflict."""
    canon = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()
