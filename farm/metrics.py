"""Prometheus metrics, computed from the database (and the broker's queue depths) at scrape
time, so every API replica reports the same truth without shared in-process counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from celery import Celery
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from farm.config import Settings
from farm.db import session_scope
from farm.models import Job, Task, WebhookDelivery
from farm.registry import list_workers
from farm.states import JobState, TaskKind, TaskState
from farm.usage import totals

BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class FarmCollector:
    def __init__(self, settings: Settings, celery: Celery) -> None:
        self.settings, self.celery = settings, celery

    def collect(self) -> Iterator[Metric]:
        from farm.sweeper import broker_depths

        with session_scope(self.settings) as s:
            jobs = dict(s.execute(select(Job.state, func.count()).group_by(Job.state)).all())
            tasks = s.execute(
                select(Task.kind, Task.state, func.count()).group_by(Task.kind, Task.state)
            ).all()
            queues = [q for (q,) in s.execute(select(Task.queue).distinct())]
            frames = s.execute(
                select(func.coalesce(func.sum(Task.frame_count), 0)).where(
                    Task.kind == TaskKind.RENDER_CHUNK, Task.state == TaskState.SUCCEEDED
                )
            ).scalar_one()
            seconds = func.extract("epoch", Task.finished_at - Task.started_at)
            durations = s.execute(
                select(Task.kind, seconds).where(
                    Task.state == TaskState.SUCCEEDED, Task.started_at.is_not(None)
                )
            ).all()
            beats = s.execute(
                select(Task.worker, func.max(Task.lease_expires_at))
                .where(Task.state == TaskState.RUNNING)
                .group_by(Task.worker)
            ).all()
            hooks = dict(
                s.execute(
                    select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
                ).all()
            )
            spent = totals(s)
        g = GaugeMetricFamily("farm_jobs", "Jobs by state", labels=["state"])
        for job_state in JobState:
            g.add_metric([job_state.value], jobs.get(job_state, 0))
        yield g
        g = GaugeMetricFamily("farm_tasks", "Tasks by kind and state", labels=["kind", "state"])
        for task_kind, task_state, n in tasks:
            g.add_metric([task_kind.value, task_state.value], n)
        yield g
        g = GaugeMetricFamily(
            "farm_queue_depth", "Messages waiting in the broker", labels=["queue"]
        )
        for q, n in broker_depths(self.celery, sorted(queues)).items():
            g.add_metric([q], n)
        yield g
        g = GaugeMetricFamily("farm_frames_rendered", "Frames of succeeded render chunks")
        g.add_metric([], int(frames))
        yield g
        h = HistogramMetricFamily(
            "farm_task_duration_seconds", "Run time of succeeded tasks", labels=["kind"]
        )
        by_kind: dict[str, list[float]] = {}
        for duration_kind, secs in durations:
            by_kind.setdefault(duration_kind.value, []).append(float(secs or 0))
        for label, values in sorted(by_kind.items()):
            cumulative = [(str(b), float(sum(v <= b for v in values))) for b in BUCKETS]
            cumulative.append(("+Inf", float(len(values))))
            h.add_metric([label], cumulative, sum(values))
        yield h
        g = GaugeMetricFamily(
            "farm_worker_lease_expiry_timestamp_seconds",
            "Latest lease a busy worker's heartbeat holds (Unix time)",
            labels=["worker"],
        )
        for worker, until in beats:
            if worker and until:
                g.add_metric([worker], until.timestamp())
        yield g
        g = GaugeMetricFamily(
            "farm_workers", "Registered workers by pool and state (lost: silent past a lease)",
            labels=["pool", "state"],
        )  # fmt: skip
        fleet = Counter(
            (w["pool"] or "default", w["state"])
            for w in list_workers(self.settings, include_stopped=False)
        )
        for (pool, state), n in sorted(fleet.items()):
            g.add_metric([pool, state], n)
        yield g
        g = GaugeMetricFamily(
            "farm_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        for status in ("pending", "delivered", "failed"):
            g.add_metric([status], hooks.get(status, 0))
        yield g
        # Counters from the attempts (farm.usage.totals), which a purge never deletes.
        gpu = CounterMetricFamily(
            "farm_gpu_seconds", "Wall time of attempts on a GPU", labels=["project", "pool"]
        )
        cpu = CounterMetricFamily(
            "farm_cpu_seconds", "Wall time of attempts on a CPU", labels=["project", "pool"]
        )
        for (project, pool), (gpu_s, cpu_s) in spent.seconds.items():
            gpu.add_metric([project, pool], float(gpu_s))
            cpu.add_metric([project, pool], float(cpu_s))
        yield gpu
        yield cpu
        c = CounterMetricFamily(
            "farm_attempts", "Attempts ended, by outcome", labels=["project", "outcome"]
        )
        for (project, outcome), n in spent.attempts.items():
            c.add_metric([project, outcome], n)
        yield c


def render(settings: Settings, celery: Celery) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FarmCollector(settings, celery))
    return generate_latest(registry), CONTENT_TYPE_LATEST
