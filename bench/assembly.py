"""Assembly cost against encoding cost for a chunked H.264 render.

2,000 frames of 128x128 moving gradient plus noise, encoded as 10 H.264 segments (the sum
of the chunk encodes is the encoding time), then timed: the stream copy alone,
the h264 format's ``assemble`` with its default check (frames counted from the container's
packets, duration and stream parameters compared), the same with ``verify: decode`` (every
frame decoded, the old check), and the packet check alone (read from the MP4's sample tables,
as assembly does, and as ffmpeg's demux, which other containers get). Each is timed ``--repeat``
times, in turn, and the median printed with its share of the encoding time (target: assembly
with its check <= 5%). The output must hold exactly the frames asked for, counted by decoding.

    python bench/assembly.py [--frames 2000] [--chunks 10] [--size 128] [--repeat 5]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workers.encode import concat_copy, count_frames, ffmpeg_binary, read_stream
from workers.formats import get_format
from workers.media.check import read_facts

FPS = 24.0


def frames(start: int, count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(start, start + count)[:, None, None]
    y = np.arange(size)[None, :, None]
    x = np.arange(size)[None, None, :]
    img = 64 + 40 * np.sin((x + 3 * t) / 9.0) + 40 * np.cos((y - 2 * t) / 13.0)
    img = img + rng.normal(0, 6, (count, size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def medians_s(runs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each run, taken in turn ``repeat`` times: a burst of load on the
    shared machine then slows one round of every run rather than all rounds of one."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    fmt = get_format("h264")
    ff = ffmpeg_binary()
    rng = np.random.default_rng(0)
    bounds = np.linspace(0, args.frames, args.chunks + 1).astype(int)
    size, n = args.size, args.frames
    with tempfile.TemporaryDirectory() as tmp:
        segments = []
        encode_s = 0.0
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            batch = frames(int(a), int(b - a), size, rng)
            seg = Path(tmp) / f"chunk-{i:05d}.mp4"
            started = time.perf_counter()
            with fmt.open_segment(seg, size, size, FPS, "gray", range(a, b), ffmpeg=ff) as w:
                for part in np.array_split(batch, max(1, len(batch) // 64)):
                    w.write(part)
            encode_s += time.perf_counter() - started
            segments.append(seg)
        copy_only = Path(tmp) / "copy-only.mp4"
        copy_args = ["-map", "0:v:0", "-c", "copy", "-f", "mp4"]
        out = Path(tmp) / "final.mp4"

        def assemble(verify: str) -> None:
            fmt.assemble(
                segments, out, n, FPS, ffmpeg=ff, options={"verify": verify},
                width=size, height=size, pix_fmt_in="gray",
            )  # fmt: skip

        t = medians_s(
            {
                "copy": lambda: concat_copy(segments, copy_only, ffmpeg=ff, output_args=copy_args),
                "tables": lambda: read_facts(copy_only, ffmpeg=ff, method="packets"),
                "demux": lambda: read_stream(copy_only, ffmpeg=ff),
                "packets": lambda: assemble("packets"),
                "decode": lambda: assemble("decode"),
            },
            args.repeat,
        )
        decoded, secs = count_frames(out, ffmpeg=ff)

    def share(s: float) -> str:
        return f"{1000 * s:6.1f} ms  ({100 * s / encode_s:.1f}% of encoding)"

    print(f"{n} frames {size}x{size} in {args.chunks} chunks, median of {args.repeat}")
    print(f"encoding (sum of chunks):          {1000 * encode_s:6.0f} ms")
    print(f"stream copy alone:                 {share(t['copy'])}")
    print(f"packet check alone, sample tables: {share(t['tables'])}")
    print(f"packet check alone, ffmpeg demux:  {share(t['demux'])}  (WebM, Matroska, GIF)")
    print(f"assembly, packet check (default):  {share(t['packets'])}  target <= 5%")
    print(f"assembly, decode check (old way):  {share(t['decode'])}")
    print(f"decode check / packet check:       {t['decode'] / t['packets']:.1f}x")
    print(f"decoded frames: {decoded} ({secs:.3f} s)  {'OK' if decoded == n else 'BAD'}")
    if decoded != n:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
