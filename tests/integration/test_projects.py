"""Projects against a real database: created on first use only when the farm allows it, a
cap that holds, and the fair-share pick an index scan at 10,000 ready tasks over 20 projects."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from farm.db import session_scope
from farm.dispatch import take
from farm.errors import SpecError
from farm.models import Job, Project, Task
from farm.projects import list_projects, set_project
from farm.specs import parse_spec
from farm.states import JobState, TaskKind, TaskState
from farm.submit import submit
from tests.integration.harness import make_settings

TRAIN = {"kind": "train", "name": "p-train", "epochs": 1}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("projects")


def test_unknown_project_is_created_on_first_use_or_refused_naming_the_field(
    database_url: str, broker_url: str, root: Path
) -> None:
    s = make_settings(database_url, broker_url, root)
    submit(s, None, parse_spec(TRAIN | {"project": "show-a"}))
    with session_scope(s) as session:
        assert {p.name: p.weight for p in list_projects(session)}["show-a"] == 1.0
    strict = s.model_copy(update={"auto_create_projects": False})
    with pytest.raises(SpecError) as e:
        submit(strict, None, parse_spec(TRAIN | {"name": "p2", "project": "show-b"}))
    assert e.value.problems[0][0] == "project"
    assert "farm project set show-b" in e.value.problems[0][1]
    with session_scope(s) as session:
        assert session.get(Project, "show-b") is None
        assert session.execute(select(Job).where(Job.name == "p2")).first() is None
    submit(strict, None, parse_spec(TRAIN | {"name": "p3", "project": "show-a"}))


def _fill(session, projects: int, per: int, queue: str) -> None:  # type: ignore[no-untyped-def]
    for p in range(projects):
        weight, cap = (10.0, 3) if p == 0 else (1.0 + p % 3, None)
        set_project(session, f"ex{p}", weight=weight, max_running=cap)
    jobs = session.execute(
        insert(Job).returning(Job.id, Job.project),
        [{"name": f"ex{p}", "kind": "render", "state": JobState.QUEUED, "spec": {},
          "project": f"ex{p}", "tasks_queued": per} for p in range(projects)],
    ).all()  # fmt: skip
    session.execute(
        insert(Task),
        [{"job_id": j, "kind": TaskKind.RENDER_CHUNK, "queue": queue, "state": TaskState.QUEUED,
          "ready": True, "project": proj, "priority": 50, "stage_end": per, "index": i}
         for j, proj in jobs for i in range(per)],
    )  # fmt: skip
    session.execute(text("ANALYZE tasks"))


def test_fair_pick_holds_a_cap_and_is_an_index_scan_at_ten_thousand_tasks(
    database_url: str, broker_url: str, root: Path
) -> None:
    s = make_settings(database_url, broker_url, root)
    with session_scope(s) as session:
        _fill(session, 20, 500, "gpu.explain")
    with session_scope(s) as session:
        out = take(session, ["gpu.explain"], ahead=40, fair=True)
        by_project: dict[str, int] = {}
        for o in out:
            proj = session.get(Task, o.task_id)
            assert proj is not None
            by_project[proj.project] = by_project.get(proj.project, 0) + 1
        assert len(out) == 40
        assert by_project["ex0"] == 3  # its weight would give it about 7: its cap holds
        # weights 1, 2, 3 repeat: the weight-3 projects get the most
        assert by_project["ex2"] >= by_project["ex1"] >= by_project["ex3"]
        session.rollback()
    with session_scope(s) as session:
        from farm.dispatch import _PICK_FAIR

        sql = str(_PICK_FAIR)
        params = {"queue": "'gpu.explain'", "limit": "500", "ahead": "40", "claiming": "0"}
        for k, v in params.items():
            sql = sql.replace(f":{k}", v)
        plan = "\n".join(r[0] for r in session.execute(text("EXPLAIN (COSTS OFF) " + sql)))
        session.rollback()
    print(plan)
    assert "ix_tasks_ready_project" in plan
    assert "Seq Scan on tasks" not in plan, plan
    # The claim's and the chain's decisions (farm.dispatch.fairer_task, NO_NEWCOMER): index
    # probes per project too.
    from farm.dispatch import _CHAIN_SHARES, _SWAP, NO_NEWCOMER

    values = {"queue": "'gpu.explain'", "project": "'ex1'", "task": "1", "worker": "'w@x'",
              "job": "1", "known": "'{ex0}'"}  # fmt: skip
    for stmt in (str(_SWAP), str(_CHAIN_SHARES), "SELECT " + NO_NEWCOMER):
        for k, v in values.items():
            stmt = stmt.replace(f":{k}", v)
        with session_scope(s) as session:
            plan = "\n".join(r[0] for r in session.execute(text("EXPLAIN (COSTS OFF) " + stmt)))
            session.rollback()
        assert "Seq Scan on tasks" not in plan, plan
        if stmt.startswith("WITH x"):
            print(plan)
            assert "ix_tasks_ready_project" in plan, plan
