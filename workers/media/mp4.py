"""An MP4/QuickTime video counted from its sample tables, without starting ffmpeg.

The ``moov`` box lists every sample (``stsz``), its duration (``stts``) and where its bytes
are (``stsc`` and ``stco``/``co64``); the sample entry (``stsd``) names the codec and the size,
and its ``avcC``/``hvcC`` record the chroma format and bit depth. For the farm's MP4 and MOV
outputs one sample is one packet is one frame (no B-frames: no ``ctts``, and an edit list that
shows the whole track from its start), so the sample count is the frame count; and a file
whose samples' bytes do not all lie inside it was cut short.

Reading a few kilobytes of tables costs a millisecond; a demux by ffmpeg costs a process.
Anything this reader does not fully understand (no ``ftyp``, several video tracks, fragments,
composition offsets, a trimming edit list, an unknown codec) gives ``None``, and the caller
falls back to ffmpeg's packet count.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workers.media.probe import StreamFacts

__all__ = ["avc_pix_fmt", "hevc_pix_fmt", "sample_table_facts"]

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}
_CODECS = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc"}
# ProRes 422 (proxy, LT, standard, HQ) decodes to 10-bit 4:2:2 whatever the source was.
_PRORES_422 = {b"apco", b"apcs", b"apcn", b"apch"}
_CHROMA = {0: "gray", 1: "yuv420p", 2: "yuv422p", 3: "yuv444p"}
# H.264 profiles whose SPS carries chroma_format_idc and bit depths (others are 8-bit 4:2:0).
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
_VISUAL_ENTRY = 78  # bytes of a VisualSampleEntry before its child boxes


class _Unsupported(Exception):
    """Raised inside the reader for a file it cannot judge; the caller asks ffmpeg."""


def _boxes(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in ``buf[start:end]``."""
    end = len(buf) if end is None else end
    off = start
    while off + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, off)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", buf, off + 8)
            header = 16
        elif size == 0:
            size = end - off
        if size < header or off + size > end:
            raise _Unsupported(f"box {kind!r} at {off} overruns its parent")
        yield kind, off + header, off + size
        off += size


def _child(buf: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    for k, s, e in _boxes(buf, start, end):
        if k == kind:
            return s, e
    raise _Unsupported(f"no {kind.decode('latin1')} box")


def _pix_fmt(chroma: int, depth: int) -> str | None:
    name = _CHROMA.get(chroma)
    if name is None:
        return None
    return name if depth == 8 else f"{name}{depth}le"


class _Bits:
    """Exp-Golomb reading of an H.264 SPS (emulation prevention bytes already removed)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def bit(self) -> int:
        byte = self.data[self.pos >> 3]
        self.pos += 1
        return (byte >> (7 - ((self.pos - 1) & 7))) & 1

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise _Unsupported("bad exp-Golomb code in the SPS")
        value = 0
        for _ in range(zeros):
            value = (value << 1) | self.bit()
        return (1 << zeros) - 1 + value


def avc_pix_fmt(avcc: bytes) -> str | None:
    """The pixel format an H.264 decoder reports for this ``avcC`` record's first SPS."""
    if len(avcc) < 8 or avcc[5] & 0x1F < 1:
        return None
    (length,) = struct.unpack_from(">H", avcc, 6)
    sps = avcc[8 : 8 + length].replace(b"\x00\x00\x03", b"\x00\x00")
    if len(sps) < 5:
        return None
    profile = sps[1]
    if profile not in _HIGH_PROFILES:
        return "yuv420p"
    try:
        bits = _Bits(sps[4:])  # after the NAL header, profile, constraints and level
        bits.ue()  # seq_parameter_set_id
        chroma = bits.ue()
        if chroma == 3:
            bits.bit()  # separate_colour_plane_flag
        depth = bits.ue() + 8
    except IndexError:
        return None
    # ffmpeg decodes monochrome H.264 as 4:2:0 with flat chroma: not a format to predict.
    return _pix_fmt(chroma, depth) if chroma else None


def hevc_pix_fmt(hvcc: bytes) -> str | None:
    """The pixel format an HEVC decoder reports for this ``hvcC`` record."""
    if len(hvcc) < 23:
        return None
    return _pix_fmt(hvcc[16] & 0x03, (hvcc[17] & 0x07) + 8)


@dataclass(frozen=True)
class _Entry:
    codec: str
    width: int
    height: int
    pix_fmt: str | None


def _sample_entry(buf: bytes, start: int, end: int) -> _Entry:
    s, e = _child(buf, start, end, b"stsd")
    entries = list(_boxes(buf, s + 8, e))
    if len(entries) != 1:
        raise _Unsupported("not exactly one sample description")
    kind, es, ee = entries[0]
    width, height = struct.unpack_from(">HH", buf, es + 24)
    pix_fmt: str | None = None
    if kind in _PRORES_422:
        codec, pix_fmt = "prores", "yuv422p10le"
    elif kind in _CODECS:
        codec = _CODECS[kind]
        record = b"avcC" if codec == "h264" else b"hvcC"
        rs, re_ = _child(buf, es + _VISUAL_ENTRY, ee, record)
        parse = avc_pix_fmt if codec == "h264" else hevc_pix_fmt
        pix_fmt = parse(buf[rs:re_])
    else:
        raise _Unsupported(f"sample entry {kind!r}")
    if pix_fmt is None:
        raise _Unsupported("unknown pixel format")
    return _Entry(codec, width, height, pix_fmt)


def _table(buf: bytes, start: int, end: int, kind: bytes, fmt: str) -> list[tuple[int, ...]]:
    s, _ = _child(buf, start, end, kind)
    (count,) = struct.unpack_from(">I", buf, s + 4)
    step = struct.calcsize(fmt)
    return [struct.unpack_from(fmt, buf, s + 8 + i * step) for i in range(count)]


def _check_edits(buf: bytes, trak: tuple[int, int]) -> None:
    """Refuse an edit list that does anything but show the track from its first sample."""
    try:
        es, ee = _child(buf, *trak, b"edts")
    except _Unsupported:
        return
    s, _ = _child(buf, es, ee, b"elst")
    version = buf[s]
    (count,) = struct.unpack_from(">I", buf, s + 4)
    fmt = ">QqI" if version == 1 else ">IiI"
    entries = [struct.unpack_from(fmt, buf, s + 8 + i * struct.calcsize(fmt)) for i in range(count)]
    if len(entries) != 1 or entries[0][1] != 0 or entries[0][2] != 0x00010000:
        raise _Unsupported("an edit list that trims or shifts the track")


def _video_trak(moov: bytes) -> tuple[int, int]:
    found = []
    for kind, s, e in _boxes(moov):
        if kind == b"mvex":
            raise _Unsupported("a fragmented file")
        if kind == b"trak":
            ms, me = _child(moov, s, e, b"mdia")
            hs, _ = _child(moov, ms, me, b"hdlr")
            if moov[hs + 8 : hs + 12] == b"vide":
                found.append((s, e))
    if len(found) != 1:
        raise _Unsupported(f"{len(found)} video tracks")
    return found[0]


def _top_level(path: Path) -> tuple[bytes, list[tuple[int, int]], int]:
    """The ``moov`` box's payload, the ``mdat`` payload ranges and the file size, reading
    only box headers and the ``moov`` itself."""
    moov: bytes | None = None
    mdats: list[tuple[int, int]] = []
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        off = 0
        first = True
        while off + 8 <= size:
            fh.seek(off)
            head = fh.read(16)
            box, kind = struct.unpack_from(">I4s", head)
            header = 8
            if box == 1:
                (box,) = struct.unpack_from(">Q", head, 8)
                header = 16
            elif box == 0:
                box = size - off
            if first and kind != b"ftyp":
                raise _Unsupported("not an ISO media file")
            first = False
            if box < header:
                raise _Unsupported(f"box {kind!r} has a bad size")
            if kind == b"mdat":
                mdats.append((off + header, off + box))  # may run past the end: checked later
            elif kind == b"moov":
                if off + box > size:
                    raise _Unsupported("the moov box is cut short")
                fh.seek(off + header)
                moov = fh.read(box - header)
            off += box
    if moov is None:
        raise _Unsupported("no moov box")
    return moov, mdats, size


def sample_table_facts(path: Path) -> StreamFacts | None:
    """The video track of an MP4/MOV file as its tables describe it, or ``None`` when this
    reader cannot vouch for the file (ffmpeg then counts its packets).

    A sample whose bytes lie past the end of the file, or outside every ``mdat``, is
    reported in ``errors``: the file was cut short after its tables were written.
    """
    try:
        moov, mdats, file_size = _top_level(Path(path))
        trak = _video_trak(moov)
        _check_edits(moov, trak)
        ms, me = _child(moov, *trak, b"mdia")
        hs, _ = _child(moov, ms, me, b"mdhd")
        version = moov[hs]
        (timescale,) = struct.unpack_from(">I", moov, hs + (20 if version == 1 else 12))
        ns, ne = _child(moov, ms, me, b"minf")
        stbl = _child(moov, ns, ne, b"stbl")
        if any(k == b"ctts" for k, _, _ in _boxes(moov, *stbl)):
            raise _Unsupported("composition offsets (B-frames)")
        entry = _sample_entry(moov, *stbl)
        stts = _table(moov, *stbl, b"stts", ">II")
        zs, _ = _child(moov, *stbl, b"stsz")
        uniform, count = struct.unpack_from(">II", moov, zs + 4)
        sizes = (
            [uniform] * count if uniform else list(struct.unpack_from(f">{count}I", moov, zs + 12))
        )
        stsc = _table(moov, *stbl, b"stsc", ">III")
        try:
            offsets = [o for (o,) in _table(moov, *stbl, b"stco", ">I")]
        except _Unsupported:
            offsets = [o for (o,) in _table(moov, *stbl, b"co64", ">Q")]
    except (_Unsupported, struct.error, IndexError, OSError):
        return None
    if timescale == 0 or not stts:
        return None
    errors = _data_errors(sizes, stsc, offsets, mdats, file_size)
    ticks = sum(n * delta for n, delta in stts)
    frames = sum(n for n, _ in stts)
    if frames != count:
        errors.append(f"the tables disagree: {frames} sample durations for {count} samples")
    common = max(stts, key=lambda run: run[0])[1]
    return StreamFacts(
        frames=count,
        duration_s=ticks / timescale,
        codec=entry.codec,
        width=entry.width,
        height=entry.height,
        pix_fmt=entry.pix_fmt,
        fps=count * timescale / ticks if ticks else None,
        tbr=timescale / common if common else None,
        errors=tuple(errors),
    )


def _data_errors(
    sizes: list[int],
    stsc: list[tuple[int, ...]],
    offsets: list[int],
    mdats: list[tuple[int, int]],
    file_size: int,
) -> list[str]:
    """Where the samples' bytes are not all inside an ``mdat`` that is inside the file."""
    inside = [(s, min(e, file_size)) for s, e in mdats]
    sample = 0
    for i, offset in enumerate(offsets):
        chunk = i + 1
        per_chunk = next((n for first, n, _ in reversed(stsc) if first <= chunk), 0)
        end = offset + sum(sizes[sample : sample + per_chunk])
        sample += per_chunk
        if not any(s <= offset and end <= e for s, e in inside):
            where = "past the end of the file" if end > file_size else "outside the media data"
            return [f"sample data of chunk {chunk} lies {where} (bytes {offset}-{end})"]
    if sample != len(sizes):
        return [f"the chunks hold {sample} samples, the sample table {len(sizes)}"]
    return []
