"""The assembly's description of its output from the MP4 sample tables agrees with ffmpeg's
own, for every format whose outputs carry them; the others are described by ffmpeg.

Needs only the ffmpeg binary shipped in imageio-ffmpeg (no database, broker or GPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workers.encode import ffmpeg_binary
from workers.formats import describe_output, get_format
from workers.media.mp4 import sample_table_facts
from workers.stages.assemble import described

pytestmark = [pytest.mark.integration, pytest.mark.one_pass]

W, H, FRAMES = 64, 48, 12


def encode(fmt_name: str, out: Path, fps: float) -> Path:
    fmt, ff = get_format(fmt_name), ffmpeg_binary()
    frames = np.random.default_rng(0).integers(0, 255, (FRAMES, H, W), dtype=np.uint8)  # (T, H, W)
    seg = out.parent / f"seg{fmt.segment_suffix}"
    with fmt.open_segment(
        seg, W, H, fps, "gray", range(FRAMES), {"path": str(out)}, ffmpeg=ff
    ) as w:
        w.write(frames)
    return fmt.assemble(
        [seg], out, FRAMES, fps, ffmpeg=ff, frame_numbers=list(range(FRAMES)),
        options={"path": str(out)}, width=W, height=H, pix_fmt_in="gray",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "name", "fps"),
    [("h264", "a.mp4", 24.0), ("h264", "b.mov", 25.0), ("h265", "c.mp4", 24.0),
     ("prores", "d.mov", 24000 / 1001), ("vp9", "e.webm", 24.0), ("ffv1", "f.mkv", 24.0)],
)  # fmt: skip
def test_assembly_describes_its_output_as_ffmpeg_does(
    tmp_path: Path, fmt: str, name: str, fps: float
) -> None:
    out = encode(fmt, tmp_path / name, fps)
    # MP4 and MOV are described from their tables; the others fall back to ffmpeg.
    assert (sample_table_facts(out) is not None) == name.endswith((".mp4", ".mov"))
    counted = (FRAMES, FRAMES / fps)
    ours = described(out, get_format(fmt), ffmpeg=ffmpeg_binary(), counted=counted)
    theirs = describe_output(out, fmt, ffmpeg=ffmpeg_binary(), counted=counted)
    assert ours == theirs
