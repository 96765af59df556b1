"""Unit tests for the glyphs data set: charsets, fonts that lack characters, held-out fonts,
and a rasteriser that gives the same tensors every time."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from workers.datasets import DatasetError, load_dataset, parse_charset
from workers.datasets.fonts import (
    DEFAULT_HELDOUT,
    covered,
    heldout_names,
    matplotlib_fonts,
    names_character,
)
from workers.datasets.glyphs import MARGIN

FEW = {"fonts": ["DejaVuSans", "DejaVuSerif-Bold", "cmr10"], "split": "all"}


def font(name: str) -> Path:
    return next(f.path for f in matplotlib_fonts() if f.name == name)


# --- parse_charset -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "chars"),
    [
        ("A-Z0-9", [chr(c) for c in range(65, 91)] + list("0123456789")),
        ("A-Za-z", [chr(c) for c in range(65, 91)] + [chr(c) for c in range(97, 123)]),
        ("ABC!?", list("ABC!?")),
        ("-A-C", list("-ABC")),
        ("a-c-", list("abc-")),
        ("+-", list("+-")),
        ("-", ["-"]),
        ("AAB-CA", list("ABC")),  # each character once, first place kept
        ("é-ë", list("éêë")),
    ],
)
def test_charsets_name_ranges_and_literals_in_order(text: str, chars: list[str]) -> None:
    assert parse_charset(text) == chars


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty charset"),
        ("Z-A", "Z-A is reversed"),
        ("9-0", "reversed"),
        ("A-Z-a", "joins nothing"),
        ("A--", "has no end"),
        ("\x00-\U0010ffff", "over 4096"),
    ],
)
def test_bad_charsets_are_refused_with_the_reason(text: str, error: str) -> None:
    with pytest.raises(DatasetError, match=error):
        parse_charset(text)


# --- fonts -------------------------------------------------------------------------------


def test_the_default_fonts_are_matplotlibs_without_last_resort() -> None:
    names = [f.name for f in matplotlib_fonts()]
    assert "DejaVuSans" in names and "cmr10" in names and "STIXGeneral" in names
    assert not any(n.startswith("LastResort") for n in names)
    assert set(DEFAULT_HELDOUT) <= set(names)


def test_a_font_whose_cmap_slots_hold_other_glyphs_lacks_those_characters() -> None:
    fonts = {f.name: f for f in matplotlib_fonts()}
    assert covered(fonts["cmex10"], list("ABCabc")) == []  # big delimiters in ASCII slots
    assert covered(fonts["cmsy10"], list("Aa1")) == ["A"]  # calligraphic capitals only
    assert covered(fonts["cmr10"], list("A<>a")) == ["A", "a"]  # "<" is exclamdown
    assert covered(fonts["cmmi10"], list("0")) == ["0"]  # an old-style figure is still 0
    assert covered(fonts["DejaVuSans"], list("A<é")) == list("A<é")
    assert names_character("uni0041", "A") and names_character("glyph17", "A")
    assert not names_character("parenrightbt", "A") and not names_character(".notdef", "A")


def test_fonts_lacking_a_glyph_are_skipped_for_that_character() -> None:
    d = load_dataset("glyphs", 16, options={**FEW, "charset": "A<"})
    assert d.classes == ["A", "<"]
    assert d.style_names is not None and d.styles is not None and d.labels is not None
    names, styles, labels = d.style_names, d.styles, d.labels
    by_class = {
        c: sorted(names[int(s)] for s in styles[labels == i]) for i, c in enumerate(d.classes)
    }
    assert by_class == {"A": ["DejaVuSans", "DejaVuSerif-Bold", "cmr10"], "<": FEW["fonts"][:2]}


def test_a_charset_that_no_font_draws_is_an_error_naming_the_characters() -> None:
    with pytest.raises(DatasetError, match=r"no font has a glyph for '漢', '字'"):
        load_dataset("glyphs", 16, options={"charset": "A漢字"})
    with pytest.raises(DatasetError, match=r"draws ' '"):
        load_dataset("glyphs", 16, options={**FEW, "charset": "A "})  # a space has no ink


# --- held-out fonts ----------------------------------------------------------------------


def test_the_held_out_fonts_are_disjoint_from_training_and_together_make_all() -> None:
    opts = {"charset": "AB"}
    train = load_dataset("glyphs", 16, options={**opts, "split": "train"})
    held = load_dataset("glyphs", 16, options={**opts, "split": "heldout"})
    every = load_dataset("glyphs", 16, options={**opts, "split": "all"})
    assert train.style_names == held.style_names == every.style_names  # one style index
    assert train.styles is not None and held.styles is not None and every.styles is not None
    names = train.style_names or []
    train_fonts = {names[int(s)] for s in train.styles}
    held_fonts = {names[int(s)] for s in held.styles}
    assert held_fonts == set(DEFAULT_HELDOUT) == set(train.meta["heldout_fonts"])
    assert not train_fonts & held_fonts
    assert train_fonts | held_fonts == set(names)
    assert len(train.data) + len(held.data) == len(every.data)


def test_held_out_fonts_can_be_chosen_and_must_be_in_use() -> None:
    opts = {**FEW, "charset": "AB", "heldout_fonts": ["cmr10"], "split": "heldout"}
    held = load_dataset("glyphs", 16, options=opts)
    assert held.styles is not None and held.style_names is not None
    assert {held.style_names[int(s)] for s in held.styles} == {"cmr10"}
    with pytest.raises(DatasetError, match="not among the fonts in use"):
        load_dataset("glyphs", 16, options={**opts, "heldout_fonts": "Comic Sans"})
    with pytest.raises(DatasetError, match="no font"):
        load_dataset("glyphs", 16, options={**opts, "fonts": "Comic Sans"})


def test_a_folder_without_the_default_held_out_fonts_holds_one_in_eight_by_name() -> None:
    names = [f"font{i}" for i in range(17)]
    chosen = heldout_names(names, None)
    assert len(chosen) == 3 and chosen == heldout_names(list(reversed(names)), None)[::-1]
    assert heldout_names(["only"], None) == []
    assert heldout_names(["a", "b"], None) != []


# --- rendering ---------------------------------------------------------------------------


def test_the_rasteriser_is_deterministic() -> None:
    opts = {**FEW, "charset": "AgQ&"}
    a, b = load_dataset("glyphs", 32, options=opts), load_dataset("glyphs", 32, options=opts)
    assert torch.equal(a.data, b.data)
    assert a.sdf is not None and b.sdf is not None and torch.equal(a.sdf, b.sdf)
    assert a.labels is not None and b.labels is not None and torch.equal(a.labels, b.labels)
    assert a.styles is not None and b.styles is not None and torch.equal(a.styles, b.styles)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_glyphs_fit_centred_with_a_field_that_agrees_with_the_ink(size: int) -> None:
    d = load_dataset("glyphs", size, options={**FEW, "charset": "AgW|o"})
    n = len(d.data)
    assert d.data.shape == (n, 1, size, size) and d.data.dtype == torch.float32
    assert d.sdf is not None and d.sdf.shape == (n, 1, size, size)
    assert d.has_shapes and d.channels == 1 and d.sdf_spread_px == 4.0
    assert float(d.data.min()) >= 0.0 and float(d.data.max()) <= 1.0
    assert float(d.sdf.min()) >= -1.0 and float(d.sdf.max()) <= 1.0
    border = max(1, int(size * MARGIN) - 1)
    assert float(d.data[..., :border, :].sum() + d.data[..., -border:, :].sum()) == 0.0
    assert float(d.data[..., :border].sum() + d.data[..., -border:].sum()) == 0.0
    # Centred by the ink: the coverage's bounding box is symmetric within a pixel.
    for img in d.data[:, 0]:
        rows = torch.nonzero(img.sum(1) > 0.02).flatten()
        cols = torch.nonzero(img.sum(0) > 0.02).flatten()
        assert abs(int(rows[0]) + int(rows[-1]) + 1 - size) <= 2
        assert abs(int(cols[0]) + int(cols[-1]) + 1 - size) <= 2
    # Well inside (field > 1 px) is covered ink; well outside is bare.
    far = d.sdf.abs() * d.sdf_spread_px > 1.0
    assert torch.all((d.data[far] > 0.5) == (d.sdf[far] > 0))


def test_glyphs_render_at_any_size_and_in_rgba() -> None:
    big = load_dataset("glyphs", 256, options={"fonts": "DejaVuSans", "charset": "e"})
    assert big.data.shape == (1, 1, 256, 256)
    rgba = load_dataset("glyphs", 16, options={**FEW, "charset": "A", "channels": 4})
    grey = load_dataset("glyphs", 16, options={**FEW, "charset": "A", "target": "pixels"})
    assert rgba.data.shape == (3, 4, 16, 16) and rgba.channels == 4
    assert torch.all(rgba.data[:, :3] == 1.0)  # white ink
    assert torch.equal(rgba.data[:, 3:], grey.data)  # alpha is the coverage
    assert grey.sdf is None and not grey.has_shapes
    with pytest.raises(DatasetError, match=r"image_size in 8\.\.512"):
        load_dataset("glyphs", 4)


def test_a_folder_of_fonts_is_confined_like_images(tmp_path: Path) -> None:
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for name in ("DejaVuSans", "cmr10"):
        shutil.copy(font(name), fonts / f"{name}.ttf")
    (fonts / "README.txt").write_text("not a font")
    d = load_dataset(f"glyphs:{fonts}", 16, options={"charset": "ab", "split": "all"})
    assert d.style_names == ["DejaVuSans", "cmr10"] and len(d.data) == 4
    secret = tmp_path / "secret.ttf"
    shutil.copy(font("DejaVuSerif"), secret)
    (fonts / "link.ttf").symlink_to(secret)
    with pytest.raises(DatasetError, match="outside the folders a job may read from"):
        load_dataset(f"glyphs:{fonts}", 16, roots=(fonts.resolve(),))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no fonts in"):
        load_dataset(f"glyphs:{empty}", 16)
    (empty / "broken.ttf").write_bytes(b"not a font")
    with pytest.raises(DatasetError, match=r"broken\.ttf"):
        load_dataset(f"glyphs:{empty}", 16)


def test_glyph_options_are_checked() -> None:
    with pytest.raises(DatasetError, match="unknown option"):
        load_dataset("glyphs", 16, options={"charest": "A"})
    with pytest.raises(DatasetError, match="split must be one of"):
        load_dataset("glyphs", 16, options={"split": "test"})
    with pytest.raises(DatasetError, match="reversed"):
        load_dataset("glyphs", 16, options={"charset": "Z-A"})


def test_glyph_coverage_sums_to_more_ink_for_bold() -> None:
    opts = {"fonts": "DejaVuSans,DejaVuSans-Bold", "charset": "o", "split": "all"}
    d = load_dataset("glyphs", 32, options=opts)
    assert d.style_names == ["DejaVuSans", "DejaVuSans-Bold"]
    ink = d.data.sum(dim=(1, 2, 3)).numpy()
    assert ink[1] > 1.2 * ink[0] and np.all(ink > 10)
