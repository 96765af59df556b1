"""The REST API through a real server process (uvicorn) on real PostgreSQL and Redis."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from farm.client import FarmAPIError, FarmClient
from farm.config import Settings
from farm.runtime import child_env
from farm.tokens import create
from farm.webhooks import SIGNATURE_HEADER, verify
from tests.integration.harness import Farm, fresh_database, make_settings

SECRET = "test-webhook-secret"
# `--checks all`, none excluded (use_after_free and object_level_authorization find nothing
# to do: no route deletes, and every token may read every job). One is narrowed, not dropped:
# positive_data_acceptance wants schema-valid data accepted, but a job spec can be
# schema-valid and still name a checkpoint or an `after` job that does not exist, or a frame
# range that ends before it starts: POST /jobs answers those 422 naming the field (documented),
# so POST /jobs alone may answer 422 to schema-valid data (the check's defaults plus 422).
# The stateful phase follows the document's own links (inference off, so its steps go to
# them), in scenarios of up to 20 steps: POST /jobs -> the job -> its verbs -> ...
# Neither the example database nor the crash cache carries over between runs.
SCHEMATHESIS_CONFIG = """
[cache]
enabled = false

[generation]
database = "none"

[phases.stateful]
max-steps = 20
inference.algorithms = []

[[operations]]
include-path = "/jobs"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
]

# since=2026-02-30 matches the schema's pattern but is no date
[[operations]]
include-operation-id = "list_audit"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "422"]
"""
# What the stateful phase must reach through the OpenAPI links, with a job POST /jobs made.
LINKED = ("PATCH /jobs/{job_id}", "POST /jobs/{job_id}/retry", "POST /jobs/{job_id}/resume")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    def __init__(self, url: str, rw: str, ro: str) -> None:
        self.url, self.rw, self.ro = url, rw, ro

    def client(self, token: str | None = "rw") -> FarmClient:
        return FarmClient(self.url, {"rw": self.rw, "ro": self.ro}.get(token or "", token))


def spawn_api(settings: Settings, log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """``farm api`` as a real server process; returns its URL once /health answers."""
    port = _port()
    env = child_env(settings)
    proc = subprocess.Popen(
        [sys.executable, "-m", "farm", "api", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return url, proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("API did not start:\n" + log.read_text(errors="replace"))
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(farm: Farm) -> Iterator[Api]:
    farm.settings = farm.settings.model_copy(update={"webhook_secret": SECRET})
    url, proc = spawn_api(farm.settings, farm.log_dir / "api.log")
    # The sweeper delivers webhooks: restart it knowing the secret.
    for p in [p for p in farm.procs if "sweep" in str(p.args)]:
        farm.stop(p)
        farm.procs.remove(p)
    farm.start_sweeper()
    try:
        yield Api(
            url, create(farm.settings, "pipeline"), create(farm.settings, "viewer", read_only=True)
        )
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def checkpoint(farm: Farm, api: Api) -> str:
    with api.client() as c:
        job = c.submit({"kind": "train", "name": "api-vae", "epochs": 2, "latent_dim": 4})
        assert c.wait(job["id"], timeout_s=240, poll_s=0.3)["state"] == "succeeded"
    return "job:api-vae"


def shot(name: str, **kw: Any) -> dict[str, Any]:
    spec = {"kind": "render", "name": name, "checkpoint": "job:api-vae", "frames": "1-24",
            "chunk_size": 12, "width": 64, "height": 64}  # fmt: skip
    spec.update(kw)
    return spec


def test_every_route_but_health_needs_a_valid_token(api: Api) -> None:
    assert httpx.get(f"{api.url}/health").json() == {"database": "ok", "broker": "ok"}
    for method, path in [("GET", "/jobs"), ("GET", "/jobs/1"), ("POST", "/jobs"),
                         ("POST", "/jobs/1/cancel"), ("GET", "/metrics"),
                         ("GET", "/artifacts/1/content"), ("PATCH", "/jobs/1"),
                         ("GET", "/audit")]:  # fmt: skip
        r = httpx.request(method, f"{api.url}{path}")
        assert r.status_code == 401, (method, path)
        r = httpx.request(method, f"{api.url}{path}", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401, (method, path)


def test_read_only_token_reads_but_cannot_submit_or_control(api: Api, checkpoint: str) -> None:
    with api.client("ro") as ro:
        assert isinstance(ro.list_jobs()["items"], list)
        with pytest.raises(FarmAPIError) as e:
            ro.submit(shot("ro-shot"))
        assert e.value.status == 403
        with pytest.raises(FarmAPIError) as e:
            ro.cancel(1)
        assert e.value.status == 403


def test_submit_records_submitter_and_idempotency_key_makes_retries_safe(
    api: Api, checkpoint: str
) -> None:
    with api.client() as c:
        a = c.submit(shot("idem-shot", tags=["seq01"]), idempotency_key="k-1")
        b = c.submit(shot("idem-shot", tags=["seq01"]), idempotency_key="k-1")
        assert a["id"] == b["id"]
        assert a["submitter"] == "pipeline"
        assert c.wait(a["id"], timeout_s=60, poll_s=0.2)["state"] == "succeeded"
        assert [j["id"] for j in c.list_jobs(tag="seq01")["items"]] == [a["id"]]
        headers = {"Authorization": f"Bearer {api.rw}", "Idempotency-Key": "k-1"}
        r = httpx.post(f"{api.url}/jobs", json=shot("idem-shot", tags=["seq01"]), headers=headers)
        assert r.status_code == 200
        with pytest.raises(FarmAPIError) as e:
            c.submit(shot("other"), idempotency_key="k-1")
        assert e.value.status == 409


def test_invalid_input_answers_4xx_naming_the_field(api: Api, checkpoint: str) -> None:
    with api.client() as c:
        with pytest.raises(FarmAPIError) as e:
            c.submit(shot("bad", frames="9-1", width=0))
        assert e.value.status == 422
        assert {p["field"] for p in e.value.problems} == {"frames", "width"}
        with pytest.raises(FarmAPIError) as e:
            c.submit(shot("bad", checkpoint="job:nope"))
        assert (e.value.status, e.value.problems[0]["field"]) == (422, "checkpoint")
        with pytest.raises(FarmAPIError) as e:
            c.job(10**9)
        assert e.value.status == 404
        r = httpx.get(f"{api.url}/jobs?limit=0", headers={"Authorization": f"Bearer {api.rw}"})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "limit"


def test_list_is_newest_first_and_paginates_without_overlap(api: Api, checkpoint: str) -> None:
    with api.client() as c:
        made = [c.submit(shot(f"page-{i}", tags=["paging"]))["id"] for i in range(5)]
        first = c.list_jobs(tag="paging", limit=2)
        second = c.list_jobs(tag="paging", limit=2, before=first["next_before"])
        third = c.list_jobs(tag="paging", limit=2, before=second["next_before"])
        ids = [j["id"] for page in (first, second, third) for j in page["items"]]
        assert ids == sorted(made, reverse=True)
        assert third["next_before"] is None
        assert all(j["kind"] == "render" for j in c.list_jobs(kind="render", limit=20)["items"])
        assert c.list_jobs(submitter="nobody")["items"] == []
        for j in made:
            c.wait(j, timeout_s=120, poll_s=0.3)


def test_control_verbs_on_a_running_job(api: Api, checkpoint: str) -> None:
    with api.client() as c:
        job = c.submit(shot("controlled", frames="1-600", chunk_size=30, width=128, height=128))
        deadline = time.monotonic() + 60
        while c.job(job["id"])["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        paused = c.pause(job["id"])
        assert paused["paused"] is True
        with pytest.raises(FarmAPIError) as e:
            c.pause(job["id"])
        assert e.value.status == 409
        time.sleep(2)
        held = c.job(job["id"])
        assert sum(1 for t in held["task_list"] if t["state"] == "running") <= 1
        assert c.set_priority(job["id"], 95)["priority"] == 95
        assert c.resume(job["id"])["paused"] is False
        with pytest.raises(FarmAPIError) as e:
            c.retry(job["id"])
        assert e.value.status == 409
        assert c.cancel(job["id"])["state"] == "canceled"
        with pytest.raises(FarmAPIError) as e:
            c.cancel(job["id"])
        assert e.value.status == 409


def test_video_download_answers_range_requests(api: Api, checkpoint: str, tmp_path: Path) -> None:
    with api.client() as c:
        job = c.submit(shot("download-me"))
        c.wait(job["id"], timeout_s=60, poll_s=0.2)
        video = next(a for a in c.artifacts(job["id"]) if a["kind"] == "video")
        whole = c.download(video["id"], tmp_path / "v.mp4").read_bytes()
    assert len(whole) == video["size"]
    headers = {"Authorization": f"Bearer {api.ro}", "Range": "bytes=100-199"}
    r = httpx.get(f"{api.url}{video['download']}", headers=headers)
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-199/{video['size']}"
    assert r.content == whole[100:200]


def test_metrics_report_jobs_tasks_queues_and_frames(api: Api, checkpoint: str) -> None:
    r = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {api.ro}"})
    assert r.status_code == 200
    text = r.text
    for name in ("farm_jobs{", "farm_tasks{", "farm_queue_depth{", "farm_frames_rendered",
                 "farm_task_duration_seconds_bucket", "farm_webhook_deliveries{",
                 'farm_gpu_seconds_total{pool="default",project="default"}',
                 'farm_cpu_seconds_total{pool="default",project="default"}',
                 'farm_attempts_total{outcome="succeeded",project="default"}'):  # fmt: skip
        assert name in text, name
    frames = float(
        next(ln.split()[-1] for ln in text.splitlines() if ln.startswith("farm_frames_rendered "))
    )
    assert frames >= 24


class _Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.got.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_webhooks_are_signed_and_delivered_to_a_real_receiver(api: Api, checkpoint: str) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        with api.client() as c:
            job = c.submit(shot("hooked", webhook={"url": url, "events": ["started", "succeeded"]}))
            c.wait(job["id"], timeout_s=60, poll_s=0.2)
        deadline = time.monotonic() + 30
        while len(_Receiver.got) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.shutdown()
    events = []
    for headers, body in _Receiver.got:
        assert verify(SECRET, body, headers[SIGNATURE_HEADER])
        assert not verify("wrong", body, headers[SIGNATURE_HEADER])
        payload = json.loads(body)
        assert payload["job"]["id"] == job["id"]
        events.append(payload["event"])
    assert events == ["job.started", "job.succeeded"]


def test_high_priority_job_overtakes_a_low_priority_backlog(
    farm: Farm, api: Api, checkpoint: str
) -> None:
    """One worker, a backlog of 16 low-priority chunks, then a high-priority job: the database
    sends the next task as each frees, so the high-priority chunks start within the window."""
    with api.client() as c:
        low = c.submit(
            shot("backlog", frames="1-256", chunk_size=16, width=96, height=96, priority=10)
        )
        deadline = time.monotonic() + 60
        while c.job(low["id"])["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        high = c.submit(shot("urgent", frames="1-32", chunk_size=16, priority=90))
        c.wait(high["id"], timeout_s=120, poll_s=0.2)
        c.wait(low["id"], timeout_s=240, poll_s=0.5)
    with farm.session() as s:
        from sqlalchemy import select

        from farm.models import Event, Task

        starts = s.execute(
            select(Task.job_id, Event.at)
            .join(Event, Event.task_id == Task.id)
            .where(
                Task.job_id.in_([low["id"], high["id"]]),
                Task.kind == "render_chunk",
                Event.to_state == "running",
            )
            .order_by(Event.at)
        ).all()
        submitted_at = s.execute(
            select(Event.at).where(
                Event.job_id == high["id"], Event.task_id.is_(None), Event.message == "submitted"
            )
        ).scalar_one()
    order = [job for job, _ in starts]
    last_high = max(i for i, j in enumerate(order) if j == high["id"])
    # Low chunks that started after the urgent job was recorded and before its last chunk
    # (a loaded box may start several low chunks between the poll that saw the backlog
    # running and the urgent submission; those say nothing about priority).
    low_after = [j for j, at in starts[:last_high] if j == low["id"] and at >= submitted_at]
    # At most: the chunk running at submission, plus the dispatch window sent ahead of it.
    assert len(low_after) <= 1 + farm.settings.dispatch_ahead + 1, order
    assert order.count(low["id"]) == 16


def test_batch_of_50_shots_completes_and_is_not_duplicated(
    farm: Farm, api: Api, checkpoint: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "shots.yaml"
    rows = "\n".join(f"  - {{seq: sq{i // 10:02d}, shot: sh{i:03d}0}}" for i in range(50))
    manifest.write_text(
        "defaults:\n  kind: render\n  checkpoint: job:api-vae\n  frames: 1-8\n  chunk_size: 8\n"
        "  width: 32\n  height: 32\n  name: '{seq}_{shot}'\n  output: 'shots/{seq}/{shot}.mp4'\n"
        "  tags: [batch50]\nshots:\n" + rows + "\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "farm", "batch", str(manifest), *args],
            env=child_env(farm.settings), capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "50 rows valid" in dry.stdout
    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "50 succeeded, 0 failed" in done.stdout
    assert (farm.settings.output_root_abs() / "shots" / "sq04" / "sh0490.mp4").is_file()
    again = run("--no-wait")
    assert again.returncode == 0, again.stderr
    with api.client() as c:
        jobs = c.list_jobs(tag="batch50", limit=500)["items"]
    assert len(jobs) == 50


def test_batch_with_an_invalid_row_is_refused_whole(farm: Farm, api: Api, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.csv"
    manifest.write_text(
        "name,kind,checkpoint,frames,width\n"
        "ok1,render,job:api-vae,1-8,64\n"
        "bad2,render,job:api-vae,8-1,64\n"
        "bad3,render,job:api-vae,1-8,63\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "farm", "batch", str(manifest)],
        env=child_env(farm.settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2
    assert "frames" in res.stderr and "width" in res.stderr and "bad3" in res.stderr
    with api.client() as c:
        assert c.list_jobs(name="ok1")["items"] == []


@pytest.fixture(scope="module")
def fuzz_api(servers: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """An API on its own database and broker index with no workers: fuzzed jobs (a million
    frames at 4096x4096, say) are recorded and refused or queued, never run on the shared farm."""
    root = tmp_path_factory.mktemp("fuzz")
    broker = servers[1].rsplit("/", 1)[0] + "/0"
    redis.Redis.from_url(broker).flushdb()
    with fresh_database(servers[0]) as db:
        settings = make_settings(db, broker, root)
        ckpt = settings.output_root_abs() / "fuzz.safetensors"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_bytes(b"not a real checkpoint: nothing runs here")
        url, proc = spawn_api(settings, root / "api.log")
        try:
            yield Api(
                url, create(settings, "fuzzer", admin=True), create(settings, "ro", read_only=True)
            )
        finally:
            proc.terminate()
            proc.wait(10)
            redis.Redis.from_url(broker).flushdb()


def linked_calls(ndjson: Path) -> dict[str, dict[str, set[int]]]:
    """From schemathesis' NDJSON event stream: per operation of the stateful phase, the job
    ids it was called with through an explicit OpenAPI link (not one schemathesis inferred),
    by the operation whose answer the link read."""
    calls: dict[str, dict[str, set[int]]] = {}
    for line in ndjson.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished or finished["phase"] != "stateful":
            continue
        for case in finished["recorder"].get("cases", {}).values():
            link = case.get("transition")
            if not link or link["is_inferred"]:
                continue
            job_id = link["parameters"].get("path_parameters", {}).get("job_id", {}).get("value")
            if isinstance(job_id, int):
                target = f"{case['value']['method']} {case['value']['path']}"
                source = link["id"].split(" -> ")[0]
                calls.setdefault(target, {}).setdefault(source, set()).add(job_id)
    return calls


@pytest.mark.one_pass
def test_schemathesis_finds_no_server_error(fuzz_api: Api, tmp_path: Path) -> None:
    """Every check, every phase, the stateful one following the document's links."""
    api = fuzz_api
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    started = time.monotonic()
    res = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
            "run", f"{api.url}/openapi.json",
            "--header", f"Authorization: Bearer {api.rw}",
            "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", "30", "--seed", "1", "--workers", "1",
            "--report", "ndjson", "--report-ndjson-path", str(tmp_path / "events.ndjson"),
        ],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    print(res.stdout[-4000:], f"\n{time.monotonic() - started:.0f} s")
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    calls = linked_calls(tmp_path / "events.ndjson")
    assert any(src == "POST /jobs" for by in calls.values() for src in by), calls
    headers = {"Authorization": f"Bearer {api.ro}"}
    for target in LINKED:
        ids = set().union(*calls.get(target, {}).values())
        assert ids, f"the stateful phase never reached {target} through a link: {calls}"
        # Only POST /jobs makes jobs in this database: an id that names one came from it.
        for job_id in ids:
            assert httpx.get(f"{api.url}/jobs/{job_id}", headers=headers).status_code == 200


def test_cli_drives_a_remote_farm_through_the_api(
    farm: Farm, api: Api, checkpoint: str, tmp_path: Path
) -> None:
    spec = tmp_path / "remote.yaml"
    spec.write_text(
        "kind: render\nname: remote-shot\ncheckpoint: job:api-vae\nframes: 1-12\n"
        "chunk_size: 6\nwidth: 64\nheight: 64\n"
    )
    # No database or broker settings at all: only the API's address and a token.
    env = {k: v for k, v in child_env(farm.settings).items() if not k.startswith("FARM_")}
    env.update(FARM_API_URL=api.url, FARM_API_TOKEN=api.rw, FARM_DATA_DIR=str(tmp_path / "d"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "farm", *args], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    done = cli("submit", str(spec), "--wait")
    assert done.returncode == 0, done.stderr
    job_id = int(done.stdout.split()[0])
    status = cli("status", "remote-shot", "--json")
    assert json.loads(status.stdout)["id"] == job_id
    assert json.loads(status.stdout)["submitter"] == "pipeline"
    refused = cli("cancel", str(job_id))
    assert refused.returncode == 4 and "cannot cancel" in refused.stderr
    assert not (tmp_path / "d").exists()  # no embedded servers were started


def test_pooled_job_runs_only_on_its_pool_and_waits_for_several_jobs(
    farm: Farm, api: Api, checkpoint: str
) -> None:
    with api.client() as c:
        a = c.submit(shot("dep-a"))
        b = c.submit(shot("dep-b"))
        pooled = c.submit(shot("pooled", pool="a100", after=["dep-a", "dep-b"]))
        c.wait(a["id"], timeout_s=60, poll_s=0.2)
        c.wait(b["id"], timeout_s=60, poll_s=0.2)
        time.sleep(2)  # the default worker does not consume gpu.a100
        assert c.job(pooled["id"])["state"] == "queued"
        worker = farm.start_worker(queues="gpu.a100,cpu")
        try:
            done = c.wait(pooled["id"], timeout_s=120, poll_s=0.3)
        finally:
            farm.stop(worker)
    assert done["state"] == "succeeded"
    chunk_workers = {t["worker"] for t in done["task_list"] if t["kind"] == "render_chunk"}
    assert len(chunk_workers) == 1


def test_flower_refuses_to_start_without_credentials(farm: Farm) -> None:
    env = {k: v for k, v in child_env(farm.settings).items() if k != "FARM_FLOWER_BASIC_AUTH"}
    res = subprocess.run([sys.executable, "-m", "farm", "flower"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode != 0
    assert "FARM_FLOWER_BASIC_AUTH" in res.stderr


def test_flower_switches_task_events_on_and_lists_farm_tasks_by_name(farm: Farm) -> None:
    """Workers send no task events unless someone watches (``FARM_TASK_EVENTS`` is off); a
    running Flower turns them on, and its task list names each task by its job."""
    assert not farm.settings.task_events
    port, auth = _port(), ("ops", "flower-test-secret")
    env = {**child_env(farm.settings), "FARM_FLOWER_BASIC_AUTH": ":".join(auth)}
    log = farm.log_dir / "flower.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "farm", "flower", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{url}/api/workers", auth=auth, timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        farm.wait_until(up, 60, "Flower answering")
        assert httpx.get(f"{url}/api/tasks", timeout=5).status_code == 401
        # Flower enables events every few seconds; jobs submitted before that go unseen, so
        # submit until one shows up in its task list under its job's name.
        seen: list[str] = []
        deadline = time.monotonic() + 120
        n = 0
        while not seen and time.monotonic() < deadline:
            n += 1
            job = farm.submit({"kind": "train", "name": f"flower-watched-{n}", "epochs": 1})
            assert farm.wait(job, timeout_s=120)["state"] == "succeeded", farm.logs()
            tasks = httpx.get(f"{url}/api/tasks", auth=auth, timeout=5).json()
            seen = [t["name"] for t in tasks.values() if "flower-watched" in (t["name"] or "")]
        assert seen, log.read_text(errors="replace")[-2000:]
        assert any(name.startswith("train flower-watched-") for name in seen), seen
    finally:
        proc.terminate()
        proc.wait(timeout=30)
