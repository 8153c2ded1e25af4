"""Cross-check against businesstimedelta (test-only dependency) on thousands of random spans.

Making the comparison apples to apples, after reading businesstimedelta 1.0.1's source:

* Time zones: every rule takes a pytz zone and defaults to UTC, ``HolidayRule`` included, so the
  zone is passed to each rule; otherwise holidays would be UTC days.
* Holidays: both sides get the same dates. The reference gets the set materialised from
  ``holidays.country_holidays(..., years=...)``; the calendar expands years lazily, and
  ``test_lazy_holiday_years_equal_the_materialised_set`` proves the two sets are equal.
* Resolution: ``Rule.difference`` rebuilds its result from ``timedelta.days`` and ``.seconds``,
  dropping microseconds, so spans start and end on whole seconds.
* ``add``: businesstimedelta adds a zero duration by jumping to the next opening, while the
  contract says ``add(a, 0) == a``; zero is excluded from the ``add`` comparison.
* Known divergence, excluded from the random spans: a working-hours boundary *inside* a DST
  transition. businesstimedelta places it with pytz ``localize(is_dst=False)``: a boundary in the
  spring-forward gap lands one hour after the gap, one in the fall-back overlap on the second
  (standard-time) occurrence; bridge takes the first instant after the gap and the first
  occurrence. ``test_known_divergence_boundary_inside_a_dst_transition`` pins exactly that case.
  (Likewise ``HolidayRule`` closes 24 real hours from local midnight, not the 23 h / 25 h local
  day; no US federal holiday falls on a DST-change Sunday and no hours here reach midnight.)
  The calendars compared here have boundaries at 08:00-17:00 / 09:00-17:00, never in a
  transition, and spans around DST changes are sampled on purpose to show they agree there.
"""

from __future__ import annotations

import datetime as dt
import random
from datetime import UTC, date, datetime, timedelta

import businesstimedelta as btd
import holidays
import pytest
import pytz

from bridge.kpi.calendar import Calendar
from bridge.kpi.calendar_spec import calendar_from_spec

YEARS = range(2019, 2032)
NEW_YORK = pytz.timezone("America/New_York")
BERLIN = pytz.timezone("Europe/Berlin")
US_HOLIDAYS = frozenset(holidays.country_holidays("US", years=YEARS))
BY_HOLIDAYS = frozenset(holidays.country_holidays("DE", subdiv="BY", years=YEARS))
WEEKDAYS = [0, 1, 2, 3, 4]

NY_CALENDAR = calendar_from_spec(
    "ny",
    {
        "timezone": "America/New_York",
        "hours": {"mon-fri": "09:00-17:00"},
        "holidays": {"country": "US"},
    },
)
NY_RULE = btd.Rules(
    [
        btd.WorkDayRule(dt.time(9), dt.time(17), working_days=WEEKDAYS, tz=NEW_YORK),
        btd.HolidayRule(US_HOLIDAYS, tz=NEW_YORK),
    ]
)
BY_CALENDAR = calendar_from_spec(
    "by",
    {
        "timezone": "Europe/Berlin",
        "hours": {"mon-fri": "08:00-12:00,13:00-17:00"},
        "holidays": {"country": "DE", "subdivision": "BY"},
    },
)
BY_RULE = btd.Rules(
    [
        btd.WorkDayRule(dt.time(8), dt.time(17), working_days=WEEKDAYS, tz=BERLIN),
        btd.LunchTimeRule(dt.time(12), dt.time(13), working_days=WEEKDAYS, tz=BERLIN),
        btd.HolidayRule(BY_HOLIDAYS, tz=BERLIN),
    ]
)

FIRST = datetime(2020, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2030, 12, 1, tzinfo=UTC) - FIRST).total_seconds())


def _dst_changes(zone: pytz.BaseTzInfo) -> list[datetime]:
    """Instants (UTC, to the hour) at which the zone's offset changes in 2020-2030."""
    changes, t = [], datetime(2020, 1, 1, tzinfo=UTC)
    offset = t.astimezone(zone).utcoffset()
    while t.year <= 2030:
        t += timedelta(hours=1)
        if t.astimezone(zone).utcoffset() != offset:
            offset = t.astimezone(zone).utcoffset()
            changes.append(t)
    return changes


def _random_spans(
    rng: random.Random, count: int, zone: pytz.BaseTzInfo
) -> list[tuple[datetime, datetime]]:
    """Whole-second spans: 2/3 anywhere in 2020-2030, 1/3 starting within 3 days of a DST
    change; lengths up to 8 hours, 3 days or 40 days."""
    changes = _dst_changes(zone)
    spans = []
    for i in range(count):
        if i % 3 == 2:
            start = rng.choice(changes) + timedelta(seconds=rng.randint(-3 * 86400, 3 * 86400))
        else:
            start = FIRST + timedelta(seconds=rng.randrange(SPAN_SECONDS))
        limit = rng.choice((8 * 3600, 3 * 86400, 40 * 86400))
        spans.append((start, start + timedelta(seconds=rng.randint(1, limit))))
    return spans


def _reference_elapsed(rule: btd.Rules, a: datetime, b: datetime) -> float:
    seconds: float = rule.difference(a, b).timedelta.total_seconds()
    return seconds


def _mismatches(
    calendar: Calendar, rule: btd.Rules, spans: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime, float, float]]:
    out = []
    for a, b in spans:
        ours, theirs = calendar.elapsed(a, b), _reference_elapsed(rule, a, b)
        if ours != theirs:
            out.append((a, b, ours, theirs))
    return out


def test_lazy_holiday_years_equal_the_materialised_set() -> None:
    day = date(YEARS[0], 1, 1)
    while day.year < YEARS[-1]:
        assert NY_CALENDAR.is_holiday(day) == (day in US_HOLIDAYS), day
        assert BY_CALENDAR.is_holiday(day) == (day in BY_HOLIDAYS), day
        day += timedelta(days=1)


def test_elapsed_matches_businesstimedelta_new_york_9_to_5_us_holidays() -> None:
    spans = _random_spans(random.Random(20260101), 3000, NEW_YORK)
    assert _mismatches(NY_CALENDAR, NY_RULE, spans) == []
    # The sample really covered the interesting cases.
    assert sum(a.date() in US_HOLIDAYS for a, _ in spans) > 10
    assert sum(NY_CALENDAR.elapsed(a, b) == 0 for a, b in spans) > 50


def test_elapsed_matches_businesstimedelta_berlin_with_lunch_break() -> None:
    spans = _random_spans(random.Random(7), 1000, BERLIN)
    assert _mismatches(BY_CALENDAR, BY_RULE, spans) == []


@pytest.mark.parametrize(
    ("calendar", "rule", "zone"), [(NY_CALENDAR, NY_RULE, NEW_YORK), (BY_CALENDAR, BY_RULE, BERLIN)]
)
def test_add_matches_businesstimedelta(
    calendar: Calendar, rule: btd.Rules, zone: pytz.BaseTzInfo
) -> None:
    rng = random.Random(11)
    for a, _ in _random_spans(rng, 600, zone):
        # Whole seconds from 1 s (0 is excluded: see the module docstring) to 200 working hours.
        seconds = rng.choice((rng.randint(1, 8 * 3600), rng.randint(1, 200 * 3600)))
        theirs = a + btd.BusinessTimeDelta(rule, seconds=seconds)
        assert calendar.add(a, seconds) == theirs, (a, seconds)


def test_known_divergence_boundary_inside_a_dst_transition() -> None:
    """The one case excluded above, pinned: 02:30-04:00 daily in Berlin."""
    ours = calendar_from_spec(
        "edge", {"timezone": "Europe/Berlin", "hours": {"mon-sun": "02:30-04:00"}}
    )
    theirs = btd.WorkDayRule(dt.time(2, 30), dt.time(4), working_days=list(range(7)), tz=BERLIN)
    for day, bridge_hours, reference_hours in (
        (date(2026, 3, 28), 1.5, 1.5),  # an ordinary day: both agree
        # Spring: 02:30 does not exist. bridge opens at 03:00 CEST (first instant after the
        # gap) → 1 h; businesstimedelta opens at 02:30 CET = 03:30 CEST → 0.5 h.
        (date(2026, 3, 29), 1.0, 0.5),
        # Autumn: 02:30 occurs twice. bridge opens at the first (CEST) → 2.5 h; businesstimedelta
        # at the second (CET) → 1.5 h.
        (date(2026, 10, 25), 2.5, 1.5),
    ):
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=12)
        end = start + timedelta(days=1)
        assert ours.elapsed(start, end) == bridge_hours * 3600
        assert _reference_elapsed(theirs, start, end) == reference_hours * 3600
