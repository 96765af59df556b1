"""Unit tests for the conditional VAE, held-out ELBO evaluation and VAE resume."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from workers.models.vae import ConvVAE, TrainState, VAEConfig, evaluate_elbo, train_vae
from workers.render import class_means

CTINY = VAEConfig(image_size=16, latent_dim=4, channels=8, num_classes=10, class_embed_dim=4)


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(n: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 16, 16, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_unconditional_state_dict_unchanged() -> None:
    # Checkpoints written before cVAE support must still load.
    keys = set(ConvVAE(VAEConfig(latent_dim=4, channels=8)).state_dict())
    assert not any(k.startswith("class_embed") for k in keys)
    assert "encoder.5.weight" in keys


def test_decode_depends_on_label_and_accepts_weights() -> None:
    torch.manual_seed(0)
    model = ConvVAE(CTINY).eval()
    z = torch.randn(2, 4)
    with torch.no_grad():
        a = model.decode(z, torch.tensor([1, 1]))
        b = model.decode(z, torch.tensor([2, 2]))
        w = model.decode(z, torch.nn.functional.one_hot(torch.tensor([1, 1]), 10).float())
    assert a.shape == (2, 1, 16, 16)
    assert not torch.allclose(a, b)
    assert torch.allclose(a, w, atol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        model.decode(z)
    with pytest.raises(ValueError, match="unconditional"):
        ConvVAE(VAEConfig(latent_dim=4, channels=8)).decode(z, torch.tensor([0, 1]))


def test_train_cvae_requires_labels() -> None:
    x, _ = _data()
    with pytest.raises(ValueError, match="labels"):
        train_vae(x, CTINY, epochs=1, batch_size=16, lr=1e-3, seed=0)


def test_vae_resume_matches_uninterrupted() -> None:
    x, y = _data()
    kw = {"batch_size": 16, "lr": 2e-3, "seed": 1, "labels": y}
    states: list[TrainState] = []
    whole, h_whole = train_vae(x, CTINY, epochs=3, **kw)  # type: ignore[arg-type]
    train_vae(x, CTINY, epochs=1, on_checkpoint=states.append, **kw)  # type: ignore[arg-type]
    torch.manual_seed(12345)  # the resume must restore the RNG, not rely on it
    resumed, h_res = train_vae(x, CTINY, epochs=3, resume_state=states[-1], **kw)  # type: ignore[arg-type]
    assert h_res == h_whole
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_evaluate_elbo_consistent_and_deterministic() -> None:
    x, y = _data()
    model, _ = train_vae(x, CTINY, epochs=2, batch_size=16, lr=2e-3, seed=0, labels=y)
    a = evaluate_elbo(model, x, y, batch_size=20)
    b = evaluate_elbo(model, x, y, batch_size=48)
    assert set(a) == {"neg_elbo", "recon", "kl", "mse"}
    assert a["neg_elbo"] == pytest.approx(a["recon"] + a["kl"])
    assert a["kl"] >= 0.0
    assert 0.0 < a["mse"] < 1.0
    assert a["kl"] == pytest.approx(b["kl"], rel=1e-5)
    assert a["mse"] == pytest.approx(b["mse"], rel=1e-5)
    assert not model.training


def test_class_means_for_cvae_uses_labels() -> None:
    torch.manual_seed(0)
    model = ConvVAE(CTINY).eval()
    x, y = _data()
    means = class_means(model, x, y)
    with torch.no_grad():
        mu, _ = model.encode(x, y)
    assert torch.allclose(means[3], mu[y == 3].mean(0), atol=1e-5)


def test_kl_warmup_and_lr_schedule_are_functions_of_the_step() -> None:
    from workers.models.vae import scheduled_lr, warmup_factor

    assert [warmup_factor(s, 4) for s in (0, 1, 4, 9)] == [0.0, 0.25, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0  # no warm-up: the ELBO from the first batch
    assert scheduled_lr(2e-3, "constant", 7, 10) == 2e-3
    assert scheduled_lr(2e-3, "cosine", 1, 10) == pytest.approx(2e-3)
    assert scheduled_lr(2e-3, "cosine", 6, 10) == pytest.approx(1e-3)
    assert 0 < scheduled_lr(2e-3, "cosine", 10, 10) < 1e-4


def test_weighted_kl_and_free_bits_change_the_loss_not_the_reported_kl() -> None:
    from workers.models.vae import vae_loss

    torch.manual_seed(0)
    x = torch.rand(4, 1, 16, 16)
    logits = torch.randn(4, 1, 16, 16)
    mu, logvar = torch.randn(4, 3) * 0.1, torch.zeros(4, 3)
    loss, recon, kl = vae_loss(logits, x, mu, logvar)
    zero, recon0, kl0 = vae_loss(logits, x, mu, logvar, kl_weight=0.0)
    assert torch.allclose(loss, recon + kl) and torch.allclose(zero, recon)
    assert torch.equal(kl0, kl) and torch.equal(recon0, recon)
    # Each dimension's KL is tiny (mu ~ 0.1): free bits of 0.5 nats charge 0.5 for each.
    freed, _, kl_f = vae_loss(logits, x, mu, logvar, free_bits=0.5)
    assert torch.equal(kl_f, kl)
    assert float(freed - recon) == pytest.approx(1.5)


def test_kl_warmup_trains_another_model_and_resumes_exactly() -> None:
    x, y = _data()
    kw = {"batch_size": 16, "lr": 2e-3, "seed": 1, "labels": y}
    sched = {"kl_warmup_epochs": 2, "lr_schedule": "cosine"}
    plain, _ = train_vae(x, CTINY, epochs=3, **kw)  # type: ignore[arg-type]
    whole, h_whole = train_vae(x, CTINY, epochs=3, **sched, **kw)  # type: ignore[arg-type]
    assert not torch.equal(plain.fc_mu.weight, whole.fc_mu.weight)
    assert h_whole[0]["loss"] == pytest.approx(h_whole[0]["recon"] + h_whole[0]["kl"])
    states: list[TrainState] = []
    train_vae(x, CTINY, epochs=3, on_checkpoint=states.append, **sched, **kw)  # type: ignore[arg-type]
    resumed, h_res = train_vae(x, CTINY, epochs=3, resume_state=states[0], **sched, **kw)  # type: ignore[arg-type]
    assert h_res == h_whole
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"kl_warmup_epochs": -1}, "kl_warmup_epochs"),
        ({"kl_weight": 0.0}, "kl_weight"),
        ({"free_bits": float("nan")}, "free_bits"),
        ({"lr_schedule": "step"}, "lr_schedule"),
    ],
)
def test_bad_training_options_are_refused(option: dict[str, object], match: str) -> None:
    x, y = _data(8)
    with pytest.raises(ValueError, match=match):
        train_vae(x, CTINY, epochs=1, batch_size=8, lr=1e-3, seed=0, labels=y, **option)  # type: ignore[arg-type]


FILM = VAEConfig(
    image_size=16, latent_dim=4, channels=8, num_classes=10, class_embed_dim=4,
    conditioning="film",
)  # fmt: skip


def test_a_config_from_before_conditioning_builds_the_concat_model() -> None:
    # A glyph cVAE saved before the field has no "conditioning" in its config: it must
    # rebuild the same layers (the same state-dict keys), or its weights would not load.
    stored = {k: v for k, v in CTINY.to_dict().items() if k != "conditioning"}
    cfg = VAEConfig.from_dict(stored)
    assert cfg.conditioning == "concat"
    assert set(ConvVAE(cfg).state_dict()) == set(ConvVAE(CTINY).state_dict())
    assert not any(k.startswith("film") for k in ConvVAE(cfg).state_dict())
    with pytest.raises(ValueError, match="conditioning"):
        VAEConfig(num_classes=10, conditioning="add")


def test_film_starts_as_concat_and_conditions_every_decoder_stage() -> None:
    torch.manual_seed(0)
    film = ConvVAE(FILM).eval()
    plain = ConvVAE(CTINY).eval()
    plain.load_state_dict({k: v for k, v in film.state_dict().items() if not k.startswith("film")})
    # Zero-initialised: a fresh FiLM model decodes what its concat twin does.
    z, y = torch.randn(3, 4), torch.tensor([1, 2, 3])
    with torch.no_grad():
        assert torch.allclose(film.decode(z, y), plain.decode(z, y))
    # One (scale, shift) per stage input, coarsest first: widths 16 (4 px) then 8 (8 px).
    assert [layer.out_features for layer in film.film or []] == [32, 16]
    with torch.no_grad():
        for layer in film.film or []:
            layer.weight.normal_()
        a = film.decode(z, y)
        b = film.decode(z, torch.tensor([4, 5, 6]))
        w = film.decode(z, torch.nn.functional.one_hot(y, 10).float())
    assert not torch.allclose(a, b)
    assert torch.allclose(a, w, atol=1e-6)  # class weights mix through FiLM too


def test_film_cvae_trains_and_resumes_exactly() -> None:
    x, y = _data()
    kw = {"batch_size": 16, "lr": 2e-3, "seed": 1, "labels": y}
    whole, h_whole = train_vae(x, FILM, epochs=2, **kw)  # type: ignore[arg-type]
    assert any(bool(layer.weight.detach().any()) for layer in whole.film or [])
    states: list[TrainState] = []
    train_vae(x, FILM, epochs=2, on_checkpoint=states.append, **kw)  # type: ignore[arg-type]
    resumed, h_res = train_vae(x, FILM, epochs=2, resume_state=states[0], **kw)  # type: ignore[arg-type]
    assert h_res == h_whole
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_min_std_floors_the_posterior_and_leaves_the_mean() -> None:
    x, y = _data(8)
    torch.manual_seed(0)
    plain = ConvVAE(CTINY).eval()
    floored = ConvVAE(VAEConfig(**{**CTINY.to_dict(), "min_std": 0.3})).eval()
    floored.load_state_dict(plain.state_dict())  # the same layers: only encode's output moves
    with torch.no_grad():
        mu0, logvar0 = plain.encode(x, y)
        mu1, logvar1 = floored.encode(x, y)
    assert torch.equal(mu0, mu1)
    assert bool((logvar1.exp() >= 0.3**2 - 1e-6).all())
    assert torch.allclose(logvar1.exp(), logvar0.exp() + 0.09, atol=1e-5)
    assert VAEConfig.from_dict({"num_classes": 10}).min_std == 0.0  # an old checkpoint's
    with pytest.raises(ValueError, match="min_std"):
        VAEConfig(min_std=1.0)
