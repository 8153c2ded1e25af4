"""next_change speed: when each item's written values next change by the clock alone.

Run: .venv/bin/python bench/bench_next_change.py [--items N] [--repeat N]
Prints the time per call on the items of bench_kpis.py (two SLAs each, a third of them
projects with a schedule), for a write-back of a few fields and for one that writes every
value (a summary comment), next to the KPI computation alone; then checks every answer
against the KPIs themselves and counts the ones that are wrong.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # bench_kpis beside this file, when imported

from bench_kpis import NOW, RULES, make_items

from bridge.kpi import moving, next_change
from bridge.kpi.compute import KpiEngine
from bridge.model import Classification, WorkItem
from bridge.rules.loader import load_rules

US = timedelta(microseconds=1)
# A typical write-back mapping (Jira custom fields or ServiceNow u_ columns); evm.spi moves
# continuously and is ignored, as a caller refreshes it on a cadence.
FIELDS = (
    "work_type",
    "phase",
    "sla.first-response.state",
    "sla.resolution.state",
    "sla.resolution.breached",
    "sla.resolution.breach_time",
    "schedule.slip_days",
    "evm.spi",
)


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        runs.append(time.perf_counter() - started)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.items
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "r.yaml").write_text(RULES)
        rule_set = load_rules([tmp])
    items = make_items(n, random.Random(7))
    kpis = KpiEngine(rule_set)
    decisions = {
        "Incident": Classification("service", None, "service", rule_set.rules[0].then.kpis),
        "Epic": Classification("project", "execution", "project", rule_set.rules[1].then.kpis),
    }
    pairs = [(item, decisions[item.type or ""]) for item in items]
    everything = sorted(
        {"work_type", "phase", "rule"}
        | {key for item, d in pairs[:500] for key in kpis.compute(item, d, NOW).values}
    )
    for item, decision in pairs[:2000]:  # warm the calendar caches, as a worker would be
        next_change(item, decision, kpis, everything, NOW)

    def compute_all() -> None:
        for item, decision in pairs:
            kpis.compute(item, decision, NOW)

    def next_all(written: Collection[str]) -> Callable[[], None]:
        def run() -> None:
            for item, decision in pairs:
                next_change(item, decision, kpis, written, NOW)

        return run

    scenarios = {
        f"{len(FIELDS)} mapped fields": FIELDS,
        f"every value ({len(everything)} keys)": everything,
    }
    print(
        f"python {platform.python_version()} on {platform.machine()} "
        f"({platform.processor() or 'unknown cpu'})"
    )
    projects = sum(1 for item in items if item.type == "Epic")
    print(f"{n:,} items ({projects:,} projects), now = {NOW.isoformat()}")
    runs = timed(compute_all, args.repeat)
    print(
        f"KpiEngine.compute alone:        best {min(runs) / n * 1e6:6.1f} µs/item, "
        f"median {statistics.median(runs) / n * 1e6:6.1f}"
    )
    for label, written in scenarios.items():
        runs = timed(next_all(written), args.repeat)
        print(
            f"next_change, {label:<22} best {min(runs) / n * 1e6:6.1f} µs/call, "
            f"median {statistics.median(runs) / n * 1e6:6.1f} "
            f"({n / min(runs):,.0f} calls/s)"
        )
    for label, written in scenarios.items():
        check(label, pairs, kpis, written)


def check(
    label: str,
    pairs: list[tuple[WorkItem, Classification]],
    kpis: KpiEngine,
    written: Collection[str],
) -> None:
    """Each answer against the KPIs: a change at t, none just before it; None: nothing
    different a day, a month and a year later."""
    keys = [key for key in written if not moving(key)]

    def values(item: WorkItem, decision: Classification, at: datetime) -> tuple[object, ...]:
        computed = kpis.compute(item, decision, at).values
        facts = {"work_type": decision.work_type, "phase": decision.phase, "rule": decision.rule}
        return tuple(facts[k] if k in facts else computed.get(k) for k in keys)

    kinds: Counter[str] = Counter()
    wrong = 0
    for item, decision in pairs:
        t = next_change(item, decision, kpis, written, NOW)
        base = values(item, decision, NOW)
        if t is None:
            kinds["none"] += 1
            later = (NOW + timedelta(days=d) for d in (1, 30, 365))
            wrong += any(values(item, decision, at) != base for at in later)
            continue
        kinds["within a day" if t - NOW <= timedelta(days=1) else "later"] += 1
        wrong += values(item, decision, t - US) != base or values(item, decision, t) == base
    print(
        f"{label}: next change within a day {kinds['within a day']:,}, later "
        f"{kinds['later']:,}, none {kinds['none']:,}; wrong answers: {wrong}"
    )


if __name__ == "__main__":
    main()
