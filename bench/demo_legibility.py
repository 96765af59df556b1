"""Does a reader that never saw the demo's model read its title? (issue #12, point 6)

Decodes ``farm demo``'s video, takes the middle frame of each letter's hold (from the same
``title_shots`` the render used), crops the square the field was fitted to, and reads it
with the glyph reader of bench/judges.py trained on held-out fonts only (A-Z, the fonts
bench/model_quality.py holds out, none of which the demo trains on). Prints each letter's
reading and confidence, beside the reader's accuracy on real glyphs of the demo's fonts.

    python -m bench.demo_legibility out/demo.mp4 [--threads 2]
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
import torch

from bench import judges
from bench.model_quality import GLYPH_HELDOUT
from farm.colors import parse_color
from farm.demo import RENDER
from farm.frames import parse_frames
from farm.specs import title_shots
from workers.datasets import load_dataset
from workers.encode import ffmpeg_binary


def hold_centres(text: str, total: int) -> list[tuple[str, int]]:
    """(letter, frame index) at the middle of each letter's hold."""
    out, at = [], 0
    for ch, hold, transition in title_shots(text, total):
        out.append((ch, at + hold // 2))
        at += hold + transition
    return out


def frame(video: Path, index: int, width: int, height: int) -> np.ndarray:
    raw = subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-i", str(video), "-vf", f"select=eq(n\\,{index})",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = int(RENDER["width"]), int(RENDER["height"])
    total = len(parse_frames(str(RENDER["frames"])))
    colors = RENDER["colors"]
    fill = np.array(parse_color(colors["fill"])[:3], dtype=np.float64)
    bg = np.array(parse_color(colors["background"])[:3], dtype=np.float64)

    opts = {"charset": "A-Z", "target": "sdf", "heldout_fonts": GLYPH_HELDOUT}
    held = load_dataset("glyphs", judges.READ_SIZE, options={**opts, "split": "heldout"})
    seen = load_dataset("glyphs", judges.READ_SIZE, options=opts)
    assert held.labels is not None and seen.labels is not None and held.classes is not None
    reader = judges.train_reader(held.data, held.labels, len(held.classes))
    real = float((judges.read(reader, seen.data) == seen.labels.numpy()).mean())

    side = min(w, h)
    top, left = (h - side) // 2, (w - side) // 2
    hits = 0
    picks = hold_centres(str(RENDER["text"]), total)
    for ch, index in picks:
        square = frame(args.video, index, w, h)[top : top + side, left : left + side]
        x = judges.to_reader_input(square[None], fill, bg)  # (1, 1, 32, 32)
        with torch.inference_mode():
            p = torch.softmax(reader(x), dim=1)[0]
        got = held.classes[int(p.argmax())]
        hits += got == ch
        print(f"frame {index + 1:3d}: asked {ch!r}, read {got!r} (p={float(p.max()):.2f})")
    print(f"demo keyframes read as asked: {hits}/{len(picks)}")
    print(f"the same reader on real glyphs of the training fonts: {real:.1%}")


if __name__ == "__main__":
    main()
