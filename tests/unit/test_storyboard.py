"""Unit tests for storyboards, GAN walks, class weights and contact sheets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.models.gan import GANConfig, Generator
from workers.render import (
    gan_walk,
    render_gan_frames,
    sample_grid,
    seed_keys,
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
