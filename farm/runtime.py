"""Resolving where the servers are: the environment, a running ``farm up``, or our own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from farm.config import Settings
from farm.embedded import EmbeddedServers, read_runtime
from farm.migrate import upgrade


@contextmanager
def services(settings: Settings, *, migrate: bool = True, own: bool = False) -> Iterator[Settings]:
    """Yield settings whose URLs point at running servers.

    With both URLs set they are used as they are. Otherwise a live ``farm up`` on the same
    data directory is joined, or (``own``, or nobody runs them) embedded servers are started
    for the duration of the block.
    """
    if not settings.embedded:
        if migrate:
            upgrade(settings)
        yield settings
        return
    running = None if own else read_runtime(settings.data_dir)
    if running is not None:
        resolved = settings.model_copy(update=running)
        yield resolved
        return
    with EmbeddedServers(settings.data_dir) as servers:
        resolved = settings.model_copy(
            update={"database_url": servers.database_url, "broker_url": servers.broker_url}
        )
        if migrate:
            upgrade(resolved)
        if own:
            servers.write_runtime()
        try:
            yield resolved
        finally:
            if own:
                servers.remove_runtime()


def child_env(settings: Settings) -> dict[str, str]:
    """Environment for a process we start (a worker): the resolved servers and settings."""
    env = dict(os.environ)
    for field in type(settings).model_fields:
        value = getattr(settings, field)
        if value is not None:
            env[f"FARM_{field.upper()}"] = str(value)
    env["FARM_OUTPUT_ROOT"] = str(settings.output_root_abs())
    env["FARM_DATA_DIR"] = str(settings.data_dir.resolve())
    return env


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def torch_threads(configured: int | None, processes: int, cpus: int) -> int:
    """Torch threads for each of ``processes`` sharing ``cpus``: the setting, else the CPUs
    shared out (at least one)."""
    return configured or max(1, cpus // max(1, processes))


def shared_threads(configured: int | None, workers: int, cpus: int) -> int | None:
    """Torch threads for each of ``workers`` worker processes one command starts on this
    machine: the CPUs shared out between them, unless ``FARM_WORKER_THREADS`` says.

    A worker divides the CPUs by its own concurrency but cannot know its siblings; left to
    itself each of two workers on 2 cores takes both, and torch's threads then wait on each
    other (two 500-frame chunks took 1.2 s against 0.6 s)."""
    if configured is not None or workers <= 1:
        return configured
    return torch_threads(None, workers, cpus)
