"""Held-out quality of each model family at its default configuration.

Trains the VAE, the conditional VAE, the conditional GAN and the latent LSTM (with the VAE it
needs, on moving digits) from their modules' ``DEFAULTS``, prints the training seconds and a
markdown table, and writes a contact sheet (``docs/img/samples.png``):

- VAE / cVAE: negative ELBO (nats per image) and reconstruction MSE on held-out digits.
- GAN: a digit classifier (sklearn MLP trained on the real training digits) scores samples:
  mean max-confidence, the share of classes present, the entropy of the predicted-class
  histogram and the classifier Inception Score, beside the same for real held-out digits.
  Target: GAN IS >= 85% of the real digits' IS.
- cVAE, cGAN: share of storyboard keyframes the classifier reads as the requested digit
  (target >= 90%).
- LSTM: next-frame pixel MSE on held-out moving-digits clips (a different seed), decoded
  through the VAE, beside copying the last frame (target: at least 30% below copying).

    python bench/model_quality.py [--threads 1] [--out docs/img/samples.png]

The digits split is fixed: the first 80% train, the last 20% are held out.
"""

from __future__ import annotations

import argparse
import math
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.neural_network import MLPClassifier

from workers.datasets import load_digits_images, moving_digits
from workers.models import gan as gan_mod
from workers.models import lstm as lstm_mod
from workers.models import vae as vae_mod
from workers.models.gan import GANConfig, sample_inputs, train_gan
from workers.models.lstm import LSTMConfig, predict_next, rollout, train_lstm
from workers.models.vae import ConvVAE, VAEConfig, evaluate_elbo, train_vae
from workers.render import (
    render_frames,
    render_gan_frames,
    sample_grid,
    storyboard_class_weights,
    storyboard_keyframes,
    storyboard_latents,
)

HELD_OUT = 0.2
# Every digit twice, in an order that makes each transition change class.
SHOTS = [{"class": c, "hold": 3, "transition": 6} for c in [*range(10), *range(9, -1, -1)]]
TILE = 32


def write_png(path: Path, gray: np.ndarray) -> None:
    """Write a uint8 (H, W) image as an 8-bit grayscale PNG (no imaging library needed)."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def classifier_scores(clf: MLPClassifier, images: torch.Tensor) -> dict[str, Any]:
    """Confidence, class spread and Inception Score of ``images`` (N, 1, 16, 16) in [0, 1]."""
    p = clf.predict_proba(images.reshape(images.shape[0], -1).numpy()).astype(np.float64)
    py = p.mean(axis=0)
    kl = (p * (np.log(p + 1e-12) - np.log(py + 1e-12))).sum(axis=1).mean()
    hist = np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / p.shape[0]
    entropy = float(-(hist[hist > 0] * np.log(hist[hist > 0])).sum())
    return {
        "confidence": float(p.max(axis=1).mean()),
        "classes": float((hist > 0).mean()),
        "hist_entropy": entropy,
        "is": float(math.exp(kl)),
        "pred": p.argmax(axis=1),
    }


def frames_to_tensor(batches: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.concatenate(batches).astype(np.float32) / 255.0).unsqueeze(1)


def storyboard_accuracy(clf: MLPClassifier, render: Any, latent_dim: int) -> float:
    """Share of held storyboard frames classified as their shot's digit."""
    keys = storyboard_keyframes(SHOTS)
    z = storyboard_latents(SHOTS, keys, latent_dim, seed=1000)
    w = storyboard_class_weights(SHOTS, keys)
    imgs = frames_to_tensor(list(render(z, w, 16)))
    pred = classifier_scores(clf, imgs)["pred"]
    want = w.argmax(dim=1).numpy()
    return float((pred == want).mean())


def timed(label: str, fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - started
    print(f"trained {label} in {secs:.1f} s", flush=True)
    return out, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("docs/img/samples.png"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seed = args.seed

    x, y = load_digits_images(16)
    n_train = round(x.shape[0] * (1 - HELD_OUT))
    xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    clf = MLPClassifier((128,), max_iter=500, random_state=0)
    clf.fit(xtr.reshape(n_train, -1).numpy(), ytr.numpy())
    clf_acc = float(clf.score(xte.reshape(xte.shape[0], -1).numpy(), yte.numpy()))
    print(f"classifier held-out accuracy {clf_acc:.3f}", flush=True)
    real = classifier_scores(clf, xte)
    times: dict[str, float] = {}

    # -- VAE and cVAE on digits ---------------------------------------------------------
    vd = vae_mod.DEFAULTS
    hp = {"epochs": vd["epochs"], "batch_size": vd["batch_size"], "lr": vd["lr"], "seed": seed}
    vae_cfg = VAEConfig(latent_dim=vd["latent_dim"])
    (vae, _), times["VAE"] = timed("VAE", lambda: train_vae(xtr, vae_cfg, **hp))
    vae_eval = evaluate_elbo(vae, xte, samples=4)
    cvae_cfg = VAEConfig(latent_dim=vd["latent_dim"], num_classes=10)
    (cvae, _), times["cVAE"] = timed("cVAE", lambda: train_vae(xtr, cvae_cfg, labels=ytr, **hp))
    cvae_eval = evaluate_elbo(cvae, xte, yte, samples=4)

    def cvae_render(z: torch.Tensor, w: torch.Tensor, size: int) -> Any:
        return render_frames(cvae, z, size, size, labels=w, batch_size=256)

    cvae_story = storyboard_accuracy(clf, cvae_render, cvae_cfg.latent_dim)

    # -- conditional GAN ------------------------------------------------------------------
    gd = gan_mod.DEFAULTS
    gan_cfg = GANConfig(latent_dim=gd["latent_dim"], channels=gd["channels"])
    (gen, _, _), times["cGAN"] = timed(
        "cGAN",
        lambda: train_gan(
            xtr,
            ytr,
            gan_cfg,
            steps=gd["steps"],
            batch_size=gd["batch_size"],
            lr=gd["lr"],
            d_lr=gd["d_lr"],
            betas=gd["betas"],
            ema_decay=gd["ema_decay"],
            seed=seed,
        ),
    )
    z, labels = sample_inputs(gan_cfg, 1000, seed=seed + 1)
    with torch.inference_mode():
        fake = gen(z, labels)
    fake_scores = classifier_scores(clf, fake)

    def gan_render(z: torch.Tensor, w: torch.Tensor, size: int) -> Any:
        return render_gan_frames(gen, z, w, size, size, batch_size=256)

    gan_story = storyboard_accuracy(clf, gan_render, gan_cfg.latent_dim)

    # -- world model on moving digits: VAE for frames, LSTM for latent dynamics ------------
    ld = lstm_mod.DEFAULTS
    wv = ld["vae"]
    clips = moving_digits(ld["train_clips"], ld["clip_len"], canvas=32, seed=seed)
    held = moving_digits(ld["held_out_clips"], ld["clip_len"], canvas=32, seed=seed + 12345)
    n_clips, t_len = clips.shape[:2]
    frames = clips.reshape(n_clips * t_len, 1, 32, 32)  # (N*T, 1, 32, 32)
    world_cfg = VAEConfig(image_size=32, latent_dim=wv["latent_dim"], channels=wv["channels"])

    def world_train() -> tuple[ConvVAE, list[dict[str, float]]]:
        return train_vae(
            frames,
            world_cfg,
            epochs=wv["epochs"],
            batch_size=wv["batch_size"],
            lr=wv["lr"],
            seed=seed,
        )

    (world, _), times["world VAE"] = timed("world VAE", world_train)

    def encode(seqs: torch.Tensor) -> torch.Tensor:
        n, t = seqs.shape[:2]
        with torch.inference_mode():
            mu, _ = world.encode(seqs.reshape(n * t, 1, 32, 32))
        return mu.reshape(n, t, -1)  # (N, T, D)

    lat = encode(clips)
    lstm_cfg = LSTMConfig(latent_dim=wv["latent_dim"], hidden=ld["hidden"])
    (lstm, _, _), times["LSTM"] = timed(
        "LSTM",
        lambda: train_lstm(
            lat,
            lstm_cfg,
            epochs=ld["epochs"],
            batch_size=ld["batch_size"],
            lr=ld["lr"],
            closed_loop=ld["closed_loop"],
            seed=seed,
        ),
    )
    held_lat = encode(held)
    pred = predict_next(lstm, held_lat)  # (N, T-1, D)
    nh, th = held.shape[:2]
    with torch.inference_mode():
        pred_frames = world.decode(pred.reshape(-1, pred.shape[-1])).reshape(nh, th - 1, 1, 32, 32)
        recon = world.decode(held_lat[:, 1:].reshape(-1, held_lat.shape[-1]))
    target = held[:, 1:]
    lstm_mse = float((pred_frames - target).pow(2).mean())
    copy_mse = float((held[:, :-1] - target).pow(2).mean())
    recon_mse = float((recon.reshape(target.shape) - target).pow(2).mean())
    # Free-running: 4 true frames, then the model's own predictions for the rest of the clip.
    warm = 4
    rolled = torch.stack([rollout(lstm, held_lat[i, :warm], th - warm) for i in range(nh)])
    with torch.inference_mode():
        rolled_frames = world.decode(rolled.reshape(-1, rolled.shape[-1]))
    roll_target = held[:, warm:]
    roll_mse = float((rolled_frames.reshape(roll_target.shape) - roll_target).pow(2).mean())
    hold_mse = float((held[:, warm - 1 : warm] - roll_target).pow(2).mean())

    # -- table ------------------------------------------------------------------------------
    def pct(v: float) -> str:
        return f"{100 * v:.1f}%"

    is_ratio = fake_scores["is"] / real["is"]
    lstm_gain = 1 - lstm_mse / copy_mse

    def is_conf(s: dict[str, Any]) -> str:
        return f"{s['is']:.2f} / {s['confidence']:.3f}"

    def spread(s: dict[str, Any]) -> str:
        return f"{pct(s['classes'])} / {s['hist_entropy']:.3f}"

    rows = [
        ("VAE", "held-out -ELBO (nats/image)", f"{vae_eval['neg_elbo']:.2f}", ""),
        ("VAE", "held-out recon MSE (per pixel)", f"{vae_eval['mse']:.4f}", ""),
        ("cVAE", "held-out -ELBO (nats/image)", f"{cvae_eval['neg_elbo']:.2f}", ""),
        ("cVAE", "held-out recon MSE (per pixel)", f"{cvae_eval['mse']:.4f}", ""),
        ("cVAE", "storyboard keyframes read as requested", pct(cvae_story), ">= 90%"),
        ("real held-out digits", "classifier IS / mean max-confidence", is_conf(real), ""),
        ("real held-out digits", "classes present / class-histogram entropy", spread(real), ""),
        ("cGAN", "classifier IS / mean max-confidence", is_conf(fake_scores), ""),
        ("cGAN", "classes present / class-histogram entropy", spread(fake_scores), ""),
        ("cGAN", "IS relative to real held-out", pct(is_ratio), ">= 85%"),
        ("cGAN", "storyboard keyframes read as requested", pct(gan_story), ">= 90%"),
        ("LSTM", "next-frame MSE, held-out clips", f"{lstm_mse:.4f}", ""),
        ("LSTM", "copy-last-frame MSE (baseline)", f"{copy_mse:.4f}", ""),
        ("LSTM", "VAE recon MSE of the true next frame", f"{recon_mse:.4f}", ""),
        ("LSTM", "improvement over copy-last-frame", pct(lstm_gain), ">= 30%"),
        ("LSTM", f"rollout MSE, {th - warm} frames after {warm} true ones", f"{roll_mse:.4f}", ""),
        ("LSTM", "hold-the-last-true-frame MSE (baseline)", f"{hold_mse:.4f}", ""),
    ]
    print()
    print(f"classifier (MLP 256-128-10) held-out accuracy: {pct(clf_acc)}")
    print()
    print("| model | metric | value | target |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {' | '.join(r)} |")
    print()
    print("| model | training seconds |")
    print("| --- | --- |")
    for k, v in times.items():
        print(f"| {k} | {v:.1f} |")
    ok = is_ratio >= 0.85 and gan_story >= 0.9 and cvae_story >= 0.9 and lstm_gain >= 0.3
    print()
    print("all targets met" if ok else "SOME TARGETS MISSED")

    # -- contact sheet ------------------------------------------------------------------------
    per = 10
    grid_labels = torch.arange(10).repeat_interleave(per)
    gz, _ = sample_inputs(gan_cfg, 10 * per, seed=seed + 2)
    gan_tiles = np.concatenate(list(render_gan_frames(gen, gz, grid_labels, TILE, TILE)))
    vz = torch.randn(10 * per, cvae_cfg.latent_dim, generator=torch.Generator().manual_seed(7))
    vae_tiles = np.concatenate(list(render_frames(cvae, vz, TILE, TILE, labels=grid_labels)))
    seed_len = 4
    strip_true = held[0, :, 0].mul(255).round().to(torch.uint8).numpy()  # (T, 32, 32)
    roll = rollout(lstm, held_lat[0, :seed_len], t_len - seed_len)
    roll_frames = np.concatenate(list(render_frames(world, roll, TILE, TILE)))
    strip_pred = np.concatenate([strip_true[:seed_len], roll_frames])
    parts = [
        sample_grid(gan_tiles, per, pad=2, fill=96),
        sample_grid(vae_tiles, per, pad=2, fill=96),
        sample_grid(strip_true, t_len, pad=2, fill=96),
        sample_grid(strip_pred, t_len, pad=2, fill=96),
    ]
    width = max(p.shape[1] for p in parts)
    sheet_rows = []
    for p in parts:
        padded = np.zeros((p.shape[0], width), np.uint8)
        padded[:, : p.shape[1]] = p
        sheet_rows += [padded, np.full((8, width), 255, np.uint8)]
    write_png(args.out, np.concatenate(sheet_rows[:-1]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
