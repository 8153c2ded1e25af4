"""Parsing the date, time and duration formats the ticketing systems and admins write.

Every parser returns timezone-aware UTC datetimes (or plain dates for date-only values) and
raises ``ValueError`` with a message that shows the expected format; callers add the place.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = [
    "MAX_DURATION",
    "DurationTooLongError",
    "format_servicenow_instant",
    "json_value",
    "parse_date_or_instant",
    "parse_duration",
    "parse_instant",
    "parse_jira_instant",
    "parse_servicenow_duration",
    "parse_servicenow_instant",
    "parse_servicenow_seconds",
    "to_utc",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already.

    :raises ValueError: the instant is outside the years 1-9999 once in UTC
        (``9999-12-31T23:00-05:00``): a ``ValueError`` like every other unusable date, where
        ``astimezone`` would raise ``OverflowError``.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{value.isoformat()} is outside the years 1-9999 in UTC; write a date in range"
        ) from None


def parse_jira_instant(text: str) -> datetime:
    """``2023-03-01T11:34:49.730+0200`` (Jira REST), also without millis or with ``Z``."""
    try:
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return to_utc(datetime.strptime(text, fmt))
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a Jira date-time like 2023-03-01T11:34:49.730+0200")


def parse_servicenow_instant(text: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS``, always UTC in Table API responses (display values off)."""
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a ServiceNow date-time like 2024-05-01 13:45:00 (UTC)"
        ) from None


def format_servicenow_instant(instant: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC (a naive datetime is UTC already): how the Table API
    reads and compares dates with display values off, whatever the API user's time zone."""
    return to_utc(instant).strftime("%Y-%m-%d %H:%M:%S")


def parse_servicenow_duration(text: str) -> timedelta:
    """A ``glide_duration``: an offset from the epoch, ``1970-01-03 14:33:00`` = 2 d 14 h 33 min."""
    return parse_servicenow_instant(text) - _EPOCH


def parse_servicenow_seconds(text: str) -> float:
    """A ServiceNow duration in seconds, from a ``glide_duration`` or a whole number of
    seconds: which of the two a record holds depends on the column and the API answering."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        return parse_servicenow_duration(text).total_seconds()
    except ValueError:
        raise ValueError(
            f"{text!r} is not a ServiceNow duration like 1970-01-03 14:33:00 (2 d 14 h 33 min) "
            "or a number of seconds"
        ) from None


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant as admins write it (``2024-05-01T09:00:00Z``, with an offset, or
    naive meaning UTC); a bare date means midnight UTC."""
    try:
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date-time like 2024-05-01T09:00:00Z"
        ) from None


def parse_date_or_instant(text: str) -> date | datetime:
    """A date (``2024-05-01``) stays a date; anything with a time becomes a UTC instant.

    Accepts ISO 8601, Jira's ``+0200`` offsets and ServiceNow's ``YYYY-MM-DD HH:MM:SS``.
    """
    text = text.strip()
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    try:
        return parse_jira_instant(text)
    except ValueError:
        pass
    raise ValueError(f"{text!r} is not a date (2024-05-01) or date-time (2024-05-01T09:00:00Z)")


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_EXAMPLE = "write e.g. 4h, 1h30m, 5d or 2w"
MAX_DURATION_CHARS = 64
MAX_DURATION = timedelta(days=36_500)
"""The longest duration bridge reads (100 years): ``now - older_than`` and a deadline ``now
+ cap`` must stay within the calendar, and no real SLA, age or retention comes close."""


class DurationTooLongError(ValueError):
    """A well-formed duration over :data:`MAX_DURATION`: a schema's pattern accepts it, so
    the caller reports this message itself."""


def parse_duration(text: str) -> timedelta:
    """``4h``, ``1h30m``, ``5d``, ``2w``, ``90s``: units w, d (24 h), h, m, s; no sign.

    Durations are admin text: a long or huge one (``999999999999w``) is refused with a
    message, never an OverflowError, and parsing is linear in the (bounded) text.
    """
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError(f"empty duration; {_DURATION_EXAMPLE}")
    if len(compact) > MAX_DURATION_CHARS:
        raise ValueError(
            f"{text[:MAX_DURATION_CHARS]!r}... is not a duration (over {MAX_DURATION_CHARS} "
            f"characters); {_DURATION_EXAMPLE}"
        )
    pos = 0
    total = 0.0
    while pos < len(compact):
        match = _DURATION_PART.match(compact, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a duration; {_DURATION_EXAMPLE}")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos = match.end()
    if not total <= MAX_DURATION.total_seconds():  # also catches inf from 400 digits
        raise DurationTooLongError(
            f"{text!r} is longer than {MAX_DURATION.days // 365} years, the longest duration "
            f"bridge accepts; write at most {MAX_DURATION.days}d"
        )
    return timedelta(seconds=total)


def json_value(value: Any) -> Any:
    """A value as every JSON output writes it: instants as ISO 8601 UTC with a ``Z``, dates
    as ISO dates, tuples as lists (their items likewise); anything else as it is."""
    if isinstance(value, datetime):
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    return value
