"""Properties of business time that must hold for every calendar and span, DST days included.

Instants are drawn with microsecond resolution, half of them within two days of a DST change in
the calendar's zone, over calendars chosen to stress the wall-clock → UTC mapping: daytime hours
(9 real hours on every day), local 24x7 with holidays (23 h / 25 h days), a night shift
01:00-04:00 that spans the spring-forward gap and the fall-back overlap, and intervals whose
boundaries fall inside the gap or the overlap.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.kpi.calendar import Calendar
from bridge.kpi.calendar_spec import calendar_from_spec

US = timedelta(microseconds=1)
HOUR = 3600.0
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney")
COUNTRY = {"Europe/Berlin": "DE", "America/New_York": "US", "Australia/Sydney": "AU"}
FIRST, LAST = date(2024, 1, 1), date(2028, 12, 31)


def _cal(name: str, zone: str, hours: object, *, with_holidays: bool = False) -> Calendar:
    spec: dict[str, object] = {"timezone": zone, "hours": hours}
    if with_holidays:
        spec["holidays"] = {"country": COUNTRY[zone], "dates": ["2026-03-09", "2026-11-02"]}
    return calendar_from_spec(name, spec)


OFFICE = {"mon-fri": "08:00-12:00,13:00-17:00"}
DAILY = {"mon-sun": "08:00-17:00"}
NIGHT = {"mon-sun": "01:00-04:00"}
# Boundaries inside the gap and the overlap: 02:30 (Berlin, Sydney) and 01:30 / 02:30 (New York).
EDGES = {"mon-sun": "00:00-01:30,02:30-03:30,05:00-24:00"}

CALENDARS: list[Calendar] = []
for _zone in ZONES:
    CALENDARS += [
        _cal(f"office {_zone}", _zone, OFFICE, with_holidays=True),
        _cal(f"daily {_zone}", _zone, DAILY),
        _cal(f"24x7 {_zone}", _zone, "24x7", with_holidays=True),
        _cal(f"night {_zone}", _zone, NIGHT),
        _cal(f"edges {_zone}", _zone, EDGES, with_holidays=True),
    ]


def _dst_change_days(zone: str) -> list[date]:
    tz = ZoneInfo(zone)
    days, day = [], FIRST
    while day <= LAST:
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        if noon.utcoffset() != (noon - timedelta(days=1)).utcoffset():
            days.append(day)
        day += timedelta(days=1)
    return days


DST_DAYS = {zone: _dst_change_days(zone) for zone in ZONES}
START_US = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
END_US = int(datetime(2029, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
DAY_US = 86_400 * 1_000_000


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@st.composite
def anchors(draw: st.DrawFn, calendar: Calendar) -> datetime:
    """An instant in 2024-2028, half the time within two days of a DST change."""
    if draw(st.booleans()):
        return _from_us(draw(st.integers(START_US, END_US)))
    day = draw(st.sampled_from(DST_DAYS[calendar.timezone]))
    start = calendar.local_midnight(day) - timedelta(days=2)
    return start + timedelta(microseconds=draw(st.integers(0, 4 * DAY_US)))


# Offsets mostly within a few days, sometimes up to 40 days, always in whole microseconds.
offsets = st.one_of(
    st.integers(0, 6 * 3_600_000_000),
    st.integers(0, 4 * DAY_US),
    st.integers(0, 40 * DAY_US),
).map(lambda us: timedelta(microseconds=us))


@st.composite
def calendar_and_instants(draw: st.DrawFn, count: int) -> tuple[Calendar, list[datetime]]:
    calendar = draw(st.sampled_from(CALENDARS))
    anchor = draw(anchors(calendar))
    instants = [anchor + draw(offsets) for _ in range(count)]
    return calendar, sorted(instants)


durations = st.one_of(
    st.integers(0, 8 * 3600).map(float),
    st.floats(0, 40 * 86_400, allow_nan=False),
    st.integers(0, 30 * 86_400 * 1_000_000).map(lambda us: us / 1e6),
)


@settings(max_examples=400, deadline=None)
@given(calendar_and_instants(1), durations)
def test_add_inverts_elapsed_and_is_the_earliest_such_instant(
    drawn: tuple[Calendar, list[datetime]], seconds: float
) -> None:
    calendar, (a,) = drawn
    t = calendar.add(a, seconds)
    assert t >= a
    assert abs(calendar.elapsed(a, t) - seconds) <= 1e-6
    if t > a:
        # Earliest: one microsecond earlier the goal was not yet reached, and the clock ran.
        assert calendar.elapsed(a, t - US) < calendar.elapsed(a, t)
        assert calendar.is_open(t - US)


@settings(max_examples=400, deadline=None)
@given(calendar_and_instants(3))
def test_elapsed_is_additive_over_adjacent_spans(
    drawn: tuple[Calendar, list[datetime]],
) -> None:
    calendar, (a, b, c) = drawn
    whole = calendar.elapsed(a, c)
    assert abs(calendar.elapsed(a, b) + calendar.elapsed(b, c) - whole) <= 1e-6


@settings(max_examples=300, deadline=None)
@given(calendar_and_instants(3))
def test_elapsed_is_monotone_and_bounded_by_wall_time(
    drawn: tuple[Calendar, list[datetime]],
) -> None:
    calendar, (a, b1, b2) = drawn
    first, second = calendar.elapsed(a, b1), calendar.elapsed(a, b2)
    assert 0 <= first <= second
    assert second <= (b2 - a).total_seconds()  # both UTC: a real-time difference
    assert calendar.elapsed(b2, a) == 0.0


@settings(max_examples=300, deadline=None)
@given(calendar_and_instants(1))
def test_nothing_counts_while_closed(drawn: tuple[Calendar, list[datetime]]) -> None:
    calendar, (t,) = drawn
    opens = calendar.next_open(t)
    assert opens >= t
    assert calendar.is_open(opens)
    assert calendar.elapsed(t, opens) == 0.0
    assert (opens == t) == calendar.is_open(t)
    assert calendar.is_open(t) == (calendar.elapsed(t, t + US) > 0)


def _holiday_dates(calendar: Calendar) -> list[date]:
    assert calendar.country
    found = holidays.country_holidays(calendar.country, years=range(2024, 2029))
    return sorted(set(found) | calendar.extra_holidays)


WITH_HOLIDAYS = [c for c in CALENDARS if c.country]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(WITH_HOLIDAYS).flatmap(lambda c: st.tuples(st.just(c), st.data())))
def test_holidays_close_the_whole_local_day(drawn: tuple[Calendar, st.DataObject]) -> None:
    calendar, data = drawn
    day = data.draw(st.sampled_from(_holiday_dates(calendar)))
    start, end = calendar.local_midnight(day), calendar.local_midnight(day + timedelta(days=1))
    assert calendar.is_holiday(day)
    assert calendar.elapsed(start, end) == 0.0
    assert not calendar.is_open(start + (end - start) / 2)
    assert calendar.next_open(start) >= end
    # Business time reaching into the holiday stops at its start and resumes after it.
    before = start - timedelta(hours=30)
    assert calendar.elapsed(before, end) == calendar.elapsed(before, start)


def _oracle_seconds(calendar: Calendar, a: datetime, minutes: int) -> float:
    """Minute-by-minute count from local wall-clock time, independent of the engine."""
    tz = ZoneInfo(calendar.timezone)
    assert calendar.country
    off = set(holidays.country_holidays(calendar.country, years=range(2023, 2030))) | set(
        calendar.extra_holidays
    )
    open_minutes = 0
    for m in range(minutes):
        local = (a + timedelta(minutes=m)).astimezone(tz)
        second = local.hour * 3600 + local.minute * 60
        if local.date() not in off and any(
            s <= second < e for s, e in calendar.week[local.weekday()]
        ):
            open_minutes += 1
    return open_minutes * 60.0


# The office calendars' boundaries (08:00, 12:00, 13:00, 17:00) never fall in a DST transition,
# so counting local wall-clock minutes is an exact reference for them.
@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([c for c in CALENDARS if c.name.startswith("office")]).flatmap(
        lambda c: st.tuples(st.just(c), anchors(c), st.integers(0, 3 * 24 * 60))
    )
)
def test_office_hours_match_a_minute_by_minute_oracle(
    drawn: tuple[Calendar, datetime, int],
) -> None:
    calendar, anchor, minutes = drawn
    a = anchor.replace(second=0, microsecond=0)
    b = a + timedelta(minutes=minutes)
    assert calendar.elapsed(a, b) == _oracle_seconds(calendar, a, minutes)


dates = st.dates(FIRST, LAST)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CALENDARS), dates, dates, dates)
def test_working_days_between_is_antisymmetric_additive_and_counts_working_days(
    calendar: Calendar, d1: date, d2: date, d3: date
) -> None:
    forward = calendar.working_days_between(d1, d2)
    assert forward == -calendar.working_days_between(d2, d1)
    assert forward + calendar.working_days_between(d2, d3) == calendar.working_days_between(d1, d3)
    low, high = min(d1, d2), max(d1, d2)
    if (high - low).days <= 400:
        count = sum(
            calendar.is_working_day(low + timedelta(days=i))
            for i in range(1, (high - low).days + 1)
        )
        assert abs(forward) == count


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([*ZONES, "America/Havana", "America/Santiago", "Asia/Kolkata", "UTC"]),
    dates,
)
def test_local_midnight_starts_the_local_date(zone: str, day: date) -> None:
    calendar = calendar_from_spec("z", {"timezone": zone})
    start = calendar.local_midnight(day)
    assert start.tzinfo is UTC
    assert calendar.local_date(start) == day
    assert calendar.local_date(start - US) == day - timedelta(days=1)
    length = calendar.local_midnight(day + timedelta(days=1)) - start
    assert timedelta(hours=23) <= length <= timedelta(hours=25)
    assert calendar.elapsed(start, start + length) == length.total_seconds()


# -- DST days, exactly ---------------------------------------------------------------------------

SPRING = {"Europe/Berlin": date(2026, 3, 29), "America/New_York": date(2026, 3, 8)}
SPRING["Australia/Sydney"] = date(2026, 10, 4)
AUTUMN = {"Europe/Berlin": date(2026, 10, 25), "America/New_York": date(2026, 11, 1)}
AUTUMN["Australia/Sydney"] = date(2026, 4, 5)


def _day_hours(calendar: Calendar, day: date) -> float:
    start = calendar.local_midnight(day)
    return calendar.elapsed(start, calendar.local_midnight(day + timedelta(days=1))) / HOUR


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    ("hours", "spring", "autumn", "ordinary"),
    [
        ("24x7", 23, 25, 24),  # a local day is as long as the clocks make it
        (DAILY, 9, 9, 9),  # wall-clock working hours are real hours on every day
        (NIGHT, 2, 4, 3),  # 01:00-04:00 spans the gap (02:00→03:00) and the overlap
    ],
)
def test_dst_day_lengths(
    zone: str, hours: object, spring: float, autumn: float, ordinary: float
) -> None:
    calendar = _cal("dst", zone, hours)
    assert _day_hours(calendar, SPRING[zone]) == spring
    assert _day_hours(calendar, AUTUMN[zone]) == autumn
    assert _day_hours(calendar, SPRING[zone] - timedelta(days=1)) == ordinary
    assert _day_hours(calendar, AUTUMN[zone] + timedelta(days=1)) == ordinary


@pytest.mark.parametrize(
    ("zone", "hours", "day", "opens", "closes"),
    [
        # Spring, a boundary in the gap: the interval starts at the first instant after it.
        ("Europe/Berlin", "02:30-03:30", "2026-03-29", "2026-03-29T01:00", "2026-03-29T01:30"),
        ("America/New_York", "01:30-02:30", "2026-03-08", "2026-03-08T06:30", "2026-03-08T07:00"),
        ("Australia/Sydney", "02:30-03:30", "2026-10-04", "2026-10-03T16:00", "2026-10-03T16:30"),
        # Autumn, a boundary in the overlap: its first occurrence (summer time, fold=0).
        ("Europe/Berlin", "02:30-03:30", "2026-10-25", "2026-10-25T00:30", "2026-10-25T02:30"),
        ("America/New_York", "01:30-02:30", "2026-11-01", "2026-11-01T05:30", "2026-11-01T07:30"),
        ("Australia/Sydney", "02:30-03:30", "2026-04-05", "2026-04-04T15:30", "2026-04-04T17:30"),
        # The night shift across the gap and the overlap.
        ("Europe/Berlin", "01:00-04:00", "2026-03-29", "2026-03-29T00:00", "2026-03-29T02:00"),
        ("Europe/Berlin", "01:00-04:00", "2026-10-25", "2026-10-24T23:00", "2026-10-25T03:00"),
        ("America/New_York", "01:00-04:00", "2026-11-01", "2026-11-01T05:00", "2026-11-01T09:00"),
    ],
)
def test_boundaries_in_dst_transitions(
    zone: str, hours: str, day: str, opens: str, closes: str
) -> None:
    calendar = _cal("edge", zone, {"mon-sun": hours})
    local_day = date.fromisoformat(day)
    start = calendar.local_midnight(local_day)
    open_at = datetime.fromisoformat(opens).replace(tzinfo=UTC)
    close_at = datetime.fromisoformat(closes).replace(tzinfo=UTC)
    assert calendar.next_open(start) == open_at
    assert calendar.add(start, 1e-6) == open_at + US
    length = (close_at - open_at).total_seconds()
    assert calendar.add(start, length) == close_at
    assert calendar.is_open(close_at - US)
    assert not calendar.is_open(close_at)
    next_day = calendar.local_midnight(local_day + timedelta(days=1))
    assert calendar.elapsed(start, next_day) == length


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(CALENDARS),
    st.dates(date(2020, 1, 1), date(2032, 12, 31)),
    st.one_of(st.integers(-40, 40), st.integers(-3000, 3000)),
)
def test_working_days_between_counts_each_working_day_once(
    calendar: Calendar, d1: date, offset: int
) -> None:
    """The cached count (across cache blocks) equals counting day by day, and the reverse
    count is its negation; DST-change days stay working days whatever their hours."""
    d2 = d1 + timedelta(days=offset)
    lo, hi = min(d1, d2), max(d1, d2)
    expected = sum(
        1 for n in range(1, (hi - lo).days + 1) if calendar.is_working_day(lo + timedelta(days=n))
    )
    assert calendar.working_days_between(lo, hi) == expected
    assert calendar.working_days_between(hi, lo) == -expected
    assert calendar.working_days_between(d1, d2) == (expected if d1 <= d2 else -expected)


def test_working_days_between_over_decades_matches_the_weekly_count() -> None:
    calendar = CALENDARS[0]
    d1, d2 = date(1990, 5, 17), date(2049, 2, 3)  # beyond the cached span: counted by weeks
    expected = sum(
        1 for n in range(1, (d2 - d1).days + 1) if calendar.is_working_day(d1 + timedelta(days=n))
    )
    assert calendar.working_days_between(d1, d2) == expected
