"""Business calendars: when an SLA clock runs.

Every SLA KPI reduces to two questions answered here: how much working time lies between two
instants (``elapsed``, B(a, b) in the KPI contract) and when a given amount of working time has
passed (``add``, for breach times). Working hours are local wall-clock times, so they are
converted to UTC per local date: an 08:00-17:00 day is nine real hours even on a DST-change day,
while a 24x7 local day has 23 or 25. All arithmetic then runs on integer UTC microseconds, which
keeps sums exact (B(a, b) + B(b, c) == B(a, c)) and never subtracts two wall-clock times.

Wall-clock boundaries that do not exist (spring-forward gap) become the first instant after the
gap; ambiguous ones (fall-back) take the first occurrence (fold=0). This mapping is monotone, so
the intervals of consecutive days never overlap.

Speed: per-local-date UTC intervals and cumulative working time are built for blocks of 128 days
at a time and cached per calendar (bounded), so ``elapsed`` over a month is a few lookups.
"""

from __future__ import annotations

import difflib
import math
import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as holidays_lib

__all__ = [
    "DAY_NAMES",
    "UTC_24X7",
    "WEEK_24X7",
    "Calendar",
    "CalendarSpecError",
    "Interval",
    "SpecPath",
    "WeekHours",
    "calendar_from_spec",
    "check_calendar_spec",
]

Interval = tuple[int, int]
"""Local working time on one day: [start, end) in seconds after local midnight, end <= 86400."""

WeekHours = tuple[tuple[Interval, ...], ...]
"""Seven sorted, disjoint interval tuples, Monday first."""

SpecPath = tuple[str | int, ...]
"""Keys (and list indexes) leading into a calendar spec, e.g. ("hours", "mon-fri")."""

DAY_SECONDS: Final = 86_400
DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK_24X7: Final[WeekHours] = (((0, DAY_SECONDS),),) * 7

_US: Final = 1_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK_BITS: Final = 7
_CHUNK_DAYS: Final = 1 << _CHUNK_BITS  # days per cached block
_CHUNK_MASK: Final = _CHUNK_DAYS - 1
_MAX_CHUNKS: Final = 128  # ≈ 45 years of days cached per calendar
_MAX_HOLIDAY_YEARS: Final = 256
_MAX_IDLE_CHUNKS: Final = 30  # ≈ 10 years without working time: add()/next_open() give up
_MIN_ORDINAL: Final = 2  # days at the very ends of `date` cannot be converted; treat as closed
_MAX_ORDINAL: Final = date.max.toordinal() - 1


def _to_us(t: datetime) -> int:
    """Integer UTC microseconds since the epoch (exact, unlike ``timestamp()`` after 2255)."""
    if t.tzinfo is None:
        raise ValueError(f"{t!r} is a naive datetime; calendar arithmetic needs aware instants")
    d = t - _EPOCH
    return (d.days * DAY_SECONDS + d.seconds) * _US + d.microseconds


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class _Chunk:
    """128 consecutive local dates: each day's open UTC intervals (µs) and running totals."""

    __slots__ = ("prefix", "spans")

    def __init__(self, spans: tuple[tuple[Interval, ...], ...], prefix: tuple[int, ...]) -> None:
        self.spans = spans
        # prefix[j] = working µs in the block before day j; prefix[128] = the block's total.
        self.prefix = prefix


@dataclass(frozen=True, slots=True)
class Calendar:
    """Immutable working-time calendar: IANA zone + weekly local intervals + holidays.

    Build one from an admin spec with :func:`calendar_from_spec`; the constructor takes the
    normalised parts. A holiday (from ``holidays.country_holidays(country, subdiv=subdivision)``
    or ``extra_holidays``) closes the whole local day, 24x7 calendars included.
    """

    timezone: str = "UTC"
    week: WeekHours = WEEK_24X7
    country: str | None = None
    subdivision: str | None = None
    extra_holidays: frozenset[date] = frozenset()
    name: str = field(default="", compare=False)
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _always_open: bool = field(init=False, repr=False, compare=False)
    _working_weekdays: tuple[bool, ...] = field(init=False, repr=False, compare=False)
    _chunks: dict[int, _Chunk] = field(init=False, repr=False, compare=False)
    _holiday_years: dict[int, frozenset[date]] = field(init=False, repr=False, compare=False)
    _midnights: dict[date, datetime] = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        week = _normalise_week(self.week)
        if not any(week):
            raise ValueError("a calendar needs at least one working interval in the week")
        extra = frozenset(self.extra_holidays)
        if any(isinstance(d, datetime) or not isinstance(d, date) for d in extra):
            raise ValueError("extra_holidays must hold dates (not date-times)")
        if self.country is not None:
            try:
                holidays_lib.country_holidays(self.country, subdiv=self.subdivision)
            except NotImplementedError as exc:
                raise ValueError(str(exc)) from None
        elif self.subdivision is not None:
            raise ValueError("a holiday subdivision needs a country")
        setattr_(self, "week", week)
        setattr_(self, "extra_holidays", extra)
        setattr_(self, "_tz", tz)
        setattr_(
            self,
            "_always_open",
            week == WEEK_24X7 and self.country is None and not extra,
        )
        setattr_(self, "_working_weekdays", tuple(bool(day) for day in week))
        setattr_(self, "_chunks", {})
        setattr_(self, "_holiday_years", {})
        setattr_(self, "_midnights", {})
        setattr_(self, "_lock", threading.Lock())

    def __reduce__(self) -> tuple[type[Calendar], tuple[Any, ...]]:
        # Pickle (job queues) and copy the definition only; caches and the lock are rebuilt.
        return (
            Calendar,
            (
                self.timezone,
                self.week,
                self.country,
                self.subdivision,
                self.extra_holidays,
                self.name,
            ),
        )

    # -- queries ------------------------------------------------------------------------------

    def elapsed(self, a: datetime, b: datetime) -> float:
        """B(a, b): seconds of [a, b) inside working time; 0 when b <= a."""
        ua = _to_us(a)
        ub = _to_us(b)
        if ub <= ua:
            return 0.0
        if self._always_open:
            return (ub - ua) / _US
        tz = self._tz
        na = a.astimezone(tz).toordinal()
        nb = b.astimezone(tz).toordinal()
        ca = na >> _CHUNK_BITS
        ja = na & _CHUNK_MASK
        chunk_a = self._chunks.get(ca) or self._chunk(ca)
        total = 0
        if na == nb:
            for s, e in chunk_a.spans[ja]:
                lo = max(s, ua)
                hi = min(e, ub)
                if hi > lo:
                    total += hi - lo
            return total / _US
        for s, e in chunk_a.spans[ja]:
            if e > ua:
                total += e - max(s, ua)
        cb = nb >> _CHUNK_BITS
        jb = nb & _CHUNK_MASK
        if ca == cb:
            chunk_b = chunk_a
            total += chunk_a.prefix[jb] - chunk_a.prefix[ja + 1]
        else:
            chunk_b = self._chunks.get(cb) or self._chunk(cb)
            total += chunk_a.prefix[_CHUNK_DAYS] - chunk_a.prefix[ja + 1]
            for c in range(ca + 1, cb):
                total += self._chunk(c).prefix[_CHUNK_DAYS]
            total += chunk_b.prefix[jb]
        for s, e in chunk_b.spans[jb]:
            if s < ub:
                total += min(e, ub) - s
        return total / _US

    def add(self, a: datetime, seconds: float) -> datetime:
        """The earliest instant t >= a with B(a, t) == seconds (UTC, microsecond resolution).

        A goal that runs out exactly at closing time ends at the closing instant, not at the next
        opening; ``add(a, 0)`` is ``a`` even outside working hours.
        """
        if not 0 <= seconds < math.inf:
            raise ValueError(f"cannot add {seconds!r} seconds of working time; need >= 0")
        rem = round(seconds * _US)
        ua = _to_us(a)
        if rem == 0 or self._always_open:
            return _from_us(ua + rem)
        n = a.astimezone(self._tz).toordinal()
        c = n >> _CHUNK_BITS
        j = n & _CHUNK_MASK
        for s, e in self._chunk(c).spans[j]:
            if e > ua:
                start = max(s, ua)
                if rem <= e - start:
                    return _from_us(start + rem)
                rem -= e - start
        return _from_us(self._add_from_day(c, j + 1, rem))

    def next_open(self, a: datetime) -> datetime:
        """The first working instant at or after ``a`` (``a`` itself, in UTC, when open)."""
        ua = _to_us(a)
        if self._always_open:
            return _from_us(ua)
        n = a.astimezone(self._tz).toordinal()
        c = n >> _CHUNK_BITS
        j = n & _CHUNK_MASK
        for s, e in self._chunk(c).spans[j]:
            if e > ua:
                return _from_us(max(s, ua))
        return _from_us(self._first_open_from_day(c, j + 1))

    def is_open(self, t: datetime) -> bool:
        """Whether the instant ``t`` lies inside working time (intervals are half-open)."""
        u = _to_us(t)
        if self._always_open:
            return True
        n = t.astimezone(self._tz).toordinal()
        spans = self._chunk(n >> _CHUNK_BITS).spans[n & _CHUNK_MASK]
        return any(s <= u < e for s, e in spans)

    def working_days_between(self, d1: date, d2: date) -> int:
        """Working days d with d1 < d <= d2; the negated reverse count when d2 < d1."""
        if d2 < d1:
            return -self.working_days_between(d2, d1)
        weeks, rest = divmod((d2 - d1).days, 7)
        working = self._working_weekdays
        first = d1.weekday()
        count = weeks * sum(working)
        count += sum(1 for i in range(1, rest + 1) if working[(first + i) % 7])
        for year in range(d1.year, d2.year + 1):
            count -= sum(
                1 for h in self._holidays_in_year(year) if d1 < h <= d2 and working[h.weekday()]
            )
        return count

    def is_working_day(self, d: date) -> bool:
        """A non-holiday local date whose weekday has at least one working interval."""
        return self._working_weekdays[d.weekday()] and not self.is_holiday(d)

    def is_holiday(self, d: date) -> bool:
        """Whether the local date ``d`` is a holiday (country calendar or extra date)."""
        return d in self._holidays_in_year(d.year)

    def local_date(self, t: datetime) -> date:
        """The date of the instant ``t`` in the calendar's zone."""
        if t.tzinfo is None:
            raise ValueError(f"{t!r} is a naive datetime; calendar arithmetic needs aware instants")
        return t.astimezone(self._tz).date()

    def local_midnight(self, d: date) -> datetime:
        """The UTC instant at which local date ``d`` starts (date-only fields mean this)."""
        cached = self._midnights.get(d)
        if cached is None:
            cached = _from_us(self._wall_to_us(d, 0))
            if len(self._midnights) >= 100_000:  # date-only fields repeat; keep memory bounded
                self._midnights.clear()
            self._midnights[d] = cached
        return cached

    # -- cache ---------------------------------------------------------------------------------

    def _chunk(self, c: int) -> _Chunk:
        chunk = self._chunks.get(c)
        if chunk is None:
            chunk = self._build_chunk(c)
            with self._lock:
                if len(self._chunks) >= _MAX_CHUNKS:
                    # FIFO eviction keeps memory bounded; recent blocks are the hot ones.
                    del self._chunks[next(iter(self._chunks))]
                self._chunks[c] = chunk
        return chunk

    def _build_chunk(self, c: int) -> _Chunk:
        spans: list[tuple[Interval, ...]] = []
        prefix = [0]
        running = 0
        for n in range(c << _CHUNK_BITS, (c + 1) << _CHUNK_BITS):
            day_spans: tuple[Interval, ...] = ()
            if _MIN_ORDINAL <= n <= _MAX_ORDINAL:
                d = date.fromordinal(n)
                local = self.week[d.weekday()]
                if local and not self.is_holiday(d):
                    day_spans = self._day_spans(d, local)
            spans.append(day_spans)
            running += sum(e - s for s, e in day_spans)
            prefix.append(running)
        return _Chunk(tuple(spans), tuple(prefix))

    def _day_spans(self, d: date, local: tuple[Interval, ...]) -> tuple[Interval, ...]:
        out: list[Interval] = []
        for s, e in local:
            us_s = self._wall_to_us(d, s)
            us_e = self._wall_to_us(d, e)
            if us_e > us_s:  # an interval swallowed by a DST gap has no length
                out.append((us_s, us_e))
        return tuple(out)

    def _wall_to_us(self, d: date, second: int) -> int:
        """UTC µs of local wall time ``second`` after midnight of ``d`` (gap → first instant after
        it, ambiguous → fold=0)."""
        tz = self._tz
        naive = datetime(d.year, d.month, d.day) + timedelta(seconds=second)
        aware = naive.replace(tzinfo=tz)
        u = int(aware.timestamp())  # fold=0: exists → first occurrence; gap → offset before
        if datetime.fromtimestamp(u, tz).replace(tzinfo=None) == naive:
            return u * _US
        # In a gap: fold=1 maps before the transition, fold=0 after it; the first instant whose
        # wall time is >= naive is the transition itself. Offsets change on whole seconds.
        lo = int(aware.replace(fold=1).timestamp())
        hi = u
        lo, hi = min(lo, hi), max(lo, hi)
        while lo < hi:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= naive:
                hi = mid
            else:
                lo = mid + 1
        return lo * _US

    def _add_from_day(self, c: int, j: int, rem: int) -> int:
        """Instant (µs) at which ``rem`` > 0 working µs have passed from the start of day j of
        block c."""
        idle = 0
        while True:
            chunk = self._chunk(c)
            prefix = chunk.prefix
            base = prefix[j]
            target = base + rem
            if target <= prefix[_CHUNK_DAYS]:
                k = bisect_left(prefix, target, j + 1) - 1  # prefix[k] < target <= prefix[k+1]
                rem = target - prefix[k]
                for s, e in chunk.spans[k]:
                    if rem <= e - s:
                        return s + rem
                    rem -= e - s
                raise RuntimeError("calendar cache inconsistent: day total exceeds its intervals")
            gained = prefix[_CHUNK_DAYS] - base
            rem -= gained
            idle = 0 if gained else idle + 1
            if idle > _MAX_IDLE_CHUNKS:
                raise ValueError(f"calendar {self.name!r} has no working time for ~10 years")
            c += 1
            j = 0

    def _first_open_from_day(self, c: int, j: int) -> int:
        idle = 0
        while True:
            chunk = self._chunk(c)
            prefix = chunk.prefix
            i = bisect_right(prefix, prefix[j], j)  # first day boundary after some working time
            if i <= _CHUNK_DAYS:
                return chunk.spans[i - 1][0][0]
            idle += 1
            if idle > _MAX_IDLE_CHUNKS:
                raise ValueError(f"calendar {self.name!r} has no working time for ~10 years")
            c += 1
            j = 0

    def _holidays_in_year(self, year: int) -> frozenset[date]:
        found = self._holiday_years.get(year)
        if found is None:
            dates = {d for d in self.extra_holidays if d.year == year}
            if self.country is not None:
                country = holidays_lib.country_holidays(
                    self.country, subdiv=self.subdivision, years=year
                )
                dates.update(d for d in country if d.year == year)
            found = frozenset(dates)
            with self._lock:
                if len(self._holiday_years) >= _MAX_HOLIDAY_YEARS:
                    self._holiday_years.clear()
                self._holiday_years[year] = found
        return found


def _normalise_week(week: Sequence[Iterable[Sequence[int]]]) -> WeekHours:
    """Validate programmatic week hours; touching intervals are merged."""
    if len(week) != 7:
        raise ValueError(f"week needs 7 days of intervals (Monday first), got {len(week)}")
    days: list[tuple[Interval, ...]] = []
    for index, intervals in enumerate(week):
        merged: list[Interval] = []
        for s, e in sorted((int(s), int(e)) for s, e in intervals):
            if not 0 <= s < e <= DAY_SECONDS:
                raise ValueError(
                    f"{DAY_NAMES[index]}: interval ({s}, {e}) is not 0 <= s < e <= 86400"
                )
            if merged and s < merged[-1][1]:
                raise ValueError(f"{DAY_NAMES[index]}: intervals overlap at second {s}")
            if merged and s == merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        days.append(tuple(merged))
    return tuple(days)


UTC_24X7: Final = Calendar(name="24x7 UTC")
"""Always open, UTC: business time equals wall-clock time (the default when no calendar is set)."""


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
                    f"unknown key {key!r}{_did_you_mean([str(key)], _TOP_KEYS)}; "
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
                f"time zone must be an IANA name such as Europe/Berlin, not {value!r}; "
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
        f"unknown time zone {key!r}{hint} Use an IANA time zone name such as Europe/Berlin or "
        "America/New_York (the tz database list)."
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
                f"hours must be '24x7' or a mapping of days to intervals, not {value!r}; "
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
                f"{key!r} is not a day; use mon..sun, a range like mon-fri or a list like sat,sun",
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
        f'{value!r} is not a working interval; write a quoted string like "08:00-17:00", '
        'several like "08:00-12:00,13:00-17:00" or a list of them, or "closed"',
        path,
    )


def _parse_interval(text: str, path: SpecPath, errors: list[CalendarSpecError]) -> Interval | None:
    match = _INTERVAL_RE.fullmatch(text)
    if match is None:
        errors.append(
            CalendarSpecError(
                f"{text!r} is not a working interval; write HH:MM-HH:MM like 08:00-17:00 "
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
                f"{text!r}: {problem}; hours run 00-23 and minutes 00-59, and 24:00 may end a "
                "day (e.g. 22:00-24:00)",
                path,
            )
        )
        return None
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if end <= start:
        what = "is empty" if end == start else "ends before it starts"
        errors.append(
            CalendarSpecError(
                f"{text!r} {what}; an interval cannot cross midnight: split a night shift into "
                "22:00-24:00 on one day and 00:00-06:00 on the next",
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
                f"holidays must be a mapping, not {value!r}; write e.g. "
                '{country: DE, subdivision: BY, dates: ["2026-12-24"]}',
                ("holidays",),
            )
        )
        return None, None, frozenset()
    for key in value:
        if key not in _HOLIDAY_KEYS:
            errors.append(
                CalendarSpecError(
                    f"unknown key {key!r}{_did_you_mean([str(key)], _HOLIDAY_KEYS)}; holidays "
                    f"has {', '.join(_HOLIDAY_KEYS)}",
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
            f"unknown country code {value!r}{hint} Use an ISO 3166-1 alpha-2 code that the "
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
        message = f"{country} has no holiday subdivisions; remove subdivision {value!r}"
    else:
        hint = _did_you_mean([text], valid, cutoff=0.4)
        message = (
            f"{country} has no subdivision {value!r}{hint}; use one of {', '.join(valid)} "
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
                f'dates must be a list of YYYY-MM-DD dates, e.g. ["2026-12-24"], not {value!r}',
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
