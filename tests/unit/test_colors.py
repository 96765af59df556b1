"""Unit tests for colour parsing and the colour options each model takes (farm/colors.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from farm.colors import ColorError, colour_problems, merged_sections, output_channels, parse_color
from farm.families import ModelInfo
from farm.specs import RenderSpec, parse_spec

SDF = ModelInfo("vae", True, 3, 8, classes=("A", "B", "C"), target="sdf")
GREY = replace(SDF, target="pixels", channels=1)
RGB = replace(GREY, channels=3)
RGBA = replace(GREY, channels=4)
UNKNOWN = replace(GREY, channels=None)


@pytest.mark.parametrize(
    ("text", "rgba"),
    [
        ("#f5c542", (245, 197, 66, 255)),
        ("#fff", (255, 255, 255, 255)),
        ("#1b1f3b80", (27, 31, 59, 128)),
        ("gold", (255, 215, 0, 255)),
        (" #000000 ", (0, 0, 0, 255)),
    ],
)
def test_css_colours_parse(text: str, rgba: tuple[int, int, int, int]) -> None:
    assert parse_color(text) == rgba


@pytest.mark.parametrize("bad", ["#12", "#ggg", "notacolour", "", 0xFFFFFF, None])
def test_what_is_not_a_colour_is_refused_by_name(bad: Any) -> None:
    with pytest.raises(ColorError, match="is not a colour"):
        parse_color(bad)


def _spec(**changes: Any) -> RenderSpec:
    spec = parse_spec({"kind": "render", "checkpoint": "job:t", "frames": "1-4", **changes})
    assert isinstance(spec, RenderSpec)
    return spec


def _fields(spec: RenderSpec, info: ModelInfo) -> list[str]:
    return [f for f, _ in colour_problems(spec, info)]


ALL = {"fill": "#fff", "outline": "#f00", "glow": "#0f0", "shadow": "#000",
       "background": "#123", "outline_px": 2, "glow_px": 4, "shadow_offset": [2, 2]}  # fmt: skip


def test_an_sdf_model_takes_every_option() -> None:
    assert _fields(_spec(colors=ALL), SDF) == []


def test_a_grey_model_is_tinted_by_fill_and_background_only() -> None:
    assert _fields(_spec(colors={"fill": "#fff", "background": "#123"}), GREY) == []
    fields = _fields(_spec(colors=ALL), GREY)
    assert fields == [f"colors.{k}" for k in ALL if k not in ("fill", "background")]
    (_, reason), *_ = colour_problems(_spec(colors={"outline": "#f00"}), GREY)
    assert "target: sdf" in reason


def test_an_rgba_model_takes_only_a_background_and_rgb_none() -> None:
    assert _fields(_spec(colors={"background": "#123"}), RGBA) == []
    assert _fields(_spec(colors={"fill": "#fff"}), RGBA) == ["colors.fill"]
    assert _fields(_spec(colors={"background": "#123"}), RGB) == ["colors.background"]
    assert _fields(_spec(colors={"fill": "#fff"}), UNKNOWN) == []  # the data decides later


def test_a_shots_colours_are_checked_under_its_own_field() -> None:
    shots = [{"class": "A", "hold": 2, "transition": 1}, {"class": "B", "hold": 1,
             "colors": {"glow": "#0f0"}}]  # fmt: skip
    spec = _spec(mode="storyboard", storyboard=shots)
    assert _fields(spec, GREY) == ["storyboard.1.colors.glow"]
    assert _fields(spec, SDF) == []


def test_each_shot_renders_its_colours_over_the_specs() -> None:
    shots = [{"class": "A", "hold": 2}, {"class": "B", "hold": 2, "colors": {"fill": "#f00"}}]
    stored = _spec(mode="storyboard", storyboard=shots, colors={"fill": "#fff",
                   "background": "#123"}).model_dump(mode="json")  # fmt: skip
    assert merged_sections(stored) == [
        {"fill": "#fff", "background": "#123"},
        {"fill": "#f00", "background": "#123"},
    ]


@pytest.mark.parametrize(
    ("info", "looks", "channels"),
    [
        (GREY, [{}], 1),  # today's grey frames
        (GREY, [{"fill": "#f00"}], 3),
        (SDF, [{}], 3),
        (SDF, [{}, {"background": "#00000000"}], 4),
        (RGB, [{}], 3),
        (RGBA, [{}], 4),
        (RGBA, [{"background": "#123"}, {}], 4),
        (RGBA, [{"background": "#123"}], 3),
        (UNKNOWN, [{}], None),
    ],
)
def test_output_channels(info: ModelInfo, looks: list[dict[str, str]], channels: int) -> None:
    assert output_channels(info, looks) == channels


def test_a_rollout_takes_no_colours() -> None:
    lstm = ModelInfo("lstm", False, 0, 16)
    spec = _spec(mode="rollout", frames="1-10", colors={"fill": "#fff"})
    (field, reason), *_ = colour_problems(spec, lstm)
    assert field == "colors.fill" and "rollout" in reason
