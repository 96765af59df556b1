"""Assembly stage: join the chunk segments into the job's output, check it, make previews.

Video formats join by stream copy, or take a job's only segment as the output when it is
already in the output's container (a hard link, no copy); GIF re-encodes once from lossless
intermediates; image sequences move each chunk's frames into place. Before the result gets
its final name its frames are counted (from the container's packets, or by decoding them with
``output.verify: decode``) and its duration, codec, size, pixel format and rate checked.
Segments are removed only after the success is committed, so an assembly that runs again
(its worker died after writing) still finds them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import text

from farm.db import session_scope
from farm.frames import parse_frames
from farm.inputs import OutsideInputRoots, confine_input
from farm.outputs import confine
from farm.states import TaskKind
from workers.context import Output, PermanentError, Result, TaskContext
from workers.encode import ffmpeg_binary
from workers.formats import RENDER_PIX_FMT, OutputFormat, describe_output, get_format
from workers.media.mp4 import sample_table_facts
from workers.outputs import digest, digest_known, segment_for
from workers.previews import contact_sheet, poster_frame, previews_from_kept


def described(
    path: Path, fmt: OutputFormat, *, ffmpeg: str, counted: tuple[int, float]
) -> dict[str, Any]:
    """The output's artifact metadata, as :func:`describe_output` gives it. An MP4 or MOV
    video is described from its sample tables, which its check has just read (a millisecond)
    rather than by an ffmpeg process printing its summary (tens of milliseconds); any file
    the tables cannot vouch for, and every other format, is described by ffmpeg."""
    facts = None if fmt.is_sequence else sample_table_facts(path)
    if facts is None or facts.errors or None in (facts.codec, facts.width, facts.height,
                                                 facts.pix_fmt):  # fmt: skip
        return describe_output(path, fmt, ffmpeg=ffmpeg, counted=counted)
    rate = facts.fps if facts.fps is not None else facts.tbr
    return {
        "width": facts.width,
        "height": facts.height,
        # As ffmpeg's summary prints a rate: two decimals (24, 23.98).
        "fps": None if rate is None else round(rate, 2),
        "codec": facts.codec,
        "pix_fmt": facts.pix_fmt,
        "frames": counted[0],
        "duration": counted[1],
        "format": fmt.name,
        "container": fmt.muxer_for(path),
        "size": path.stat().st_size,
        "path": str(path),
    }


# The job's chunk indexes, and its first segment's artifact (None without one), in one read.
_READS = text(
    "SELECT ARRAY(SELECT t.index FROM tasks t WHERE t.job_id = :job"
    f" AND t.kind = '{TaskKind.RENDER_CHUNK.value}' ORDER BY t.index) AS indexes,"
    " f.id, f.meta, f.size, f.sha256 FROM (SELECT 1) AS one"
    " LEFT JOIN LATERAL (SELECT a.id, a.meta, a.size, a.sha256 FROM artifacts a"
    " WHERE a.job_id = :job AND a.kind = 'segment' ORDER BY a.id LIMIT 1) AS f ON true"
)


def run(ctx: TaskContext) -> Result:
    spec, out_spec = ctx.spec, ctx.spec["output"]
    fmt = get_format(out_spec["format"])
    root = ctx.settings.output_root_abs()
    with session_scope(ctx.settings, ping=False) as s:
        row = s.execute(_READS, {"job": ctx.job_id}).one()
    indexes, first = row.indexes, (None if row.id is None else row)
    seg_meta = first.meta if first is not None else None
    segments = [segment_for(root, ctx.job_id, i, fmt.segment_suffix) for i in indexes]
    missing = [str(p) for p in segments if not p.exists()]
    if missing:
        raise RuntimeError(f"missing segments: {', '.join(missing)}")
    out = confine(root, out_spec["path"])
    options = dict(out_spec["options"])
    audio = options.pop("audio", None)
    try:  # confined at submission; again here, where the roots or a link may differ
        audio_path = confine_input(ctx.settings, str(audio)) if audio else None
    except OutsideInputRoots as e:
        raise PermanentError(f"output.audio: {e}") from None
    ffmpeg = ffmpeg_binary(ctx.settings.ffmpeg)
    numbers = parse_frames(ctx.frames or "")
    result = fmt.assemble(
        segments, out, ctx.frame_count, spec["fps"], audio_path,
        ffmpeg=ffmpeg, frame_numbers=numbers, options={**options, "path": str(out)},
        width=spec["width"], height=spec["height"],
        pix_fmt_in=(seg_meta or {}).get("pix_fmt_in", RENDER_PIX_FMT),
    )  # fmt: skip
    ctx.check()
    # fmt.assemble counted the result's frames and checked its duration: no second count.
    counted = (ctx.frame_count, ctx.frame_count / spec["fps"])
    info = described(result, fmt, ffmpeg=ffmpeg, counted=counted)
    info.update(frames_range=ctx.frames, fps_requested=spec["fps"], audio=audio)
    # The chunks record what made their frames; the video carries it for reproduction.
    provenance = ("checkpoint_sha256", "mode", "seed", "torch", "farm")
    info.update({k: seg_meta[k] for k in provenance if seg_meta and k in seg_meta})
    source = fmt.frame_files(result) if fmt.is_sequence else result
    previews = root / "previews" / f"job-{ctx.job_id}"
    made = previews_from_kept(segments[0].parent, ctx.frame_count, previews)
    if made is None:  # a chunk's kept frames are gone (its folder was cleaned): decode instead
        made = (
            poster_frame(source, previews / "poster.png", ffmpeg=ffmpeg),
            contact_sheet(source, previews / "contact.png", ffmpeg=ffmpeg, frame_numbers=numbers),
        )
    (poster, pw, ph), (sheet, sw, sh) = made
    kind = "sequence" if fmt.is_sequence else "video"
    artifact_path = result.parent if fmt.is_sequence else result
    if isinstance(source, list):
        size, sha = digest(artifact_path, source)
    else:  # a lone segment adopted as the output is that file: its digest stands
        known = None
        if first is not None and len(segments) == 1:
            known = (first.size, first.sha256, (seg_meta or {}).get("stamp"))
        size, sha = digest_known(artifact_path, known)
    outputs = [Output(kind, artifact_path, size, sha, info)]
    for k, p, w, h in (("poster", poster, pw, ph), ("contact_sheet", sheet, sw, sh)):
        psize, psha = digest(p)
        outputs.append(Output(k, p, psize, psha, {"width": w, "height": h}))
    if out_spec.get("keep_segments"):
        return Result(outputs)
    seg_dir = segments[0].parent

    def remove_segments() -> None:
        shutil.rmtree(seg_dir, ignore_errors=True)

    return Result(outputs, supersedes=("segment",), after_commit=remove_segments)
