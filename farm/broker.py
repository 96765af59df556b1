"""Why a send to the broker failed, and what to do about it.

Two kinds of failure look alike from Celery (both surface from ``send_task``): an outage,
which retrying fixes, and a broken set-up (a module the transport needs is missing, a
broker URL Celery cannot use, a refused password), which it never does. The first is
retried with a growing back-off and said once per retry with the time it started; the
second is raised as :class:`BrokerUnusable` with what to do, so that a command stops
instead of warning every few seconds forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from kombu.utils.url import maybe_sanitize_url

from farm.errors import BrokerUnusable

log = logging.getLogger(__name__)


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def unfixable(e: BaseException) -> str | None:
    """What to do, if ``e`` (or what caused it) is a failure that retrying will not fix."""
    for cause in _chain(e):
        name = type(cause).__name__
        text = str(cause)
        if isinstance(cause, ImportError):
            missing = getattr(cause, "name", None) or text
            return (
                f"the broker's transport needs a module that is not installed ({missing}): "
                "reinstall the farm with its dependencies (pip install -e .)"
            )
        if name == "AuthenticationError" or "WRONGPASS" in text or "NOAUTH" in text:
            return "the broker refused authentication: check the password in FARM_BROKER_URL"
        if isinstance(cause, KeyError) and "No such transport" in text:
            return "FARM_BROKER_URL names a transport Celery does not have (use redis://...)"
        if name == "ResponseError" and "DB index is out of range" in text:
            return "FARM_BROKER_URL names a Redis database index the server does not have"
    return None


def raise_if_unfixable(url: str, e: BaseException) -> None:
    """Raise :class:`BrokerUnusable` (the URL without its password) if retrying is futile."""
    hint = unfixable(e)
    if hint is not None:
        raise BrokerUnusable(maybe_sanitize_url(url), f"{type(e).__name__}: {e}", hint) from e


def backoff_s(failures: int, *, base_s: float = 1.0, cap_s: float = 60.0) -> float:
    """Seconds before the next try after ``failures`` consecutive failed ones: 1, 2, 4 … 60."""
    return float(min(cap_s, base_s * 2 ** max(0, failures - 1)))


@dataclass
class Outage:
    """A broker that is not answering, as one process sees it."""

    url: str
    since: float  # time.time() of the first failure
    failures: int = 0
    next_try: float = 0.0  # time.monotonic()

    def describe(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.since))


class BrokerHealth:
    """Per process: which brokers are down, since when, and when to try each again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outages: dict[str, Outage] = {}

    def may_send(self, url: str, now: float | None = None) -> bool:
        with self._lock:
            o = self._outages.get(url)
        return o is None or (time.monotonic() if now is None else now) >= o.next_try

    def failed(self, url: str, e: BaseException) -> None:
        """Record a failed send: raise :class:`BrokerUnusable` if retrying cannot help,
        otherwise log that it is retrying, since when, and in how long."""
        raise_if_unfixable(url, e)
        shown = maybe_sanitize_url(url)
        with self._lock:
            o = self._outages.setdefault(url, Outage(url, time.time()))
            o.failures += 1
            wait = backoff_s(o.failures)
            o.next_try = time.monotonic() + wait
        log.warning(
            "broker %s unreachable since %s (%s failed tries: %s); retrying in %.0f s",
            shown, o.describe(), o.failures, e, wait,
        )  # fmt: skip

    def succeeded(self, url: str) -> None:
        with self._lock:
            o = self._outages.pop(url, None)
        if o is not None:
            log.warning(
                "broker %s reachable again (down since %s, %s failed tries)",
                maybe_sanitize_url(url), o.describe(), o.failures,
            )  # fmt: skip


HEALTH = BrokerHealth()
