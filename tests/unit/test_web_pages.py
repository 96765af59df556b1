"""The monitor's pages without servers: the app answers what needs no database (the login
page, redirects, refusals, static files), and the templates render a job from a dict."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from farm.api.app import create_app
from farm.config import Settings
from farm.tokens import Principal
from farm.web import session
from farm.web.auth import Viewer
from farm.web.regions import job_regions
from farm.web.templating import STATIC, page, signature
from farm.web.training import ProgressLog


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("web")
    # Nothing listens there: a request that reached the database would fail.
    return Settings(
        database_url="postgresql://nobody@127.0.0.1:9/none",
        broker_url="redis://127.0.0.1:9/0",
        data_dir=root / "data",
        output_root=root / "out",
    )


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


def request(app: FastAPI, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://farm") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def test_pages_send_a_visitor_without_a_session_to_the_login_page(app: FastAPI) -> None:
    r = request(app, "GET", "/")
    assert (r.status_code, r.headers["location"]) == (303, "/ui/login")
    r = request(app, "GET", "/ui/jobs/3?x=1")
    assert (r.status_code, r.headers["location"]) == (303, "/ui/login?next=/ui/jobs/3%3Fx%3D1")


def test_the_login_page_is_locked_down_and_sets_its_form_nonce(app: FastAPI) -> None:
    r = request(app, "GET", "/ui/login?next=//evil.example")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    cookie = r.headers["set-cookie"]
    assert "farm_login=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert 'name="next" value="/"' in r.text  # the foreign target was dropped
    scripts = re.findall(r"<script[^>]*>", r.text)
    assert scripts and all("src=" in s for s in scripts)  # no inline script
    assert re.search(r'<label for="token">API token</label>', r.text)


def test_a_login_post_from_another_site_or_with_a_stale_form_is_refused(app: FastAPI) -> None:
    r = request(app, "POST", "/ui/login", data={"token": "t", "csrf": "x"},
                headers={"Origin": "http://evil.example"})  # fmt: skip
    assert r.status_code == 403 and "not sent from the farm monitor" in r.text
    r = request(app, "POST", "/ui/login", data={"token": "t", "csrf": "x"},
                headers={"Origin": "http://farm"})  # fmt: skip
    assert r.status_code == 403 and "expired" in r.text


def test_control_posts_need_a_session_and_streams_and_files_answer_401(app: FastAPI) -> None:
    for path in ("/ui/jobs/1/pause", "/ui/workers/w@h/drain", "/ui/jobs/1/priority"):
        r = request(app, "POST", path, data={"csrf": "x"}, headers={"Origin": "http://farm"})
        assert r.status_code == 403, path
        r = request(app, "POST", path, data={"csrf": "x"})  # neither Origin nor Referer
        assert r.status_code == 403 and "not sent from" in r.text, path
    for path in ("/ui/live/jobs", "/ui/live/jobs/1", "/ui/live/workers",
                 "/ui/artifacts/1/content", "/ui/jobs/1/frame.png"):  # fmt: skip
        assert request(app, "GET", path).status_code == 401, path


def test_a_forged_session_cookie_is_no_session(app: FastAPI, settings: Settings) -> None:
    forged = session.encode_session(bytes(32), session.new_session("ab" * 32, 1e9))
    r = request(app, "GET", "/", headers={"Cookie": f"{session.SESSION_COOKIE}={forged}"})
    assert r.status_code == 303  # refused before any database lookup


def test_the_monitor_stays_out_of_the_rest_api_document(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert "/" not in paths and not [p for p in paths if p.startswith("/ui")]


def test_static_files_ship_in_the_package_and_the_script_is_small(app: FastAPI) -> None:
    for name in ("farm.js", "farm.css", "favicon.svg"):
        assert request(app, "GET", f"/ui/static/{name}").status_code == 200, name
    assert len((STATIC / "farm.js").read_text().splitlines()) < 300


def _job(kind: str = "render", state: str = "failed") -> dict[str, Any]:
    iso = "2026-12-01T10:00:00+00:00"
    task = {
        "id": 7, "kind": "render_chunk", "stage": 0, "index": 0, "frames": "1-12",
        "position": 0, "frame_count": 12, "state": "failed", "attempts": 3, "max_attempts": 3,
        "worker": "gpu0@render07", "progress": {"frames": 5, "of": 12},
        "error": "CUDA out of memory <script>", "started_at": iso, "finished_at": iso,
        "duration_s": 4.2,
    }  # fmt: skip
    train = {**task, "id": 8, "kind": "train", "frames": None, "frame_count": 0,
             "state": "running", "progress": {"epoch": 2, "epochs": 4, "loss": 0.5}}  # fmt: skip
    return {
        "id": 3, "name": "sh010", "kind": kind, "state": state, "paused": False, "priority": 50,
        "tags": ["seq01"], "pool": None, "submitter": "pipeline",
        "tasks": {"total": 1, "queued": 0, "running": 0, "succeeded": 0, "failed": 1,
                  "canceled": 0},
        "progress": 0.0, "error": "CUDA out of memory <script>", "created_at": iso,
        "started_at": iso, "finished_at": iso, "spec": {"kind": kind, "frames": "1-12"},
        "now": iso, "task_list": [train if kind == "train" else task],
        "artifacts": [
            {"id": 11, "kind": "video", "path": "/o/renders/sh010.mp4", "size": 9088,
             "sha256": "a" * 64, "meta": {"codec": "h264"}, "task_id": 7, "created_at": iso},
            {"id": 12, "kind": "poster", "path": "/o/previews/p.png", "size": 10,
             "sha256": "b" * 64, "meta": {"width": 64, "height": 64}, "task_id": 7,
             "created_at": iso},
        ] if kind == "render" else [],
        "events": [{"id": 1, "at": iso, "task_id": 7, "from": "running", "to": "failed",
                    "worker": "gpu0@render07", "attempt": 3, "message": "CUDA out of memory"}],
        "events_total": 1,
        "worker_failures": [{"worker": "gpu0@render07", "failures": 3, "blocked": True,
                             "blocked_at": iso, "last_error": "CUDA out of memory"}],
    }  # fmt: skip


def _viewer(read_only: bool) -> Viewer:
    return Viewer(Principal("wrangler", read_only), session.Session("h", "n", 0), "the-csrf")


def _job_page(settings: Settings, job: dict[str, Any], read_only: bool) -> str:
    viewer = _viewer(read_only)
    regions = job_regions(settings, job, viewer, ProgressLog())
    resp = page(
        "job.html", viewer=viewer, flash=None, job=job, regions=regions,
        sigs={k: signature(v) for k, v in regions.items()}, live_url="/ui/live/jobs/3", nav="jobs",
    )  # fmt: skip
    return bytes(resp.body).decode()


def test_a_failed_render_shows_its_error_its_video_and_the_buttons(settings: Settings) -> None:
    html = _job_page(settings, _job(), read_only=False)
    for label in ("Pause", "Resume", "Cancel", "Retry", "Set priority"):
        assert re.search(rf'<button type="submit" id="btn-\w+"[^>]*>{label}</button>', html), label
    # A failed job can be retried, nothing else (a finished job is not paused or canceled).
    assert not re.search(r'id="btn-retry"[^>]*disabled', html)
    for verb in ("pause", "resume", "cancel"):
        assert re.search(rf'id="btn-{verb}"[^>]*disabled', html), verb
    assert html.count('value="the-csrf"') >= 6  # every form, logout included
    assert (
        "CUDA out of memory &lt;script&gt;" in html and "<script>" not in html.split("</head>")[1]
    )
    assert '<source src="/ui/artifacts/11/content" type="video/mp4">' in html
    assert 'data-slot="task-log"' in html and "TASK LOG VIEW" in html
    assert 'data-live="/ui/live/jobs/3"' in html
    assert "blocked" in html and "gpu0@render07" in html


def test_a_read_only_viewer_gets_no_buttons(settings: Settings) -> None:
    html = _job_page(settings, _job(), read_only=True)
    assert '<button type="submit" id="btn-' not in html
    assert "Read-only token: no controls." in html


def test_a_training_job_plots_what_its_task_reports(settings: Settings) -> None:
    html = _job_page(settings, _job("train", "running"), read_only=False)
    assert "<polyline" in html and "loss" in html
    assert 'aria-label="loss over 1 epochs' in html


def test_region_signatures_match_what_the_page_embeds(settings: Settings) -> None:
    viewer = _viewer(False)
    regions = job_regions(settings, _job(), viewer, ProgressLog())
    html = _job_page(settings, _job(), read_only=False)
    for name, body in regions.items():
        assert f'data-region="{name}" data-sig="{signature(body)}"' in html, name


def test_every_template_and_static_file_is_package_data() -> None:
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"web/templates/*"' in text and '"web/static/*"' in text


def test_the_live_stream_pushes_changed_regions_only_and_ends_with_again(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    from types import SimpleNamespace

    from farm.web import live

    monkeypatch.setattr(live, "LIFETIME_S", 0.35)
    marks = iter([1, 1, 2, 2, 2, 2, 2, 2])
    pages = iter([{"a": "<p>1</p>", "b": "x"}, {"a": "<p>2</p>", "b": "x"}])

    class Request:
        app = SimpleNamespace(state=SimpleNamespace(settings=settings))

        async def is_disconnected(self) -> bool:
            return False

    async def collect() -> list[str]:
        stand_in: Any = Request()  # what the stream reads of starlette's Request
        gen = live.stream(stand_in, _viewer(False), lambda: next(marks), lambda: next(pages),
                          tick_s=0.05, refresh_s=60)  # fmt: skip
        return [chunk async for chunk in gen]

    out = asyncio.run(collect())
    assert out[0] == "retry: 500\n\n"
    pushes = [c for c in out if c.startswith("event: regions")]
    assert len(pushes) == 2  # the first render, then the mark moved once
    assert '"a"' in pushes[0] and '"b"' in pushes[0]
    assert '"a"' in pushes[1] and '"b"' not in pushes[1]  # b did not change
    assert signature("<p>2</p>") in pushes[1]
    assert out[-1].startswith("event: again")
