"""Motion and write specs (issue 13): what submission accepts and refuses, named by field,
and the render modes' pure pieces (colours, chunk-invariant frames) on tiny models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from farm.errors import SpecError
from farm.families import MOTION_ACTIONS, info_from_metadata, info_from_train_spec
from farm.resolve import model_problems
from farm.specs import RenderSpec, TrainSpec, dataset_options, parse_spec


def fields(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_spec(data)
    return [f for f, _ in e.value.problems]


def motion(**kw: Any) -> dict[str, Any]:
    spec = {"kind": "render", "checkpoint": "job:m", "mode": "motion", "frames": "1-20",
            "actions": [{"action": "walk", "frames": 12}, {"action": "jump", "frames": 8}],
            "transition": 4}  # fmt: skip
    return {**spec, **kw}


def write(**kw: Any) -> dict[str, Any]:
    return {"kind": "render", "checkpoint": "job:s", "mode": "write", "frames": "1-20",
            "text": "Hi", **kw}  # fmt: skip


def test_the_actions_are_the_data_sets() -> None:
    from workers.datasets.motion import ACTIONS

    assert MOTION_ACTIONS == ACTIONS


def test_motion_and_strokes_train_specs() -> None:
    spec = parse_spec({"kind": "train", "model": "motion", "dataset": "motion", "clips": 3})
    assert isinstance(spec, TrainSpec)
    assert spec.hidden == 128 and spec.epochs == 150
    assert dataset_options(spec.model_dump()) == {"clips": 3}
    strokes = parse_spec({"kind": "train", "model": "strokes", "dataset": "strokes",
                          "charset": "A-C"})  # fmt: skip
    assert dataset_options(strokes.model_dump()) == {"charset": "A-C"}
    assert parse_spec({"kind": "train", "model": "motion", "dataset": "bvh:mocap/a.bvh"})


@pytest.mark.parametrize(
    ("data", "want"),
    [
        ({"model": "motion", "dataset": "strokes"}, ["dataset"]),
        ({"model": "strokes", "dataset": "motion"}, ["dataset"]),
        ({"model": "vae", "dataset": "motion"}, ["dataset"]),
        ({"model": "strokes", "dataset": "strokes", "clips": 4}, ["clips"]),
        ({"model": "motion", "dataset": "motion", "charset": "AB"}, ["charset"]),
        ({"model": "motion", "dataset": "motion", "conditional": True}, ["conditional"]),
        ({"model": "strokes", "dataset": "strokes", "frame_vae": {"epochs": 1}}, ["frame_vae"]),
        ({"model": "vae", "hidden": 3}, ["hidden"]),
    ],
)
def test_train_fields_that_do_not_fit_are_refused(data: dict[str, Any], want: list[str]) -> None:
    assert fields({"kind": "train", **data}) == want


def test_a_motion_render_parses() -> None:
    spec = parse_spec(motion(camera="fixed", colors={"fill": "red"}))
    assert isinstance(spec, RenderSpec)
    assert [a.action for a in spec.actions or []] == ["walk", "jump"]


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"actions": [{"action": "walk", "frames": 12}, {"action": "fly", "frames": 8}]},
         ["actions.1.action"]),
        ({"transition": 9}, ["transition"]),
        ({"frames": "1-21"}, ["frames"]),
        ({"actions": None}, ["actions"]),
        ({"camera": "dolly"}, ["camera"]),
        ({"actions": [{"action": "walk", "frames": 0}]}, ["actions.0.frames"]),
        ({"line_px": 2}, ["line_px"]),
        ({"text": "Hi"}, ["text"]),
    ],
)  # fmt: skip
def test_bad_motion_renders_name_the_field(kw: dict[str, Any], want: list[str]) -> None:
    assert fields(motion(**kw)) == want


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"text": "   "}, ["text"]),
        ({"hold": 20}, ["hold"]),
        ({"hold": 4, "strokes_per_second": 30}, ["hold"]),
        ({"actions": [{"action": "walk", "frames": 20}]}, ["actions"]),
        ({"camera": "fixed"}, ["camera"]),
        ({"transition": 3}, ["transition"]),
    ],
)
def test_bad_write_renders_name_the_field(kw: dict[str, Any], want: list[str]) -> None:
    assert fields(write(**kw)) == want


def test_the_new_fields_stay_out_of_other_modes() -> None:
    spec = {"kind": "render", "checkpoint": "job:v", "frames": "1-10", "line_px": 2,
            "strokes_per_second": 9, "camera": "follow"}  # fmt: skip
    assert sorted(fields(spec)) == ["camera", "line_px", "strokes_per_second"]


def test_pictures_name_known_bones_on_their_modes() -> None:
    from workers.datasets.motion import JOINTS

    parse_spec(motion(background_image="sky.png", bone_sprites={"head": "h.png"}))
    parse_spec(write(background_image="paper.jpg"))
    assert fields(motion(bone_sprites={"tail": "t.png"})) == ["bone_sprites"]
    assert fields(write(bone_sprites={"head": "h.png"})) == ["bone_sprites"]
    other = {"kind": "render", "checkpoint": "job:v", "frames": "1-10", "background_image": "x"}
    assert fields(other) == ["background_image"]
    from farm.families import BONES

    for parent, child in BONES.values():  # every bone joins a joint to its child
        from workers.datasets.motion import PARENTS

        assert PARENTS[child] == parent, JOINTS[child]


def test_the_checkpoint_decides_modes_actions_characters_and_colours() -> None:
    motion_info = info_from_train_spec({"model": "motion", "dataset": "motion"})
    strokes_info = info_from_metadata({"family": "strokes", "config": {"num_classes": 2},
                                       "classes": ["H", "i"]})  # fmt: skip
    assert motion_info.classes == MOTION_ACTIONS
    assert strokes_info.classes == ("H", "i")
    ok = parse_spec(motion(colors={"fill": "#123", "background": "white"}))
    assert isinstance(ok, RenderSpec)
    assert model_problems(ok, motion_info) == []
    glow = parse_spec(motion(colors={"glow": "red"}))
    assert isinstance(glow, RenderSpec)
    assert [f for f, _ in model_problems(glow, motion_info)] == ["colors.glow"]
    hello = parse_spec(write(text="Hello"))
    assert isinstance(hello, RenderSpec)
    problems = model_problems(hello, strokes_info)
    assert [f for f, _ in problems] == ["text"] and "'e'" in problems[0][1]
    assert [f for f, _ in model_problems(hello, motion_info)] == ["checkpoint"]
    assert [f for f, _ in model_problems(ok, strokes_info)] == ["checkpoint"]
    words = info_from_train_spec({"model": "strokes", "dataset": "strokes", "charset": "a-z"})
    assert len(words.classes) == 26


def test_a_write_style_is_a_font_the_stroke_model_trained_on() -> None:
    from farm.families import STROKE_STYLE

    default = info_from_train_spec({"model": "strokes", "dataset": "strokes"})
    assert STROKE_STYLE in default.styles and "rowmant" not in default.styles  # held out
    roman = parse_spec(write(style="rowmans"))
    gothic = parse_spec(write(style="gothiceng"))
    assert isinstance(roman, RenderSpec) and isinstance(gothic, RenderSpec)
    assert model_problems(roman, default) == []
    problems = model_problems(gothic, default)
    assert [f for f, _ in problems] == ["style"] and "rowmans" in problems[0][1]
    two = {"fonts": ["gothiceng", "futural"], "heldout_fonts": []}
    chosen = info_from_train_spec({"model": "strokes", "dataset": "strokes", **two})
    assert chosen.styles == ("gothiceng", "futural") and model_problems(gothic, chosen) == []
    trained = info_from_metadata({"family": "strokes", "config": {"num_classes": 2},
                                  "classes": ["H", "i"], "style_names": ["futural"]})  # fmt: skip
    hi = parse_spec(write(style="rowmans"))
    assert isinstance(hi, RenderSpec)
    assert [f for f, _ in model_problems(hi, trained)] == ["style"]
    assert fields(motion(style="rowmans")) == ["style"]


def _job(spec: dict[str, Any], model: torch.nn.Module, meta: dict[str, Any], total: int) -> Any:
    from workers.modes import RenderJob

    return RenderJob(spec, model, meta, total, torch.device("cpu"), Path("/nonexistent"))


def _frames(job: Any, mode: str, positions: list[int]) -> np.ndarray:
    from workers.modes import get_mode

    return np.concatenate(list(get_mode(mode)(job, positions)))


def test_motion_frames_are_chunk_invariant_and_in_the_fill_colour() -> None:
    from workers.models.motion import MotionConfig, MotionRNN

    torch.manual_seed(0)
    model = MotionRNN(MotionConfig(hidden=8)).eval()
    for p in model.head.parameters():
        torch.nn.init.normal_(p, std=0.05)
    actions = [{"action": "walk", "frames": 6}, {"action": "wave", "frames": 5}]
    colors = {"fill": "#ff0000", "background": "#000"}
    spec = {"mode": "motion", "actions": actions, "transition": 2, "width": 40, "height": 24,
            "seed": 1, "batch_size": 4, "colors": colors}  # fmt: skip
    for camera in ("follow", "fixed"):
        job = _job({**spec, "camera": camera}, model, {"family": "motion"}, 11)
        whole = _frames(job, "motion", list(range(11)))
        parts = [_frames(job, "motion", list(range(i, min(i + 3, 11)))) for i in range(0, 11, 3)]
        assert whole.shape == (11, 24, 40, 3)
        assert np.array_equal(whole, np.concatenate(parts))
        assert (whole[..., 0] == 255).any() and (whole[..., 1:] == 0).all()


def test_write_frames_are_chunk_invariant_and_end_held() -> None:
    from workers.models.strokes import StrokeDecoder, StrokesConfig

    torch.manual_seed(0)
    model = StrokeDecoder(StrokesConfig(num_classes=2, hidden=8, mixtures=2, max_len=12)).eval()
    spec = {"mode": "write", "text": "ab a", "width": 48, "height": 24, "seed": 5,
            "batch_size": 3, "fps": 24.0}  # fmt: skip
    job = _job(spec, model, {"family": "strokes", "classes": ["a", "b"]}, 12)
    whole = _frames(job, "write", list(range(12)))
    parts = [_frames(job, "write", list(range(i, min(i + 5, 12)))) for i in range(0, 12, 5)]
    assert np.array_equal(whole, np.concatenate(parts))
    assert (whole[-3:] == whole[-1]).all()  # a quarter of the range holds the finished text
    from workers.context import PermanentError

    meta = {"family": "strokes", "classes": ["a", "b"]}
    with pytest.raises(PermanentError, match="text"):
        _frames(_job({**spec, "text": "abc"}, model, meta, 12), "write", [0])


def test_write_renders_in_the_named_style_and_refuses_an_unknown_one() -> None:
    from workers.context import PermanentError
    from workers.models.strokes import StrokeDecoder, StrokesConfig

    torch.manual_seed(0)
    cfg = StrokesConfig(num_classes=2, num_styles=2, hidden=8, mixtures=2, max_len=12)
    model = StrokeDecoder(cfg).eval()
    with torch.no_grad():
        model.style.weight.mul_(50)  # the fonts' embeddings far apart: different glyphs
    spec = {"mode": "write", "text": "ab", "width": 48, "height": 24, "seed": 5, "fps": 24.0}
    meta = {"family": "strokes", "classes": ["a", "b"], "style_names": ["futural", "rowmans"]}
    default = _frames(_job(spec, model, meta, 4), "write", [3])
    roman = _frames(_job({**spec, "style": "rowmans"}, model, meta, 4), "write", [3])
    sans = _frames(_job({**spec, "style": "futural"}, model, meta, 4), "write", [3])
    assert np.array_equal(default, roman), "without a style the model writes Roman simplex"
    assert not np.array_equal(roman, sans)
    with pytest.raises(PermanentError, match="style: 'timesr'"):
        _frames(_job({**spec, "style": "timesr"}, model, meta, 4), "write", [0])


def test_a_frame_drawn_in_the_figures_box_is_the_full_frame_drawing() -> None:
    from workers.draw import render_skeletons
    from workers.models.motion import MotionConfig, MotionRNN, frames_for
    from workers.modes.motion import CENTRE_Y, VIEW_HEIGHT, Scene, draw_frame, style_for

    pos = frames_for(MotionRNN(MotionConfig(hidden=8)), [("walk", 6), ("jump", 6)], 0,
                     list(range(12)), blend=2)  # fmt: skip
    style = style_for({"fill": "#c03030", "background": "#102030"})
    w, h = 200, 120
    for f, dx in ((0, 0.3), (5, -0.9), (11, 4.0)):  # 4.0: the figure out of the frame
        centre = np.array([pos[f, 0, 0] + dx, CENTRE_Y])
        box = draw_frame(pos[f], centre, w, h, Scene(style, h / VIEW_HEIGHT))
        full = render_skeletons(pos[f][None], w, h, centre=centre, scale=h / VIEW_HEIGHT,
                                style=style)[0]  # fmt: skip
        assert np.abs(box.astype(int) - full).max() <= 1  # float rounding of the box's origin
    assert (box == (0x10, 0x20, 0x30)).all()
