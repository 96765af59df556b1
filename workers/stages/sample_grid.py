"""Sample-grid stage: one task renders a contact sheet of samples straight to its PNG."""

from __future__ import annotations

from farm.outputs import confine
from workers.context import Output, Result, TaskContext
from workers.modes import get_mode
from workers.outputs import digest
from workers.png import write_png
from workers.stages.render_chunk import open_job, provenance


def run(ctx: TaskContext) -> Result:
    job, sha = open_job(ctx, total=1)
    (sheet,) = list(get_mode("sample_grid")(job, [0]))
    ctx.check()
    out = confine(ctx.settings.output_root_abs(), ctx.spec["output"]["path"])
    write_png(out, sheet[0])
    size, digest_sha = digest(out)
    h, w = sheet[0].shape[:2]  # (H, W) grey or (H, W, C) colour, channel last
    meta = {
        "width": w,
        "height": h,
        "columns": ctx.spec.get("columns", 10),
        **provenance(ctx.spec, sha),
    }
    return Result([Output("image", out, size, digest_sha, meta)])
