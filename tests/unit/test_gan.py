"""Unit tests for the conditional GAN: shapes, determinism, exact resume, EMA, fast path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from workers.models.gan import (
    Discriminator,
    GANConfig,
    Generator,
    sample_inputs,
    train_gan,
)
from workers.models.vae import TrainingStopped, load_train_state, save_train_state
from workers.render import fast_inference

TINY = GANConfig(image_size=8, latent_dim=4, num_classes=3, channels=4, d_channels=4, embed_dim=3)


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def _train(steps: int, **kw: object) -> tuple[Generator, list[dict[str, float]], object]:
    x, y = _data()
    args: dict[str, object] = {"batch_size": 8, "lr": 1e-3, "seed": 5, "log_every": 1}
    args.update(kw)
    return train_gan(x, y, TINY, steps=steps, **args)  # type: ignore[arg-type]


def test_generator_and_discriminator_shapes() -> None:
    torch.manual_seed(0)
    g, d = Generator(TINY).eval(), Discriminator(TINY)
    z, y = sample_inputs(TINY, 5, seed=1)
    assert y is not None
    with torch.no_grad():
        img = g(z, y)
    assert img.shape == (5, 1, 8, 8)
    assert float(img.min()) >= 0.0
    assert float(img.max()) <= 1.0
    weights = torch.nn.functional.one_hot(y, 3).float()
    with torch.no_grad():
        assert d(img, y).shape == (5,)
        assert torch.allclose(g(z, weights), img, atol=1e-6)  # one-hot weights == int labels


def test_generator_requires_labels_when_conditional() -> None:
    with pytest.raises(ValueError, match="labels"):
        Generator(TINY)(torch.zeros(2, 4))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="power of two"):
        GANConfig(image_size=10)


def test_training_deterministic_and_history() -> None:
    g1, h1, _ = _train(3)
    g2, h2, _ = _train(3)
    _, h3, _ = _train(3, seed=6)
    assert h1 == h2
    assert h1 != h3
    assert [r["step"] for r in h1] == [1.0, 2.0, 3.0]
    assert not g1.training
    for a, b in zip(g1.state_dict().values(), g2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_resume_from_state_equals_uninterrupted(tmp_path: Path) -> None:
    whole_g, whole_h, whole_state = _train(4)
    _, _, half = _train(2)
    path = tmp_path / "resume.safetensors"
    save_train_state(path, half)  # type: ignore[arg-type]
    resumed_g, resumed_h, resumed_state = _train(4, resume_state=load_train_state(path))
    assert resumed_h == whole_h
    assert resumed_state.counters["step"] == 4  # type: ignore[attr-defined]
    for k, v in whole_g.state_dict().items():
        assert torch.equal(v, resumed_g.state_dict()[k]), k
    for k, v in whole_state.tensors.items():  # type: ignore[attr-defined]
        assert torch.equal(v, resumed_state.tensors[k]), k  # type: ignore[attr-defined]


def test_resume_refuses_other_seed() -> None:
    _, _, state = _train(1)
    with pytest.raises(ValueError, match="seed"):
        _train(2, seed=99, resume_state=state)


def test_ema_differs_from_raw_generator() -> None:
    _, _, state = _train(3)
    tensors = state.tensors  # type: ignore[attr-defined]
    g_w = tensors["G.fc.0.weight"]
    ema_w = tensors["EMA.fc.0.weight"]
    assert not torch.equal(g_w, ema_w)


def test_should_stop_and_progress() -> None:
    seen: list[int] = []
    with pytest.raises(TrainingStopped):
        _train(5, on_progress=lambda s, r: seen.append(s), should_stop=lambda: len(seen) >= 2)
    assert seen == [1, 2]


def test_checkpoint_callback_every_n_steps() -> None:
    steps: list[int] = []
    _train(4, checkpoint_every=2, on_checkpoint=lambda st: steps.append(st.counters["step"]))
    assert steps == [2, 4]


def test_eval_generator_is_per_sample() -> None:
    g, _, _ = _train(2)
    z, y = sample_inputs(TINY, 6, seed=3)
    with torch.inference_mode():
        whole = g(z, y)
        parts = torch.cat([g(z[:2], y[:2] if y is not None else None), g(z[2:], y[2:])])  # type: ignore[index]
    assert torch.allclose(whole, parts, atol=1e-6)


def test_fast_inference_matches_plain_path_on_cpu() -> None:
    torch.manual_seed(0)
    g = Generator(GANConfig(channels=8, d_channels=8)).eval()
    z, y = sample_inputs(g.cfg, 16, seed=0)
    with fast_inference(g, "cpu") as m:
        plain = m(z, y).float()
    with fast_inference(g, "cpu", force=True) as m:
        out = m(z, y)
        assert out.dtype == torch.bfloat16  # the autocast path really ran
        fast = out.float()
    assert torch.allclose(fast, plain, atol=3e-2)
    assert not torch.equal(fast, plain)
