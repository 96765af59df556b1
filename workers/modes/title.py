"""A word morphed letter by letter through a conditional model: ``text: "FARM"``.

Each letter is a storyboard shot (:func:`farm.specs.title_shots` splits the range into holds
and transitions, the same function submission checked it with); a space lengthens the hold
of the letter before it, a pause between words rather than a blank the model never learned.
Every letter is in one style (:func:`title_keys`), so the word reads as one font while the
class morphs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from farm.specs import title_shots
from workers.context import PermanentError
from workers.datasets import DatasetError, load_dataset
from workers.modes.base import RenderJob
from workers.modes.latent_walk import style_latent
from workers.modes.storyboard import render_shots
from workers.render import seed_keys


def render(job: RenderJob, positions: Sequence[int]) -> Iterator[np.ndarray]:
    job.require("vae", "gan")
    if job.num_classes == 0:
        raise PermanentError("a title needs a conditional model (cVAE or cGAN)")
    spec = job.spec
    try:
        plan = title_shots(str(spec["text"]), job.total, spec.get("hold"), spec.get("transition"))
    except ValueError as e:
        raise PermanentError(f"title: {e}") from e
    shots = [
        {"class": job.class_index(c, "text"), "hold": hold, "transition": trans}
        for c, hold, trans in plan
    ]
    return render_shots(job, shots, positions, None, title_keys(job, [s["class"] for s in shots]))


def title_keys(job: RenderJob, classes: Sequence[int]) -> torch.Tensor:
    """One latent per letter ``(K, D)``, all in one style, so the word reads as one font.

    With ``style`` on a glyph model, each letter's latent is the encoder's mean for that
    very glyph, drawn from the font again (the data set is deterministic): a cVAE's latent
    still carries some of the class, so the style's mean over all letters decodes worse
    than each letter's own. Without ``style``, every letter shares the noise of ``seed``.
    """
    style = job.spec.get("style")
    if style is None:
        z = seed_keys([int(job.spec.get("seed", 0))], job.latent_dim)  # (1, D)
        return z.expand(len(classes), -1).clone()
    style_latent(job, 0, str(style), "style")  # refuses a style the model does not have
    return glyph_latents(job, str(style), classes)


def glyph_latents(job: RenderJob, style: str, classes: Sequence[int]) -> torch.Tensor:
    """The encoder's means ``(K, D)`` of ``classes`` drawn in the font ``style``."""
    dataset = str(job.meta.get("dataset", ""))
    if not (dataset == "glyphs" or dataset.startswith("glyphs:")):
        raise PermanentError(f"style: a title in one style needs a glyph model, not {dataset!r}")
    options = {**(job.meta.get("dataset_options") or {}), "fonts": [style], "split": "all"}
    size = int(job.meta["config"]["image_size"])
    try:
        data = load_dataset(dataset, size, options=options, roots=job.roots or None)
    except DatasetError as e:
        raise PermanentError(f"style: {e}") from e
    assert data.labels is not None
    target = str(job.meta["config"].get("target", "pixels"))
    images = data.sdf if target == "sdf" and data.sdf is not None else data.data
    rows = []
    for cls in classes:
        found = (data.labels == cls).nonzero().flatten()
        if found.numel() == 0:
            raise PermanentError(f"style: {style!r} has no glyph for class {cls}")
        rows.append(int(found[0]))
    x = images[rows].to(job.device)  # (K, C, S, S)
    y = data.labels[rows].to(job.device)
    with torch.inference_mode():
        mu, _ = job.model.encode(x, y if job.num_classes else None)  # type: ignore[operator]
    return mu.float().cpu()  # (K, D)
