"""KPIs that stay true between changes: a simulated week of the worker's timer ticks.

Run ``.venv/bin/python bench/bench_timers.py [--quick] [--items N] [--ticks]``.

A JiraDouble (a fake Jira Cloud over real HTTP on 127.0.0.1) holds N open items with SLAs
(one on a 24x7 calendar, one on business hours; goals of 1 h to 3 d) and due dates spread
over a simulated week. One ``sync_source`` at t0 writes every item and sets its timer; then
the worker's clock (``Jobs(clock=...)``) moves in 30 s ticks over the week and only
``jobs.tick()`` runs — no sync at all after t0. Ticks when no timer is due are skipped
without calling the worker (one store query tells), and counted; every simulated hour one
tick runs anyway, to show that an empty tick makes no request.

Printed: per simulated hour (``--ticks``: per tick that did something) the timers due, the
search requests (reads) and PUTs (writes) the double saw; overall the ticks, items
evaluated, reads, writes and the lag from a value's change instant (the timer's due, as
``next_change`` said) to the tick that wrote it: p50, p99, max. Checked on the way: each
tick reads ceil(due / 100) times, every PUT carries a value that differs from what the issue
held, and at sampled ticks the values on the double equal those a fresh evaluation at that
tick's clock computes (a new connector, new engines, the items fetched anew). Figures and
counts only; nothing asserts on time. Exit status 1 when a correctness count is not 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.config import load_config
from bridge.connectors.base import ConnectorContext, LiveConnector
from bridge.connectors.jira.connector import make_connector
from bridge.errors import ItemNotFoundError
from bridge.kpi.compute import KpiEngine
from bridge.model import WorkItem
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules
from bridge.service.runtime import Runtime
from bridge.service.tasks import TICK_LIMIT, Jobs, make_huey
from bridge.store.base import Store
from bridge.store.records import Timer
from bridge.store.sqlite import SqliteStore
from bridge.sync import fetch_many, sync_source
from bridge.testing.jira import JiraDouble, RecordedRequest

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday morning
TICK = timedelta(seconds=30)  # bridge's default worker.tick
HOUR_TICKS = 120
WEEK = timedelta(days=7)
FETCH_BATCH = 100  # keys per search when a tick reads its due items
TICK_SAMPLE = 25  # at most this many of the items a tick took are checked after it
SMALL_SAMPLE = 5  # a check of at most this many items reads them one by one
SOURCE = "jira"
TOKEN_ENV = "BENCH_TIMERS_JIRA_TOKEN"  # noqa: S105 - the name of a variable, not a secret
SCHEMA = Path(__file__).resolve().parents[1] / "src" / "bridge" / "schemas" / "rules.schema.json"

RULES = """bridge: 1
calendars:
  always: {timezone: UTC, hours: 24x7}
  office: {timezone: Europe/Berlin, hours: {mon-fri: "08:00-18:00"}}
slas:
  restore:                          # incidents: around the clock
    calendar: always
    at_risk: 75%                    # (only when the rules language has at_risk)
    start: {on: created}
    stop: {field: status_category, equals: done}
    goals:
      - {when: {field: priority, equals: Highest}, target: 1h}
      - {when: {field: priority, equals: High}, target: 4h}
      - {when: {field: priority, equals: Medium}, target: 24h}
      - {target: 72h}
  fulfil:                           # service requests: office hours only
    calendar: office
    at_risk: 1h                     # (only when the rules language has at_risk)
    start: {on: created}
    stop: {field: status_category, equals: done}
    goals:
      - {when: {field: priority, equals: High}, target: 1h}
      - {when: {field: priority, equals: Medium}, target: 8h}
      - {target: 72h}
kpi:
  calendar: office                  # slip days count Berlin's midnights
rules:
  - id: incidents
    when: {field: type, equals: Incident}
    then: {work_type: service, kpis: [sla.restore, schedule]}
  - id: requests
    when: {field: type, equals: Service Request}
    then: {work_type: service, kpis: [sla.fulfil, schedule]}
  - id: delivery
    when: {field: type, in: [Story, Task]}
    then:
      work_type: project
      phase: {by_status_category: {todo: planning, in_progress: execution, done: closing}}
      kpis: [schedule]
default: {work_type: unclassified}
"""

# KPI key → the Jira field bridge writes it to.
WRITEBACK = {
    "sla.restore.state": "Restore state",
    "sla.fulfil.state": "Fulfil state",
    "schedule.slip_days": "Slip days",
}
AT_RISK = {"sla.restore.at_risk": "Restore at risk", "sla.fulfil.at_risk": "Fulfil at risk"}


def rules_text(at_risk: bool) -> str:
    """The rule set, with or without the SLAs' at-risk thresholds."""
    if at_risk:
        return RULES
    return "".join(line for line in RULES.splitlines(True) if "at_risk:" not in line)


class Clock:
    """The worker's and the double's clock, moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def at_risk_in_rules_language() -> bool:
    """Whether the rules language has an at-risk threshold yet (issue 16 adds one)."""
    try:
        return "at_risk" in SCHEMA.read_text()
    except OSError:
        return False


# -- the site ------------------------------------------------------------------------------------


def seed(
    site: JiraDouble, n: int, rng: random.Random, writeback: dict[str, str], t0: datetime
) -> Counter[str]:
    """N open items: 35 % incidents (24x7 SLA), 35 % service requests (office-hours SLA),
    30 % stories and tasks (project work). Created at random seconds over the three days
    before t0; due dates on every project item and on half of the service items, on the
    days of the simulated week (t0's day to six days later)."""
    for name in writeback.values():
        site.add_field(name, "number" if name == "Slip days" else "string")
    mix: Counter[str] = Counter()
    first_due = t0.date()

    def fields(_: int) -> dict[str, Any]:
        roll = rng.random()
        if roll < 0.35:
            kind, priority = "Incident", rng.choice(("Highest", "High", "Medium", "Low"))
        elif roll < 0.70:
            kind, priority = "Service Request", rng.choice(("High", "Medium", "Low"))
        else:
            kind, priority = rng.choice(("Story", "Task")), "Medium"
        mix[kind] += 1
        created = t0 - timedelta(seconds=rng.randint(60, 3 * 86400))
        values: dict[str, Any] = {
            "issuetype": kind,
            "status": rng.choice(("To Do", "In Progress")),
            "priority": priority,
            "created": created,
            "updated": created,
        }
        if kind in ("Story", "Task") or rng.random() < 0.5:
            due: date = first_due + timedelta(days=rng.randint(0, 6))
            values["duedate"] = due.isoformat()
        return values

    site.bulk_add(n, fields=fields)
    return mix


def source_settings(site: JiraDouble, writeback: dict[str, str]) -> dict[str, Any]:
    return {
        "name": SOURCE,
        "connector": "jira",
        "url": site.url,
        "deployment": "cloud",
        "auth": {"email": site.email, "token_env": TOKEN_ENV},
        "scope": {"jql": "project = OPS"},
        "writeback": {"fields": writeback, "comment": False},
        # Write pacing is real time, the week is simulated: pace far above what ticks need.
        "limits": {"writes_per_second": 2000, "concurrency": 8},
    }


def make_runtime(tmp: Path, raw: dict[str, Any], at_risk: bool) -> Runtime:
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "rules.yaml").write_text(rules_text(at_risk))
    path = tmp / "bridge.yaml"
    config = {"rules": "rules", "store": f"sqlite://{tmp / 'state.db'}", "sources": [raw]}
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return Runtime(load_config(path))


# -- what the double saw ---------------------------------------------------------------------------


def issue_key(request: RecordedRequest) -> str | None:
    """The key of an issue edit (``PUT /rest/api/3/issue/OPS-12``)."""
    if request.method != "PUT" or "/issue/" not in request.path:
        return None
    tail = request.path.rsplit("/issue/", 1)[1]
    return tail if "/" not in tail else None


def due_timers(store: Store, now: datetime) -> list[Timer]:
    """Every timer due by ``now`` (a query that grows with what is due, not with N)."""
    limit = 256
    while True:
        timers = store.next_timers(limit)
        due = [t for t in timers if t.due <= now]
        if len(due) < len(timers) or len(timers) < limit:
            return due
        limit *= 4


def same(expected: Any, actual: Any) -> bool:
    """Whether a field shows a value: numbers by value, a flag as yes/no in a text field."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool):
        return bool(actual == ("yes" if expected else "no"))
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        return isinstance(actual, int | float) and float(actual) == float(expected)
    return bool(expected == actual)


# -- the check -----------------------------------------------------------------------------------


@dataclass
class Check:
    """Values on the double against a fresh evaluation at the tick's clock: a new connector
    (its own store), new engines, the items fetched anew."""

    connector: LiveConnector
    engine: Engine
    kpis: KpiEngine
    fids: dict[str, str]  # KPI key → field id
    items: int = 0
    checks: int = 0
    mismatches: int = 0  # a written value differs from the fresh evaluation's
    planned: int = 0  # items for which the fresh evaluation would plan a write
    backlog: int = 0  # items skipped: their timer is due and still waiting its turn
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    def run(self, keys: Sequence[str], now: datetime, waiting: set[str]) -> int:
        """Mismatches among ``keys`` at ``now``; keys in ``waiting`` are left out."""
        todo = [k for k in keys if k not in waiting]
        self.backlog += len(keys) - len(todo)
        if not todo:
            return 0
        started = time.perf_counter()
        self.checks += 1
        found = 0
        for item in self.fetch(todo):
            self.items += 1
            decision = self.engine.classify(item, now)
            values_of = self.kpis.compute(item, decision, now).finite()
            values = values_of.values
            on_site = item.raw.get("fields", {})
            wrong = [
                (kpi, values.get(kpi), on_site.get(fid))
                for kpi, fid in self.fids.items()
                if not same(values.get(kpi), on_site.get(fid))
            ]
            if wrong:
                found += 1
                if len(self.examples) < 5:
                    self.examples.append(f"{item.key} at {now:%a %H:%M:%S}: {wrong}")
            if self.connector.plan(item, decision, values_of, currency=self.currency):
                self.planned += 1
        self.mismatches += found
        self.seconds += time.perf_counter() - started
        return found

    def fetch(self, keys: Sequence[str]) -> Iterator[WorkItem]:
        """The items as they are now: a few one by one (``GET /issue``), more in searches of
        100 keys (the double's search looks at every issue it holds: ~30 ms at 10,000)."""
        if len(keys) > SMALL_SAMPLE:
            yield from fetch_many(self.connector, keys)
            return
        for key in keys:
            try:
                yield self.connector.fetch(key)
            except ItemNotFoundError:
                continue

    @property
    def currency(self) -> str | None:
        return self.kpis.config.currency


# -- the week ------------------------------------------------------------------------------------


@dataclass
class Hour:
    ran: int = 0
    skipped: int = 0
    due: int = 0
    evaluated: int = 0
    reads: int = 0
    writes: int = 0
    max_lag: float = 0.0
    checked: int = 0
    mismatches: int = 0

    @property
    def quiet(self) -> bool:
        return not (self.due or self.reads or self.writes or self.mismatches)


@dataclass
class Totals:
    ticks_run: int = 0
    ticks_skipped: int = 0
    busy_ticks: int = 0
    due: int = 0
    evaluated: int = 0
    reads: int = 0
    other_requests: int = 0
    writes: int = 0
    needless_writes: int = 0  # a PUT whose every value equals what the issue held
    unexpected_writes: int = 0  # a PUT for an item whose timer was not due
    silent_timers: int = 0  # a due timer whose evaluation wrote nothing
    read_mismatch_ticks: int = 0  # ticks whose searches ≠ ceil(claimed / 100)
    empty_tick_requests: int = 0  # requests made by ticks with nothing due
    sweeps: int = 0  # searches not limited to named keys (a full or incremental sync)
    too_many: int = 0  # 429 answers
    most_due: int = 0
    quiet_hours: int = 0
    tick_wall: float = 0.0  # seconds inside jobs.tick()
    lags: list[float] = field(default_factory=list)
    lags_by_kind: dict[str, list[float]] = field(
        default_factory=lambda: {"SLA state": [], "slip days": []}
    )
    tick_seconds: list[float] = field(default_factory=list)
    busiest: list[tuple[int, datetime, int, float]] = field(default_factory=list)


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def week(
    site: JiraDouble,
    runtime: Runtime,
    jobs: Jobs,
    clock: Clock,
    check: Check,
    keys: list[str],
    mirror: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    t0: datetime,
) -> Totals:
    store = runtime.store
    fid_of = {fid: kpi for kpi, fid in check.fids.items()}
    total = Totals()
    last = int(WEEK / TICK)
    share = max(1, math.ceil(len(keys) / 168))  # each item once in the week, besides
    rotation = 0
    hour = Hour()
    k = 0
    print(
        f"\n{'hour':<16}{'ticks':>7}{'skipped':>9}{'due':>7}{'evaluated':>11}{'reads':>7}"
        f"{'writes':>8}{'max lag':>9}{'checked':>9}{'mismatch':>10}"
    )
    while k < last:
        k += 1
        hourly = k % HOUR_TICKS == 0
        clock.now = t0 + k * TICK
        if not hourly:
            first = store.next_timers(1)
            if not first or first[0].due > clock.now:  # nothing due: jump, and count it
                ahead = math.ceil((first[0].due - t0) / TICK) if first else last
                target = min(ahead, (k // HOUR_TICKS + 1) * HOUR_TICKS, last)
                hour.skipped += target - k
                total.ticks_skipped += target - k
                k = target
                hourly = k % HOUR_TICKS == 0
                clock.now = t0 + k * TICK
        now = clock.now
        due = due_timers(store, now)
        due_at = {t.key: t.due for t in due}
        claimed = min(len(due), TICK_LIMIT)
        site.reset_counters()
        started = time.perf_counter()
        evaluated = jobs.tick()
        seconds = time.perf_counter() - started
        requests = list(site.requests)
        total.ticks_run += 1
        total.tick_wall += seconds
        hour.ran += 1

        reads = writes = 0
        written: list[str] = []
        for r in requests:
            if r.status == 429:
                total.too_many += 1
            if r.path.endswith("/search/jql"):
                reads += 1
                jql = str((r.body or {}).get("jql", "")) if r.method == "POST" else ""
                jql = jql or ",".join(r.query.get("jql", []))
                if "key in (" not in jql:
                    total.sweeps += 1
                continue
            key = issue_key(r)
            if key is None or r.status >= 300:
                total.other_requests += 1
                continue
            writes += 1
            written.append(key)
            body = (r.body or {}).get("fields", {})
            before = mirror.setdefault(key, {})
            if all(same(value, before.get(fid_of.get(fid, fid))) for fid, value in body.items()):
                total.needless_writes += 1
            for fid, value in body.items():
                before[fid_of.get(fid, fid)] = value
            if key not in due_at:
                total.unexpected_writes += 1
                continue
            lag = (now - due_at[key]).total_seconds()
            total.lags.append(lag)
            carried = {fid_of.get(fid, fid) for fid in body}
            for kind, lags in total.lags_by_kind.items():
                if any(("slip" in kpi) == (kind == "slip days") for kpi in carried):
                    lags.append(lag)
            hour.max_lag = max(hour.max_lag, lag)

        if due:
            total.busy_ticks += 1
            total.tick_seconds.append(seconds)
            total.busiest.append((claimed, now, writes, seconds))
            total.busiest = sorted(total.busiest, key=lambda b: (-b[0], b[1]))[:5]
        elif requests:
            total.empty_tick_requests += len(requests)
        if reads != math.ceil(claimed / FETCH_BATCH):
            total.read_mismatch_ticks += 1
        claimed_keys = [t.key for t in due[:claimed]]
        total.silent_timers += len(set(claimed_keys) - set(written))
        total.due += len(due)
        total.most_due = max(total.most_due, len(due))
        total.evaluated += evaluated
        total.reads += reads
        total.writes += writes
        hour.due += len(due)
        hour.evaluated += evaluated
        hour.reads += reads
        hour.writes += writes
        if args.ticks and (due or requests):
            print(
                f"  tick {k:>5} {now:%a %H:%M:%S}: due {len(due):>5}, evaluated "
                f"{evaluated:>5}, reads {reads:>3}, writes {writes:>5}, {seconds * 1000:,.0f} ms"
            )

        # The check: (up to 25 of) the items this tick took, and every hour a slice of all.
        sample = claimed_keys[:: max(1, math.ceil(len(claimed_keys) / TICK_SAMPLE))]
        if hourly or k == last:
            sample += keys[rotation : rotation + share]
            rotation = (rotation + share) % len(keys)
        if k == last:
            sample = keys
        if sample:
            waiting = {t.key for t in due_timers(store, now)}
            seen = check.items
            hour.mismatches += check.run(list(dict.fromkeys(sample)), now, waiting)
            hour.checked += check.items - seen

        if hourly or k == last:
            if hour.quiet:
                total.quiet_hours += 1
            else:
                span = f"{now - timedelta(hours=1):%a %H:%M}-{now:%H:%M}"
                print(
                    f"{span:<16}{hour.ran:>7}{hour.skipped:>9}{hour.due:>7}"
                    f"{hour.evaluated:>11}{hour.reads:>7}{hour.writes:>8}{hour.max_lag:>8.0f}s"
                    f"{hour.checked:>9,}{hour.mismatches:>10}",
                    flush=True,
                )
            hour = Hour()
    return total


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=None, help="open items (default 10000)")
    parser.add_argument("--quick", action="store_true", help="1,000 items")
    parser.add_argument("--seed", type=int, default=16, help="the data (default 16)")
    parser.add_argument("--ticks", action="store_true", help="a line per tick that did something")
    parser.add_argument(
        "--start",
        type=lambda text: datetime.fromisoformat(text).astimezone(UTC),
        default=T0,
        help="t0, an ISO instant (default Monday 2026-03-02 06:00 UTC)",
    )
    parser.add_argument(
        "--tmp-dir", default=None, help="where the SQLite store goes (default: the system's)"
    )
    parser.add_argument("--no-at-risk", action="store_true", help="no at-risk thresholds and flags")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    n = args.items or (1000 if args.quick else 10_000)
    os.environ[TOKEN_ENV] = "token"
    rng = random.Random(args.seed)
    t0 = args.start
    clock = Clock(t0)
    print(
        f"bench_timers: {n:,} open items, a simulated week from {t0:%a %Y-%m-%d %H:%M} UTC in "
        f"{TICK.seconds} s ticks, at most {TICK_LIMIT} timers per tick; "
        f"Python {platform.python_version()} on {platform.machine()}"
    )
    at_risk = at_risk_in_rules_language() and not args.no_at_risk
    writeback = {**WRITEBACK, **(AT_RISK if at_risk else {})}
    if at_risk:
        print("at-risk: restore at 75 % of its goal, fulfil 1 h before it; both flags written")
    elif args.no_at_risk:
        print("at-risk: left out (--no-at-risk)")
    else:
        print("at-risk: not in the rules language yet (rules.schema.json); not written")
    wall = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(dir=args.tmp_dir) as folder,
        JiraDouble(clock=clock) as site,
    ):
        tmp = Path(folder)
        mix = seed(site, n, rng, writeback, t0)
        keys = site.keys()
        raw = source_settings(site, writeback)
        runtime = make_runtime(tmp, raw, at_risk)
        check_store = SqliteStore(str(tmp / "check.db"))
        check_connector = make_connector(raw, ConnectorContext(store=check_store))
        try:
            print(
                "items: "
                + ", ".join(f"{count:,} {kind}" for kind, count in sorted(mix.items()))
                + f"; {sum(1 for i in site.issues.values() if i['fields'].get('duedate')):,} "
                "with a due date"
            )
            jobs = Jobs(runtime, make_huey(runtime.config, immediate=True), clock=clock)
            evaluators = runtime.evaluators()
            connector = runtime.connector(SOURCE)
            started = time.perf_counter()
            report = sync_source(
                SOURCE,
                connector,
                evaluators.rule_set,
                runtime.store,
                t0,
                concurrency=8,
                engine=evaluators.engine,
                kpis=evaluators.kpis,
            )
            seconds = time.perf_counter() - started
            timers = sum(runtime.store.count_timers().values())
            print(
                f"\nsync at t0: pulled {report.pulled:,}, written {report.items_written:,}, "
                f"failed {len(report.failed)}, {seconds:.1f} s; timers set: {timers:,} "
                f"(first due {runtime.store.next_timers(1)[0].due:%a %H:%M:%S})"
            )
            fids = {kpi: site.field_id(name) for kpi, name in writeback.items()}
            mirror = {
                key: {kpi: issue["fields"].get(fid) for kpi, fid in fids.items()}
                for key, issue in site.issues.items()
            }
            rule_set = load_rules([tmp / "rules"])
            check_connector.prepare(rule_set)
            check = Check(check_connector, Engine(rule_set), KpiEngine(rule_set), fids)
            started = time.perf_counter()
            total = week(site, runtime, jobs, clock, check, keys, mirror, args, t0)
            seconds = time.perf_counter() - started
            lag_count = jobs.metrics.get_sample_value("bridge_timer_lag_seconds_count") or 0
            lag_sum = jobs.metrics.get_sample_value("bridge_timer_lag_seconds_sum") or 0
        finally:
            check_connector.close()
            check_store.close()
            runtime.close()
    ticks = total.ticks_run + total.ticks_skipped
    lags = total.lags
    print(
        f"\nthe week: {ticks:,} ticks of {TICK.seconds} s ({total.ticks_run:,} run, "
        f"{total.ticks_skipped:,} skipped as nothing was due); "
        f"{total.quiet_hours} quiet hours not shown above"
    )
    print(
        f"  wall time               {seconds:>9.1f} s  (in jobs.tick() {total.tick_wall:.1f} s, "
        f"checks {check.seconds:.1f} s, the bench's own queries and bookkeeping the rest)"
    )
    print(f"  syncs after t0          {0:>9}   (no full or incremental sync was needed)")
    print(f"  ticks with timers due   {total.busy_ticks:>9,}   (most at once: {total.most_due:,})")
    print(f"  timers due (sum)        {total.due:>9,}   (a timer waiting 2 ticks counts twice)")
    print(f"  items evaluated         {total.evaluated:>9,}")
    print(
        f"  reads (searches)        {total.reads:>9,}   ticks with reads ≠ ceil(due / 100): "
        f"{total.read_mismatch_ticks} (target 0); other requests: {total.other_requests}"
    )
    print(
        f"  writes (PUTs)           {total.writes:>9,}   needless (no value changed): "
        f"{total.needless_writes} (target 0); for items not due: {total.unexpected_writes}"
    )
    print(f"  due timers, no write    {total.silent_timers:>9,}   (target 0: next_change exact)")
    print(f"  requests by empty ticks {total.empty_tick_requests:>9,}   (target 0)")
    print(f"  searches not by key     {total.sweeps:>9,}   (target 0: no sweep of the project)")
    print(f"  429 answers             {total.too_many:>9,}")
    p99 = percentile(lags, 0.99)
    print(
        f"  lag, change → write     p50 {percentile(lags, 0.5):.0f} s, p99 {p99:.0f} s, "
        f"max {max(lags, default=float('nan')):.0f} s over {len(lags):,} writes "
        f"(target p99 ≤ 60 s: {'met' if p99 <= 60 else 'NOT met'}); "
        f"jobs.timer_lag: {lag_count:,.0f} timers, mean {lag_sum / max(lag_count, 1):.1f} s"
    )
    for kind, some in total.lags_by_kind.items():
        print(
            f"    {kind + ' writes':<21} p50 {percentile(some, 0.5):.0f} s, p99 "
            f"{percentile(some, 0.99):.0f} s, max {max(some, default=float('nan')):.0f} s over "
            f"{len(some):,}"
        )
    late = sum(1 for lag in lags if lag > 60)
    print(f"  writes later than 60 s  {late:>9,}   ({late / max(len(lags), 1):.1%})")
    ts = total.tick_seconds
    print(
        f"  wall per busy tick      p50 {percentile(ts, 0.5) * 1000:,.0f} ms, "
        f"max {max(ts, default=0) * 1000:,.0f} ms"
    )
    for claimed, at, writes, secs in total.busiest:
        print(f"    busiest: {at:%a %H:%M:%S} took {claimed:,} due, {writes:,} writes, {secs:.1f}s")
    print(
        f"  check: {check.checks:,} checks of {check.items:,} items (up to {TICK_SAMPLE} of "
        f"the items each tick took, 1/168 of all every hour, all at the end): "
        f"{check.mismatches} mismatches "
        f"(target 0); a fresh evaluation would write {check.planned}; "
        f"{check.backlog:,} left out while their timer waited its turn"
    )
    for example in check.examples:
        print(f"    {example}")
    print(f"total wall time {time.perf_counter() - wall:.0f} s")
    bad = (
        check.mismatches
        + check.planned
        + total.needless_writes
        + total.unexpected_writes
        + total.silent_timers
        + total.read_mismatch_ticks
        + total.empty_tick_requests
        + total.sweeps
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
