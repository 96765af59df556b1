"""validate() rules of every output format; pure checks, no ffmpeg."""

from __future__ import annotations

import pytest

from farm.formats import TemplateError, parse_template
from workers.formats import UnknownFormat, get_format, known_formats
from workers.formats.sequence import frame_name


def fields(problems: list[tuple[str, str]]) -> list[str]:
    return [field for field, _ in problems]


def test_registry_names_and_unknown_name_lists_known() -> None:
    assert known_formats() == ["h264", "h265", "vp9", "prores", "gif", "png8", "png16", "ffv1"]
    for name in known_formats():
        assert get_format(name).name == name
    with pytest.raises(UnknownFormat, match=r"unknown output format 'av1'.*h264, h265, vp9"):
        get_format("av1")


@pytest.mark.parametrize("name", ["h264", "h265", "vp9", "prores", "gif", "png8", "png16", "ffv1"])
def test_clean_spec_has_no_problems(name: str) -> None:
    fmt = get_format(name)
    path = "shots/a.####.png" if fmt.is_sequence else f"renders/a{fmt.extension}"
    assert fmt.validate(64, 48, 24.0, {"path": path}) == []


@pytest.mark.parametrize("name", ["h264", "h265", "vp9"])
def test_odd_size_is_refused_for_yuv420p(name: str) -> None:
    problems = get_format(name).validate(63, 47, 24.0)
    assert fields(problems) == ["width", "height"]
    assert "yuv420p" in problems[0][1]


def test_prores_422_needs_only_an_even_width() -> None:
    assert fields(get_format("prores").validate(63, 47, 24.0)) == ["width"]
    assert get_format("prores").validate(64, 47, 24.0) == []


@pytest.mark.parametrize("name", ["ffv1", "png8", "png16", "gif"])
def test_formats_without_subsampling_take_odd_sizes(name: str) -> None:
    assert get_format(name).validate(63, 47, 24.0) == []


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("h264", "out.webm"),
        ("vp9", "out.mp4"),
        ("prores", "out.mp4"),
        ("ffv1", "out.mp4"),
        ("gif", "out.mp4"),
        ("h265", "out"),
        ("png8", "out.####.jpg"),
    ],
)
def test_container_that_cannot_hold_the_codec(name: str, path: str) -> None:
    problems = get_format(name).validate(64, 48, 24.0, {"path": path})
    assert fields(problems) == ["output.path"]
    assert "cannot hold" in problems[0][1]


@pytest.mark.parametrize("template", ["shots/sh010/sh010.png", "sh010.%s.png", "s.##.%04d.png"])
def test_sequence_template_needs_exactly_one_placeholder(template: str) -> None:
    problems = get_format("png8").validate(64, 48, 24.0, {"path": template})
    assert fields(problems) == ["output.path"]


def test_placeholder_in_folder_is_refused() -> None:
    with pytest.raises(TemplateError, match="file name"):
        parse_template("shots/####/a.####.png")


@pytest.mark.parametrize(
    ("template", "number", "name"),
    [
        ("shots/sh010/sh010.####.png", 1001, "shots/sh010/sh010.1001.png"),
        ("shots/sh010/sh010.####.png", 7, "shots/sh010/sh010.0007.png"),
        ("sh010.%04d.png", 12, "sh010.0012.png"),
        ("sh010.%d.png", 12, "sh010.12.png"),
        ("a_#.png", 12345, "a_12345.png"),
        ("a.###.png", -5, "a.-005.png"),
    ],
)
def test_frame_names(template: str, number: int, name: str) -> None:
    assert frame_name(template, number) == name


def test_gif_limits() -> None:
    gif = get_format("gif")
    assert fields(gif.validate(4000, 48, 24.0)) == ["width"]
    assert fields(gif.validate(64, 48, 60.0)) == ["fps"]
    assert fields(gif.validate(64, 48, 24.0, {"max_colors": 300})) == ["output.max_colors"]


@pytest.mark.parametrize("name", ["gif", "png8", "png16", "ffv1"])
def test_audio_is_refused_where_it_cannot_go(name: str) -> None:
    assert fields(get_format(name).validate(64, 48, 24.0, {"audio": "a.wav"})) == ["output.audio"]


def test_options_are_checked() -> None:
    h264 = get_format("h264")
    assert fields(h264.validate(64, 48, 24.0, {"crf": 70})) == ["output.crf"]
    assert fields(h264.validate(64, 48, 24.0, {"preset": "warp9"})) == ["output.preset"]
    assert fields(h264.validate(64, 48, 24.0, {"bitrate": "fast"})) == ["output.bitrate"]
    assert fields(h264.validate(64, 48, 24.0, {"crf": 18, "bitrate": "8M"})) == ["output.bitrate"]
    assert fields(h264.validate(64, 48, 24.0, {"dither": "bayer"})) == ["output.dither"]
    assert h264.validate(64, 48, 24.0, {"bitrate": "8M", "preset": "slow"}) == []


def test_bad_numbers_and_input_formats() -> None:
    h264 = get_format("h264")
    assert fields(h264.validate(0, 48, 0.0)) == ["width", "fps"]
    assert fields(h264.validate(64, 48, 24.0, {"pix_fmt_in": "gray16le"})) == ["output.pix_fmt_in"]
    assert get_format("png16").validate(64, 48, 24.0, {"pix_fmt_in": "gray16le"}) == []


def test_check_raises_with_every_problem() -> None:
    with pytest.raises(ValueError, match=r"width: .*; height: .*; output.path: "):
        get_format("h264").check(63, 47, 24.0, {"path": "x.webm"})


def test_stream_copy_flags() -> None:
    copyable = {n for n in known_formats() if get_format(n).can_stream_copy}
    assert copyable == {"h264", "h265", "vp9", "prores", "ffv1"}
