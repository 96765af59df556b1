"""Unit tests for shading SDFs into colour frames (workers/shading.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from farm.colors import DEFAULT_BACKGROUND, DEFAULT_FILL
from workers.shading import (
    Look,
    Palette,
    disc_sdf,
    edge_width,
    over_background,
    shade_sdf,
    tint_grey,
)

S, R, SPREAD = 64, 20.0, 4.0
GOLD, NAVY = (245, 197, 66), (27, 31, 59)


def _look(**colors: object) -> Look:
    return Look.from_colors({"fill": "#f5c542", "background": "#1b1f3b", **colors})


def _shade(looks: list[Look], h: int = 256, w: int = 256, channels: int = 3) -> torch.Tensor:
    field = disc_sdf(S, R, SPREAD).expand(len(looks), 1, S, S)
    return shade_sdf(field, h, w, Palette.of(looks), spread_px=SPREAD, channels=channels)


@pytest.mark.parametrize("out", [512, 2048])
def test_a_64px_disc_field_has_a_one_pixel_edge_at_any_size(out: int) -> None:
    frames = shade_sdf(disc_sdf(S, R, SPREAD), out, out, Palette.of([Look()]), spread_px=SPREAD)
    coverage = frames[0, :, :, 0].float() / 255.0
    width = edge_width(coverage, 2 * math.pi * R * out / S)
    assert 0.3 < width <= 1.5


def test_the_edge_measure_sees_a_blurred_upsample() -> None:
    """The same disc as 64 px intensities, bicubic to 512: the measure must fail it."""
    c = torch.arange(S * 8, dtype=torch.float32) / 8 + 1 / 16 - S / 2
    fine = ((c.view(-1, 1) ** 2 + c.view(1, -1) ** 2) < R * R).float().view(1, 1, S * 8, S * 8)
    pixels = F.avg_pool2d(fine, 8)  # (1, 1, 64, 64) antialiased coverage
    up = F.interpolate(pixels, size=(512, 512), mode="bicubic", align_corners=False)
    assert edge_width(up[0, 0].clamp(0, 1), 2 * math.pi * R * 8) > 4.0


def test_fill_inside_and_background_outside_exactly() -> None:
    (frame,) = _shade([_look()])
    assert tuple(frame[128, 128].tolist()) == GOLD
    assert tuple(frame[5, 5].tolist()) == NAVY
    assert frame.shape == (256, 256, 3) and frame.dtype == torch.uint8


def test_a_transparent_background_gives_straight_alpha() -> None:
    (frame,) = _shade([_look(background="#00000000")], channels=4)
    assert tuple(frame[128, 128].tolist()) == (*GOLD, 255)
    assert frame[5, 5, 3] == 0
    alpha = frame[..., 3]
    partial = (alpha > 0) & (alpha < 255)
    assert 0 < int(partial.sum()) <= 1.5 * 2 * math.pi * R * 256 / S
    # On the antialiased edge the colour is still the fill's, not darkened towards black.
    assert (frame[partial][:, 0].int() - GOLD[0]).abs().max() <= 2


def test_the_outline_is_a_band_outside_the_edge() -> None:
    (frame,) = _shade([_look(outline="#ffffff", outline_px=6)])
    edge_x = 128 + R * 256 / S  # the disc's edge on the centre row, in output pixels (x = 208)
    assert tuple(frame[128, int(edge_x) + 3].tolist()) == (255, 255, 255)
    assert tuple(frame[128, int(edge_x) + 9].tolist()) == NAVY
    assert tuple(frame[128, int(edge_x) - 3].tolist()) == GOLD


def test_the_shadow_lies_where_its_offset_says() -> None:
    (frame,) = _shade([_look(shadow="#000000", shadow_offset=[12, 0])])
    edge_x = int(128 + R * 256 / S)
    assert tuple(frame[128, edge_x + 6].tolist()) == (0, 0, 0)  # right of the disc: shadow
    assert tuple(frame[128, 256 - edge_x - 6].tolist()) == NAVY  # left: none
    assert tuple(frame[128, 128].tolist()) == GOLD  # beneath the fill


def test_the_glow_fades_outwards() -> None:
    (frame,) = _shade([_look(glow="#ff0000", glow_px=20)])
    edge_x = int(128 + R * 256 / S)
    reds = [int(frame[128, edge_x + d, 0]) for d in (2, 6, 10, 24)]
    assert reds[0] > reds[1] > reds[2] > NAVY[0]
    assert reds[3] == NAVY[0]  # past the field's reach (16 px here): no glow, not a haze


def test_a_wide_frame_keeps_the_shape_round_and_centred() -> None:
    (frame,) = _shade([_look()], h=180, w=320)
    inside = (frame[..., 0] == GOLD[0]).nonzero()
    (y0, x0), (y1, x1) = inside.min(0).values.tolist(), inside.max(0).values.tolist()
    assert abs((y1 - y0) - (x1 - x0)) <= 1
    assert abs((x0 + x1) / 2 - 159.5) <= 1 and abs((y0 + y1) / 2 - 89.5) <= 1


def test_each_frame_is_shaded_alone_whatever_shares_its_batch() -> None:
    looks = [_look(), _look(shadow="#000000", outline="#ffffff"), _look(glow="#ff000080")]
    batch = _shade(looks)
    for i, look in enumerate(looks):
        assert torch.equal(batch[i], _shade([look])[0])


def test_mixing_looks_fades_a_layer_in_its_own_colour() -> None:
    a, b = _look(), _look(outline="#ff0000")
    mid = a.mix(b, 0.5)
    assert mid.outline == pytest.approx((1.0, 0.0, 0.0, 0.5))
    assert mid.fill == a.fill and a.mix(b, 1.0) == b


def test_the_default_look_is_the_control_planes() -> None:
    look = Look()
    assert look.fill == tuple(c / 255 for c in DEFAULT_FILL)
    assert look.background == tuple(c / 255 for c in DEFAULT_BACKGROUND)


def test_a_grey_frame_tints_between_background_and_fill() -> None:
    grey = torch.tensor([0.0, 1.0, 0.5]).view(1, 1, 1, 3)
    (frame,) = tint_grey(grey, Palette.of([_look()]))
    assert tuple(frame[0, 0].tolist()) == NAVY and tuple(frame[0, 1].tolist()) == GOLD
    assert frame[0, 2, 0] == round((NAVY[0] + GOLD[0]) / 2 + 0.0)


def test_an_rgba_frame_over_its_background() -> None:
    premult = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]).view(1, 4, 1, 2)
    (rgb,) = over_background(premult, Palette.of([_look()]), 3)
    assert tuple(rgb[0, 0].tolist()) == (255, 0, 0) and tuple(rgb[0, 1].tolist()) == NAVY


class _ExactFields(torch.nn.Module):
    """A stand-in SDF generator: the class weights' blend of exact glyph fields."""

    def __init__(self, fields: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("fields", fields[:, 0])  # (C, S, S)

    def forward(self, z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bc,chw->bhw", weights, self.fields).unsqueeze(1)  # (B, 1, S, S)


def test_a_title_of_exact_glyph_fields_is_crisp_colour_at_512() -> None:
    from pathlib import Path

    import numpy as np

    from workers.datasets.base import Request
    from workers.datasets.glyphs import load
    from workers.modes import MODES, RenderJob

    ds = load(Request("glyphs", None, S, 0, {"charset": "AFMR", "fonts": ["DejaVuSans"]}, None))
    assert ds.sdf is not None
    first = [int((ds.labels == i).nonzero()[0]) for i in range(len(ds.classes))]
    config = {"latent_dim": 2, "num_classes": 4, "image_size": S, "target": "sdf"}
    meta = {"family": "gan", "config": config, "classes": ds.classes,
            "sdf_spread_px": ds.sdf_spread_px}  # fmt: skip
    spec = {"mode": "title", "text": "FARM", "hold": 3, "transition": 2, "width": 512,
            "height": 512, "batch_size": 5, "colors": {"fill": "#f5c542"}}  # fmt: skip
    job = RenderJob(spec, _ExactFields(ds.sdf[first]), meta, 18, torch.device("cpu"), Path("/x"))
    frames = np.concatenate(list(MODES["title"](job, list(range(18)))))
    assert frames.shape == (18, 512, 512, 3)
    for held in (0, 5, 10, 15):  # F, A, R, M
        coverage = torch.from_numpy(frames[held, ..., 1].astype(np.float32)) / GOLD[1]
        inside = coverage > 0.5
        crossings = (inside[1:] != inside[:-1]).sum() + (inside[:, 1:] != inside[:, :-1]).sum()
        length = float(crossings) * math.pi / 4  # Cauchy-Crofton: the edge's length
        assert edge_width(coverage, length) <= 1.5
