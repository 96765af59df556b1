"""The worker registry: each worker process records itself (host, pool, GPU, versions, the
task it runs) and a heartbeat; ``farm workers`` reads it. "Lost" is never written: it is
what a worker is when it has been silent longer than a lease, so the registry and the lease
sweeper (which recovers that worker's task) agree by construction.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from farm.audit import Actor, record
from farm.config import Settings
from farm.db import session_scope
from farm.errors import FarmError, WorkerNotFound
from farm.models import Task, Worker
from farm.planner import GPU_QUEUE


@dataclass(frozen=True)
class WorkerIdentity:
    name: str
    host: str
    queues: str
    pool: str | None
    gpu: int | None
    pid: int
    versions: dict[str, Any]


def shown_state(
    state: str, draining: bool, last_seen: datetime, now: datetime, timeout_s: float
) -> str:
    """idle | busy | draining | drained | stopped | lost."""
    if state == "stopped":
        return "stopped"
    if (now - last_seen).total_seconds() > timeout_s:
        return "lost"
    if draining:
        return "draining" if state == "busy" else "drained"
    return state


def pool_of(queues: str) -> str | None:
    pools = [q.split(".", 1)[1] for q in queues.split(",") if q.startswith(f"{GPU_QUEUE}.")]
    return pools[0] if pools else None


def gpu_index(env: dict[str, str] | os._Environ[str] = os.environ) -> int | None:
    """The one GPU a worker was pinned to (``farm worker --gpus`` sets CUDA_VISIBLE_DEVICES)."""
    visible = env.get("CUDA_VISIBLE_DEVICES", "").strip()
    return int(visible) if visible.isdigit() else None


def versions() -> dict[str, Any]:
    """What a worker runs, read from package metadata: no torch import, no CUDA touched."""
    out: dict[str, Any] = {"python": platform.python_version()}
    for pkg in ("farm", "celery", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def identity(name: str, queues: str) -> WorkerIdentity:
    return WorkerIdentity(
        name=name,
        host=socket.gethostname(),
        queues=queues,
        pool=pool_of(queues),
        gpu=gpu_index(),
        pid=os.getpid(),
        versions=versions(),
    )


def with_suffix(name: str, n: int) -> str:
    """``default-cpu@host`` -> ``default-cpu-2@host``: a second worker under one name."""
    if n == 1:
        return name
    base, at, host = name.partition("@")
    return f"{base}-{n}{at}{host}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_name(settings: Settings, wanted: str) -> str:
    """Reserve a node name for this process: ``wanted`` unless a live worker holds it (then
    ``wanted`` with a suffix). A row left by a dead worker is taken over, so a restarted worker
    (a container restart, a crash) keeps its name, and with it its blocklist entries. Workers
    starting at once race for a name: the insert that loses moves on to the next suffix."""
    host, pid = socket.gethostname(), os.getpid()
    with session_scope(settings) as s:
        now = s.execute(select(func.now())).scalar_one()
        for n in range(1, 1000):
            name = with_suffix(wanted, n)
            row = s.execute(select(Worker).where(Worker.name == name).with_for_update()).scalar()
            if row is not None:
                shown = shown_state(row.state, False, row.last_seen_at, now, settings.lease_s)
                if row.host == host:
                    free = row.pid == pid or shown == "stopped" or not pid_alive(row.pid)
                else:
                    free = shown in ("stopped", "lost")
                if not free:
                    continue
                s.delete(row)
                s.flush()
            taken = s.execute(
                insert(Worker)
                .values(name=name, host=host, queues="", pid=pid, versions={},
                        state="starting", draining=bool(row and row.draining))
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(Worker.name)
            ).scalar()  # fmt: skip
            if taken is not None:
                return name
    raise FarmError(f"no free worker name like {wanted!r}")


def register(settings: Settings, me: WorkerIdentity) -> None:
    """The worker is ready: its row says what it is and that it is idle. A drain asked for
    before a restart still holds."""
    values = {
        "host": me.host,
        "pool": me.pool,
        "gpu": me.gpu,
        "queues": me.queues,
        "pid": me.pid,
        "versions": me.versions,
        "state": "idle",
        "task_id": None,
    }
    with session_scope(settings) as s:
        stmt = insert(Worker).values(name=me.name, **values)
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={**values, "started_at": func.now(), "last_seen_at": func.now()},
            )
        )


def heartbeat(settings: Settings, name: str) -> bool | None:
    """Record that the worker is alive; returns whether it is asked to drain (None if its
    row is gone, e.g. the database was recreated)."""
    with session_scope(settings) as s:
        return s.execute(
            update(Worker)
            .where(Worker.name == name)
            .values(last_seen_at=func.now())
            .returning(Worker.draining)
        ).scalar_one_or_none()


def stopped(settings: Settings, name: str) -> None:
    with session_scope(settings) as s:
        s.execute(
            update(Worker)
            .where(Worker.name == name)
            .values(state="stopped", task_id=None, last_seen_at=func.now())
        )


def set_draining(
    settings: Settings, name: str, draining: bool, *, actor: Actor | None = None
) -> None:
    """Ask the worker to take no more work (or again), audited (farm.audit)."""
    with session_scope(settings) as s:
        found = s.execute(
            update(Worker)
            .where(Worker.name == name)
            .values(draining=draining)
            .returning(Worker.name)
        ).first()
        if found is None:
            known = s.execute(select(Worker.name).order_by(Worker.name)).scalars().all()
            raise WorkerNotFound(name, list(known))
        record(s, actor, "drain" if draining else "undrain", "worker", name)


def list_workers(settings: Settings, *, include_stopped: bool = False) -> list[dict[str, Any]]:
    with session_scope(settings) as s:
        now = s.execute(select(func.now())).scalar_one()
        rows = s.execute(
            select(Worker, Task.job_id, Task.frames)
            .outerjoin(Task, Task.id == Worker.task_id)
            .order_by(Worker.host, Worker.name)
        ).all()
    out = []
    for w, job_id, frames in rows:
        state = shown_state(w.state, w.draining, w.last_seen_at, now, settings.lease_s)
        if state == "stopped" and not include_stopped:
            continue
        out.append(
            {
                "name": w.name,
                "host": w.host,
                "pool": w.pool,
                "gpu": w.gpu,
                "queues": w.queues,
                "pid": w.pid,
                "state": state,
                "task_id": w.task_id if state in ("busy", "draining", "lost") else None,
                "job_id": job_id,
                "frames": frames,
                "tasks_succeeded": w.tasks_succeeded,
                "tasks_failed": w.tasks_failed,
                "last_seen_s": round((now - w.last_seen_at).total_seconds(), 1),
                "started_at": w.started_at.isoformat(),
                "versions": w.versions,
            }
        )
    return out
