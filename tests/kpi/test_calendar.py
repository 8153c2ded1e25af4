"""Worked examples for the business calendar, and the admin spec's error messages."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest

from bridge.kpi.calendar import UTC_24X7, WEEK_24X7, Calendar
from bridge.kpi.calendar_spec import CalendarSpecError, calendar_from_spec, check_calendar_spec

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600.0

OFFICE = calendar_from_spec(
    "office", {"timezone": "Europe/Berlin", "hours": {"mon-fri": "08:00-17:00"}}
)
OFFICE_DE = calendar_from_spec(
    "office-de",
    {
        "timezone": "Europe/Berlin",
        "hours": {"mon-fri": "08:00-17:00"},
        "holidays": {"country": "DE", "subdivision": "BY", "dates": ["2026-12-24", "2026-12-31"]},
    },
)
LUNCH = calendar_from_spec(
    "lunch", {"timezone": "Europe/Berlin", "hours": {"mon-fri": "08:00-12:00,13:00-17:00"}}
)


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=BERLIN)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


# -- elapsed / add: the worked examples of docs/KPIS.md and the reference sheet ---------------


def test_clock_started_outside_hours_begins_at_next_opening() -> None:
    # ServiceNow's example: opened Fri 20:49, resolved Mon 09:44 on Mon-Fri 08:00-17:00.
    opened, resolved = berlin(2026, 3, 6, 20, 49), berlin(2026, 3, 9, 9, 44)
    assert OFFICE.elapsed(opened, resolved) == 6240.0
    assert OFFICE.add(opened, 6240) == resolved.astimezone(UTC)


def test_same_example_in_utc_and_with_utc_inputs_for_a_local_calendar() -> None:
    cal = calendar_from_spec("utc-office", {"hours": {"mon-fri": "08:00-17:00"}})
    assert cal.timezone == "UTC"
    assert cal.elapsed(utc(2026, 3, 6, 20, 49), utc(2026, 3, 9, 9, 44)) == 6240.0
    # The same local instants given in UTC to the Berlin calendar (CET = UTC+1).
    assert OFFICE.elapsed(utc(2026, 3, 6, 19, 49), utc(2026, 3, 9, 8, 44)) == 6240.0


def test_goal_running_out_at_closing_time_ends_at_closing_time() -> None:
    monday_open = berlin(2026, 3, 9, 8)
    assert OFFICE.add(monday_open, 9 * HOUR) == berlin(2026, 3, 9, 17).astimezone(UTC)
    assert OFFICE.add(berlin(2026, 3, 9, 16), HOUR) == berlin(2026, 3, 9, 17)
    # One second more rolls into the next morning.
    assert OFFICE.add(monday_open, 9 * HOUR + 1) == berlin(2026, 3, 10, 8, 0, 1)
    # Started outside hours: the goal still runs out at a closing time, not the next opening.
    assert OFFICE.add(berlin(2026, 3, 7, 11), 9 * HOUR) == berlin(2026, 3, 9, 17)


def test_add_zero_is_the_start_even_outside_hours() -> None:
    saturday = berlin(2026, 3, 7, 11, 30)
    assert OFFICE.add(saturday, 0) == saturday
    assert OFFICE.add(saturday, 0).tzinfo is UTC
    assert OFFICE.add(saturday, 1) == berlin(2026, 3, 9, 8, 0, 1)


def test_add_and_results_are_utc() -> None:
    result = OFFICE.add(berlin(2026, 3, 9, 8), 60)
    assert result.tzinfo is UTC
    assert result == utc(2026, 3, 9, 7, 1)
    assert OFFICE.next_open(berlin(2026, 3, 7)).tzinfo is UTC


def test_add_keeps_microseconds() -> None:
    start = berlin(2026, 3, 9, 8)
    assert OFFICE.add(start, 1.25e-4) == start + timedelta(microseconds=125)
    assert OFFICE.elapsed(start, start + timedelta(microseconds=125)) == pytest.approx(1.25e-4)


def test_holiday_on_the_start_day() -> None:
    # Easter Monday 2026-04-06 is a holiday: the clock starts on Tuesday 08:00.
    opened = berlin(2026, 4, 6, 10)
    assert OFFICE_DE.elapsed(opened, berlin(2026, 4, 7, 10)) == 2 * HOUR
    assert OFFICE_DE.next_open(opened) == berlin(2026, 4, 7, 8)
    assert not OFFICE_DE.is_open(opened)
    assert OFFICE.is_open(opened)  # the same hours without holidays


def test_easter_weekend_counts_only_thursday_and_tuesday() -> None:
    # Thu 16:00 → Tue 09:00 with Good Friday and Easter Monday closed: 1 h + 1 h.
    assert OFFICE_DE.elapsed(berlin(2026, 4, 2, 16), berlin(2026, 4, 7, 9)) == 2 * HOUR
    assert OFFICE_DE.add(berlin(2026, 4, 2, 16), 2 * HOUR) == berlin(2026, 4, 7, 9)


def test_extra_holiday_dates_close_the_day() -> None:
    christmas_eve = date(2026, 12, 24)  # a Thursday, no public holiday in DE
    assert OFFICE_DE.is_holiday(christmas_eve)
    assert not OFFICE_DE.is_working_day(christmas_eve)
    assert OFFICE_DE.elapsed(berlin(2026, 12, 24, 0), berlin(2026, 12, 25, 0)) == 0.0
    assert OFFICE.elapsed(berlin(2026, 12, 24, 0), berlin(2026, 12, 25, 0)) == 9 * HOUR


def test_span_over_a_weekend() -> None:
    assert OFFICE.elapsed(berlin(2026, 3, 6, 16), berlin(2026, 3, 9, 9)) == 2 * HOUR
    assert OFFICE.elapsed(berlin(2026, 3, 7, 0), berlin(2026, 3, 9, 0)) == 0.0
    assert OFFICE.add(berlin(2026, 3, 6, 16), 2 * HOUR) == berlin(2026, 3, 9, 9)
    assert OFFICE.next_open(berlin(2026, 3, 6, 17)) == berlin(2026, 3, 9, 8)


def test_lunch_break_is_not_counted() -> None:
    assert LUNCH.elapsed(berlin(2026, 3, 9, 11, 30), berlin(2026, 3, 9, 13, 30)) == HOUR
    assert LUNCH.add(berlin(2026, 3, 9, 11, 30), HOUR) == berlin(2026, 3, 9, 13, 30)
    # Running out exactly at the start of lunch gives 12:00, not 13:00.
    assert LUNCH.add(berlin(2026, 3, 9, 11), HOUR) == berlin(2026, 3, 9, 12)
    assert not LUNCH.is_open(berlin(2026, 3, 9, 12, 30))
    assert LUNCH.is_open(berlin(2026, 3, 9, 13))
    assert not LUNCH.is_open(berlin(2026, 3, 9, 17))
    assert LUNCH.next_open(berlin(2026, 3, 9, 12, 30)) == berlin(2026, 3, 9, 13)
    assert LUNCH.elapsed(berlin(2026, 3, 9), berlin(2026, 3, 10)) == 8 * HOUR


def test_24x7_utc_is_wall_clock_time() -> None:
    a, b = utc(2026, 3, 28, 22, 15), utc(2026, 4, 2, 7, 5, 3)
    assert UTC_24X7.elapsed(a, b) == (b - a).total_seconds()
    assert UTC_24X7.add(a, 1234.5) == a + timedelta(seconds=1234.5)
    assert UTC_24X7.is_open(a)
    assert UTC_24X7.next_open(a) == a
    assert UTC_24X7.week == WEEK_24X7
    assert UTC_24X7.working_days_between(date(2026, 3, 1), date(2026, 3, 31)) == 30


def test_24x7_local_calendar_keeps_holidays_closed() -> None:
    cal = calendar_from_spec(
        "de-24x7", {"timezone": "Europe/Berlin", "hours": "24x7", "holidays": {"country": "DE"}}
    )
    # Good Friday 2026-04-03 is closed all local day; Thursday and Saturday are open.
    assert cal.elapsed(berlin(2026, 4, 2), berlin(2026, 4, 5)) == 48 * HOUR
    assert cal.next_open(berlin(2026, 4, 3, 12)) == berlin(2026, 4, 4)
    assert cal.add(berlin(2026, 4, 2, 23), 2 * HOUR) == berlin(2026, 4, 4, 1)


def test_span_of_months_equals_working_days_times_day_length() -> None:
    de_2026 = holidays.country_holidays("DE", subdiv="BY", years=2026)
    extra = {date(2026, 12, 24), date(2026, 12, 31)}
    day, working_days = date(2026, 1, 1), 0
    while day.year == 2026:
        working_days += day.weekday() < 5 and day not in de_2026 and day not in extra
        day += timedelta(days=1)
    assert working_days == 250
    year = OFFICE_DE.elapsed(berlin(2026, 1, 1), berlin(2027, 1, 1))
    assert year == working_days * 9 * HOUR
    assert OFFICE_DE.working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == working_days
    # The goal of a whole year's working time runs out at the last closing time of 2026.
    assert OFFICE_DE.add(berlin(2026, 1, 1), year) == berlin(2026, 12, 30, 17)


def test_long_spans_are_sums_of_shorter_ones_across_cache_blocks() -> None:
    # 1950-2050 touches more blocks than the cache keeps, so this also exercises eviction.
    cal = dataclasses.replace(OFFICE_DE)  # a fresh copy with empty caches
    years = [cal.elapsed(berlin(y, 1, 1), berlin(y + 1, 1, 1)) for y in range(1950, 2050)]
    assert cal.elapsed(berlin(1950, 1, 1), berlin(2050, 1, 1)) == sum(years)
    assert cal.elapsed(berlin(2026, 1, 1), berlin(2027, 1, 1)) == years[2026 - 1950]
    assert cal.add(berlin(1950, 1, 1), sum(years)) == berlin(2049, 12, 31, 17)  # a Friday


def test_elapsed_is_zero_for_reversed_or_empty_spans() -> None:
    a = berlin(2026, 3, 9, 10)
    assert OFFICE.elapsed(a, a) == 0.0
    assert OFFICE.elapsed(a, a - timedelta(hours=1)) == 0.0


def test_inputs_may_be_in_any_zone() -> None:
    a = datetime(2026, 3, 9, 3, tzinfo=NEW_YORK)  # 08:00 Berlin
    assert OFFICE.elapsed(a, berlin(2026, 3, 9, 9)) == HOUR


def test_naive_datetimes_and_negative_durations_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        OFFICE.elapsed(datetime(2026, 3, 9, 8), berlin(2026, 3, 9, 9))
    with pytest.raises(ValueError, match="naive"):
        OFFICE.local_date(datetime(2026, 3, 9, 8))
    with pytest.raises(ValueError, match=">= 0"):
        OFFICE.add(berlin(2026, 3, 9, 8), -1)
    with pytest.raises(ValueError, match=">= 0"):
        OFFICE.add(berlin(2026, 3, 9, 8), float("nan"))
    with pytest.raises(ValueError, match=">= 0"):
        OFFICE.add(berlin(2026, 3, 9, 8), float("inf"))


def test_next_open_and_is_open_at_the_edges() -> None:
    assert OFFICE.is_open(berlin(2026, 3, 9, 8))
    assert not OFFICE.is_open(berlin(2026, 3, 9, 17))
    assert OFFICE.next_open(berlin(2026, 3, 9, 8)) == berlin(2026, 3, 9, 8)
    assert OFFICE.next_open(berlin(2026, 3, 9, 12, 34, 56)) == berlin(2026, 3, 9, 12, 34, 56)
    assert OFFICE.next_open(berlin(2026, 3, 9, 7, 59)) == berlin(2026, 3, 9, 8)


def test_calendar_with_a_day_off_every_week_and_24_00_end() -> None:
    cal = calendar_from_spec(
        "late", {"timezone": "America/New_York", "hours": {"sat": ["18:00-24:00"]}}
    )
    saturday = datetime(2026, 3, 7, 18, tzinfo=NEW_YORK)
    assert cal.elapsed(saturday, saturday + timedelta(days=7)) == 6 * HOUR
    assert cal.add(saturday, 6 * HOUR) == datetime(2026, 3, 8, 0, tzinfo=NEW_YORK)
    assert cal.next_open(datetime(2026, 3, 8, 0, tzinfo=NEW_YORK)) == datetime(
        2026, 3, 14, 18, tzinfo=NEW_YORK
    )


# -- working days and local dates -------------------------------------------------------------


@pytest.mark.parametrize(
    ("d1", "d2", "expected"),
    [
        (date(2026, 3, 6), date(2026, 3, 9), 1),  # Fri → Mon: only Monday counts
        (date(2026, 3, 9), date(2026, 3, 13), 4),  # Mon → Fri: Tue..Fri
        (date(2026, 3, 9), date(2026, 3, 9), 0),
        (date(2026, 3, 9), date(2026, 3, 6), -1),  # early: negative of the reverse count
        (date(2026, 3, 7), date(2026, 3, 8), 0),  # Sat → Sun
        (date(2026, 3, 2), date(2026, 3, 30), 20),  # four whole weeks
        (date(2026, 4, 2), date(2026, 4, 7), 1),  # Good Friday and Easter Monday excluded
        (date(2026, 4, 7), date(2026, 4, 2), -1),
        (date(2026, 4, 3), date(2026, 4, 6), 0),  # a holiday as d1 is never counted anyway
        (date(2026, 12, 23), date(2027, 1, 4), 4),  # 24, 25, 26, 31, 1 Jan off: 28, 29, 30, 4
    ],
)
def test_working_days_between(d1: date, d2: date, expected: int) -> None:
    assert OFFICE_DE.working_days_between(d1, d2) == expected


def test_working_days_between_with_saturday_hours() -> None:
    cal = calendar_from_spec("six", {"hours": {"mon-fri": "08:00-17:00", "sat": "09:00-12:00"}})
    assert cal.working_days_between(date(2026, 3, 6), date(2026, 3, 9)) == 2
    assert cal.working_days_between(date(2026, 3, 1), date(2026, 3, 29)) == 24


def test_local_date_and_midnight() -> None:
    assert OFFICE.local_date(utc(2026, 3, 6, 23, 30)) == date(2026, 3, 7)
    assert OFFICE.local_date(utc(2026, 3, 6, 22, 59)) == date(2026, 3, 6)
    assert OFFICE.local_midnight(date(2026, 3, 7)) == utc(2026, 3, 6, 23)
    assert OFFICE.local_midnight(date(2026, 7, 7)) == utc(2026, 7, 6, 22)
    assert UTC_24X7.local_midnight(date(2026, 3, 7)) == utc(2026, 3, 7)


def test_local_midnight_across_dst_changes() -> None:
    spring = [OFFICE.local_midnight(date(2026, 3, d)) for d in (29, 30)]
    assert spring == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)]
    assert spring[1] - spring[0] == timedelta(hours=23)
    autumn = [OFFICE.local_midnight(date(2026, 10, d)) for d in (25, 26)]
    assert autumn == [utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)]
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_local_midnight_that_does_not_exist_is_the_end_of_the_gap() -> None:
    # Havana springs forward at midnight: 2026-03-08 starts at 01:00 CDT (05:00 UTC).
    havana = calendar_from_spec("cu", {"timezone": "America/Havana"})
    start = havana.local_midnight(date(2026, 3, 8))
    assert start == utc(2026, 3, 8, 5)
    assert havana.local_date(start) == date(2026, 3, 8)
    assert havana.local_date(start - timedelta(microseconds=1)) == date(2026, 3, 7)
    day = havana.elapsed(havana.local_midnight(date(2026, 3, 7)), start)
    assert day == 24 * HOUR  # Saturday is a whole day; Sunday has 23 hours
    assert havana.elapsed(start, havana.local_midnight(date(2026, 3, 9))) == 23 * HOUR


# -- the calendar value ------------------------------------------------------------------------


def test_calendar_is_immutable_and_compared_by_definition() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        OFFICE.timezone = "UTC"  # type: ignore[misc]
    same = calendar_from_spec(
        "other-name", {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["08:00-17:00"]}}
    )
    assert same == OFFICE
    assert hash(same) == hash(OFFICE)
    assert {OFFICE, same} == {OFFICE}
    assert OFFICE != OFFICE_DE


def test_calendar_pickles_and_copies_without_its_caches() -> None:
    OFFICE_DE.elapsed(berlin(2026, 1, 1), berlin(2026, 2, 1))  # fill the caches
    for clone in (pickle.loads(pickle.dumps(OFFICE_DE)), copy.deepcopy(OFFICE_DE)):  # noqa: S301
        assert clone == OFFICE_DE
        assert clone.name == OFFICE_DE.name
        assert clone.elapsed(berlin(2026, 4, 2, 16), berlin(2026, 4, 7, 9)) == 2 * HOUR


def test_programmatic_construction_validates() -> None:
    monday = ((8 * 3600, 12 * 3600), (12 * 3600, 17 * 3600))
    cal = Calendar(timezone="Europe/Berlin", week=(monday, (), (), (), (), (), ()))
    assert cal.week[0] == ((8 * 3600, 17 * 3600),)  # touching intervals merge
    with pytest.raises(ValueError, match="time zone"):
        Calendar(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="7 days"):
        Calendar(week=(((0, 3600),),))
    with pytest.raises(ValueError, match="overlap"):
        Calendar(week=(((0, 7200), (3600, 9000)),) + ((),) * 6)
    with pytest.raises(ValueError, match="at least one"):
        Calendar(week=((),) * 7)
    with pytest.raises(ValueError, match="XX"):
        Calendar(country="XX")
    with pytest.raises(ValueError, match="needs a country"):
        Calendar(subdivision="BY")


# -- the admin spec ----------------------------------------------------------------------------


def test_spec_shapes() -> None:
    full = calendar_from_spec(
        "berlin",
        {
            "timezone": "Europe/Berlin",
            "hours": {"mon-fri": "08:00-17:00", "sat": "09:00-12:00"},
            "holidays": {"country": "DE", "subdivision": "BY", "dates": ["2026-12-24"]},
            "description": "support desk",
        },
    )
    assert full.name == "berlin"
    assert full.week[0] == ((8 * 3600, 17 * 3600),)
    assert full.week[5] == ((9 * 3600, 12 * 3600),)
    assert full.week[6] == ()
    assert (full.country, full.subdivision) == ("DE", "BY")
    assert full.extra_holidays == frozenset({date(2026, 12, 24)})

    defaults = calendar_from_spec("defaults", {})
    assert (defaults.timezone, defaults.week, defaults.country) == ("UTC", WEEK_24X7, None)
    assert defaults == UTC_24X7
    assert calendar_from_spec("s", {"hours": "24x7"}).week == WEEK_24X7
    assert calendar_from_spec("s", {"hours": "24/7"}).week == WEEK_24X7

    split = calendar_from_spec("split", {"hours": {"mon-fri": "08:00-12:00, 13:00-17:00"}})
    listed = calendar_from_spec("list", {"hours": {"mon-fri": ["08:00-12:00", "13:00-17:00"]}})
    assert split.week == listed.week
    assert split.week[4] == ((8 * 3600, 12 * 3600), (13 * 3600, 17 * 3600))

    mixed = calendar_from_spec(
        "mixed",
        {
            "hours": {
                "Monday-Wednesday": "22:00-24:00",
                "thu, fri": "00:00-24:00",
                "sat": "closed",
                "sun": None,
            }
        },
    )
    assert mixed.week[:3] == (((22 * 3600, 86400),),) * 3
    assert mixed.week[3:5] == (((0, 86400),),) * 2
    assert mixed.week[5:] == ((), ())

    lower = calendar_from_spec("lower", {"holidays": {"country": "de", "subdivision": "by"}})
    assert (lower.country, lower.subdivision) == ("DE", "BY")
    alpha3 = calendar_from_spec("alpha3", {"holidays": {"country": "DEU"}})
    assert alpha3.country == "DE"
    typed = calendar_from_spec("typed", {"holidays": {"dates": [date(2026, 12, 24)]}})
    assert typed.extra_holidays == frozenset({date(2026, 12, 24)})


# Each case: spec, the path of the (only) error, and fragments its message must contain.
SPEC_ERRORS: list[tuple[dict[str, Any], tuple[str | int, ...], list[str]]] = [
    ({"timezone": "Europe/Berln"}, ("timezone",), ["unknown time zone", "Europe/Berlin"]),
    ({"timezone": "europe/berlin"}, ("timezone",), ["did you mean Europe/Berlin"]),
    ({"timezone": "Berlin"}, ("timezone",), ["did you mean Europe/Berlin"]),
    ({"timezone": None}, ("timezone",), ["IANA", "leave the key out for UTC"]),
    ({"timezon": "UTC"}, ("timezon",), ["unknown key", "did you mean timezone"]),
    ({"hours": None}, ("hours",), ["24x7", "mon-fri"]),
    ({"hours": ["08:00-17:00"]}, ("hours",), ["mapping of days"]),
    ({"hours": {"mon-fri": "17:00-08:00"}}, ("hours", "mon-fri"), ["ends before it starts"]),
    ({"hours": {"mon": "08:00-08:00"}}, ("hours", "mon"), ["is empty"]),
    ({"hours": {"mon": "8-17"}}, ("hours", "mon"), ["HH:MM-HH:MM", "08:00-17:00"]),
    ({"hours": {"mon": "08:00-24:30"}}, ("hours", "mon"), ["out of range", "24:00"]),
    ({"hours": {"mon": "24:00-24:00"}}, ("hours", "mon"), ["24:00 can only end"]),
    ({"hours": {"mon": 480}}, ("hours", "mon"), ["quoted string"]),
    ({"hours": {"mon": ["08:00-12:00", 7]}}, ("hours", "mon", 1), ["not a working interval"]),
    (
        {"hours": {"mon-fri": "08:00-12:00,11:00-17:00"}},
        ("hours", "mon-fri"),
        ["11:00-17:00 overlaps 08:00-12:00", "08:00-11:00,11:00-17:00"],
    ),
    (
        {"hours": {"mon-fri": ["13:00-17:00", "08:00-13:30"]}},
        ("hours", "mon-fri", 0),
        ["13:00-17:00 overlaps 08:00-13:30"],
    ),
    ({"hours": {"mnday": "08:00-17:00"}}, ("hours", "mnday"), ["'mnday' is not a day", "monday"]),
    ({"hours": {"mon-fry": "08:00-17:00"}}, ("hours", "mon-fry"), ["'mon-fry' is not a day"]),
    (
        {"hours": {"fri-mon": "08:00-17:00"}},
        ("hours", "fri-mon"),
        ["runs backwards", "fri-sun and mon", "fri,sat,sun,mon"],
    ),
    (
        {"hours": {"mon-fri": "08:00-17:00", "fri": "09:00-12:00"}},
        ("hours", "fri"),
        ["fri is already given by 'mon-fri'"],
    ),
    ({"hours": {"mon-sun": "closed"}}, ("hours",), ["no working time"]),
    ({"holidays": "DE"}, ("holidays",), ["mapping", "country: DE"]),
    ({"holidays": {"country": "DX"}}, ("holidays", "country"), ["unknown country code", "DE"]),
    ({"holidays": {"country": "Germany"}}, ("holidays", "country"), ["did you mean DE?"]),
    ({"holidays": {"country": "Germny"}}, ("holidays", "country"), ["did you mean DE?"]),
    (
        {"holidays": {"country": "DE", "subdivision": "BX"}},
        ("holidays", "subdivision"),
        ["DE has no subdivision 'BX'", "BY", "nationwide"],
    ),
    (
        {"holidays": {"country": "IS", "subdivision": "X"}},
        ("holidays", "subdivision"),
        ["IS has no holiday subdivisions"],
    ),
    ({"holidays": {"subdivision": "BY"}}, ("holidays", "subdivision"), ["needs a country"]),
    ({"holidays": {"countries": "DE"}}, ("holidays", "countries"), ["did you mean country"]),
    ({"holidays": {"dates": "2026-12-24"}}, ("holidays", "dates"), ["must be a list"]),
    ({"holidays": {"dates": ["2026-12-24", "24.12.2026"]}}, ("holidays", "dates", 1), ["YYYY"]),
]


@pytest.mark.parametrize(("spec", "path", "fragments"), SPEC_ERRORS)
def test_spec_error_path_and_message(
    spec: dict[str, Any], path: tuple[str | int, ...], fragments: list[str]
) -> None:
    problems = check_calendar_spec(spec)
    assert [p.path for p in problems] == [path]
    for fragment in fragments:
        assert fragment in problems[0].message
    with pytest.raises(CalendarSpecError) as caught:
        calendar_from_spec("desk", spec)
    assert caught.value.path == path
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("calendar 'desk' at ")


def test_check_calendar_spec_returns_every_problem_and_calendar_from_spec_the_first() -> None:
    spec = {
        "timezone": "Europe/Berln",
        "hours": {
            "mon-fri": "08:00-12:00,11:00-17:00",
            "sat": "13:00-12:00",
            "sunday-monday": "10:00-11:00",
        },
        "holidays": {"country": "DX", "dates": ["tomorrow"]},
        "colour": "blue",
    }
    problems = check_calendar_spec(spec)
    assert [p.path for p in problems] == [
        ("colour",),
        ("timezone",),
        ("hours", "mon-fri"),
        ("hours", "sat"),
        ("hours", "sunday-monday"),
        ("holidays", "country"),
        ("holidays", "dates", 0),
    ]
    assert all(isinstance(p, CalendarSpecError) and p.calendar is None for p in problems)
    with pytest.raises(CalendarSpecError) as caught:
        calendar_from_spec("desk", spec)
    assert (caught.value.path, caught.value.message) == (problems[0].path, problems[0].message)
    assert caught.value.calendar == "desk"
    assert str(caught.value) == f"calendar 'desk' at colour: {problems[0].message}"


def test_valid_specs_have_no_problems() -> None:
    assert check_calendar_spec({}) == []
    assert check_calendar_spec({"timezone": "Asia/Kolkata", "hours": "24x7"}) == []


def test_spec_that_is_not_a_mapping() -> None:
    problems = check_calendar_spec(["08:00-17:00"])
    assert [p.path for p in problems] == [()]
    assert "must be a mapping" in problems[0].message
    assert str(problems[0]).startswith("calendar: ")


@pytest.mark.parametrize(
    "zone",
    [
        "Europe/Berlin",
        "America/Santiago",
        "America/Asuncion",
        "Australia/Lord_Howe",
        "Pacific/Apia",
        "Asia/Kolkata",
    ],
)
def test_instants_find_their_local_day_among_the_cached_midnights(zone: str) -> None:
    """The day an instant is looked up in (by bisecting the block's local midnights, not by
    converting it) is its local date, every 30 minutes over years with DST changes at odd
    times, a half-hour DST shift (Lord Howe) and a skipped day (Samoa, 30 Dec 2011)."""
    calendar = Calendar(timezone=zone, week=WEEK_24X7, extra_holidays=frozenset({date(2011, 1, 3)}))
    tz = ZoneInfo(zone)
    t = datetime(2010, 1, 1, tzinfo=UTC)
    while t < datetime(2013, 1, 1, tzinfo=UTC):
        assert calendar._point(t)[1] == t.astimezone(tz).toordinal(), t
        t += timedelta(minutes=30)
