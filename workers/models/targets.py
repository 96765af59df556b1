"""What a decoder learns to output: ``pixels`` or ``sdf`` (a signed distance field).

``pixels``: values in [0, 1] through a sigmoid, the reconstruction a Bernoulli (BCE) term on
the logits, as the models always did. ``sdf``: one channel in [-1, 1] through a tanh, in the
convention of :mod:`workers.sdf` (positive inside, distance over ``sdf_spread_px``,
clamped); a render shades it into an edge one output pixel wide at any size.

The sdf reconstruction is L1, a Laplace likelihood with a fixed scale, weighted up near the
edge. L1 rather than MSE: where a batch's shapes disagree about an edge, MSE's optimum is the
mean of the fields, whose zero crossing wanders and whose slope flattens (a soft edge once
shaded); L1 takes the median, which keeps a field's slope, and it is the loss DeepSDF (Park
et al. 2019) trains clamped fields with. The clamped far field (|d| = 1) is easy and most of
the canvas; the edge weight keeps those pixels from drowning the few that place the edge.
bench/sdf_loss.py measures both choices (a cVAE on 8 glyphs from 8 fonts at 32 px, 30 epochs,
seed 0, on the CPU): the inside masks of the reconstructions overlap the true ones with an
IoU of 0.72 for L1 with the edge weight, 0.68 for L2 with it and 0.65 for L1 without it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workers.sdf import DEFAULT_SPREAD_PX, coverage_from_sdf

TARGETS = ("pixels", "sdf")
# Laplace scale of the sdf likelihood, in field units: an error of 0.1 (0.4 px at the
# default spread) costs one nat, putting a field's reconstruction on the scale of a grey
# image's BCE, so the KL weight tuned for pixels still fits.
SDF_SCALE = 0.1
# Extra weight at the edge (|d| = 0), falling linearly to none at the clamp (|d| = 1).
SDF_EDGE_WEIGHT = 2.0


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    return target


def activate(raw: torch.Tensor, target: str) -> torch.Tensor:
    """The decoder's output from its last layer's raw values: sigmoid (pixels) or tanh."""
    return torch.tanh(raw) if target == "sdf" else torch.sigmoid(raw)


def to_unit_range(x: torch.Tensor, target: str) -> torch.Tensor:
    """Data in [-1, 1] for a discriminator: pixels are rescaled, a field already is."""
    return x if target == "sdf" else x * 2.0 - 1.0


def reconstruction(
    raw: torch.Tensor,
    x: torch.Tensor,
    target: str,
    *,
    edge_weight: float = SDF_EDGE_WEIGHT,
    norm: str = "l1",
) -> torch.Tensor:
    """Negative log-likelihood of ``x`` under the decoder's raw output ``raw`` (both
    ``(B, C, S, S)``), summed over the batch and pixels (nats). ``edge_weight`` and ``norm``
    ("l1", or "l2": a Gaussian of sigma ``SDF_SCALE``) are for an sdf, and are parameters so
    bench/sdf_loss.py can compare the choices the models make."""
    if target == "sdf":
        weight = 1.0 + edge_weight * (1.0 - x.abs()).clamp(min=0.0)
        err = torch.tanh(raw) - x
        if norm == "l2":
            return (weight * err.square()).sum() / (2 * SDF_SCALE**2)
        return (weight * err.abs()).sum() / SDF_SCALE
    return F.binary_cross_entropy_with_logits(raw, x, reduction="sum")


def to_pixels(
    output: torch.Tensor,
    target: str,
    spread_px: float = DEFAULT_SPREAD_PX,
    size: int | None = None,
) -> torch.Tensor:
    """A decoder's output ``(B, C, S, S)`` as pixel values in [0, 1] for previews and
    metrics: pixels as they are; a field as its antialiased coverage ``(B, 1, size, size)``
    (:func:`workers.sdf.coverage_from_sdf`, ``size`` defaulting to S)."""
    if target != "sdf":
        return output
    side = size or int(output.shape[-1])
    return coverage_from_sdf(output, side, side, spread_px=spread_px)
