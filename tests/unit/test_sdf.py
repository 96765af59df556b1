"""Unit tests for signed distance fields (workers.sdf): exact against analytic shapes, sign
conventions, and edges that stay one output pixel wide at any magnification."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from workers.sdf import (
    DEFAULT_SPREAD_PX,
    coverage_from_sdf,
    mask_from_sdf,
    polygon_sdf,
    sdf_from_mask,
    supersample_factor,
)


def disc_mask(size: int, k: int, cx: float, cy: float, r: float) -> np.ndarray:
    """A disc (centre and radius in output pixels) drawn at k x: a high-res pixel is inside
    when its centre is."""
    c = (np.arange(size * k) + 0.5) / k
    return (c[None, :] - cx) ** 2 + (c[:, None] - cy) ** 2 < r * r  # (y, x)


def disc_distance(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    c = np.arange(size) + 0.5
    return r - np.hypot(c[None, :] - cx, c[:, None] - cy)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_a_discs_field_matches_the_analytic_distance_within_a_tenth_of_a_pixel(size: int) -> None:
    spread, k = 4.0, supersample_factor(size)
    cx, cy, r = 0.48 * size, 0.52 * size, 0.29 * size
    got = sdf_from_mask(disc_mask(size, k, cx, cy, r), size, spread) * spread  # output px
    want = disc_distance(size, cx, cy, r)
    band = np.abs(want) < spread - 0.2  # where the field is not clamped
    assert band.sum() > 5 * size
    assert np.abs(got[band] - want[band]).max() < 0.1
    assert np.abs(got[band] - want[band]).max() < 0.5 / k + 0.01  # the documented bound
    assert np.all(got[want > spread + 0.2] == spread)
    assert np.all(got[want < -spread - 0.2] == -spread)


def test_signs_positive_inside_negative_outside_and_the_canvas_border_is_outside() -> None:
    field = sdf_from_mask(disc_mask(16, 8, 8.0, 8.0, 5.0), 16, 2.0)
    assert field.dtype == np.float32
    assert field[8, 8] == 1.0 and field[0, 0] == -1.0
    assert np.all(sdf_from_mask(np.zeros((64, 64), bool), 16, 4.0) == -1.0)
    full = sdf_from_mask(np.ones((64, 64), bool), 16, 4.0) * 4.0
    assert full[0, 8] == pytest.approx(0.5)  # a pixel centre half a pixel from the border
    assert full[8, 8] == pytest.approx(4.0)  # clamped: more than spread from every border


def test_the_field_falls_monotonically_along_a_ray_out_of_a_disc() -> None:
    field = sdf_from_mask(disc_mask(32, 8, 16.0, 16.0, 7.0), 32, 8.0)
    ray = field[16, 16:]
    assert np.all(np.diff(ray) <= 1e-6)
    assert ray[0] > 0 > ray[-1]


def _full_edt_reference(mask: np.ndarray, out: int, spread: float) -> np.ndarray:
    """The definition, with no window: the transform of the whole (padded) canvas."""
    k = mask.shape[0] // out
    padded = np.pad(mask, 1)
    field = np.where(
        padded,
        ndimage.distance_transform_edt(padded) - 0.5,
        0.5 - ndimage.distance_transform_edt(~padded),
    )[1:-1, 1:-1]
    centres = (np.arange(out) + 0.5) * k - 0.5
    i0 = np.floor(centres).astype(int)
    w = centres - i0
    i1 = i0 + (w > 0)
    rows = field[i0] * (1 - w)[:, None] + field[i1] * w[:, None]
    sampled = rows[:, i0] * (1 - w) + rows[:, i1] * w
    return np.clip(sampled / (k * spread), -1, 1)


@pytest.mark.parametrize(("out", "k"), [(16, 8), (24, 5), (32, 4)])
def test_the_windowed_transform_equals_the_whole_canvas_transform(out: int, k: int) -> None:
    rng = np.random.default_rng(0)
    blob = ndimage.gaussian_filter(rng.random((out * k, out * k)), sigma=2 * k) > 0.5
    blob[:, : out * k // 2] = False  # keep it off one side so the window matters
    got = sdf_from_mask(blob, out, 3.0)
    np.testing.assert_allclose(got, _full_edt_reference(blob, out, 3.0), atol=1e-6)


def test_sdf_from_mask_refuses_sizes_that_are_not_a_multiple() -> None:
    with pytest.raises(ValueError, match="multiple"):
        sdf_from_mask(np.zeros((30, 30), bool), 16, 4.0)
    with pytest.raises(ValueError, match="spread_px"):
        sdf_from_mask(np.zeros((32, 32), bool), 16, 0.0)


def test_a_polygons_field_is_its_exact_distance_and_agrees_with_its_rasters() -> None:
    size, spread = 32, 4.0
    square = np.array([[8.0, 8.0], [24.0, 8.0], [24.0, 20.0], [8.0, 20.0]])
    field = polygon_sdf(square, size, spread) * spread
    assert field[17, 16] == pytest.approx(2.5)  # row 17's centre is 2.5 px above the bottom
    assert field[8, 16] == pytest.approx(0.5)  # row 8's centre is 0.5 px inside the top
    assert field[7, 16] == pytest.approx(-0.5)
    assert field[4, 4] == pytest.approx(-spread)  # clamped
    # The distance transform of the square drawn at 8x approximates the same field.
    k = 8
    c = (np.arange(size * k) + 0.5) / k
    raster = (c[None, :] > 8) & (c[None, :] < 24) & (c[:, None] > 8) & (c[:, None] < 20)
    assert np.abs(sdf_from_mask(raster, size, spread) * spread - field).max() < 0.5 / k + 1e-6


def test_a_star_polygon_windowed_with_an_origin_matches_the_whole_canvas() -> None:
    t = math.pi / 2 + 2 * math.pi * np.arange(10) / 10
    radii = np.where(np.arange(10) % 2 == 0, 9.0, 4.0)
    star = np.stack([16 + radii * np.cos(t), 15 + radii * np.sin(t)], axis=1)
    whole = polygon_sdf(star, 32, 3.0)
    window = polygon_sdf(star, (20, 24), 3.0, origin=(5, 4))
    np.testing.assert_array_equal(window, whole[5:25, 4:28])
    assert whole[15, 16] == 1.0 and whole[0, 0] == -1.0


def test_a_discs_coverage_magnified_to_4k_keeps_an_edge_about_one_pixel_wide() -> None:
    size, out, spread, (cx, cy, r) = 16, 2160, DEFAULT_SPREAD_PX, (8.2, 7.6, 5.1)
    field = torch.from_numpy(sdf_from_mask(disc_mask(size, 8, cx, cy, r), size, spread))
    cov = coverage_from_sdf(field[None, None], out, out, 1.0, spread_px=spread)
    assert cov.shape == (1, 1, out, out)
    edge = ((cov > 0.1) & (cov < 0.9)).sum().item()
    perimeter = 2 * math.pi * r * out / size
    assert 0.3 < edge / perimeter <= 2.5
    # The area is the disc's, and an intensity image upsampled the same way is a blur.
    assert cov.sum().item() == pytest.approx(math.pi * (r * out / size) ** 2, rel=0.02)
    intensity = torch.from_numpy(disc_mask(size, 8, cx, cy, r).astype(np.float32))
    blurred = torch.nn.functional.avg_pool2d(intensity[None, None], 8)
    blurred = torch.nn.functional.interpolate(blurred, size=(out, out), mode="bilinear")
    blurry_edge = ((blurred > 0.1) & (blurred < 0.9)).sum().item()
    assert blurry_edge > 20 * edge


def test_coverage_is_batched_deterministic_and_outside_autograd() -> None:
    rng = np.random.default_rng(1)
    fields = np.stack(
        [
            sdf_from_mask(disc_mask(16, 4, *rng.uniform(5, 11, 2), rng.uniform(2, 5)), 16, 4.0)
            for _ in range(3)
        ]
    )
    sdf = torch.from_numpy(fields).unsqueeze(1).requires_grad_(True)  # (3, 1, 16, 16)
    a = coverage_from_sdf(sdf, 64, 48, edge_px=1.5)
    assert a.shape == (3, 1, 64, 48) and not a.requires_grad
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, coverage_from_sdf(sdf, 64, 48, edge_px=1.5))
    assert torch.equal(coverage_from_sdf(sdf[1], 64, 48, edge_px=1.5), a[1])
    mask = mask_from_sdf(sdf, 64, 64)
    assert mask.dtype == torch.bool and mask.shape == (3, 1, 64, 64)


def test_supersample_factor_keeps_the_error_under_a_tenth_of_a_pixel_up_to_64_px() -> None:
    assert [supersample_factor(s) for s in (8, 16, 32, 64, 128, 256)] == [8, 8, 8, 8, 4, 2]
    assert all(0.5 / supersample_factor(s) < 0.1 for s in range(1, 65))
