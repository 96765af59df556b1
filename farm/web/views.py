"""What the templates draw, computed from the read queries' dicts: the frame strip's
geometry, a task's share done, which artifacts are shown how. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

STRIP_WIDTH = 1000  # the frame strip's SVG viewBox width
# A job with more tasks than this shows cards only for those worth a look (running, failed,
# canceled, not a chunk); the strip still shows every chunk. Keeps a push of a 5,000-chunk
# job's page small.
CARDS_SHOWN = 300
# Codecs a current browser plays in a <video> element (mp4/webm/mkv containers).
PLAYABLE_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})
VIDEO_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/webm"}


@dataclass(frozen=True)
class StripCell:
    task_id: int
    frames: str
    state: str
    x: float
    width: float
    done: float  # share of the chunk rendered, 0..1


def fraction_done(task: Mapping[str, Any]) -> float | None:
    """How far a task is: frames of its chunk, epochs or steps of a training run; None when
    its progress says nothing (an assembly, a task not started)."""
    if task["state"] == "succeeded":
        return 1.0
    p = task.get("progress") or {}
    for done, total in (("frames", "of"), ("epoch", "epochs"), ("step", "steps")):
        d, t = p.get(done), p.get(total)
        if isinstance(d, int | float) and isinstance(t, int | float) and t > 0:
            return max(0.0, min(1.0, float(d) / float(t)))
    return None


def frame_strip(tasks: Sequence[Mapping[str, Any]]) -> list[StripCell]:
    """The render's chunks laid over its frame list, each as wide as its frame count."""
    chunks = [t for t in tasks if t["kind"] == "render_chunk" and t["frame_count"] > 0]
    total = sum(t["frame_count"] for t in chunks)
    if not total:
        return []
    scale = STRIP_WIDTH / total
    cells, x = [], 0.0
    for t in sorted(chunks, key=lambda t: t["position"]):
        width = t["frame_count"] * scale
        cells.append(
            StripCell(t["id"], t["frames"] or "", t["state"], round(x, 2), round(width, 2),
                      fraction_done(t) or 0.0)
        )  # fmt: skip
        x += width
    return cells


def cards(tasks: Sequence[Mapping[str, Any]], limit: int = CARDS_SHOWN) -> tuple[list[Any], int]:
    """The tasks shown as cards, and how many are left out."""
    if len(tasks) <= limit:
        return list(tasks), 0
    keep = [
        t for t in tasks
        if t["state"] in ("running", "failed", "canceled") or t["kind"] != "render_chunk"
    ][:limit]  # fmt: skip
    return keep, len(tasks) - len(keep)


@dataclass(frozen=True)
class Media:
    video: Mapping[str, Any] | None = None
    video_type: str | None = None
    unplayable: Mapping[str, Any] | None = None  # a video the browser cannot play inline
    poster: Mapping[str, Any] | None = None
    contact_sheet: Mapping[str, Any] | None = None
    images: tuple[Mapping[str, Any], ...] = ()  # a sample grid, a GIF

    @property
    def any(self) -> bool:
        return bool(
            self.video or self.unplayable or self.poster or self.contact_sheet or self.images
        )


def media(artifacts: Sequence[Mapping[str, Any]]) -> Media:
    found: dict[str, Any] = {}
    images = []
    for a in artifacts:
        suffix = PurePath(a["path"]).suffix.lower()
        if a["kind"] == "video":
            codec = str(a["meta"].get("codec") or "")
            if suffix == ".gif":
                images.append(a)
            elif suffix in VIDEO_TYPES and codec in PLAYABLE_CODECS:
                found.update(video=a, video_type=VIDEO_TYPES[suffix])
            else:
                found["unplayable"] = a
        elif a["kind"] in ("poster", "contact_sheet"):
            found[a["kind"]] = a
        elif a["kind"] == "image":
            images.append(a)
    return Media(**found, images=tuple(images))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def file_name(path: str) -> str:
    return PurePath(path).name
