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

import math
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

__all__ = [
    "DAY_NAMES",
    "UTC_24X7",
    "WEEK_24X7",
    "Calendar",
    "Interval",
    "SpecPath",
    "WeekHours",
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
_ONE_US: Final = timedelta(microseconds=1)
_DAY_US: Final = DAY_SECONDS * _US
_EPOCH_ORDINAL: Final = _EPOCH.toordinal()
_CHUNK_BITS: Final = 7
_CHUNK_DAYS: Final = 1 << _CHUNK_BITS  # days per cached block
_CHUNK_MASK: Final = _CHUNK_DAYS - 1
_MAX_CHUNKS: Final = 128  # ≈ 45 years of days cached per calendar
_MAX_HOLIDAY_YEARS: Final = 256
_MAX_COUNTED_CHUNKS: Final = 16  # ≈ 5.6 years: longer spans count working days by weeks
_MAX_IDLE_CHUNKS: Final = 30  # ≈ 10 years without working time: add()/next_open() give up
_MIN_ORDINAL: Final = 2  # days at the very ends of `date` cannot be converted; treat as closed
_MAX_ORDINAL: Final = date.max.toordinal() - 1


def _to_us(t: datetime) -> int:
    """Integer UTC microseconds since the epoch (exact, unlike ``timestamp()`` after 2255)."""
    if t.tzinfo is None:
        raise ValueError(f"{t!r} is a naive datetime; calendar arithmetic needs aware instants")
    return (t - _EPOCH) // _ONE_US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class _Chunk:
    """128 consecutive local dates: each day's open UTC intervals (µs) and running totals."""

    __slots__ = ("days", "midnights", "prefix", "spans")

    def __init__(
        self,
        spans: tuple[tuple[Interval, ...], ...],
        prefix: tuple[int, ...],
        days: tuple[int, ...],
        midnights: tuple[int, ...],
    ) -> None:
        self.spans = spans
        # midnights[j] = the first UTC µs of day j (129 entries: the last is the next block's
        # first day), non-decreasing, so an instant's day is a bisection away.
        self.midnights = midnights
        # prefix[j] = working µs in the block before day j; prefix[128] = the block's total.
        self.prefix = prefix
        # days[j] = working days in the block before day j (is_working_day; a working day
        # whose hours a DST gap swallowed still counts).
        self.days = days


@dataclass(frozen=True, slots=True)
class Calendar:
    """Immutable working-time calendar: IANA zone + weekly local intervals + holidays.

    Build one from an admin spec with
    :func:`~bridge.kpi.calendar_spec.calendar_from_spec`; the constructor takes the
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
    _points: dict[datetime, tuple[int, int, int]] = field(init=False, repr=False, compare=False)
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
        setattr_(self, "_points", {})
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

    def _point(self, t: datetime) -> tuple[int, int, int]:
        """(UTC µs, local day ordinal, working µs in its cache block before ``t``) of an
        instant, remembered: the same instants recur (an item's creation in each of its SLAs,
        ``now`` in every running one), and with the third figure B(a, b) within a block is
        one subtraction."""
        point = self._points.get(t)
        if point is None:
            u = _to_us(t)
            if self._always_open:  # no days needed
                point = (u, 0, 0)
            else:
                # The local day is within a day of the UTC one: find it among the block's
                # midnights (cheaper than converting to local time, and exact).
                c = (u // _DAY_US + _EPOCH_ORDINAL) >> _CHUNK_BITS
                chunk = self._chunks.get(c) or self._chunk(c)
                j = bisect_right(chunk.midnights, u) - 1
                if j < 0:
                    c, j = c - 1, _CHUNK_DAYS - 1
                    chunk = self._chunk(c)
                elif j == _CHUNK_DAYS:
                    c, j = c + 1, 0
                    chunk = self._chunk(c)
                before = chunk.prefix[j]
                for s, e in chunk.spans[j]:
                    if s < u:
                        before += (e if e < u else u) - s
                point = (u, (c << _CHUNK_BITS) | j, before)
            if len(self._points) >= 8192:
                self._points.clear()
            self._points[t] = point
        return point

    def elapsed(self, a: datetime, b: datetime) -> float:
        """B(a, b): seconds of [a, b) inside working time; 0 when b <= a."""
        points = self._points
        ua, na, wa = points.get(a) or self._point(a)
        ub, nb, wb = points.get(b) or self._point(b)
        if ub <= ua:
            return 0.0
        if self._always_open:
            return (ub - ua) / _US
        ca = na >> _CHUNK_BITS
        cb = nb >> _CHUNK_BITS
        if ca == cb:
            return (wb - wa) / _US
        total = self._chunk(ca).prefix[_CHUNK_DAYS] - wa + wb
        for c in range(ca + 1, cb):
            total += self._chunk(c).prefix[_CHUNK_DAYS]
        return total / _US

    def add(self, a: datetime, seconds: float) -> datetime:
        """The earliest instant t >= a with B(a, t) == seconds (UTC, microsecond resolution).

        A goal that runs out exactly at closing time ends at the closing instant, not at the next
        opening; ``add(a, 0)`` is ``a`` even outside working hours.
        """
        if not 0 <= seconds < math.inf:
            raise ValueError(f"cannot add {seconds!r} seconds of working time; need >= 0")
        rem = round(seconds * _US)
        ua, n, before = self._point(a)
        if rem == 0 or self._always_open:
            return _from_us(ua + rem)
        c = n >> _CHUNK_BITS
        j = n & _CHUNK_MASK
        # Counted from the start of a's day: the working time before a on that day, plus rem.
        return _from_us(self._add_from_day(c, j, before - self._chunk(c).prefix[j] + rem))

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
        lo, hi = d1.toordinal() + 1, d2.toordinal() + 1  # count the ordinals lo <= n < hi
        c_lo, c_hi = lo >> _CHUNK_BITS, hi >> _CHUNK_BITS
        if c_hi - c_lo > _MAX_COUNTED_CHUNKS or lo < _MIN_ORDINAL or hi > _MAX_ORDINAL:
            return self._working_days_counted(d1, d2)  # decades apart: count by weeks
        first = self._chunks.get(c_lo) or self._chunk(c_lo)
        if c_lo == c_hi:
            return first.days[hi & _CHUNK_MASK] - first.days[lo & _CHUNK_MASK]
        count = first.days[_CHUNK_DAYS] - first.days[lo & _CHUNK_MASK]
        for c in range(c_lo + 1, c_hi):
            count += self._chunk(c).days[_CHUNK_DAYS]
        return count + self._chunk(c_hi).days[hi & _CHUNK_MASK]

    def _working_days_counted(self, d1: date, d2: date) -> int:
        """working_days_between for d1 <= d2 without the cache: whole weeks, then holidays."""
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
        days = [0]
        running = working = 0
        for n in range(c << _CHUNK_BITS, (c + 1) << _CHUNK_BITS):
            day_spans: tuple[Interval, ...] = ()
            if _MIN_ORDINAL <= n <= _MAX_ORDINAL:
                d = date.fromordinal(n)
                local = self.week[d.weekday()]
                if local and not self.is_holiday(d):
                    day_spans = self._day_spans(d, local)
                    working += 1
            spans.append(day_spans)
            running += sum(e - s for s, e in day_spans)
            prefix.append(running)
            days.append(working)
        midnights: list[int] = []
        for n in range(c << _CHUNK_BITS, ((c + 1) << _CHUNK_BITS) + 1):
            if _MIN_ORDINAL <= n <= _MAX_ORDINAL:
                midnight = self._wall_to_us(date.fromordinal(n), 0)
            else:  # days bridge cannot convert are closed; UTC midnight keeps the order
                midnight = (n - _EPOCH_ORDINAL) * _DAY_US
            midnights.append(max(midnight, midnights[-1]) if midnights else midnight)
        return _Chunk(tuple(spans), tuple(prefix), tuple(days), tuple(midnights))

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
