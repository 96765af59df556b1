"""Unit tests for storyboards, GAN walks, class weights and contact sheets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from workers.context import PermanentError
from workers.models.gan import GANConfig, Generator
from workers.models.vae import ConvVAE, VAEConfig
from workers.modes import MODES, RenderJob
from workers.render import gan_walk, render_gan_frames, sample_grid, seed_keys
from workers.shots import (
    storyboard_class_weights,
    storyboard_frame,
    storyboard_keyframes,
    storyboard_latents,
    storyboard_length,
)

SHOTS = [
    {"class": 3, "hold": 2, "transition": 3},
    {"class": 8, "hold": 1, "transition": 0},
    {"class": 1, "hold": 2, "transition": 4},
]


def test_length_and_frames() -> None:
    # 2 + 3 + 1 + 0 + 2 (the last transition is ignored)
    assert storyboard_length(SHOTS) == 8
    frames = [storyboard_frame(SHOTS, p) for p in range(8)]
    assert frames[0] == frames[1] == (3, 3, 0.0)
    assert [f[:2] for f in frames[2:5]] == [(3, 8)] * 3
    ts = [f[2] for f in frames[2:5]]
    assert 0.0 < ts[0] < ts[1] < ts[2] < 1.0
    assert ts[1] == pytest.approx(0.5)
    assert frames[5] == (8, 8, 0.0)
    assert frames[6] == frames[7] == (1, 1, 0.0)
    with pytest.raises(ValueError, match="outside"):
        storyboard_frame(SHOTS, 8)
    assert storyboard_keyframes(SHOTS) == [0, 1, 5, 6, 7]


@pytest.mark.parametrize(
    ("shots", "match"),
    [
        ([], "at least one"),
        ([{"class": 10, "hold": 1}], "'class' must be < 10"),
        ([{"class": 1, "hold": 0}], "shot 0: 'hold'"),
        ([{"class": 1, "hold": 1}, {"class": 2, "hold": 1, "transition": -1}], "shot 1"),
        ([{"class": 1, "hold": 1, "fade": 2}], "unknown field"),
    ],
)
def test_bad_storyboards(shots: list[dict[str, int]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        storyboard_frame(shots, 0)


def test_chunked_storyboard_equals_whole() -> None:
    total = storyboard_length(SHOTS)
    whole_w = storyboard_class_weights(SHOTS, range(total))
    whole_z = storyboard_latents(SHOTS, range(total), 6, seed=4)
    chunks = [range(0, 3), range(3, 5), range(5, total)]
    assert torch.equal(torch.cat([storyboard_class_weights(SHOTS, c) for c in chunks]), whole_w)
    assert torch.equal(
        torch.cat([storyboard_latents(SHOTS, c, 6, seed=4) for c in chunks]), whole_z
    )
    assert torch.allclose(whole_w.sum(dim=1), torch.ones(total))
    # Held frames use exactly the shot's seed latent and a one-hot class.
    assert torch.equal(whole_z[0], seed_keys([4], 6)[0])
    assert torch.equal(whole_z[5], seed_keys([5], 6)[0])
    assert whole_w[5, 8] == 1.0


def test_gan_walk_fixed_and_morphing_classes() -> None:
    z, w = gan_walk([1, 2, 3], range(9), 9, 5, classes=[4])
    assert z.shape == (9, 5)
    assert w is not None
    assert torch.equal(w.argmax(dim=1), torch.full((9,), 4))
    z2, w2 = gan_walk([1, 2, 3], range(9), 9, 5, classes=[0, 5, 9])
    assert torch.equal(z, z2)
    assert w2 is not None
    assert w2[0, 0] == 1.0 and w2[4, 5] == 1.0 and w2[8, 9] == 1.0
    assert 0.0 < float(w2[2, 5]) < 1.0
    parts = [gan_walk([1, 2, 3], c, 9, 5, classes=[0, 5, 9])[1] for c in (range(4), range(4, 9))]
    chunked = torch.cat([p for p in parts if p is not None])
    assert torch.equal(chunked, w2)
    assert torch.equal(z[0], seed_keys([1], 5)[0])
    with pytest.raises(ValueError, match="one class or one per seed"):
        gan_walk([1, 2, 3], range(3), 3, 5, classes=[0, 1])


def test_render_gan_frames_batches_and_chunks() -> None:
    torch.manual_seed(0)
    g = Generator(GANConfig(channels=4, d_channels=4, latent_dim=5)).eval()
    z, w = gan_walk([1, 2], range(7), 7, 5, classes=[2, 7])
    assert w is not None
    batches = list(render_gan_frames(g, z, w, 24, 20, batch_size=3))
    assert [b.shape for b in batches] == [(3, 20, 24), (3, 20, 24), (1, 20, 24)]
    assert all(b.dtype == np.uint8 for b in batches)
    whole = np.concatenate(batches)
    single = np.concatenate(list(render_gan_frames(g, z, w, 24, 20, batch_size=7)))
    assert np.array_equal(whole, single)
    with pytest.raises(ValueError, match="labels"):
        list(render_gan_frames(g, z, w[:3], 24, 20))


def test_sample_grid_layout() -> None:
    imgs = np.stack([np.full((2, 3), i + 1, np.uint8) for i in range(5)])
    sheet = sample_grid(imgs, 2, pad=1)
    assert sheet.shape == (3 * 2 + 2, 2 * 3 + 1)
    assert sheet.dtype == np.uint8
    assert sheet[0, 0] == 1 and sheet[0, 4] == 2 and sheet[3, 0] == 3 and sheet[6, 0] == 5
    assert sheet[2, 0] == 0  # padding row
    assert sheet[6, 4] == 0  # the missing sixth tile is filled
    assert sample_grid(imgs, 10, pad=0).shape == (2, 15)
    with pytest.raises(ValueError):
        sample_grid(imgs[0], 2)


# -- modes through a RenderJob: class names, per-shot colours, titles, font walks ----------


def _cvae_job(spec: dict[str, Any], total: int, **meta: Any) -> RenderJob:
    from pathlib import Path

    torch.manual_seed(0)
    cfg = VAEConfig(latent_dim=4, channels=4, num_classes=3)
    model = ConvVAE(cfg).eval()
    full = {"width": 32, "height": 32, "batch_size": 3, "seed": 0, **spec}
    info = {"family": "vae", "config": cfg.to_dict(), "classes": ["A", "B", "C"], **meta}
    return RenderJob(full, model, info, total, torch.device("cpu"), Path("/nonexistent"))


def _all(job: RenderJob, positions: list[int]) -> np.ndarray:
    return np.concatenate(list(MODES[str(job.spec["mode"])](job, positions)))


NAMED = [{"class": "B", "hold": 2, "transition": 3}, {"class": "C", "hold": 2}]


def test_a_storyboard_names_its_classes() -> None:
    by_name = _all(_cvae_job({"mode": "storyboard", "storyboard": NAMED}, 7), list(range(7)))
    by_index = [{**s, "class": i} for s, i in zip(NAMED, (1, 2), strict=True)]
    job = _cvae_job({"mode": "storyboard", "storyboard": by_index}, 7)
    assert by_name.shape == (7, 32, 32) and np.array_equal(by_name, _all(job, list(range(7))))
    with pytest.raises(PermanentError, match="'Z'"):
        _all(_cvae_job({"mode": "storyboard", "storyboard": [{"class": "Z", "hold": 1}]}, 1), [0])


def test_shot_colours_morph_over_the_transition_in_any_chunking() -> None:
    shots = [
        {**NAMED[0], "colors": {"fill": "#ff0000"}},
        {**NAMED[1], "colors": {"fill": "#0000ff"}},
    ]
    job = _cvae_job(
        {"mode": "storyboard", "storyboard": shots, "colors": {"background": "#000"}}, 7
    )
    frames = _all(job, list(range(7)))
    assert frames.shape == (7, 32, 32, 3)
    assert frames[0, ..., 2].max() == 0 and frames[0, ..., 0].max() > 0  # red on black
    assert frames[6, ..., 0].max() == 0 and frames[6, ..., 2].max() > 0  # blue
    assert frames[3, ..., 0].max() > 0 and frames[3, ..., 2].max() > 0  # mid-morph: both
    chunked = np.concatenate([_all(job, [0, 1, 2]), _all(job, [3, 4, 5, 6])])
    assert np.array_equal(frames, chunked)


def test_a_title_is_a_storyboard_of_its_letters() -> None:
    from workers.modes.storyboard import render_shots
    from workers.render import seed_keys

    job = _cvae_job({"mode": "title", "text": "BC", "hold": 2, "transition": 3}, 7)
    title = _all(job, list(range(7)))
    # Every letter in one style: the seed's noise, held through both shots.
    keys = seed_keys([0], 4).expand(2, -1)
    shots = [{**s, "class": i} for s, i in zip(NAMED, (1, 2), strict=True)]
    story_job = _cvae_job({"mode": "storyboard", "storyboard": NAMED}, 7)
    story = np.concatenate(list(render_shots(story_job, shots, list(range(7)), None, keys)))
    assert np.array_equal(title, story)
    own_noise = _all(story_job, list(range(7)))
    assert not np.array_equal(title, own_noise)
    derived = _cvae_job({"mode": "title", "text": "AB C"}, 30)
    assert _all(derived, list(range(30))).shape == (30, 32, 32)
    with pytest.raises(PermanentError, match="'D'"):
        _all(_cvae_job({"mode": "title", "text": "AD"}, 10), [0])


def test_a_font_walk_visits_each_styles_mean() -> None:
    from workers.modes.latent_walk import keys_and_classes

    means = [[0.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 1.0]]
    keys = [{"class": "B", "style": "cmr10"}, {"class": "B", "style": "DejaVuSans"}]
    job = _cvae_job({"mode": "latent_walk", "keyframes": keys}, 5,
                    style_names=["DejaVuSans", "cmr10"], style_means=means)  # fmt: skip
    z, classes = keys_and_classes(job)
    assert torch.equal(z, torch.tensor([means[1], means[0]])) and classes == [1, 1]
    assert _all(job, list(range(5))).shape == (5, 32, 32)
    bad = _cvae_job({"mode": "latent_walk", "keyframes": [{"class": "B", "style": "x"}]}, 2)
    with pytest.raises(PermanentError, match="styles"):
        keys_and_classes(bad)


def test_an_unconditional_vae_moves_a_class_mean_by_the_styles_offset() -> None:
    from pathlib import Path

    from workers.modes.latent_walk import keys_and_classes

    model = ConvVAE(VAEConfig(latent_dim=2, channels=4)).eval()
    meta = {"family": "vae", "config": model.cfg.to_dict(), "classes": ["A", "B"],
            "class_means": [[1.0, 1.0], [5.0, 5.0]], "style_names": ["s", "t"],
            "style_means": [[0.0, 0.0], [2.0, 4.0]]}  # fmt: skip
    spec = {"keyframes": [{"class": "B", "style": "t"}], "seed": 0}
    job = RenderJob(spec, model, meta, 1, torch.device("cpu"), Path("/nonexistent"))
    z, _ = keys_and_classes(job)
    assert torch.equal(z[0], torch.tensor([6.0, 7.0]))  # B's mean + (t - mean of styles)


def test_sdf_checkpoints_render_shaded_colour_frames() -> None:
    from pathlib import Path

    from tests.unit.test_render import StandIn

    meta = {"family": "gan", "config": {"latent_dim": 4, "num_classes": 0, "image_size": 8,
            "image_channels": 1, "target": "sdf"}, "sdf_spread_px": 2.0}  # fmt: skip
    colors = {"fill": "#f5c542", "background": "#1b1f3b80"}
    spec = {"mode": "latent_walk", "keyframes": ["seed:1", "seed:2"], "width": 64,
            "height": 36, "batch_size": 2, "colors": colors}  # fmt: skip
    job = RenderJob(spec, StandIn(4, 1, 8, sdf=True), meta, 4, torch.device("cpu"), Path("/x"))
    frames = _all(job, [0, 1, 2, 3])
    assert frames.shape == (4, 36, 64, 4)  # a translucent background: RGBA
    assert job.frame_channels == 4
    colours = {tuple(p) for p in frames.reshape(-1, 4).tolist()}
    assert (245, 197, 66, 255) in colours and (27, 31, 59, 128) in colours


def test_sample_grids_of_colour_tiles() -> None:
    rgb = np.full((3, 4, 5, 3), 200, np.uint8)
    sheet = sample_grid(rgb, 2, pad=1, fill=9)
    assert sheet.shape == (9, 11, 3) and sheet[4, 0, 0] == 9 and sheet[0, 0, 1] == 200
    rgba = np.zeros((2, 4, 5, 4), np.uint8)
    assert sample_grid(rgba, 2, pad=1)[0, 5, 3] == 255  # padding is opaque
    with pytest.raises(ValueError, match="images must be"):
        sample_grid(np.zeros((2, 4, 5, 2), np.uint8), 2)
