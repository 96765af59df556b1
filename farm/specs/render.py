"""``kind: render``: a checkpoint, a mode and its fields, the frame range and the output."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
)

from farm.families import BONES
from farm.formats import RULES, UnknownFormat, format_for_path, get_rules
from farm.frames import FrameRangeError, parse_frames
from farm.specs.common import _SEED_KEY, MAX_CHUNKS, OutputSpec, _Spec
from farm.specs.motion import MotionShot, motion_problems
from farm.specs.shapes import ClassKeyframe, Colors, Keyframe, LatentKeyframe, Shot
from farm.specs.title import title_shots


class RenderSpec(_Spec):
    """Render frames from a checkpoint and encode them into one video (or, for
    ``sample_grid``, one PNG contact sheet)."""

    kind: Literal["render"]
    checkpoint: str = Field(
        description="'job:<train job id or name>' (waits for it) or a .safetensors path"
    )
    mode: Literal[
        "latent_walk", "storyboard", "title", "rollout", "sample_grid", "motion", "write"
    ] = "latent_walk"
    frames: str | None = Field(
        default=None, description="frame range: 1-240, 1-240x2, 1,5,10-20 (not for sample_grid)"
    )
    chunk_size: int = Field(default=50, ge=1, le=100_000)
    fps: float = Field(default=24.0, gt=0, le=240)

    @field_validator("chunk_size")
    @classmethod
    def _bounded_plan(cls, v: int, info: ValidationInfo) -> int:
        # A job is one transaction of tasks: a million one-frame chunks would be a DoS.
        frames = info.data.get("frames")
        if isinstance(frames, str):
            try:
                chunks = -(-len(parse_frames(frames)) // v)
            except FrameRangeError:
                return v
            if chunks > MAX_CHUNKS:
                raise ValueError(f"makes {chunks} chunks; a job may have at most {MAX_CHUNKS}")
        return v

    width: int = Field(default=256, ge=16, le=4096)
    height: int = Field(default=256, ge=16, le=4096)
    keyframes: list[Keyframe] = Field(
        default_factory=lambda: list[Keyframe](range(10)), min_length=1, max_length=10_000
    )
    storyboard: list[Shot] | None = Field(default=None, min_length=1, max_length=10_000)
    text: str | None = Field(
        default=None, min_length=1, max_length=1000,
        description="title: the word(s) to morph; write: the text the pen writes",
    )  # fmt: skip
    hold: int | None = Field(
        default=None, ge=1, le=1_000_000,
        description="title: per letter; write: frames the finished text holds at the end",
    )  # fmt: skip
    transition: int | None = Field(
        default=None, ge=0, le=1_000_000,
        description="title: frames between letters; motion: frames each action blends in over",
    )  # fmt: skip
    actions: list[MotionShot] | None = Field(
        default=None, min_length=1, max_length=10_000, description="motion: [{action, frames}]"
    )
    camera: Literal["follow", "fixed"] | None = Field(
        default=None, description="motion: follow the character (default) or stay fixed"
    )
    background_image: str | None = Field(
        default=None, min_length=1, max_length=4096,
        description="motion, write: a picture behind the figure or the text (a path it may "
        "read), scaled to the frame's height; motion's camera moves over it",
    )  # fmt: skip
    bone_sprites: dict[str, Annotated[str, Field(min_length=1, max_length=4096)]] | None = Field(
        default=None, max_length=len(BONES),
        description="motion: {bone: picture} drawn in place of the bone's capsule",
    )  # fmt: skip

    @field_validator("bone_sprites")
    @classmethod
    def _bones(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        unknown = sorted(set(v or ()) - set(BONES))
        if unknown:
            raise ValueError(f"no bone(s) {', '.join(unknown)} (bones: {', '.join(BONES)})")
        return v

    strokes_per_second: float | None = Field(
        default=None, gt=0, le=100_000, description="write: pen steps per second"
    )
    line_px: float | None = Field(
        default=None, gt=0, le=512, description="write: line width in output pixels"
    )
    style: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="title: one font for the word; write: the font the pen writes in",
    )
    colors: Colors | None = Field(default=None, description="fill, outline, background...")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="noise / rollout clip seed")
    seed_frames: int = Field(default=4, ge=1, le=10_000, description="rollout: true frames")
    columns: int = Field(default=10, ge=1, le=100, description="sample_grid: tiles per row")
    output: str | OutputSpec | None = Field(
        default=None, description="path under the output root, or an output section"
    )
    batch_size: int = Field(default=32, ge=1, le=4096)

    @field_validator("frames", mode="before")
    @classmethod
    def _frame_number(cls, v: Any) -> Any:
        # YAML reads `frames: 1001` as an int; a single frame is valid range syntax.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("frames")
    @classmethod
    def _frames(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parse_frames(v)
        except FrameRangeError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("keyframes")
    @classmethod
    def _keys(cls, v: list[Keyframe]) -> list[Keyframe]:
        for i, k in enumerate(v):
            if isinstance(k, LatentKeyframe | ClassKeyframe):
                continue
            if isinstance(k, int):
                if k < 0:
                    raise ValueError(f"keyframe {i} ({k}) is not a class index >= 0")
            elif _SEED_KEY.match(k) is None:
                raise ValueError(f"keyframe {i} ({k!r}) is neither a class index nor 'seed:N'")
        return v

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint(cls, v: str) -> str:
        if v.startswith("job:"):
            if not v[4:]:
                raise ValueError("'job:' needs a job id or name")
        elif not v.endswith(".safetensors"):
            raise ValueError("use 'job:<id or name>' or a path ending in .safetensors")
        return v

    def frame_list(self) -> list[int]:
        return parse_frames(self.frames) if self.frames is not None else []

    def storyboard_length(self) -> int:
        """Every hold plus every transition but the last shot's."""
        shots = self.storyboard or []
        return sum(s.hold for s in shots) + sum(s.transition for s in shots[:-1])

    def mode_problems(self) -> list[tuple[str, str]]:
        """How the frame range, the mode and its fields must relate."""
        out: list[tuple[str, str]] = []
        if self.mode != "sample_grid" and self.frames is None:
            out.append(("frames", "Field required"))
        if self.mode == "storyboard" and self.storyboard is None:
            out.append(("storyboard", "mode 'storyboard' needs a list of shots"))
        if self.storyboard is not None and self.mode != "storyboard":
            out.append(("storyboard", f"only mode 'storyboard' uses it, not {self.mode!r}"))
        if self.mode == "storyboard" and self.storyboard is not None:
            want, got = self.storyboard_length(), len(self.frame_list())
            if want != got:
                out.append(
                    ("frames", f"the storyboard is {want} frames long but the range has {got}")
                )
        out += self._title_problems()
        out += motion_problems(self)
        if self.mode == "rollout" and len(self.frame_list()) <= self.seed_frames:
            out.append(("frames", f"a rollout needs more than seed_frames ({self.seed_frames})"))
        if self.mode == "sample_grid":
            if self.frames is not None:
                out.append(("frames", "a sample grid is one image: leave frames out"))
            section = self.output if isinstance(self.output, OutputSpec) else None
            path = self.output if isinstance(self.output, str) else (section and section.path)
            if path and not path.lower().endswith(".png"):
                out.append(("output", "a sample grid is written as a .png"))
        return out

    def _title_problems(self) -> list[tuple[str, str]]:
        if self.mode != "title":
            shares = {"write": ("text", "hold", "style"), "motion": ("transition",)}
            shared = shares.get(self.mode, ())
            return [
                (f, f"only mode 'title' uses it, not {self.mode!r}")
                for f in ("text", "hold", "transition", "style")
                if getattr(self, f) is not None and f not in shared
            ]
        if self.text is None:
            return [("text", "mode 'title' needs the text to morph through")]
        if self.frames is None:
            return []
        try:
            title_shots(self.text, len(self.frame_list()), self.hold, self.transition)
        except ValueError as e:
            return [("text" if "space" in str(e) else "frames", str(e))]
        return []

    def output_plan(self, name: str) -> tuple[str, str, dict[str, Any]]:
        """(format, path under the output root, codec options) with defaults filled in."""
        if self.mode == "sample_grid":
            section = self.output if isinstance(self.output, OutputSpec) else None
            path = self.output if isinstance(self.output, str) else (section and section.path)
            return "png", path or f"renders/{name}.png", {}
        section = self.output if isinstance(self.output, OutputSpec) else None
        path = self.output if isinstance(self.output, str) else (section and section.path)
        fmt = (section.format if section else None) or (format_for_path(path) if path else "h264")
        if not path:
            rules = RULES.get(fmt.lower())
            ext = rules.extension if rules else ".mp4"
            is_seq = bool(rules and rules.is_sequence)
            path = f"renders/{name}/{name}.####{ext}" if is_seq else f"renders/{name}{ext}"
        options = dict(section.model_extra or {}) if section else {}
        if section and section.audio:
            options["audio"] = section.audio
        if section and section.verify is not None:
            options["verify"] = section.verify
        return fmt.lower(), path, options

    def format_problems(self, name: str) -> list[tuple[str, str]]:
        if self.mode == "sample_grid":
            return []
        fmt, path, options = self.output_plan(name)
        try:
            rules = get_rules(fmt)
        except UnknownFormat as e:
            return [("output.format", str(e))]
        problems = rules.validate(self.width, self.height, self.fps, {**options, "path": path})
        if isinstance(self.output, str):  # a bare path: name the field as the author wrote it
            problems = [("output" if f == "output.path" else f, r) for f, r in problems]
        return problems
