"""The Celery app, built from settings (never an import-time global).

JSON is the only accepted content type, so a pickled message is refused. Acknowledgement is
late with prefetch 1: a worker holds one message at a time, and recovery from a lost worker
is the database's job (leases + sweeper), not Redis's visibility timeout, which cannot tell a
long training epoch from a dead worker. The visibility timeout is therefore set long, as a
backstop whose redeliveries the claim step drops as duplicates.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from farm.config import Settings
from farm.planner import CPU_QUEUE, GPU_QUEUE

TASK_NAMES = {
    "train": "farm.train",
    "render_chunk": "farm.render_chunk",
    "assemble": "farm.assemble",
    "sample_grid": "farm.sample_grid",
}


def make_celery(settings: Settings) -> Celery:
    app = Celery("farm", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        # Each event is a broker round trip per task; see Settings.task_events.
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        task_queues=[Queue(GPU_QUEUE), Queue(CPU_QUEUE)],
        task_default_queue=GPU_QUEUE,
        broker_transport_options={"visibility_timeout": 12 * 3600},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        enable_utc=True,
    )
    return app
