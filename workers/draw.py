"""Vector drawing for the motion and writing renders: skeletons and pen strokes, anti-aliased
at any resolution, into uint8 RGB arrays.

Every shape is a capsule (a segment with a radius: a limb, a stroke piece; a disc is a capsule
of zero length). Its signed distance is exact and cheap, and a smoothstep over one pixel of
that distance gives a crisp edge whose grey ramp is one pixel wide at every resolution, which
is what a supersampled polygon rasteriser would give, without the supersampling. Numpy,
vectorised over pixels (and over frames for the skeleton), so the same code draws a 16 px
thumbnail batch for a data set and a 1280x720 frame for a render.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from farm.families import BONES

Colour = tuple[int, int, int]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1: pixels, the ends excluded

# The skeleton's bones by layer, back to front: the far (left) limbs, the torso, the near
# (right) limbs, then the head (farm.families.BONES names them).
LAYERS = (
    ("l_upper_arm", "l_forearm", "l_thigh", "l_shin"),
    ("pelvis", "chest", "neck"),
    ("r_upper_arm", "r_forearm", "r_thigh", "r_shin"),
)
FAR_LIMBS, TORSO, NEAR_LIMBS = (tuple(BONES[b] for b in layer) for layer in LAYERS)
HEAD = 3
# Bones that point up at rest: a sprite's top edge goes at their child's end, not their own.
_UPWARD = frozenset({"pelvis", "chest", "neck", "head"})
# A head sprite's height, in head radii: a little more than the disc it replaces.
HEAD_SPRITE = 2.5


@dataclass(frozen=True)
class SkeletonStyle:
    """Colours and sizes; radii are in world units (the skeleton stands about 1.7 tall)."""

    far: Colour = (120, 120, 150)
    torso: Colour = (60, 60, 90)
    near: Colour = (40, 40, 70)
    head: Colour = (60, 60, 90)
    background: Colour = (245, 242, 235)
    limb_radius: float = 0.045
    head_radius: float = 0.12


def capsule_alpha(
    px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray, radius: np.ndarray | float
) -> np.ndarray:
    """Coverage in [0, 1] of the capsule ``a``-``b`` of ``radius`` at pixel centres ``px``,
    ``py`` (all broadcast together; ``a``, ``b`` end in a 2-axis, x then y).

    One-pixel smoothstep of the signed distance: 1 deeper than half a pixel inside, 0 beyond
    half a pixel outside.
    """
    ax, ay = a[..., 0], a[..., 1]
    dx, dy = b[..., 0] - ax, b[..., 1] - ay
    length2 = np.maximum(dx * dx + dy * dy, 1e-12)
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)
    dist = np.hypot(px - ax - t * dx, py - ay - t * dy) - radius
    s = np.clip(0.5 - dist, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _over(img: np.ndarray, alpha: np.ndarray, colour: Colour) -> None:
    """Composite ``colour`` at coverage ``alpha`` (..., H, W) over float ``img`` (..., H, W, 3)."""
    c = np.asarray(colour, dtype=np.float32)
    img += alpha[..., None] * (c - img)


def to_pixels(
    points: np.ndarray, centre: np.ndarray, scale: float, width: int, height: int
) -> np.ndarray:
    """World points ``(..., 2)`` (y up) to pixel coordinates (y down), with ``centre``
    ``(..., 2)`` (broadcast) at the middle of the frame and ``scale`` pixels per unit."""
    out = np.empty_like(points, dtype=np.float32)
    out[..., 0] = width / 2 + (points[..., 0] - centre[..., 0]) * scale
    out[..., 1] = height / 2 - (points[..., 1] - centre[..., 1]) * scale
    return out


def render_skeletons(
    positions: np.ndarray,
    width: int,
    height: int,
    *,
    centre: np.ndarray,
    scale: float,
    style: SkeletonStyle | None = None,
    background: np.ndarray | None = None,
    sprites: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Frames ``(F, H, W, 3)`` uint8 of the poses ``positions`` ``(F, J, 2)`` (world units),
    each frame's ``centre`` ``(F, 2)`` or ``(2,)`` at the middle (the camera), ``scale``
    pixels per unit. ``background`` ``(H, W, 3)`` uint8 replaces the style's flat colour;
    ``sprites`` (bone name to a :func:`premultiplied` picture) replace those bones' capsules
    (or the head's disc), each in its bone's layer."""
    st = style or SkeletonStyle()
    sprites = sprites or {}
    n = positions.shape[0]
    pix = to_pixels(positions, np.broadcast_to(centre, (n, 2))[:, None, :], scale, width, height)
    py, px = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5  # (H, W) each
    if background is not None:
        if background.shape != (height, width, 3):
            raise ValueError(f"background must be ({height}, {width}, 3), got {background.shape}")
        base = background.astype(np.float32)
    else:
        base = np.empty((height, width, 3), np.float32)
        base[...] = st.background
    img = np.broadcast_to(base, (n, height, width, 3)).copy()  # (F, H, W, 3)
    r = st.limb_radius * scale
    for names, colour in zip(LAYERS, (st.far, st.torso, st.near), strict=True):
        alpha = np.zeros((n, height, width), np.float32)
        for name in names:
            if name in sprites:
                continue
            i, j = BONES[name]
            a = pix[:, i, None, None, :]  # (F, 1, 1, 2)
            b = pix[:, j, None, None, :]
            np.maximum(alpha, capsule_alpha(px, py, a, b, r), out=alpha)
        _over(img, alpha, colour)
        for name in names:
            if name in sprites:
                for f in range(n):
                    _sprite_over(img[f], sprites[name], *sprite_frame(name, pix[f], r, st, scale))
    if "head" in sprites:
        for f in range(n):
            _sprite_over(img[f], sprites["head"], *sprite_frame("head", pix[f], r, st, scale))
    else:
        head = pix[:, HEAD, None, None, :]
        _over(img, capsule_alpha(px, py, head, head, st.head_radius * scale), st.head)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def premultiplied(picture: np.ndarray) -> np.ndarray:
    """An RGBA (or RGB) uint8 picture ``(h, w, 3 | 4)`` as float32 premultiplied RGBA, alpha
    in [0, 1]: the form :func:`render_skeletons` samples sprites in, so edges do not pick up
    the colour of transparent pixels."""
    a = picture.astype(np.float32)
    alpha = a[..., 3:] / 255.0 if a.shape[-1] == 4 else np.ones_like(a[..., :1])
    return np.concatenate([a[..., :3] * alpha, alpha], axis=-1)


def sprite_frame(
    name: str, pix: np.ndarray, radius_px: float, style: SkeletonStyle, scale: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Where bone ``name``'s sprite goes in a frame whose joints are at ``pix`` ``(J, 2)``:
    ``(top, down, length)``, the middle of its top edge, the unit vector from there down its
    length (pixels, y down), and that length. A limb's sprite runs from the joint to its
    child, a capsule radius past both ends; the head's is centred on the head."""
    i, j = BONES[name]
    a, b = pix[i].astype(np.float64), pix[j].astype(np.float64)
    if name == "head":
        up = b - a
        up /= max(float(np.hypot(*up)), 1e-9)
        length = HEAD_SPRITE * style.head_radius * scale
        return b + up * length / 2, -up, length
    if name in _UPWARD:
        a, b = b, a
    d = b - a
    span = float(np.hypot(*d))
    down = d / span if span > 1e-9 else np.array([0.0, 1.0])
    return a - down * radius_px, down, span + 2 * radius_px


def sprite_corners(top: np.ndarray, down: np.ndarray, length: float, aspect: float) -> np.ndarray:
    """The four corners ``(4, 2)`` of a sprite placed by :func:`sprite_frame`, ``aspect`` its
    width over its height."""
    across = np.array([-down[1], down[0]]) * (length * aspect / 2)
    bottom = top + down * length
    return np.stack([top - across, top + across, bottom + across, bottom - across])


def _sprite_over(
    img: np.ndarray, sprite: np.ndarray, top: np.ndarray, down: np.ndarray, length: float
) -> None:
    """Composite a premultiplied ``sprite`` ``(h, w, 4)`` over ``img`` ``(H, W, 3)`` float,
    its rows along ``down`` from ``top`` for ``length`` pixels, its width kept in proportion;
    bilinear sampling at each covered pixel's centre (scipy's map_coordinates)."""
    sh, sw = sprite.shape[:2]
    corners = sprite_corners(top, down, length, sw / sh)
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1 = min(int(np.ceil(corners[:, 0].max())) + 1, img.shape[1])
    y1 = min(int(np.ceil(corners[:, 1].max())) + 1, img.shape[0])
    if x0 >= x1 or y0 >= y1 or length <= 0:
        return
    py, px = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5  # (h, w) each
    dx, dy = px - top[0], py - top[1]
    along = dx * down[0] + dy * down[1]
    across = dx * -down[1] + dy * down[0]
    rows = along / length * sh - 0.5
    cols = (across / (length * sw / sh) + 0.5) * sw - 0.5
    coords = np.stack([rows, cols])  # (2, h, w)
    sampled = np.stack(
        [
            ndimage.map_coordinates(sprite[..., c], coords, order=1, mode="constant")
            for c in range(4)
        ],
        axis=-1,
    ).astype(np.float32)  # (h, w, 4)
    window = img[y0:y1, x0:x1]
    window *= 1.0 - sampled[..., 3:]
    window += sampled[..., :3]


def backdrop(picture: np.ndarray, width: int, offset_px: float) -> np.ndarray:
    """A ``width``-wide view ``(H, width, 3)`` float32 of ``picture`` ``(H, Wp, 3)``, repeated
    side by side and slid ``offset_px`` to the left (the camera moving right), with linear
    interpolation between columns so a sub-pixel move is smooth."""
    wp = picture.shape[1]
    x = np.arange(width, dtype=np.float64) + offset_px
    k = np.floor(x)
    frac = (x - k).astype(np.float32)[None, :, None]
    left = np.mod(k, wp).astype(int)
    right = np.mod(k + 1, wp).astype(int)
    src = picture.astype(np.float32)
    return src[:, left] * (1 - frac) + src[:, right] * frac


def render_strokes(
    points: np.ndarray,
    pen_down: np.ndarray,
    width: int,
    height: int,
    *,
    line_width: float,
    colour: Colour = (20, 20, 30),
    background: Colour | np.ndarray = (250, 248, 240),
    segments: int | None = None,
) -> np.ndarray:
    """One frame ``(H, W, 3)`` uint8 of the polyline ``points`` ``(P, 2)`` in pixels, where
    segment ``k`` (from point ``k`` to ``k + 1``) is inked when ``pen_down[k]``; only the first
    ``segments`` segments are drawn (a partial drawing, for writing frame by frame)."""
    alpha = np.zeros((height, width), np.float32)
    count = len(points) - 1 if segments is None else min(segments, len(points) - 1)
    add_strokes(alpha, points, pen_down, line_width, 0, count)
    return ink_over(alpha, colour, background)


def add_strokes(
    alpha: np.ndarray,
    points: np.ndarray,
    pen_down: np.ndarray,
    line_width: float,
    start: int,
    stop: int,
    box: Box | None = None,
) -> Box | None:
    """Ink segments ``start`` to ``stop - 1`` into the coverage ``alpha`` ``(H, W)``, in place;
    returns ``box`` ``(x0, y0, x1, y1)`` grown to hold every window inked (None: none yet).

    Coverage is the maximum over segments, which does not depend on their order: adding a
    frame's new segments to the last frame's coverage gives exactly what drawing all of them
    would. Each segment is evaluated only on its own bounding window, so the cost follows the
    ink, not the frame size.
    """
    height, width = alpha.shape
    r = line_width / 2
    for k in range(max(start, 0), min(stop, len(points) - 1)):
        if not pen_down[k]:
            continue
        a, b = points[k], points[k + 1]
        x0 = max(int(np.floor(min(a[0], b[0]) - r - 1)), 0)
        x1 = min(int(np.ceil(max(a[0], b[0]) + r + 1)), width)
        y0 = max(int(np.floor(min(a[1], b[1]) - r - 1)), 0)
        y1 = min(int(np.ceil(max(a[1], b[1]) + r + 1)), height)
        if x0 >= x1 or y0 >= y1:
            continue
        py, px = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        window = alpha[y0:y1, x0:x1]
        np.maximum(window, capsule_alpha(px, py, a, b, r), out=window)
        if box is None:
            box = (x0, y0, x1, y1)
        else:
            box = (min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1))
    return box


def ink_over(
    alpha: np.ndarray,
    colour: Colour,
    background: Colour | np.ndarray,
    box: Box | None = (0, 0, 1 << 30, 1 << 30),
) -> np.ndarray:
    """A frame ``(H, W, 3)`` uint8: ``colour`` at coverage ``alpha`` over ``background`` (a
    colour or an ``(H, W, 3)`` uint8 picture). Only ``box`` is composited (None: nothing):
    outside it ``alpha`` must be 0, where the frame is the background itself."""
    height, width = alpha.shape
    if isinstance(background, np.ndarray):
        frame = background.astype(np.uint8, copy=True)
    else:
        frame = np.empty((height, width, 3), np.uint8)
        frame[...] = background
    if box is None:
        return frame
    x0, y0, x1, y1 = box
    img = frame[y0:y1, x0:x1].astype(np.float32)
    _over(img, alpha[y0:y1, x0:x1], colour)
    frame[y0:y1, x0:x1] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return frame


def polyline(offsets: Sequence[Sequence[float]] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stroke-3 rows ``(dx, dy, pen)`` to ``(points (P + 1, 2), pen_down (P,))`` starting at the
    origin: segment ``k`` ends at point ``k + 1`` and is inked when the pen was down after
    point ``k`` (the first move, from the origin, is never inked)."""
    rows = np.asarray(offsets, dtype=np.float64).reshape(-1, 3)
    points = np.concatenate([np.zeros((1, 2)), np.cumsum(rows[:, :2], axis=0)])
    lifted = np.concatenate([[1.0], rows[:-1, 2]]) if len(rows) else np.zeros(0)
    return points, lifted < 0.5
