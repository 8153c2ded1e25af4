"""KPI engine speed: 100,000 items, each with two SLAs and the project KPIs where they apply.

Run: .venv/bin/python bench/bench_kpis.py [--items N] [--quick]
Prints the time of the KPI computation alone (classification is timed by bench_classify.py)
and the per-item cost. Target: under 5 s on one core.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bridge.kpi.compute import KpiEngine
from bridge.model import Classification, FieldChange, WorkItem
from bridge.rules.loader import load_rules

RULES = """bridge: 1
calendars:
  office: {timezone: Europe/Berlin, hours: {mon-fri: "08:00-17:00"}, holidays: {country: DE}}
kpi: {calendar: office, hourly_rate: 85, currency: EUR}
slas:
  first-response:
    calendar: office
    stop: {field: status_category, in: [in_progress, done]}
    cancel: {field: status, equals: Cancelled}
    goals: [{when: {field: priority, equals: Highest}, target: 30m}, {target: 8h}]
  resolution:
    calendar: office
    pause: {field: status, in: ["Waiting for customer"]}
    stop: {field: status_category, equals: done}
    cancel: {field: status, equals: Cancelled}
    goals: [{when: {field: priority, in: [Highest, High]}, target: 8h}, {target: 45h}]
rules:
  - {id: service, when: {field: type, equals: Incident},
     then: {work_type: service, kpis: [sla.first-response, sla.resolution, csat, tco]}}
  - {id: project, when: {field: type, equals: Epic},
     then: {work_type: project, kpis: [evm, effort, schedule, cost, sla.first-response,
                                       sla.resolution]}}
"""

NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)
PATHS = [
    ["Open", "In Progress", "Resolved"],
    ["Open", "In Progress", "Waiting for customer", "In Progress", "Resolved", "Closed"],
    ["Open", "Waiting for customer", "In Progress"],
    ["Open", "In Progress"],
    ["Open", "Cancelled"],
]
CATEGORY = {
    "Open": "todo",
    "In Progress": "in_progress",
    "Waiting for customer": "in_progress",
    "Resolved": "done",
    "Closed": "done",
    "Cancelled": "done",
}


def make_items(n: int, rng: random.Random) -> list[WorkItem]:
    items = []
    for i in range(n):
        created = NOW - timedelta(minutes=rng.randint(60, 60 * 24 * 120))
        path = rng.choice(PATHS)
        at = created
        history = []
        for a, b in itertools.pairwise(path):
            at += timedelta(minutes=rng.randint(5, 60 * 30))
            history.append(FieldChange(min(at, NOW), "status", a, b))
        status = path[-1]
        project = i % 3 == 0
        items.append(
            WorkItem(
                key=f"K-{i}",
                system="jira",
                type="Epic" if project else "Incident",
                status=status,
                status_category=CATEGORY[status],  # type: ignore[arg-type]
                priority=rng.choice(["Highest", "High", "Medium", "Low"]),
                created=created,
                resolved=history[-1].at if CATEGORY[status] == "done" else None,
                history=tuple(history),
                planned_start=date(2026, 1, 1) + timedelta(days=rng.randint(0, 200)),
                due=date(2026, 6, 1) + timedelta(days=rng.randint(0, 200)),
                estimate_hours=float(rng.randint(10, 500)),
                spent_hours=float(rng.randint(0, 400)),
                remaining_hours=float(rng.randint(0, 200)),
                budget=float(rng.randint(1, 90)) * 1000,
                satisfaction=float(rng.randint(1, 5)) if rng.random() < 0.3 else None,
            )
        )
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 items")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = 10_000 if args.quick else args.items
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "r.yaml").write_text(RULES)
        rule_set = load_rules([tmp])
    items = make_items(n, random.Random(7))
    engine = KpiEngine(rule_set)
    decisions = {
        "Incident": Classification("service", None, "service", rule_set.rules[0].then.kpis),
        "Epic": Classification("project", "execution", "project", rule_set.rules[1].then.kpis),
    }
    for item in items[:2000]:  # warm the calendar caches, as a long-running worker would be
        engine.compute(item, decisions[item.type or ""], NOW)
    runs, cpu = [], []
    for _ in range(args.repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        for item in items:
            engine.compute(item, decisions[item.type or ""], NOW)
        runs.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    best, median = min(runs), statistics.median(runs)
    projects = sum(1 for i in items if i.type == "Epic")
    print(
        f"python {platform.python_version()} on {platform.machine()} "
        f"({platform.processor() or 'unknown cpu'})"
    )
    print(
        f"{n:,} items ({projects:,} project items with EVM, effort, schedule and cost; "
        f"every item 2 SLAs from a status history of 1-5 changes)"
    )
    print(
        f"KPI computation: best {best:.2f} s, median {median:.2f} s over {args.repeat} runs "
        f"(target: under 5 s for 100,000 items)"
    )
    print(
        f"CPU time of this process: best {min(cpu):.2f} s (what one core costs, whatever "
        f"else runs on the machine)"
    )
    print(f"per item: {best / n * 1e6:.1f} µs; items/s: {n / best:,.0f}")


if __name__ == "__main__":
    main()
