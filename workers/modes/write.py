"""``mode: write``: the stroke model writes ``text`` pen step by pen step in one font (the
spec's ``style``, else :data:`farm.families.STROKE_STYLE`), then the finished text holds
(:mod:`workers.writing`).

The glyphs are sampled from seeds derived from the spec's seed and each character's
position, so every chunk samples the same text, and a frame shows a prefix of it that
depends only on its position: any chunking gives the frames one process would. Sampling the
text costs each chunk a few milliseconds per character.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from workers.context import PermanentError
from workers.draw import Colour, backdrop
from workers.models.strokes import StrokeDecoder
from workers.modes.base import RenderJob
from workers.modes.motion import BATCH_PIXELS, _rgb
from workers.writing import frames_for, style_index, write_text

INK = (20, 20, 30)
PAPER = (250, 248, 240)
# Without a pace, the finished text holds this share of the range.
HOLD_SHARE = 0.25


def render(job: RenderJob, positions: Sequence[int]) -> Iterator[np.ndarray]:
    job.require("strokes")
    model = job.model
    assert isinstance(model, StrokeDecoder)
    spec = job.spec
    classes = [str(c) for c in job.meta.get("classes") or ()]
    fonts = [str(f) for f in job.meta.get("style_names") or ()] if model.cfg.num_styles else []
    try:
        style = style_index(fonts, spec.get("style"))
    except ValueError as e:
        raise PermanentError(f"style: {e}") from e
    try:
        written = write_text(model, classes, str(spec.get("text") or ""), int(spec.get("seed", 0)),
                             style=style)  # fmt: skip
    except ValueError as e:
        raise PermanentError(f"text: {e}") from e
    w, h, total = int(spec["width"]), int(spec["height"]), job.total
    pace = spec.get("strokes_per_second")
    per_frame = float(pace) / float(spec["fps"]) if pace is not None else None
    if pace is not None:
        hold = 0
    else:
        hold = int(spec["hold"]) if spec.get("hold") else int(total * HOLD_SHARE)
    colors = spec.get("colors") or {}
    line = float(spec.get("line_px") or max(1.5, h / 40))
    ink = _rgb(colors.get("fill"), INK)
    paper: Colour | np.ndarray = _rgb(colors.get("background"), PAPER)
    if spec.get("background_image"):
        picture = job.picture(spec["background_image"], "background_image", height=h)[..., :3]
        # Centred on the frame, repeated sideways if it is narrower than the frame.
        view = backdrop(picture, w, (picture.shape[1] - w) / 2)
        paper = np.clip(np.rint(view), 0, 255).astype(np.uint8)
    step = max(1, min(int(spec.get("batch_size", 32)), BATCH_PIXELS // (w * h)))
    frames = list(positions)
    for i in range(0, len(frames), step):
        yield frames_for(written, frames[i : i + step], total, w, h, line_width=line,
                         colour=ink, background=paper, hold=hold,
                         per_frame=per_frame)  # fmt: skip
