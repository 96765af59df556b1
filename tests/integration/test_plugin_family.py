"""A studio's own model family, installed as a package with a ``farm.models`` entry point,
trains and renders as farm jobs without a line of the farm changed."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.families import plugin_names
from tests.integration.harness import Farm
from workers.encode import count_frames, ffmpeg_binary

pytestmark = pytest.mark.one_pass

PLUGIN = textwrap.dedent(
    '''
    from dataclasses import asdict, dataclass

    import torch
    import torch.nn.functional as F
    from torch import nn

    from workers.models import ModelFamily


    @dataclass
    class BlobConfig:
        latent_dim: int = 4
        image_size: int = 16

        def to_dict(self):
            return asdict(self)


    class Blob(nn.Module):
        """A linear decoder from latents to images: the smallest model that can render."""

        def __init__(self, cfg):
            super().__init__()
            self.cfg = cfg
            self.lin = nn.Linear(cfg.latent_dim, cfg.image_size**2)

        def forward(self, z):
            s = self.cfg.image_size
            return torch.sigmoid(self.lin(z)).view(-1, 1, s, s)


    def farm_trainer(job):
        from workers.trainers.base import Trained

        images = job.dataset().data[:256]
        cfg = BlobConfig()
        torch.manual_seed(0)
        model = Blob(cfg)
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        z = torch.randn(len(images), cfg.latent_dim, generator=torch.Generator().manual_seed(0))
        history = []
        for step in range(20):
            loss = ((model(z) - images) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append({"step": step, "loss": float(loss)})
            job.progress(history[-1])
        return Trained(model, {"family": "blob", "config": cfg.to_dict(), "history": history})


    def decoder(model, z, weights, width, height, batch_size, device):
        with torch.inference_mode():
            for i in range(0, len(z), batch_size):
                img = F.interpolate(model(z[i : i + batch_size]), size=(height, width))
                yield (img.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()


    FAMILY = ModelFamily(
        name="blob", model_cls=Blob, config_cls=BlobConfig,
        farm_trainer=farm_trainer, decoder=decoder,
    )
    '''
)


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """What ``pip install`` of the studio's package leaves on the path: the module and its
    dist-info with the entry point."""
    root = tmp_path_factory.mktemp("plugin")
    (root / "studio_blob.py").write_text(PLUGIN)
    info = root / "studio_blob-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: studio-blob\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[farm.models]\nblob = studio_blob:FAMILY\n")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        importlib.invalidate_caches()


def test_plugin_family_trains_and_renders_through_the_farm(farm: Farm, plugin_path: Path) -> None:
    assert "blob" in plugin_names()
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_path), old]))
    try:
        worker = farm.start_worker(queues="gpu.studio")
    finally:
        os.environ.pop("PYTHONPATH") if old is None else os.environ.update(PYTHONPATH=old)
    try:
        train = farm.submit({"kind": "train", "name": "blob-1", "model": "blob", "pool": "studio"})
        assert farm.wait(train, timeout_s=120)["state"] == "succeeded", farm.logs()
        render = farm.submit(
            {"kind": "render", "name": "blob-walk", "checkpoint": "job:blob-1", "pool": "studio",
             "frames": "1-20", "chunk_size": 10, "width": 64, "height": 64,
             "keyframes": ["seed:1", "seed:2", "seed:3"]}
        )  # fmt: skip
        assert farm.wait(render, timeout_s=120)["state"] == "succeeded", farm.logs()
    finally:
        farm.stop(worker)
    video = next(a for a in farm.detail(render)["artifacts"] if a["kind"] == "video")
    assert count_frames(Path(video["path"]), ffmpeg=ffmpeg_binary())[0] == 20
