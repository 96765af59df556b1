"""Held-out quality and training time of the motion and stroke models at their defaults.

Trains ``model: motion`` on the procedural ``motion`` set and ``model: strokes`` on the
Hershey ``strokes`` set from their modules' ``DEFAULTS``, then prints a markdown table:

- motion: an action classifier (sklearn logistic regression on per-clip statistics) trained
  on real held-out clips reads generated rollouts of each action (target >= 90%); NPSS
  (Gopalakrishnan et al. 2019: earth mover's distance between per-angle power spectra,
  weighted by power; lower is closer) of rollouts against held-out clips of the same action,
  beside a zero-velocity baseline (the first pose held) and a nearest-clip baseline (the
  training clip whose first frame is nearest); foot skate (horizontal travel of a foot
  within 2 cm of the ground) in pixels per frame at 512 px, beside the real clips'.
- strokes: held-out negative log-likelihood per step (held-out fonts) beside a baseline of
  one Gaussian over offsets and pen-state frequencies fitted to the training fonts; and
  legibility: the glyph reader of bench/judges.py, trained on the held-out fonts' glyphs
  only (rasterised by ``workers.datasets.strokes.rasters``), reads characters the model
  writes in the default style (``--write-samples`` per character at each of
  ``--temperatures``) as the requested one (target >= 90%), beside its reading of the
  training fonts' real glyphs (all, and the written font's). The held-out NLL is in "any
  style" (the held-out fonts have no style of their own), on the fonts' grid and
  dequantised as training sees it.

    python bench/motion_quality.py [--threads 2] [--epochs-scale 1.0] [--only strokes]

and writes a contact sheet (``docs/img/motion-strokes.png``): six frames of each action's
rollout, then "Hello farm 42" written by the stroke model.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench import judges
from workers.datasets import load_dataset
from workers.datasets.motion import ACTIONS, FEET, MotionClips, forward_kinematics
from workers.datasets.strokes import StrokeSet, rasters
from workers.draw import render_skeletons
from workers.models import motion as motion_mod
from workers.models import strokes as strokes_mod
from workers.writing import frames_for as write_frames
from workers.writing import style_index, write_text

PX_PER_UNIT = 512 / 2.3  # a 512 px frame shows 2.3 body units


def clip_stats(features: np.ndarray) -> np.ndarray:
    """Per-clip statistics ``(N, D)`` of features ``(N, T, F)``: mean, spread, the dominant
    frequency's power share per angle."""
    centred = features - features.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(centred, axis=1)) ** 2  # (N, K, F)
    share = power[:, 1:].max(axis=1) / (power[:, 1:].sum(axis=1) + 1e-9)
    peak = power[:, 1:].argmax(axis=1)
    return np.concatenate([features.mean(1), features.std(1), share, peak], axis=1)


def npss(pred: np.ndarray, real: np.ndarray) -> float:
    """NPSS of ``pred`` ``(T, F)`` against ``real`` ``(T, F)``: per feature, the L1 distance
    between the cumulative normalised power spectra, averaged with the real power as weight."""

    def spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.abs(np.fft.rfft(x - x.mean(0), axis=0)) ** 2  # (K, F)
        total = p.sum(0)
        norm = np.where(total > 1e-12, p / np.maximum(total, 1e-12), 1.0 / len(p))
        return norm, total

    p, _ = spectrum(pred)
    q, weight = spectrum(real)
    emd = np.abs(np.cumsum(p, 0) - np.cumsum(q, 0)).sum(0)
    return float((emd * weight).sum() / max(weight.sum(), 1e-12))


def foot_skate(angles: np.ndarray, root: np.ndarray) -> float:
    """Mean horizontal travel in px per frame of feet within 2 cm of the ground."""
    feet = forward_kinematics(angles, root)[..., FEET, :]  # (..., T, 2, 2)
    step = np.abs(np.diff(feet[..., 0], axis=-2))
    low = feet[..., 1] < 0.02
    down = low[..., 1:, :] & low[..., :-1, :]
    return float(step[down].mean() * PX_PER_UNIT) if down.any() else 0.0


SHEET: list[np.ndarray] = []  # rows of the contact sheet, 768 px wide


def motion_sheet(model: motion_mod.MotionRNN) -> None:
    """Six frames of each action's rollout (seed 0), 128 px each, camera on the root."""
    for action in ACTIONS:
        run = motion_mod.rollout(model, [(action, 48)], seed=0)
        pick = run.positions[::8]  # (6, J, 2)
        centre = np.stack([pick[:, 0, 0], np.full(len(pick), 0.9)], axis=1)
        frames = render_skeletons(pick, 128, 128, centre=centre, scale=128 / 2.3)
        SHEET.append(np.concatenate(list(frames), axis=1))


def bench_motion(threads: int, scale: float) -> dict[str, float]:
    train = load_dataset("motion", 16, seed=0, options={"split": "train"}).meta["clips"]
    held = load_dataset("motion", 16, seed=0, options={"split": "heldout", "clips": 16})
    held_clips: MotionClips = held.meta["clips"]
    d = motion_mod.DEFAULTS
    cfg = motion_mod.MotionConfig(hidden=d["hidden"])
    started = time.perf_counter()
    model, history, _ = motion_mod.train_motion(
        train, cfg, epochs=max(1, round(d["epochs"] * scale)), batch_size=d["batch_size"],
        lr=d["lr"], seed=0, closed_loop=d["closed_loop"], noise=d["noise"],
        lr_floor=d["lr_floor"],
    )  # fmt: skip
    seconds = time.perf_counter() - started
    real = held_clips.features()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(clip_stats(real), held_clips.actions)
    t = real.shape[1]
    gen, gen_labels, ours, zero, nearest, skate = [], [], [], [], [], []
    train_feats = train.features()
    for a, action in enumerate(ACTIONS):
        refs = real[held_clips.actions == a]
        pool = train_feats[train.actions == a]
        for seed in range(8):
            run = motion_mod.rollout(model, [(action, t)], seed=seed)
            gen.append(run.features)
            gen_labels.append(a)
            skate.append(foot_skate(run.angles, run.root))
            first = run.features[0]
            near = pool[np.argmin(((pool[:, 0] - first) ** 2).sum(-1))]
            for ref in refs[:4]:
                ours.append(npss(run.features[:, :16], ref[:, :16]))
                zero.append(npss(np.repeat(first[None, :16], t, 0), ref[:, :16]))
                nearest.append(npss(near[:, :16], ref[:, :16]))
    hits = clf.predict(clip_stats(np.stack(gen))) == np.array(gen_labels)
    accuracy = float(hits.mean())
    per_action = {f"action_accuracy_{a}": float(hits[np.array(gen_labels) == i].mean())
                  for i, a in enumerate(ACTIONS)}  # fmt: skip
    motion_sheet(model)
    start = time.perf_counter()
    motion_mod.frames_for(model, [("walk", 240)], 0, list(range(180, 240)))
    chunk_ms = (time.perf_counter() - start) * 1000
    return {
        "motion_train_s": seconds,
        "motion_final_loss": history[-1]["loss"],
        "action_accuracy": accuracy,
        **per_action,
        "npss_model": float(np.mean(ours)),
        "npss_zero_velocity": float(np.mean(zero)),
        "npss_nearest_clip": float(np.mean(nearest)),
        "foot_skate_model_px": float(np.mean(skate)),
        "foot_skate_real_px": foot_skate(held_clips.angles, held_clips.root),
        "chunk_replay_240_ms": chunk_ms,
    }


def baseline_nll(train: StrokeSet, held: StrokeSet) -> float:
    """NLL per step of one Gaussian over offsets and the pen-state frequencies (with the end
    state), fitted on ``train``, on ``held``: what the decoder must beat."""

    def rows(s: StrokeSet) -> tuple[np.ndarray, np.ndarray]:
        xy = np.concatenate([s.sequence(i)[:, :2] for i in range(len(s))]).astype(np.float64)
        pens = np.concatenate([np.append(s.sequence(i)[:, 2], 2) for i in range(len(s))])
        return xy, pens.astype(int)

    xy, pens = rows(train)
    mean, cov = xy.mean(0), np.cov(xy.T)
    freq = np.bincount(pens, minlength=3) / len(pens)
    hxy, hpens = rows(held)
    inv, (_, logdet) = np.linalg.inv(cov), np.linalg.slogdet(cov)
    z = hxy - mean
    offsets = 0.5 * (np.einsum("ni,ij,nj->n", z, inv, z) + logdet) + math.log(2 * math.pi)
    pen = -np.log(freq[hpens])
    return float(offsets.mean() + pen.mean())


def glyph_set(rows: list[np.ndarray], like: StrokeSet) -> StrokeSet:
    """Stroke-3 glyphs ``rows`` as a :class:`StrokeSet` on ``like``'s scale, for rasters."""
    lengths = np.array([max(len(r), 1) for r in rows], np.int64)
    strokes = np.zeros((len(rows), int(lengths.max()), 3), np.float32)
    for i, r in enumerate(rows):
        strokes[i, : len(r)] = r
        if len(r):
            strokes[i, len(r) - 1, 2] = 1.0
    n = len(rows)
    zeros = np.zeros(n, np.int64)
    return StrokeSet(strokes, lengths, zeros, zeros, np.zeros(n), np.ones(n), like.scale,
                     like.classes, like.style_names)  # fmt: skip


def legibility(
    model: strokes_mod.StrokeDecoder, train: StrokeSet, held: StrokeSet, samples: int,
    temperatures: list[float], style: int | None,
) -> dict[str, float]:  # fmt: skip
    """Share of written characters (in style index ``style``) the held-out-font reader reads
    as requested, per temperature, beside its reading of the training fonts' real glyphs
    (all, and the written font's alone)."""
    size = judges.READ_SIZE
    reader = judges.train_reader(rasters(held, size), torch.from_numpy(held.labels),
                                 len(held.classes))  # fmt: skip
    on_real = judges.read(reader, rasters(train, size)) == train.labels
    fonts = strokes_mod.style_indices(train).numpy()
    out = {"strokes_reader_on_real": float(on_real.mean())}
    if style is not None:
        out["strokes_reader_on_real_style"] = float(on_real[fonts == style].mean())
    for t in temperatures:
        rows, labels = [], []
        for c in range(len(train.classes)):
            for s in range(samples):
                rows.append(strokes_mod.sample(model, c, seed=1000 * c + s, temperature=t,
                                               style=style))  # fmt: skip
                labels.append(c)
        read = judges.read(reader, rasters(glyph_set(rows, train), size))
        asked = np.array(labels)
        hits = read == asked
        worst = sorted(range(len(train.classes)), key=lambda c: hits[asked == c].mean())
        most = [int(np.bincount(read[asked == c]).argmax()) for c in range(len(train.classes))]
        misread = [f"{train.classes[c]}->{train.classes[most[c]]}"
                   for c in worst[:12] if hits[asked == c].mean() < 1]  # fmt: skip
        print(f"T = {t}: least legible (asked->read most):", " ".join(misread))
        out[f"strokes_legible_T{t:g}"] = float(hits.mean())
    return out


def bench_strokes(
    threads: int, scale: float, samples: int = 4, temperatures: tuple[float, ...] = (0.1, 0.3)
) -> dict[str, float]:
    train: StrokeSet = load_dataset("strokes", 16, options={"split": "train"}).meta["strokes"]
    held: StrokeSet = load_dataset("strokes", 16, options={"split": "heldout"}).meta["strokes"]
    d = strokes_mod.DEFAULTS
    fonts = strokes_mod.trained_styles(train)
    cfg = strokes_mod.StrokesConfig(num_classes=len(train.classes), num_styles=len(fonts),
                                    hidden=d["hidden"], mixtures=d["mixtures"])  # fmt: skip
    started = time.perf_counter()
    model, history, _ = strokes_mod.train_strokes(
        train, cfg, epochs=max(1, round(d["epochs"] * scale)), batch_size=d["batch_size"],
        lr=d["lr"], seed=0, augment=d["augment"], lr_floor=d["lr_floor"],
        style_dropout=d["style_dropout"], dequantise_cells=d["dequantise"],
    )  # fmt: skip
    seconds = time.perf_counter() - started
    load = os.getloadavg()[0]
    style = style_index(fonts, None)
    print(f"strokes: trained {seconds:.0f} s on {len(train)} glyphs of {', '.join(fonts)}; "
          f"writes in {fonts[style] if style is not None else 'any style'}")  # fmt: skip
    read = legibility(model, train, held, samples, list(temperatures), style)
    text = write_text(model, train.classes, "Hello farm 42", seed=0, style=style)
    SHEET.append(write_frames(text, [0], 1, 768, 128, line_width=3.0)[0])
    return {
        "strokes_train_s": seconds,
        "strokes_load_1min_after_training": load,
        "strokes_final_loss": history[-1]["loss"],
        "strokes_heldout_nll": strokes_mod.evaluate_nll(model, held),
        "strokes_heldout_nll_dequantised": strokes_mod.evaluate_nll(model, held, dequantised=True),
        "strokes_baseline_nll": baseline_nll(train, held),
        "strokes_steps": float(len(history) * math.ceil(len(train) / d["batch_size"])),
        **read,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs-scale", type=float, default=1.0)
    parser.add_argument("--only", choices=("motion", "strokes"), default=None)
    parser.add_argument("--write-samples", type=int, default=4, help="per character")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--sheet", type=Path, default=Path("docs/img/motion-strokes.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, float] = {}
    if args.only in (None, "motion"):
        results.update(bench_motion(args.threads, args.epochs_scale))
    if args.only in (None, "strokes"):
        results.update(bench_strokes(args.threads, args.epochs_scale, args.write_samples,
                                     tuple(args.temperatures)))  # fmt: skip
    if SHEET:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(SHEET, axis=0)).save(args.sheet)
    results["load_1min_at_end"] = os.getloadavg()[0]
    print("| figure | value |\n|---|---|")
    for k, v in results.items():
        print(f"| {k} | {v:.4g} |")


if __name__ == "__main__":
    main()
