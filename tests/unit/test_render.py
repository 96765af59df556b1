"""Unit tests for latent walks and frame rendering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.models.vae import ConvVAE, VAEConfig
from workers.render import (
    FrameStyle,
    class_means,
    ease,
    keyframe_latents,
    render_frames,
    render_gan_frames,
    slerp,
    walk_latents,
)
from workers.shading import Look


def _keys(k: int = 4, d: int = 8) -> torch.Tensor:
    return torch.randn(k, d, generator=torch.Generator().manual_seed(3))


def test_ease_endpoints_and_midpoint() -> None:
    u = torch.tensor([0.0, 0.5, 1.0])
    assert torch.equal(ease(u), torch.tensor([0.0, 0.5, 1.0]))
    inner = ease(torch.linspace(0, 1, 11))
    assert bool((inner[1:] >= inner[:-1]).all())


def test_slerp_endpoints_and_parallel_fallback() -> None:
    a, b = _keys(2, 8)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    mid = slerp(a, 2 * a, 0.5)
    assert torch.isfinite(mid).all()
    assert torch.allclose(mid, 1.5 * a, atol=1e-5)


def test_slerp_keeps_norm_between_unit_vectors() -> None:
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([0.0, 1.0])
    mid = slerp(a, b, 0.5)
    assert float(mid.norm()) == pytest.approx(1.0, abs=1e-6)


def test_walk_endpoints_equal_keys() -> None:
    keys = _keys()
    total = 31
    out = walk_latents(keys, [0, 10, 20, 30], total)
    assert out.shape == (4, 8)
    assert torch.allclose(out, keys, atol=1e-5)
    assert torch.equal(out[0], keys[0])


def test_walk_chunked_is_bit_identical() -> None:
    keys = _keys(5, 8)
    whole = walk_latents(keys, range(100), 100)
    chunked = torch.cat(
        [walk_latents(keys, range(0, 50), 100), walk_latents(keys, range(50, 100), 100)]
    )
    assert torch.equal(whole, chunked)
    odd = walk_latents(keys, [73, 2, 99], 100)
    assert torch.equal(odd, whole[[73, 2, 99]])


def test_walk_single_frame_and_single_key() -> None:
    keys = _keys()
    assert torch.equal(walk_latents(keys, [0], 1), keys[:1])
    one = keys[:1]
    assert torch.equal(walk_latents(one, [0, 5, 9], 10), one.expand(3, -1))


def test_walk_rejects_out_of_range_positions() -> None:
    with pytest.raises(ValueError, match="outside"):
        walk_latents(_keys(), [10], 10)


def test_keyframe_latents_classes_and_seeds() -> None:
    means = torch.arange(30, dtype=torch.float32).reshape(10, 3)
    out = keyframe_latents(means, [3, "seed:42", 0], 3)
    assert out.shape == (3, 3)
    assert torch.equal(out[0], means[3])
    assert torch.equal(out[2], means[0])
    expected = torch.randn(3, generator=torch.Generator().manual_seed(42))
    assert torch.equal(out[1], expected)
    assert torch.equal(keyframe_latents(means, ["seed:42"], 3)[0], expected)


@pytest.mark.parametrize("bad", [10, -1, "seed:", "seed:x", "7", "banana", True])
def test_keyframe_latents_errors_name_keyframe(bad: int | str) -> None:
    means = torch.zeros(10, 3)
    with pytest.raises(ValueError, match="bad keyframe") as info:
        keyframe_latents(means, [0, bad], 3)
    assert repr(bad) in str(info.value)


@pytest.fixture(scope="module")
def model() -> ConvVAE:
    torch.manual_seed(0)
    return ConvVAE(VAEConfig(latent_dim=4, channels=8)).eval()


@pytest.mark.parametrize(("width", "height"), [(64, 64), (512, 512), (96, 48)])
def test_render_frames_dtype_shape_contiguous(model: ConvVAE, width: int, height: int) -> None:
    latents = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    batches = list(render_frames(model, latents, width, height, batch_size=4))
    assert [b.shape[0] for b in batches] == [4, 4, 2]
    for b in batches:
        assert b.dtype == np.uint8
        assert b.shape[1:] == (height, width)
        assert b.flags["C_CONTIGUOUS"]
    frames = np.concatenate(batches)
    assert frames.max() > frames.min()


def test_render_frames_matches_decoder(model: ConvVAE) -> None:
    latents = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    (frames,) = list(render_frames(model, latents, 16, 16))
    with torch.no_grad():
        ref = (model.decode(latents)[:, 0] * 255).round().to(torch.uint8).numpy()
    assert np.abs(frames.astype(int) - ref.astype(int)).max() <= 1


def test_class_means(model: ConvVAE) -> None:
    images = torch.rand(12, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 1, 2] * 4)
    means = class_means(model, images, labels, num_classes=4, batch_size=5)
    assert means.shape == (4, 4)
    with torch.no_grad():
        mu, _ = model.encode(images)
    assert torch.allclose(means[1], mu[labels == 1].mean(0), atol=1e-5)
    assert torch.equal(means[3], torch.zeros(4))


# -- colour and SDF frames (issue 12) ------------------------------------------------------


class StandIn(torch.nn.Module):
    """A decoder of the shape the models will have: latents (B, D) to (B, C, S, S) in [0, 1]
    (sigmoid) or an SDF in [-1, 1] (tanh); generator-style ``(z, labels)``."""

    def __init__(self, d: int, c: int, s: int, *, sdf: bool = False) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.c, self.s, self.sdf = c, s, sdf
        self.lin = torch.nn.Linear(d, c * s * s)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.lin(z).view(-1, self.c, self.s, self.s)  # (B, C, S, S)
        return torch.tanh(x) if self.sdf else torch.sigmoid(x)


Z = torch.randn(6, 4, generator=torch.Generator().manual_seed(9))


def _frames(model: torch.nn.Module, style: FrameStyle, batch_size: int = 4) -> np.ndarray:
    return np.concatenate(list(render_gan_frames(model, Z, None, 40, 24, batch_size=batch_size,
                                                 style=style)))  # fmt: skip


def test_rgb_models_render_rgb_frames_upsampled_per_channel() -> None:
    model = StandIn(4, 3, 8)
    frames = _frames(model, FrameStyle(channels=3, out_channels=3))
    assert frames.shape == (6, 24, 40, 3) and frames.dtype == np.uint8
    with torch.no_grad():
        up = torch.nn.functional.interpolate(model(Z), size=(24, 40), mode="bicubic")
    ref = up.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(frames, ref)


def test_rgba_models_keep_alpha_or_lie_over_the_background() -> None:
    model = StandIn(4, 4, 8)
    rgba = _frames(
        model, FrameStyle(channels=4, out_channels=4, looks=(Look(background=(0, 0, 0, 0)),))
    )
    assert rgba.shape == (6, 24, 40, 4) and 0 < rgba[..., 3].mean() < 255
    over = _frames(model, FrameStyle(channels=4, out_channels=3, looks=(Look(),)))
    assert over.shape == (6, 24, 40, 3)
    # Over black, a pixel shows its colour times its alpha.
    a = rgba[..., 3:].astype(float) / 255
    assert np.abs(over.astype(float) - rgba[..., :3] * a).max() <= 2.0


def test_a_white_on_black_tint_is_the_grey_frame() -> None:
    model = StandIn(4, 1, 8)
    grey = _frames(model, FrameStyle())
    tinted = _frames(model, FrameStyle(out_channels=3))
    assert grey.shape == (6, 24, 40) and tinted.shape == (6, 24, 40, 3)
    assert np.array_equal(tinted, np.repeat(grey[..., None], 3, axis=3))


def test_sdf_frames_are_shaded_and_the_same_in_any_chunking() -> None:
    model = StandIn(4, 1, 8, sdf=True)
    looks = tuple(Look(fill=(1.0, i / 6, 0.0, 1.0), outline=(0, 0, 1, 1)) for i in range(6))
    style = FrameStyle(target="sdf", out_channels=3, looks=looks)
    whole = _frames(model, style, batch_size=6)
    assert whole.shape == (6, 24, 40, 3)
    assert np.array_equal(whole, _frames(model, style, batch_size=4))
    assert np.array_equal(whole, _frames(model, style, batch_size=1))
    with pytest.raises(ValueError, match="looks"):
        _frames(model, FrameStyle(target="sdf", out_channels=3, looks=looks[:2]))
