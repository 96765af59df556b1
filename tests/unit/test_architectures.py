"""Architectures that grow with the size: shapes at every size, channels and target; old
checkpoints; a tiny sdf cVAE on glyphs that learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.unit.legacy_models import LegacyGenerator, LegacyVAE
from workers.checkpoint import save_checkpoint
from workers.datasets import load_dataset
from workers.device import load_model
from workers.models import get_family
from workers.models.arch import SIZES, legacy_config, stage_count, stage_widths
from workers.models.gan import Discriminator, GANConfig, Generator, train_gan
from workers.models.targets import reconstruction, to_pixels
from workers.models.vae import ConvVAE, VAEConfig, train_vae

CASES = [(c, "pixels") for c in (1, 3, 4)] + [(1, "sdf")]


def test_one_stage_per_doubling_and_widths_double_as_resolution_halves() -> None:
    assert [stage_count(s, 4) for s in SIZES] == [1, 2, 3, 4, 5, 6]
    assert stage_widths(32, 5, 256) == [32, 64, 128, 256, 256]
    for bad in (12, 24, 4, 3):
        with pytest.raises(ValueError, match="image_size"):
            stage_count(bad, 4)


@pytest.mark.parametrize("size", [8, 16, 32, 64, 128])
@pytest.mark.parametrize(("channels", "target"), CASES)
def test_vae_shapes(size: int, channels: int, target: str) -> None:
    cfg = VAEConfig(image_size=size, latent_dim=3, channels=4, max_channels=16, hidden=16,
                    image_channels=channels, target=target, num_classes=2)  # fmt: skip
    model = ConvVAE(cfg).eval().requires_grad_(False)
    x = torch.rand(2, channels, size, size)
    y = torch.tensor([0, 1])
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (2, 3)
    out = model.decode(mu, y)
    assert out.shape == (2, channels, size, size)
    low = -1.0 if target == "sdf" else 0.0
    assert float(out.min()) >= low and float(out.max()) <= 1.0
    assert model(x, y)[0].shape == (2, channels, size, size)


@pytest.mark.parametrize("size", [8, 16, 32, 64, 128])
@pytest.mark.parametrize(("channels", "target"), CASES)
def test_gan_shapes(size: int, channels: int, target: str) -> None:
    cfg = GANConfig(image_size=size, latent_dim=3, num_classes=2, channels=2, d_channels=2,
                    embed_dim=2, max_channels=16, image_channels=channels,
                    target=target)  # fmt: skip
    g, d = Generator(cfg).eval().requires_grad_(False), Discriminator(cfg)
    y = torch.tensor([0, 1])
    out = g(torch.randn(2, 3), y)
    assert out.shape == (2, channels, size, size)
    if target == "sdf":
        assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    assert d(out, y).shape == (2,)


def test_256_px_builds_for_a_gpu() -> None:
    vae = ConvVAE(VAEConfig(image_size=256, channels=2, max_channels=8, hidden=8, latent_dim=2))
    assert vae.decode(torch.zeros(1, 2)).shape == (1, 1, 256, 256)
    gan = Generator(GANConfig(image_size=256, channels=1, max_channels=8, num_classes=0))
    assert gan.eval()(torch.zeros(1, 32)).shape == (1, 1, 256, 256)


def test_sdf_models_have_one_channel() -> None:
    with pytest.raises(ValueError, match="sdf"):
        VAEConfig(target="sdf", image_channels=3)
    with pytest.raises(ValueError, match="target"):
        GANConfig(target="depth")
    with pytest.raises(ValueError, match="image_channels"):
        VAEConfig(image_channels=2)


def test_16px_grey_layout_is_main_s() -> None:
    new = ConvVAE(VAEConfig(latent_dim=8, channels=32, num_classes=10)).state_dict()
    old = LegacyVAE(16, 8, 32, num_classes=10).state_dict()
    assert {k: v.shape for k, v in new.items()} == {k: v.shape for k, v in old.items()}
    g_new = Generator(GANConfig()).state_dict()
    g_old = LegacyGenerator(16, 32, 10, 16, 16).state_dict()
    assert {k: v.shape for k, v in g_new.items()} == {k: v.shape for k, v in g_old.items()}


def _old_checkpoint(tmp_path: Path, name: str, model: torch.nn.Module, meta: dict) -> Path:
    torch.manual_seed(0)
    for p in model.parameters():  # not the init: a load that ignored the file would differ
        p.data.normal_(0.0, 0.2)
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(path, model, meta)
    return path


@pytest.mark.parametrize(
    ("size", "classes"),
    [(16, 0), (16, 10), (32, 0)],  # digits VAE, cVAE, and the LSTM's 32 px frame VAE
)
def test_old_vae_checkpoints_load_and_decode_as_before(
    tmp_path: Path, size: int, classes: int
) -> None:
    old = LegacyVAE(size, 8, 16, num_classes=classes).eval()
    config = {"image_size": size, "latent_dim": 8, "channels": 16, "num_classes": classes,
              "class_embed_dim": 8}  # fmt: skip
    path = _old_checkpoint(tmp_path, f"vae{size}-{classes}", old, {"family": "vae",
                                                                   "config": config})  # fmt: skip
    model, _, _ = load_model(path)
    assert isinstance(model, ConvVAE) and model.cfg.base_size == size // 4
    z = torch.randn(3, 8)
    y = torch.tensor([1, 2, 3]) if classes else None
    with torch.inference_mode():
        assert torch.equal(model.cpu().decode(z, y), old.decode(z, y))


def test_old_gan_checkpoint_loads_and_generates_as_before(tmp_path: Path) -> None:
    old = LegacyGenerator(16, 32, 10, 16, 16).eval()
    config = {"image_size": 16, "latent_dim": 32, "num_classes": 10, "channels": 16,
              "d_channels": 16, "embed_dim": 16}  # fmt: skip
    path = _old_checkpoint(tmp_path, "gan", old, {"family": "gan", "config": config})
    model, _, _ = load_model(path)
    z, y = torch.randn(4, 32), torch.tensor([0, 3, 5, 9])
    with torch.inference_mode():
        assert torch.equal(model.cpu()(z, y), old(z, y))


def test_new_configs_round_trip_through_the_family() -> None:
    cfg = VAEConfig(image_size=32, image_channels=4, channels=4, max_channels=8, hidden=8)
    assert legacy_config(cfg.to_dict()) == cfg.to_dict()
    model = get_family("vae").build(cfg.to_dict())
    assert isinstance(model, ConvVAE) and model.cfg == cfg


def test_sdf_loss_weights_the_edge() -> None:
    target = torch.tensor([[[[0.0, 1.0]]]])  # (1, 1, 1, 2): on the edge, deep inside
    err = torch.atanh(torch.tensor([[[[0.1, 0.9]]]]))  # both 0.1 off after the tanh
    edge = reconstruction(err[..., :1], target[..., :1], "sdf")
    far = reconstruction(err[..., 1:], target[..., 1:], "sdf")
    assert float(edge) == pytest.approx(3 * float(far), rel=1e-4)


def test_tiny_sdf_cvae_on_four_glyphs_learns_at_32px() -> None:
    fonts = ["DejaVuSans", "DejaVuSans-Bold", "DejaVuSerif", "DejaVuSansMono", "cmr10", "cmss10"]
    data = load_dataset("glyphs", 32, options={"charset": "ABCD", "target": "sdf",
                                               "fonts": fonts, "heldout_fonts": []})  # fmt: skip
    assert data.sdf is not None and data.labels is not None
    cfg = VAEConfig(image_size=32, latent_dim=4, channels=8, max_channels=32, hidden=64,
                    num_classes=4, target="sdf")  # fmt: skip
    model, history = train_vae(data.sdf, cfg, epochs=8, batch_size=8, lr=3e-3, seed=0,
                               labels=data.labels)  # fmt: skip
    losses = [h["loss"] for h in history]
    assert losses[-1] < 0.7 * losses[0], losses
    with torch.inference_mode():
        field = model.decode(torch.zeros(4, 4), torch.arange(4))
    assert field.shape == (4, 1, 32, 32) and float(field.abs().max()) <= 1.0
    coverage = to_pixels(field, "sdf", data.sdf_spread_px, size=128)
    assert coverage.shape == (4, 1, 128, 128)
    assert 0.02 < float(coverage.mean()) < 0.6  # some ink, not all


def test_sdf_gan_trains_a_few_steps() -> None:
    fields = torch.rand(16, 1, 16, 16) * 2 - 1
    cfg = GANConfig(num_classes=0, channels=4, d_channels=4, latent_dim=4, target="sdf")
    g, history, _ = train_gan(fields, None, cfg, steps=3, batch_size=4, lr=1e-3, seed=0,
                              log_every=1)  # fmt: skip
    assert len(history) == 3 and all(torch.isfinite(torch.tensor(h["loss_d"])) for h in history)
    assert float(g(torch.randn(2, 4)).abs().max()) <= 1.0
