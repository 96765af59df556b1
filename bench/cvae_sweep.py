"""Sweep the shape cVAE's training options against issue #12's legibility target.

Trains the glyph cVAE of ``bench/model_quality.py --only glyphs`` (A-Z at 32 px, ``target:
sdf``, the training fonts) once per configuration and seed, and reads its storyboard
keyframes at 512² with the same reader (trained on the held-out fonts only, once, cached in
``--reader-cache``). Per run it prints the bench's figure (storyboard latents from seed
1000: 52 shots, 104 keyframes) and, to see past a one-shot difference, the same figure over
``--story-seeds`` storyboards (1000, 2000, ...), the edge width and the training seconds.

    python bench/cvae_sweep.py --threads 1 --seeds 0 1 \\
        --config latent=2,epochs=160 --config latent=2,epochs=240,kl_warmup=40

A configuration is comma-separated ``key=value``: ``latent``, ``epochs``, ``kl_warmup``
(epochs), ``kl_weight``, ``free_bits`` (nats per dimension), ``lr``, ``lr_schedule``
(constant, cosine), ``conditioning`` (concat, film), ``width`` (the finest stage's),
``hidden`` (the dense layers'), ``embed`` (the class embedding's size), ``batch`` and
``min_std`` (the posterior's floor). Unset keys take the shape cVAE's defaults
(farm.families.SHAPE_CVAE, then the 32 px size row).
``--dump DIR`` writes each run's misread keyframes there as PNG, captioned requested>read.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.model_quality import (
    GLYPH_CHARSET,
    GLYPH_HELDOUT,
    GLYPH_SIZE,
    _shaded_style,
    cached_reader,
    storyboard_legibility,
)
from farm.families import VAE_DEFAULTS, shape_cvae_defaults, size_defaults
from workers.datasets import load_dataset
from workers.models.vae import VAEConfig, train_vae

KEYS = {
    "latent": int,
    "epochs": int,
    "kl_warmup": int,
    "kl_weight": float,
    "free_bits": float,
    "lr": float,
    "lr_schedule": str,
    "conditioning": str,
    "width": int,
    "hidden": int,
    "embed": int,
    "batch": int,
    "min_std": float,
}


def parse_config(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in KEYS:
            raise SystemExit(f"unknown key {key!r} in --config (use {', '.join(KEYS)})")
        out[key] = KEYS[key](value)
    return out


def dump_frames(folder: Path, tag: str, frames: list[np.ndarray], captions: list[str]) -> None:
    """Misread keyframes side by side at 128 px, one PNG per storyboard, captioned."""
    if not frames:
        return
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    side = 128
    sheet = Image.new("RGB", (side * len(frames), side + 16), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for i, (frame, caption) in enumerate(zip(frames, captions, strict=True)):
        sheet.paste(Image.fromarray(frame).resize((side, side)), (i * side, 16))
        draw.text((i * side + 4, 2), caption, fill=(255, 255, 255))
    sheet.save(folder / f"{tag.replace(',', '_')}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    ap.add_argument("--story-seeds", type=int, default=4, help="storyboards per run")
    ap.add_argument("--config", action="append", default=[], help="key=value,...")
    ap.add_argument("--reader-cache", type=Path, default=Path("/tmp/cvae_sweep_reader.st"))
    ap.add_argument("--results", type=Path, default=None, help="append JSON lines here")
    ap.add_argument("--dump", type=Path, default=None, help="write misread keyframes here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    opts = {"charset": GLYPH_CHARSET, "target": "sdf", "heldout_fonts": GLYPH_HELDOUT}
    train = load_dataset("glyphs", GLYPH_SIZE, seed=0, options=opts)
    held = load_dataset("glyphs", GLYPH_SIZE, seed=0, options={**opts, "split": "heldout"})
    assert train.sdf is not None and train.labels is not None and train.classes is not None
    assert held.labels is not None
    n_cls = len(train.classes)
    reader = cached_reader(args.reader_cache, held, n_cls, seed=0)
    style = _shaded_style(train.sdf_spread_px)
    size_row = size_defaults("vae", GLYPH_SIZE)
    base = shape_cvae_defaults("vae", "glyphs", True)

    print("| config | seed | bench (104) | all storyboards | edge px | train s | load |")
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for text in args.config or [""]:
        conf = parse_config(text)
        latent = conf.get("latent", base["latent_dim"])
        epochs = conf.get("epochs", base["epochs"])
        for seed in args.seeds:
            cfg = VAEConfig(
                image_size=GLYPH_SIZE,
                latent_dim=latent,
                channels=conf.get("width", size_row["width"]),
                num_classes=n_cls,
                target="sdf",
                hidden=conf.get("hidden", 256),
                class_embed_dim=conf.get("embed", 8),
                conditioning=conf.get("conditioning", base.get("conditioning", "concat")),
                min_std=conf.get("min_std", base.get("min_std", 0.0)),
            )
            started, cpu = time.perf_counter(), time.process_time()
            cvae, history = train_vae(
                train.sdf,
                cfg,
                epochs=epochs,
                batch_size=conf.get("batch", size_row["batch_size"]),
                lr=conf.get("lr", VAE_DEFAULTS["lr"]),
                seed=seed,
                labels=train.labels,
                kl_warmup_epochs=conf.get("kl_warmup", base.get("kl_warmup_epochs", 0)),
                kl_weight=conf.get("kl_weight", 1.0),
                free_bits=conf.get("free_bits", 0.0),
                lr_schedule=conf.get("lr_schedule", "constant"),
            )
            secs = time.perf_counter() - started
            cpu_secs = time.process_time() - cpu
            load = os.getloadavg()[0]
            accs, misread, edge = [], [], 0.0
            for k in range(args.story_seeds):
                wrong: list[tuple[int, int]] = []
                frames: list[np.ndarray] = []
                _, acc, e, _ = storyboard_legibility(
                    cvae,
                    reader,
                    n_cls,
                    latent,
                    style,
                    seed=1000 * (k + 1),
                    misread=wrong,
                    misread_frames=frames,
                )
                accs.append(acc)
                misread.append([f"{train.classes[a]}>{train.classes[b]}" for a, b in wrong])
                if args.dump is not None:
                    tag = f"{text or 'default'}-s{seed}-b{1000 * (k + 1)}".replace("=", "")
                    dump_frames(args.dump, tag, frames, misread[-1])
                edge = e if k == 0 else edge
            mean_acc = sum(accs) / len(accs)
            print(
                f"| {text or 'default'} | {seed} | {100 * accs[0]:.1f}% | {100 * mean_acc:.1f}% "
                f"| {edge:.2f} | {secs:.0f} (CPU {cpu_secs:.0f}) | {load:.1f} |",
                flush=True,
            )
            if args.results is not None:
                row = {
                    "config": text or "default",
                    "seed": seed,
                    "bench": accs[0],
                    "storyboards": accs,
                    "misread": misread,
                    "edge": edge,
                    "train_s": secs,
                    "cpu_s": cpu_secs,
                    "load": load,
                    "final": history[-1],
                }
                with args.results.open("a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
