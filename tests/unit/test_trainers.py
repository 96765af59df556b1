"""The farm's trainers on the new data: channels and target from the spec and the data set,
conditional on any labelled set, and the contract's metadata in the checkpoint. Tiny runs on
the CPU; the job machinery around them is tests/integration/test_models.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from farm.config import Settings
from farm.families import SHAPE_CVAE, info_from_metadata
from farm.specs import TrainSpec, parse_spec
from farm.states import TaskKind
from workers.checkpoint import load_checkpoint
from workers.context import PermanentError, TaskContext
from workers.device import load_model
from workers.models.gan import Generator
from workers.models.lstm import LatentLSTM
from workers.models.vae import ConvVAE
from workers.trainers import TRAINERS
from workers.trainers.base import Trained, TrainJob

FONTS = ["DejaVuSans", "DejaVuSerif", "cmr10"]


class QuietJob(TrainJob):
    """A TrainJob whose progress goes to a list instead of the database."""

    seen: list[dict[str, Any]]

    def progress(self, values: Any) -> None:
        self.seen.append(dict(values))


def job(tmp_path: Path, **fields: Any) -> QuietJob:
    spec = parse_spec({"kind": "train", **fields})
    assert isinstance(spec, TrainSpec)
    stored = {**spec.model_dump(mode="json"), "output": "m.safetensors"}
    ctx = TaskContext(
        settings=Settings(output_root=tmp_path), task_id=1, job_id=1, job_name="j",
        kind=TaskKind.TRAIN, attempt=1, spec=stored, frames=None, position=0, frame_count=1,
        index=0, worker="w",
    )  # fmt: skip
    out = QuietJob(ctx, tmp_path / "m.safetensors", torch.device("cpu"))
    out.seen = []
    return out


def train_and_save(j: TrainJob) -> tuple[Trained, dict[str, Any]]:
    trained = TRAINERS[str(j.spec["model"])](j)
    j.save_model(trained.model, trained.meta)
    return trained, load_checkpoint(j.out)[1]


def test_sdf_cvae_on_glyphs_writes_the_contracts_metadata(tmp_path: Path) -> None:
    j = job(tmp_path, dataset="glyphs", target="sdf", charset="ABCD", fonts=FONTS,
            heldout_fonts=[], conditional=True, epochs=2, latent_dim=4)  # fmt: skip
    trained, meta = train_and_save(j)
    cfg = meta["config"]
    assert (cfg["target"], cfg["image_channels"], cfg["num_classes"]) == ("sdf", 1, 4)
    # The shape cVAE's posterior floor is the spec's default, stored in the architecture.
    assert (cfg["min_std"], cfg["conditioning"]) == (SHAPE_CVAE["min_std"], "concat")
    assert meta["classes"] == ["A", "B", "C", "D"]
    assert meta["sdf_spread_px"] == 4.0
    assert sorted(meta["style_names"]) == sorted(FONTS)
    assert len(meta["style_means"]) == 3 and len(meta["style_means"][0]) == 4
    assert len(meta["class_means"]) == 4
    assert meta["dataset_options"]["charset"] == "ABCD"
    info = info_from_metadata(meta)
    assert (info.target, info.classes, info.styles) == ("sdf", ("A", "B", "C", "D"),
                                                       tuple(meta["style_names"]))  # fmt: skip
    model, _, _ = load_model(j.out)
    assert isinstance(model, ConvVAE) and model.cfg.min_std == SHAPE_CVAE["min_std"]
    with torch.inference_mode():
        field = model.cpu().decode(torch.zeros(2, 4), torch.tensor([0, 3]))
    assert field.shape == (2, 1, 16, 16) and float(field.abs().max()) <= 1.0
    assert j.seen and j.seen[-1]["epoch"] == 2
    del trained


def test_colour_gan_on_sprites_is_conditional_on_the_shapes(tmp_path: Path) -> None:
    j = job(tmp_path, model="gan", dataset="sprites", steps=3, batch_size=8, latent_dim=4,
            checkpoint_every=100)  # fmt: skip
    trained, meta = train_and_save(j)
    assert isinstance(trained.model, Generator)
    cfg = meta["config"]
    assert (cfg["image_channels"], cfg["target"], cfg["num_classes"]) == (4, "pixels", 5)
    assert meta["classes"] == ["square", "ellipse", "triangle", "star", "heart"]
    assert "sdf_spread_px" not in meta
    out = trained.model(torch.zeros(1, 4), torch.tensor([2]))
    assert out.shape == (1, 4, 16, 16)


def test_unconditional_vae_on_rgb_images_keeps_their_colour(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    for i, colour in enumerate([(200, 30, 10), (10, 40, 220), (20, 200, 30)]):
        Image.new("RGB", (20, 20), colour).save(tmp_path / "art" / f"{i}.png")
    j = job(tmp_path, dataset="images:art", epochs=1, latent_dim=2)
    _, meta = train_and_save(j)
    assert meta["config"]["image_channels"] == 3 and meta["config"]["num_classes"] == 0
    assert "classes" not in meta and "class_means" not in meta


def test_sdf_on_images_without_alpha_fails_naming_target(tmp_path: Path) -> None:
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "flat" / "a.png")
    j = job(tmp_path, dataset="images:flat", target="sdf", epochs=1)
    with pytest.raises(PermanentError, match=r"^target: .*alpha"):
        TRAINERS["vae"](j)


def test_lstm_frame_vae_takes_the_frames_channels(tmp_path: Path) -> None:
    j = job(tmp_path, model="lstm", epochs=1, clips=4, image_size=16, latent_dim=3, hidden=8,
            channels=3, frame_vae={"epochs": 1, "channels": 4})  # fmt: skip
    trained = TRAINERS["lstm"](j)
    assert isinstance(trained.model, LatentLSTM)
    assert trained.meta["frame_vae"]["config"]["image_channels"] == 3
    vae, _, _ = load_model(Path(trained.meta["frame_vae"]["path"]))
    assert isinstance(vae, ConvVAE) and vae.cfg.image_channels == 3


def test_a_vae_jobs_kl_warmup_trains_and_is_saved_with_the_hyperparameters(
    tmp_path: Path,
) -> None:
    torch.set_num_threads(1)
    kw: dict[str, Any] = {"dataset": "digits", "epochs": 2, "latent_dim": 2}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ta, meta = train_and_save(job(tmp_path / "a", kl_warmup_epochs=2, **kw))
    tb, _ = train_and_save(job(tmp_path / "b", **kw))
    assert meta["hyperparameters"]["kl_warmup_epochs"] == 2
    wa, wb = ta.model.state_dict(), tb.model.state_dict()
    assert not torch.equal(wa["fc_mu.weight"], wb["fc_mu.weight"])
