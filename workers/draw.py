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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Colour = tuple[int, int, int]

# The skeleton's bones as (parent, child) joint pairs by layer, back to front: the far
# (left) limbs, the torso, the near (right) limbs. Indices follow workers.datasets.motion.
FAR_LIMBS = ((4, 5), (5, 6), (10, 11), (11, 12))
TORSO = ((0, 1), (1, 2), (2, 3))
NEAR_LIMBS = ((7, 8), (8, 9), (13, 14), (14, 15))
HEAD = 3


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
) -> np.ndarray:
    """Frames ``(F, H, W, 3)`` uint8 of the poses ``positions`` ``(F, J, 2)`` (world units),
    each frame's ``centre`` ``(F, 2)`` or ``(2,)`` at the middle (the camera), ``scale``
    pixels per unit. ``background`` ``(H, W, 3)`` uint8 replaces the style's flat colour."""
    st = style or SkeletonStyle()
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
    for bones, colour in ((FAR_LIMBS, st.far), (TORSO, st.torso), (NEAR_LIMBS, st.near)):
        alpha = np.zeros((n, height, width), np.float32)
        for i, j in bones:
            a = pix[:, i, None, None, :]  # (F, 1, 1, 2)
            b = pix[:, j, None, None, :]
            np.maximum(alpha, capsule_alpha(px, py, a, b, r), out=alpha)
        _over(img, alpha, colour)
    head = pix[:, HEAD, None, None, :]
    _over(img, capsule_alpha(px, py, head, head, st.head_radius * scale), st.head)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


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
    ``segments`` segments are drawn (a partial drawing, for writing frame by frame).

    Each segment is evaluated only on its own bounding window, so the cost follows the ink,
    not the frame size.
    """
    if isinstance(background, np.ndarray):
        img = background.astype(np.float32).copy()
    else:
        img = np.empty((height, width, 3), np.float32)
        img[...] = background
    alpha = np.zeros((height, width), np.float32)
    r = line_width / 2
    count = len(points) - 1 if segments is None else min(segments, len(points) - 1)
    for k in range(max(count, 0)):
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
    _over(img, alpha, colour)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def polyline(offsets: Sequence[Sequence[float]] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stroke-3 rows ``(dx, dy, pen)`` to ``(points (P + 1, 2), pen_down (P,))`` starting at the
    origin: segment ``k`` ends at point ``k + 1`` and is inked when the pen was down after
    point ``k`` (the first move, from the origin, is never inked)."""
    rows = np.asarray(offsets, dtype=np.float64).reshape(-1, 3)
    points = np.concatenate([np.zeros((1, 2)), np.cumsum(rows[:, :2], axis=0)])
    lifted = np.concatenate([[1.0], rows[:-1, 2]]) if len(rows) else np.zeros(0)
    return points, lifted < 0.5
