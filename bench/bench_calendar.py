"""Benchmark the business calendar: elapsed() and add() per call, vs businesstimedelta.

Run: ``.venv/bin/python bench/bench_calendar.py [--spans 20000] [--reference-spans 2000]``

Calendar: Mon-Fri 08:00-17:00 Europe/Berlin with German public holidays. Spans are random,
whole-second, up to 30 days long, starting anywhere in 2025-2027; add() is asked for the business
time of the same spans so its results also lie within 30 days. Each call is timed on its own
with ``time.perf_counter_ns`` after one warm-up pass (which fills the per-calendar caches, as in a
long-running worker); the cold first pass is reported too. businesstimedelta (a test/bench-only
dependency) gets the same spans, the same zone and the same holiday dates; it is slow, so it runs
on a subset. Prints figures only: the <= 20 µs median target is for a human to read off.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

import businesstimedelta as btd
import holidays
import pytz

from bridge.kpi.calendar import Calendar
from bridge.kpi.calendar_spec import calendar_from_spec

SPEC = {
    "timezone": "Europe/Berlin",
    "hours": {"mon-fri": "08:00-17:00"},
    "holidays": {"country": "DE"},
}
FIRST = datetime(2025, 1, 1, tzinfo=UTC)
RANGE_SECONDS = 3 * 365 * 86_400
MAX_SPAN_SECONDS = 30 * 86_400

Span = tuple[datetime, datetime]


def make_spans(count: int, seed: int) -> list[Span]:
    rng = random.Random(seed)
    spans = []
    for _ in range(count):
        a = FIRST + timedelta(seconds=rng.randrange(RANGE_SECONDS))
        spans.append((a, a + timedelta(seconds=rng.randint(0, MAX_SPAN_SECONDS))))
    return spans


def time_calls(
    fn: Callable[[datetime, Any], object], args: Sequence[tuple[datetime, Any]]
) -> list[float]:
    """Microseconds per call, each call timed on its own."""
    clock = time.perf_counter_ns
    out = []
    for a, x in args:
        t0 = clock()
        fn(a, x)
        out.append((clock() - t0) / 1000)
    return out


def summary(label: str, micros: list[float]) -> float:
    micros = sorted(micros)
    median = statistics.median(micros)
    p90 = micros[int(0.9 * (len(micros) - 1))]
    print(
        f"  {label:<34} n={len(micros):>6}  median {median:9.2f} µs  p90 {p90:9.2f} µs  "
        f"mean {statistics.fmean(micros):9.2f} µs"
    )
    return median


def reference_rule() -> btd.Rules:
    zone = pytz.timezone("Europe/Berlin")
    dates = frozenset(holidays.country_holidays("DE", years=range(2024, 2029)))
    return btd.Rules(
        [
            btd.WorkDayRule(dt.time(8), dt.time(17), working_days=[0, 1, 2, 3, 4], tz=zone),
            btd.HolidayRule(dates, tz=zone),  # the zone matters: HolidayRule defaults to UTC
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--reference-spans", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()

    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    print("Calendar: Mon-Fri 08:00-17:00 Europe/Berlin, DE holidays; spans <= 30 days\n")

    spans = make_spans(options.spans, options.seed)
    cold: Calendar = calendar_from_spec("bench-cold", SPEC)
    cold_first = time_calls(cold.elapsed, spans[:1])[0]
    calendar = calendar_from_spec("bench", SPEC)
    goals = [(a, calendar.elapsed(a, b)) for a, b in spans]  # warm-up pass fills the caches

    print("bridge.kpi.calendar")
    print(
        f"  first call on a cold calendar       {cold_first:9.2f} µs (builds 128 days + holidays)"
    )
    med_elapsed = summary("elapsed(a, b)", time_calls(calendar.elapsed, spans))
    med_add = summary("add(a, B(a, b))", time_calls(calendar.add, goals))
    summary("next_open(a)", time_calls(lambda a, _: calendar.next_open(a), spans))

    rule = reference_rule()
    subset = spans[: options.reference_spans]
    sub_goals = [(a, timedelta(seconds=s)) for a, s in goals[: options.reference_spans]]
    print(f"\nbusinesstimedelta {version('businesstimedelta')} (same zone, same holiday dates)")
    ref_elapsed = summary("rule.difference(a, b)", time_calls(rule.difference, subset))
    ref_add = summary(
        "a + BusinessTimeDelta(B(a, b))",
        time_calls(lambda a, d: a + btd.BusinessTimeDelta(rule, timedelta=d), sub_goals),
    )

    mismatches = sum(
        calendar.elapsed(a, b) != rule.difference(a, b).timedelta.total_seconds() for a, b in subset
    )
    print(f"\nelapsed() differing from businesstimedelta on the subset: {mismatches}")
    print(
        f"median speed-up: elapsed × {ref_elapsed / med_elapsed:.0f}, add × {ref_add / med_add:.0f}"
    )
    print(f"elapsed() median vs the 20 µs target: {med_elapsed:.2f} µs")


if __name__ == "__main__":
    main()
