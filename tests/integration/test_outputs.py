"""What lands on disk: every format through the farm, sequences named the studio way,
exact chunked encoding, previews, audio, and refusals at submission."""

from __future__ import annotations

import math
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from farm.errors import SpecError
from farm.specs import parse_spec
from tests.integration.harness import Farm
from workers.encode import ffmpeg_binary
from workers.formats import describe_output

pytestmark = pytest.mark.one_pass


@pytest.fixture(scope="module")
def vae(farm: Farm) -> str:
    job = farm.submit({"kind": "train", "name": "out-vae", "epochs": 2, "latent_dim": 4})
    assert farm.wait(job, timeout_s=240)["state"] == "succeeded", farm.logs()
    return "job:out-vae"


def render(farm: Farm, name: str, output: object, **kw: object) -> dict:
    spec = {"kind": "render", "name": name, "checkpoint": "job:out-vae", "frames": "1-10",
            "chunk_size": 4, "width": 64, "height": 48, "fps": 25, "output": output}  # fmt: skip
    spec.update(kw)
    job = farm.submit(spec)
    row = farm.wait(job, timeout_s=120)
    assert row["state"] == "succeeded", (row, farm.logs())
    return farm.detail(job)


def artifact(detail: dict, kind: str) -> dict:
    return next(a for a in detail["artifacts"] if a["kind"] == kind)


def decode_gray(path: Path) -> np.ndarray:
    args = ["-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    raw = subprocess.run([ffmpeg_binary(), *args], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8)


@pytest.mark.parametrize(
    ("fmt", "path"),
    [("h264", "f/a.mp4"), ("h265", "f/b.mp4"), ("vp9", "f/c.webm"), ("prores", "f/d.mov"),
     ("gif", "f/e.gif"), ("ffv1", "f/f.mkv")],
)  # fmt: skip
def test_every_video_format_decodes_to_the_requested_frames(
    farm: Farm, vae: str, fmt: str, path: str
) -> None:
    d = render(farm, f"fmt-{fmt}", {"format": fmt, "path": path})
    video = artifact(d, "video")
    info = describe_output(Path(video["path"]), fmt, ffmpeg=ffmpeg_binary())
    assert (info["frames"], info["width"], info["height"]) == (10, 64, 48)
    assert info["duration"] == pytest.approx(10 / 25, abs=1 / 25)
    assert Path(artifact(d, "poster")["path"]).is_file()
    assert Path(artifact(d, "contact_sheet")["path"]).is_file()


@pytest.mark.parametrize(
    ("frames", "expected"),
    [("1001-1010", [f"sh010.{n}.png" for n in range(1001, 1011)]),
     ("1-20x2", [f"sh020.{n:04d}.png" for n in range(1, 21, 2)])],
)  # fmt: skip
def test_png_sequences_are_named_by_the_job_frame_numbers(
    farm: Farm, vae: str, frames: str, expected: list[str]
) -> None:
    shot = expected[0].split(".")[0]
    template = (
        f"shots/{shot}/{shot}.####.png"
        if frames.startswith("1001")
        else f"shots/{shot}/{shot}.%04d.png"
    )
    d = render(
        farm, f"seq-{shot}", {"format": "png16", "path": template}, frames=frames, chunk_size=3
    )
    folder = farm.settings.output_root_abs() / "shots" / shot
    assert sorted(p.name for p in folder.iterdir()) == expected
    seq = artifact(d, "sequence")
    assert seq["meta"]["frames"] == 10


def test_chunked_and_unchunked_lossless_renders_are_identical(farm: Farm, vae: str) -> None:
    a = render(farm, "ffv1-chunked", {"format": "ffv1", "path": "x/chunked.mkv"}, chunk_size=3)
    b = render(farm, "ffv1-whole", {"format": "ffv1", "path": "x/whole.mkv"}, chunk_size=10)
    fa = decode_gray(Path(artifact(a, "video")["path"]))
    fb = decode_gray(Path(artifact(b, "video")["path"]))
    assert fa.size == 10 * 64 * 48
    assert np.array_equal(fa, fb)


def test_a_one_chunk_render_takes_its_segment_as_the_video(farm: Farm, vae: str) -> None:
    d = render(farm, "one-chunk", {"path": "one/whole.mp4", "keep_segments": True},
               chunk_size=10)  # fmt: skip
    video, segment = Path(artifact(d, "video")["path"]), Path(artifact(d, "segment")["path"])
    assert video.stat().st_ino == segment.stat().st_ino  # linked into place: no concat copy
    assert decode_gray(video).size == 10 * 64 * 48
    for kind in ("poster", "contact_sheet"):
        assert Path(artifact(d, kind)["path"]).is_file()


def test_verify_decode_is_honoured_end_to_end(farm: Farm, vae: str) -> None:
    d = render(farm, "decode-check", {"path": "dc/a.webm", "format": "vp9", "verify": "decode"})
    assert d["spec"]["output"]["options"]["verify"] == "decode"
    info = describe_output(Path(artifact(d, "video")["path"]), "vp9", ffmpeg=ffmpeg_binary())
    assert info["frames"] == 10


def test_audio_is_muxed_and_fitted_to_the_video_length(farm: Farm, vae: str) -> None:
    wav = farm.settings.output_root_abs() / "audio" / "tone.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(wav), "wb") as w:  # 1 s of 440 Hz: longer than the 0.4 s video
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        tone = (int(8000 * math.sin(i / 48000 * 2 * math.pi * 440)) for i in range(48000))
        w.writeframes(b"".join(struct.pack("<h", s) for s in tone))
    d = render(farm, "with-audio", {"path": "a/sound.mp4", "audio": "audio/tone.wav"})
    path = Path(artifact(d, "video")["path"])
    probe = subprocess.run([ffmpeg_binary(), "-hide_banner", "-i", str(path)],
                           capture_output=True, text=True).stderr  # fmt: skip
    assert "Audio: aac" in probe
    assert "Duration: 00:00:00.40" in probe


@pytest.mark.parametrize(
    ("output", "width", "field"),
    [({"format": "av1", "path": "x.mp4"}, 64, "output.format"),
     ({"format": "prores", "path": "x.mp4"}, 64, "output.path"),
     ({"format": "png8", "path": "shots/sh.png"}, 64, "output.path"),
     ({"format": "h264", "path": "x.mp4"}, 65, "width"),
     ({"format": "gif", "path": "x.gif", "audio": "a.wav"}, 64, "output.audio"),
     ({"format": "h264", "path": "x.mp4", "crf": 99}, 64, "output.crf"),
     ({"format": "h264", "path": "x.mp4", "verify": "full"}, 64, "output.verify"),
     ({"format": "png8", "path": "s/a.####.png", "verify": 1}, 64, "output.verify")],
)  # fmt: skip
def test_impossible_outputs_are_refused_at_submission(output: dict, width: int, field: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_spec({"kind": "render", "checkpoint": "job:x", "frames": "1-9", "width": width,
                    "height": 48, "output": output})  # fmt: skip
    assert field in [f for f, _ in e.value.problems], e.value.problems
