"""Small multiples for a training history: one line chart per metric, each on its own scale
(a VAE's KL and reconstruction loss differ by orders of magnitude), drawn as inline SVG by
the template from the coordinates computed here. Pure: records in, geometry out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from farm.web.training import metrics, x_of

WIDTH, HEIGHT = 320, 140
# Room for the axis labels: left, right, top, bottom.
PAD_L, PAD_R, PAD_T, PAD_B = 52, 10, 10, 24


@dataclass(frozen=True)
class Chart:
    title: str  # the metric, with its phase when the run has several ("frame_vae: loss")
    points: str  # SVG polyline points, in the chart's viewBox
    dots: list[tuple[float, float]]  # the points themselves, for a run of few records
    x_label: str
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    last: float
    count: int


def _scale(lo: float, hi: float) -> tuple[float, float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return 0.0, 1.0
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.05 or 0.5
        return lo - pad, hi + pad
    return lo, hi


def chart(title: str, x_label: str, xy: Sequence[tuple[float, float]]) -> Chart:
    xs = [x for x, _ in xy]
    ys = [y for _, y in xy]
    x0, x1 = _scale(min(xs), max(xs))
    y0, y1 = _scale(min(ys), max(ys))
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            round(PAD_L + (x - x0) / (x1 - x0) * inner_w, 1),
            round(PAD_T + (1 - (y - y0) / (y1 - y0)) * inner_h, 1),
        )

    dots = [at(x, y) for x, y in xy]
    return Chart(
        title=title,
        points=" ".join(f"{px},{py}" for px, py in dots),
        dots=dots if len(dots) <= 40 else [],
        x_label=x_label, x_min=min(xs), x_max=max(xs), y_min=min(ys), y_max=max(ys),
        last=ys[-1], count=len(xy),
    )  # fmt: skip


def charts(records: Sequence[Mapping[str, Any]]) -> list[Chart]:
    """One chart per (phase, metric) that has a finite value somewhere."""
    phases: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        phases.setdefault(str(r.get("phase") or ""), []).append(r)
    out = []
    for phase, rows in phases.items():
        x_label = "step" if any("step" in r for r in rows) else "epoch"
        for name in metrics(rows):
            xy = []
            for r in rows:
                x, y = x_of(r), r.get(name)
                if x is not None and isinstance(y, int | float) and math.isfinite(y):
                    xy.append((x, float(y)))
            if xy:
                out.append(chart(f"{phase}: {name}" if phase else name, x_label, xy))
    return out
