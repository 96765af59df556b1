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


def _smoothstep(t: torch.Tensor) -> torch.Tensor:
    t = t.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class Canvas:
    """Premultiplied RGBA accumulated bottom layer first: ``over`` puts a layer of colour
    ``(B, 4, 1, 1)`` (or per pixel ``(B, 4, H, W)``) and coverage ``(B, 1, H, W)`` on top."""

    def __init__(self, background: torch.Tensor, height: int, width: int) -> None:
        b = background.shape[0]
        alpha = background[:, 3:4].expand(b, 1, height, width)
        self.rgb = (background[:, :3] * background[:, 3:4]).expand(b, 3, height, width).clone()
        self.alpha = alpha.clone()  # (B, 1, H, W)

    def over(self, color: torch.Tensor, coverage: torch.Tensor) -> None:
        a = coverage * color[:, 3:4]  # (B, 1, H, W)
        keep = 1.0 - a
        self.rgb.mul_(keep).add_(color[:, :3] * a)
        self.alpha.mul_(keep).add_(a)

    def over_premultiplied(self, rgb: torch.Tensor, alpha: torch.Tensor) -> None:
        """A layer already premultiplied, ``(B, 3, H, W)`` and ``(B, 1, H, W)``."""
        keep = 1.0 - alpha
        self.rgb.mul_(keep).add_(rgb)
        self.alpha.mul_(keep).add_(alpha)

    def to_uint8(self, channels: int) -> torch.Tensor:
        """``(B, H, W, 3)`` (the background must be opaque) or straight-alpha
        ``(B, H, W, 4)`` uint8."""
        if channels == 3:
            out = self.rgb
        else:
            straight = self.rgb / self.alpha.clamp_min(1e-6)
            out = torch.cat([torch.where(self.alpha > 0, straight, 0.0), self.alpha], dim=1)
        out = out.clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)  # (B, C, H, W)
        return out.permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)


def _fit(size: int, height: int, width: int) -> tuple[int, int, int]:
    """The square a size-``size`` field fills in the frame (its side, and top and left):
    the field keeps its aspect, centred, scaled to the frame's shorter side."""
    side = min(height, width)
    return side, (height - side) // 2, (width - side) // 2


def field_distance(
    sdf: torch.Tensor, height: int, width: int, spread_px: float, offsets: torch.Tensor | None
) -> torch.Tensor:
    """Signed distance in output pixels ``(B, 1, H, W)`` (positive inside) of the decoded
    fields ``(B, 1, S, S)`` in [-1, 1], fitted to the frame; ``offsets`` ``(B, 2)`` (x, y)
    in output pixels moves the shape (for a shadow). Outside the field counts as outside."""
    s = sdf.shape[-1]
    side, top, left = _fit(s, height, width)
    units = spread_px * side / s  # output pixels per unit of the field
    if offsets is None:
        up = upsample_sdf(sdf[:, 0], side, side).unsqueeze(1)  # (B, 1, side, side)
        pad = (left, width - side - left, top, height - side - top)
        up = F.pad(up, pad, value=-1.0) if any(pad) else up  # (B, 1, H, W)
        return up * units
    # Sampling at pixel centres moved by the offset: the same bilinear filter as
    # upsample_sdf (align_corners=False), in the field's normalised coordinates.
    dev = sdf.device
    xs = (torch.arange(width, device=dev, dtype=torch.float32) + 0.5 - left) / side * 2 - 1
    ys = (torch.arange(height, device=dev, dtype=torch.float32) + 0.5 - top) / side * 2 - 1
    shift = offsets * (2.0 / side)  # (B, 2)
    gx = xs.view(1, 1, width) - shift[:, 0].view(-1, 1, 1)  # (B, 1, W)
    gy = ys.view(1, height, 1) - shift[:, 1].view(-1, 1, 1)  # (B, H, 1)
    grid = torch.stack(torch.broadcast_tensors(gx, gy), dim=-1)  # (B, H, W, 2)
    inside = (grid.abs() <= 1.0).all(dim=-1, keepdim=True).permute(0, 3, 1, 2)
    field = F.grid_sample(sdf.float(), grid, mode="bilinear", padding_mode="border",
                          align_corners=False)  # fmt: skip
    return torch.where(inside, field, -1.0) * units  # (B, 1, H, W)


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

    From the bottom: background, drop shadow (the shape moved by ``shadow_offset``), glow
    (full at the edge, gone ``glow_px`` outside it), outline (the shape grown by
    ``outline_px``), fill. Every edge is a smoothstep over +-0.5 output pixels. Layers whose
    colour is transparent in every frame of the batch are skipped, which changes no pixel.
    Widths beyond the field's reach (``spread_px`` model pixels) are cut off there.
    """
    if sdf.ndim != 4 or sdf.shape[1] != 1:
        raise ValueError(f"an SDF batch is (B, 1, S, S), got {tuple(sdf.shape)}")
    d = field_distance(sdf.float(), height, width, spread_px, None)  # (B, 1, H, W)
    # The field saturates this far out: a glow or outline reaching further would flood the
    # whole background, so both stop just inside it.
    reach = spread_px * min(height, width) / sdf.shape[-1]
    canvas = Canvas(palette.background, height, width)
    if bool((palette.shadow[:, 3] > 0).any()):
        moved = field_distance(sdf.float(), height, width, spread_px, palette.shadow_offset)
        canvas.over(palette.shadow, _smoothstep(moved + 0.5))
    if bool((palette.glow[:, 3] > 0).any()):
        glow_px = palette.glow_px.clamp(1e-3, reach)
        glow = torch.where(d > 0, 1.0, _smoothstep(1.0 + d / glow_px))
        canvas.over(palette.glow, glow)
    if bool((palette.outline[:, 3] > 0).any()):
        outline_px = palette.outline_px.clamp(0.0, max(reach - 1.0, 0.0))
        canvas.over(palette.outline, _smoothstep(d + outline_px + 0.5))
    canvas.over(palette.fill, _smoothstep(d + 0.5))
    return canvas.to_uint8(channels)


def tint_grey(grey: torch.Tensor, palette: Palette, channels: int = 3) -> torch.Tensor:
    """A grey model's upsampled frames ``(B, 1, H, W)`` in [0, 1] as the fill's coverage over
    the background: uint8 ``(B, H, W, channels)``."""
    canvas = Canvas(palette.background, grey.shape[-2], grey.shape[-1])
    canvas.over(palette.fill, grey)
    return canvas.to_uint8(channels)


def over_background(premultiplied: torch.Tensor, palette: Palette, channels: int) -> torch.Tensor:
    """An RGBA model's upsampled premultiplied frames ``(B, 4, H, W)`` over the palette's
    background (which may be transparent): uint8 ``(B, H, W, channels)``."""
    canvas = Canvas(palette.background, premultiplied.shape[-2], premultiplied.shape[-1])
    canvas.over_premultiplied(premultiplied[:, :3], premultiplied[:, 3:4])
    return canvas.to_uint8(channels)


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
