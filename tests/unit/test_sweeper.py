"""Unit tests for the sweeper's pure decisions: expired leases and lost messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from farm.sweeper import Decision, Running, Unclaimed, decide_expired, decide_lost

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


# --- decide_expired --------------------------------------------------------------------


def test_lease_not_yet_expired_gives_nothing() -> None:
    running = [Running(1, NOW + timedelta(seconds=30), attempts=1, max_attempts=3)]
    assert decide_expired(running, NOW) == []


def test_lease_expiring_exactly_now_is_not_expired() -> None:
    assert decide_expired([Running(1, NOW, attempts=1, max_attempts=3)], NOW) == []


def test_expired_lease_with_attempts_left_is_requeued() -> None:
    running = [Running(4, _ago(1), attempts=1, max_attempts=3)]
    assert decide_expired(running, NOW) == [Decision(4, "requeue", "lease expired: worker lost")]


def test_expired_lease_on_last_attempt_fails() -> None:
    running = [Running(5, _ago(60), attempts=3, max_attempts=3)]
    assert decide_expired(running, NOW) == [
        Decision(5, "fail", "lease expired: worker lost on attempt 3")
    ]


def test_expired_decisions_cover_only_expired_tasks_in_order() -> None:
    running = [
        Running(1, _ago(5), attempts=2, max_attempts=3),
        Running(2, NOW + timedelta(seconds=5), attempts=1, max_attempts=3),
        Running(3, _ago(5), attempts=1, max_attempts=1),
    ]
    assert [(d.task_id, d.action) for d in decide_expired(running, NOW)] == [
        (1, "requeue"),
        (3, "fail"),
    ]


def test_no_running_tasks_gives_nothing() -> None:
    assert decide_expired([], NOW) == []


# --- decide_lost -----------------------------------------------------------------------


def _unclaimed() -> list[Unclaimed]:
    return [
        Unclaimed(1, "gpu", _ago(300), sends=1),
        Unclaimed(2, "gpu", _ago(200), sends=1),
        Unclaimed(3, "gpu", _ago(100), sends=1),
    ]


def test_broker_holding_a_message_per_task_gives_nothing() -> None:
    assert decide_lost(_unclaimed(), {"gpu": 3}, NOW, grace_s=30, max_resends=5) == []


def test_broker_holding_more_messages_than_tasks_gives_nothing() -> None:
    assert decide_lost(_unclaimed(), {"gpu": 10}, NOW, grace_s=30, max_resends=5) == []


def test_flushed_broker_resends_every_task_past_grace_oldest_first() -> None:
    tasks = [*_unclaimed(), Unclaimed(4, "gpu", _ago(10), sends=1)]
    assert decide_lost(tasks, {"gpu": 0}, NOW, grace_s=30, max_resends=5) == [
        Decision(1, "resend", "message lost: re-sending"),
        Decision(2, "resend", "message lost: re-sending"),
        Decision(3, "resend", "message lost: re-sending"),
    ]


def test_queue_absent_from_broker_counts_as_empty() -> None:
    decisions = decide_lost(_unclaimed(), {}, NOW, grace_s=30, max_resends=5)
    assert [d.task_id for d in decisions] == [1, 2, 3]


def test_tasks_inside_grace_are_never_resent() -> None:
    tasks = [Unclaimed(1, "gpu", _ago(29), sends=1), Unclaimed(2, "gpu", _ago(30), sends=1)]
    assert decide_lost(tasks, {"gpu": 0}, NOW, grace_s=30, max_resends=5) == []


def test_broker_holding_one_of_three_resends_the_two_oldest_sent() -> None:
    # Given in a shuffled order: the decision is by sent_at, not by input order or id.
    tasks = [
        Unclaimed(7, "gpu", _ago(100), sends=1),
        Unclaimed(8, "gpu", _ago(300), sends=1),
        Unclaimed(9, "gpu", _ago(200), sends=1),
    ]
    decisions = decide_lost(tasks, {"gpu": 1}, NOW, grace_s=30, max_resends=5)
    assert [(d.task_id, d.action) for d in decisions] == [(8, "resend"), (9, "resend")]


def test_equal_send_times_break_ties_by_id() -> None:
    tasks = [Unclaimed(5, "gpu", _ago(100), sends=1), Unclaimed(2, "gpu", _ago(100), sends=1)]
    decisions = decide_lost(tasks, {"gpu": 1}, NOW, grace_s=30, max_resends=5)
    assert [d.task_id for d in decisions] == [2]


def test_task_resent_too_often_fails() -> None:
    tasks = [Unclaimed(1, "gpu", _ago(300), sends=4), Unclaimed(2, "gpu", _ago(200), sends=3)]
    assert decide_lost(tasks, {"gpu": 0}, NOW, grace_s=30, max_resends=3) == [
        Decision(1, "fail", "message lost 4 times"),
        Decision(2, "resend", "message lost: re-sending"),
    ]


def test_queues_are_counted_separately() -> None:
    tasks = [
        Unclaimed(1, "gpu", _ago(300), sends=1),
        Unclaimed(2, "gpu", _ago(200), sends=1),
        Unclaimed(3, "cpu", _ago(250), sends=1),
    ]
    # Three messages in the broker in all, but the cpu one is missing.
    decisions = decide_lost(tasks, {"gpu": 2, "cpu": 0}, NOW, grace_s=30, max_resends=5)
    assert decisions == [Decision(3, "resend", "message lost: re-sending")]


def test_surplus_in_one_queue_does_not_cover_another() -> None:
    tasks = [Unclaimed(1, "gpu", _ago(300), sends=1), Unclaimed(2, "cpu", _ago(300), sends=1)]
    decisions = decide_lost(tasks, {"gpu": 5}, NOW, grace_s=30, max_resends=5)
    assert [d.task_id for d in decisions] == [2]


def test_no_unclaimed_tasks_gives_nothing() -> None:
    assert decide_lost([], {"gpu": 0}, NOW, grace_s=30, max_resends=5) == []


# --- messages that workers hold --------------------------------------------------------


def test_a_message_a_worker_holds_is_not_lost_for_a_lease() -> None:
    tasks = _unclaimed()  # none of the three in the queue: a worker took 1, 2 and 3 is lost
    decisions = decide_lost(
        tasks, {"gpu": 0}, NOW, grace_s=30, max_resends=5, held={1: 59.0, 2: 0.0}, hold_s=60
    )
    assert decisions == [Decision(3, "resend", "message lost: re-sending")]


def test_a_message_held_past_a_lease_is_judged_again() -> None:
    # The worker took 1 and 2 but never claimed them: taken for dead, as a lease would be.
    decisions = decide_lost(
        _unclaimed(), {"gpu": 1}, NOW, grace_s=30, max_resends=5, held={1: 61.0, 2: 60.0},
        hold_s=60,
    )  # fmt: skip
    assert [d.task_id for d in decisions] == [1, 2]


def _held_celery_message(args: list[object]) -> str:
    """A Celery message as kombu's Redis transport keeps it while a worker holds it:
    ``[message, exchange, routing key]`` as JSON, the message as Celery sent it."""
    import json

    from celery import Celery

    app = Celery(broker="memory://")
    app.conf.task_serializer = "json"
    app.send_task("farm.render_chunk", args=args, queue="gpu")
    with app.connection_for_read() as conn:
        message = conn.default_channel._get("gpu")
    return json.dumps([message, "", "gpu"])


def test_the_task_id_is_read_from_a_message_celery_sent() -> None:
    from farm.sweeper import message_task_id

    assert message_task_id(_held_celery_message([4711])) == 4711
    assert message_task_id(_held_celery_message(["x", 2])) is None
    assert message_task_id(b"not json") is None
    assert message_task_id('[{"body": "!!"}, "", "gpu"]') is None
