"""Unit tests for the Dataset contract that models and trainers are written against: every
set's shapes at several sizes, the old API unchanged, and options checked by name."""

from __future__ import annotations

import subprocess
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import workers.datasets as datasets
from workers.datasets import Dataset, DatasetError, load_dataset
from workers.datasets.digits import CLASSES


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A folder of two RGB images and a colour video, made once for the module."""
    root = tmp_path_factory.mktemp("sources")
    folder = root / "plates"
    folder.mkdir()
    Image.new("RGB", (30, 20), (200, 40, 10)).save(folder / "a.png")
    Image.new("RGB", (20, 30), (10, 40, 200)).save(folder / "b.png")
    import imageio_ffmpeg

    video = root / "clip.mkv"
    frames = np.full((4, 24, 32, 3), (30, 160, 90), np.uint8)
    args = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt"]
    args += ["rgb24", "-s", "32x24", "-r", "5", "-i", "pipe:0", "-c:v", "ffv1", str(video)]
    subprocess.run(args, input=frames.tobytes(), check=True)
    return {"images": f"images:{folder}", "video": f"video:{video}"}


# (name or source key, options, expected channels, clips?, shapes?)
SETS: list[tuple[str, dict[str, Any], int, bool, bool]] = [
    ("digits", {}, 1, False, False),
    ("moving-digits", {}, 1, True, False),
    ("glyphs", {"charset": "Ab", "fonts": "DejaVuSans,cmr10", "split": "all"}, 1, False, True),
    ("sprites", {"count": 12}, 4, False, True),
    ("images", {}, 3, False, False),
    ("video", {}, 3, False, False),
]


@pytest.mark.parametrize("size", [16, 32, 64])
@pytest.mark.parametrize(("key", "options", "channels", "clips", "shapes"), SETS)
def test_every_set_keeps_the_contract_at_every_size(
    sources: dict[str, str],
    size: int,
    key: str,
    options: dict[str, Any],
    channels: int,
    clips: bool,
    shapes: bool,
) -> None:
    d = load_dataset(sources.get(key, key), size, options=options)
    n = d.data.shape[0]
    tail = (channels, size, size)
    assert d.data.shape[1:] == ((d.data.shape[1], *tail) if clips else tail)
    assert d.data.dtype == torch.float32 and d.channels == channels
    assert d.is_sequences == clips and d.has_shapes == shapes
    assert float(d.data.min()) >= 0.0 and float(d.data.max()) <= 1.0
    if d.labels is not None:
        assert d.labels.shape == (n,) and d.labels.dtype == torch.int64
        assert d.classes is not None and int(d.labels.max()) < len(d.classes)
    if shapes:
        assert d.sdf is not None and d.sdf.shape == (n, 1, size, size)
        assert d.sdf.dtype == torch.float32 and d.sdf.abs().max() <= 1.0
        assert d.sdf_spread_px == 4.0
    else:
        assert d.sdf is None
    for c in (1, 3, 4):
        converted = load_dataset(sources.get(key, key), size, options={**options, "channels": c})
        assert converted.channels == c and converted.data.shape[:-3] == d.data.shape[:-3]


def test_the_old_api_still_works() -> None:
    x, y = datasets.load_digits_images(16)
    assert x.shape == (1797, 1, 16, 16) and y.dtype == torch.int64
    d = load_dataset("digits", 16)
    assert d.data.shape == (1797, 1, 16, 16) and d.classes == CLASSES == list("0123456789")
    assert d.labels is not None and torch.equal(d.labels, y)
    assert datasets.moving_digits(2, 3, canvas=16, digit_size=8).shape == (2, 3, 1, 16, 16)
    d = load_dataset("moving-digits", 16, seed=1)
    assert d.data.shape == (256, 16, 1, 16, 16) and d.labels is None and d.factors is None
    assert Dataset("x", torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64)).channels == 1


def test_a_dataset_refuses_fields_that_disagree_with_its_data() -> None:
    x = torch.zeros(3, 1, 8, 8)
    with pytest.raises(ValueError, match="C in"):
        Dataset("x", torch.zeros(3, 2, 8, 8))
    with pytest.raises(ValueError, match="labels"):
        Dataset("x", x, torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="sdf"):
        Dataset("x", x, sdf=torch.zeros(3, 1, 4, 4))
    with pytest.raises(ValueError, match="factor"):
        Dataset("x", x, factors={"x": torch.zeros(4)})


@pytest.mark.parametrize(
    ("name", "options", "error"),
    [
        ("digits", {"chanels": 3}, r"unknown option\(s\) chanels \(this set takes channels"),
        ("digits", {"channels": 2}, "channels must be 1, 3 or 4"),
        ("digits", {"channels": True}, "channels must be 1, 3 or 4"),
        ("digits", {"target": "sdf"}, "target must be one of"),
        ("moving-digits", {"split": "heldout"}, "unknown option"),
        ("sprites", {"count": "many"}, "count must be an integer"),
        ("sprites", {"sdf_spread_px": 0}, "sdf_spread_px must be a number"),
    ],
)
def test_options_are_checked_by_name(name: str, options: dict[str, Any], error: str) -> None:
    with pytest.raises(DatasetError, match=error):
        load_dataset(name, 16, options=options)


def test_unknown_names_list_every_set() -> None:
    with pytest.raises(DatasetError, match="unknown data set") as e:
        load_dataset("cifar", 16)
    for name in ("'digits'", "'moving-digits'", "'glyphs'", "'sprites'", "'images:<path>'"):
        assert name in str(e.value)
    for bad in ("glyphs:", "sprites:x", "video"):
        with pytest.raises(DatasetError, match="unknown data set"):
            load_dataset(bad, 16)
