"""Unit tests for the VAE model, its training loop, the digits loader and checkpoints."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from workers.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, sha256_file
from workers.datasets import load_digits_images
from workers.models import FAMILIES, UnknownModelFamily, get_family
from workers.models.vae import ConvVAE, TrainingStopped, VAEConfig, train_vae, vae_loss

TINY = VAEConfig(image_size=16, latent_dim=4, channels=8)


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    # Tiny models gain nothing from intra-op threads, and OpenMP spinning on a busy CI box
    # made these tests up to 10x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    return load_digits_images(16)


def test_load_digits_images_shape_range_and_dtype(
    digits: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = digits
    assert x.shape == (1797, 1, 16, 16)
    assert x.dtype == torch.float32
    assert y.shape == (1797,)
    assert y.dtype == torch.int64
    assert float(x.min()) >= 0.0
    assert float(x.max()) <= 1.0
    assert float(x.max()) > 0.9
    assert set(y.tolist()) == set(range(10))
    # Bright ink on a dark background: corners are background.
    assert float(x[:, :, 0, 0].mean()) < 0.05


def test_load_digits_images_other_size() -> None:
    x, _ = load_digits_images(8)
    assert x.shape == (1797, 1, 8, 8)


def test_model_shapes() -> None:
    torch.manual_seed(0)
    model = ConvVAE(TINY)
    x = torch.rand(5, 1, 16, 16)
    mu, logvar = model.encode(x)
    assert mu.shape == (5, 4)
    assert logvar.shape == (5, 4)
    with torch.no_grad():
        out = model.decode(torch.randn(3, 4))
    assert out.shape == (3, 1, 16, 16)
    assert float(out.min()) >= 0.0
    assert float(out.max()) <= 1.0
    logits, mu2, logvar2 = model(x)
    assert logits.shape == (5, 1, 16, 16)
    assert mu2.shape == logvar2.shape == (5, 4)


def test_config_rejects_bad_image_size() -> None:
    with pytest.raises(ValueError, match="power of two"):
        VAEConfig(image_size=18)


def test_loss_finite_and_consistent() -> None:
    torch.manual_seed(0)
    model = ConvVAE(TINY)
    x = torch.rand(6, 1, 16, 16)
    with torch.no_grad():
        logits, mu, logvar = model(x)
        loss, recon, kl = vae_loss(logits, x, mu, logvar)
    assert loss.ndim == 0
    assert math.isfinite(float(loss))
    assert float(kl) >= 0.0
    assert torch.allclose(loss, recon + kl)
    # Summed over 256 pixels: an untrained model is near 256 * ln 2 nats, not near 0.69.
    assert float(recon) > 100.0


def test_kl_zero_at_prior() -> None:
    mu = torch.zeros(2, 4)
    logvar = torch.zeros(2, 4)
    x = torch.full((2, 1, 16, 16), 0.5)
    _, _, kl = vae_loss(torch.zeros(2, 1, 16, 16), x, mu, logvar)
    assert float(kl) == pytest.approx(0.0, abs=1e-6)


def _train(images: torch.Tensor, seed: int) -> tuple[ConvVAE, list[dict[str, float]]]:
    return train_vae(images, TINY, epochs=2, batch_size=32, lr=2e-3, seed=seed)


def test_training_deterministic_for_seed(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    x = digits[0][:200]
    m1, h1 = _train(x, seed=7)
    m2, h2 = _train(x, seed=7)
    _, h3 = _train(x, seed=8)
    assert len(h1) == 2
    assert h1 == h2
    assert h1 != h3
    assert [r["epoch"] for r in h1] == [1.0, 2.0]
    assert set(h1[0]) == {"epoch", "loss", "recon", "kl"}
    assert not m1.training
    for (k1, v1), (k2, v2) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert k1 == k2
        assert torch.equal(v1, v2)


def test_training_reduces_loss(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    _, hist = train_vae(digits[0][:200], TINY, epochs=3, batch_size=32, lr=3e-3, seed=0)
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_on_epoch_and_should_stop(digits: tuple[torch.Tensor, torch.Tensor]) -> None:
    x = digits[0][:64]
    seen: list[int] = []
    calls = {"n": 0}

    def stop_after_first_epoch() -> bool:
        calls["n"] += 1
        return len(seen) >= 1

    with pytest.raises(TrainingStopped):
        train_vae(
            x,
            TINY,
            epochs=5,
            batch_size=32,
            lr=1e-3,
            seed=0,
            on_epoch=lambda e, rec: seen.append(e),
            should_stop=stop_after_first_epoch,
        )
    assert seen == [1]
    assert calls["n"] == 3  # two batches in epoch 1, then the first check of epoch 2


def test_train_rejects_wrong_image_size() -> None:
    with pytest.raises(ValueError, match="image_size"):
        train_vae(torch.rand(4, 1, 8, 8), TINY, epochs=1, batch_size=2, lr=1e-3, seed=0)


def test_registry() -> None:
    fam = get_family("vae")
    assert fam.model_cls is ConvVAE
    assert fam.config_cls is VAEConfig
    assert "vae" in FAMILIES
    with pytest.raises(UnknownModelFamily, match="nope") as info:
        get_family("nope")
    assert isinstance(info.value, KeyError)
    assert "vae" in str(info.value)


def _saved(tmp_path: Path) -> tuple[Path, ConvVAE, dict[str, object]]:
    torch.manual_seed(0)
    model = ConvVAE(TINY)
    meta: dict[str, object] = {
        "family": "vae",
        "config": TINY.to_dict(),
        "class_means": [[0.25, -1.5, 3.0, 0.1]],
    }
    path = tmp_path / "ckpt" / "model.safetensors"
    save_checkpoint(path, model, meta)
    return path, model, meta


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    path, model, meta = _saved(tmp_path)
    assert "schema_version" not in meta  # caller's dict is not mutated
    tensors, loaded_meta = load_checkpoint(path)
    assert loaded_meta == {**meta, "schema_version": 1}
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar == loaded_meta
    state = model.state_dict()
    assert tensors.keys() == state.keys()
    for k, v in state.items():
        assert torch.equal(tensors[k], v)
    restored = ConvVAE(VAEConfig(**loaded_meta["config"]))
    restored.load_state_dict(tensors)
    # No temporary files are left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.safetensors"]


def test_checkpoint_sha256_stable(tmp_path: Path) -> None:
    path, _, _ = _saved(tmp_path)
    digest = sha256_file(path)
    assert len(digest) == 64
    assert digest == sha256_file(path)
    path.write_bytes(path.read_bytes() + b"x")
    assert sha256_file(path) != digest


def test_checkpoint_rejects_bad_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="safetensors"):
        save_checkpoint(tmp_path / "model.pt", ConvVAE(TINY), {})


def test_checkpoint_truncated(tmp_path: Path) -> None:
    path, _, _ = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(path)


def test_checkpoint_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    gen = torch.Generator().manual_seed(0)
    path.write_bytes(bytes(torch.randint(0, 256, (4096,), generator=gen, dtype=torch.uint8)))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_checkpoint_missing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_checkpoint_schema_version_checked(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "future.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"farm": json.dumps({"x": 1})})
    with pytest.raises(CheckpointError, match="schema_version"):
        load_checkpoint(path)
    save_file(
        {"w": torch.zeros(2)}, str(path), metadata={"farm": json.dumps({"schema_version": 99})}
    )
    with pytest.raises(CheckpointError, match="unsupported"):
        load_checkpoint(path)
