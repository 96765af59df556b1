"""``mode: motion``: a character acting out ``actions`` (``[{action: walk, frames: 48}, ...]``),
each action blending in from the one before over ``transition`` frames, drawn as capsules
(:mod:`workers.draw`) at the output size.

Every chunk replays the rollout from frame 0 (:func:`workers.models.motion.frames_for`),
which is deterministic, so any chunking gives the frames one process would; a fixed camera
frames the whole shot, so it rolls out the whole shot. Either costs milliseconds per hundred
frames for the default model, beside the drawing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from farm.colors import parse_color
from workers.context import PermanentError
from workers.draw import (
    Colour,
    SkeletonStyle,
    backdrop,
    premultiplied,
    render_skeletons,
    sprite_corners,
    sprite_frame,
    to_pixels,
)
from workers.models.motion import MotionRNN, frames_for, rollout
from workers.modes.base import RenderJob

# The figure (about 1.7 units tall, up to 2.3 with raised arms and a jump) fills this much
# of the frame's height; its hips sit this high above the frame's middle.
VIEW_HEIGHT = 2.6
CENTRE_Y = 0.85
# Pixels a batch of frames may hold: render_skeletons works on whole batches in float32.
BATCH_PIXELS = 4_000_000


def _rgb(value: Any, default: Colour) -> Colour:
    if value is None:
        return default
    r, g, b, _ = parse_color(value)
    return (r, g, b)


def style_for(colors: dict[str, Any] | None) -> SkeletonStyle:
    """``fill`` colours the limbs, the far ones mixed a third of the way to the background so
    the figure reads in depth; ``background`` is the ground. Alpha is ignored: frames are RGB."""
    base = SkeletonStyle()
    colors = colors or {}
    background = _rgb(colors.get("background"), base.background)
    if colors.get("fill") is None:
        return SkeletonStyle(background=background)
    fill = _rgb(colors["fill"], base.near)
    far = tuple(round(f + (b - f) / 3) for f, b in zip(fill, background, strict=True))
    return SkeletonStyle(far=far, torso=fill, near=fill, head=fill,  # type: ignore[arg-type]
                         background=background)  # fmt: skip


def schedule_of(spec: dict[str, Any]) -> list[tuple[str, int]]:
    return [(str(s["action"]), int(s["frames"])) for s in spec.get("actions") or []]


def render(job: RenderJob, positions: Sequence[int]) -> Iterator[np.ndarray]:
    job.require("motion")
    model = job.model
    assert isinstance(model, MotionRNN)
    spec = job.spec
    schedule = schedule_of(spec)
    if not schedule:
        raise PermanentError("actions: mode 'motion' needs a list of {action, frames}")
    seed, blend = int(spec.get("seed", 0)), int(spec.get("transition") or 0)
    try:
        pos = frames_for(model, schedule, seed, list(positions), n_frames=job.total, blend=blend)
        if spec.get("camera") == "fixed":
            roots = rollout(model, schedule, seed, job.total, blend=blend).root
            centre = np.array([(roots[:, 0].min() + roots[:, 0].max()) / 2, CENTRE_Y])
        else:
            centre = np.stack([pos[:, 0, 0], np.full(len(pos), CENTRE_Y)], axis=1)  # (F, 2)
    except ValueError as e:
        raise PermanentError(f"actions: {e}") from e
    w, h = int(spec["width"]), int(spec["height"])
    scene = Scene(
        style=style_for(spec.get("colors")),
        scale=h / VIEW_HEIGHT,
        picture=(
            job.picture(spec["background_image"], "background_image", height=h)[..., :3]
            if spec.get("background_image")
            else None
        ),
        sprites={
            bone: premultiplied(job.picture(ref, f"bone_sprites.{bone}"))
            for bone, ref in (spec.get("bone_sprites") or {}).items()
        },
    )
    centres = np.broadcast_to(centre, (len(pos), 2))
    step = max(1, min(int(spec.get("batch_size", 32)), BATCH_PIXELS // (w * h)))
    for i in range(0, len(pos), step):
        batch = zip(pos[i : i + step], centres[i : i + step], strict=True)
        yield np.stack([draw_frame(p, c, w, h, scene) for p, c in batch])


@dataclass(frozen=True)
class Scene:
    """How every frame of a shot is drawn: colours and sizes, pixels per world unit, the
    background picture (scaled to the frame's height; it repeats sideways and the camera
    moves over it) and the bones' sprites (premultiplied)."""

    style: SkeletonStyle
    scale: float
    picture: np.ndarray | None = None
    sprites: dict[str, np.ndarray] = field(default_factory=dict)


def draw_frame(pose: np.ndarray, centre: np.ndarray, w: int, h: int, scene: Scene) -> np.ndarray:
    """One frame ``(H, W, 3)``: the figure drawn only in its own box (a capsule's coverage is
    exactly 0 beyond half a pixel outside it, a sprite's beyond its corners), the rest the
    background. The box follows from this frame's pose alone, so chunking cannot change it;
    drawing a box instead of the frame is what makes 1280x720 affordable (the figure covers
    a fraction of it). The background picture is anchored to the world: world x shows its
    column ``x * scale`` (repeating), so a followed walk crosses the scenery."""
    style, scale = scene.style, scene.scale
    if scene.picture is not None:
        frame = np.clip(np.rint(backdrop(scene.picture, w, centre[0] * scale - w / 2)), 0, 255)
        frame = frame.astype(np.uint8)
    else:
        frame = np.empty((h, w, 3), np.uint8)
        frame[...] = style.background
    pix = to_pixels(pose, centre, scale, w, h)  # (J, 2)
    reach = max(style.limb_radius, style.head_radius) * scale + 2
    lo, hi = pix.min(0) - reach, pix.max(0) + reach
    for bone, sprite in scene.sprites.items():
        corners = sprite_corners(
            *sprite_frame(bone, pix, style.limb_radius * scale, style, scale),
            sprite.shape[1] / sprite.shape[0],
        )
        lo, hi = np.minimum(lo, corners.min(0) - 2), np.maximum(hi, corners.max(0) + 2)
    x0, y0 = np.floor(lo).astype(int)
    x1, y1 = np.ceil(hi).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return frame
    # The box's own centre in world units, so its pixels are the frame's pixels x0.., y0..
    box_centre = centre + np.array([(x0 + x1 - w) / 2, (h - y0 - y1) / 2]) / scale
    frame[y0:y1, x0:x1] = render_skeletons(
        pose[None], x1 - x0, y1 - y0, centre=box_centre, scale=scale, style=style,
        background=frame[y0:y1, x0:x1], sprites=scene.sprites,
    )[0]  # fmt: skip
    return frame
