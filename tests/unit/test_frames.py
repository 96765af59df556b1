"""Unit tests for frame range parsing, formatting and chunking (farm.frames)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farm.frames import MAX_FRAMES, FrameRangeError, chunk, format_frames, parse_frames

# --- parse_frames: valid ranges ---------------------------------------------------------


def test_parse_simple_range_gives_every_frame_inclusive() -> None:
    frames = parse_frames("1-240")
    assert len(frames) == 240
    assert frames == list(range(1, 241))


def test_parse_stepped_range_gives_every_nth_frame() -> None:
    frames = parse_frames("1-240x2")
    assert frames == list(range(1, 240, 2))
    assert frames[0] == 1
    assert frames[-1] == 239
    assert len(frames) == 120


def test_parse_mixed_list_of_frames_and_ranges() -> None:
    assert parse_frames("1,5,10-20") == [1, 5, *range(10, 21)]


def test_parse_film_style_four_digit_range() -> None:
    frames = parse_frames("1001-1100")
    assert frames == list(range(1001, 1101))
    assert len(frames) == 100


def test_parse_single_frame() -> None:
    assert parse_frames("7") == [7]


def test_parse_frame_zero_is_allowed() -> None:
    assert parse_frames("0-2") == [0, 1, 2]


def test_parse_degenerate_range_of_one_frame() -> None:
    assert parse_frames("5-5") == [5]


def test_parse_stepped_range_whose_end_is_not_on_the_step_stops_before_it() -> None:
    assert parse_frames("1-10x4") == [1, 5, 9]


def test_parse_ignores_spaces_around_parts_and_separators() -> None:
    assert parse_frames(" 1 , 5 , 10 - 12 ") == [1, 5, 10, 11, 12]
    assert parse_frames("1 - 9 x 4") == [1, 5, 9]


# --- parse_frames: errors --------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   "])
def test_parse_empty_range_is_an_error(text: str) -> None:
    with pytest.raises(FrameRangeError, match="empty frame range"):
        parse_frames(text)


def test_parse_non_string_is_an_error() -> None:
    with pytest.raises(FrameRangeError, match="empty frame range"):
        parse_frames(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["a-b", "1-", "-5", "1-10x", "1..10", "1-10y2", "1,,2", "1,"])
def test_parse_malformed_part_names_the_part(text: str) -> None:
    with pytest.raises(FrameRangeError) as exc:
        parse_frames(text)
    assert "is not a frame, a range 'A-B' or a stepped range 'A-BxN'" in str(exc.value)


def test_parse_malformed_part_message_quotes_the_offending_part() -> None:
    with pytest.raises(FrameRangeError) as exc:
        parse_frames("1-5,a-b")
    assert str(exc.value).startswith("'a-b' is not a frame")


def test_parse_range_ending_before_it_starts_is_an_error() -> None:
    with pytest.raises(FrameRangeError) as exc:
        parse_frames("10-1")
    assert str(exc.value) == "'10-1' ends before it starts"


def test_parse_zero_step_is_an_error() -> None:
    with pytest.raises(FrameRangeError) as exc:
        parse_frames("1-10x0")
    assert str(exc.value) == "'1-10x0' has a step below 1"


def test_parse_part_preceding_an_earlier_part_is_an_error() -> None:
    with pytest.raises(FrameRangeError) as exc:
        parse_frames("5,1-3")
    msg = str(exc.value)
    assert "'1-3' overlaps or precedes frame 5" in msg
    assert "increasing order" in msg


def test_parse_part_repeating_the_last_frame_is_an_error() -> None:
    with pytest.raises(FrameRangeError) as exc:
        parse_frames("1-5,5")
    assert "'5' overlaps or precedes frame 5" in str(exc.value)


def test_parse_overlapping_ranges_is_an_error() -> None:
    with pytest.raises(FrameRangeError, match="overlaps or precedes frame 10"):
        parse_frames("1-10,8-12")


def test_parse_more_than_max_frames_is_an_error() -> None:
    with pytest.raises(FrameRangeError, match=f"more than {MAX_FRAMES} frames"):
        parse_frames(f"1-{MAX_FRAMES + 1}")


def test_parse_exactly_max_frames_is_allowed() -> None:
    assert len(parse_frames(f"1-{MAX_FRAMES}")) == MAX_FRAMES


def test_frame_range_error_is_a_value_error() -> None:
    assert issubclass(FrameRangeError, ValueError)


def test_parse_space_between_digits_is_an_error_not_a_joined_number() -> None:
    with pytest.raises(FrameRangeError):
        parse_frames("1 5")


# --- format_frames ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "text"),
    [
        ([], ""),
        ([7], "7"),
        ([1, 2], "1-2"),
        ([1, 3], "1,3"),
        ([1, 3, 5], "1-5x2"),
        (list(range(1, 241)), "1-240"),
        (list(range(1, 240, 2)), "1-239x2"),
        ([1, 5, *range(10, 21)], "1,5,10-20"),
        ([1, 2, 3, 5, 7, 9], "1-3,5-9x2"),
        ([17, 19], "17,19"),
    ],
)
def test_format_gives_exact_spelling(frames: list[int], text: str) -> None:
    assert format_frames(frames) == text


@pytest.mark.parametrize(
    "frames",
    [
        [0],
        [7],
        [1, 2],
        [1, 3],
        [1, 2, 4],
        [1, 3, 4, 5],
        [1, 2, 3, 5, 7],
        [1, 5, *range(10, 21)],
        list(range(1001, 1101)),
        list(range(1, 240, 2)),
        [2, 4, 8, 16, 32, 64],
        [0, 10, 20, 21, 22, 100],
    ],
)
def test_format_then_parse_round_trips_examples(frames: list[int]) -> None:
    assert parse_frames(format_frames(frames)) == frames


@given(st.lists(st.integers(min_value=0, max_value=100_000), unique=True).map(sorted))
@settings(max_examples=60, deadline=None, database=None)
def test_format_then_parse_round_trips_random_increasing_lists(frames: list[int]) -> None:
    if not frames:
        assert format_frames(frames) == ""
        return
    assert parse_frames(format_frames(frames)) == frames


@st.composite
def _runs(draw: st.DrawFn) -> list[int]:
    """Strictly increasing lists built of arithmetic runs, so stepped ranges show up."""
    out: list[int] = []
    nxt = draw(st.integers(min_value=0, max_value=50))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        step = draw(st.integers(min_value=1, max_value=5))
        length = draw(st.integers(min_value=1, max_value=8))
        out.extend(range(nxt, nxt + step * length, step))
        nxt = out[-1] + draw(st.integers(min_value=1, max_value=10))
    return out


@given(_runs())
@settings(max_examples=60, deadline=None, database=None)
def test_format_then_parse_round_trips_random_arithmetic_runs(frames: list[int]) -> None:
    text = format_frames(frames)
    assert parse_frames(text) == frames
    assert " " not in text


@given(st.text(alphabet="0123456789-x, ", max_size=10))
@settings(max_examples=60, deadline=None, database=None)
def test_parse_then_format_then_parse_is_stable(text: str) -> None:
    try:
        frames = parse_frames(text)
    except FrameRangeError:
        return
    assert frames == sorted(set(frames))
    assert parse_frames(format_frames(frames)) == frames


# --- chunk -----------------------------------------------------------------------------


def test_chunk_gives_positions_and_consecutive_slices() -> None:
    assert chunk(list(range(1, 11)), 3) == [
        (0, [1, 2, 3]),
        (3, [4, 5, 6]),
        (6, [7, 8, 9]),
        (9, [10]),
    ]


def test_chunk_positions_index_the_frame_list_not_frame_numbers() -> None:
    assert chunk([1, 3, 5, 7, 9], 2) == [(0, [1, 3]), (2, [5, 7]), (4, [9])]


def test_chunk_exact_multiple_has_no_short_tail() -> None:
    assert chunk([10, 11, 12, 13], 2) == [(0, [10, 11]), (2, [12, 13])]


def test_chunk_larger_than_frames_gives_one_chunk() -> None:
    assert chunk([1, 2, 3], 50) == [(0, [1, 2, 3])]


def test_chunk_size_one_gives_one_frame_each() -> None:
    assert chunk([4, 8], 1) == [(0, [4]), (1, [8])]


def test_chunk_of_no_frames_is_empty() -> None:
    assert chunk([], 3) == []


@pytest.mark.parametrize("size", [0, -1])
def test_chunk_size_below_one_raises(size: int) -> None:
    with pytest.raises(ValueError, match="chunk size must be at least 1"):
        chunk([1, 2, 3], size)


@given(_runs(), st.integers(min_value=1, max_value=12))
@settings(max_examples=40, deadline=None, database=None)
def test_chunks_concatenate_back_to_the_frames(frames: list[int], size: int) -> None:
    parts = chunk(frames, size)
    assert [f for _, part in parts for f in part] == frames
    for pos, part in parts:
        assert frames[pos : pos + len(part)] == part
        assert 1 <= len(part) <= size
    assert all(len(part) == size for _, part in parts[:-1])
