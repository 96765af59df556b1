"""A word morphed letter by letter through a conditional model: ``text: "FARM"``.

Each letter is a storyboard shot (:func:`farm.specs.title_shots` splits the range into holds
and transitions, the same function submission checked it with); a space lengthens the hold
of the letter before it, a pause between words rather than a blank the model never learned.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from farm.specs import title_shots
from workers.context import PermanentError
from workers.modes.base import RenderJob
from workers.modes.storyboard import render_shots


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
    return render_shots(job, shots, positions, None)
