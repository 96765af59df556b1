"""Telling a broker outage (retry, with back-off) from a broken set-up (stop, say what to do)."""

from __future__ import annotations

import logging

import pytest
import redis
from kombu.exceptions import OperationalError

from farm.broker import BrokerHealth, backoff_s, unfixable
from farm.errors import BrokerUnusable


def _wrapped(inner: BaseException) -> OperationalError:
    """What kombu raises: its OperationalError, caused by the client's exception."""
    try:
        try:
            raise inner
        except BaseException as e:
            raise OperationalError(str(e)) from e
    except OperationalError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (ModuleNotFoundError("No module named 'packaging'", name="packaging"), "packaging"),
        (_wrapped(redis.AuthenticationError("Authentication required.")), "password"),
        (_wrapped(redis.AuthenticationError("invalid username-password pair")), "password"),
        (KeyError("No such transport: nosuch"), "transport"),
        (_wrapped(redis.ResponseError("DB index is out of range")), "database index"),
    ],
)
def test_failures_that_retrying_cannot_fix_say_what_to_do(error: Exception, says: str) -> None:
    hint = unfixable(error)
    assert hint is not None and says in hint


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")),
        _wrapped(ConnectionRefusedError(111, "Connection refused")),
        TimeoutError("timed out"),
        OSError("network is unreachable"),
    ],
)
def test_an_outage_is_worth_retrying(error: Exception) -> None:
    assert unfixable(error) is None


def test_backoff_doubles_to_a_minute() -> None:
    assert [backoff_s(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_an_outage_waits_out_its_backoff_and_says_since_when(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = BrokerHealth()
    url = "redis://:secret@127.0.0.1:1/0"
    refused = _wrapped(redis.ConnectionError("Connection refused"))
    with caplog.at_level(logging.WARNING, logger="farm.broker"):
        health.failed(url, refused)
        health.failed(url, refused)
    assert not health.may_send(url)
    assert health.may_send("redis://elsewhere:6379/0")
    first, second = (r.getMessage() for r in caplog.records)
    assert "unreachable since" in first and "retrying in 1 s" in first
    assert "retrying in 2 s" in second
    assert first.split("since ")[1][:8] == second.split("since ")[1][:8]
    assert "secret" not in first
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="farm.broker"):
        health.succeeded(url)
    assert health.may_send(url)
    assert "reachable again" in caplog.records[0].getMessage()


def test_a_refused_password_raises_at_once_without_the_password() -> None:
    health = BrokerHealth()
    with pytest.raises(BrokerUnusable) as got:
        health.failed(
            "redis://:hunter2@127.0.0.1:6390/0",
            _wrapped(redis.AuthenticationError("invalid username-password pair")),
        )
    text = str(got.value.for_job(7))
    assert "hunter2" not in text
    assert "refused authentication" in text and "job 7 is recorded" in text
    assert health.may_send("redis://:hunter2@127.0.0.1:6390/0")
