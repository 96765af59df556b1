"""Stroke glyphs from the Hershey fonts, and the sketch-RNN decoder's mixture and training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from workers.datasets import load_dataset
from workers.datasets.base import DatasetError
from workers.datasets.strokes import DEFAULT_FONTS, HELDOUT_FONTS, LATIN_FONTS, _font, build
from workers.models.strokes import (
    START,
    Mixture,
    StrokeDecoder,
    StrokesConfig,
    dequantise,
    sample,
    sample_mixture,
    sample_pen,
    style_indices,
    to_stroke5,
    train_strokes,
    trained_styles,
)
from workers.writing import frames_for, style_index, visible_segments, write_text


def test_cumulative_offsets_reproduce_the_hershey_points() -> None:
    strokes = build(["futural", "timesr"], ["futural", "timesr"], list("AB8"), ["futural"])
    assert strokes.labels.tolist() == [0, 1, 2, 0, 1, 2]
    for i, (font, ch) in enumerate([(f, c) for f in ("futural", "timesr") for c in "AB8"]):
        glyph = _font(font).all_glyphs[ch]
        want = np.array([p for stroke in glyph.strokes for p in stroke], dtype=np.float64)
        rows = strokes.sequence(i).astype(np.float64)
        got = np.cumsum(rows[:, :2], axis=0) * strokes.scale * strokes.unit[i]
        np.testing.assert_allclose(got, want, atol=1e-4)
        ends = np.cumsum([len(s) for s in glyph.strokes]) - 1
        assert np.nonzero(rows[:, 2])[0].tolist() == ends.tolist(), "pen lifts at stroke ends"


def test_offsets_have_unit_spread_on_the_training_fonts() -> None:
    strokes = build(list(LATIN_FONTS), ["futural", "rowmans"], list("abc"), ["futural", "rowmans"])
    offsets = np.concatenate([strokes.sequence(i)[:, :2] for i in range(len(strokes))])
    assert abs(offsets.std() - 1.0) < 1e-3


def test_loader_splits_fonts_and_draws_each_glyph() -> None:
    train = load_dataset("strokes", 16, options={"charset": "A-C"})
    held = load_dataset("strokes", 16, options={"charset": "A-C", "split": "heldout"})
    assert train.classes == ["A", "B", "C"]
    assert train.style_names == list(DEFAULT_FONTS)
    assert set(DEFAULT_FONTS) < set(LATIN_FONTS) and "gothiceng" not in DEFAULT_FONTS
    assert train.styles is not None and held.styles is not None and held.style_names
    used = {train.style_names[s] for s in train.styles.tolist()}
    assert used == set(DEFAULT_FONTS) - set(HELDOUT_FONTS)
    want = set(HELDOUT_FONTS) & set(DEFAULT_FONTS)
    assert {held.style_names[s] for s in held.styles.tolist()} == want and len(want) == 4
    assert held.meta["strokes"].scale == train.meta["strokes"].scale
    assert tuple(train.data.shape) == (3 * len(used), 1, 16, 16)
    assert 0.02 < float(train.data.mean()) < 0.5


def test_loader_refuses_unknown_fonts_and_options() -> None:
    with pytest.raises(DatasetError, match=r"no Hershey font.*comic"):
        load_dataset("strokes", 16, options={"fonts": ["futural", "comic"]})
    with pytest.raises(DatasetError, match="unknown option"):
        load_dataset("strokes", 16, options={"size": 3})
    with pytest.raises(DatasetError, match="has no fonts"):
        load_dataset("strokes", 16, options={"fonts": ["futural"], "split": "heldout"})


def test_stroke5_adds_the_end_row_and_pads_with_it() -> None:
    s3 = torch.tensor([[[1.0, 2.0, 0.0], [3.0, 4.0, 1.0], [0.0, 0.0, 0.0]]])
    s5 = to_stroke5(s3, torch.tensor([2]))
    assert s5.tolist() == [[[1, 2, 1, 0, 0], [3, 4, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1]]]


def _fixed_mixture(batch: int) -> Mixture:
    pi = torch.tensor([0.3, 0.7])
    mu = torch.tensor([[1.0, -2.0], [-1.0, 0.5]])
    sigma = torch.tensor([[0.5, 0.2], [0.3, 0.8]])
    rho = torch.tensor([0.6, -0.4])
    return Mixture(
        pi.log().expand(batch, 2),
        mu.expand(batch, 2, 2),
        sigma.log().expand(batch, 2, 2),
        rho.expand(batch, 2),
        torch.zeros(batch, 3),
    )


def test_mixture_samples_match_the_mixture_mean_and_covariance() -> None:
    n = 40_000
    xy = sample_mixture(_fixed_mixture(n), torch.Generator().manual_seed(0)).double().numpy()
    pi = np.array([0.3, 0.7])
    mu = np.array([[1.0, -2.0], [-1.0, 0.5]])
    s = np.array([[0.5, 0.2], [0.3, 0.8]])
    rho = np.array([0.6, -0.4])
    mean = pi @ mu
    cov = sum(
        pi[k]
        * (
            np.array(
                [
                    [s[k, 0] ** 2, rho[k] * s[k, 0] * s[k, 1]],
                    [rho[k] * s[k, 0] * s[k, 1], s[k, 1] ** 2],
                ]
            )
            + np.outer(mu[k] - mean, mu[k] - mean)
        )
        for k in range(2)
    )
    np.testing.assert_allclose(xy.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(xy.T), cov, atol=0.03)


def test_low_temperature_picks_the_main_component_and_narrows_it() -> None:
    xy = sample_mixture(_fixed_mixture(5000), torch.Generator().manual_seed(1), 0.01).numpy()
    np.testing.assert_allclose(xy.mean(0), [-1.0, 0.5], atol=0.01)
    assert xy.std(0).max() < 0.1


def test_pen_states_follow_their_probabilities() -> None:
    p = torch.tensor([0.6, 0.3, 0.1])
    pens = sample_pen(p.log().expand(30_000, 3), torch.Generator().manual_seed(2))
    freq = torch.bincount(pens, minlength=3).float() / len(pens)
    torch.testing.assert_close(freq, p, atol=0.01, rtol=0)


def test_tiny_training_lowers_the_loss_and_sampling_is_deterministic() -> None:
    torch.set_num_threads(1)
    strokes = build(["futural", "rowmans"], ["futural", "rowmans"], list("LIT"), ["futural"])
    cfg = StrokesConfig(num_classes=3, hidden=32, mixtures=3, embed=4, max_len=40)
    model, history, _ = train_strokes(strokes, cfg, epochs=50, batch_size=6, lr=1e-2, seed=0,
                                      augment=0.0)  # fmt: skip
    assert history[-1]["loss"] < history[0]["loss"] - 1.0
    assert math.isfinite(history[-1]["loss"])
    a = sample(model, 1, seed=7, temperature=0.3)
    b = sample(model, 1, seed=7, temperature=0.3)
    assert a.ndim == 2 and a.shape[1] == 3 and len(a) <= 40
    np.testing.assert_array_equal(a, b)


def test_a_run_stopped_after_an_epoch_resumes_to_the_uninterrupted_weights() -> None:
    from workers.models.vae import TrainingStopped, TrainState

    torch.set_num_threads(1)
    strokes = build(["futural", "rowmans"], ["futural", "rowmans"], list("LIT"), ["futural"])
    cfg = StrokesConfig(num_classes=3, hidden=8, mixtures=2, embed=4, max_len=40)
    kw = {"epochs": 3, "batch_size": 4, "lr": 1e-2, "seed": 2, "lr_floor": 0.1}
    full, full_history, _ = train_strokes(strokes, cfg, **kw)  # type: ignore[arg-type]
    states: list[TrainState] = []
    with pytest.raises(TrainingStopped):
        train_strokes(strokes, cfg, **kw, on_checkpoint=states.append,  # type: ignore[arg-type]
                      should_stop=lambda: len(states) >= 1)  # fmt: skip
    resumed, history, _ = train_strokes(strokes, cfg, **kw, resume_state=states[0])  # type: ignore[arg-type]
    assert history == full_history
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="seed"):
        train_strokes(strokes, cfg, **{**kw, "seed": 3}, resume_state=states[0])  # type: ignore[arg-type]


def test_stepping_with_the_state_matches_the_whole_sequence() -> None:
    """Sampling feeds one row at a time: the state must carry the LSTM and the pen position."""
    torch.manual_seed(0)
    cfg = StrokesConfig(num_classes=3, num_styles=2, hidden=16, mixtures=2, embed=4, max_len=9)
    model = StrokeDecoder(cfg).eval()
    rows = torch.cat([START.view(1, 1, 5), torch.randn(1, 5, 5)], dim=1)
    labels, styles = torch.tensor([2]), torch.tensor([1])
    whole, _ = model(rows, labels, styles)
    state, pens = None, []
    for t in range(rows.shape[1]):
        mix, state = model(rows[:, t : t + 1], labels, styles, state)
        pens.append(mix.pen)
    torch.testing.assert_close(torch.cat(pens, dim=1), whole.pen)
    torch.testing.assert_close(state[2], rows[0, :, :2].sum(0, keepdim=True))
    moved, _ = model(rows + torch.tensor([0.5, 0, 0, 0, 0]), labels, styles)
    assert not torch.allclose(moved.pen[:, -1], whole.pen[:, -1]), "the position is an input"
    other, _ = model(rows, labels, torch.tensor([0]))
    assert not torch.allclose(other.pen, whole.pen), "the style is an input"


def test_dequantising_keeps_every_point_within_its_cell() -> None:
    s3 = torch.tensor([[[1.0, 2.0, 0.0], [3.0, 4.0, 1.0], [2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    tgt = to_stroke5(s3, torch.tensor([3]))
    out = dequantise(tgt, torch.tensor([3]), torch.tensor([0.5]), torch.Generator().manual_seed(0))
    moved = out[0, :3, :2].cumsum(0) - tgt[0, :3, :2].cumsum(0)
    assert 0 < moved.abs().max() <= 0.25
    torch.testing.assert_close(out[..., 2:], tgt[..., 2:])
    torch.testing.assert_close(out[0, 4:], tgt[0, 4:])  # padding after the end row untouched


def test_styles_are_the_trained_fonts_and_checked() -> None:
    fonts = ["futural", "rowmans", "timesr"]
    strokes = build(fonts, ["futural", "timesr"], list("LI"), ["futural"])
    assert trained_styles(strokes) == ["futural", "timesr"]
    assert style_indices(strokes).tolist() == [0, 0, 1, 1]
    cfg = StrokesConfig(num_classes=2, num_styles=3, hidden=8, mixtures=2, embed=4, max_len=20)
    with pytest.raises(ValueError, match="2 styles"):
        train_strokes(strokes, cfg, epochs=1, batch_size=4, lr=1e-2, seed=0)
    assert style_index(["futural", "rowmans"], None) == 1  # Roman simplex by default
    assert style_index(["futural", "timesr"], None) == 0
    assert style_index([], None) is None
    assert style_index(["futural", "timesr"], "timesr") == 1
    with pytest.raises(ValueError, match="'cursive' is not a font"):
        style_index(["futural"], "cursive")


def test_a_checkpoint_from_before_the_style_input_is_refused_by_name() -> None:
    from workers.checkpoint import CheckpointError
    from workers.models import get_family

    family = get_family("strokes")
    cfg = StrokesConfig(num_classes=3, num_styles=2, hidden=8, mixtures=2, embed=4)
    assert isinstance(family.build(cfg.to_dict()), StrokeDecoder)
    old = {"num_classes": 3, "hidden": 8, "mixtures": 2, "embed": 4, "max_len": 160}
    with pytest.raises(CheckpointError, match=r"format 1.*train it again"):
        family.build(old)


def test_the_control_plane_knows_the_family_with_the_same_defaults() -> None:
    from farm.families import BUILTIN
    from workers.models import get_family
    from workers.models import strokes as strokes_model

    assert dict(BUILTIN["strokes"].defaults) == strokes_model.DEFAULTS
    assert get_family("strokes").config_cls is StrokesConfig


# --- writing text ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_writer() -> StrokeDecoder:
    strokes = build(["futural", "rowmans"], ["futural", "rowmans"], list("LIT"), ["futural"])
    cfg = StrokesConfig(num_classes=3, hidden=32, mixtures=3, embed=4, max_len=40)
    torch.set_num_threads(1)
    model, _, _ = train_strokes(strokes, cfg, epochs=25, batch_size=6, lr=1e-2, seed=0,
                                augment=0.0)  # fmt: skip
    return model


def test_visible_segments_follow_the_pace_and_hold() -> None:
    plan = [visible_segments(10, f, 8, hold=3) for f in range(8)]
    assert plan == [2, 4, 6, 8, 10, 10, 10, 10]
    assert [visible_segments(10, f, 5, per_frame=3) for f in range(5)] == [3, 6, 9, 10, 10]
    with pytest.raises(ValueError, match="outside"):
        visible_segments(10, 8, 8)


def test_written_text_is_deterministic_and_refuses_unknown_characters(
    tiny_writer: StrokeDecoder,
) -> None:
    a = write_text(tiny_writer, ["L", "I", "T"], "LIT IT", seed=3)
    b = write_text(tiny_writer, ["L", "I", "T"], "LIT IT", seed=3)
    np.testing.assert_array_equal(a.points, b.points)
    assert len(a.glyph_ends) == 6 and a.glyph_ends[-1] == a.segments
    assert a.glyph_ends[3] == a.glyph_ends[2], "a space draws nothing"
    with pytest.raises(ValueError, match=r"does not know: \['x', 'z'\]"):
        write_text(tiny_writer, ["L", "I", "T"], "LIxz", seed=3)


def test_writing_frames_are_bit_identical_for_any_chunking(tiny_writer: StrokeDecoder) -> None:
    n = 60

    def render(frames: list[int]) -> np.ndarray:
        text = write_text(tiny_writer, ["L", "I", "T"], "TIL", seed=9)  # each chunk re-samples
        return frames_for(text, frames, n, 48, 32, line_width=2.0, hold=10)

    whole = render(list(range(n)))
    assert (whole[-1] != whole[0]).any(), "the text appears"
    np.testing.assert_array_equal(whole[-1], whole[-10], "the last frames hold the text")
    for size in (1, 7, 50):
        parts = [render(list(range(s, min(s + size, n)))) for s in range(0, n, size)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
