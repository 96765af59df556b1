"""Train and render specs for the model families: defaults, fields per family, modes."""

from __future__ import annotations

import pytest

from farm.errors import SpecError
from farm.families import (
    BUILTIN,
    GAN_SIZES,
    IMAGE_SIZES,
    VAE_SIZES,
    info_from_metadata,
    info_from_train_spec,
)
from farm.planner import plan
from farm.resolve import model_problems
from farm.specs import RenderSpec, TrainSpec, parse_spec
from farm.states import TaskKind
from workers.models import gan, lstm, vae
from workers.models.arch import SIZES


def fields(data: dict[str, object]) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_spec(data)
    return [f for f, _ in e.value.problems]


def test_control_plane_defaults_equal_the_workers() -> None:
    assert dict(BUILTIN["vae"].defaults) == vae.DEFAULTS
    assert dict(BUILTIN["gan"].defaults) == gan.DEFAULTS
    assert dict(BUILTIN["lstm"].defaults) == lstm.DEFAULTS
    assert IMAGE_SIZES == SIZES
    # The 16 px rows are the families' tuned defaults, which the models' configs default to.
    assert {k: VAE_SIZES[16][k] for k in ("latent_dim", "epochs", "batch_size")} == {
        k: vae.DEFAULTS[k] for k in ("latent_dim", "epochs", "batch_size")
    }
    assert VAE_SIZES[16]["width"] == vae.VAEConfig().channels
    assert GAN_SIZES[16]["width"] == gan.DEFAULTS["channels"] == gan.GANConfig().channels
    assert (GAN_SIZES[16]["steps"], GAN_SIZES[16]["latent_dim"]) == (1200, 32)


@pytest.mark.parametrize("size", IMAGE_SIZES)
def test_each_size_takes_its_tuned_defaults(size: int) -> None:
    for model, table in (("vae", VAE_SIZES), ("gan", GAN_SIZES)):
        s = parse_spec({"kind": "train", "model": model, "image_size": size})
        assert isinstance(s, TrainSpec)
        row = table[size]
        unit = "epochs" if model == "vae" else "steps"
        assert (s.latent_dim, s.batch_size, getattr(s, unit)) == (
            row["latent_dim"], row["batch_size"], row[unit],
        )  # fmt: skip
    given = parse_spec({"kind": "train", "image_size": 64, "latent_dim": 5, "epochs": 2})
    assert isinstance(given, TrainSpec) and (given.latent_dim, given.epochs) == (5, 2)


def test_glyph_sdf_spec_parses_with_its_data_options() -> None:
    s = parse_spec({"kind": "train", "dataset": "glyphs", "target": "sdf", "image_size": 32,
                    "charset": "A-D", "fonts": ["DejaVuSans", "cmr10"], "heldout_fonts": [],
                    "sdf_spread_px": 3, "conditional": True})  # fmt: skip
    assert isinstance(s, TrainSpec) and (s.target, s.channels) == ("sdf", 1)
    assert s.dataset_options() == {"target": "sdf", "channels": 1, "charset": "A-D",
                                   "fonts": ["DejaVuSans", "cmr10"], "heldout_fonts": [],
                                   "sdf_spread_px": 3.0}  # fmt: skip
    info = info_from_train_spec(s.model_dump(mode="json"))
    assert (info.target, info.channels, info.image_size, info.sdf_spread_px) == ("sdf", 1, 32, 3)
    assert info.classes == ("A", "B", "C", "D") and info.styles == ("DejaVuSans", "cmr10")


def test_channels_default_from_the_data_set() -> None:
    def channels(**kw: object) -> object:
        s = parse_spec({"kind": "train", **kw})
        assert isinstance(s, TrainSpec)
        return s.channels

    assert channels() == 1
    assert channels(dataset="sprites") == 4
    assert channels(dataset="sprites", target="sdf") == 1
    assert channels(dataset="glyphs") == 1
    assert channels(dataset="images:x") is None  # the files decide, at train time
    assert channels(dataset="images:x", channels=3) == 3
    assert channels(model="gan", dataset="video:v.mp4") is None
    plain = parse_spec({"kind": "train"})
    assert isinstance(plain, TrainSpec) and plain.dataset_options() == {"channels": 1}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"target": "sdf"}, "target"),  # digits: an 8x8 raster has no outline
        ({"dataset": "video:v.mp4", "target": "sdf"}, "target"),
        ({"model": "lstm", "dataset": "video:v.mp4", "target": "sdf"}, "target"),
        ({"target": "depth"}, "target"),
        ({"dataset": "glyphs", "target": "sdf", "channels": 3}, "channels"),
        ({"channels": 2}, "channels"),
        ({"channels": 5}, "channels"),
        ({"image_size": 24}, "image_size"),
        ({"image_size": 12}, "image_size"),
        ({"model": "gan", "image_size": 4}, "image_size"),
        ({"image_size": 512}, "image_size"),
        ({"dataset": "glyphs", "charset": "z-a"}, "charset"),
        ({"dataset": "glyphs", "charset": ""}, "charset"),
        ({"dataset": "glyphs", "charset": "A--"}, "charset"),
        ({"charset": "A-Z"}, "charset"),  # digits take no charset
        ({"dataset": "sprites", "fonts": ["cmr10"]}, "fonts"),
        ({"dataset": "images:x", "heldout_fonts": ["cmr10"]}, "heldout_fonts"),
        ({"dataset": "glyphs", "sdf_spread_px": 4}, "sdf_spread_px"),  # pixels take none
        ({"dataset": "glyphs", "target": "sdf", "sdf_spread_px": 0.1}, "sdf_spread_px"),
        ({"dataset": "fonts:x"}, "dataset"),
    ],
)
def test_bad_data_options_are_refused_naming_the_field(data: dict[str, object], field: str) -> None:
    assert field in fields({"kind": "train", **data})


def test_conditional_works_on_any_labelled_set() -> None:
    for dataset in ("digits", "glyphs", "glyphs:fonts/", "sprites"):
        s = parse_spec({"kind": "train", "dataset": dataset, "conditional": True})
        assert isinstance(s, TrainSpec) and s.conditional
    g = parse_spec({"kind": "train", "model": "gan", "dataset": "sprites"})
    assert isinstance(g, TrainSpec) and g.conditional  # the GAN's default on labelled sets


def test_unset_hyperparameters_take_the_family_defaults() -> None:
    g = parse_spec({"kind": "train", "model": "gan"})
    assert isinstance(g, TrainSpec)
    assert (g.steps, g.epochs, g.lr, g.latent_dim, g.conditional) == (1200, None, 2e-4, 32, True)
    m = parse_spec({"kind": "train", "model": "lstm"})
    assert isinstance(m, TrainSpec)
    assert (m.dataset, m.epochs, m.latent_dim, m.image_size, m.hidden) == (
        "moving-digits", 60, 16, 32, 256,
    )  # fmt: skip


def test_old_small_vae_spec_still_parses() -> None:
    s = parse_spec({"kind": "train", "epochs": 2, "latent_dim": 4})
    assert isinstance(s, TrainSpec)
    assert (s.model, s.dataset, s.epochs, s.latent_dim, s.conditional) == (
        "vae",
        "digits",
        2,
        4,
        False,
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"model": "diffusion"}, "model"),
        ({"dataset": "cifar"}, "dataset"),
        ({"dataset": "images:"}, "dataset"),
        ({"model": "gan", "epochs": 3}, "epochs"),
        ({"model": "vae", "steps": 3}, "steps"),
        ({"model": "lstm", "conditional": True}, "conditional"),
        ({"dataset": "images:x", "conditional": True}, "conditional"),
        ({"model": "lstm", "dataset": "digits"}, "dataset"),
        ({"hidden": 4}, "hidden"),
        ({"image_size": 18}, "image_size"),
    ],
)
def test_train_fields_that_do_not_fit_are_named(data: dict[str, object], field: str) -> None:
    assert field in fields({"kind": "train", **data})


def test_images_and_video_datasets_parse() -> None:
    for name in ("images:frames/", "video:clip.mp4"):
        assert parse_spec({"kind": "train", "dataset": name}).dataset == name  # type: ignore[union-attr]


def render(**kw: object) -> dict[str, object]:
    return {"kind": "render", "checkpoint": "job:t", "frames": "1-17", **kw}


SHOTS = [{"class": 3, "hold": 3, "transition": 4}, {"class": 8, "hold": 3, "transition": 4},
         {"class": 0, "hold": 3}]  # fmt: skip


def test_storyboard_length_must_equal_the_range() -> None:
    s = parse_spec(render(mode="storyboard", storyboard=SHOTS))
    assert isinstance(s, RenderSpec) and s.storyboard_length() == 17
    assert fields(render(mode="storyboard", storyboard=SHOTS, frames="1-16")) == ["frames"]
    assert "storyboard" in fields(render(mode="storyboard"))
    assert "storyboard" in fields(render(storyboard=SHOTS))
    assert fields(render(mode="storyboard", storyboard=[{"class": 1}])) == ["storyboard.0.hold"]


def test_sample_grid_is_one_task_and_a_png() -> None:
    s = parse_spec({"kind": "render", "checkpoint": "job:t", "mode": "sample_grid"})
    assert isinstance(s, RenderSpec)
    assert [p.kind for p in plan(s)] == [TaskKind.SAMPLE_GRID]
    assert s.output_plan("g")[:2] == ("png", "renders/g.png")
    assert fields({"kind": "render", "checkpoint": "job:t", "mode": "sample_grid",
                   "output": "x.mp4"}) == ["output"]  # fmt: skip
    assert "frames" in fields({"kind": "render", "checkpoint": "job:t"})


def test_rollout_needs_more_frames_than_its_seed() -> None:
    assert fields(render(mode="rollout", frames="1-4", seed_frames=4)) == ["frames"]


def test_latent_keyframes_parse() -> None:
    s = parse_spec(render(keyframes=[1, "seed:2", {"latent": [0.0, 1.0]}]))
    assert isinstance(s, RenderSpec) and len(s.keyframes) == 3
    assert all(f.startswith("keyframes.0") for f in fields(render(keyframes=[{"latent": []}])))


def problems(spec: dict[str, object], train: dict[str, object]) -> list[str]:
    r = parse_spec(spec)
    assert isinstance(r, RenderSpec)
    t = parse_spec({"kind": "train", **train})
    return [f for f, _ in model_problems(r, info_from_train_spec(t.model_dump(mode="json")))]


def test_submission_checks_against_the_checkpoint() -> None:
    gan_ = {"model": "gan", "latent_dim": 8}
    assert problems(render(mode="rollout"), gan_) == ["checkpoint"]
    assert problems(render(keyframes=[0, 10]), gan_) == ["keyframes.1"]
    assert problems(render(keyframes=[{"latent": [1.0] * 3}]), gan_) == ["keyframes.0"]
    assert problems(render(keyframes=[{"latent": [1.0] * 8}]), gan_) == []
    assert problems(render(mode="storyboard", storyboard=SHOTS), {}) == ["storyboard"]
    assert problems(render(mode="storyboard", storyboard=SHOTS), {"conditional": True}) == []
    bad = [{**SHOTS[0], "class": 10}, *SHOTS[1:]]
    assert problems(render(mode="storyboard", storyboard=bad), {"conditional": True}) == [
        "storyboard.0.class"
    ]
    assert problems(render(keyframes=[0]), {"dataset": "images:x"}) == ["keyframes.0"]


def test_sidecar_metadata_gives_the_same_model_info() -> None:
    meta = {"family": "gan", "config": {"latent_dim": 32, "num_classes": 10}}
    info = info_from_metadata(meta)
    assert (info.family, info.conditional, info.num_classes, info.latent_dim) == (
        "gan",
        True,
        10,
        32,
    )
    vae_meta = {"family": "vae", "config": {"latent_dim": 8, "num_classes": 0},
                "class_means": [[0.0] * 8] * 10}  # fmt: skip
    assert info_from_metadata(vae_meta).num_classes == 10
    assert not info_from_metadata(vae_meta).conditional


def test_the_control_planes_class_names_match_the_data_sets() -> None:
    from farm.families import DATASET_CLASSES
    from workers.datasets import digits, sprites

    assert DATASET_CLASSES["digits"] == tuple(digits.CLASSES)
    assert DATASET_CLASSES["sprites"] == tuple(sprites.SHAPES)


def test_old_digit_checkpoints_name_their_classes() -> None:
    info = info_from_metadata({"family": "vae", "config": {"latent_dim": 8, "num_classes": 10}})
    assert info.classes == tuple("0123456789")
    assert (info.target, info.channels, info.image_size) == ("pixels", 1, 16)


def test_a_glyph_spec_names_its_charset_as_classes() -> None:
    spec = {"model": "vae", "dataset": "glyphs", "charset": "A-C", "conditional": True}
    info = info_from_train_spec(spec)
    assert info.classes == ("A", "B", "C") and info.num_classes == 3


GLYPHS = {"model": "vae", "dataset": "glyphs", "charset": "A-Z", "conditional": True}


def raw_problems(spec: dict[str, object], train: dict[str, object]) -> list[str]:
    """As :func:`problems`, from a train spec as stored (data sets the train side adds)."""
    r = parse_spec(spec)
    assert isinstance(r, RenderSpec)
    return [f for f, _ in model_problems(r, info_from_train_spec(train))]


def test_a_character_outside_the_charset_is_refused_by_name() -> None:
    shots = [{"class": c, "hold": 1} for c in "ABCé"]
    spec = parse_spec(render(mode="storyboard", storyboard=shots, frames="1-4"))
    assert isinstance(spec, RenderSpec)
    found = model_problems(spec, info_from_train_spec(GLYPHS))
    assert [f for f, _ in found] == ["storyboard.3.class"]
    assert "'é'" in found[0][1] and "ABCDEFGHIJKLMNOPQRSTUVWXYZ" in found[0][1]
    title = parse_spec(render(mode="title", text="FARM 9", frames="1-40"))
    assert isinstance(title, RenderSpec)
    (field, reason), *rest = model_problems(title, info_from_train_spec(GLYPHS))
    assert (field, rest) == ("text", []) and "'9'" in reason


def test_a_title_needs_a_conditional_model() -> None:
    assert problems(render(mode="title", text="42", frames="1-20"), {}) == ["mode"]
    assert problems(render(mode="title", text="42", frames="1-20"), {"conditional": True}) == []


def test_a_style_the_model_lacks_is_refused() -> None:
    meta = {"family": "vae", "config": {"latent_dim": 8, "num_classes": 26},
            "classes": [chr(c) for c in range(65, 91)], "style_names": ["DejaVuSans", "cmr10"],
            "style_means": [[0.0] * 8, [1.0] * 8]}  # fmt: skip
    keys = [{"class": "A", "style": "DejaVuSans"}, {"class": "A", "style": "Comic"}]
    spec = parse_spec(render(keyframes=keys))
    assert isinstance(spec, RenderSpec)
    found = model_problems(spec, info_from_metadata(meta))
    assert [f for f, _ in found] == ["keyframes.1.style"] and "cmr10" in found[0][1]
    gan_ = {"model": "gan", "dataset": "glyphs", "charset": "A-Z", "conditional": True}
    assert raw_problems(render(keyframes=keys[:1]), gan_) == ["keyframes.0.style"]


def test_colour_options_the_model_cannot_use_are_refused() -> None:
    outline = render(colors={"fill": "#f5c542", "outline": "#fff"})
    assert raw_problems(outline, GLYPHS) == ["colors.outline"]
    assert raw_problems(outline, {**GLYPHS, "target": "sdf"}) == []
    sprites = {"model": "vae", "dataset": "sprites", "channels": 3}
    assert raw_problems(render(keyframes=[0], colors={"background": "#000"}), sprites) == [
        "colors.background"
    ]


def test_a_spec_stored_before_the_data_options_loads_its_set_as_before() -> None:
    from farm.specs import dataset_options

    assert dataset_options({"kind": "train", "dataset": "digits", "image_size": 16}) == {}
    assert dataset_options({"dataset": "images:x", "target": "sdf"}) == {"target": "sdf"}
    assert dataset_options({"dataset": "sprites"}) == {"target": "pixels"}  # not their sdf


def test_a_shape_cvae_defaults_to_a_latent_too_small_to_carry_the_class() -> None:
    from farm.families import SHAPE_CVAE

    spec = parse_spec({"kind": "train", "dataset": "glyphs", "conditional": True,
                       "image_size": 32, "target": "sdf"})  # fmt: skip
    assert (spec.latent_dim, spec.epochs) == (SHAPE_CVAE["latent_dim"], SHAPE_CVAE["epochs"])
    plain = parse_spec({"kind": "train", "dataset": "glyphs", "image_size": 32})
    assert plain.latent_dim == 16  # the size's row: an unconditional VAE's latent holds it all
    own = parse_spec({"kind": "train", "dataset": "sprites", "conditional": True,
                      "latent_dim": 8})  # fmt: skip
    assert own.latent_dim == 8


def test_kl_warmup_is_a_vae_option_with_named_errors() -> None:
    def train(**f: object) -> TrainSpec:
        spec = parse_spec({"kind": "train", **f})
        assert isinstance(spec, TrainSpec)
        return spec

    assert train().kl_warmup_epochs == 0
    shape = {"dataset": "glyphs", "conditional": True, "image_size": 32, "target": "sdf"}
    assert train(**shape).kl_warmup_epochs == 0
    assert train(**shape, kl_warmup_epochs=40).kl_warmup_epochs == 40
    assert train(model="gan").kl_warmup_epochs is None
    for bad, field_reason in [
        ({"kl_warmup_epochs": -1}, "greater than or equal to 0"),
        ({"kl_warmup_epochs": True}, "integer"),
        ({"kl_warmup_epochs": 10, "epochs": 5}, "more than the 5 epochs"),
        ({"model": "gan", "kl_warmup_epochs": 4}, "only a vae job"),
    ]:
        with pytest.raises(SpecError) as e:
            parse_spec({"kind": "train", **bad})
        assert [f for f, _ in e.value.problems] == ["kl_warmup_epochs"]
        assert field_reason in e.value.problems[0][1]


def test_conditioning_is_a_conditional_vae_option_with_named_errors() -> None:
    def train(**f: object) -> TrainSpec:
        spec = parse_spec({"kind": "train", **f})
        assert isinstance(spec, TrainSpec)
        return spec

    shape = {"dataset": "glyphs", "conditional": True, "image_size": 32, "target": "sdf"}
    assert train(**shape).conditioning == "concat"
    assert train(**shape, conditioning="film").conditioning == "film"
    assert train(conditional=True).conditioning == "concat"  # digits: the model as it was
    assert train().conditioning is None  # unconditional: no class to condition on
    assert train(model="gan").conditioning is None
    for bad, field_reason in [
        ({"conditional": True, "conditioning": "add"}, "'concat' or 'film'"),
        ({"conditioning": "film"}, "only a conditional vae"),
        ({"model": "gan", "conditioning": "film"}, "only a conditional vae"),
    ]:
        with pytest.raises(SpecError) as e:
            parse_spec({"kind": "train", **bad})
        assert [f for f, _ in e.value.problems] == ["conditioning"]
        assert field_reason in e.value.problems[0][1]


def test_min_std_is_a_vae_option_with_named_errors() -> None:
    from farm.families import SHAPE_CVAE

    def train(**f: object) -> TrainSpec:
        spec = parse_spec({"kind": "train", **f})
        assert isinstance(spec, TrainSpec)
        return spec

    shape = {"dataset": "glyphs", "conditional": True, "image_size": 32, "target": "sdf"}
    assert train(**shape).min_std == SHAPE_CVAE["min_std"] > 0
    assert train(**shape, min_std=0).min_std == 0
    assert train().min_std == 0  # digits: the model as it was
    assert train(model="gan").min_std is None
    for bad, field_reason in [
        ({"min_std": -0.1}, "greater than or equal to 0"),
        ({"min_std": 1.0}, "less than 1"),
        ({"min_std": True}, "valid number"),
        ({"min_std": float("nan")}, "finite number"),
        ({"model": "gan", "min_std": 0.3}, "only a vae job"),
    ]:
        with pytest.raises(SpecError) as e:
            parse_spec({"kind": "train", **bad})
        assert [f for f, _ in e.value.problems] == ["min_std"]
        assert field_reason in e.value.problems[0][1]
