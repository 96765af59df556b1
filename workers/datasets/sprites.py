"""``sprites``: procedural colour shapes in the manner of dSprites (Matthey et al. 2017), on a
transparent canvas, with every generating factor recorded.

Each sprite is one flat-coloured shape (square, ellipse, triangle, star, heart) with a
colour, a scale, a rotation and a position drawn independently from one generator seeded by
``seed`` and the split, so the same seed always gives the same sprites and the held-out split
never repeats a training sprite. Because the factors are known, a judge can check that a
latent walk moves only the factor it claims to move. Alpha is the exact area coverage of the
outline at S, ``sdf`` the exact signed distance to the same outline, and RGB the colour
wherever alpha > 0 (straight alpha).
"""

from __future__ import annotations

import colorsys
import logging
import math
import time

import numpy as np
import torch

from workers.datasets.base import SPLITS, Dataset, Request, convert_channels
from workers.sdf import DEFAULT_SPREAD_PX, polygon_sdf

log = logging.getLogger(__name__)

SHAPES = ("square", "ellipse", "triangle", "star", "heart")
# Rotational symmetry orders: a rotation is drawn in [0, 2*pi/order), so the recorded angle
# is the one the pixels show (a square turned by 90 degrees is the same square).
SYMMETRY = {"square": 4, "ellipse": 2, "triangle": 3, "star": 5, "heart": 1}
DEFAULT_COUNT = 3000
SCALE = (0.15, 0.3)  # circumradius / canvas size: shapes span 30-60% of the canvas
SATURATION, VALUE = (0.5, 1.0), (0.6, 1.0)  # HSV: vivid enough to tell from the background
OPTIONS = ("channels", "target", "count", "split", "sdf_spread_px")


def _regular(n: int, phase: float = math.pi / 2) -> np.ndarray:
    t = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return _regular(2 * points) * radii[:, None]


def _heart(n: int = 64) -> np.ndarray:
    t = 2 * math.pi * np.arange(n) / n
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    pts = np.stack([x, y], axis=1)
    pts -= (pts.max(axis=0) + pts.min(axis=0)) / 2  # centre the bounding box
    return pts / np.linalg.norm(pts, axis=1).max()


# Unit outlines, circumradius 1, y up, counter-clockwise.
OUTLINES = {
    "square": _regular(4, math.pi / 4),
    "ellipse": _regular(64) * np.array([1.0, 0.6]),
    "triangle": _regular(3),
    "star": _star(),
    "heart": _heart(),
}


def sample_factors(count: int, seed: int, split: str) -> dict[str, np.ndarray]:
    """The factors of ``count`` sprites: shape (index into :data:`SHAPES`), colour (RGB in
    [0, 1]), scale (circumradius / canvas), rotation (radians, counter-clockwise, within the
    shape's symmetry), x and y (the centre, as fractions of the canvas, y down)."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    shape = rng.integers(len(SHAPES), size=count)
    scale = rng.uniform(*SCALE, size=count)
    period = np.array([2 * math.pi / SYMMETRY[s] for s in SHAPES])[shape]
    rotation = rng.uniform(size=count) * period
    x = scale + rng.uniform(size=count) * (1 - 2 * scale)  # the circumcircle stays inside
    y = scale + rng.uniform(size=count) * (1 - 2 * scale)
    hsv = np.stack(
        [
            rng.uniform(size=count),
            rng.uniform(*SATURATION, size=count),
            rng.uniform(*VALUE, size=count),
        ],
        axis=1,
    )
    colour = np.array([colorsys.hsv_to_rgb(*v) for v in hsv]).reshape(count, 3)
    return {"shape": shape, "colour": colour, "scale": scale, "rotation": rotation, "x": x, "y": y}


def outline(factors: dict[str, np.ndarray], i: int, size: int) -> np.ndarray:
    """Sprite ``i``'s outline ``(P, 2)`` as (x, y) in output pixels (pixel j spans [j, j + 1)),
    y down: the unit outline scaled, rotated counter-clockwise and moved to its centre."""
    rotation, scale = float(factors["rotation"][i]), float(factors["scale"][i])
    c, s = math.cos(rotation), math.sin(rotation)
    unit = OUTLINES[SHAPES[int(factors["shape"][i])]] @ np.array([[c, s], [-s, c]])
    x, y = float(factors["x"][i]), float(factors["y"][i])
    return np.stack([x + scale * unit[:, 0], y - scale * unit[:, 1]], axis=1) * size


def draw_coverage(outlines: list[np.ndarray], size: int) -> np.ndarray:
    """The exact area coverage ``(N, S, S)`` float32 of each outline (output pixels, y down).

    matplotlib's Agg rasteriser computes each pixel's covered area analytically (256 levels),
    so no supersampling is needed. Pillow's polygon fill was the first choice, but it rounds
    vertices to its grid and fills edge pixels inclusively (a 1,208 px^2 square fills 1,271
    pixels; +3 % area at 4x supersampling), which would disagree with the factors and the
    field. Sprites are drawn side by side on one canvas per batch: the call overhead is then
    tens of microseconds a sprite, and no shape crosses into its neighbour's tile because each
    circumcircle lies inside its canvas.
    """
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.path import Path as MplPath
    from matplotlib.transforms import IdentityTransform

    out = np.empty((len(outlines), size, size), np.float32)
    cols, batch = 16, 256
    for start in range(0, len(outlines), batch):
        chunk = outlines[start : start + batch]
        rows = math.ceil(len(chunk) / cols)
        renderer = RendererAgg(cols * size, rows * size, 72)
        gc = renderer.new_gc()
        gc.set_antialiased(True)
        gc.set_linewidth(0.0)  # fill only: no stroke to fatten the shape
        gc.set_snap(False)
        for j, pts in enumerate(chunk):
            v = pts + np.array([(j % cols) * size, (j // cols) * size], dtype=np.float64)
            v[:, 1] = rows * size - v[:, 1]  # Agg's y is up
            path = MplPath(np.vstack([v, v[:1]]), closed=True)
            path.should_simplify = False
            renderer.draw_path(gc, path, IdentityTransform(), (1.0, 1.0, 1.0, 1.0))
        alpha = np.asarray(renderer.buffer_rgba())[..., 3]  # (rows * S, cols * S)
        tiles = alpha.reshape(rows, size, cols, size).transpose(0, 2, 1, 3)
        out[start : start + len(chunk)] = tiles.reshape(-1, size, size)[: len(chunk)] / 255.0
    return out


def draw_field(pts: np.ndarray, size: int, spread_px: float) -> np.ndarray:
    """The outline's exact signed distance field ``(S, S)`` (:func:`workers.sdf.polygon_sdf`),
    computed in a window around it: beyond ``spread_px`` the field is -1 anyway."""
    margin = math.ceil(spread_px) + 1
    x0, y0 = (max(0, math.floor(v) - margin) for v in pts.min(axis=0))
    x1, y1 = (min(size, math.ceil(v) + margin) for v in pts.max(axis=0))
    field = np.full((size, size), -1.0, np.float32)
    field[y0:y1, x0:x1] = polygon_sdf(pts, (y1 - y0, x1 - x0), spread_px, origin=(y0, x0))
    return field


def load(req: Request) -> Dataset:
    """Options: ``count`` (default 3,000), ``split`` ("train" or "heldout": another stream
    of the same seed), ``target`` ("sdf", the default, or "pixels"), ``sdf_spread_px``,
    ``channels`` (4, the default: straight RGBA; 3 or 1 composite over black)."""
    req.check_options(OPTIONS)
    started = time.perf_counter()
    size = req.shape_size()
    count = req.integer("count", DEFAULT_COUNT, 1, 200_000)
    split = req.choice("split", SPLITS, "train")
    spread = req.number("sdf_spread_px", DEFAULT_SPREAD_PX, 0.5, 64.0)
    want_sdf = req.choice("target", ("sdf", "pixels"), "sdf") == "sdf"
    factors = sample_factors(count, req.seed, split)
    outlines = [outline(factors, i, size) for i in range(count)]
    alpha = draw_coverage(outlines, size)  # (N, S, S)
    fields = np.stack([draw_field(pts, size, spread) for pts in outlines]) if want_sdf else None
    colour = factors["colour"].astype(np.float32)[:, :, None, None]  # (N, 3, 1, 1)
    rgb = np.where(alpha[:, None] > 0, colour, 0.0).astype(np.float32)  # (N, 3, S, S)
    data = torch.from_numpy(np.concatenate([rgb, alpha[:, None]], axis=1))  # (N, 4, S, S)
    channels = req.channels()
    if channels is not None:
        data = convert_channels(data, channels).contiguous()
    log.info(
        "%s: %d sprites at %d px in %.1f s", req.name, count, size, time.perf_counter() - started
    )
    return Dataset(
        req.name,
        data,
        torch.from_numpy(factors["shape"].astype(np.int64)),
        classes=list(SHAPES),
        sdf=torch.from_numpy(fields).unsqueeze(1) if fields is not None else None,
        sdf_spread_px=spread,
        factors={
            key: torch.from_numpy(v.astype(np.int64 if key == "shape" else np.float32))
            for key, v in factors.items()
        },
        meta={"split": split},
    )
