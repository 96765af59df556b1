"""The parts of each page that change while it is open ("regions"), rendered by the same
templates for the first page load and for every push of the live stream, so the two can
never disagree. Each is a partial template; the page wraps it in an element named for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from farm.config import Settings
from farm.frames import parse_frames
from farm.web import frames, plot, training, views
from farm.web.auth import Viewer
from farm.web.listing import JobFilters
from farm.web.queries import JobsPage
from farm.web.templating import render

Regions = dict[str, str]


def jobs_regions(page: JobsPage, filters: JobFilters, viewer: Viewer) -> Regions:
    return {
        "counts": render("_jobs_counts.html", counts=page.counts, filters=filters),
        "list": render(
            "_jobs_list.html", rows=page.rows, filters=filters, next_after=page.next_after
        ),
    }


def _latest_frame(settings: Settings, job: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the "last rendered frame" panel shows: a kept preview while the render runs,
    the output's last frame once it is assembled (``version`` busts the image cache)."""
    if job["kind"] != "render":
        return None
    if any(a["kind"] in ("video", "sequence") for a in job["artifacts"]):
        return {"final": True, "version": job["artifacts"][-1]["id"], "frame": None}
    kept = frames.latest_preview(settings, job["id"])
    if kept is None:
        return None
    position = kept[0]
    try:
        numbers = parse_frames(str(job["spec"].get("frames") or ""))
        frame = numbers[position] if position < len(numbers) else None
    except ValueError:
        frame = None
    return {"final": False, "version": position, "frame": frame}


def job_regions(
    settings: Settings, job: Mapping[str, Any], viewer: Viewer, log: training.ProgressLog
) -> Regions:
    tasks: Sequence[Mapping[str, Any]] = job["task_list"]
    common = {"job": job, "viewer": viewer}
    out = {
        "summary": render("_job_summary.html", **common),
        "controls": render("_job_controls.html", **common),
        "tasks": render(
            "_job_tasks.html",
            **common,
            strip=views.frame_strip(tasks),
            cards=views.cards(tasks),
            width=views.STRIP_WIDTH,
            done=views.fraction_done,
        ),
        "media": render(
            "_job_media.html",
            **common,
            media=views.media(job["artifacts"]),
            latest=_latest_frame(settings, job),
        ),
        "artifacts": render("_job_artifacts.html", **common),
        "blocks": render("_job_blocks.html", **common),
        "events": render("_job_events.html", **common),
    }
    if job["kind"] == "train":
        records = training.history(settings, job, log)
        out["training"] = render(
            "_job_training.html", **common, charts=plot.charts(records), records=len(records),
            geometry=plot,
        )  # fmt: skip
    return out


def workers_regions(workers: Sequence[Mapping[str, Any]], viewer: Viewer) -> Regions:
    counts: dict[str, int] = {}
    for w in workers:
        counts[w["state"]] = counts.get(w["state"], 0) + 1
    return {"workers": render("_workers_table.html", workers=workers, viewer=viewer, counts=counts)}
