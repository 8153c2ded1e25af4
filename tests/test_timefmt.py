"""The ServiceNow formats shared by the client, the mapping, the SLA rows and the writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bridge.timefmt import (
    format_servicenow_instant,
    parse_servicenow_instant,
    parse_servicenow_seconds,
)


def test_format_servicenow_instant_is_utc_and_round_trips() -> None:
    berlin = datetime(2026, 3, 29, 3, 30, 15, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert format_servicenow_instant(berlin) == "2026-03-29 01:30:15"
    naive = datetime(2026, 3, 29, 1, 30, 15)  # naive means UTC
    assert format_servicenow_instant(naive) == "2026-03-29 01:30:15"
    assert parse_servicenow_instant(format_servicenow_instant(berlin)) == datetime(
        2026, 3, 29, 1, 30, 15, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3600", 3600.0),
        (" 90 ", 90.0),
        ("1970-01-03 14:33:00", 2 * 86400 + 14 * 3600 + 33 * 60),
        ("1970-01-01 00:00:00", 0.0),
    ],
)
def test_parse_servicenow_seconds(text: str, seconds: float) -> None:
    assert parse_servicenow_seconds(text) == seconds
    assert isinstance(parse_servicenow_seconds(text), float)


@pytest.mark.parametrize("text", ["", "-5", "1.5", "٣", "2 days", "1970-13-01 00:00:00"])
def test_parse_servicenow_seconds_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="is not a ServiceNow duration"):
        parse_servicenow_seconds(text)
