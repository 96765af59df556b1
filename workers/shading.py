"""Turning decoded images into the frames a spec asks for: shading a signed distance field,
tinting a grey model, and laying an RGBA model over its background.

An SDF model's field is upsampled bilinearly to the output size (still a distance field,
:mod:`workers.sdf`), turned into a distance in *output* pixels, and passed through a
smoothstep over +-0.5 output pixels: the edge stays one output pixel wide however far a
64 px field is magnified, so a 4K frame is as crisp as a 512 px one. Outline, glow and drop
shadow are further functions of the same distance; the layers are composited (premultiplied
"over") onto the background in one batched pass on the job's device, and only the uint8
frames go back to the host.

The colours of each frame are a :class:`Look` of plain Python floats, computed from the
frame's position (a storyboard interpolates them over its transitions), so a frame's pixels
never depend on which other frames share its batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F

from farm.colors import parse_color
from workers.sdf import upsample_sdf

RGBAf = tuple[float, float, float, float]
_CLEAR: RGBAf = (0.0, 0.0, 0.0, 0.0)
_WHITE: RGBAf = (1.0, 1.0, 1.0, 1.0)
_BLACK: RGBAf = (0.0, 0.0, 0.0, 1.0)  # farm.colors' defaults, white shapes on black
# Widths when a colour is given without one, in output pixels.
DEFAULT_OUTLINE_PX = 2.0
DEFAULT_GLOW_PX = 12.0
DEFAULT_SHADOW_OFFSET = (4.0, 4.0)


def _unit(c: tuple[int, int, int, int]) -> RGBAf:
    return (c[0] / 255.0, c[1] / 255.0, c[2] / 255.0, c[3] / 255.0)


@dataclass(frozen=True)
class Look:
    """One frame's colours (straight-alpha RGBA in [0, 1]; alpha 0 turns a layer off) and
    widths in output pixels."""

    fill: RGBAf = _WHITE
    outline: RGBAf = _CLEAR
    glow: RGBAf = _CLEAR
    shadow: RGBAf = _CLEAR
    background: RGBAf = _BLACK
    outline_px: float = DEFAULT_OUTLINE_PX
    glow_px: float = DEFAULT_GLOW_PX
    shadow_x: float = DEFAULT_SHADOW_OFFSET[0]
    shadow_y: float = DEFAULT_SHADOW_OFFSET[1]

    @classmethod
    def from_colors(cls, colors: Mapping[str, Any] | None, *, clear: bool = False) -> Look:
        """A look from a spec's colour section (``None`` values and absent keys take the
        defaults: white fill on opaque black, or on nothing with ``clear`` (an RGBA
        model's own transparency); no outline, glow or shadow)."""
        c = {k: v for k, v in (colors or {}).items() if v is not None}
        look = cls(background=_CLEAR) if clear else cls()
        colours: dict[str, Any] = {
            name: _unit(parse_color(c[name]))
            for name in ("fill", "outline", "glow", "shadow", "background")
            if name in c
        }
        look = replace(look, **colours)
        if "outline_px" in c:
            look = replace(look, outline_px=float(c["outline_px"]))
        if "glow_px" in c:
            look = replace(look, glow_px=float(c["glow_px"]))
        if "shadow_offset" in c:
            x, y = c["shadow_offset"]
            look = replace(look, shadow_x=float(x), shadow_y=float(y))
        return look

    def mix(self, other: Look, t: float) -> Look:
        """``(1 - t) * self + t * other``, component by component; a layer present on one
        side only fades in or out in its own colour rather than through black."""
        out: dict[str, Any] = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, tuple):
                if a[3] == 0.0:
                    a = (*b[:3], 0.0)
                if b[3] == 0.0:
                    b = (*a[:3], 0.0)
                out[f.name] = tuple((1.0 - t) * x + t * y for x, y in zip(a, b, strict=True))
            else:
                out[f.name] = (1.0 - t) * a + t * b
        return Look(**out)


@dataclass(frozen=True)
class Palette:
    """A batch of looks as tensors on the device: colours ``(B, 4, 1, 1)``, widths
    ``(B, 1, 1, 1)``, shadow offsets ``(B, 2)``."""

    fill: torch.Tensor
    outline: torch.Tensor
    glow: torch.Tensor
    shadow: torch.Tensor
    background: torch.Tensor
    outline_px: torch.Tensor
    glow_px: torch.Tensor
    shadow_offset: torch.Tensor

    @classmethod
    def of(cls, looks: Sequence[Look], device: torch.device | str = "cpu") -> Palette:
        def col(name: str) -> torch.Tensor:
            rows = [getattr(look, name) for look in looks]
            return torch.tensor(rows, dtype=torch.float32, device=device).view(-1, 4, 1, 1)

        def num(name: str) -> torch.Tensor:
            rows = [getattr(look, name) for look in looks]
            return torch.tensor(rows, dtype=torch.float32, device=device).view(-1, 1, 1, 1)

        offsets = [(look.shadow_x, look.shadow_y) for look in looks]
        return cls(
            col("fill"),
            col("outline"),
            col("glow"),
            col("shadow"),
            col("background"),
            num("outline_px"),
            num("glow_px"),
            torch.tensor(offsets, dtype=torch.float32, device=device).view(-1, 2),
        )


def _smoothstep_(t: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """``t`` clamped to [0, 1] and eased, ``t^2 (3 - 2t)``, in place (``scratch`` is a
    buffer of the same shape): at 4K every full-frame temporary costs as much as the maths."""
    t.clamp_(0.0, 1.0)
    torch.mul(t, -2.0, out=scratch).add_(3.0)
    return t.mul_(t).mul_(scratch)


def _to_uint8(out: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, H*W, C)`` floats in [0, 1] as uint8 frames ``(B, H, W, C)``."""
    b, _, c = out.shape
    frames = out.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    return frames.view(b, height, width, c)


def _unpremultiply_(out: torch.Tensor) -> None:
    """Premultiplied ``(B, N, 4)`` to straight alpha, in place (0 where nothing covers)."""
    alpha = out[..., 3:4]
    out[..., :3] = torch.where(alpha > 0, out[..., :3] / alpha.clamp_min(1e-6), 0.0)


def composite(layers: torch.Tensor, colors: torch.Tensor, channels: int) -> torch.Tensor:
    """Layers of flat colour, top first, as uint8 frames ``(B, H, W, channels)``.

    ``layers`` ``(B, K, H, W)`` holds each layer's coverage in [0, 1] in slots 0..K-2 (it is
    overwritten); slot K-1 is the background, which covers everything. ``colors``
    ``(B, K, 4)`` are straight RGBA. Each layer's weight is its coverage times what the
    layers above let through (premultiplied "over"); the frame is the weighted sum of the
    premultiplied colours, written channels-last as the encoders take it. A layer whose
    colour is transparent adds exact zeros and changes no pixel.
    """
    b, k, h, w = layers.shape
    through = layers[:, k - 1].fill_(1.0)  # (B, H, W): what the layers so far let through
    scratch = torch.empty_like(through)
    for i in range(k - 1):
        cov = layers[:, i]
        torch.mul(cov, colors[:, i, 3].view(b, 1, 1), out=scratch)
        cov.mul_(through)
        through.mul_(scratch.neg_().add_(1.0))
    premult = torch.cat([colors[..., :3] * colors[..., 3:], colors[..., 3:]], dim=2)  # (B, K, 4)
    rows = 3 if channels == 3 else 4
    weights = layers.view(b, k, h * w, 1)  # (B, K, HW, 1)
    out = weights[:, 0] * premult[:, 0, None, :rows]  # (B, HW, C)
    for i in range(1, k):
        out.addcmul_(weights[:, i], premult[:, i, None, :rows])
    if rows == 4:
        _unpremultiply_(out)
    return _to_uint8(out, h, w)


def _fit(size: int, height: int, width: int) -> tuple[int, int, int]:
    """The square a size-``size`` field fills in the frame (its side, and top and left):
    the field keeps its aspect, centred, scaled to the frame's shorter side."""
    side = min(height, width)
    return side, (height - side) // 2, (width - side) // 2


def field_distance(sdf: torch.Tensor, height: int, width: int, spread_px: float) -> torch.Tensor:
    """Signed distance in output pixels ``(B, H, W)`` (positive inside) of the decoded fields
    ``(B, 1, S, S)`` in [-1, 1], upsampled bilinearly (:func:`workers.sdf.upsample_sdf`) and
    fitted to the frame; beyond the field is outside."""
    s = sdf.shape[-1]
    side, top, left = _fit(s, height, width)
    units = spread_px * side / s  # output pixels per unit of the field
    up = upsample_sdf(sdf[:, 0], side, side)  # (B, side, side)
    if side == height == width:
        return up.mul_(units)
    d = up.new_full((sdf.shape[0], height, width), -units)  # (B, H, W)
    d[:, top : top + side, left : left + side] = up.mul_(units)
    return d


def _shift_into(dest: torch.Tensor, src: torch.Tensor, dx: int, dy: int) -> None:
    """``dest`` ``(H, W)`` = ``src`` moved ``dx`` right and ``dy`` down, zeros shifted in."""
    h, w = src.shape
    dest.zero_()
    if abs(dx) >= w or abs(dy) >= h:
        return
    dest[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = src[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]


def smooth_field(sdf: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Decoded fields ``(B, 1, S, S)`` blurred by a Gaussian of ``sigma_px`` model pixels.

    A learned field has small ripples along its zero crossing; upsampled 20x they become
    wobbly edges. A distance field is smooth away from corners, so a blur of about half a
    model pixel irons the ripples out while moving straight edges not at all and rounding
    corners by about that much. Exact fields need none (the default is 0: off).
    """
    if sigma_px <= 0:
        return sdf
    r = max(1, math.ceil(3 * sigma_px))
    x = torch.arange(-r, r + 1, dtype=sdf.dtype, device=sdf.device)
    k = torch.exp(-(x * x) / (2 * sigma_px * sigma_px))
    k = k / k.sum()
    padded = F.pad(sdf, (r, r, r, r), mode="replicate")  # (B, 1, S + 2r, S + 2r)
    rows = F.conv2d(padded, k.view(1, 1, 1, -1))  # (B, 1, S + 2r, S)
    return F.conv2d(rows, k.view(1, 1, -1, 1))  # (B, 1, S, S)


def shade_sdf(
    sdf: torch.Tensor,
    height: int,
    width: int,
    palette: Palette,
    *,
    spread_px: float,
    channels: int = 3,
) -> torch.Tensor:
    """Shade decoded fields ``(B, 1, S, S)`` into uint8 frames ``(B, H, W, channels)``.

    From the top: fill, outline (the shape grown by ``outline_px``), glow (full at the
    edge, gone ``glow_px`` outside it), drop shadow (the fill moved by ``shadow_offset``,
    rounded to whole output pixels), background. Every edge is a smoothstep over +-0.5
    output pixels. Layers transparent in every frame of the batch are left out, which
    changes no pixel. The field says nothing beyond ``spread_px`` model pixels from the
    edge, so outline and glow stop just inside that reach rather than flood the frame.
    """
    if sdf.ndim != 4 or sdf.shape[1] != 1:
        raise ValueError(f"an SDF batch is (B, 1, S, S), got {tuple(sdf.shape)}")
    b = sdf.shape[0]
    d = field_distance(sdf.float(), height, width, spread_px)  # (B, H, W)
    reach = spread_px * min(height, width) / sdf.shape[-1]
    names = ["fill"] + [n for n in ("outline", "glow", "shadow")
                        if bool((getattr(palette, n)[:, 3] > 0).any())]  # fmt: skip
    layers = d.new_empty((b, len(names) + 1, height, width))  # (B, K, H, W)
    scratch = torch.empty_like(d)
    torch.add(d, 0.5, out=layers[:, 0])
    _smoothstep_(layers[:, 0], scratch)
    for i, name in enumerate(names[1:], start=1):
        if name == "outline":
            grow = palette.outline_px.view(b, 1, 1).clamp(0.0, max(reach - 1.0, 0.0)) + 0.5
            _smoothstep_(torch.add(d, grow, out=layers[:, i]), scratch)
        elif name == "glow":
            glow_px = palette.glow_px.view(b, 1, 1).clamp(1e-3, reach)
            _smoothstep_(torch.div(d, glow_px, out=layers[:, i]).add_(1.0), scratch)
        else:
            for j, (dx, dy) in enumerate(palette.shadow_offset.round().int().tolist()):
                _shift_into(layers[j, i], layers[j, 0], dx, dy)
    colors = torch.stack(
        [getattr(palette, n).view(b, 4) for n in names] + [palette.background.view(b, 4)], dim=1
    )  # (B, K, 4)
    return composite(layers, colors, channels)


def tint_grey(grey: torch.Tensor, palette: Palette, channels: int = 3) -> torch.Tensor:
    """A grey model's upsampled frames ``(B, 1, H, W)`` in [0, 1] as the fill's coverage over
    the background: uint8 ``(B, H, W, channels)``."""
    b, _, h, w = grey.shape
    layers = grey.new_empty((b, 2, h, w))
    layers[:, 0] = grey[:, 0]
    colors = torch.stack([palette.fill.view(b, 4), palette.background.view(b, 4)], dim=1)
    return composite(layers, colors, channels)


def over_background(premultiplied: torch.Tensor, palette: Palette, channels: int) -> torch.Tensor:
    """An RGBA model's upsampled premultiplied frames ``(B, 4, H, W)`` over the palette's
    background (which may be transparent): uint8 ``(B, H, W, channels)``."""
    b, _, h, w = premultiplied.shape
    bg = palette.background.view(b, 4, 1)
    bg_p = torch.cat([bg[:, :3] * bg[:, 3:], bg[:, 3:]], dim=1)  # (B, 4, 1)
    top = premultiplied.reshape(b, 4, h * w)
    out = (top + bg_p * (1.0 - top[:, 3:4])).transpose(1, 2).contiguous()  # (B, HW, 4)
    if channels == 4:
        _unpremultiply_(out)
    return _to_uint8(out[..., :channels], h, w)


def edge_width(coverage: torch.Tensor, edge_length: float) -> float:
    """Mean edge width in pixels of a coverage image: pixels strictly between 10% and 90%
    divided by the edge's length (the sharpness figure of docs/models.md)."""
    partial = ((coverage > 0.1) & (coverage < 0.9)).sum()
    return float(partial) / edge_length


def disc_sdf(size: int, radius: float, spread_px: float) -> torch.Tensor:
    """The exact field ``(1, 1, size, size)`` of a centred disc of ``radius`` pixels."""
    c = (torch.arange(size, dtype=torch.float64) + 0.5) - size / 2
    r = torch.sqrt(c.view(-1, 1) ** 2 + c.view(1, -1) ** 2)
    return ((radius - r) / spread_px).clamp(-1.0, 1.0).float().view(1, 1, size, size)
