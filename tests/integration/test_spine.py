"""The spine end to end: CLI/submit -> PostgreSQL -> Redis -> Celery worker -> ffmpeg -> video."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from farm.models import Artifact, Event, Job, Task
from farm.runtime import child_env
from tests.integration.harness import Farm
from workers.checkpoint import sha256_file
from workers.encode import count_frames, ffmpeg_binary, probe_video

TRAIN = {"kind": "train", "epochs": 2, "latent_dim": 4, "batch_size": 128}


@pytest.fixture(scope="module")
def trained(farm: Farm) -> int:
    job_id = farm.submit({**TRAIN, "name": "vae-small"})
    row = farm.wait(job_id, timeout_s=240)
    assert row["state"] == "succeeded", farm.logs()
    return job_id


def render(name: str, **kw: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "kind": "render",
        "name": name,
        "checkpoint": "job:vae-small",
        "frames": "1-60",
        "chunk_size": 16,
        "width": 64,
        "height": 64,
        "fps": 24,
        "keyframes": [0, 3, 8],
    }
    spec.update(kw)
    return spec


def test_render_waits_for_its_train_job_and_produces_exact_video(farm: Farm) -> None:
    train_id = farm.submit({**TRAIN, "name": "vae-chain"})
    render_id = farm.submit(
        render("chain", checkpoint="job:vae-chain", frames="1001-1049x2", chunk_size=7)
    )
    row = farm.wait(render_id, timeout_s=240)
    assert row["state"] == "succeeded", farm.logs()
    detail = farm.detail(render_id)
    video = next(a for a in detail["artifacts"] if a["kind"] == "video")
    path = Path(video["path"])
    frames, secs = count_frames(path, ffmpeg=ffmpeg_binary())
    assert frames == 25
    assert secs == pytest.approx(25 / 24, abs=1 / 24)
    info = probe_video(path, ffmpeg=ffmpeg_binary())
    assert (info["width"], info["height"]) == (64, 64)
    assert video["sha256"] == sha256_file(path)
    assert video["size"] == path.stat().st_size
    # Segments are gone after assembly; the chunk plan is 7+7+7+4 frames, then assemble.
    assert not (farm.settings.output_root_abs() / ".segments" / f"job-{render_id}").exists()
    assert [t["frames"] for t in detail["task_list"]] == [
        "1001-1013x2", "1015-1027x2", "1029-1041x2", "1043-1049x2", "1001-1049x2",
    ]  # fmt: skip
    with farm.session() as s:
        train_done = s.execute(
            select(func.max(Event.at)).where(
                Event.job_id == train_id, Event.to_state == "succeeded"
            )
        ).scalar_one()
        first_chunk = s.execute(
            select(func.min(Event.at)).where(Event.job_id == render_id, Event.to_state == "running")
        ).scalar_one()
        checkpoint = s.execute(
            select(Artifact).where(Artifact.job_id == train_id, Artifact.kind == "checkpoint")
        ).scalar_one()
    assert first_chunk > train_done
    assert checkpoint.sha256 == sha256_file(Path(checkpoint.path))


def test_every_transition_is_an_event_with_worker_and_attempt(farm: Farm, trained: int) -> None:
    job_id = farm.submit(render("events", frames="1-20", chunk_size=10))
    assert farm.wait(job_id)["state"] == "succeeded", farm.logs()
    with farm.session() as s:
        tasks = s.execute(select(Task).where(Task.job_id == job_id)).scalars().all()
        assert len(tasks) == 3
        for t in tasks:
            trail = s.execute(
                select(Event.from_state, Event.to_state, Event.worker, Event.attempt)
                .where(Event.task_id == t.id)
                .order_by(Event.id)
            ).all()
            assert [(a, b) for a, b, _, _ in trail] == [
                ("queued", "running"),
                ("running", "succeeded"),
            ]
            assert all(w for _, _, w, _ in trail)
            assert [n for _, _, _, n in trail] == [1, 1]
        job_events = (
            s.execute(
                select(Event.to_state)
                .where(Event.job_id == job_id, Event.task_id.is_(None))
                .order_by(Event.id)
            )
            .scalars()
            .all()
        )
    assert job_events == ["queued", "running", "succeeded"]


def test_same_idempotency_key_creates_one_job(farm: Farm, trained: int) -> None:
    spec = render("idem", frames="1-8", chunk_size=8)
    first = farm.submit(spec, idempotency_key="shot-42")
    second = farm.submit(spec, idempotency_key="shot-42")
    assert first == second
    with farm.session() as s:
        assert (
            s.execute(select(func.count()).where(Job.idempotency_key == "shot-42")).scalar_one()
            == 1
        )
    assert farm.wait(first)["state"] == "succeeded"


def test_duplicate_delivery_is_dropped_by_the_claim(farm: Farm, trained: int) -> None:
    job_id = farm.submit(render("dup", frames="1-12", chunk_size=12))
    with farm.session() as s:
        chunk_id = s.execute(
            select(Task.id).where(Task.job_id == job_id, Task.kind == "render_chunk")
        ).scalar_one()
    for _ in range(3):
        farm.celery.send_task("farm.render_chunk", args=[chunk_id], queue="gpu")
    assert farm.wait(job_id)["state"] == "succeeded"
    farm.wait_until(lambda: farm.redis.llen("gpu") == 0, what="duplicates drained")
    with farm.session() as s:
        runs = s.execute(
            select(func.count()).where(Event.task_id == chunk_id, Event.to_state == "running")
        ).scalar_one()
        attempts = s.get(Task, chunk_id).attempts  # type: ignore[union-attr]
    assert (runs, attempts) == (1, 1)


def test_corrupt_checkpoint_fails_at_once_and_worker_survives(farm: Farm, trained: int) -> None:
    bad = farm.settings.output_root_abs() / "broken.safetensors"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"\x00garbage" * 100)
    job_id = farm.submit(render("corrupt", checkpoint="broken.safetensors", max_attempts=2))
    row = farm.wait(job_id)
    assert row["state"] == "failed"
    with farm.session() as s:
        errors = s.execute(
            select(Event.attempt, Event.to_state, Event.message)
            .join(Task, Task.id == Event.task_id)
            .where(Event.job_id == job_id, Task.index == 0, Event.from_state == "running")
            .order_by(Event.id)
        ).all()
    # A corrupt checkpoint is a permanent failure: no retry could read other bytes.
    assert [(a, st) for a, st, _ in errors] == [(1, "failed")]
    assert all("CheckpointError" in (m or "") for _, _, m in errors)
    assert "CheckpointError" in (row["error"] or "")
    # The same worker still renders.
    ok = farm.submit(render("after-corrupt", frames="1-4", chunk_size=4))
    assert farm.wait(ok)["state"] == "succeeded"
    # The input was at fault, not the worker: it is not blocked from the job, so the job's
    # other chunks ran (and failed) too instead of bouncing off a blocked worker; the
    # assembly waits, unsent, for a retry.
    assert farm.detail(job_id)["worker_failures"] == []

    def settled() -> bool:
        tasks = farm.detail(job_id)["task_list"]
        chunks = [t["state"] for t in tasks if t["kind"] == "render_chunk"]
        return chunks == ["failed"] * len(chunks)

    farm.wait_until(settled, 60, "every chunk of the corrupt job ended")


def test_failed_dependency_fails_the_render_with_its_reason(farm: Farm) -> None:
    blocker = farm.settings.output_root_abs() / "checkpoints" / "doomed.safetensors"
    blocker.mkdir(parents=True)
    train_id = farm.submit({**TRAIN, "name": "doomed", "max_attempts": 1})
    render_id = farm.submit(render("orphan", checkpoint="job:doomed"))
    assert farm.wait(train_id)["state"] == "failed"
    row = farm.wait(render_id, timeout_s=30)
    assert row["state"] == "failed"
    assert f"dependency job {train_id} (doomed) failed" in (row["error"] or "")
    # Retry re-runs only the failed task, and the render then follows.
    blocker.rmdir()
    from farm.control import retry
    from farm.dispatch import dispatch_ready

    assert retry(farm.settings, str(train_id)) == (train_id, 1)
    dispatch_ready(farm.settings, farm.celery)
    assert farm.wait(train_id, timeout_s=240)["state"] == "succeeded"
    assert retry(farm.settings, str(render_id))[1] == 5
    dispatch_ready(farm.settings, farm.celery)
    assert farm.wait(render_id)["state"] == "succeeded"


def test_cancel_stops_queued_and_running_tasks(farm: Farm, trained: int) -> None:
    from farm.control import cancel

    job_id = farm.submit(
        render("cancel-me", frames="1-4000", chunk_size=400, width=256, height=256)
    )
    farm.wait_until(
        lambda: farm.detail(job_id)["tasks"].get("running", 0) >= 1, what="a running chunk"
    )
    cancel(farm.settings, str(job_id))
    row = farm.wait(job_id, timeout_s=5)
    assert row["state"] == "canceled"
    # The worker notices at its next heartbeat and takes new work.
    ok = farm.submit(render("after-cancel", frames="1-4", chunk_size=4))
    assert farm.wait(ok, timeout_s=60)["state"] == "succeeded"
    assert not (farm.settings.output_root_abs() / "renders" / "cancel-me.mp4").exists()


def _cli(farm: Farm, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "farm", *args],
        env=child_env(farm.settings),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_submit_wait_and_status_json(farm: Farm, trained: int, tmp_path: Path) -> None:
    spec = tmp_path / "shot.yaml"
    spec.write_text(
        "kind: render\nname: cli-shot\ncheckpoint: job:vae-small\nframes: 1-30\n"
        "chunk_size: 10\nwidth: 64\nheight: 64\n"
    )
    done = _cli(farm, "submit", str(spec), "--wait")
    assert done.returncode == 0, done.stderr
    job_id = int(done.stdout.strip().splitlines()[0])
    status = _cli(farm, "status", str(job_id), "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["state"] == "succeeded"
    assert [a["kind"] for a in data["artifacts"]] == ["video", "poster", "contact_sheet"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("kind: paint\n", "kind"),
        ("kind: render\ncheckpoint: job:vae-small\nframes: 1-x\n", "frames"),
        ("kind: render\ncheckpoint: job:vae-small\nframes: 1-9\nwidth: 0\n", "width"),
        ("kind: render\ncheckpoint: job:vae-small\nframes: 1-9\nheight: -64\n", "height"),
        ("kind: render\ncheckpoint: job:no-such-job\nframes: 1-9\n", "checkpoint"),
        (
            "kind: render\ncheckpoint: job:vae-small\nframes: 1-9\noutput: ../../etc/x.mp4\n",
            "output",
        ),
        ("kind: train\nepochs: 3\ncolour: red\n", "colour"),
    ],
)
def test_bad_spec_is_refused_with_exit_2_and_nothing_written(
    farm: Farm, trained: int, tmp_path: Path, body: str, field: str
) -> None:
    with farm.session() as s:
        jobs_before = s.execute(select(func.count()).select_from(Job)).scalar_one()
    depth_before = farm.redis.llen("gpu") + farm.redis.llen("cpu")
    spec = tmp_path / "bad.yaml"
    spec.write_text(body)
    res = _cli(farm, "submit", str(spec))
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"{field}:" in res.stderr
    with farm.session() as s:
        assert s.execute(select(func.count()).select_from(Job)).scalar_one() == jobs_before
    assert farm.redis.llen("gpu") + farm.redis.llen("cpu") == depth_before


def test_pickled_message_is_refused_and_worker_survives(farm: Farm, trained: int) -> None:
    import pickle

    from kombu import Connection

    with Connection(farm.settings.broker_url) as conn:
        producer = conn.Producer(serializer="pickle")
        producer.publish(
            pickle.dumps(((1,), {}, {})),
            routing_key="gpu",
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers={"task": "farm.render_chunk", "id": "evil-1", "lang": "py"},
        )
    ok = farm.submit(render("after-pickle", frames="1-4", chunk_size=4))
    assert farm.wait(ok, timeout_s=60)["state"] == "succeeded"
    logs = farm.logs()
    assert "untrusted content of type pickle" in logs or "ContentDisallowed" in logs, logs
    with farm.session() as s:
        assert s.get(Task, 1).attempts <= 1  # type: ignore[union-attr]


def test_a_relaxed_commit_is_for_its_own_transaction_only(farm: Farm) -> None:
    """The worker's hot writes commit without waiting on fsync; the pooled connection goes
    back synchronous, so the next transaction on it (a job's success, say) is durable."""
    from sqlalchemy import text

    from farm.db import relax_commit

    with farm.session() as s:
        relax_commit(s)
        assert s.execute(text("SHOW synchronous_commit")).scalar() == "off"
    for _ in range(3):
        with farm.session() as s:
            assert s.execute(text("SHOW synchronous_commit")).scalar() == "on"
