"""The three model families as farm jobs: train each briefly, render each mode from them,
refuse mismatched renders at submission, resume a killed training task from its checkpoint."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from farm.errors import SpecError
from farm.models import Task
from tests.integration.harness import Farm
from workers.encode import count_frames, ffmpeg_binary

pytestmark = pytest.mark.one_pass

GAN = {"kind": "train", "model": "gan", "steps": 30, "batch_size": 32, "latent_dim": 8,
       "checkpoint_every": 10}  # fmt: skip
CVAE = {"kind": "train", "conditional": True, "epochs": 2, "latent_dim": 4, "batch_size": 128}
LSTM = {"kind": "train", "model": "lstm", "epochs": 2, "clips": 16, "image_size": 16,
        "latent_dim": 4, "hidden": 16, "frame_vae": {"epochs": 1, "channels": 8}}  # fmt: skip
SHOTS = [
    {"class": 3, "hold": 3, "transition": 4},
    {"class": 8, "hold": 3, "transition": 4},
    {"class": 0, "hold": 3},
]  # 17 frames


@pytest.fixture(scope="module")
def trained(farm: Farm) -> dict[str, int]:
    ids = {
        "gan": farm.submit({**GAN, "name": "gan-t"}),
        "cvae": farm.submit({**CVAE, "name": "cvae-t"}),
        "lstm": farm.submit({**LSTM, "name": "lstm-t"}),
    }
    for job_id in ids.values():
        assert farm.wait(job_id, timeout_s=240)["state"] == "succeeded", farm.logs()
    return ids


def render(name: str, checkpoint: str, **kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "render", "name": name, "checkpoint": checkpoint,
                            "width": 32, "height": 32, "chunk_size": 8}  # fmt: skip
    return {**spec, **kw}


def artifact(farm: Farm, job_id: int, kind: str) -> dict[str, Any]:
    return next(a for a in farm.detail(job_id)["artifacts"] if a["kind"] == kind)


def run_ok(farm: Farm, spec: dict[str, Any]) -> int:
    job_id = farm.submit(spec)
    assert farm.wait(job_id, timeout_s=120)["state"] == "succeeded", farm.logs()
    return job_id


def gray_frames(path: Path) -> bytes:
    args = [ffmpeg_binary(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
            "gray", "-"]  # fmt: skip
    return subprocess.run(args, check=True, capture_output=True).stdout


def test_checkpoints_carry_family_metadata(farm: Farm, trained: dict[str, int]) -> None:
    for family, job_id in trained.items():
        ckpt = Path(artifact(farm, job_id, "checkpoint")["path"])
        meta = json.loads(ckpt.with_suffix(".json").read_text())
        assert meta["family"] == family.removeprefix("c")
        assert {"config", "history", "dataset", "torch", "farm", "hyperparameters"} <= set(meta)
    lstm_meta = json.loads(
        Path(artifact(farm, trained["lstm"], "checkpoint")["path"]).with_suffix(".json").read_text()
    )
    assert Path(lstm_meta["frame_vae"]["path"]).is_file()
    assert len(lstm_meta["frame_vae"]["sha256"]) == 64


def test_gan_latent_walk(farm: Farm, trained: dict[str, int]) -> None:
    job_id = run_ok(
        farm, render("gan-walk", "job:gan-t", frames="1-12", keyframes=[0, "seed:3", 7])
    )
    video = artifact(farm, job_id, "video")
    assert count_frames(Path(video["path"]), ffmpeg=ffmpeg_binary())[0] == 12
    assert (
        video["meta"]["checkpoint_sha256"] == artifact(farm, trained["gan"], "checkpoint")["sha256"]
    )
    assert {"seed", "torch", "farm"} <= set(video["meta"])


def test_cvae_storyboard_has_storyboard_length(farm: Farm, trained: dict[str, int]) -> None:
    spec = render("story", "job:cvae-t", mode="storyboard", frames="1-17", storyboard=SHOTS)
    job_id = run_ok(farm, spec)
    assert (
        count_frames(Path(artifact(farm, job_id, "video")["path"]), ffmpeg=ffmpeg_binary())[0] == 17
    )


def test_lstm_rollout(farm: Farm, trained: dict[str, int]) -> None:
    spec = render("roll", "job:lstm-t", mode="rollout", frames="1-10", seed_frames=3, seed=5)
    job_id = run_ok(farm, spec)
    assert (
        count_frames(Path(artifact(farm, job_id, "video")["path"]), ffmpeg=ffmpeg_binary())[0] == 10
    )


def test_sample_grid_png(farm: Farm, trained: dict[str, int]) -> None:
    spec = {"kind": "render", "name": "grid", "checkpoint": "job:cvae-t", "mode": "sample_grid",
            "width": 16, "height": 16, "columns": 5, "output": "grids/cvae.png"}  # fmt: skip
    job_id = run_ok(farm, spec)
    tasks = farm.detail(job_id)["task_list"]
    assert [t["kind"] for t in tasks] == ["sample_grid"]
    png = Path(artifact(farm, job_id, "image")["path"])
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (5 * 16 + 4 * 2, 10 * 16 + 9 * 2)


def test_chunking_does_not_change_frames(farm: Farm, trained: dict[str, int]) -> None:
    paths = []
    for name, size in (("whole", 20), ("chunked", 7)):
        spec = render(name, "job:cvae-t", frames="1-20", chunk_size=size, keyframes=[1, 4, 9],
                      output={"format": "ffv1", "path": f"lossless/{name}.mkv"})  # fmt: skip
        paths.append(Path(artifact(farm, run_ok(farm, spec), "video")["path"]))
    whole, chunked = (gray_frames(p) for p in paths)
    assert len(whole) == 20 * 32 * 32
    assert whole == chunked


def test_mismatched_renders_are_refused(farm: Farm, trained: dict[str, int]) -> None:
    gan_path = artifact(farm, trained["gan"], "checkpoint")["path"]
    rel = str(Path(gan_path).relative_to(farm.settings.output_root_abs()))
    cases = [
        (render("x1", "job:gan-t", mode="rollout", frames="1-10"), "checkpoint"),
        (render("x2", rel, mode="rollout", frames="1-10"), "checkpoint"),
        (render("x3", "job:gan-t", frames="1-10", keyframes=[0, 12]), "keyframes.1"),
        (render("x4", "job:gan-t", frames="1-10", keyframes=[{"latent": [0.1, 0.2]}]),
         "keyframes.0"),
        (render("x5", "job:cvae-t", mode="storyboard", frames="1-17",
                storyboard=[{**SHOTS[0], "class": 11}, *SHOTS[1:]]), "storyboard.0.class"),
    ]  # fmt: skip
    for spec, field in cases:
        with pytest.raises(SpecError) as e:
            farm.submit(spec)
        assert field in [f for f, _ in e.value.problems], e.value.problems
    farm.submit({"kind": "train", "name": "vae-u", "epochs": 1, "latent_dim": 4})
    with pytest.raises(SpecError) as e:
        farm.submit(render("x6", "job:vae-u", mode="storyboard", frames="1-17", storyboard=SHOTS))
    assert "storyboard" in [f for f, _ in e.value.problems]
    with pytest.raises(SpecError) as e:
        farm.submit({"kind": "train", "dataset": "images:no/such/folder"})
    assert [f for f, _ in e.value.problems] == ["dataset"]


def test_bad_data_and_corrupt_checkpoints_fail_at_once(farm: Farm, trained: dict[str, int]) -> None:
    root = farm.settings.output_root_abs()
    (root / "empty-images").mkdir(parents=True, exist_ok=True)
    bad_data = farm.submit({"kind": "train", "dataset": "images:empty-images", "epochs": 1})
    src = Path(artifact(farm, trained["gan"], "checkpoint")["path"])
    broken = root / "broken" / "gan.safetensors"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    shutil.copy(src.with_suffix(".json"), broken.with_suffix(".json"))
    bad_ckpt = farm.submit(render("corrupt", "broken/gan.safetensors", frames="1-8"))
    for job_id, words in ((bad_data, "no images"), (bad_ckpt, "corrupted")):
        assert farm.wait(job_id, timeout_s=60)["state"] == "failed"
        with farm.session() as s:
            task = (
                s.execute(
                    select(Task)
                    .where(Task.job_id == job_id, Task.state == "failed")
                    .order_by(Task.id)
                )
                .scalars()
                .first()
            )
            assert task is not None and task.attempts == 1
        assert any(words in str(e.get("message")) for e in farm.detail(job_id)["events"]), words
    run_ok(farm, render("after-corrupt", "job:gan-t", frames="1-4"))  # the worker lives on


def test_killed_training_resumes_from_its_checkpoint(farm: Farm, trained: dict[str, int]) -> None:
    spec = {**GAN, "name": "gan-kill", "steps": 200, "checkpoint_every": 20}
    job_id = farm.submit(spec)
    farm.kill_first_attempt_at(job_id, "step", 40)
    assert farm.wait(job_id, timeout_s=180)["state"] == "succeeded", farm.logs()
    ckpt = Path(artifact(farm, job_id, "checkpoint")["path"])
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert meta["resumed_from_step"] >= 20
    assert meta["step"] == 200
    with farm.session() as s:
        assert s.execute(select(Task.attempts).where(Task.job_id == job_id)).scalar_one() >= 2


def test_a_glyph_sdf_cvae_trains_as_a_farm_job(farm: Farm) -> None:
    spec = {"kind": "train", "name": "glyph-sdf", "dataset": "glyphs", "target": "sdf",
            "charset": "AB", "fonts": ["DejaVuSans", "cmr10"], "heldout_fonts": [],
            "conditional": True, "image_size": 16, "epochs": 2, "latent_dim": 2}  # fmt: skip
    job_id = run_ok(farm, spec)
    meta = json.loads(
        Path(artifact(farm, job_id, "checkpoint")["path"]).with_suffix(".json").read_text()
    )
    assert (meta["config"]["target"], meta["config"]["num_classes"]) == ("sdf", 2)
    assert meta["classes"] == ["A", "B"] and meta["sdf_spread_px"] == 4.0
    assert sorted(meta["style_names"]) == ["DejaVuSans", "cmr10"]
    assert len(meta["style_means"]) == 2
