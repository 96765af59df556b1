"""Frames per second of the render path, from latents to uint8 frames (no encoding).

Three models, each at 512x512 and 1280x720, batch 32: today's 16 px grey pixel VAE, a 64 px
pixel VAE (RGB where the models take ``image_channels``, else grey), and a 64 px SDF model
shaded with fill, outline, shadow and background in the same pass. The 64 px models are
today's ConvVAE at ``image_size=64`` with an untrained decoder (the SDF one's output mapped to
[-1, 1]): the speed of a decode does not depend on what its weights learned. Prints a table.

    python bench/render_fps.py [--frames 64] [--batch 32] [--device cpu] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workers.models.vae import ConvVAE, VAEConfig
from workers.render import FrameStyle, render_frames
from workers.shading import Look

SIZES = ((512, 512), (1280, 720))
SHADED = Look.from_colors(
    {
        "fill": "#f5c542",
        "outline": "#ffffff",
        "shadow": "#00000080",
        "background": "#1b1f3b",
        "outline_px": 3,
        "shadow_offset": [6, 6],
    }
)


class SDFDecoder(ConvVAE):
    """A ConvVAE whose decode is a field in [-1, 1] (tanh of the logits), as an SDF model's."""

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.decode_logits(z, labels))


@dataclass
class Case:
    name: str
    model: ConvVAE
    style: FrameStyle


def _config(size: int, channels: int) -> tuple[VAEConfig, int]:
    """A VAEConfig of ``channels`` where the models take them (issue 12), else grey."""
    kwargs: dict[str, Any] = {"image_size": size}
    try:
        return VAEConfig(**kwargs, image_channels=channels), channels  # type: ignore[call-arg]
    except TypeError:
        return VAEConfig(**kwargs), 1


def cases() -> list[Case]:
    torch.manual_seed(0)
    cfg64, c64 = _config(64, 3)
    grey = ConvVAE(VAEConfig()).eval()
    pixels = ConvVAE(cfg64).eval()
    sdf = SDFDecoder(VAEConfig(image_size=64)).eval()
    return [
        Case("16 px grey pixels (today)", grey, FrameStyle()),
        Case(f"64 px pixels, {c64} channel(s)", pixels, FrameStyle(channels=c64, out_channels=c64)),
        Case("64 px SDF, shaded", sdf, FrameStyle(target="sdf", out_channels=3, looks=(SHADED,))),
    ]


def fps(case: Case, width: int, height: int, frames: int, batch: int, device: str) -> float:
    z = torch.randn(frames, case.model.cfg.latent_dim, generator=torch.Generator().manual_seed(1))
    started = time.perf_counter()
    n = 0
    for out in render_frames(case.model, z, width, height, batch_size=batch,
                             device=device, style=case.style):  # fmt: skip
        n += out.shape[0]
        assert out.dtype == np.uint8
    return n / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"batch {args.batch}, {args.frames} frames per run, best of {args.repeats}")  # fmt: skip
    header = "| model | " + " | ".join(f"{w}x{h} fps" for w, h in SIZES) + " |"
    print(header)
    print("|" + "---|" * (len(SIZES) + 1))
    for case in cases():
        row = []
        for w, h in SIZES:
            fps(case, w, h, args.batch, args.batch, args.device)  # warm-up
            best = max(fps(case, w, h, args.frames, args.batch, args.device)
                       for _ in range(args.repeats))  # fmt: skip
            row.append(f"{best:.1f}")
        print(f"| {case.name} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
