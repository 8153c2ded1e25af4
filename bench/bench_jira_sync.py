"""How a Jira sync spends its requests and time — printed, never asserted on time.

Run ``.venv/bin/python bench/bench_jira_sync.py [--quick] [--issues N] [--latency S]``.

A JiraDouble (a fake Jira Cloud over real HTTP on 127.0.0.1) holds N issues and answers each
request after ``--latency`` seconds (default 50 ms, a typical round trip to Atlassian's
cloud). ``sync_source`` runs twice through the real connector (``make_connector``, the
settings a ``bridge.yaml`` would hold): the first run writes every issue (four KPI fields
and the comment), the second — a new connector, as the next scheduled ``bridge sync`` would
be, at the same ``now`` — must find nothing to change and write nothing.

Figures come from the double's own request log (what reached the "server"), not from the
client's counters. The run checks its correctness claims and exits 1 when one fails:
search calls = ceil(N / page size) on each run, one comment per issue, zero writes on the
second run, no per-issue 429. Time is printed only.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.connectors.base import ConnectorContext
from bridge.connectors.jira.connector import make_connector
from bridge.model import PHASES
from bridge.rules.loader import load_rules
from bridge.store.sqlite import SqliteStore
from bridge.sync import SyncReport, sync_source
from bridge.testing.jira import JiraDouble, RecordedRequest

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
TOKEN_ENV = "BENCH_JIRA_TOKEN"  # noqa: S105 - the name of a variable, not a secret

RULES = """bridge: 1
slas:
  time-to-resolution:
    start: {on: created}
    stop: {field: status_category, equals: done}
    goals:
      - {when: {field: priority, equals: High}, target: 8h}
      - {target: 5d}
rules:
  - id: project-work
    when: {field: type, in: [Epic, Story, Task]}
    then:
      work_type: project
      phase: {by_status_category: {todo: planning, in_progress: execution, done: closing}}
      kpis: [effort]
  - id: incidents
    when: {field: type, equals: Incident}
    then: {work_type: service, kpis: [sla.time-to-resolution]}
default: {work_type: unclassified}
"""

WRITEBACK = {
    "work_type": "Work type",
    "phase": "Bridge phase",
    "effort.variance_pct": "Effort variance %",
    "effort.forecast_hours": "Forecast hours",
    "sla.time-to-resolution.state": "TTR state",
}


def seed(site: JiraDouble, n: int) -> None:
    site.add_field("Bridge phase", "select", options=list(PHASES))
    site.add_field("Effort variance %", "number")
    site.add_field("Forecast hours", "number")
    site.add_field("TTR state", "string")
    types = ("Story", "Task", "Incident", "Epic", "Incident", "Bug")
    statuses = ("To Do", "In Progress", "Done")

    def fields(i: int) -> dict[str, Any]:
        created = NOW - timedelta(days=30) + timedelta(minutes=5 * i)
        return {
            "issuetype": types[i % len(types)],
            "status": statuses[i % 3],
            "priority": "High" if i % 5 == 0 else "Medium",
            "timeoriginalestimate": 3600 * (2 + i % 9),
            "timespent": 1800 * (i % 11),
            "timeestimate": 3600 * (i % 4),
            "created": created,
            "updated": created + timedelta(hours=1),
        }

    site.bulk_add(n, fields=fields)


def settings(site: JiraDouble, page_size: int, writes_per_second: float) -> dict[str, Any]:
    return {
        "name": "bench-jira",
        "connector": "jira",
        "url": site.url,
        "auth": {"email": site.email, "token_env": TOKEN_ENV},
        "scope": {"jql": "project = OPS"},
        "writeback": {"fields": WRITEBACK},
        "page_size": page_size,
        "limits": {"writes_per_second": writes_per_second, "concurrency": 8},
    }


def classify(requests: list[RecordedRequest]) -> dict[str, int]:
    out = {"search": 0, "read": 0, "write": 0, "429": 0}
    for r in requests:
        if r.path.endswith("/search/jql"):
            out["search"] += 1
        elif r.method == "GET":
            out["read"] += 1
        else:
            out["write"] += 1
        if r.status == 429:
            out["429"] += 1
    return out


def run(
    label: str, site: JiraDouble, store: SqliteStore, raw: dict[str, Any], rules_dir: Path, n: int
) -> tuple[SyncReport, dict[str, int], float]:
    rule_set = load_rules([rules_dir])
    connector = make_connector(raw, ConnectorContext(store=store))
    site.reset_counters()
    started = time.perf_counter()
    try:
        report = sync_source(
            "bench-jira", connector, rule_set, store, NOW, concurrency=connector.concurrency
        )
    finally:
        connector.close()
    seconds = time.perf_counter() - started
    counts = classify(site.requests)
    total = counts["search"] + counts["read"] + counts["write"]
    print(f"\n{label}")
    print(
        f"  pulled {report.pulled:,}, unchanged {report.unchanged:,}, "
        f"duplicates {report.duplicates:,}, written {report.items_written:,}, "
        f"failed {len(report.failed)}, skipped {len(report.skipped)}"
    )
    print(
        f"  search calls      {counts['search']:>8,}   (ceil(N / page size) = "
        f"{math.ceil(n / raw['page_size']):,})"
    )
    print(f"  other reads       {counts['read']:>8,}")
    print(
        f"  writes            {counts['write']:>8,}   ({counts['write'] / n:.2f} per issue: "
        f"{report.field_writes:,} field values in PUTs, {report.comment_writes:,} comments)"
    )
    print(f"  calls per issue   {total / n:>8.2f}")
    print(f"  429 answers       {counts['429']:>8,}")
    print(f"  time              {seconds:>8.1f} s   {n / seconds:,.0f} issues/s")
    return report, counts, seconds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--issues", type=int, default=None, help="issues (default 5000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 issues")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument(
        "--writes-per-second",
        type=float,
        default=50.0,
        help="the connector's write limit (default 50, Jira Cloud's PUT rate)",
    )
    parser.add_argument(
        "--validate", action="store_true", help="check every request against the OpenAPI spec"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    n = args.issues or (500 if args.quick else 5000)
    os.environ[TOKEN_ENV] = "token"
    spec = None
    if args.validate:
        from bridge.testing import OpenApiSpec

        spec = OpenApiSpec.load(
            Path(__file__).parents[1] / "tests" / "data" / "jira" / "openapi-cloud-platform-v3.json"
        )
    problems: list[str] = []
    print(
        f"bench_jira_sync: {n:,} issues, {args.latency * 1000:.0f} ms latency per request, "
        f"page size {args.page_size}, writes limited to {args.writes_per_second:g}/s, "
        f"8 writer threads; Python {platform.python_version()} on {platform.machine()}"
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        JiraDouble(latency=args.latency, max_page=max(args.page_size, 100), spec=spec) as site,
    ):
        seed(site, n)
        rules_dir = Path(tmp) / "rules"
        rules_dir.mkdir()
        (rules_dir / "rules.yaml").write_text(RULES)
        store = SqliteStore(str(Path(tmp) / "bridge.db"))
        raw = settings(site, args.page_size, args.writes_per_second)
        pages = math.ceil(n / args.page_size)

        first, counts1, _ = run(
            "run 1 (first sync: every issue written)", site, store, raw, rules_dir, n
        )
        second, counts2, _ = run(
            "run 2 (no changes, new connector)", site, store, raw, rules_dir, n
        )

        for label, report, counts in (("run 1", first, counts1), ("run 2", second, counts2)):
            if counts["search"] != pages:
                problems.append(f"{label}: {counts['search']} search calls, expected {pages}")
            if counts["429"]:
                problems.append(f"{label}: {counts['429']} requests answered 429")
            if not report.ok:
                problems.append(f"{label}: {len(report.failed)} items failed: {report.failed[:3]}")
        if counts2["write"]:
            problems.append(f"run 2 made {counts2['write']} writes; expected none")
        several = sum(1 for key in site.keys() if len(site.comments(key)) != 1)  # noqa: SIM118
        if several:
            problems.append(f"{several} issues do not have exactly one bridge comment")
        store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the process (client, double and its {n:,} issues): {peak:,.0f} MB")
    if problems:
        print("\nPROBLEMS:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(
        "\nchecks: search calls = ceil(N / page size) on both runs; one comment per issue; "
        "run 2 made zero writes; no 429 — OK"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
