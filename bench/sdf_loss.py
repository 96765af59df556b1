"""Which loss a model of signed distance fields learns its edges best with.

A tiny cVAE on 8 glyphs (A-H) from 8 fonts at 32 px, 30 epochs on the CPU, trained three
ways: L1 with the edge weight (what workers/models/targets.py uses), L2 with it, and L1
without it. Scored on its reconstructions (decoded from the posterior mean) against the true
fields: the IoU of the inside masks (field > 0: the shape a render fills), and the mean
absolute error of the field within 2 px of the edge (|d| < 0.5 at the default spread).

    python bench/sdf_loss.py [--epochs 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import functools
import time

import torch

from workers.datasets import load_dataset
from workers.models import vae
from workers.models.targets import SDF_EDGE_WEIGHT, reconstruction

FONTS = ["DejaVuSans", "DejaVuSans-Bold", "DejaVuSerif", "DejaVuSansMono", "cmr10", "cmss10",
         "STIXGeneral", "cmtt10"]  # fmt: skip
VARIANTS: dict[str, tuple[str, float]] = {  # norm, edge weight
    "l1, edge weight": ("l1", SDF_EDGE_WEIGHT),
    "l2, edge weight": ("l2", SDF_EDGE_WEIGHT),
    "l1, no edge weight": ("l1", 0.0),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    opts = {"charset": "A-H", "target": "sdf", "fonts": FONTS, "heldout_fonts": []}
    data = load_dataset("glyphs", 32, options=opts)
    assert data.sdf is not None and data.labels is not None
    x, y = data.sdf, data.labels
    cfg = vae.VAEConfig(image_size=32, latent_dim=8, channels=16, max_channels=64, hidden=128,
                        num_classes=8, target="sdf")  # fmt: skip
    print(f"{x.shape[0]} glyphs at 32 px, {args.epochs} epochs, seed {args.seed}")
    print(f"{'loss':>20} {'mask IoU':>9} {'edge L1':>8} {'seconds':>8}")
    original = vae.reconstruction
    try:
        for name, (norm, weight) in VARIANTS.items():
            # vae_loss looks the function up in its module: swap in the variant under test.
            vae.reconstruction = functools.partial(reconstruction, norm=norm, edge_weight=weight)
            started = time.perf_counter()
            model, _ = vae.train_vae(x, cfg, epochs=args.epochs, batch_size=16, lr=2e-3,
                                     seed=args.seed, labels=y)  # fmt: skip
            with torch.inference_mode():
                mu, _ = model.encode(x, y)
                r = model.decode(mu, y)
            inside, got = x > 0, r > 0
            iou = float((inside & got).sum() / (inside | got).sum())
            edge = float((r - x).abs()[x.abs() < 0.5].mean())
            print(f"{name:>20} {iou:>9.4f} {edge:>8.4f} {time.perf_counter() - started:>8.0f}")
    finally:
        vae.reconstruction = original


if __name__ == "__main__":
    main()
