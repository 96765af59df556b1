"""Does overlapping the model with ffmpeg pay? One chunk rendered twice in one run.

The real decode path (``workers.render.render_frames``, a randomly initialised ConvVAE,
bicubic upsampling to 512x512) feeds an H.264 segment: once writing inline, once through
``PipelinedWriter``. Prints both chunk times and the ratio.

    python bench/encode_pipeline.py [--frames 240] [--size 512] [--batch 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from workers.encode import PipelinedWriter, count_frames, ffmpeg_binary
from workers.formats import get_format
from workers.models.vae import ConvVAE, VAEConfig
from workers.render import render_frames


def chunk(model: ConvVAE, latents: torch.Tensor, out: Path, size: int, batch: int, overlap: bool):
    fmt = get_format("h264")
    ff = ffmpeg_binary()
    started = time.perf_counter()
    writer = fmt.open_segment(out, size, size, 24.0, "gray", range(len(latents)), ffmpeg=ff)
    sink = PipelinedWriter(writer, depth=3) if overlap else writer
    with sink:
        for frames in render_frames(model, latents, size, size, batch_size=batch):
            sink.write(frames)
    elapsed = time.perf_counter() - started
    assert count_frames(out, ffmpeg=ff)[0] == len(latents)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = ConvVAE(VAEConfig(image_size=32, latent_dim=8, channels=32)).eval()
    latents = torch.randn(args.frames, 8)
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        chunk(model, latents[:32], Path(tmp) / "warm.mp4", args.size, args.batch, True)
        for r in range(args.repeats):
            for overlap in (False, True):
                out = Path(tmp) / f"r{r}-{overlap}.mp4"
                times[overlap].append(chunk(model, latents, out, args.size, args.batch, overlap))
    inline, piped = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.frames} frames {args.size}x{args.size}, batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"inline writes:    {inline:.2f} s  ({args.frames / inline:.1f} fps)  {times[False]}")
    print(f"pipelined writes: {piped:.2f} s  ({args.frames / piped:.1f} fps)  {times[True]}")
    print(f"ratio pipelined / inline: {piped / inline:.2f}")


if __name__ == "__main__":
    main()
