"""Render modes by name: each module maps frame positions to uint8 frame batches, so the
render stages stay generic."""

from __future__ import annotations

from workers.context import PermanentError
from workers.modes import latent_walk, motion, rollout, sample_grid, storyboard, title, write
from workers.modes.base import Mode, RenderJob

MODES: dict[str, Mode] = {
    "latent_walk": latent_walk.render,
    "storyboard": storyboard.render,
    "title": title.render,
    "rollout": rollout.render,
    "sample_grid": sample_grid.render,
    "motion": motion.render,
    "write": write.render,
}


def get_mode(name: str) -> Mode:
    mode = MODES.get(name)
    if mode is None:
        raise PermanentError(f"unknown render mode {name!r}; known: {', '.join(sorted(MODES))}")
    return mode


__all__ = ["MODES", "Mode", "RenderJob", "get_mode"]
