"""Ages and points in time as people write them on the command line: ``30d``, ``12h``,
``2026-11-01``, ``2026-11-01T12:00:00+01:00``. Pure functions; ``now`` is passed in."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from farm.errors import InvalidOption

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_AGE_S = 700_000 * 86400  # about 1,900 years: ``now - age`` stays in the calendar
# What the API's schema admits (the CLI takes more: decimals, spaces, any ISO form): an age
# of 1-99999 units, or a date or time whose every value parses.
WHEN_PATTERN = (
    r"^([1-9][0-9]{0,4}[smhdw]|[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?)$"
)
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_age(option: str, value: str) -> timedelta:
    """A positive age: a number and a unit (s, m, h, d, w), e.g. ``30d``, ``12h``, ``1.5d``."""
    m = _AGE.match(value)
    if m is None and value.strip().startswith("-") and _AGE.match(value.strip()[1:]):
        raise InvalidOption(option, f"{value!r} is not a positive age")
    if m is None:
        raise InvalidOption(
            option, f"{value!r} is not an age: a number and a unit s, m, h, d or w (30d, 12h)"
        )
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise InvalidOption(option, f"{value!r} is not a positive age")
    if seconds > MAX_AGE_S:
        raise InvalidOption(option, f"{value!r} is longer than {MAX_AGE_S // 86400} days")
    return timedelta(seconds=seconds)


def parse_when(option: str, value: str, now: datetime) -> datetime:
    """A point in time: an age before ``now`` (``7d``), a date (``2026-11-01``, midnight
    UTC) or an ISO 8601 time (UTC unless it names its offset)."""
    if _AGE.match(value):
        return now - parse_age(option, value)
    if value.strip().startswith("-") and _AGE.match(value.strip()[1:]):
        raise InvalidOption(option, f"{value!r} is not a positive age")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidOption(
            option,
            f"{value!r} is neither an age (7d, 12h) nor a date or ISO time (2026-11-01,"
            " 2026-11-01T12:00:00Z)",
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_window(
    since: str | None,
    until: str | None,
    now: datetime,
    names: tuple[str, str] = ("--since", "--until"),
) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` parsed; refused when the window they make is empty."""
    start = None if since is None else parse_when(names[0], since, now)
    end = None if until is None else parse_when(names[1], until, now)
    if start is not None and end is not None and end <= start:
        raise InvalidOption(names[1], f"{until!r} is not after {names[0]} {since!r}")
    return start, end
