"""``strokes``: pen-stroke glyphs from the Hershey stroke fonts (the ``Hershey-Fonts`` wheel,
32 fonts as point sequences; by default the 12 roman, sans and script ones of its 18 Latin
fonts), as stroke-3 sequences ``(dx, dy, pen)`` for sketch-RNN.

Each glyph is its strokes' points in order; row ``i`` is the offset from the previous point
(from the glyph's origin for the first) and ``pen = 1`` when the pen lifts after point ``i``
(the end of a stroke), Graves (2013) and Ha & Eck (2017). Coordinates are Hershey's (x right,
y down, the origin at the middle of the character cell) in units of the font's cap-to-base
height, then divided by one ``scale`` (the spread of the training fonts' offsets) so the
offsets have unit spread, as sketch-RNN normalises. Classes are the charset's characters;
styles are the fonts, with some held out for evaluation.

Sequences do not fit the image contract of :class:`Dataset`, so they live in a
:class:`StrokeSet` (``meta["strokes"]``); the Dataset's ``data`` is each glyph drawn at
``image_size`` (``(N, 1, S, S)``), for classifiers and previews.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from HersheyFonts import HersheyFonts
from PIL import Image, ImageDraw

from farm.charset import DEFAULT_CHARSET
from farm.families import STROKE_FONTS, STROKE_HELDOUT_FONTS
from workers.datasets.base import Dataset, DatasetError, Request
from workers.datasets.glyphs import parse_charset

# The fonts whose ASCII slots hold Latin letters (the others map them to Greek, Cyrillic,
# kana or symbols, so their "A" is not an A).
LATIN_FONTS = (
    "futural", "futuram", "cursive", "gothgbt", "gothgrt", "gothiceng", "gothicger",
    "gothicita", "gothitt", "rowmand", "rowmans", "rowmant", "scriptc", "scripts",
    "timesi", "timesib", "timesr", "timesrb",
)  # fmt: skip
# The default fonts and held-out ones (farm.families: submission checks styles against them).
DEFAULT_FONTS = STROKE_FONTS
HELDOUT_FONTS = STROKE_HELDOUT_FONTS
OPTIONS = ("channels", "charset", "fonts", "heldout_fonts", "split")


@dataclass
class StrokeSet:
    """``strokes`` ``(N, L, 3)`` float32, zero after each glyph's ``lengths`` ``(N,)`` rows;
    ``labels`` (characters) and ``styles`` (fonts) ``(N,)``; ``advance`` ``(N,)`` each
    glyph's typographic width in the same normalised units, for setting text; ``unit``
    ``(N,)`` the font's Hershey units per cap height; ``scale`` the normaliser."""

    strokes: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    styles: np.ndarray
    advance: np.ndarray
    unit: np.ndarray
    scale: float
    classes: list[str]
    style_names: list[str]

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def sequence(self, i: int) -> np.ndarray:
        """Glyph ``i``'s rows ``(L_i, 3)``."""
        return self.strokes[i, : self.lengths[i]]


@lru_cache(maxsize=64)
def _font(name: str) -> HersheyFonts:
    font = HersheyFonts()
    font.load_default_font(name)
    return font


def font_names() -> list[str]:
    """All 32 built-in Hershey fonts."""
    return list(HersheyFonts().default_font_names)


def glyph_rows(font: str, ch: str) -> tuple[np.ndarray, float, float] | None:
    """``(rows (L, 3) in Hershey units, unit, width)`` for ``ch`` in ``font``, or None when
    the font has no strokes for it."""
    glyph = _font(font).all_glyphs.get(ch)
    if glyph is None or not glyph.strokes:
        return None
    points, pen = [], []
    for stroke in glyph.strokes:
        points.extend(stroke)
        pen.extend([0.0] * (len(stroke) - 1) + [1.0])
    xy = np.asarray(points, dtype=np.float64)
    offsets = np.diff(np.concatenate([np.zeros((1, 2)), xy]), axis=0)
    unit = float(glyph.base_line - glyph.cap_line) or 21.0
    return np.column_stack([offsets, pen]), unit, float(glyph.char_width)


def _split_fonts(req: Request) -> tuple[list[str], list[str]]:
    known = font_names()
    fonts = req.names("fonts") or list(DEFAULT_FONTS)
    held = req.names("heldout_fonts")
    held = list(HELDOUT_FONTS) if held is None else held
    unknown = [f for f in (*fonts, *held) if f not in known]
    if unknown:
        raise DatasetError(
            f"{req.name}: no Hershey font(s) {', '.join(unknown)} (have {', '.join(known)})"
        )
    held = [f for f in fonts if f in held]
    return fonts, held


def build(fonts: list[str], use: list[str], chars: list[str], scale_fonts: list[str]) -> StrokeSet:
    """Glyphs of ``chars`` in the fonts ``use`` (styles index ``fonts``), normalised by the
    spread of the offsets of ``scale_fonts``, so every split shares the training scale."""
    spread = [glyph_rows(f, c) for f in scale_fonts for c in chars]
    offs = [r[0][:, :2] / r[1] for r in spread if r is not None]
    if not offs:
        raise DatasetError(f"no Hershey glyphs for the charset in fonts {', '.join(scale_fonts)}")
    scale = float(np.concatenate(offs).std())
    seqs, labels, styles, advance, units = [], [], [], [], []
    for f in use:
        for label, ch in enumerate(chars):
            got = glyph_rows(f, ch)
            if got is None:
                continue
            rows, unit, width = got
            rows = rows.copy()
            rows[:, :2] /= unit * scale
            seqs.append(rows)
            labels.append(label)
            styles.append(fonts.index(f))
            advance.append(width / (unit * scale))
            units.append(unit)
    longest = max(len(s) for s in seqs)
    strokes = np.zeros((len(seqs), longest, 3), np.float32)
    for i, s in enumerate(seqs):
        strokes[i, : len(s)] = s
    return StrokeSet(
        strokes=strokes,
        lengths=np.array([len(s) for s in seqs], np.int64),
        labels=np.array(labels, np.int64),
        styles=np.array(styles, np.int64),
        advance=np.array(advance),
        unit=np.array(units),
        scale=scale,
        classes=chars,
        style_names=fonts,
    )


def rasters(strokes: StrokeSet, size: int) -> torch.Tensor:
    """Each glyph drawn white on black at ``size`` px, centred on its points' box, the cap
    height at 60% of the canvas: ``(N, 1, S, S)``. Pillow draws each pen-down run as one
    polyline at 4x and box-filters it down: thousands of glyphs in about a second, where the
    exact renderer of :mod:`workers.draw` (for frames) would take ten."""
    k = 4
    hr = size * k
    width = max(round(hr / 16), 1)
    out = np.zeros((len(strokes), 1, size, size), np.float32)
    px_per_unit = 0.6 * hr * strokes.scale
    for i in range(len(strokes)):
        rows = strokes.sequence(i).astype(np.float64)
        points = np.cumsum(rows[:, :2], axis=0)
        mid = (points.min(0) + points.max(0)) / 2
        pix = (points - mid) * px_per_unit + hr / 2
        img = Image.new("L", (hr, hr))
        draw = ImageDraw.Draw(img)
        for run in np.split(pix, np.nonzero(rows[:-1, 2] > 0.5)[0] + 1):
            xy = [tuple(p) for p in run]
            if len(xy) > 1:
                draw.line(xy, fill=255, width=width, joint="curve")
            for x, y in (xy[0], xy[-1]):
                draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)
        out[i, 0] = np.asarray(img.reduce(k), np.float32) / 255.0
    return torch.from_numpy(out)


def load(req: Request) -> Dataset:
    """Options: ``charset`` (default ``A-Za-z0-9``), ``fonts`` (default the 12 roman, sans
    and script ones of the 18 Latin ones), ``heldout_fonts`` (default one per family of
    look), ``split`` ("train", "heldout" or
    "all"); ``channels`` is 1."""
    req.check_options(OPTIONS)
    if req.options.get("channels", 1) != 1:
        raise DatasetError(f"{req.name}: channels must be 1 (the glyphs are drawn grey)")
    size = req.shape_size()
    chars = parse_charset(str(req.options.get("charset", DEFAULT_CHARSET)))
    split = req.choice("split", ("train", "heldout", "all"), "train")
    fonts, held = _split_fonts(req)
    train = [f for f in fonts if f not in held]
    use = {"train": train, "heldout": held, "all": fonts}[split]
    if not use or not train:
        raise DatasetError(f"{req.name}: the {split} split has no fonts (held out: {held})")
    missing = [c for c in chars if all(glyph_rows(f, c) is None for f in use)]
    if missing:
        raise DatasetError(
            f"{req.name}: no font of the {split} split has strokes for "
            + ", ".join(repr(c) for c in missing[:20])
        )
    strokes = build(fonts, use, chars, train)
    return Dataset(
        req.name,
        rasters(strokes, size),
        torch.from_numpy(strokes.labels),
        classes=chars,
        styles=torch.from_numpy(strokes.styles),
        style_names=fonts,
        meta={"split": split, "heldout_fonts": held, "strokes": strokes},
    )
