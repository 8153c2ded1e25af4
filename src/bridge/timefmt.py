"""Parsing the date, time and duration formats the ticketing systems and admins write.

Every parser returns timezone-aware UTC datetimes (or plain dates for date-only values) and
raises ``ValueError`` with a message that shows the expected format; callers add the place.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "format_servicenow_instant",
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
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_jira_instant(text: str) -> datetime:
    """``2023-03-01T11:34:49.730+0200`` (Jira REST), also without millis or with ``Z``."""
    try:
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, fmt).astimezone(UTC)
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


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """``4h``, ``1h30m``, ``5d``, ``2w``, ``90s``: units w, d (24 h), h, m, s; no sign."""
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError("empty duration; write e.g. 4h, 1h30m, 5d or 2w")
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos = match.end()
    if pos != len(compact):
        raise ValueError(f"{text!r} is not a duration; write e.g. 4h, 1h30m, 5d or 2w")
    return timedelta(seconds=total)
