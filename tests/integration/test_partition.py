"""A network partition: a worker host cut off for longer than the lease, then reconnected.

The worker gets a host of its own: a network namespace joined to this one by a veth pair. It
reaches PostgreSQL and Redis only over TCP through the veth, by way of a small relay in the
test process listening on the host side (the embedded PostgreSQL listens on a Unix socket,
which a namespace would not cut). Taking the host side of the veth down is a cut cable: the
worker's open connections hang, and new ones fail once address resolution gives up (about
three seconds). While it is cut, the sweeper expires its lease and another worker (on the
host) claims the chunk again; then the cable is plugged back in and the stale worker must not
record anything, because every write of a running attempt is conditional on its number.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import func, make_url, select

from farm.models import Artifact, Event, Job, Task
from farm.states import TaskState
from tests.integration.harness import Farm, make_settings
from workers.claims import complete
from workers.context import Result, TaskContext
from workers.encode import count_frames, ffmpeg_binary

pytestmark = pytest.mark.faults

# One chunk, about ten seconds of rendering here: still running well after the cut.
FRAMES = 960
RENDER = {
    "kind": "render", "name": "partitioned", "checkpoint": "job:part-vae",
    "frames": f"1-{FRAMES}", "chunk_size": FRAMES, "width": 512, "height": 512,
    "batch_size": 8,
}  # fmt: skip


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


@dataclass
class Netns:
    name: str
    host_if: str
    host_ip: str
    ns_ip: str

    def inode(self) -> int:
        return os.stat(f"/run/netns/{self.name}").st_ino

    def holds(self, pid: int) -> bool:
        """Whether process ``pid`` lives in this namespace (on the cut-off host)."""
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == self.inode()
        except OSError:
            return False

    def cut(self) -> None:
        _check(_ip("link", "set", self.host_if, "down"))

    def reconnect(self) -> None:
        _check(_ip("link", "set", self.host_if, "up"))


def _check(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 0, f"{' '.join(map(str, r.args))}: {r.stderr.strip()}"


@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    """A namespace with a veth pair: 10.231.A.B+1 on the host side, .B+2 inside."""
    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (Debian's iproute2) to make a network namespace")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    pid = os.getpid()
    a, b = (pid >> 6) % 256, (pid % 64) * 4
    ns = Netns(f"farmpart{pid}", f"fp{pid}h", f"10.231.{a}.{b + 1}", f"10.231.{a}.{b + 2}")
    peer = f"fp{pid}n"
    try:
        steps = [
            ("netns", "add", ns.name),
            ("link", "add", ns.host_if, "type", "veth", "peer", "name", peer, "netns", ns.name),
            ("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if),
            ("link", "set", ns.host_if, "up"),
            ("-n", ns.name, "addr", "add", f"{ns.ns_ip}/30", "dev", peer),
            ("-n", ns.name, "link", "set", peer, "up"),
            ("-n", ns.name, "link", "set", "lo", "up"),
            ("netns", "exec", ns.name, "true"),
        ]
        for step in steps:
            r = _ip(*step)
            if r.returncode != 0:
                pytest.skip(
                    f"this machine does not allow a network namespace: `ip {' '.join(step)}`"
                    f" failed: {r.stderr.strip() or r.returncode}"
                )
        yield ns
    finally:
        _ip("link", "del", ns.host_if)  # takes its peer with it
        _ip("netns", "del", ns.name)


class Relay:
    """TCP listeners on the host side of the veth, each forwarding to one real server (a TCP
    address or a Unix socket). Threads and blocking sockets: a hung peer hangs only its pair."""

    def __init__(self, bind_ip: str) -> None:
        self.bind_ip = bind_ip
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.add(s)

    def forward(self, target: str | tuple[str, int]) -> int:
        srv = socket.create_server((self.bind_ip, 0))
        self._track(srv)
        threading.Thread(target=self._accept, args=(srv, target), daemon=True).start()
        return int(srv.getsockname()[1])

    def _accept(self, srv: socket.socket, target: str | tuple[str, int]) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            try:
                if isinstance(target, str):
                    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    upstream.connect(target)
                else:
                    upstream = socket.create_connection(target)
            except OSError:
                client.close()
                continue
            self._track(client)
            self._track(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def database_target(url: str) -> str | tuple[str, int]:
    """Where the database really is: a Unix socket path or (host, port)."""
    u = make_url(url)
    host = u.query.get("host") or u.host
    if isinstance(host, tuple):
        host = host[0]
    port = u.port or 5432
    if not host or host.startswith("/"):
        return str(Path(host or "/var/run/postgresql") / f".s.PGSQL.{port}")
    return (host, port)


def relayed_database_url(url: str, host: str, port: int) -> str:
    u = make_url(url)
    query = {k: v for k, v in u.query.items() if k != "host"}
    return u.set(host=host, port=port, query=query).render_as_string(hide_password=False)


def broker_target(url: str) -> str | tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return (parts.hostname or "127.0.0.1", parts.port or 6379)


def relayed_broker_url(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@{host}:{port}" if auth else f"{host}:{port}"
    return urlunsplit(("redis", netloc, parts.path, "", ""))


@dataclass
class Partitioned:
    farm: Farm
    ns: Netns
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def part(
    netns: Netns, database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Partitioned]:
    """A farm with no processes yet, and the environment that puts a worker in ``netns``
    on the servers through the relay."""
    root = tmp_path_factory.mktemp("partition")
    farm = Farm(make_settings(database_url, broker_url, root), root)
    relay = Relay(netns.host_ip)
    s = farm.settings
    assert s.database_url is not None and s.broker_url is not None
    env = {
        "FARM_DATABASE_URL": relayed_database_url(
            s.database_url, netns.host_ip, relay.forward(database_target(s.database_url))
        ),
        "FARM_BROKER_URL": relayed_broker_url(
            s.broker_url, netns.host_ip, relay.forward(broker_target(s.broker_url))
        ),
    }
    try:
        yield Partitioned(farm, netns, env)
    finally:
        farm.close()
        relay.close()


def _event_at(farm: Farm, *conds: Any) -> datetime | None:
    with farm.session() as s:
        return s.execute(select(func.min(Event.at)).where(*conds)).scalar_one()


def _log_time(stamp: str) -> datetime:
    """A worker log line's local time, as logging's default ``asctime`` writes it."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)


def _task_ids(farm: Farm, job: int) -> set[int]:
    with farm.session() as s:
        return set(s.execute(select(Task.id).where(Task.job_id == job)).scalars())


def _successes(farm: Farm, job: int) -> dict[int, int]:
    """``succeeded`` events per task of the job."""
    with farm.session() as s:
        rows = s.execute(
            select(Event.task_id, func.count())
            .where(Event.job_id == job, Event.task_id.is_not(None))
            .where(Event.to_state == "succeeded")
            .group_by(Event.task_id)
        ).all()
    return {int(t): int(n) for t, n in rows}


def _artifacts(farm: Farm, job: int) -> list[tuple[Any, ...]]:
    with farm.session() as s:
        rows = s.execute(
            select(Artifact.id, Artifact.task_id, Artifact.path, Artifact.sha256, Artifact.size)
            .where(Artifact.job_id == job)
            .order_by(Artifact.id)
        ).all()
    return [tuple(r) for r in rows]


def test_worker_cut_off_past_its_lease_then_reconnected_records_nothing(
    part: Partitioned,
) -> None:
    farm, ns = part.farm, part.ns
    lease = farm.settings.lease_s
    farm.start_sweeper()
    stale = farm.start_worker(
        name=f"partitioned@{ns.name}",
        prefix=["ip", "netns", "exec", ns.name],
        env_overrides=part.env,
        tag="ns-worker",
    )
    # The checkpoint is trained by the namespaced worker: its route to the servers works.
    train = farm.submit({"kind": "train", "name": "part-vae", "epochs": 2, "latent_dim": 4})
    assert farm.wait(train, timeout_s=120)["state"] == "succeeded", farm.logs()
    with farm.session() as s:
        trainer_pid = s.execute(select(Task.worker_pid).where(Task.job_id == train)).scalar_one()
    assert trainer_pid is not None and ns.holds(trainer_pid), "the trainer ran outside the netns"

    job = farm.submit(RENDER)

    def mid_render_in_netns() -> Task | None:
        with farm.session() as s:
            t = s.execute(
                select(Task).where(Task.job_id == job, Task.kind == "render_chunk")
            ).scalar_one()
            s.expunge(t)
        # A quarter in: the model is loaded and the chunk is well under way.
        busy = t.state is TaskState.RUNNING and (t.progress or {}).get("frames", 0) >= FRAMES // 4
        return t if busy and t.worker_pid and ns.holds(t.worker_pid) else None

    chunk = farm.wait_until(mid_render_in_netns, timeout_s=60, what="the chunk mid-render")
    assert chunk.attempts == 1
    stale_worker = chunk.worker
    cut_wall = datetime.now(UTC)
    cut = time.monotonic()
    ns.cut()
    try:
        farm.start_worker(tag="host-worker")

        def reclaimed() -> Task | None:
            with farm.session() as s:
                t = s.get(Task, chunk.id)
                assert t is not None
                s.expunge(t)
            return t if t.attempts >= 2 and t.state is not TaskState.QUEUED else None

        again = farm.wait_until(reclaimed, timeout_s=30, what="the chunk claimed again")
        seen_reclaimed = time.monotonic() - cut
        assert again.worker != stale_worker and not ns.holds(again.worker_pid or 0)
        # Keep the cable out well past the lease, and at least until the re-claim.
        time.sleep(max(0.0, cut + 2 * lease - time.monotonic()))
    finally:
        held = time.monotonic() - cut
        ns.reconnect()
    reconnected = datetime.now(UTC)
    assert held > lease + 2

    row = farm.wait(job, timeout_s=120)
    assert row["state"] == "succeeded", farm.logs()
    done = time.monotonic() - cut
    assert _successes(farm, job) == {t: 1 for t in _task_ids(farm, job)}
    recorded = _artifacts(farm, job)

    # The stale worker gets its connections back and must stand down on its own.
    log = sorted(farm.log_dir.glob("ns-worker-*.log"))[0]
    pattern = re.compile(
        rf"^(\S+ \S+) INFO workers\.runner: task {chunk.id} attempt 1: (\w+)", re.M
    )
    found = farm.wait_until(
        lambda: pattern.search(log.read_text(errors="replace")),
        timeout_s=60,
        what="the stale worker to report its attempt",
    )
    outcome = found.group(2)
    stood_down = _log_time(found.group(1)) - reconnected
    time.sleep(3)  # anything it might still write would be in by now
    # Attempt 1's completion, replayed as the stale worker would send it: refused, since the
    # task's attempt is 2 now; the checks below see that it wrote nothing either.
    replay = TaskContext(
        settings=farm.settings, task_id=chunk.id, job_id=job, job_name=str(RENDER["name"]),
        kind=chunk.kind, attempt=1, spec={}, frames=chunk.frames, position=chunk.position,
        frame_count=chunk.frame_count, index=chunk.index, worker=stale_worker or "stale",
    )  # fmt: skip
    assert not complete(replay, Result()).recorded, "a stale completion was recorded"

    successes = _successes(farm, job)
    assert set(successes) == _task_ids(farm, job)
    assert set(successes.values()) == {1}, f"a task ran to success twice: {successes}"
    assert _artifacts(farm, job) == recorded, "an artifact changed after the job succeeded"
    with farm.session() as s:
        states = set(s.execute(select(Task.state).where(Task.job_id == job)).scalars())
        failed = s.execute(
            select(func.count()).where(Event.job_id == job, Event.to_state == "failed")
        ).scalar_one()
        stale_events = s.execute(
            select(Event.from_state, Event.to_state, Event.message)
            .where(Event.task_id == chunk.id, Event.attempt == 1)
            .order_by(Event.id)
        ).all()
        won = s.execute(
            select(Event.worker, Event.attempt).where(
                Event.task_id == chunk.id, Event.to_state == "succeeded"
            )
        ).one()
        final = s.get(Task, chunk.id)
        assert final is not None
        job_row = s.get(Job, job)
        assert job_row is not None
        video = s.execute(
            select(Artifact.path).where(Artifact.job_id == job, Artifact.kind == "video")
        ).scalar_one()
    assert job_row.state.value == "succeeded"
    assert count_frames(Path(video), ffmpeg=ffmpeg_binary())[0] == FRAMES
    assert states == {TaskState.SUCCEEDED}
    assert failed == 0
    # Attempt 1 (the cut-off worker) was claimed, then expired; nothing else of it recorded.
    assert [(f, t) for f, t, _ in stale_events] == [("queued", "running"), ("running", "queued")]
    assert "lease expired" in (stale_events[1][2] or "")
    assert tuple(won) == (again.worker, 2) and won[0] != stale_worker
    assert final.attempts == 2 and final.worker == again.worker
    # How the stale attempt noticed: "lost" (its heartbeat found the task taken), "stale" (its
    # completion was refused), or "failed" (a write failed while cut off, and the failure it
    # then reported was refused too). Each of those writes is conditional on the attempt.
    assert outcome in ("lost", "stale", "failed"), f"the stale attempt ended {outcome!r}"

    expired_at = _event_at(
        farm, Event.task_id == chunk.id, Event.attempt == 1, Event.to_state == "queued"
    )
    claimed_at = _event_at(
        farm, Event.task_id == chunk.id, Event.attempt == 2, Event.to_state == "running"
    )
    assert expired_at is not None and claimed_at is not None and job_row.finished_at is not None
    segments = farm.settings.output_root_abs() / ".segments" / f"job-{job}"
    left = sorted(p.name for p in segments.rglob("*")) if segments.exists() else []
    alive = stale.poll() is None
    print(
        f"\npartition ({os.environ.get('FARM_TEST_SERVERS', 'embedded')} servers):"
        f" cable out {held:.1f}s (lease {lease:g}s, heartbeat {farm.settings.heartbeat_s:g}s,"
        f" sweep every {farm.settings.sweep_interval_s:g}s);"
        f" cut -> lease expired {(expired_at - cut_wall).total_seconds():.1f}s,"
        f" -> chunk claimed by a host worker {(claimed_at - cut_wall).total_seconds():.1f}s"
        f" (seen {seen_reclaimed:.1f}s),"
        f" -> job succeeded {(job_row.finished_at - cut_wall).total_seconds():.1f}s"
        f" (seen {done:.1f}s); stale attempt 1 ended {outcome!r}"
        f" {stood_down.total_seconds():.1f}s after reconnecting; stale worker"
        f" {'alive' if alive else f'exited rc={stale.returncode}'};"
        f" segment files left: {left or 'none'}"
    )
    assert alive, f"the reconnected worker exited ({stale.returncode}):\n{farm.logs()}"
