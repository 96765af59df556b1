"""The farm monitor in a real browser: Debian's chromium driven by Playwright against a real
``farm api`` process, a real worker and sweeper, on real PostgreSQL and Redis.

Skips (saying why) without the ``playwright`` package or a chromium binary
(``FARM_TEST_CHROMIUM``, default /usr/bin/chromium). Playwright never downloads a browser
here: it launches that binary. Screenshots of the main pages go to docs/img/.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import insert, select

from farm.audit import AuditFilter, list_audit
from farm.db import session_scope
from farm.models import Event, Job
from farm.tokens import create, revoke
from tests.integration.harness import Farm, make_settings
from tests.integration.test_api import spawn_api

pytestmark = pytest.mark.one_pass

CHROMIUM = os.environ.get("FARM_TEST_CHROMIUM", "/usr/bin/chromium")
try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip(
        "playwright is not installed (pip install playwright; no browser download needed)",
        allow_module_level=True,
    )
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(
        f"no chromium at {CHROMIUM} (apt-get install chromium, or set FARM_TEST_CHROMIUM)",
        allow_module_level=True,
    )

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
HD = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}


class Web:
    """A farm without a running worker until a test starts one, and its API process."""

    def __init__(self, farm: Farm, url: str) -> None:
        self.farm, self.url = farm, url
        self.rw = create(farm.settings, "wrangler")
        self.ro = create(farm.settings, "artist", read_only=True)
        self.worker: Any = None

    def start_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            self.worker = self.farm.start_worker(name="web-worker@test")

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.farm.stop(self.worker)
            self.worker = None


@pytest.fixture(scope="module")
def web(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Web]:
    root: Path = tmp_path_factory.mktemp("web")
    farm = Farm(make_settings(database_url, broker_url, root), root)
    farm.start_sweeper()
    url, proc = spawn_api(farm.settings, root / "api.log")
    try:
        out = farm.settings.output_root_abs()
        out.mkdir(parents=True, exist_ok=True)
        # Jobs naming this never render: it is not a checkpoint (their chunks fail at once).
        (out / "x.safetensors").write_bytes(b"not a checkpoint")
        yield Web(farm, url)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except Exception:
            proc.kill()
        farm.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=HD, timezone_id="Europe/Paris", locale="en-GB")
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def login(page: Page, web: Web, token: str, path: str = "/") -> None:
    page.goto(f"{web.url}/ui/login?next={quote(path)}")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{web.url}{path}")


@pytest.fixture(scope="module")
def trained(web: Web, browser: Browser) -> dict[str, Any]:
    """A tiny VAE, trained while its page is open: the loss plot grows without a reload."""
    context = browser.new_context(viewport=HD)
    page = context.new_page()
    job_id = web.farm.submit({"kind": "train", "name": "web-vae", "epochs": 3, "latent_dim": 4})
    try:
        login(page, web, web.rw, f"/ui/jobs/{job_id}")
        expect(page.locator("#job-state")).to_have_attribute("data-state", "queued")
        page.evaluate(
            """() => { window.__sameDocument = true; window.__plots = [];
            document.addEventListener('farm:updated', () => window.__plots.push([
                document.querySelectorAll('.chart')[0]?.querySelectorAll('circle.dot').length || 0,
                document.getElementById('job-state').dataset.state])); }"""
        )
        web.start_worker()
        expect(page.locator("#job-state")).to_have_attribute(
            "data-state", "succeeded", timeout=180_000
        )
        points = page.locator(".chart").first.locator("circle.dot")
        expect(points).to_have_count(3)  # one per epoch, from the checkpoint's history
        assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
        plots = page.evaluate("window.__plots")
        assert any(n >= 1 and state == "running" for n, state in plots), plots  # while it trained
        titles = page.locator(".chart figcaption strong").all_inner_texts()
        assert {"loss", "recon", "kl"} <= set(titles)
        page.evaluate("document.getElementById('h-training').scrollIntoView()")
        page.screenshot(path=str(IMG / "web-training.png"))
        return {"id": job_id, "checkpoint": "job:web-vae"}
    finally:
        context.close()


def render(name: str, **kw: Any) -> dict[str, Any]:
    spec = {"kind": "render", "name": name, "checkpoint": "job:web-vae", "frames": "1-48",
            "chunk_size": 12, "width": 64, "height": 64}  # fmt: skip
    return {**spec, **kw}


def test_login_with_a_wrong_token_is_refused_and_a_right_one_opens_the_jobs_page(
    web: Web, page: Page
) -> None:
    resp = page.goto(f"{web.url}/")
    assert resp is not None and page.url.startswith(f"{web.url}/ui/login")
    page.get_by_label("API token").fill("farm_not-a-token")
    with page.expect_response(lambda r: r.url.endswith("/ui/login")) as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    login(page, web, web.rw)
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "farm_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert web.rw not in cookie["value"]
    # The cookie opens the pages only: the REST API still wants a bearer token.
    assert page.request.get(f"{web.url}/jobs").status == 401
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{web.url}/ui/login")
    page.goto(f"{web.url}/ui/workers")
    assert page.url.startswith(f"{web.url}/ui/login")


def test_revoking_a_token_logs_its_sessions_out(web: Web, page: Page) -> None:
    token = create(web.farm.settings, "temp-wrangler")
    login(page, web, token, "/ui/workers")
    expect(page.locator("#live-status")).to_have_text("live")  # its stream is open
    revoke(web.farm.settings, "temp-wrangler")
    # The open page's stream notices within seconds and goes back to the login page.
    page.wait_for_url(f"{web.url}/ui/login**", timeout=30_000)


def _insert_jobs(web: Web, rows: list[dict[str, Any]]) -> None:
    base = {"kind": "render", "state": "queued", "spec": {"kind": "render"}, "priority": 50}
    with web.farm.session() as s:
        s.execute(insert(Job), [{**base, **r} for r in rows])


def test_jobs_list_filters_sorts_pages_and_counts_live(web: Web, page: Page) -> None:
    _insert_jobs(web, [
        {"name": "flt-sh010", "tags": ["flt-seq1"], "submitter": "ann", "pool": "flt-a"},
        {"name": "flt-sh020", "tags": ["flt-seq1"], "submitter": "bob", "state": "failed"},
        {"name": "flt-sh030", "tags": ["flt-seq2"], "submitter": "ann", "priority": 90},
        {"name": "flt-train", "kind": "train", "tags": ["flt-seq2"], "submitter": "ann",
         "state": "succeeded"},
    ])  # fmt: skip
    login(page, web, web.rw)
    names = page.locator("table.jobs tbody td:nth-child(2)")

    def search(**fields: str) -> list[str]:
        page.goto(f"{web.url}/")
        for label, value in fields.items():
            control = page.get_by_label(label, exact=True)
            if control.evaluate("e => e.tagName") == "SELECT":
                control.select_option(value)
            else:
                control.fill(value)
        page.get_by_role("button", name="Filter").click()
        page.wait_for_load_state()
        return names.all_inner_texts()

    assert search(**{"Name contains": "flt-", "Kind": "render", "Submitter": "ann"}) == [
        "flt-sh030", "flt-sh010"]  # fmt: skip
    assert search(**{"Tag": "flt-seq1", "State": "failed"}) == ["flt-sh020"]
    assert search(**{"Pool": "flt-a"}) == ["flt-sh010"]
    assert search(**{"Name contains": "flt-", "Sort": "priority"})[0] == "flt-sh030"
    page.goto(f"{web.url}/?name=flt-&sort=name")
    assert names.all_inner_texts() == ["flt-sh010", "flt-sh020", "flt-sh030", "flt-train"]
    # The count per state follows the farm without a reload.
    page.goto(f"{web.url}/?tag=flt-seq1")
    page.evaluate("window.__sameDocument = true")
    failed = page.locator('[data-state-count="failed"] strong')
    expect(failed).to_have_text("1")
    _insert_jobs(web, [{"name": "flt-sh040", "tags": ["flt-seq1"], "state": "failed"}])
    with web.farm.session() as s:  # the list moves when an event is written
        job_id = s.execute(select(Job.id).where(Job.name == "flt-sh040")).scalar_one()
        s.add(Event(job_id=job_id, to_state="failed", message="test"))
    expect(failed).to_have_text("2", timeout=10_000)
    expect(names.first).to_have_text("flt-sh040")
    assert page.evaluate("window.__sameDocument") is True


def test_keyset_pages_walk_every_job_once(web: Web, page: Page) -> None:
    _insert_jobs(web, [{"name": f"kp-{i:03d}", "tags": ["kp"]} for i in range(60)])
    login(page, web, web.rw, "/?tag=kp&limit=25")
    seen: list[str] = []
    while True:
        seen += page.locator("table.jobs tbody td:nth-child(2)").all_inner_texts()
        nxt = page.get_by_role("link", name="Next page")
        if nxt.count() == 0:
            break
        nxt.click()
        page.wait_for_load_state()
    assert seen == [f"kp-{i:03d}" for i in reversed(range(60))]


def test_job_page_grid_turns_green_as_a_real_render_runs_and_its_video_plays(
    web: Web, page: Page, trained: dict[str, Any]
) -> None:
    web.stop_worker()  # the page opens on a render nobody has started
    job_id = web.farm.submit(render("web-shot"))
    login(page, web, web.rw, f"/ui/jobs/{job_id}")
    cells = page.locator("ol.tasks li.task")
    expect(cells).to_have_count(5)  # four chunks of 12 frames and the assembly
    assert set(cells.evaluate_all("els => els.map(e => e.dataset.state)")) == {"queued"}
    # Record when each task card shows a new state (to compare with the event's time).
    page.evaluate(
        """() => {
        window.__sameDocument = true;
        window.__seen = [];
        const note = () => document.querySelectorAll('li.task').forEach(el => {
            const key = el.dataset.taskId + ':' + el.dataset.state;
            if (!window.__seen.some(s => s.key === key))
                window.__seen.push({key, task: +el.dataset.taskId, state: el.dataset.state,
                                    at: Date.now()});
        });
        note();
        new MutationObserver(note).observe(document.body, {subtree: true, childList: true});
    }"""
    )
    web.start_worker()
    expect(page.locator("#job-state")).to_have_attribute("data-state", "succeeded", timeout=120_000)
    states = cells.evaluate_all("els => els.map(e => e.dataset.state)")
    assert states == ["succeeded"] * 5
    colour = cells.first.evaluate("e => getComputedStyle(e).borderLeftColor")
    assert colour == "rgb(31, 143, 78)", colour  # the succeeded green
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    seen = page.evaluate("window.__seen")
    assert {s["state"] for s in seen} >= {"queued", "succeeded"}
    # Event to screen: each state shown vs the transition's time in the events table.
    with web.farm.session() as s:
        events = {
            (e.task_id, e.to_state): e.at
            for e in s.execute(select(Event).where(Event.job_id == job_id)).scalars()
            if e.task_id is not None
        }
    delays = [
        s["at"] / 1000 - events[(s["task"], s["state"])].timestamp()
        for s in seen
        if (s["task"], s["state"]) in events and s["state"] != "queued"
    ]
    assert delays and max(delays) < 3.0, delays
    print(
        f"\nevent-to-screen delay over {len(delays)} task state changes: "
        f"median {1000 * statistics.median(delays):.0f} ms, max {1000 * max(delays):.0f} ms"
    )
    # The output: poster, contact sheet, last frame, and the video, which plays.
    media = page.locator('[data-region="media"]')
    for alt in ("Poster frame", "Contact sheet", "Last frame of the output"):
        img = media.get_by_alt_text(alt, exact=False)
        expect(img).to_be_visible()
        assert img.evaluate("i => i.complete && i.naturalWidth > 0"), alt
    video = page.locator("#job-video")
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function(
        "() => { const v = document.getElementById('job-video');"
        " return v.readyState >= 2 && v.currentTime > 0.2; }",
        timeout=15_000,
    )
    # Downloads come with the session cookie, and answer ranges (a <video> seeks with them).
    href = page.locator('[data-artifact-kind="video"] a').get_attribute("href")
    ranged = page.request.get(f"{web.url}{href}", headers={"Range": "bytes=0-99"})
    assert ranged.status == 206 and len(ranged.body()) == 100
    page.locator("#h-tasks").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(IMG / "web-job.png"))


def test_pause_and_resume_from_the_job_page(web: Web, page: Page) -> None:
    # A pool no worker serves: the job waits as long as the test needs.
    job_id = web.farm.submit(render("web-paused", pool="nowhere", checkpoint="x.safetensors"))
    login(page, web, web.rw, f"/ui/jobs/{job_id}")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status").filter(has_text="paused")).to_be_visible()
    expect(page.locator("#job-state .badge.paused")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_be_disabled()
    assert web.farm.detail(job_id)["paused"] is True
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status").filter(has_text="resumed")).to_be_visible()
    expect(page.locator("#job-state .badge.paused")).to_have_count(0)
    assert web.farm.detail(job_id)["paused"] is False
    page.get_by_label("Priority", exact=True).fill("77")
    page.get_by_role("button", name="Set priority").click()
    expect(page.locator("#job-priority")).to_have_text("77")
    # A priority out of range (the browser's own check bypassed): the page says why.
    page.get_by_label("Priority", exact=True).fill("101")
    page.get_by_label("Priority", exact=True).evaluate("e => e.form.noValidate = true")
    page.get_by_role("button", name="Set priority").click()
    expect(page.get_by_role("alert")).to_contain_text("between 0 and 100")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#job-state")).to_have_attribute("data-state", "canceled")
    # audited as the session's token, one row a click (the refused 101 wrote none)
    with session_scope(web.farm.settings) as s:
        rows, _ = list_audit(s, AuditFilter(job=job_id))
    assert [(r["action"], r["actor"]) for r in rows] == [
        ("cancel", "wrangler"), ("priority", "wrangler"), ("resume", "wrangler"),
        ("pause", "wrangler"), ("submit", "cli"),
    ]  # fmt: skip
    assert rows[1]["detail"] == {"old": 50, "new": 77} and all(r["request_id"] for r in rows[:4])


def test_a_failed_task_shows_its_error_and_the_job_can_be_retried(
    web: Web, page: Page, trained: dict[str, Any]
) -> None:
    web.start_worker()
    job_id = web.farm.submit(render("web-broken", checkpoint="x.safetensors", frames="1-12",
                                    max_attempts=1))  # fmt: skip
    login(page, web, web.rw, f"/ui/jobs/{job_id}")
    expect(page.locator("#job-state")).to_have_attribute("data-state", "failed", timeout=60_000)
    failed = page.locator('li.task[data-state="failed"]').first
    expect(failed.locator(".task-error pre")).to_contain_text("checkpoint")
    expect(page.locator(".error-box")).to_contain_text("checkpoint")
    expect(page.get_by_role("button", name="Retry")).to_be_enabled()
    # The place the task log view will fill is there, empty.
    assert page.locator('[data-slot="task-log"]').count() == 1


def test_clicking_a_task_card_shows_its_log_with_the_failure_traceback(
    web: Web, page: Page
) -> None:
    web.start_worker()
    job_id = web.farm.submit(render("web-logged", checkpoint="x.safetensors", frames="1-12",
                                    max_attempts=1))  # fmt: skip
    login(page, web, web.rw, f"/ui/jobs/{job_id}")
    expect(page.locator("#job-state")).to_have_attribute("data-state", "failed", timeout=60_000)
    view = page.locator("#task-log")
    expect(view).to_be_hidden()  # no task running when the page opened: none picked
    page.locator('li.task[data-state="failed"]').first.click(position={"x": 4, "y": 4})
    expect(view).to_be_visible()
    lines = view.locator(".log-lines")
    expect(lines).to_contain_text("=== attempt 1 ===")
    expect(lines).to_contain_text("attempt 1: start")
    expect(lines).to_contain_text("Traceback (most recent call last)")
    expect(view.locator(".log-status")).to_have_text("task failed")  # its stream ended


def test_a_read_only_token_sees_no_buttons_and_forged_posts_are_refused(
    web: Web, browser: Browser
) -> None:
    job_id = web.farm.submit(render("web-ro", pool="nowhere", checkpoint="x.safetensors"))
    ro = browser.new_context(viewport=HD)
    rw = browser.new_context(viewport=HD)
    evil = _evil_site()
    try:
        page = ro.new_page()
        login(page, web, web.ro, f"/ui/jobs/{job_id}")
        for name in ("Pause", "Resume", "Cancel", "Retry", "Set priority"):
            assert page.get_by_role("button", name=name).count() == 0, name
        page.goto(f"{web.url}/ui/workers")
        assert page.locator("tr[data-worker]").count() >= 1
        assert page.get_by_role("button", name=re.compile("drain", re.I)).count() == 0
        csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
        # A read-only session posting anyway, with its own valid CSRF token: 403.
        status = _post_from_page(page, f"/ui/jobs/{job_id}/pause", f"csrf={csrf}")
        assert status == 403
        page = rw.new_page()
        login(page, web, web.rw, f"/ui/jobs/{job_id}")
        csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
        assert _post_from_page(page, f"/ui/jobs/{job_id}/pause", "") == 403
        assert _post_from_page(page, f"/ui/jobs/{job_id}/pause", "csrf=forged") == 403
        # Another origin (same host, other port: same-site, so the Lax cookie goes along)
        # posting a form, even one that knows the CSRF token: refused by the Origin check.
        page.goto(f"{evil.url}/?target={web.url}/ui/jobs/{job_id}/pause&csrf={csrf}")
        page.wait_for_url(f"{web.url}/**")
        expect(page.get_by_role("alert")).to_contain_text("not sent from the farm monitor")
        assert web.farm.detail(job_id)["paused"] is False
    finally:
        evil.close()
        ro.close()
        rw.close()


def _post_from_page(page: Page, path: str, body: str) -> int:
    return int(
        page.evaluate(
            """([path, body]) => fetch(path, {method: 'POST', body,
                headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                redirect: 'manual'}).then(r => r.status)""",
            [path, body],
        )
    )


class _Evil:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _evil_site() -> _Evil:
    """A page on another origin that posts a form to the farm as soon as it loads."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            from urllib.parse import parse_qs, urlsplit

            q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            body = (
                f'<form id="f" method="post" action="{q.get("target", "")}">'
                f'<input name="csrf" value="{q.get("csrf", "")}"></form>'
                "<script>document.getElementById('f').submit()</script>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return _Evil(HTTPServer(("127.0.0.1", 0), Handler))


def test_times_show_in_the_viewers_zone(web: Web, browser: Browser, trained: Any) -> None:
    context = browser.new_context(viewport=HD, timezone_id="America/Los_Angeles", locale="en-US")
    try:
        page = context.new_page()
        login(page, web, web.rw, "/?name=web-")
        first = page.locator("table.jobs time").first
        iso = first.get_attribute("datetime")
        assert iso and "UTC" not in first.inner_text()
        # The tooltip has the full local date and time, in the viewer's zone (PST or PDT).
        assert re.search(r"P[SD]T", first.get_attribute("title") or ""), first.get_attribute(
            "title"
        )
        # Today's times as a time of day there (or, past midnight there, with the day).
        forms = page.evaluate(
            """iso => { const d = new Date(iso), z = 'America/Los_Angeles';
            return [d.toLocaleTimeString('en-US', {timeZone: z, hour: '2-digit',
                                                   minute: '2-digit', second: '2-digit'}),
                    d.toLocaleString('en-US', {timeZone: z, month: 'short', day: 'numeric',
                                               hour: '2-digit', minute: '2-digit'})]; }""",
            iso,
        )
        assert first.inner_text() in forms, (first.inner_text(), forms)
        page.screenshot(path=str(IMG / "web-jobs.png"))
    finally:
        context.close()


def test_workers_page_drains_and_undrains_a_worker(web: Web, page: Page, trained: Any) -> None:
    web.start_worker()
    login(page, web, web.rw, "/ui/workers")
    row = page.locator('tr[data-worker="web-worker@test"]')
    expect(row).to_be_visible()
    expect(row.locator("td").nth(5)).to_contain_text("s ago")
    page.screenshot(path=str(IMG / "web-workers.png"))
    drain, undrain = re.compile("^Drain "), re.compile("^Undrain ")
    row.get_by_role("button", name=drain).click()
    expect(row.get_by_role("button", name=undrain)).to_be_visible()
    expect(row).to_have_attribute("data-state", re.compile("drain"))
    row.get_by_role("button", name=undrain).click()
    expect(row.get_by_role("button", name=drain)).to_be_visible()


def test_the_keyboard_reaches_every_control_with_visible_focus(web: Web, page: Page) -> None:
    waiting = web.farm.submit(render("web-keys", pool="nowhere", checkpoint="x.safetensors"))
    login(page, web, web.rw, f"/ui/jobs/{waiting}")
    seen = []
    for _ in range(20):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(
            "() => { const e = document.activeElement;"
            " return [e.tagName, e.textContent.trim() || e.getAttribute('aria-label') || '',"
            " getComputedStyle(e).outlineStyle]; }"
        ))  # fmt: skip
    labels = [s[1] for s in seen]
    for wanted in ("Skip to content", "Workers", "Log out", "Pause", "Cancel", "Set priority"):
        assert wanted in labels, (wanted, labels)
    assert all(s[2] != "none" for s in seen if s[0] in ("A", "BUTTON", "INPUT")), seen
    # Every form control has a label (or an aria-label).
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden]), select, button')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')"
        " && !e.textContent.trim()).map(e => e.outerHTML)"
    )
    assert unlabelled == []


def test_pages_fit_a_phone_width(web: Web, browser: Browser, trained: dict[str, Any]) -> None:
    phone = browser.new_context(viewport=PHONE, is_mobile=True)
    try:
        page = phone.new_page()
        login(page, web, web.rw)
        for path in (f"/ui/jobs/{trained['id']}", "/ui/workers", "/?name=web-"):
            page.goto(f"{web.url}{path}")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, (path, overflow)
        page.screenshot(path=str(IMG / "web-jobs-phone.png"))
    finally:
        phone.close()


def test_forms_without_a_session_and_the_live_stream_without_one_are_refused(web: Web) -> None:
    r = httpx.post(f"{web.url}/ui/jobs/1/pause", data={"csrf": "x"},
                   headers={"Origin": web.url})  # fmt: skip
    assert r.status_code == 403
    assert httpx.get(f"{web.url}/ui/live/jobs").status_code == 401
    assert httpx.get(f"{web.url}/ui/artifacts/1/content").status_code == 401
    assert httpx.get(f"{web.url}/ui/static/farm.js").status_code == 200
    assert "/ui/" not in httpx.get(f"{web.url}/openapi.json").text
