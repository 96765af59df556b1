"""Batches recorded in one transaction, and API tokens that do not write on every request.

Real PostgreSQL, no workers: these jobs are only recorded (and, through ``farm batch``, the
first of their tasks sent to this module's Redis index, where nothing consumes them).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from farm.config import Settings
from farm.db import get_engine, session_scope
from farm.errors import SpecError
from farm.models import ApiToken, Job, JobDependency, Task
from farm.resolve import fingerprint
from farm.runtime import child_env
from farm.specs import parse_spec
from farm.submit import (
    Submission,
    SubmissionsRejected,
    Submitted,
    record,
    submit,
    submit_many,
)
from farm.tokens import authenticate, create
from tests.integration.harness import make_settings

CKPT = "ckpt/batch.safetensors"


@pytest.fixture(scope="module")
def settings(database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("batch")
    s = make_settings(database_url, broker_url, root)
    ckpt = s.output_root_abs() / CKPT
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"placeholder: these jobs are recorded, never run")
    yield s
    redis.Redis.from_url(broker_url).flushdb()


def shot(name: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "render", "name": name, "checkpoint": CKPT, "frames": "1-20",
            "chunk_size": 5, **kw}  # fmt: skip


def subs(*specs: dict[str, Any], key: str | None = None) -> list[Submission]:
    return [Submission(parse_spec(s), f"{key}-{s['name']}" if key else None) for s in specs]


def manifest(path: Path, tag: str, rows: int, **row: Any) -> Path:
    extra = "".join(f", {k}: {v}" for k, v in row.items())
    shots = "\n".join(f"  - {{shot: sh{i:03d}{extra}}}" for i in range(rows))
    path.write_text(
        f"defaults: {{kind: render, checkpoint: {CKPT}, frames: 1-8, chunk_size: 4,"
        f" name: '{tag}_{{shot}}', output: '{tag}/{{shot}}.mp4', tags: [{tag}]}}\n"
        f"shots:\n{shots}\n"
    )
    return path


def farm_batch(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "farm", "batch", *args, "--no-wait"],
        env={**child_env(settings), "COLUMNS": "200"}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def tagged(settings: Settings, tag: str) -> list[Job]:
    with session_scope(settings) as s:
        return list(
            s.execute(select(Job).where(Job.tags.contains([tag])).order_by(Job.id)).scalars()
        )


def count(settings: Settings, model: Any, *where: Any) -> int:
    with session_scope(settings) as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def test_a_50_row_batch_is_recorded_in_one_transaction_and_resubmitting_it_adds_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    path = manifest(tmp_path / "shots.yaml", "one", 50)
    done = farm_batch(settings, str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "submitted 50 jobs (50 new)" in done.stdout
    jobs = tagged(settings, "one")
    ids = [j.id for j in jobs]
    assert len(ids) == 50
    with session_scope(settings) as s:
        # xmin is the transaction that wrote the row: one for every job, task and event
        # (less the tasks the dispatch pass after it marked sent).
        xids = s.execute(
            text(
                "SELECT xmin::text FROM jobs WHERE id = ANY(:ids) UNION"
                " SELECT xmin::text FROM tasks WHERE job_id = ANY(:ids) AND sent_at IS NULL UNION"
                " SELECT xmin::text FROM events WHERE job_id = ANY(:ids)"
            ),
            {"ids": ids},
        ).all()
        assert len(xids) == 1
        assert s.execute(select(func.count()).where(Task.job_id.in_(ids))).scalar_one() == 150
    assert len({j.created_at for j in jobs}) == 1
    assert all(j.tasks_queued == 3 for j in jobs)

    again = farm_batch(settings, str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "submitted 50 jobs (0 new)" in again.stdout
    assert [j.id for j in tagged(settings, "one")] == ids
    assert count(settings, Task, Task.job_id.in_(ids)) == 150


def test_a_row_whose_checkpoint_does_not_exist_is_named_and_nothing_is_written(
    settings: Settings, tmp_path: Path
) -> None:
    path = manifest(tmp_path / "bad.yaml", "bad", 5)
    text_ = path.read_text().replace(
        "  - {shot: sh003}", "  - {shot: sh003, checkpoint: missing/gone.safetensors}"
    )
    path.write_text(text_)
    res = farm_batch(settings, str(path))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "1 invalid row(s); nothing submitted" in res.stderr
    assert "sh003" in res.stderr and "gone.safetensors" in res.stderr
    assert tagged(settings, "bad") == []

    skipped = farm_batch(settings, str(path), "--skip-invalid")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert sorted(j.name for j in tagged(settings, "bad")) == [
        "bad_sh000", "bad_sh001", "bad_sh002", "bad_sh004",
    ]  # fmt: skip


def test_submit_many_names_every_bad_row_and_records_none(settings: Settings) -> None:
    batch = subs(
        shot("rej-a"),
        shot("rej-b", checkpoint="job:no-such-train"),
        shot("rej-c", after=["rej-a"]),
        shot("rej-d", checkpoint="nowhere.safetensors"),
    )
    with pytest.raises(SubmissionsRejected) as e:
        submit_many(settings, None, batch)
    assert sorted(e.value.problems) == [1, 3]
    assert e.value.problems[1] == [("checkpoint", "unknown checkpoint: no job 'no-such-train'")]
    assert "#2 (rej-b): checkpoint" in str(e.value) and "#4 (rej-d)" in str(e.value)
    assert count(settings, Job, Job.name.like("rej-%")) == 0


def test_a_row_after_an_earlier_row_of_the_batch_waits_for_it(settings: Settings) -> None:
    made = submit_many(
        settings,
        None,
        subs(
            {"kind": "train", "name": "dep-model", "epochs": 1},
            shot("dep-first"),
            shot("dep-second", after=["dep-first"]),
            shot("dep-on-model", checkpoint="job:dep-model", after=["dep-first"]),
        ),
    )
    model, first, second, on_model = (m.job_id for m in made)
    assert all(m.created for m in made)
    with session_scope(settings) as s:
        links = set(s.execute(select(JobDependency.job_id, JobDependency.depends_on_id)).all())
        assert {(second, first), (on_model, model), (on_model, first)} <= links
        ready = dict(
            s.execute(
                select(Task.job_id, func.bool_or(Task.ready))
                .where(Task.job_id.in_([model, first, second, on_model]))
                .group_by(Task.job_id)
            ).all()
        )
    assert ready == {model: True, first: True, second: False, on_model: False}


def test_idempotency_keys_are_kept_row_by_row(settings: Settings) -> None:
    first = submit_many(settings, None, subs(shot("key-a"), shot("key-b"), key="k"))
    # The same rows again, one new one, and a repeated key within the batch.
    again = submit_many(
        settings, None, [*subs(shot("key-a"), shot("key-b"), shot("key-c"), key="k"),
                         *subs(shot("key-c"), key="k")],
    )  # fmt: skip
    assert [(m.job_id, m.created) for m in again[:2]] == [(m.job_id, False) for m in first]
    assert again[2].created and again[3] == Submitted(again[2].job_id, "key-c", created=False)
    assert count(settings, Job, Job.name.like("key-%")) == 3

    changed = Submission(parse_spec(shot("key-a", frames="1-30")), "k-key-a")
    with pytest.raises(SubmissionsRejected) as e:
        submit_many(settings, None, [*subs(shot("key-d"), key="k"), changed])
    assert list(e.value.problems) == [1]
    assert "different spec" in e.value.problems[1][0][1]
    assert count(settings, Job, Job.name == "key-d") == 0


def test_a_key_committed_meanwhile_by_another_submission_is_returned_not_duplicated(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="farm.submit")
    batch = subs(shot("race-a"), shot("race-b"), key="race")
    other = Session(get_engine(settings))
    theirs = record(other, settings, batch[:1], submitter="other")  # not committed yet
    result: list[list[Submitted]] = []
    worker = threading.Thread(target=lambda: result.append(submit_many(settings, None, batch)))
    worker.start()
    # The batch's insert waits on the uncommitted key, then fails once it is committed, and
    # the batch is recorded again, finding that job.
    try:
        with session_scope(settings) as s:
            for _ in range(100):
                waiting = s.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
                if waiting:
                    break
                time.sleep(0.05)
                s.rollback()
        assert waiting, "the batch never waited on the other transaction's key"
        other.commit()
    finally:
        other.close()  # rolls back whatever was not committed, freeing the batch
        worker.join(30)
    (mine,) = result
    assert mine[0] == Submitted(theirs[0].job_id, "race-a", created=False)
    assert mine[1].created
    assert count(settings, Job, Job.idempotency_key == "race-race-a") == 1
    assert "recording the batch again" in caplog.text


def test_a_single_submit_raises_its_own_spec_error(settings: Settings) -> None:
    with pytest.raises(SpecError) as e:
        submit(settings, None, parse_spec(shot("single", checkpoint="job:nope")))
    assert e.value.problems == [("checkpoint", "unknown checkpoint: no job 'nope'")]
    made = submit(settings, None, parse_spec(shot("single")), idempotency_key="single-1")
    assert made.created
    assert submit(settings, None, parse_spec(shot("single")), idempotency_key="single-1") == (
        Submitted(made.job_id, "single", created=False)
    )
    with session_scope(settings) as s:
        stored = s.get_one(Job, made.job_id).spec
    assert stored["fingerprint"] == fingerprint(parse_spec(shot("single")))


def token_row(settings: Settings, name: str) -> tuple[Any, str]:
    with session_scope(settings) as s:
        row = s.execute(
            text("SELECT last_used_at, xmin::text FROM api_tokens WHERE name = :n"), {"n": name}
        ).one()
        return row[0], row[1]


def test_a_token_records_its_use_at_most_once_a_minute(settings: Settings) -> None:
    token = create(settings, "minutely")
    assert authenticate(settings, token) is not None
    used, xid = token_row(settings, "minutely")
    assert used is not None
    # Fresh: the row is not written again (same last_used_at, same writing transaction).
    who = authenticate(settings, token)
    assert who is not None and who.name == "minutely"
    assert token_row(settings, "minutely") == (used, xid)
    # Two minutes old: written again.
    with session_scope(settings) as s:
        s.execute(
            update(ApiToken)
            .where(ApiToken.name == "minutely")
            .values(last_used_at=func.now() - text("interval '2 minutes'"))
        )
    stale, _ = token_row(settings, "minutely")
    assert authenticate(settings, token) is not None
    moved, _ = token_row(settings, "minutely")
    assert moved > stale and moved >= used
    assert authenticate(settings, "farm_not-a-token") is None
