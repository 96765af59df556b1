"""Colour and alpha: flattening, the input pixel format of a batch, each format's ffmpeg
arguments for RGB and RGBA frames, what its output must read as, and ``output.background``.

Pure: the writers are built but never entered, so no ffmpeg runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from farm.formats import get_rules, parse_colour
from workers.formats import get_format
from workers.media.alpha import flatten
from workers.media.writer import PipeWriter, pix_fmt_of
from workers.png import write_png

W, H = 64, 48


def test_flatten_composites_straight_alpha_over_the_background_rounded_to_nearest() -> None:
    rgba = np.array(
        [[255, 0, 0, 255], [255, 0, 0, 0], [255, 0, 0, 128], [10, 20, 30, 255], [0, 0, 0, 1]],
        np.uint8,
    )
    out = flatten(rgba, (0, 0, 255))
    assert out.dtype == np.uint8
    # 255*128/255 = 128; 255*127/255 = 127; opaque unchanged; fully clear is the background.
    assert out.tolist() == [[255, 0, 0], [0, 0, 255], [128, 0, 127], [10, 20, 30], [0, 0, 254]]


def test_flatten_defaults_to_black_and_keeps_batch_shape() -> None:
    frames = np.full((2, 3, 5, 4), 200, np.uint8)  # (B, H, W, 4)
    frames[..., 3] = 51  # 20% opaque
    out = flatten(frames)
    assert out.shape == (2, 3, 5, 3)
    assert (out == 40).all()


def test_flatten_16_bit_widens_the_background_exactly_and_cannot_overflow() -> None:
    rgba = np.array([[65535, 65535, 65535, 65535], [0, 0, 0, 0], [65535, 0, 0, 32768]], np.uint16)
    out = flatten(rgba, (255, 255, 255))
    assert out.dtype == np.uint16
    assert out.tolist() == [[65535, 65535, 65535], [65535, 65535, 65535], [65535, 32767, 32767]]


@pytest.mark.parametrize(
    ("frames", "background", "match"),
    [
        (np.zeros((2, 2, 3), np.uint8), (0, 0, 0), "RGBA"),
        (np.zeros((2, 2, 4), np.float32), (0, 0, 0), "uint8 or uint16"),
        (np.zeros((2, 2, 4), np.uint8), (0, 0, 256), "background"),
        (np.zeros((2, 2, 4), np.uint8), (0, 0), "background"),
    ],
)
def test_flatten_refuses_what_it_cannot_composite(
    frames: np.ndarray, background: tuple[int, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        flatten(frames, background)


@pytest.mark.parametrize(
    ("shape", "dtype", "pix_fmt"),
    [
        ((2, H, W), np.uint8, "gray"),
        ((2, H, W, 3), np.uint8, "rgb24"),
        ((2, H, W, 4), np.uint8, "rgba"),
        ((2, H, W), np.uint16, "gray16le"),
        ((2, H, W, 3), np.uint16, "rgb48le"),
        ((2, H, W, 4), np.uint16, "rgba64le"),
    ],
)
def test_a_batch_names_its_pixel_format_by_dtype_and_shape(
    shape: tuple[int, ...], dtype: type, pix_fmt: str
) -> None:
    assert pix_fmt_of(np.zeros(shape, dtype)) == pix_fmt


@pytest.mark.parametrize(
    ("shape", "dtype"), [((2, H, W, 2), np.uint8), ((H, W), np.uint8), ((2, H, W, 3), np.float32)]
)
def test_a_batch_of_no_known_layout_is_refused_with_its_shape(
    shape: tuple[int, ...], dtype: type
) -> None:
    with pytest.raises(ValueError, match=r"\(B, H, W, 4\), got"):
        pix_fmt_of(np.zeros(shape, dtype))


def command(
    name: str, pix_fmt_in: str, tmp_path: Path, **options: object
) -> tuple[list[str], PipeWriter]:
    fmt = get_format(name)
    path = tmp_path / ("seg" if fmt.is_sequence else f"seg{fmt.segment_suffix}")
    opts = {"path": str(tmp_path / "sh.####.png")} if fmt.is_sequence else {}
    writer = fmt.open_segment(
        path, W, H, 24.0, pix_fmt_in, [1, 2, 3], {**opts, **options}, ffmpeg="ffmpeg"
    )
    return writer.command(), writer


def after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize(
    ("name", "rgb", "rgba", "pipe_for_rgba"),
    [
        ("h264", "format=yuv420p", "format=yuv420p", "rgb24"),
        ("h265", "format=yuv420p", "format=yuv420p", "rgb24"),
        ("vp9", "format=yuv420p", "format=yuva420p", "rgba"),
        ("prores", "format=yuv422p10le", "format=yuva444p10le", "rgba"),
    ],
)
def test_video_formats_convert_rgb_and_keep_or_flatten_rgba(
    tmp_path: Path, name: str, rgb: str, rgba: str, pipe_for_rgba: str
) -> None:
    args, writer = command(name, "rgb24", tmp_path)
    assert after(args, "-pix_fmt") == "rgb24"
    assert after(args, "-vf").endswith(rgb)
    assert writer.flatten_over is None
    args, writer = command(name, "rgba", tmp_path)
    assert after(args, "-pix_fmt") == pipe_for_rgba  # what the pipe carries
    assert after(args, "-vf").endswith(rgba)
    assert writer.flatten_over == (None if pipe_for_rgba == "rgba" else (0, 0, 0))


def test_prores_switches_to_4444_only_for_alpha(tmp_path: Path) -> None:
    assert after(command("prores", "rgb24", tmp_path)[0], "-profile:v") == "3"
    assert after(command("prores", "rgba", tmp_path)[0], "-profile:v") == "4444"


@pytest.mark.parametrize(
    ("name", "pix_fmt_in", "stored"),
    [
        ("ffv1", "rgb24", "gbrp"),
        ("ffv1", "rgba", "bgra"),
        ("ffv1", "rgba64le", "gbrap16le"),
        ("gif", "rgb24", "gbrp"),
        ("gif", "rgba", "gbrp"),  # flattened first: the intermediate is plain RGB
        ("png8", "rgb24", "rgb24"),
        ("png8", "rgba", "rgba"),
        ("png16", "rgb24", "rgb48be"),
        ("png16", "rgba", "rgba64be"),
    ],
)
def test_lossless_formats_store_what_they_are_given(
    tmp_path: Path, name: str, pix_fmt_in: str, stored: str
) -> None:
    args, _ = command(name, pix_fmt_in, tmp_path)
    # the input's -pix_fmt comes first, the stored one after the codec
    assert after(args[args.index("-c:v") :], "-pix_fmt") == stored


def test_png16_widens_rgba_on_the_pipe(tmp_path: Path) -> None:
    args, writer = command("png16", "rgba", tmp_path)
    assert writer.pipe_pix_fmt == "rgba64le" == after(args, "-pix_fmt")


def test_background_is_parsed_for_flattening_formats(tmp_path: Path) -> None:
    _, writer = command("h264", "rgba", tmp_path, background="#336699")
    assert writer.flatten_over == (0x33, 0x66, 0x99)
    _, writer = command("gif", "rgba", tmp_path, background="#fa0")
    assert writer.flatten_over == (0xFF, 0xAA, 0x00)
    _, writer = command("h264", "rgb24", tmp_path, background="#336699")
    assert writer.flatten_over is None  # nothing to flatten
    assert writer.pipe_pix_fmt == "rgb24"


@pytest.mark.parametrize(
    ("name", "pix_fmt_in", "pix_fmt"),
    [
        ("h264", "rgba", "yuv420p"),
        ("h265", "rgba", "yuv420p"),
        ("vp9", "rgba", "yuv420p"),  # ffmpeg's decoder does not see VP9's alpha
        ("prores", "rgb24", "yuv422p10le"),
        ("prores", "rgba", "yuva444p12le"),
        ("ffv1", "rgba", "bgra"),
        ("ffv1", "rgba64le", "gbrap16le"),
    ],
)
def test_what_a_colour_output_must_read_as(name: str, pix_fmt_in: str, pix_fmt: str) -> None:
    assert get_format(name).expected_stream(6, 24.0, W, H, pix_fmt_in).pix_fmt == pix_fmt


@pytest.mark.parametrize(("name", "depth", "colour_type"), [("png8", 8, 6), ("png16", 16, 6)])
def test_rgba_frames_are_checked_as_rgba_pngs(name: str, depth: int, colour_type: int) -> None:
    layout = get_format(name).png_layout(W, H, "rgba")
    assert (layout.bit_depth, layout.color_type) == (depth, colour_type)


@pytest.mark.parametrize("name", ["h264", "h265", "vp9", "prores", "gif", "png8", "png16", "ffv1"])
@pytest.mark.parametrize("pix_fmt_in", ["gray", "rgb24", "rgba"])
def test_no_format_refuses_colour(name: str, pix_fmt_in: str) -> None:
    assert get_format(name).validate(W, H, 24.0, {"pix_fmt_in": pix_fmt_in}) == []


@pytest.mark.parametrize("value", ["#336699", "#fff", "#A0b1C2"])
def test_a_background_colour_is_accepted_where_alpha_is_flattened(value: str) -> None:
    for name in ("h264", "h265", "gif"):
        assert get_rules(name).validate(W, H, 24.0, {"background": value}) == []


@pytest.mark.parametrize("value", ["336699", "#33669", "#ggg", "red", 0x336699, None])
def test_a_bad_background_names_the_field_and_the_reason(value: object) -> None:
    problems = get_rules("h264").validate(W, H, 24.0, {"background": value})
    assert len(problems) == 1
    field, reason = problems[0]
    assert field == "output.background"
    assert "#rrggbb" in reason and repr(value) in reason


@pytest.mark.parametrize("name", ["vp9", "prores", "ffv1", "png8", "png16"])
def test_a_format_that_keeps_alpha_refuses_a_background_and_says_why(name: str) -> None:
    problems = get_rules(name).validate(W, H, 24.0, {"background": "#000000"})
    assert [f for f, _ in problems] == ["output.background"]
    assert "keeps alpha" in problems[0][1]


def test_parse_colour_expands_short_form() -> None:
    assert parse_colour("#fa0") == (255, 170, 0)
    assert parse_colour("#000000") == (0, 0, 0)


@pytest.mark.parametrize(
    ("shape", "mode"), [((4, 5), "L"), ((4, 5, 3), "RGB"), ((4, 5, 4), "RGBA"), ((4, 5, 1), "L")]
)
def test_write_png_keeps_grey_rgb_and_rgba(
    tmp_path: Path, shape: tuple[int, ...], mode: str
) -> None:
    image = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    write_png(tmp_path / "a.png", image)
    with Image.open(tmp_path / "a.png") as im:
        assert im.mode == mode and im.size == (5, 4)
        assert np.array_equal(
            np.asarray(im), image.reshape(4, 5, -1).squeeze(-1) if mode == "L" else image
        )
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_write_png_refuses_other_layouts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "a.png", np.zeros((4, 5, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "a.png", np.zeros((4, 5), np.uint16))
    assert not list(tmp_path.iterdir())
