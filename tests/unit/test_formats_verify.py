"""How assembly checks an output, as pure decisions: which check, what it compares, what a
PNG frame's bytes and an MP4 sample entry say. No ffmpeg."""

from __future__ import annotations

import struct
import zlib

import pytest

from farm.errors import SpecError
from farm.specs import parse_spec
from workers.formats import get_format, known_formats
from workers.formats.sequence import name_problems
from workers.formats.verification import adopts_segment, choose_verification
from workers.media.check import Expected, mismatches
from workers.media.mp4 import avc_pix_fmt, hevc_pix_fmt
from workers.media.probe import StreamFacts, parse_summary
from workers.media.stills import PngLayout, png_problem

VIDEO = ["h264", "h265", "vp9", "prores", "ffv1", "gif"]


@pytest.mark.parametrize("name", VIDEO)
def test_video_formats_count_packets_unless_decode_is_asked(name: str) -> None:
    fmt = get_format(name)
    assert fmt.packet_exact
    assert fmt.verification({}) == "packets"
    assert fmt.verification({"verify": "packets"}) == "packets"
    assert fmt.verification({"verify": "decode"}) == "decode"


@pytest.mark.parametrize("name", ["png8", "png16"])
def test_sequences_are_checked_by_their_files_unless_decode_is_asked(name: str) -> None:
    fmt = get_format(name)
    assert fmt.verification(None) == "files"
    assert fmt.verification({"verify": "packets"}) == "files"
    assert fmt.verification({"verify": "decode"}) == "decode"


def test_a_format_without_one_frame_per_packet_is_always_decoded() -> None:
    for asked in (None, "packets", "decode"):
        assert choose_verification(packet_exact=False, is_sequence=False, asked=asked) == "decode"
    with pytest.raises(ValueError, match="verify must be one of packets, decode"):
        choose_verification(packet_exact=True, is_sequence=False, asked="full")


def render_spec(output: dict) -> dict:
    return {"kind": "render", "checkpoint": "job:x", "frames": "1-9", "width": 64, "height": 48,
            "output": output}  # fmt: skip


@pytest.mark.parametrize("name", known_formats())
def test_verify_option_is_checked_for_every_format(name: str) -> None:
    fmt = get_format(name)
    assert fmt.validate(64, 48, 24.0, {"verify": "decode"}) == []
    problems = fmt.validate(64, 48, 24.0, {"verify": "full"})
    assert problems == [("output.verify", "must be one of packets, decode, got 'full'")]


@pytest.mark.parametrize("bad", ["everything", 1, True, ["decode"]])
def test_bad_verify_is_refused_at_submission_naming_output_verify(bad: object) -> None:
    with pytest.raises(SpecError) as e:
        parse_spec(render_spec({"path": "x.mp4", "verify": bad}))
    assert [f for f, _ in e.value.problems] == ["output.verify"]


def test_verify_travels_in_the_stored_options_only_when_given() -> None:
    spec = parse_spec(render_spec({"path": "x.mp4", "verify": "decode", "crf": 20}))
    assert spec.output_plan("n") == ("h264", "x.mp4", {"crf": 20, "verify": "decode"})
    assert parse_spec(render_spec({"path": "x.mp4"})).output_plan("n")[2] == {}


def test_only_a_lone_segment_in_the_outputs_muxer_without_audio_is_adopted() -> None:
    assert adopts_segment(1, "mp4", "mp4", has_audio=False)
    assert not adopts_segment(2, "mp4", "mp4", has_audio=False)
    assert not adopts_segment(1, "mp4", "mov", has_audio=False)
    assert not adopts_segment(1, "mp4", "mp4", has_audio=True)
    assert not adopts_segment(1, "matroska", "gif", has_audio=False)


@pytest.mark.parametrize(
    ("name", "pix_fmt_in", "codec", "pix_fmt", "rate"),
    [("h264", "gray", "h264", "yuv420p", True), ("h264", "rgb24", "h264", "yuv420p", True),
     ("h265", None, "hevc", "yuv420p", True), ("vp9", "gray", "vp9", "yuv420p", True),
     ("prores", "rgb48le", "prores", "yuv422p10le", True), ("ffv1", "gray", "ffv1", "gray", True),
     ("ffv1", "rgb24", "ffv1", "bgr0", True), ("ffv1", "rgb48le", "ffv1", "gbrp16le", True),
     ("ffv1", None, "ffv1", None, True), ("gif", "gray", "gif", None, False)],
)  # fmt: skip
def test_what_each_format_must_read_as(
    name: str, pix_fmt_in: str | None, codec: str, pix_fmt: str | None, rate: bool
) -> None:
    want = get_format(name).expected_stream(25, 24.0, 64, 48, pix_fmt_in)
    assert want == Expected(25, 24.0, codec, 64, 48, pix_fmt, check_rate=rate)


def facts(**kw: object) -> StreamFacts:
    base: dict = {"frames": 25, "duration_s": 25 / 24, "codec": "h264", "width": 64,
                  "height": 48, "pix_fmt": "yuv420p", "fps": 24.0, "tbr": 24.0}  # fmt: skip
    return StreamFacts(**{**base, **kw})


WANT = Expected(frames=25, fps=24.0, codec="h264", width=64, height=48, pix_fmt="yuv420p")


def test_a_file_that_is_what_was_asked_has_no_mismatches() -> None:
    assert mismatches("a.mp4", facts(), WANT) == []
    assert mismatches("a.mp4", facts(fps=25.0, tbr=24.0), WANT) == []  # either rate will do
    assert mismatches("a.mp4", facts(duration_s=25 / 24 + 0.03), WANT) == []  # within a frame


@pytest.mark.parametrize(
    ("changed", "words"),
    [({"frames": 24, "duration_s": 1.0}, "a.mp4 holds 24 frames, expected 25"),
     ({"duration_s": 2.0}, "a.mp4 lasts 2.000s but 25 frames at 24 fps should last 1.042s"),
     ({"codec": "hevc"}, "a.mp4: codec is hevc, expected h264"),
     ({"width": 66}, "a.mp4: width is 66, expected 64"),
     ({"height": 50}, "a.mp4: height is 50, expected 48"),
     ({"pix_fmt": "yuv444p"}, "a.mp4: pixel format is yuv444p, expected yuv420p"),
     ({"fps": 25.0, "tbr": 25.0}, "a.mp4: frame rate is 25/25 fps, expected 24"),
     ({"errors": ("Truncating packet of size 9 to 4",)},
      "a.mp4 is damaged: Truncating packet of size 9 to 4")],
)  # fmt: skip
def test_each_difference_is_named(changed: dict, words: str) -> None:
    assert mismatches("a.mp4", facts(**changed), WANT) == [words]


def test_a_decode_says_decodes_to_and_unasked_fields_are_not_checked() -> None:
    got = facts(frames=20, duration_s=20 / 24, decoded=True, codec="vp9", width=1)
    loose = Expected(frames=25, fps=24.0, check_rate=False)
    assert mismatches("a.webm", got, loose) == ["a.webm decodes to 20 frames, expected 25"]


def test_the_input_stream_summary_is_parsed_and_the_output_ignored() -> None:
    stderr = (
        "[info] Input #0, mov,mp4, from 'a.mp4':\n"
        "[info]   Duration: 00:00:01.04, start: 0.000000, bitrate: 17 kb/s\n"
        "[info]   Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), "
        "yuv420p(tv, bt709/unknown/unknown, progressive), 64x48, 13 kb/s, 29.97 fps, "
        "29.97 tbr, 90k tbn (default)\n"
        "[info] Stream mapping:\n"
        "[info] Output #0, null, to 'pipe:':\n"
        "[info]   Stream #0:0: Video: wrapped_avframe, gray, 32x32, q=2-31, 25 fps\n"
    )
    assert parse_summary(stderr) == {
        "duration": pytest.approx(1.04), "codec": "h264", "width": 64, "height": 48,
        "pix_fmt": "yuv420p", "fps": 29.97, "tbr": 29.97,
    }  # fmt: skip
    gif = "  Stream #0:0: Video: gif, bgra, 64x48, 25 fps, 24 tbr, 100 tbn\n"
    assert parse_summary(gif)["pix_fmt"] == "bgra"


def png_bytes(width: int, height: int, depth: int, color: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"x") + chunk(b"IEND", b"")


def ends(data: bytes) -> tuple[bytes, bytes]:
    return data[:33], data[-12:]


WHOLE = png_bytes(64, 48, 16, 0)


def test_a_whole_png_of_the_asked_layout_passes() -> None:
    data = png_bytes(64, 48, 16, 0)
    assert png_problem(*ends(data), PngLayout(64, 48, 16, 0)) is None
    assert png_problem(*ends(data), PngLayout(64, 48, 16, None)) is None  # any colour type


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"", "is not a PNG"),
     (WHOLE[:-12], "is cut short"),
     (WHOLE[:23] + b"\x31" + WHOLE[24:], "damaged PNG header"),
     (png_bytes(66, 48, 16, 0), "is 66x48, 16-bit colour type 0; expected 64x48, 16-bit"),
     (png_bytes(64, 48, 8, 0), "is 64x48, 8-bit colour type 0; expected 64x48, 16-bit")],
)  # fmt: skip
def test_a_frame_that_is_not_a_whole_png_of_the_layout_is_named(data: bytes, words: str) -> None:
    problem = png_problem(*ends(data), PngLayout(64, 48, 16, None))
    assert problem is not None and words in problem


def test_sequence_layouts_follow_the_stored_pixel_format() -> None:
    png8, png16 = get_format("png8"), get_format("png16")
    assert png8.png_layout(64, 48, "gray") == PngLayout(64, 48, 8, 0)  # type: ignore[attr-defined]
    assert png8.png_layout(64, 48, "rgb24") == PngLayout(64, 48, 8, 2)  # type: ignore[attr-defined]
    assert png16.png_layout(64, 48, "gray") == PngLayout(64, 48, 16, 0)  # type: ignore[attr-defined]
    assert png16.png_layout(None, None, None) == PngLayout(None, None, 16, None)  # type: ignore[attr-defined]


def test_sequence_names_must_be_exactly_the_expected_ones() -> None:
    names = ["a.0001.png", "a.0002.png", "a.0003.png"]
    assert name_problems(names, names, 3) == []
    assert name_problems(names[:2], names, 3) == [
        "1 frames are missing (e.g. a.0003.png)",
        "holds 2 frames, expected 3",
    ]
    assert name_problems([*names, "a.0004.png"], names, 3) == ["holds 4 frames, expected 3"]


# avcC / hvcC records from files written by the wheel's ffmpeg (x264 with -bf 0, x265).
AVCC = {
    "yuv420p": "0164000affe100186764000aacb423d35020201400000fa40003a9803c489a80"
    "01000568ef023cb0fdf8f800",
    "yuv420p10le": "016e000affe10016676e000aa6cb208f6022000007d20001d4c01e244c90"
    "01000668ebc3cb22c0fdfafa00",
    "yuv444p": "01f4000affe1001667f4000a9196411ec04400000fa40003a9803c489920"
    "01000668ebc3c44844fff8f800",
    "main": "014d400affe10015674d400ad9047b011000003e90000ea600f122648001000568ebc3cb20",
}
HVCC = {
    "yuv420p": "0101600000009000000000001ef000fcfdf8f800000f04a0",
    "yuv420p10le": "0102200000009000000000001ef000fcfdfafa00000f0420",
    "yuv444p": "0104080000009e08000000001ef000fcfff8f800000f0420",
}


@pytest.mark.parametrize("name", list(AVCC))
def test_h264_pixel_format_comes_from_the_sps(name: str) -> None:
    assert avc_pix_fmt(bytes.fromhex(AVCC[name])) == ("yuv420p" if name == "main" else name)


def test_monochrome_h264_is_left_to_ffmpeg() -> None:
    gray = "0164000affe100166764000af2c823d80b6400000fa40003a9803c48992001000668ebc3cb22c0fcf8f800"
    assert avc_pix_fmt(bytes.fromhex(gray)) is None


@pytest.mark.parametrize("name", list(HVCC))
def test_hevc_pixel_format_comes_from_the_hvcc_record(name: str) -> None:
    assert hevc_pix_fmt(bytes.fromhex(HVCC[name])) == name


def test_workers_encode_still_exports_what_the_farm_imports_from_it() -> None:
    import workers.encode as encode

    public = "EncodeError PipeWriter PipelinedWriter SegmentWriter FrameSink INPUT_PIX_FMTS"
    more = "STDERR_TAIL_CHARS concat_copy concat_segments count_frames ffmpeg_binary probe_video"
    private = "verify_video _run _temp_sibling _unlink_quietly _concat_quote _rate _timescale"
    names = f"{public} {more} {private}".split()
    assert [n for n in names if not hasattr(encode, n)] == []
