"""Unit tests for job spec validation (farm.specs) and its error reporting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from farm.errors import FarmError, SpecError
from farm.specs import RenderSpec, TrainSpec, load_spec, parse_spec

RENDER = {"kind": "render", "checkpoint": "job:train-1", "frames": "1-240"}


def _problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as exc:
        parse_spec(data)
    return exc.value.problems


def _render(**changes: Any) -> dict[str, Any]:
    return {**RENDER, **changes}


# --- valid specs -----------------------------------------------------------------------


def test_minimal_train_spec_parses_with_defaults() -> None:
    spec = parse_spec({"kind": "train"})
    assert isinstance(spec, TrainSpec)
    assert spec.kind == "train"
    assert spec.name is None
    assert spec.priority == 50
    assert spec.max_attempts is None
    assert spec.model == "vae"
    assert spec.dataset == "digits"
    assert spec.epochs == 60  # the VAE family default (farm/families.py)
    assert spec.batch_size == 64
    assert spec.lr == 2e-3
    assert spec.seed == 0
    assert spec.latent_dim == 8
    assert spec.image_size == 16
    assert spec.output is None


def test_full_train_spec_keeps_given_values() -> None:
    spec = parse_spec(
        {
            "kind": "train",
            "name": "vae.v2",
            "priority": 90,
            "max_attempts": 3,
            "epochs": 5,
            "lr": 0.01,
            "seed": 42,
            "latent_dim": 16,
            "output": "checkpoints/v2.safetensors",
        }
    )
    assert isinstance(spec, TrainSpec)
    assert (spec.name, spec.priority, spec.max_attempts) == ("vae.v2", 90, 3)
    assert (spec.epochs, spec.lr, spec.seed, spec.latent_dim) == (5, 0.01, 42, 16)
    assert spec.output == "checkpoints/v2.safetensors"


def test_minimal_render_spec_parses_with_defaults() -> None:
    spec = parse_spec(dict(RENDER))
    assert isinstance(spec, RenderSpec)
    assert spec.kind == "render"
    assert spec.checkpoint == "job:train-1"
    assert spec.frames == "1-240"
    assert spec.chunk_size == 50
    assert spec.fps == 24.0
    assert (spec.width, spec.height) == (256, 256)
    assert spec.keyframes == list(range(10))
    assert spec.output is None
    assert spec.batch_size == 32
    assert spec.priority == 50
    assert spec.frame_list() == list(range(1, 241))


def test_render_spec_accepts_safetensors_checkpoint_seed_keyframes_and_mp4_output() -> None:
    spec = parse_spec(
        _render(
            checkpoint="checkpoints/a.safetensors",
            frames="1,5,10-20",
            keyframes=[3, "seed:7", 0],
            output="renders/sh010.mp4",
            width=320,
            height=240,
        )
    )
    assert isinstance(spec, RenderSpec)
    assert spec.checkpoint == "checkpoints/a.safetensors"
    assert spec.keyframes == [3, "seed:7", 0]
    assert spec.output == "renders/sh010.mp4"
    assert spec.frame_list() == [1, 5, *range(10, 21)]


def test_spec_is_frozen() -> None:
    spec = parse_spec(dict(RENDER))
    with pytest.raises(ValueError):
        spec.frames = "1-2"  # type: ignore[misc]


def test_priority_bounds_are_inclusive() -> None:
    assert parse_spec(_render(priority=0)).priority == 0
    assert parse_spec(_render(priority=100)).priority == 100


# --- problems: (field, reason) ---------------------------------------------------------


def test_unknown_kind_is_reported_under_kind() -> None:
    assert _problems({"kind": "bake"}) == [("kind", "unknown kind 'bake': use 'train' or 'render'")]


def test_missing_kind_is_reported_under_kind() -> None:
    assert _problems({"frames": "1-10"}) == [("kind", "missing: use 'train' or 'render'")]


def test_unknown_field_is_named() -> None:
    assert _problems(_render(colour="red")) == [("colour", "unknown field")]


def test_unknown_field_in_train_spec_is_named() -> None:
    assert _problems({"kind": "train", "epoch": 3}) == [("epoch", "unknown field")]


def test_every_problem_is_reported_not_just_the_first() -> None:
    problems = _problems(_render(colour="red", width=8, priority=101))
    assert sorted(f for f, _ in problems) == ["colour", "priority", "width"]


def test_malformed_frame_range_is_reported_under_frames() -> None:
    assert _problems(_render(frames="10-1")) == [("frames", "'10-1' ends before it starts")]


def test_non_range_frames_are_reported_under_frames() -> None:
    problems = _problems(_render(frames="a-b"))
    assert len(problems) == 1
    field, reason = problems[0]
    assert field == "frames"
    assert reason.startswith("'a-b' is not a frame")


def test_missing_required_render_fields_are_named() -> None:
    problems = _problems({"kind": "render"})
    assert sorted(f for f, _ in problems) == ["checkpoint", "frames"]
    assert all(r == "Field required" for _, r in problems)


def test_zero_width_is_reported_under_width() -> None:
    problems = _problems(_render(width=0))
    assert [f for f, _ in problems] == ["width"]
    assert "greater than or equal to 16" in problems[0][1]


def test_negative_height_is_reported_under_height() -> None:
    problems = _problems(_render(height=-2))
    assert [f for f, _ in problems] == ["height"]
    assert "greater than or equal to 16" in problems[0][1]


def test_odd_width_is_refused_as_not_even() -> None:
    assert _problems(_render(width=255)) == [
        ("width", "h264 encodes yuv420p, which needs an even width: 255")
    ]


def test_odd_width_is_fine_for_a_lossless_format() -> None:
    assert isinstance(parse_spec(_render(width=255, output="a/b.mkv")), RenderSpec)


def test_odd_height_is_refused_as_not_even() -> None:
    assert [f for f, _ in _problems(_render(height=257))] == ["height"]


@pytest.mark.parametrize("bad", ["seed", "seed:", "seed:x", "cat", "seed:12345678901"])
def test_bad_keyframe_string_is_reported_with_its_index(bad: str) -> None:
    assert _problems(_render(keyframes=[1, bad])) == [
        ("keyframes", f"keyframe 1 ({bad!r}) is neither a class index nor 'seed:N'")
    ]


def test_negative_keyframe_class_is_refused() -> None:
    assert _problems(_render(keyframes=[-1])) == [
        ("keyframes", "keyframe 0 (-1) is not a class index >= 0")
    ]


def test_empty_keyframes_are_refused() -> None:
    assert [f for f, _ in _problems(_render(keyframes=[]))] == ["keyframes"]


@pytest.mark.parametrize("output", ["renders/a.mp4.tmp", "a"])
def test_render_output_that_no_format_can_hold_is_refused(output: str) -> None:
    problems = _problems(_render(output=output))
    assert [f for f, _ in problems] == ["output"]
    assert "cannot hold h264" in problems[0][1]


def test_train_output_not_ending_safetensors_is_refused() -> None:
    assert _problems({"kind": "train", "output": "a.pt"}) == [
        ("output", "a checkpoint path must end in .safetensors")
    ]


@pytest.mark.parametrize("checkpoint", ["model.ckpt", "train-1", "jobs:1", "a.safetensors.bak"])
def test_checkpoint_neither_job_ref_nor_safetensors_is_refused(checkpoint: str) -> None:
    assert _problems(_render(checkpoint=checkpoint)) == [
        ("checkpoint", "use 'job:<id or name>' or a path ending in .safetensors")
    ]


def test_checkpoint_job_ref_without_id_is_refused() -> None:
    assert _problems(_render(checkpoint="job:")) == [
        ("checkpoint", "'job:' needs a job id or name")
    ]


def test_priority_above_100_is_refused() -> None:
    problems = _problems(_render(priority=101))
    assert [f for f, _ in problems] == ["priority"]
    assert "less than or equal to 100" in problems[0][1]


@pytest.mark.parametrize("name", ["-lead", "has space", "a/b", "x" * 65])
def test_bad_job_name_is_refused(name: str) -> None:
    assert [f for f, _ in _problems(_render(name=name))] == ["name"]


@pytest.mark.parametrize("data", [None, [], "kind: render", 3])
def test_non_mapping_spec_is_refused_under_spec(data: Any) -> None:
    assert _problems(data) == [("spec", "must be a mapping of fields")]


def test_spec_error_exit_code_is_2_and_message_lists_problems() -> None:
    with pytest.raises(SpecError) as exc:
        parse_spec(_render(colour="red"))
    err = exc.value
    assert isinstance(err, FarmError)
    assert err.exit_code == 2
    assert SpecError.exit_code == 2
    assert str(err) == "invalid job spec:\n  colour: unknown field"


def test_single_frame_written_as_a_yaml_number_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "one.yaml"
    p.write_text("kind: render\ncheckpoint: job:t\nframes: 1001\n")
    spec = load_spec(p)
    assert isinstance(spec, RenderSpec)
    assert spec.frame_list() == [1001]


# --- load_spec -------------------------------------------------------------------------


def test_load_yaml_spec(tmp_path: Path) -> None:
    p = tmp_path / "shot.yaml"
    p.write_text(
        "kind: render\n"
        "name: sh010\n"
        "checkpoint: job:vae-1\n"
        "frames: 1001-1050\n"
        "chunk_size: 10\n"
        "keyframes: [1, 'seed:3']\n"
    )
    spec = load_spec(p)
    assert isinstance(spec, RenderSpec)
    assert spec.name == "sh010"
    assert spec.checkpoint == "job:vae-1"
    assert spec.frames == "1001-1050"
    assert spec.chunk_size == 10
    assert spec.keyframes == [1, "seed:3"]


def test_load_json_spec(tmp_path: Path) -> None:
    p = tmp_path / "train.json"
    p.write_text(json.dumps({"kind": "train", "epochs": 2, "name": "t1"}))
    spec = load_spec(p)
    assert isinstance(spec, TrainSpec)
    assert (spec.epochs, spec.name) == (2, "t1")


def test_load_yml_file_reports_spec_problems(tmp_path: Path) -> None:
    p = tmp_path / "bad.yml"
    p.write_text("kind: render\ncheckpoint: job:t\nframes: 1-10\nwidht: 320\n")
    with pytest.raises(SpecError) as exc:
        load_spec(p)
    assert exc.value.problems == [("widht", "unknown field")]


def test_load_missing_file_is_reported_under_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as exc:
        load_spec(p)
    assert len(exc.value.problems) == 1
    field, reason = exc.value.problems[0]
    assert field == "file"
    assert reason.startswith(f"cannot read {p}")
    assert exc.value.exit_code == 2


def test_load_directory_is_reported_under_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        load_spec(tmp_path)
    assert [f for f, _ in exc.value.problems] == ["file"]
    assert exc.value.problems[0][1].startswith("cannot read")


def test_load_invalid_yaml_is_reported_under_file(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("kind: render\nframes: [1-10\n")
    with pytest.raises(SpecError) as exc:
        load_spec(p)
    assert [f for f, _ in exc.value.problems] == ["file"]
    assert f"{p} is not valid YAML/JSON" in exc.value.problems[0][1]


def test_load_invalid_json_is_reported_under_file(tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('{"kind": "train",}')
    with pytest.raises(SpecError) as exc:
        load_spec(p)
    assert [f for f, _ in exc.value.problems] == ["file"]
    assert f"{p} is not valid YAML/JSON" in exc.value.problems[0][1]


def test_load_empty_yaml_is_not_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "empty.yaml"
    p.write_text("")
    with pytest.raises(SpecError) as exc:
        load_spec(p)
    assert exc.value.problems == [("spec", "must be a mapping of fields")]


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"webhook": {"url": "http://hooks.example/\x00"}}, "webhook.url"),
        ({"tags": ["ok", "bad\x00"]}, "tags.1"),
        ({"name": "n\x00"}, "name"),
    ],
)
def test_a_nul_character_anywhere_is_refused_naming_where(extra: dict, where: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_spec({"kind": "train", **extra})
    assert any(where in f"{f}: {r}" for f, r in e.value.problems), e.value.problems


# --- colours, class names, titles, font walks (issue 12) ------------------------------


def test_colours_and_named_classes_parse() -> None:
    spec = parse_spec(
        _render(
            mode="storyboard",
            frames="1-5",
            colors={"fill": "#f5c542", "background": "#1b1f3b", "outline_px": 2},
            storyboard=[
                {"class": "A", "hold": 2, "transition": 2},
                {"class": 3, "hold": 1, "colors": {"fill": "#ffffff80"}},
            ],
        )
    )
    assert isinstance(spec, RenderSpec) and spec.storyboard is not None
    assert spec.storyboard[0].class_ == "A" and spec.storyboard[1].class_ == 3
    stored = spec.model_dump(mode="json")
    assert stored["storyboard"][1]["colors"]["fill"] == "#ffffff80"
    assert stored["colors"]["outline_px"] == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"colors": {"fill": "goldish"}}, "colors.fill"),
        ({"colors": {"background": "#12345"}}, "colors.background"),
        ({"colors": {"stroke": "#fff"}}, "colors.stroke"),
        ({"colors": {"outline_px": -1}}, "colors.outline_px"),
        ({"colors": {"shadow_offset": [5000, 0]}}, "colors.shadow_offset"),
    ],
)
def test_bad_colours_are_named(changes: dict[str, Any], field: str) -> None:
    assert [f for f, _ in _problems(_render(**changes))] == [field]


def test_a_shots_bad_colour_is_named_under_the_shot() -> None:
    shots = [{"class": 0, "hold": 1, "colors": {"fill": "nope"}}]
    problems = _problems(_render(mode="storyboard", frames="1", storyboard=shots))
    assert problems[0][0] == "storyboard.0.colors.fill" and "not a colour" in problems[0][1]


def test_title_spec_parses_and_checks_its_fields() -> None:
    spec = parse_spec(_render(mode="title", text="FARM", frames="1-48"))
    assert isinstance(spec, RenderSpec) and spec.text == "FARM"
    assert [f for f, _ in _problems(_render(mode="title"))] == ["text"]
    assert [f for f, _ in _problems(_render(mode="title", text="   "))] == ["text"]
    assert [f for f, _ in _problems(_render(text="FARM"))] == ["text"]
    assert [f for f, _ in _problems(_render(mode="title", text="FARM", frames="1-3"))] == ["frames"]
    wrong = _render(mode="title", text="AB", hold=10, transition=5, frames="1-20")
    assert [f for f, _ in _problems(wrong)] == ["frames"]
    assert parse_spec(_render(mode="title", text="AB", hold=10, transition=5, frames="1-25"))


def test_title_shots_split_the_range() -> None:
    from farm.specs import title_shots

    assert title_shots("FARM", 48) == [("F", 9, 5), ("A", 8, 5), ("R", 8, 5), ("M", 8, 0)]
    # A space doubles the hold of the letter before it.
    plan = title_shots("AB C", 40, transition=4)
    assert [c for c, _, _ in plan] == ["A", "B", "C"] and plan[1][1] == 2 * plan[0][1]
    assert sum(h + t for _, h, t in plan) == 40
    assert title_shots("A", 7) == [("A", 7, 0)]
    for total in range(3, 60):
        assert sum(h + t for _, h, t in title_shots("XYZ", total)) == total


def test_style_keyframes_parse() -> None:
    spec = parse_spec(
        _render(keyframes=[{"class": "A", "style": "DejaVuSans"}, {"class": "A", "style": "cmr10"}])
    )
    assert isinstance(spec, RenderSpec)
    stored = spec.model_dump(mode="json")["keyframes"]
    assert stored == [{"class": "A", "style": "DejaVuSans"}, {"class": "A", "style": "cmr10"}]
