"""What ``mode: motion`` and ``mode: write`` take (issue 13): action shots, and the checks
of their fields against the mode and the frame range."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from farm.families import MOTION_ACTIONS

if TYPE_CHECKING:
    from farm.specs.render import RenderSpec


class MotionShot(BaseModel):
    """One shot of a ``mode: motion`` storyboard: an action for ``frames`` frames; each shot
    after the first blends in from the one before over the spec's ``transition`` frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str = Field(min_length=1, max_length=64, description="idle walk run jump wave sit")
    frames: int = Field(ge=1, le=1_000_000)


def motion_problems(spec: RenderSpec) -> list[tuple[str, str]]:
    """What ``mode: motion`` and ``mode: write`` need of the spec and its frame range, and
    their fields on other modes; the model's own actions and characters are checked against
    the checkpoint at submission (:func:`farm.resolve.model_problems`)."""
    out: list[tuple[str, str]] = []
    mode = spec.mode
    for f, owner in (("actions", "motion"), ("camera", "motion"), ("bone_sprites", "motion"),
                     ("strokes_per_second", "write"), ("line_px", "write")):  # fmt: skip
        if getattr(spec, f) is not None and mode != owner:
            out.append((f, f"only mode {owner!r} uses it, not {mode!r}"))
    if spec.background_image is not None and mode not in ("motion", "write"):
        out.append(("background_image", f"only modes 'motion' and 'write' use it, not {mode!r}"))
    total = len(spec.frame_list()) if spec.frames is not None else None
    if mode == "motion":
        if not spec.actions:
            return [*out, ("actions", "mode 'motion' needs a list of {action, frames}")]
        for i, shot in enumerate(spec.actions):
            if shot.action not in MOTION_ACTIONS:
                known = ", ".join(MOTION_ACTIONS)
                out.append((f"actions.{i}.action", f"unknown action {shot.action!r} ({known})"))
        blend = spec.transition or 0
        for i, shot in enumerate(spec.actions[1:], start=1):
            if blend > shot.frames:
                out.append(
                    (
                        "transition",
                        f"{blend} frames is longer than shot {i} ({shot.action}, "
                        f"{shot.frames} frames) it blends into",
                    )
                )
        want = sum(s.frames for s in spec.actions)
        if total is not None and want != total:
            out.append(("frames", f"the actions are {want} frames long but the range has {total}"))
    if mode == "write":
        if spec.text is None or not spec.text.strip():
            out.append(("text", "mode 'write' needs the text to write"))
        if spec.hold is not None and spec.strokes_per_second is not None:
            out.append(("hold", "give strokes_per_second or hold, not both"))
        if spec.hold is not None and total is not None and spec.hold >= total:
            out.append(("hold", f"holds {spec.hold} of the range's {total} frames: none to write"))
    return out
