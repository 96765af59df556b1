"""Assembly cost against encoding cost for a chunked H.264 render.

2,000 frames of 128x128 moving gradient plus noise, encoded as 10 H.264 segments (the sum
of the chunk encodes is the encoding time), then joined by stream copy with the h264
format's ``assemble`` (which includes decoding the result to verify it), and by the copy
alone. Prints them, the ratio (target: assembly <= 5% of encoding) and the decoded frame
count (must be 2,000).

    python bench/assembly.py [--frames 2000] [--chunks 10] [--size 128]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np

from workers.encode import concat_copy, count_frames, ffmpeg_binary
from workers.formats import get_format


def frames(start: int, count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(start, start + count)[:, None, None]
    y = np.arange(size)[None, :, None]
    x = np.arange(size)[None, None, :]
    img = 64 + 40 * np.sin((x + 3 * t) / 9.0) + 40 * np.cos((y - 2 * t) / 13.0)
    img = img + rng.normal(0, 6, (count, size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    fmt = get_format("h264")
    ff = ffmpeg_binary()
    rng = np.random.default_rng(0)
    bounds = np.linspace(0, args.frames, args.chunks + 1).astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        segments = []
        encode_s = 0.0
        for i, (a, b) in enumerate(itertools.pairwise(bounds)):
            batch = frames(int(a), int(b - a), args.size, rng)
            seg = Path(tmp) / f"chunk-{i:05d}.mp4"
            started = time.perf_counter()
            with fmt.open_segment(
                seg, args.size, args.size, 24.0, "gray", range(a, b), ffmpeg=ff
            ) as w:
                for part in np.array_split(batch, max(1, len(batch) // 64)):
                    w.write(part)
            encode_s += time.perf_counter() - started
            segments.append(seg)
        copy_only = Path(tmp) / "copy-only.mp4"
        started = time.perf_counter()
        concat_copy(
            segments, copy_only, ffmpeg=ff, output_args=["-map", "0:v:0", "-c", "copy", "-f", "mp4"]
        )
        copy_s = time.perf_counter() - started
        out = Path(tmp) / "final.mp4"
        started = time.perf_counter()
        fmt.assemble(segments, out, args.frames, 24.0, ffmpeg=ff)
        assemble_s = time.perf_counter() - started
        decoded, secs = count_frames(out, ffmpeg=ff)
    print(f"{args.frames} frames {args.size}x{args.size} in {args.chunks} chunks")
    print(f"encoding (sum of chunks): {encode_s:.2f} s")
    print(f"stream copy alone:        {copy_s:.2f} s  ({100 * copy_s / encode_s:.1f}%)")
    print(f"assembly (copy + decode-verify): {assemble_s:.2f} s")
    print(f"ratio: {100 * assemble_s / encode_s:.1f}% (target <= 5%)")
    print(f"decoded frames: {decoded} ({secs:.3f} s)  {'OK' if decoded == args.frames else 'BAD'}")
    if decoded != args.frames:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
