"""Retention with a real worker: ``farm purge --dry-run`` changes nothing; the real purge
deletes old finished jobs' rows and files, keeps queued work and the checkpoints live jobs
still need (by ``job:`` and by path), and leaves the bill (``farm usage``, the Prometheus
counters) exactly as it was; the sweeper applies ``FARM_RETENTION_DAYS``. A canceled
attempt is accounted up to when its worker stopped, not to the cancel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from farm.cli import app
from farm.control import cancel
from farm.metrics import render
from farm.models import Artifact, Attempt, AuditLog, Event, Job, Task, TaskLog
from farm.runtime import child_env
from farm.sweeper import sweep_once
from farm.usage import usage
from tests.integration.harness import Farm, make_settings

# A few sprites of our own, one epoch: a real checkpoint in a second or two.
TRAIN = {"kind": "train", "dataset": "images:sprites", "image_size": 8, "epochs": 1,
         "latent_dim": 2}  # fmt: skip


@pytest.fixture(scope="module")
def farm(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    from PIL import Image

    root = tmp_path_factory.mktemp("retention")
    f = Farm(make_settings(database_url, broker_url, root), root)
    sprites = f.settings.output_root_abs() / "sprites"
    sprites.mkdir(parents=True)
    for i in range(8):
        Image.new("L", (8, 8), 30 * i).save(sprites / f"s{i}.png")
    f.start_worker()
    try:
        yield f
    finally:
        f.close()


def _render(name: str, checkpoint: str, **kw: object) -> dict[str, object]:
    return {"kind": "render", "name": name, "checkpoint": checkpoint, "frames": "1-4",
            "chunk_size": 4, "width": 32, "height": 32, "fps": 24,
            "keyframes": ["seed:1", "seed:2"], **kw}  # fmt: skip


def _cli(farm: Farm, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=child_env(farm.settings))


def _counts(farm: Farm) -> dict[str, int]:
    with farm.session() as s:
        return {
            t: int(s.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("jobs", "tasks", "events", "artifacts", "task_logs", "attempts")
        }


def _bill(farm: Farm) -> dict[str, Any]:
    with farm.session() as s:
        bill: dict[str, Any] = {by: usage(s, by) for by in ("project", "submitter", "pool", "job")}
    metrics = render(farm.settings, farm.celery)[0].decode()
    bill["counters"] = sorted(
        line for line in metrics.splitlines()
        if re.match(r"farm_(gpu_seconds|cpu_seconds|attempts)_total\{", line)
    )  # fmt: skip
    return bill


def _files(farm: Farm, job_id: int) -> list[Path]:
    with farm.session() as s:
        return [Path(p) for p in s.execute(select(Artifact.path).where(Artifact.job_id == job_id))
                .scalars()]  # fmt: skip


def test_purge_deletes_old_finished_work_and_keeps_what_is_needed_and_the_bill(
    farm: Farm,
) -> None:
    gone_model = farm.submit({**TRAIN, "name": "ret-model", "project": "ret-a"})
    kept_model = farm.submit({**TRAIN, "name": "ret-keep"})
    path_model = farm.submit({**TRAIN, "name": "ret-path"})
    for job in (gone_model, kept_model, path_model):
        assert farm.wait(job, 240)["state"] == "succeeded", farm.logs()
    shot = farm.submit(_render("ret-shot", "job:ret-model", project="ret-a"))
    assert farm.wait(shot, 120)["state"] == "succeeded", farm.logs()
    long = farm.submit(_render("ret-cancel", "job:ret-model", frames="1-20000",
                               chunk_size=20000, width=128, height=128))  # fmt: skip
    farm.wait_until(lambda: farm.detail(long)["tasks"].get("running", 0) >= 1, 60, "running")
    cancel(farm.settings, str(long))
    with farm.session() as s:
        task_id = s.execute(
            select(Task.id).where(Task.job_id == long, Task.kind == "render_chunk")
        ).scalar_one()
        canceled_at = s.execute(
            select(Event.at).where(Event.task_id == task_id, Event.to_state == "canceled")
        ).scalar_one()

    def stopped() -> Attempt | None:
        with farm.session() as s:
            a = s.execute(select(Attempt).where(Attempt.task_id == task_id)).scalar_one()
            s.expunge(a)
            return a if a.ended_at > canceled_at else None

    canceled = farm.wait_until(stopped, 30, "the canceled attempt's worker to stop")
    assert canceled.outcome == "canceled" and canceled.device == "cpu"
    assert canceled.submitter == "cli" and canceled.pool is None

    # No worker from here on: what is submitted stays queued.
    for proc in list(farm.procs):
        farm.stop(proc)
    waiting = farm.submit(_render("ret-waits", "job:ret-keep"))
    with farm.session() as s:
        path_ckpt = s.execute(
            select(Artifact.path).where(
                Artifact.job_id == path_model, Artifact.kind == "checkpoint"
            )
        ).scalar_one()
    by_path = farm.submit(_render("ret-by-path", path_ckpt))
    doomed = (gone_model, shot, long)
    files = [f for j in doomed for f in _files(farm, j)]
    assert files and all(f.exists() for f in files)
    sidecar = next(f for f in files if f.suffix == ".safetensors").with_suffix(".json")
    assert sidecar.exists()
    with farm.session() as s:
        s.execute(text("UPDATE jobs SET finished_at = finished_at - interval '40 days'"))
    before, counts = _bill(farm), _counts(farm)
    assert any('outcome="canceled"' in c for c in before["counters"])

    for bad, why in (("0d", "not a positive age"), ("-3d", "not a positive age"),
                     ("soon", "neither an age"), ("2999-01-01", "not in the past")):  # fmt: skip
        r = _cli(farm, "purge", "--finished-before", bad)
        assert r.exit_code == 2, r.output
        assert "--finished-before" in r.output and why in r.output, r.output

    r = _cli(farm, "purge", "--finished-before", "30d", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    dry = json.loads(r.output)
    assert dry["dry_run"] and dry["jobs"] == 3 and dry["protected"] == 2
    assert dry["artifacts"] == len(files)
    assert _counts(farm) == counts and all(f.exists() for f in files)

    # Two jobs a transaction: the batches step over the kept ones between those that go.
    r = _cli(farm, "purge", "--finished-before", "30d", "--batch", "2", "--json")
    assert r.exit_code == 0, r.output
    done = json.loads(r.output)
    assert (done["jobs"], done["tasks"], done["artifacts"]) == (3, dry["tasks"], len(files))
    assert done["events"] == dry["events"] and done["task_logs"] == dry["task_logs"] > 0
    assert done["protected"] == 2 and done["batches"] == 3
    with farm.session() as s:
        left = set(s.execute(select(Job.id)).scalars())
        assert left == {kept_model, path_model, waiting, by_path}
        for model in (Task, Event, Artifact):
            assert not s.execute(select(model.id).where(model.job_id.in_(doomed))).first()
        assert s.execute(select(func.count()).select_from(TaskLog)).scalar_one() == (
            counts["task_logs"] - dry["task_logs"]
        )
    assert not any(f.exists() for f in files) and not sidecar.exists()
    assert all(f.exists() for j in (kept_model, path_model) for f in _files(farm, j))
    assert _bill(farm) == before
    assert _counts(farm)["attempts"] == counts["attempts"]
    with farm.session() as s:  # one audit row per batch that deleted, in its transaction
        purged = s.execute(select(AuditLog).where(AuditLog.action == "purge")).scalars().all()
        assert sum(row.detail["jobs"] for row in purged) == 3 and len(purged) <= 3
        assert all(row.actor.startswith("cli") for row in purged)

    # The sweeper's retention: the render that named ret-path's checkpoint ends long ago,
    # so the checkpoint goes with it; ret-keep stays while ret-waits waits for it.
    cancel(farm.settings, str(by_path))
    with farm.session() as s:
        s.execute(
            text("UPDATE jobs SET finished_at = finished_at - interval '40 days' WHERE id = :j"),
            {"j": by_path},
        )
    kept_files = _files(farm, path_model)
    sweep_once(farm.settings.model_copy(update={"retention_days": 30.0}), farm.celery)
    with farm.session() as s:
        assert set(s.execute(select(Job.id)).scalars()) == {kept_model, waiting}
    assert not any(f.exists() for f in kept_files)
    assert all(f.exists() for f in _files(farm, kept_model))
    assert _bill(farm) == before
