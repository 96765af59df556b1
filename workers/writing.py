"""Text written by the stroke model, and which part of it each frame shows (pure functions,
for ``mode: write``).

:func:`write_text` samples one glyph per character from a trained
:class:`~workers.models.strokes.StrokeDecoder`, each from its own seed derived from the
shot's seed and the character's position, and sets them side by side into one polyline. A
frame then shows a prefix of that polyline (:func:`visible_segments`), so any chunk of a
render draws exactly the frames one process would: sampling depends only on the text and
the seed, never on which frames a chunk renders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from farm.families import STROKE_STYLE
from workers.draw import Colour, add_strokes, ink_over, polyline
from workers.models.strokes import StrokeDecoder, sample

GAP = 0.25  # between glyphs, in units of the mean glyph width
SPACE = 0.8  # a space's width, in the same units


@dataclass
class Written:
    """A written text: ``points`` ``(P + 1, 2)`` in the model's units (y down), segment
    ``k`` inked when ``pen_down[k]``; ``glyph_ends`` the segment count after each glyph."""

    points: np.ndarray
    pen_down: np.ndarray
    glyph_ends: list[int]

    @property
    def segments(self) -> int:
        return len(self.pen_down)


def glyph_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th character of a shot seeded ``seed``."""
    return (seed * 1_000_003 + index) % (2**63)


def style_index(style_names: Sequence[str], style: str | None) -> int | None:
    """The model's index of font ``style``; without one, :data:`STROKE_STYLE` where the
    model has it, else its first font (one font's constructions, never a mix of them), and
    None for a model without styles. Raises ValueError for a font it was not trained on."""
    names = list(style_names)
    if style is not None:
        if style not in names:
            have = ", ".join(names) if names else "none: it has no style input"
            raise ValueError(f"{style!r} is not a font the model was trained on ({have})")
        return names.index(style)
    if not names:
        return None
    return names.index(STROKE_STYLE) if STROKE_STYLE in names else 0


def write_text(
    model: StrokeDecoder,
    classes: Sequence[str],
    text: str,
    seed: int,
    temperature: float = 0.3,
    style: int | None = None,
) -> Written:
    """Sample each character of ``text`` (spaces advance the pen) in style index ``style``
    (None: any style) and set them on one line.

    Raises ValueError naming the characters the model has no class for.
    """
    unknown = sorted({c for c in text if c != " " and c not in classes})
    if unknown:
        raise ValueError(f"text has characters the model does not know: {unknown!r}")
    glyphs: list[np.ndarray | None] = []
    for i, ch in enumerate(text):
        glyphs.append(None if ch == " " else sample(model, classes.index(ch), glyph_seed(seed, i),
                                                     temperature, style=style))  # fmt: skip
    widths = [np.ptp(np.cumsum(g[:, 0])) for g in glyphs if g is not None and len(g)]
    unit = float(np.mean(widths)) if widths else 1.0
    points = [np.zeros((1, 2))]
    pen: list[np.ndarray] = []
    ends: list[int] = []
    x = 0.0
    for g in glyphs:
        if g is None or not len(g):
            x += SPACE * unit
            ends.append(sum(len(p) for p in pen))
            continue
        local, down = polyline(g)  # (L + 1, 2) from the glyph's origin
        ink = local[1:]
        shift = np.array([x - ink[:, 0].min(), 0.0])
        points.append(ink + shift)
        # the move from the previous glyph to this one's first point is never inked
        pen.append(np.concatenate([[False], down[1:]]))
        x += float(np.ptp(ink[:, 0])) + GAP * unit
        ends.append(sum(len(p) for p in pen))
    return Written(np.concatenate(points), np.concatenate(pen) if pen else np.zeros(0, bool), ends)


def visible_segments(total: int, frame: int, n_frames: int, *, hold: int = 0,
                     per_frame: float | None = None) -> int:  # fmt: skip
    """Segments drawn in frame ``frame`` (0-based) of ``n_frames``: the pen advances
    ``per_frame`` segments a frame, or evenly so it finishes ``hold`` frames before the
    end; finished text holds."""
    if not 0 <= frame < n_frames:
        raise ValueError(f"frame {frame} is outside 0..{n_frames - 1}")
    if per_frame is None:
        per_frame = total / max(n_frames - hold, 1)
    return min(total, math.ceil((frame + 1) * per_frame))


def fit(points: np.ndarray, width: int, height: int, margin: float = 0.1) -> np.ndarray:
    """``points`` scaled uniformly and centred so their box fills the frame less ``margin``
    (of the frame, each side)."""
    ink = points[1:] if len(points) > 1 else points
    lo, hi = ink.min(0), ink.max(0)
    size = np.maximum(hi - lo, 1e-9)
    scale = min(width * (1 - 2 * margin) / size[0], height * (1 - 2 * margin) / size[1])
    return (points - (lo + hi) / 2) * scale + np.array([width / 2, height / 2])


def frames_for(
    written: Written,
    frames: Sequence[int],
    n_frames: int,
    width: int,
    height: int,
    *,
    line_width: float,
    colour: Colour = (20, 20, 30),
    background: Colour | np.ndarray = (250, 248, 240),
    hold: int = 0,
    per_frame: float | None = None,
) -> np.ndarray:
    """Frames ``(len(frames), H, W, 3)`` uint8 of the text being written.

    The ink grows from frame to frame, so each frame adds only its new segments to the last
    one's coverage (exactly equal to redrawing them all: :func:`workers.draw.add_strokes`);
    a frame with less ink than the one before starts again from nothing."""
    pix = fit(written.points, width, height)
    out = np.empty((len(frames), height, width, 3), np.uint8)
    alpha = np.zeros((height, width), np.float32)
    drawn, box = 0, None
    for i, f in enumerate(frames):
        count = visible_segments(written.segments, f, n_frames, hold=hold, per_frame=per_frame)
        if count < drawn:
            alpha[...] = 0.0
            drawn, box = 0, None
        box = add_strokes(alpha, pix, written.pen_down, line_width, drawn, count, box)
        drawn = count
        out[i] = ink_over(alpha, colour, background, box)
    return out
