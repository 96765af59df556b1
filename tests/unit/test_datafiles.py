"""The submission's data-set checks (farm.datafiles): a glyph job's fonts and charset, a font
folder without fonts, and ``target: sdf`` on images without alpha are refused before
anything is written, naming the field; the loaders decide from the same functions."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from farm.config import Settings
from farm.datafiles import (
    covered,
    data_problems,
    file_channels,
    matplotlib_font_files,
)
from farm.errors import SpecError
from farm.resolve import resolve
from farm.specs import parse_spec

NO_DB: Any = None  # train specs have no job refs: resolve never touches its session


def fields(dataset: str, path: Path | None = None, **kw: Any) -> set[str]:
    opts: dict[str, Any] = {"target": None, "charset": None, "fonts": None, "heldout_fonts": None}
    return {field for field, _ in data_problems(dataset, path, **{**opts, **kw})}


def font(name: str) -> Path:
    return next(p for p in matplotlib_font_files() if p.stem == name)


def test_the_default_fonts_draw_the_default_charset() -> None:
    assert fields("glyphs") == set()
    assert covered(font("DejaVuSans"), list("Az9")) == list("Az9")


def test_a_charset_no_font_draws_is_named() -> None:
    problems = data_problems(
        "glyphs", None, target=None, charset="A漢字", fonts=None, heldout_fonts=None
    )
    assert problems == [("charset", "no font has a glyph for '漢', '字'")]


def test_a_symbol_font_does_not_count_for_letters() -> None:
    assert covered(font("cmex10"), ["A"]) == []
    assert fields("glyphs", charset="A", fonts=["cmex10"]) == {"charset"}


def test_unknown_and_all_held_out_fonts(tmp_path: Path) -> None:
    assert fields("glyphs", fonts=["NoSuchFont"]) == {"fonts"}
    assert fields("glyphs", heldout_fonts=["NoSuchFont"]) == {"heldout_fonts"}
    both = ["DejaVuSans", "DejaVuSerif"]
    assert fields("glyphs", fonts=both, heldout_fonts=both) == {"heldout_fonts"}
    assert fields("glyphs", fonts=both, heldout_fonts=both[:1]) == set()


def test_a_font_folder_without_fonts_or_with_a_broken_font(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no fonts here")
    assert fields(f"glyphs:{tmp_path}", tmp_path) == {"dataset"}
    (tmp_path / "broken.ttf").write_bytes(b"not a font")
    assert fields(f"glyphs:{tmp_path}", tmp_path) == {"dataset"}
    (tmp_path / "broken.ttf").unlink()
    shutil.copy(font("DejaVuSans"), tmp_path / "Mine.ttf")
    assert fields(f"glyphs:{tmp_path}", tmp_path, charset="A-Z") == set()


def test_sdf_on_images_needs_alpha(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "a.png")
    Image.new("L", (8, 8), 128).save(tmp_path / "b.png")
    assert file_channels(tmp_path / "a.png") == 3
    assert fields(f"images:{tmp_path}", tmp_path, target="sdf") == {"target"}
    assert fields(f"images:{tmp_path}", tmp_path, target="pixels") == set()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "c.png")
    assert file_channels(tmp_path / "c.png") == 4
    assert fields(f"images:{tmp_path}", tmp_path, target="sdf") == set()


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"charset": "A漢"}, "charset"), ({"fonts": ["Nope"]}, "fonts")],
)
def test_submission_refuses_a_glyph_job_naming_the_field(
    tmp_path: Path, extra: dict[str, Any], field: str
) -> None:
    s = Settings(output_root=tmp_path / "out")
    spec = parse_spec({"kind": "train", "model": "vae", "dataset": "glyphs", **extra})
    with pytest.raises(SpecError) as e:
        resolve(NO_DB, s, spec)
    assert {f for f, _ in e.value.problems} == {field}


def test_submission_refuses_sdf_on_a_folder_of_photos(tmp_path: Path) -> None:
    photos = tmp_path / "out" / "photos"
    photos.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(photos / "p.jpg")
    s = Settings(output_root=tmp_path / "out")
    spec = parse_spec({"kind": "train", "dataset": "images:photos", "target": "sdf"})
    with pytest.raises(SpecError) as e:
        resolve(NO_DB, s, spec)
    assert [f for f, _ in e.value.problems] == ["target"]
    assert "no image" in e.value.problems[0][1]


def test_a_picture_name_too_long_for_the_file_system_is_refused_not_raised(
    tmp_path: Path,
) -> None:
    from farm.datafiles import picture_problems

    problems = picture_problems((tmp_path,), {"background_image": "0" * 3000})
    assert [f for f, _ in problems] == ["background_image"]
