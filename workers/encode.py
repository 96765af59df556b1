"""The ffmpeg edge of the render farm, under the names the farm has always imported.

The code lives in :mod:`workers.media`, one module per concept (running ffmpeg, writers,
probes and checks, joins); this module re-exports what other modules, the benches and the
tests import from ``workers.encode``, private helpers included, so none of them has to move.
"""

from __future__ import annotations

from workers.media.check import Expected, mismatches, verify_video
from workers.media.join import concat_copy, concat_quote, concat_segments
from workers.media.pipelined import FrameSink, PipelinedWriter
from workers.media.probe import StreamFacts, count_frames, probe_video, read_stream
from workers.media.process import (
    GLOBAL_ARGS,
    STDERR_TAIL_CHARS,
    EncodeError,
    ffmpeg_binary,
    run_ffmpeg,
    temp_sibling,
    unlink_quietly,
)
from workers.media.segment import SegmentWriter
from workers.media.timebase import rate, timescale
from workers.media.writer import INPUT_PIX_FMTS, PipeWriter

__all__ = [
    "INPUT_PIX_FMTS",
    "STDERR_TAIL_CHARS",
    "EncodeError",
    "Expected",
    "FrameSink",
    "PipeWriter",
    "PipelinedWriter",
    "SegmentWriter",
    "StreamFacts",
    "concat_copy",
    "concat_segments",
    "count_frames",
    "ffmpeg_binary",
    "mismatches",
    "probe_video",
    "read_stream",
    "verify_video",
]

# The old private names, still imported by workers/audio.py and workers/previews.py.
_GLOBAL_ARGS = GLOBAL_ARGS
_run = run_ffmpeg
_temp_sibling = temp_sibling
_unlink_quietly = unlink_quietly
_concat_quote = concat_quote
_rate = rate
_timescale = timescale
