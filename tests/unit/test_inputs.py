"""Unit tests for confining the paths a job reads (farm.inputs): at submission and on the
worker, where the roots may differ or a link may have changed since."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from farm.config import Settings
from farm.errors import SpecError
from farm.inputs import (
    OutsideInputRoots,
    confine_input,
    dataset_input,
    input_roots,
    parse_roots,
)
from farm.resolve import resolve
from farm.runtime import child_env
from farm.specs import parse_spec
from farm.states import TaskKind
from workers.context import PermanentError, TaskContext
from workers.datasets import DatasetError, load_image_folder


@pytest.fixture
def out(tmp_path: Path) -> Path:
    r = tmp_path / "out"
    r.mkdir()
    return r.resolve()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    r = tmp_path / "library"
    (r / "plates").mkdir(parents=True)
    (r / "plates" / "a.png").write_bytes(b"png")
    return r.resolve()


def settings(out: Path, *roots: Path) -> Settings:
    return Settings(output_root=out, input_roots=os.pathsep.join(map(str, roots)))


# --- confine_input -----------------------------------------------------------------------


def test_a_relative_ref_resolves_under_the_output_root(out: Path) -> None:
    assert confine_input((out,), "sets/faces") == out / "sets" / "faces"
    assert confine_input((out,), "a/../b.wav") == out / "b.wav"


def test_an_absolute_ref_inside_the_output_root_is_accepted(out: Path) -> None:
    assert confine_input((out,), str(out / "ckpt.safetensors")) == out / "ckpt.safetensors"


@pytest.mark.parametrize("ref", ["/root", "/etc/hostname", "/"])
def test_an_absolute_ref_outside_every_root_is_refused(out: Path, ref: str) -> None:
    with pytest.raises(OutsideInputRoots) as e:
        confine_input((out,), ref)
    assert repr(ref) in str(e.value) and f"{out} (the output root)" in str(e.value)


@pytest.mark.parametrize("ref", ["../../../etc", "..", "a/../../x", "../out-evil/x.png"])
def test_a_dot_dot_escape_is_refused(out: Path, ref: str) -> None:
    with pytest.raises(OutsideInputRoots, match="outside the folders a job may read from"):
        confine_input((out,), ref)


def test_a_symlink_inside_the_root_pointing_out_is_refused(out: Path, tmp_path: Path) -> None:
    (out / "etc").symlink_to("/etc")
    (out / "host.wav").symlink_to("/etc/hostname")
    for ref in ("etc", "etc/hostname", str(out / "etc"), "host.wav"):
        with pytest.raises(OutsideInputRoots):
            confine_input((out,), ref)


def test_a_symlink_to_another_input_root_is_accepted(out: Path, library: Path) -> None:
    (out / "plates").symlink_to(library / "plates")
    assert confine_input((out, library), "plates") == library / "plates"
    assert confine_input((out, library), "plates/a.png") == library / "plates" / "a.png"
    with pytest.raises(OutsideInputRoots):  # the same link, without that input root
        confine_input((out,), "plates")


def test_an_input_root_and_what_is_under_it_are_accepted(out: Path, library: Path) -> None:
    roots = (out, library)
    assert confine_input(roots, str(library)) == library
    assert confine_input(roots, str(library / "plates")) == library / "plates"
    with pytest.raises(OutsideInputRoots) as e:
        confine_input(roots, str(library) + "-evil/x.png")  # the root as a prefix only
    assert str(library) in str(e.value)


def test_an_input_root_that_is_itself_a_link_is_resolved(out: Path, library: Path) -> None:
    link = library.parent / "lib-link"
    link.symlink_to(library)
    s = settings(out, link)
    assert input_roots(s) == (out, library)
    assert confine_input(s, str(link / "plates")) == library / "plates"


@pytest.mark.parametrize("ref", ["a\x00b", "/etc/\x00"])
def test_a_ref_that_is_no_path_is_refused_not_crashed_on(out: Path, ref: str) -> None:
    with pytest.raises(OutsideInputRoots, match="not a usable path"):
        confine_input((out,), ref)


def test_a_symlink_loop_is_refused(out: Path) -> None:
    (out / "loop").symlink_to(out / "loop")
    with pytest.raises(OutsideInputRoots):
        confine_input((out,), "loop/x.png")


def test_the_error_is_a_value_error() -> None:
    assert issubclass(OutsideInputRoots, ValueError)


def test_dataset_input_confines_user_sets_and_passes_built_ins(out: Path) -> None:
    assert dataset_input((out,), "digits") is None
    assert dataset_input((out,), "images:faces") == out / "faces"
    for bad in ("images:/root", "video:/etc/hostname", "images:../../../etc"):
        with pytest.raises(OutsideInputRoots):
            dataset_input((out,), bad)


# --- settings ------------------------------------------------------------------------------


def test_input_roots_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, out: Path, library: Path, tmp_path: Path
) -> None:
    other = tmp_path / "plates"
    other.mkdir()
    monkeypatch.setenv("FARM_OUTPUT_ROOT", str(out))
    monkeypatch.setenv("FARM_INPUT_ROOTS", f"{library}{os.pathsep}{os.pathsep}{other}")
    s = Settings()
    assert input_roots(s) == (out, library, other.resolve())
    monkeypatch.delenv("FARM_INPUT_ROOTS")
    assert input_roots(Settings()) == (out,)


@pytest.mark.parametrize("bad", ["relative/dir", f"/mnt/ok{os.pathsep}plates", "."])
def test_a_relative_input_root_is_refused_when_settings_are_built(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("FARM_INPUT_ROOTS", bad)
    with pytest.raises(ValidationError, match="is not an absolute path"):
        Settings()
    with pytest.raises(ValueError, match="FARM_INPUT_ROOTS takes absolute paths"):
        parse_roots(bad)


@pytest.mark.parametrize("value", ["", "/mnt/library", f"/mnt/a{os.pathsep}/mnt/b"])
def test_input_roots_pass_unchanged_to_worker_processes(
    monkeypatch: pytest.MonkeyPatch, out: Path, value: str
) -> None:
    env = child_env(Settings(output_root=out, input_roots=value))
    monkeypatch.setenv("FARM_INPUT_ROOTS", env["FARM_INPUT_ROOTS"])
    assert Settings().input_roots == value


# --- submission (the checks that need no database) -----------------------------------------


NO_DB: Any = None  # specs without job refs: resolve never touches its session
RENDER = {"kind": "render", "checkpoint": "c.safetensors", "frames": "1-24"}


def _refused(s: Settings, spec: dict[str, Any]) -> set[str]:
    parsed = parse_spec(spec)
    with pytest.raises(SpecError) as e:
        resolve(NO_DB, s, parsed)
    return {field for field, _ in e.value.problems}


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"kind": "train", "dataset": "images:/root"}, "dataset"),
        ({"kind": "train", "dataset": "video:/etc/hostname"}, "dataset"),
        ({"kind": "train", "dataset": "images:../../../etc"}, "dataset"),
        ({**RENDER, "checkpoint": "/etc/x.safetensors"}, "checkpoint"),
        ({**RENDER, "checkpoint": "../x.safetensors"}, "checkpoint"),
        ({**RENDER, "output": {"audio": "/etc/hostname"}}, "output.audio"),
    ],
)
def test_submission_refuses_each_input_outside_the_roots(
    out: Path, spec: dict[str, Any], field: str
) -> None:
    (out / "c.safetensors").write_bytes(b"x")
    assert _refused(settings(out), spec) == {field}


def test_submission_accepts_inputs_under_an_input_root(out: Path, library: Path) -> None:
    (library / "c.safetensors").write_bytes(b"x")
    (library / "a.wav").write_bytes(b"x")
    s = settings(out, library)
    train = parse_spec({"kind": "train", "dataset": f"images:{library}/plates"})
    stored, _ = resolve(NO_DB, s, train)
    assert stored["dataset"] == f"images:{library}/plates"
    output = {"path": "r.mp4", "audio": str(library / "a.wav")}
    render = {**RENDER, "checkpoint": str(library / "c.safetensors"), "output": output}
    resolve(NO_DB, s, parse_spec(render))


def test_submission_ignores_a_sidecar_linked_out_of_the_roots(out: Path, tmp_path: Path) -> None:
    (out / "c.safetensors").write_bytes(b"x")
    secret = tmp_path / "secret.json"
    secret.write_text('{"family": "vae", "config": {"num_classes": 0, "latent_dim": 2}}')
    (out / "c.json").symlink_to(secret)
    render = {**RENDER, "keyframes": [5]}
    resolve(NO_DB, settings(out), parse_spec(render))
    (out / "c.json").unlink()
    (out / "c.json").write_text(secret.read_text())  # the same sidecar, inside: it is read
    assert _refused(settings(out), render) == {"keyframes.0"}


# --- the worker, again before opening ------------------------------------------------------


def _ctx(s: Settings, spec: dict[str, Any], kind: TaskKind = TaskKind.TRAIN) -> TaskContext:
    return TaskContext(
        settings=s, task_id=1, job_id=1, job_name="j", kind=kind, attempt=1, spec=spec,
        frames=None, position=0, frame_count=1, index=0, worker="w",
    )  # fmt: skip


def test_the_trainer_refuses_a_data_set_outside_this_workers_roots(
    out: Path, library: Path
) -> None:
    import torch

    from workers.trainers.base import TrainJob

    spec = {"dataset": f"images:{library}/plates", "image_size": 8, "seed": 0}
    # Accepted where the library is an input root; this worker does not have it.
    job = TrainJob(_ctx(settings(out), spec), out / "c.safetensors", torch.device("cpu"))
    with pytest.raises(PermanentError, match=r"^dataset: .* is outside the folders"):
        job.dataset()


def test_the_trainer_refuses_a_link_swapped_after_submission(out: Path, tmp_path: Path) -> None:
    import torch

    from workers.trainers.base import TrainJob

    (out / "faces").mkdir()
    spec = {"dataset": "images:faces", "image_size": 8, "seed": 0}
    job = TrainJob(_ctx(settings(out), spec), out / "c.safetensors", torch.device("cpu"))
    (out / "faces").rmdir()
    (out / "faces").symlink_to("/etc")
    with pytest.raises(PermanentError, match=r"^dataset: 'faces' is outside"):
        job.dataset()


def test_an_image_folder_refuses_an_image_linked_out(out: Path, tmp_path: Path) -> None:
    (out / "faces").mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    (out / "faces" / "a.png").symlink_to(secret)
    with pytest.raises(DatasetError, match="outside the folders a job may read from"):
        load_image_folder(out / "faces", 8, roots=(out,))


def test_a_render_refuses_a_checkpoint_outside_this_workers_roots(out: Path, library: Path) -> None:
    from workers.stages.render_chunk import checkpoint_for

    ckpt = library / "c.safetensors"
    ckpt.write_bytes(b"x")
    spec = {"checkpoint": str(ckpt)}
    assert checkpoint_for(_ctx(settings(out, library), spec, TaskKind.RENDER_CHUNK)) == ckpt
    with pytest.raises(PermanentError, match=r"^checkpoint: "):
        checkpoint_for(_ctx(settings(out), spec, TaskKind.RENDER_CHUNK))


def test_a_rollout_refuses_a_frame_vae_path_outside_the_roots(out: Path) -> None:
    import torch

    from workers.modes.base import RenderJob
    from workers.modes.rollout import frame_vae

    meta = {"family": "lstm", "frame_vae": {"path": "/etc/hostname", "sha256": "x"}}
    job = RenderJob({}, torch.nn.Identity(), meta, 1, torch.device("cpu"), out, (out,))
    with pytest.raises(PermanentError, match="frame VAE: '/etc/hostname' is outside"):
        frame_vae(job)


def test_a_rollout_seeds_a_colour_frame_vae_in_its_own_channels(out: Path) -> None:
    import dataclasses

    import torch

    from workers.checkpoint import save_checkpoint, sha256_file
    from workers.models.lstm import LatentLSTM, LSTMConfig
    from workers.models.vae import ConvVAE, VAEConfig
    from workers.modes.base import RenderJob
    from workers.modes.rollout import render

    cfg = VAEConfig(image_size=16, latent_dim=4, image_channels=3)
    path = out / "fv.safetensors"
    save_checkpoint(path, ConvVAE(cfg), {"family": "vae", "config": dataclasses.asdict(cfg)})
    meta = {"family": "lstm", "frame_vae": {"path": str(path), "sha256": sha256_file(path)}}
    lstm = LatentLSTM(LSTMConfig(latent_dim=4, hidden=8))
    spec = {"seed": 0, "seed_frames": 2, "width": 24, "height": 24, "batch_size": 4}
    job = RenderJob(spec, lstm, meta, 5, torch.device("cpu"), out, (out,))
    frames = np.concatenate(list(render(job, [0, 1, 2, 3, 4])))
    assert frames.shape == (5, 24, 24, 3)
