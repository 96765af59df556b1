"""``glyphs`` and ``glyphs:<folder>``: characters rendered from TrueType/OpenType fonts, with
the exact signed distance field of each outline, at any size.

Classes are the characters of the charset, styles are the fonts. Each glyph is drawn with
FreeType (Pillow) on a supersampled canvas, centred by its ink bounding box, at one size per
font: the size at which that font's largest glyph of the charset fits the canvas less a
margin. So glyphs keep their proportions within a font ("x" is smaller than "X") while fonts
with different em squares come out comparable. ``data`` is the area-averaged coverage at S;
``sdf`` is the exact distance transform of the supersampled mask, sampled at pixel centres.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from farm.charset import DEFAULT_CHARSET, CharsetError
from farm.charset import parse_charset as _parse_charset
from workers.datasets.base import SPLITS, Dataset, DatasetError, Request
from workers.datasets.fonts import Font, covered, folder_fonts, heldout_names, matplotlib_fonts
from workers.sdf import DEFAULT_SPREAD_PX, sdf_from_mask, supersample_factor

log = logging.getLogger(__name__)

MARGIN = 0.125  # of the canvas, each side: the largest glyph spans the middle 75%
OPTIONS = ("channels", "target", "charset", "fonts", "heldout_fonts", "split", "sdf_spread_px")


def parse_charset(text: str) -> list[str]:
    """:func:`farm.charset.parse_charset`, its errors as :class:`DatasetError`."""
    try:
        return _parse_charset(text)
    except CharsetError as e:
        raise DatasetError(str(e)) from None


class _Canvas:
    """Draws glyphs on a supersampled canvas and reduces them to size S."""

    def __init__(self, size: int, spread_px: float | None) -> None:
        self.size = size
        self.k = supersample_factor(size)
        self.hr = self.k * size
        self.spread_px = spread_px

    def font_at_fit(self, font: Font, chars: list[str]) -> ImageFont.FreeTypeFont:
        """``font`` at the size where its largest glyph of ``chars`` fits the canvas less
        the margin (measured on FreeType's control boxes, which contain the ink)."""
        try:
            ref = ImageFont.truetype(str(font.path), self.hr)
            extent = 1.0
            for ch in chars:
                left, top, right, bottom = ref.getbbox(ch, anchor="ls")
                extent = max(extent, right - left, bottom - top)
            size = self.hr * self.hr * (1 - 2 * MARGIN) / extent
            return ImageFont.truetype(str(font.path), size)
        except OSError as e:  # fontTools read it, FreeType cannot draw it
            raise DatasetError(f"cannot draw with font {font.path}: {e}") from None

    def draw(self, face: ImageFont.FreeTypeFont, ch: str) -> np.ndarray | None:
        """The glyph's coverage ``(hr, hr)`` uint8, centred by its ink; None if it has none."""
        left, top, right, bottom = face.getbbox(ch, anchor="ls")
        origin = (self.hr / 2 - (left + right) / 2, self.hr / 2 - (top + bottom) / 2)
        for _ in range(2):  # the control box is near the ink; one correction centres it
            img = Image.new("L", (self.hr, self.hr))
            ImageDraw.Draw(img).text(origin, ch, font=face, fill=255, anchor="ls")
            ink = img.getbbox()
            if ink is None:
                return None
            dx = round(self.hr / 2 - (ink[0] + ink[2]) / 2)
            dy = round(self.hr / 2 - (ink[1] + ink[3]) / 2)
            if dx == 0 and dy == 0:
                break
            origin = (origin[0] + dx, origin[1] + dy)
        return np.asarray(img)

    def reduce(self, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Coverage at S (the mean of each k x k block) and, if wanted, the field."""
        s, k = self.size, self.k
        coverage = hr.reshape(s, k, s, k).mean(axis=(1, 3), dtype=np.float32) / 255.0
        if self.spread_px is None:
            return coverage, None
        return coverage, sdf_from_mask(hr >= 128, s, self.spread_px)


def _choose_fonts(req: Request) -> list[Font]:
    available = folder_fonts(req.path(), req.roots) if req.source else matplotlib_fonts()
    wanted = req.names("fonts")
    if wanted is None:
        return available
    by_name = {f.name: f for f in available}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise DatasetError(
            f"{req.name}: no font(s) {', '.join(unknown)} (have {', '.join(by_name)})"
        )
    return [by_name[n] for n in sorted(set(wanted))]


def _shown(chars: list[str]) -> str:
    return ", ".join(repr(c) for c in chars[:20]) + (" ..." if len(chars) > 20 else "")


@dataclass
class _Plan:
    """Which fonts draw which characters, and which fonts this split uses."""

    fonts: list[tuple[Font, list[str]]]  # every font with a glyph of the charset: the styles
    heldout: list[str]
    use: set[str]

    @property
    def style_names(self) -> list[str]:
        return [font.name for font, _ in self.fonts]


def _plan(req: Request, chars: list[str], split: str) -> _Plan:
    fonts = [(font, covered(font, chars)) for font in _choose_fonts(req)]
    fonts = [(font, have) for font, have in fonts if have]
    missing = sorted(set(chars) - {c for _, have in fonts for c in have}, key=chars.index)
    if missing:
        raise DatasetError(f"{req.name}: no font has a glyph for {_shown(missing)}")
    names = [font.name for font, _ in fonts]
    heldout = heldout_names(names, req.names("heldout_fonts"))
    use = set(names) if split == "all" else set(heldout)
    if split == "train":
        use = set(names) - use
    if not use:
        raise DatasetError(f"{req.name}: the {split} split has no fonts (held out: {heldout})")
    return _Plan(fonts, heldout, use)


def _render(
    canvas: _Canvas, plan: _Plan, chars: list[str]
) -> tuple[list[np.ndarray], list[np.ndarray | None], list[int], list[int]]:
    """Every glyph of the plan's fonts, in font then charset order: images, fields, labels,
    styles. FreeType draws in this thread; the distance transforms (scipy releases the GIL
    for most of one) run on a few threads, one font's glyphs at a time to bound memory."""
    index = {c: i for i, c in enumerate(chars)}
    images: list[np.ndarray] = []
    fields: list[np.ndarray | None] = []
    labels: list[int] = []
    styles: list[int] = []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for style, (font, have) in enumerate(plan.fonts):
            if font.name not in plan.use:
                continue
            face = canvas.font_at_fit(font, have)
            drawn = [(ch, canvas.draw(face, ch)) for ch in have]
            drawn = [(ch, hr) for ch, hr in drawn if hr is not None]  # a space has no ink
            for (ch, _), (image, field) in zip(
                drawn, pool.map(canvas.reduce, [hr for _, hr in drawn]), strict=True
            ):
                images.append(image)
                fields.append(field)
                labels.append(index[ch])
                styles.append(style)
    return images, fields, labels, styles


def load(req: Request) -> Dataset:
    """Options: ``charset`` (default ``A-Za-z0-9``), ``fonts`` and ``heldout_fonts`` (font
    file stems), ``split`` ("train", "heldout" or "all"), ``target`` ("sdf", the default,
    or "pixels" to skip the fields), ``sdf_spread_px``, ``channels`` (1: coverage; 3: white
    on black; 4: white with alpha = coverage)."""
    req.check_options(OPTIONS)
    started = time.perf_counter()
    size = req.shape_size()
    chars = parse_charset(str(req.options.get("charset", DEFAULT_CHARSET)))
    split = req.choice("split", (*SPLITS, "all"), "train")
    spread = req.number("sdf_spread_px", DEFAULT_SPREAD_PX, 0.5, 64.0)
    want_sdf = req.choice("target", ("sdf", "pixels"), "sdf") == "sdf"
    channels = req.channels() or 1
    plan = _plan(req, chars, split)
    images, fields, labels, styles = _render(
        _Canvas(size, spread if want_sdf else None), plan, chars
    )
    empty = [c for i, c in enumerate(chars) if i not in set(labels)]
    if empty:
        raise DatasetError(f"{req.name}: no font of the {split} split draws {_shown(empty)}")
    coverage = torch.from_numpy(np.stack(images)).unsqueeze(1)  # (N, 1, S, S)
    sdf = None
    if want_sdf:
        sdf = torch.from_numpy(np.stack([f for f in fields if f is not None])).unsqueeze(1)
    log.info(
        "%s: %d glyphs of %d characters from %d fonts at %d px in %.1f s",
        req.name,
        len(images),
        len(chars),
        len(plan.use),
        size,
        time.perf_counter() - started,
    )
    return Dataset(
        req.name,
        _with_channels(coverage, channels),
        torch.tensor(labels, dtype=torch.int64),
        classes=chars,
        sdf=sdf,
        sdf_spread_px=spread,
        styles=torch.tensor(styles, dtype=torch.int64),
        style_names=plan.style_names,
        meta={"split": split, "heldout_fonts": plan.heldout},
    )


def _with_channels(coverage: torch.Tensor, channels: int) -> torch.Tensor:
    """Glyph coverage is ink: grey as is, RGB white on black, RGBA white with that alpha."""
    if channels == 1:
        return coverage
    if channels == 3:
        return coverage.expand(-1, 3, -1, -1).contiguous()
    return torch.cat([torch.ones_like(coverage).expand(-1, 3, -1, -1), coverage], dim=1)
