"""Unit tests for the sprites data set: deterministic by seed, held-out by split, and
factors that describe the pixels actually drawn."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.path import Path as MplPath

from workers.datasets import Dataset, DatasetError, load_dataset
from workers.datasets.sprites import OUTLINES, SHAPES, SYMMETRY, outline
from workers.sdf import sdf_from_mask


def sprites(size: int = 32, count: int = 60, seed: int = 0, **options: Any) -> Dataset:
    return load_dataset("sprites", size, seed=seed, options={"count": count, **options})


def test_sprites_are_deterministic_by_seed_and_split() -> None:
    a, b = sprites(seed=3), sprites(seed=3)
    assert torch.equal(a.data, b.data)
    assert a.sdf is not None and b.sdf is not None and torch.equal(a.sdf, b.sdf)
    assert a.factors is not None and b.factors is not None
    assert all(torch.equal(a.factors[k], b.factors[k]) for k in a.factors)
    other = sprites(seed=4)
    assert not torch.equal(a.data, other.data)
    held = sprites(seed=3, split="heldout")
    assert held.factors is not None and held.meta["split"] == "heldout"
    assert not torch.isin(held.factors["x"], a.factors["x"]).any()  # no sprite repeats


@pytest.mark.parametrize("size", [16, 32, 64])
def test_sprites_are_straight_rgba_with_labels_factors_and_fields(size: int) -> None:
    d = sprites(size, count=25)
    assert d.data.shape == (25, 4, size, size) and d.data.dtype == torch.float32
    assert d.channels == 4 and d.has_shapes and not d.is_sequences
    assert d.sdf is not None and d.sdf.shape == (25, 1, size, size)
    assert d.classes == list(SHAPES)
    assert d.labels is not None and d.labels.dtype == torch.int64
    assert d.factors is not None
    assert set(d.factors) == {"shape", "colour", "scale", "rotation", "x", "y"}
    assert torch.equal(d.factors["shape"], d.labels)
    assert d.factors["colour"].shape == (25, 3)
    assert all(d.factors[k].shape == (25,) for k in ("scale", "rotation", "x", "y"))
    assert float(d.data.min()) >= 0.0 and float(d.data.max()) <= 1.0
    transparent = d.data[:, 3] == 0
    assert torch.all(d.data[:, :3][transparent.unsqueeze(1).expand(-1, 3, -1, -1)] == 0)


def test_the_colour_factor_is_the_colour_of_the_opaque_pixels() -> None:
    d = sprites(32, count=40)
    assert d.factors is not None
    for i in range(40):
        opaque = d.data[i, 3] == 1.0
        assert opaque.sum() > 4
        mean = d.data[i, :3][:, opaque].mean(dim=1)
        assert torch.allclose(mean, d.factors["colour"][i], atol=1e-6)


def test_position_scale_and_rotation_factors_match_the_drawn_alpha() -> None:
    size = 64
    d = sprites(size, count=80)
    f = d.factors
    assert f is not None
    c = torch.arange(size) + 0.5
    for i in range(80):
        shape = SHAPES[int(f["shape"][i])]
        alpha = d.data[i, 3].double()
        area = float(alpha.sum())
        unit = OUTLINES[shape]
        x, y = unit[:, 0], unit[:, 1]
        unit_area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
        assert area == pytest.approx(unit_area * (float(f["scale"][i]) * size) ** 2, rel=0.03)
        cx = float((alpha.sum(0) * c).sum()) / area
        cy = float((alpha.sum(1) * c).sum()) / area
        if shape in ("square", "ellipse", "star"):  # centroid at the circumcentre
            assert cx == pytest.approx(float(f["x"][i]) * size, abs=0.1)
            assert cy == pytest.approx(float(f["y"][i]) * size, abs=0.1)
        if shape == "ellipse":  # the long axis points along the rotation (y up)
            yy, xx = torch.meshgrid(c, c, indexing="ij")
            dx, dy = xx - cx, -(yy - cy)
            cov = [float((alpha * a * b).sum()) for a, b in ((dx, dx), (dy, dy), (dx, dy))]
            angle = 0.5 * math.atan2(2 * cov[2], cov[0] - cov[1]) % math.pi
            rot = float(f["rotation"][i])
            assert min(abs(angle - rot), math.pi - abs(angle - rot)) < 0.05
        assert 0 <= float(f["rotation"][i]) < 2 * math.pi / SYMMETRY[shape]


def test_the_analytic_field_agrees_with_the_distance_transform_of_the_drawing() -> None:
    size, spread, k = 32, 4.0, 8
    d = sprites(size, count=10)
    assert d.sdf is not None and d.factors is not None
    c = (np.arange(size * k) + 0.5) / k
    for i in range(10):
        pts = outline({key: v.numpy() for key, v in d.factors.items()}, i, size)
        inside = MplPath(pts).contains_points(np.stack(np.meshgrid(c, c), -1).reshape(-1, 2))
        raster = sdf_from_mask(inside.reshape(size * k, size * k), size, spread)
        err = np.abs(d.sdf[i, 0].numpy() - raster) * spread  # output pixels
        # The raster's own error: under half a fine pixel along edges, up to two near sharp
        # corners (a heart's cusp, a triangle's tips), where the nearest fine pixel centre
        # sits well inside the corner.
        band = np.abs(raster) < 1
        assert np.median(err[band]) < 0.5 / k
        assert err.max() < 2.0 / k


def test_channels_composite_over_black_and_target_pixels_skips_the_field() -> None:
    rgba = sprites(16, count=5)
    rgb = sprites(16, count=5, channels=3)
    grey = sprites(16, count=5, channels=1, target="pixels")
    assert rgb.data.shape == (5, 3, 16, 16) and grey.data.shape == (5, 1, 16, 16)
    assert torch.allclose(rgb.data, rgba.data[:, :3] * rgba.data[:, 3:])
    assert grey.sdf is None and rgb.sdf is not None


def test_sprite_options_are_checked() -> None:
    with pytest.raises(DatasetError, match="count must be an integer"):
        sprites(count=0)
    with pytest.raises(DatasetError, match="split must be one of"):
        sprites(split="all")
    with pytest.raises(DatasetError, match="unknown option"):
        sprites(colours=3)
    assert len(load_dataset("sprites", 16).data) == 3000  # the default count
