"""Calendars as admins write them: the ``calendars:`` section of a rule file.

Parsing is separate from the arithmetic in :mod:`bridge.kpi.calendar` because it has other
concerns: every problem is collected with the path into the spec that caused it (the rule
validator turns paths into file:line:col), with a "did you mean" for time zones, countries
and day names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as holidays_lib

from bridge.kpi.calendar import (
    DAY_NAMES,
    WEEK_24X7,
    Calendar,
    Interval,
    SpecPath,
    WeekHours,
)

__all__ = ["CalendarSpecError", "calendar_from_spec", "check_calendar_spec"]


# -- admin spec -----------------------------------------------------------------------------------


class CalendarSpecError(ValueError):
    """A calendar spec problem: ``path`` leads to the offending value, ``message`` says what is
    wrong and how to fix it; the rule validator turns these into file:line diagnostics."""

    def __init__(self, message: str, path: SpecPath = (), *, calendar: str | None = None) -> None:
        self.message = message
        self.path = path
        self.calendar = calendar
        super().__init__(self._render())

    def _render(self) -> str:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)[1:]
        head = f"calendar {self.calendar!r}" if self.calendar else "calendar"
        return f"{head}{' at ' + where if where else ''}: {self.message}"

    def __str__(self) -> str:
        return self._render()

    def for_calendar(self, name: str) -> CalendarSpecError:
        """The same problem, naming the calendar it belongs to."""
        return CalendarSpecError(self.message, self.path, calendar=name)


_TOP_KEYS: Final = ("timezone", "hours", "holidays", "description")
_HOLIDAY_KEYS: Final = ("country", "subdivision", "dates")
_FULL_DAY_NAMES: Final = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_DAY_INDEX: Final = {name: i for i, name in enumerate(DAY_NAMES)} | {
    name: i for i, name in enumerate(_FULL_DAY_NAMES)
}
_INTERVAL_RE: Final = re.compile(r"(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})")
_HOURS_EXAMPLE: Final = 'hours: {mon-fri: "08:00-17:00", sat: "09:00-12:00"}'


@dataclass(frozen=True, slots=True)
class _Parts:
    timezone: str
    week: WeekHours
    country: str | None
    subdivision: str | None
    dates: frozenset[date]


def _shown(value: object) -> str:
    """A value for a message, cut short: a calendar key may hold pages of text."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}… ({len(text)} characters)"


def check_calendar_spec(spec: object) -> list[CalendarSpecError]:
    """Every problem in a calendar spec (empty when it is valid), for the rule validator."""
    return _parse_spec(spec)[1]


def calendar_from_spec(name: str, spec: Mapping[str, Any]) -> Calendar:
    """Build a calendar from the admin YAML shape (already loaded; dates may be strings).

    ::

        timezone: Europe/Berlin          # IANA name; missing → UTC
        hours:                           # missing → 24x7; or the string "24x7"
          mon-fri: "08:00-12:00,13:00-17:00"   # or a list of "HH:MM-HH:MM"; 24:00 may end one
          sat: "09:00-12:00"                   # day keys: mon..sun, ranges mon-fri, lists sat,sun
        holidays: {country: DE, subdivision: BY, dates: ["2026-12-24"]}

    A day appears in one key only; intervals cannot cross midnight or overlap; a range runs
    forwards within the week (fri-mon is rejected: write "fri-sun" and "mon"). Raises the first
    :class:`CalendarSpecError`; :func:`check_calendar_spec` lists them all.
    """
    parts, errors = _parse_spec(spec)
    if errors or parts is None:
        raise (errors[0] if errors else CalendarSpecError("invalid calendar")).for_calendar(name)
    return Calendar(
        timezone=parts.timezone,
        week=parts.week,
        country=parts.country,
        subdivision=parts.subdivision,
        extra_holidays=parts.dates,
        name=name,
    )


def _parse_spec(spec: object) -> tuple[_Parts | None, list[CalendarSpecError]]:
    errors: list[CalendarSpecError] = []
    if not isinstance(spec, Mapping):
        errors.append(
            CalendarSpecError(
                f"a calendar must be a mapping, not {type(spec).__name__}; write e.g. "
                f"{{timezone: Europe/Berlin, {_HOURS_EXAMPLE}}}"
            )
        )
        return None, errors
    for key in spec:
        if key not in _TOP_KEYS:
            errors.append(
                CalendarSpecError(
                    f"unknown key {_shown(key)}{_did_you_mean([str(key)], _TOP_KEYS)}; "
                    f"a calendar has {', '.join(_TOP_KEYS)}",
                    (str(key),),
                )
            )
    timezone = _parse_timezone(spec, errors)
    week = _parse_hours(spec, errors)
    country, subdivision, dates = _parse_holidays(spec, errors)
    if errors:
        return None, errors
    return _Parts(timezone, week, country, subdivision, dates), errors


def _did_you_mean(
    candidates: Sequence[str], known: Iterable[str], cutoff: float = 0.6, n: int = 3
) -> str:
    known_list = list(known)
    matches: list[str] = []
    for text in candidates:
        for match in difflib.get_close_matches(text, known_list, n=n, cutoff=cutoff):
            if match not in matches:
                matches.append(match)
    return f" (did you mean {' or '.join(matches[:3])}?)" if matches else ""


# timezone ------------------------------------------------------------------------------------


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _parse_timezone(spec: Mapping[str, Any], errors: list[CalendarSpecError]) -> str:
    if "timezone" not in spec:
        return "UTC"
    value = spec["timezone"]
    path: SpecPath = ("timezone",)
    if not isinstance(value, str) or not value.strip():
        errors.append(
            CalendarSpecError(
                f"time zone must be an IANA name such as Europe/Berlin, not {_shown(value)}; "
                "leave the key out for UTC",
                path,
            )
        )
        return "UTC"
    key = value.strip()
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        errors.append(CalendarSpecError(_unknown_zone_message(key), path))
        return "UTC"
    return key


def _unknown_zone_message(key: str) -> str:
    names = _zone_names()
    by_lower = {n.lower(): n for n in names}
    suggestions = [by_lower[key.lower()]] if key.lower() in by_lower else []
    if not suggestions:
        suggestions = difflib.get_close_matches(key, sorted(names), n=3, cutoff=0.6)
    if not suggestions:  # "Berlin" → Europe/Berlin
        city = key.lower().replace(" ", "_")
        suggestions = sorted(n for n in names if n.rsplit("/", 1)[-1].lower() == city)[:3]
    hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
    return (
        f"unknown time zone {_shown(key)}{hint} Use an IANA time zone name such as "
        "Europe/Berlin or America/New_York (the tz database list)."
    )


# hours -----------------------------------------------------------------------------------------


def _parse_hours(spec: Mapping[str, Any], errors: list[CalendarSpecError]) -> WeekHours:
    if "hours" not in spec:
        return WEEK_24X7
    value = spec["hours"]
    path: SpecPath = ("hours",)
    if isinstance(value, str) and value.strip().lower() in ("24x7", "24/7"):
        return WEEK_24X7
    if not isinstance(value, Mapping):
        errors.append(
            CalendarSpecError(
                f"hours must be '24x7' or a mapping of days to intervals, not {_shown(value)}; "
                f"write e.g. {_HOURS_EXAMPLE}, or leave the key out for 24x7",
                path,
            )
        )
        return WEEK_24X7
    days: list[tuple[Interval, ...] | None] = [None] * 7
    owner: dict[int, str] = {}
    before = len(errors)
    for key, day_value in value.items():
        key_path: SpecPath = ("hours", str(key))
        day_indexes = _parse_day_key(key, key_path, errors)
        intervals = _parse_intervals(day_value, key_path, errors)
        if day_indexes is None or intervals is None:
            continue
        for index in day_indexes:
            if index in owner:
                errors.append(
                    CalendarSpecError(
                        f"{DAY_NAMES[index]} is already given by {owner[index]!r}; a day may "
                        "appear in one key only (put all its intervals there, e.g. "
                        '"08:00-12:00,13:00-17:00")',
                        key_path,
                    )
                )
                continue
            owner[index] = str(key)
            days[index] = intervals
    week = tuple(d or () for d in days)
    if len(errors) == before and not any(week):
        errors.append(
            CalendarSpecError(
                "hours give no working time in the whole week; add at least one interval, "
                "or write hours: 24x7",
                path,
            )
        )
    return week


def _parse_day_key(
    key: object, path: SpecPath, errors: list[CalendarSpecError]
) -> list[int] | None:
    if not isinstance(key, str):
        errors.append(
            CalendarSpecError(
                f"{_shown(key)} is not a day; use mon..sun, a range like mon-fri or a list "
                "like sat,sun",
                path,
            )
        )
        return None
    indexes: list[int] = []
    for part in key.split(","):
        ends = [p.strip().lower() for p in part.split("-")]
        bad = [p for p in ends if p not in _DAY_INDEX]
        if bad or len(ends) > 2:
            errors.append(
                CalendarSpecError(
                    f"{part.strip()!r} is not a day{_did_you_mean(bad, _DAY_INDEX, n=1)}; use "
                    "mon, tue, wed, thu, fri, sat, sun, a range like mon-fri or a list like "
                    "sat,sun",
                    path,
                )
            )
            return None
        first, last = _DAY_INDEX[ends[0]], _DAY_INDEX[ends[-1]]
        if last < first:
            errors.append(
                CalendarSpecError(
                    f"day range {part.strip()!r} runs backwards; ranges run forwards within "
                    f"mon..sun: write {_day_range(first, 6)} and {_day_range(0, last)} as two "
                    f"keys, or list the days: {','.join(_wrapped_days(first, last))}",
                    path,
                )
            )
            return None
        indexes.extend(range(first, last + 1))
    return indexes


def _day_range(first: int, last: int) -> str:
    return DAY_NAMES[first] if first == last else f"{DAY_NAMES[first]}-{DAY_NAMES[last]}"


def _wrapped_days(first: int, last: int) -> list[str]:
    return [DAY_NAMES[i % 7] for i in range(first, last + 8)]


def _parse_intervals(
    value: object, path: SpecPath, errors: list[CalendarSpecError]
) -> tuple[Interval, ...] | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "closed"):
        return ()
    items: list[tuple[SpecPath, str]] = []
    if isinstance(value, str):
        items = [(path, part) for part in value.split(",")]
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                errors.append(_not_an_interval(item, (*path, i)))
                return None
            items.extend(((*path, i), part) for part in item.split(","))
    else:
        errors.append(_not_an_interval(value, path))
        return None
    parsed: list[tuple[Interval, str, SpecPath]] = []
    ok = True
    for item_path, text in items:
        interval = _parse_interval(text.strip(), item_path, errors)
        if interval is None:
            ok = False
        else:
            parsed.append((interval, text.strip(), item_path))
    if not ok:
        return None
    parsed.sort()
    merged: list[Interval] = []
    for i, ((s, e), text, item_path) in enumerate(parsed):
        if merged and s < merged[-1][1]:
            previous = parsed[i - 1][1]
            errors.append(
                CalendarSpecError(
                    f"{text} overlaps {previous}; working intervals of a day must not overlap: "
                    f"merge them into one or make them touch (e.g. "
                    f"{previous.split('-')[0].strip()}-{_hhmm(s)},{text})",
                    item_path,
                )
            )
            return None
        if merged and s == merged[-1][1]:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return tuple(merged)


def _not_an_interval(value: object, path: SpecPath) -> CalendarSpecError:
    return CalendarSpecError(
        f'{_shown(value)} is not a working interval; write a quoted string like "08:00-17:00", '
        'several like "08:00-12:00,13:00-17:00" or a list of them, or "closed"',
        path,
    )


def _parse_interval(text: str, path: SpecPath, errors: list[CalendarSpecError]) -> Interval | None:
    match = _INTERVAL_RE.fullmatch(text)
    if match is None:
        errors.append(
            CalendarSpecError(
                f"{_shown(text)} is not a working interval; write HH:MM-HH:MM like 08:00-17:00 "
                "(24-hour clock, 24:00 may end a day)",
                path,
            )
        )
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        problem = "24:00 can only end an interval" if h1 == 24 and not m1 else "time out of range"
        errors.append(
            CalendarSpecError(
                f"{_shown(text)}: {problem}; hours run 00-23 and minutes 00-59, and 24:00 may "
                "end a day (e.g. 22:00-24:00)",
                path,
            )
        )
        return None
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if end <= start:
        what = "is empty" if end == start else "ends before it starts"
        errors.append(
            CalendarSpecError(
                f"{_shown(text)} {what}; an interval cannot cross midnight: split a night shift "
                "into 22:00-24:00 on one day and 00:00-06:00 on the next",
                path,
            )
        )
        return None
    return start, end


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


# holidays --------------------------------------------------------------------------------------


@cache
def _supported_countries() -> dict[str, list[str]]:
    supported: dict[str, list[str]] = holidays_lib.list_supported_countries()
    return supported


@cache
def _country_names() -> dict[str, str]:
    """Lower-case English name and alpha-3 code → alpha-2 code, for suggestions."""
    names: dict[str, str] = {}
    registry: Mapping[str, Sequence[str]] = getattr(
        getattr(holidays_lib, "registry", None), "COUNTRIES", {}
    )
    for module, entry in registry.items():
        if len(entry) >= 3:
            alpha2 = entry[1]
            names[module.replace("_", " ")] = alpha2
            names[entry[2].lower()] = alpha2
    return names


def _parse_holidays(
    spec: Mapping[str, Any], errors: list[CalendarSpecError]
) -> tuple[str | None, str | None, frozenset[date]]:
    value = spec.get("holidays")
    if value is None:
        return None, None, frozenset()
    if not isinstance(value, Mapping):
        errors.append(
            CalendarSpecError(
                f"holidays must be a mapping, not {_shown(value)}; write e.g. "
                '{country: DE, subdivision: BY, dates: ["2026-12-24"]}',
                ("holidays",),
            )
        )
        return None, None, frozenset()
    for key in value:
        if key not in _HOLIDAY_KEYS:
            errors.append(
                CalendarSpecError(
                    f"unknown key {_shown(key)}{_did_you_mean([str(key)], _HOLIDAY_KEYS)}; "
                    f"holidays has {', '.join(_HOLIDAY_KEYS)}",
                    ("holidays", str(key)),
                )
            )
    country = _parse_country(value.get("country"), errors)
    subdivision = None
    if value.get("subdivision") is not None:
        if "country" not in value:
            errors.append(
                CalendarSpecError(
                    "a subdivision needs a country; add e.g. country: DE next to subdivision: BY",
                    ("holidays", "subdivision"),
                )
            )
        elif country is not None:
            subdivision = _parse_subdivision(country, value["subdivision"], errors)
    dates = _parse_dates(value.get("dates"), errors)
    return country, subdivision, dates


def _parse_country(value: object, errors: list[CalendarSpecError]) -> str | None:
    if value is None:
        return None
    path: SpecPath = ("holidays", "country")
    supported = _supported_countries()
    code = value.strip().upper() if isinstance(value, str) else ""
    if code in supported:  # alpha-3 codes are accepted too, but stored as alpha-2
        return _country_names().get(code.lower(), code) if len(code) == 3 else code
    text = str(value).strip()
    names = _country_names()
    matches: list[str] = []
    if text.lower() in names:
        matches.append(names[text.lower()])
    for name in difflib.get_close_matches(text.lower(), list(names), n=3, cutoff=0.75):
        matches.append(names[name])
    if len(code) == 2:  # two-letter codes are too short for fuzzy matching: same first letter
        matches.extend(c for c in sorted(supported) if len(c) == 2 and c[0] == code[0])
    unique = list(dict.fromkeys(m for m in matches if m in supported))[:8]
    hint = f"; did you mean {' or '.join(unique)}?" if unique else ";"
    errors.append(
        CalendarSpecError(
            f"unknown country code {_shown(value)}{hint} Use an ISO 3166-1 alpha-2 code that the "
            "holidays package supports, such as DE, US or GB.",
            path,
        )
    )
    return None


def _parse_subdivision(country: str, value: object, errors: list[CalendarSpecError]) -> str | None:
    path: SpecPath = ("holidays", "subdivision")
    valid = _supported_countries()[country]
    text = str(value).strip()
    if isinstance(value, str):
        if text in valid:
            return text
        by_lower = {v.lower(): v for v in valid}
        if text.lower() in by_lower:
            return by_lower[text.lower()]
        try:  # aliases the holidays package accepts (e.g. subdivision names)
            holidays_lib.country_holidays(country, subdiv=text)
        except NotImplementedError:
            pass
        else:
            return text
    if not valid:
        message = f"{country} has no holiday subdivisions; remove subdivision {_shown(value)}"
    else:
        hint = _did_you_mean([text], valid, cutoff=0.4)
        message = (
            f"{country} has no subdivision {_shown(value)}{hint}; use one of {', '.join(valid)} "
            "or leave subdivision out for nationwide holidays only"
        )
    errors.append(CalendarSpecError(message, path))
    return None


def _parse_dates(value: object, errors: list[CalendarSpecError]) -> frozenset[date]:
    if value is None:
        return frozenset()
    path: SpecPath = ("holidays", "dates")
    if not isinstance(value, list | tuple):
        errors.append(
            CalendarSpecError(
                'dates must be a list of YYYY-MM-DD dates, e.g. ["2026-12-24"], not '
                f"{_shown(value)}",
                path,
            )
        )
        return frozenset()
    dates: set[date] = set()
    for i, item in enumerate(value):
        if isinstance(item, date) and not isinstance(item, datetime):
            dates.add(item)
            continue
        try:
            if not isinstance(item, str) or len(item.strip()) != 10:
                raise ValueError
            dates.add(date.fromisoformat(item.strip()))
        except ValueError:
            errors.append(
                CalendarSpecError(
                    f"{item!r} is not a date; write YYYY-MM-DD, e.g. 2026-12-24", (*path, i)
                )
            )
    return frozenset(dates)
