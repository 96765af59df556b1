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

The digits split is fixed: the first 80% train, the last 20% are held out. Each model's
training prints wall and CPU seconds with the load average. ``--reader-cache FILE`` keeps the
glyph reader between runs; ``--gan-steps N`` and ``--epochs N`` shorten a run to time a
model's per-step cost (bench/cvae_sweep.py sweeps the glyph cVAE's options).
"""

from __future__ import annotations

import argparse
import math
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPClassifier

from bench import judges
from farm.colors import parse_color
from farm.families import GAN_DEFAULTS, VAE_DEFAULTS, shape_cvae_defaults, size_defaults
from workers.datasets import Dataset, load_dataset, load_digits_images, moving_digits
from workers.datasets.fonts import DEFAULT_HELDOUT
from workers.models import gan as gan_mod
from workers.models import lstm as lstm_mod
from workers.models import vae as vae_mod
from workers.models.gan import GANConfig, sample_inputs, train_gan
from workers.models.lstm import LSTMConfig, predict_next, rollout, train_lstm
from workers.models.vae import ConvVAE, VAEConfig, evaluate_elbo, latent_means, train_vae
from workers.render import (
    GREY,
    FrameStyle,
    finish_frames,
    render_frames,
    render_gan_frames,
    sample_grid,
)
from workers.shading import Look
from workers.shots import storyboard_class_weights, storyboard_keyframes, storyboard_latents

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
    """``fn()`` and its wall seconds; the process's CPU seconds and the load average are
    printed beside them, since on a shared box the CPU seconds of a one-thread run are the
    better estimate of what a quiet core would take."""
    started, cpu = time.perf_counter(), time.process_time()
    out = fn()
    secs = time.perf_counter() - started
    cpu_secs = time.process_time() - cpu
    load = os.getloadavg()[0]
    print(f"trained {label} in {secs:.1f} s (CPU {cpu_secs:.1f} s, load {load:.1f})", flush=True)
    return out, secs


def digits_section(args: argparse.Namespace) -> None:
    """The digits: VAE, cVAE, cGAN and the latent LSTM (unchanged from before glyphs)."""
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


# -- glyphs and sprites (issue #12) -----------------------------------------------------------

GLYPH_SIZE = 32
GLYPH_CHARSET = "A-Z"
# The reader learns from held-out fonts only; three (the data set's default) leave it 78
# glyphs, so three more widen the styles it has seen (all are absent from the training set).
GLYPH_HELDOUT = [
    *DEFAULT_HELDOUT,
    "DejaVuSansMono-Oblique",
    "cmss10",
    "STIXGeneralItalic",
]
FILL, BACKGROUND = "#f5c542", "#1b1f3b"
RENDER = 512


def _rgb(hex_colour: str) -> np.ndarray:
    c = parse_color(hex_colour)
    return np.array(c[:3], dtype=np.float64)


def _shaded_style(spread_px: float) -> FrameStyle:
    look = Look.from_colors({"fill": FILL, "background": BACKGROUND})
    return FrameStyle(target="sdf", channels=1, out_channels=3, spread_px=spread_px, looks=(look,))


def _glyph_shots(n: int, hold: int) -> list[dict[str, int]]:
    """Every letter twice (forwards then backwards), each held, morphing between."""
    order = [*range(n), *range(n - 1, -1, -1)]
    return [{"class": c, "hold": hold, "transition": 4} for c in order]


def _reader_features_of_frames(
    reader: judges.Reader, frames: np.ndarray, fill: np.ndarray, bg: np.ndarray
) -> tuple[torch.Tensor, np.ndarray]:
    x = judges.to_reader_input(frames, fill, bg)  # (B, 1, 32, 32)
    return x, judges.coverage(frames, fill, bg)


def cached_reader(cache: Path | None, held: Dataset, n_cls: int, seed: int) -> judges.Reader:
    """The reader trained on ``held``; with ``cache``, loaded from it when it exists (a
    safetensors file of its weights) and saved to it when not, to time the models alone."""
    if cache is not None and cache.exists():
        reader = judges.Reader(n_cls)
        reader.load_state_dict(load_file(str(cache)))
        return reader.eval()
    assert held.labels is not None
    reader = judges.train_reader(held.data, held.labels, n_cls, seed=seed)
    if cache is not None:
        save_file({k: v.contiguous() for k, v in reader.state_dict().items()}, str(cache))
    return reader


STORYBOARDS = 4


def storyboard_legibility(
    cvae: ConvVAE,
    reader: judges.Reader,
    n_cls: int,
    latent: int,
    style: FrameStyle,
    seed: int = 1000,
    misread: list[tuple[int, int]] | None = None,
    temperature: float = 1.0,
    misread_frames: list[np.ndarray] | None = None,
) -> tuple[list[int], float, float, float]:
    """The storyboard's keyframes (every class twice, prior latents from ``seed``) rendered
    at RENDER² and read by ``reader``: (keyframe positions, share read as requested, edge
    width in px, render seconds). ``misread`` collects (requested, read) pairs and
    ``misread_frames`` their frames ``(512, 512, 3)``, to look at."""
    fill, bg = _rgb(FILL), _rgb(BACKGROUND)
    shots = _glyph_shots(n_cls, hold=2)
    keys = storyboard_keyframes(shots, n_cls)
    z = temperature * storyboard_latents(shots, keys, latent, seed=seed, num_classes=n_cls)
    w = storyboard_class_weights(shots, keys, n_cls)
    started = time.perf_counter()
    frames = np.concatenate(
        list(render_frames(cvae, z, RENDER, RENDER, labels=w, batch_size=32, style=style))
    )  # (K, 512, 512, 3)
    render_secs = time.perf_counter() - started
    x, cov = _reader_features_of_frames(reader, frames, fill, bg)
    want = w.argmax(1).numpy()
    got = judges.read(reader, x)
    if misread is not None:
        misread += [(int(a), int(b)) for a, b in zip(want, got, strict=True) if a != b]
    if misread_frames is not None:
        misread_frames += [frames[i] for i in np.flatnonzero(want != got)]
    return keys, float((got == want).mean()), judges.edge_width(cov), render_secs


def glyphs_section(args: argparse.Namespace) -> None:
    """cVAE (and cGAN) on glyphs A-Z at 32 px with ``target: sdf``: legibility of 512 px
    storyboard renders to a reader trained on held-out fonts, their edge width, and the
    cGAN's Fréchet distance and precision/recall in the reader's feature space."""
    seed = args.seed
    opts = {"charset": GLYPH_CHARSET, "target": "sdf", "heldout_fonts": GLYPH_HELDOUT}
    train = load_dataset("glyphs", GLYPH_SIZE, seed=seed, options=opts)
    held = load_dataset("glyphs", GLYPH_SIZE, seed=seed, options={**opts, "split": "heldout"})
    assert train.sdf is not None and train.labels is not None and train.classes is not None
    assert held.labels is not None and train.styles is not None
    n_cls = len(train.classes)
    used = (
        sorted({train.style_names[i] for i in train.styles.tolist()}) if train.style_names else []
    )
    print(
        f"glyphs: {train.data.shape[0]} training glyphs from {len(used)} fonts, "
        f"{held.data.shape[0]} held-out glyphs from {len(GLYPH_HELDOUT)} fonts",
        flush=True,
    )
    times: dict[str, float] = {}
    # The reader sees real coverage at READ_SIZE (the glyph size here), held-out fonts only.
    assert GLYPH_SIZE == judges.READ_SIZE
    reader, times["reader (held-out fonts)"] = timed(
        "reader", lambda: cached_reader(args.reader_cache, held, n_cls, seed)
    )
    reader_train_acc = float((judges.read(reader, train.data) == train.labels.numpy()).mean())
    reader_held_acc = float((judges.read(reader, held.data) == held.labels.numpy()).mean())

    vd = {**size_defaults("vae", GLYPH_SIZE), **shape_cvae_defaults("vae", "glyphs", True)}
    epochs = args.epochs or vd["epochs"]
    latent = args.latent_dim or vd["latent_dim"]
    cfg = VAEConfig(
        image_size=GLYPH_SIZE,
        latent_dim=latent,
        channels=vd["width"],
        num_classes=n_cls,
        target="sdf",
        conditioning=vd.get("conditioning", "concat"),
        min_std=vd.get("min_std", 0.0),
    )
    (cvae, _), times["cVAE (sdf)"] = timed(
        "cVAE",
        lambda: train_vae(
            train.sdf,
            cfg,
            epochs=epochs,
            batch_size=vd["batch_size"],
            lr=VAE_DEFAULTS["lr"],
            seed=seed,
            labels=train.labels,
            kl_warmup_epochs=vd.get("kl_warmup_epochs", 0),
        ),
    )
    style = _shaded_style(train.sdf_spread_px)
    # Four storyboards (prior latents from seeds 1000-4000, 416 keyframes for A-Z): one
    # storyboard's 104 keyframes move the share by a point a keyframe.
    boards = [
        storyboard_legibility(cvae, reader, n_cls, latent, style, seed=1000 * (k + 1))
        for k in range(STORYBOARDS)
    ]
    keys = [k for b in boards for k in b[0]]
    story_acc = float(np.mean([b[1] for b in boards]))
    first_acc = boards[0][1]
    glyph_edge = float(np.mean([b[2] for b in boards]))
    render_secs = sum(b[3] for b in boards)

    # Today's grey pixel path: the real 16 px digits, bicubically upsampled by the renderer.
    dig, _ = load_digits_images(16)
    dig_frames = finish_frames(dig[:64], RENDER, RENDER, GREY).numpy()  # (64, 512, 512)
    digit_edge = judges.edge_width(dig_frames.astype(np.float64) / 255.0)

    rows = [
        (
            "reader",
            "accuracy, real glyphs of the held-out fonts it trained on",
            pct(reader_held_acc),
            "",
        ),
        ("reader", "accuracy, real glyphs of the cVAE's training fonts", pct(reader_train_acc), ""),
        (
            "cVAE sdf",
            f"storyboard keyframes at {RENDER}² read as requested ({len(keys)}, "
            f"{STORYBOARDS} storyboards)",
            pct(story_acc),
            ">= 97%",
        ),
        (
            "cVAE sdf",
            f"the same, the first storyboard only ({len(boards[0][0])})",
            pct(first_acc),
            "",
        ),
        ("cVAE sdf", f"edge width at {RENDER}² (px)", f"{glyph_edge:.2f}", "<= 2.5"),
        ("16 px grey digits", f"edge width, bicubic to {RENDER}² (px)", f"{digit_edge:.2f}", ""),
    ]
    print(f"rendered {len(keys)} keyframes at {RENDER}x{RENDER} in {render_secs:.1f} s")
    # The cVAE's figures first, so a slow cGAN cannot hold them back.
    print_table(f"glyphs {GLYPH_CHARSET}, {GLYPH_SIZE} px, target sdf: cVAE", rows, times)

    gen = None
    if not args.no_gan:
        gd = size_defaults("gan", GLYPH_SIZE)
        gan_cfg = GANConfig(
            image_size=GLYPH_SIZE,
            latent_dim=gd["latent_dim"],
            num_classes=n_cls,
            channels=gd["width"],
            d_channels=gd["width"],
            target="sdf",
        )
        (gen, _, _), times["cGAN (sdf)"] = timed(
            "cGAN",
            lambda: train_gan(
                train.sdf,
                train.labels,
                gan_cfg,
                steps=args.gan_steps or gd["steps"],
                batch_size=gd["batch_size"],
                lr=GAN_DEFAULTS["lr"],
                d_lr=GAN_DEFAULTS["d_lr"],
                betas=GAN_DEFAULTS["betas"],
                ema_decay=GAN_DEFAULTS["ema_decay"],
                seed=seed,
            ),
        )
        n_fake = train.data.shape[0]
        gz, glab = sample_inputs(gan_cfg, n_fake, seed=seed + 1)
        fake_frames = np.concatenate(
            list(render_gan_frames(gen, gz, glab, RENDER, RENDER, batch_size=32, style=style))
        )
        fx, fcov = _reader_features_of_frames(reader, fake_frames, _rgb(FILL), _rgb(BACKGROUND))
        assert glab is not None
        gan_read = float((judges.read(reader, fx) == glab.numpy()).mean())
        f_real = judges.features(reader, train.data)
        f_held = judges.features(reader, held.data)
        f_fake = judges.features(reader, fx)
        fd_fake = judges.frechet_distance(f_fake, f_real)
        fd_held = judges.frechet_distance(f_held, f_real)
        p_fake, r_fake = judges.precision_recall(f_real, f_fake)
        p_held, r_held = judges.precision_recall(f_real, f_held)
        rows += [
            ("cGAN sdf", "samples read as their label", pct(gan_read), ""),
            (
                "cGAN sdf",
                f"edge width at {RENDER}² (px)",
                f"{judges.edge_width(fcov):.2f}",
                "<= 2.5",
            ),
            (
                "cGAN sdf",
                "Fréchet distance to training fonts (reader features)",
                f"{fd_fake:.1f}",
                "",
            ),
            ("held-out fonts (real)", "Fréchet distance to training fonts", f"{fd_held:.1f}", ""),
            (
                "cGAN sdf",
                "precision / recall vs training fonts",
                f"{pct(p_fake)} / {pct(r_fake)}",
                "",
            ),
            (
                "held-out fonts (real)",
                "precision / recall vs training fonts",
                f"{pct(p_held)} / {pct(r_held)}",
                "",
            ),
        ]

    print_table(f"glyphs {GLYPH_CHARSET}, {GLYPH_SIZE} px, target sdf", rows, times)
    print(
        "legibility target met"
        if story_acc >= 0.97
        else f"LEGIBILITY TARGET MISSED by {100 * (0.97 - story_acc):.1f} points"
    )
    glyph_sheet(args.glyphs_out, cvae, train, latent, style, gen)


def glyph_sheet(
    out: Path, cvae: ConvVAE, train: Dataset, latent: int, style: FrameStyle, gen: Any
) -> None:
    """A few letters (columns) in a few training fonts (rows, from the checkpoint's
    ``style_means``), rendered at 128 px through the shading path; the cGAN's below."""
    assert train.styles is not None and train.style_names is not None
    assert train.labels is not None and train.sdf is not None and train.classes is not None
    means = latent_means(
        cvae, train.sdf, train.styles, len(train.style_names), train.labels
    )  # (n_styles, D)
    present = sorted(set(train.styles.tolist()))
    fonts = [present[i] for i in np.linspace(0, len(present) - 1, 5).round().astype(int)]
    letters = [train.classes.index(c) for c in "AFGKMRSWZ"]
    tile = 128
    z = torch.stack([means[f] for f in fonts for _ in letters])
    lab = torch.tensor([c for _ in fonts for c in letters])
    looks = []
    colours = [
        ("#f5c542", "#1b1f3b"),
        ("#ffffff", "#c0392b"),
        ("#1b1f3b", "#f4efe1"),
        ("#7fdbff", "#001f3f"),
        ("#2ecc40", "#111111"),
    ]
    for fill, bg in colours:
        looks += [
            Look.from_colors(
                {"fill": fill, "background": bg, "outline": "#000000" if bg == "#f4efe1" else None}
            )
        ] * len(letters)
    sty = FrameStyle(
        target="sdf", channels=1, out_channels=3, spread_px=style.spread_px, looks=tuple(looks)
    )
    tiles = np.concatenate(list(render_frames(cvae, z, tile, tile, labels=lab, style=sty)))
    rows = [tiles[i * len(letters) : (i + 1) * len(letters)] for i in range(len(fonts))]
    if gen is not None:
        gz = torch.randn(
            len(letters), gen.cfg.latent_dim, generator=torch.Generator().manual_seed(3)
        )
        rows.append(
            np.concatenate(
                list(render_gan_frames(gen, gz, torch.tensor(letters), tile, tile, style=style))
            )
        )
    write_sheet(out, rows, tile)


def write_sheet(out: Path, rows: list[np.ndarray], tile: int, pad: int = 4) -> None:
    """Rows of uint8 tiles ``(n, tile, tile, 3 | 4)`` as one RGB PNG (Pillow), on grey."""
    ncol = max(r.shape[0] for r in rows)
    sheet = Image.new("RGB", (pad + ncol * (tile + pad), pad + len(rows) * (tile + pad)), "#808080")
    for ri, r in enumerate(rows):
        for ci, t in enumerate(r):
            im = Image.fromarray(t, "RGBA" if t.shape[-1] == 4 else "RGB")
            sheet.paste(im.convert("RGB"), (pad + ci * (tile + pad), pad + ri * (tile + pad)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    print(f"wrote {out}")


def pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def print_table(title: str, rows: list[tuple[str, str, str, str]], times: dict[str, float]) -> None:
    print()
    print(f"### {title}")
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
    print(flush=True)


SPRITE_SIZE = 32
SPRITE_COUNT = 3000


def _probe_input(x: torch.Tensor) -> np.ndarray:
    """Sprites ``(N, 4, S, S)`` straight RGBA as probe features: premultiplied colour, and
    each channel's sum over the alpha's sum (a linear map cannot divide by the area)."""
    rgb = x[:, :3] * x[:, 3:4]  # (N, 3, S, S)
    mean = rgb.sum((2, 3)) / x[:, 3].sum((1, 2)).clamp(min=1e-6)[:, None]  # (N, 3)
    return torch.cat([rgb.reshape(x.shape[0], -1), mean], 1).numpy().astype(np.float64)


def sprites_section(args: argparse.Namespace) -> None:
    """VAE on RGBA sprites at 32 px (pixels): a ridge probe trained on real sprites reads
    the colour factor from the VAE's reconstructions of held-out-seed sprites."""
    seed = args.seed
    opts = {"target": "pixels", "count": SPRITE_COUNT}
    train = load_dataset("sprites", SPRITE_SIZE, seed=seed, options=opts)
    held = load_dataset("sprites", SPRITE_SIZE, seed=seed + 1, options={**opts, "split": "heldout"})
    assert train.factors is not None and held.factors is not None
    times: dict[str, float] = {}
    vd = size_defaults("vae", SPRITE_SIZE)
    epochs = args.epochs or vd["epochs"]
    latent = args.latent_dim or vd["latent_dim"]
    cfg = VAEConfig(
        image_size=SPRITE_SIZE,
        latent_dim=latent,
        channels=vd["width"],
        image_channels=train.channels,
    )
    (vae, _), times["VAE (RGBA pixels)"] = timed(
        "VAE",
        lambda: train_vae(
            train.data,
            cfg,
            epochs=epochs,
            batch_size=vd["batch_size"],
            lr=VAE_DEFAULTS["lr"],
            seed=seed,
        ),
    )
    held_eval = evaluate_elbo(vae, held.data, samples=2)
    with torch.inference_mode():
        mu, _ = vae.encode(held.data)
        recon = vae.decode(mu)  # (N, 4, S, S)
    colour = train.factors["colour"].numpy() * 255.0
    want = held.factors["colour"].numpy() * 255.0
    probe = Ridge(alpha=1.0).fit(_probe_input(train.data), colour)
    mae_real = float(np.abs(probe.predict(_probe_input(held.data)) - want).mean())
    mae_recon = float(np.abs(probe.predict(_probe_input(recon)) - want).mean())
    mae_mean = float(np.abs(colour.mean(0) - want).mean())
    rows = [
        ("VAE", "held-out recon MSE (per pixel, RGBA)", f"{held_eval['mse']:.4f}", ""),
        ("probe (ridge)", "colour MAE on real held-out sprites (0-255)", f"{mae_real:.1f}", ""),
        ("VAE", "colour MAE of reconstructions (0-255)", f"{mae_recon:.1f}", "stated"),
        ("baseline", "colour MAE predicting the mean colour", f"{mae_mean:.1f}", ""),
    ]
    print_table(f"sprites, {SPRITE_SIZE} px RGBA, {SPRITE_COUNT} training", rows, times)
    look = Look.from_colors({"background": "#f4efe1"}, clear=True)
    sty = FrameStyle(channels=4, out_channels=3, looks=(look,))
    tile, per = 96, 10
    real_t = finish_frames(held.data[:per], tile, tile, sty).numpy()
    rec_t = np.concatenate(list(render_frames(vae, mu[:per], tile, tile, style=sty)))
    zz = torch.randn(per, latent, generator=torch.Generator().manual_seed(5))
    smp_t = np.concatenate(list(render_frames(vae, zz, tile, tile, style=sty)))
    write_sheet(args.sprites_out, [real_t, rec_t, smp_t], tile)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=("digits", "glyphs", "sprites"), default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/img/samples.png"))
    ap.add_argument("--glyphs-out", type=Path, default=Path("docs/img/glyphs.png"))
    ap.add_argument("--sprites-out", type=Path, default=Path("docs/img/sprites.png"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-gan", action="store_true", help="glyphs: skip the cGAN")
    ap.add_argument("--epochs", type=int, default=None, help="override the per-size default")
    ap.add_argument("--latent-dim", type=int, default=None, help="override the default")
    ap.add_argument("--gan-steps", type=int, default=None, help="glyphs: override the cGAN's")
    ap.add_argument(
        "--reader-cache", type=Path, default=None, help="glyphs: load/save the reader here"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.only in (None, "digits"):
        digits_section(args)
    if args.only in (None, "glyphs"):
        glyphs_section(args)
    if args.only in (None, "sprites"):
        sprites_section(args)


if __name__ == "__main__":
    main()
