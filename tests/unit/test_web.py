"""The monitor's decisions without servers: signed sessions and CSRF tokens, the same-origin
rule, filters and keyset cursors, plots, the frame strip and which artifacts show how."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from farm.web import frames, plot, session, training, views
from farm.web.listing import SORTS, JobFilters, decode_cursor, encode_cursor, parse_filters

KEY = bytes(range(32))
NOW = 1_800_000_000.0


def test_a_session_round_trips_and_carries_the_token_hash_not_the_token() -> None:
    s = session.new_session("ab" * 32, NOW)
    cookie = session.encode_session(KEY, s)
    assert session.decode_session(KEY, cookie, NOW + 60) == s
    assert "farm_" not in cookie


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),  # signature
        lambda c: c.replace("v1.", "v2.", 1),  # version
        lambda c: "v1." + c.split(".")[1][::-1] + "." + c.split(".")[2],  # payload
        lambda c: "garbage",
        lambda c: "",
    ],
)
def test_a_tampered_session_cookie_is_refused(tamper: object) -> None:
    cookie = session.encode_session(KEY, session.new_session("ab" * 32, NOW))
    assert session.decode_session(KEY, tamper(cookie), NOW) is None  # type: ignore[operator]


def test_a_session_expires_and_another_key_or_purpose_does_not_verify() -> None:
    cookie = session.encode_session(KEY, session.new_session("ab" * 32, NOW))
    assert session.decode_session(KEY, cookie, NOW + session.SESSION_MAX_AGE_S + 1) is None
    assert session.decode_session(KEY, cookie, NOW - 3600) is None  # from the future
    assert session.decode_session(bytes(32), cookie, NOW) is None
    flash = session.sign(KEY, "flash", {"h": "ab" * 32, "n": "x", "t": int(NOW)})
    assert session.decode_session(KEY, flash, NOW) is None  # a flash is not a session


def test_csrf_tokens_are_bound_to_their_session() -> None:
    a, b = session.new_session("h", NOW), session.new_session("h", NOW)
    token = session.csrf_token(KEY, a.nonce)
    assert session.csrf_ok(KEY, a.nonce, token)
    assert not session.csrf_ok(KEY, b.nonce, token)
    assert not session.csrf_ok(KEY, a.nonce, None)
    assert not session.csrf_ok(KEY, a.nonce, "")
    assert not session.csrf_ok(KEY, None, token)


@pytest.mark.parametrize(
    ("host", "origin", "referer", "ok"),
    [
        ("farm:8000", "http://farm:8000", None, True),
        ("farm:8000", "https://farm:8000", None, True),  # TLS ended by a proxy in front
        ("farm:8000", None, "http://farm:8000/ui/jobs/3", True),
        ("farm:8000", "http://farm:8001", None, False),  # same site, another origin
        ("farm:8000", "http://evil.example", "http://farm:8000/", False),  # Origin wins
        ("farm:8000", "null", None, False),
        ("farm:8000", None, None, False),
        (None, "http://farm:8000", None, False),
    ],
)
def test_a_post_must_come_from_this_site(
    host: str | None, origin: str | None, referer: str | None, ok: bool
) -> None:
    assert session.same_origin(host, origin, referer) is ok


@pytest.mark.parametrize(
    ("target", "where"),
    [
        ("/ui/jobs/3?x=1", "/ui/jobs/3?x=1"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_after_login_only_a_local_path_is_followed(target: str | None, where: str) -> None:
    assert session.safe_next(target) == where


def test_the_secret_is_made_once_private_and_reused(tmp_path: Path) -> None:
    key = session.secret(tmp_path / "data")
    assert len(key) == 32 and session.secret(tmp_path / "data") == key
    assert (tmp_path / "data" / "web_secret").stat().st_mode & 0o777 == 0o600


def test_filters_parse_and_bad_values_are_dropped_with_a_reason() -> None:
    f, problems = parse_filters(
        {"state": "running", "name": " sh01 ", "tag": "seq1", "kind": "render", "pool": "gpu"}
    )
    assert (f.state, f.name, f.tag, f.kind, f.pool, f.sort, f.limit) == (
        "running", "sh01", "seq1", "render", "gpu", "newest", 50,
    )  # fmt: skip
    assert problems == []
    f, problems = parse_filters({"state": "exploded", "sort": "random", "limit": "7"})
    assert (f.state, f.sort, f.limit) == (None, "newest", 50)
    assert [p.split(":")[0] for p in problems] == ["sort", "limit", "state"]


def test_a_cursor_round_trips_per_sort_and_a_foreign_one_is_refused() -> None:
    assert decode_cursor(encode_cursor((90, 12)), SORTS["priority"]) == (90, 12)
    assert decode_cursor(encode_cursor(("sh010", 12)), SORTS["name"]) == ("sh010", 12)
    assert decode_cursor(encode_cursor((12, 12)), SORTS["newest"]) == (12, 12)
    assert decode_cursor(encode_cursor(("sh010", 12)), SORTS["priority"]) is None
    assert decode_cursor("not base64 json", SORTS["name"]) is None
    f, problems = parse_filters({"sort": "name", "after": encode_cursor((3, 4))})
    assert f.after is None and problems


def test_links_keep_the_filters_and_change_one_thing() -> None:
    f = JobFilters(state="failed", tag="seq 1", sort="priority", limit=25, after=(50, 9))
    assert f.query(after=None) == "state=failed&tag=seq+1&sort=priority&limit=25"
    again, _ = parse_filters(dict(p.split("=") for p in f.query().split("&")))
    assert again.after == (50, 9)
    assert JobFilters().query() == "" and not JobFilters().narrowed


def test_training_records_merge_by_step_and_the_latest_wins() -> None:
    sidecar = [{"epoch": 1.0, "loss": 3.0}, {"epoch": 2.0, "loss": 2.0}]
    seen = [{"epoch": 2, "epochs": 4, "loss": 1.9}, {"epoch": 3, "epochs": 4, "loss": 1.5}]
    merged = training.merge(sidecar, seen, [{"loss": 9.0}])  # no x: dropped
    assert [(r["epoch"], r["loss"]) for r in merged] == [(1.0, 3.0), (2, 1.9), (3, 1.5)]
    assert training.metrics(merged) == ["loss"]


def test_the_progress_log_keeps_what_it_saw_per_attempt_bounded() -> None:
    log = training.ProgressLog(tasks=2, points=3)
    for step in range(5):
        log.add(1, 1, {"step": step, "steps": 5, "loss_g": 1.0 / (step + 1)})
    assert [r["step"] for r in log.records(1, 1)] == [2, 3, 4]
    log.add(2, 1, {"step": 1})
    log.add(3, 1, {"step": 1})
    assert log.records(1, 1) == [] and log.records(3, 1)
    log.add(3, 1, None)
    log.add(3, 1, {"frames": 3, "of": 12})  # a render chunk's progress: no step
    assert len(log.records(3, 1)) == 1


def test_charts_put_each_metric_on_its_own_scale() -> None:
    records = [{"step": s, "loss_d": 1.0 + s, "loss_g": 100.0 - s, "steps": 3} for s in (1, 2, 3)]
    charts = {c.title: c for c in plot.charts(records)}
    assert set(charts) == {"loss_d", "loss_g"}
    d = charts["loss_d"]
    assert (d.x_label, d.y_min, d.y_max, d.last, d.count) == ("step", 2.0, 4.0, 4.0, 3)
    xs = [float(p.split(",")[0]) for p in d.points.split()]
    ys = [float(p.split(",")[1]) for p in d.points.split()]
    assert xs[0] == plot.PAD_L and xs[-1] == plot.WIDTH - plot.PAD_R
    assert ys[0] == plot.HEIGHT - plot.PAD_B and ys[-1] == plot.PAD_T  # rising: bottom to top
    one = plot.charts([{"epoch": 1.0, "loss": 0.5, "phase": "frame_vae"}])
    assert [c.title for c in one] == ["frame_vae: loss"] and one[0].count == 1


def _task(i: int, state: str, position: int, count: int, **kw: object) -> dict[str, object]:
    return {"id": i, "kind": "render_chunk", "state": state, "position": position,
            "frame_count": count, "frames": f"{position + 1}-{position + count}",
            "progress": None, **kw}  # fmt: skip


def test_the_frame_strip_spans_the_frame_range_in_proportion() -> None:
    tasks = [
        _task(2, "running", 12, 12, progress={"frames": 6, "of": 12}),
        _task(1, "succeeded", 0, 12),
        _task(3, "queued", 24, 24),
        {"id": 4, "kind": "assemble", "state": "queued", "position": 0, "frame_count": 48,
         "frames": "1-48", "progress": None},
    ]  # fmt: skip
    strip = views.frame_strip(tasks)
    assert [(c.task_id, c.x, c.width, c.done) for c in strip] == [
        (1, 0.0, 250.0, 1.0), (2, 250.0, 250.0, 0.5), (3, 500.0, 500.0, 0.0),
    ]  # fmt: skip
    assert views.frame_strip([]) == []


def test_how_far_a_task_is() -> None:
    assert views.fraction_done({"state": "running", "progress": {"epoch": 1, "epochs": 4}}) == 0.25
    assert views.fraction_done({"state": "running", "progress": {"step": 5, "steps": 0}}) is None
    assert views.fraction_done({"state": "succeeded", "progress": None}) == 1.0
    assert views.fraction_done({"state": "queued", "progress": None}) is None


def _art(i: int, kind: str, path: str, **meta: object) -> dict[str, object]:
    return {"id": i, "kind": kind, "path": path, "meta": meta}


def test_a_playable_video_plays_inline_and_the_others_are_offered_as_downloads() -> None:
    m = views.media([
        _art(1, "video", "/o/a.mp4", codec="h264"),
        _art(2, "poster", "/o/p.png"),
        _art(3, "contact_sheet", "/o/c.png"),
    ])  # fmt: skip
    assert m.video and m.video["id"] == 1 and m.video_type == "video/mp4"
    assert m.poster and m.contact_sheet and m.any
    m = views.media([_art(1, "video", "/o/a.mov", codec="prores")])
    assert m.video is None and m.unplayable and m.unplayable["id"] == 1
    m = views.media([_art(1, "video", "/o/a.gif", codec="gif"), _art(2, "image", "/o/g.png")])
    assert [a["id"] for a in m.images] == [1, 2]
    assert not views.media([_art(1, "checkpoint", "/o/c.safetensors")]).any


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (0.25, "0.2 s"), (59.94, "59.9 s"), (61, "1 min 01 s"), (7322, "2 h 02 min")],
)
def test_durations_read_as_people_say_them(seconds: float | None, text: str) -> None:
    assert views.duration(seconds) == text


def test_sizes() -> None:
    assert [views.size(n) for n in (None, 900, 9088, 5 * 1024**3)] == [
        "", "900 B", "8.9 KB", "5.0 GB",
    ]  # fmt: skip


def test_a_kept_preview_frame_becomes_a_png(tmp_path: Path) -> None:
    gray = (np.arange(6 * 4, dtype=np.uint8) * 10).reshape(6, 4)
    path = tmp_path / "preview-000000007.npy"
    np.save(path, gray)
    body = frames.preview_png(path)
    assert body is not None and body.startswith(b"\x89PNG\r\n\x1a\n")
    idat = body.index(b"IDAT")
    length = int.from_bytes(body[idat - 4 : idat], "big")
    raw = zlib.decompress(body[idat + 4 : idat + 4 + length])
    assert raw == b"".join(b"\x00" + row.tobytes() for row in gray)
    rgb = np.zeros((2, 2, 3), np.uint8)
    assert frames.png(rgb)[25] == 2  # colour type RGB in IHDR
    assert frames.preview_png(tmp_path / "gone.npy") is None


def test_the_latest_frame_is_the_furthest_kept_preview_then_the_outputs_last(
    tmp_path: Path,
) -> None:
    from farm.config import Settings

    settings = Settings(output_root=tmp_path / "out", data_dir=tmp_path / "data")
    assert frames.latest_preview(settings, 3) is None
    kept = tmp_path / "out" / ".segments" / "job-3"
    kept.mkdir(parents=True)
    for position in (0, 24, 11):
        np.save(kept / f"preview-{position:09d}.npy", np.zeros((2, 2), np.uint8))
    (kept / ".preview-000000030.npy.99.tmp").write_bytes(b"half written")
    found = frames.latest_preview(settings, 3)
    assert found is not None and found[0] == 24 and found[1].name == "preview-000000024.npy"
    seq = tmp_path / "out" / "renders" / "sh010"
    seq.mkdir(parents=True)
    for n in (1001, 1003, 1002):
        (seq / f"sh010.{n}.png").write_bytes(b"png")
    art = {"id": 1, "kind": "sequence", "path": str(seq), "sha256": "0" * 64}
    last = frames.finished_frame(settings, [art])
    assert last is not None and last.name == "sh010.1003.png"
    outside = {**art, "path": str(tmp_path)}  # not under the output root: never read
    assert frames.finished_frame(settings, [outside]) is None


def test_a_big_job_shows_cards_only_for_the_tasks_worth_a_look() -> None:
    tasks = [_task(i, "succeeded", i * 10, 10) for i in range(400)]
    tasks[7] = _task(7, "failed", 70, 10)
    tasks.append({"id": 999, "kind": "assemble", "state": "queued", "position": 0,
                  "frame_count": 4000, "frames": "1-4000", "progress": None})  # fmt: skip
    shown, hidden = views.cards(tasks)
    assert [t["id"] for t in shown] == [7, 999] and hidden == 399
    assert views.cards(tasks[:10]) == (tasks[:10], 0)
