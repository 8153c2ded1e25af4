"""ServiceNow sync over real HTTP: calls, writes and records/s against ServiceNowDouble.

Run: .venv/bin/python bench/bench_servicenow_sync.py [--records N] [--quick] [--latency MS]

N records (mixed tables: incidents with task_sla rows, requested items, problems, changes,
projects and project tasks) in a ServiceNowDouble that waits ``--latency`` ms per request, as
a remote instance does. ``sync_source`` runs twice with the shipped rules, a SQLite store and
write-back of four u_ fields plus a work note. Printed per run: GET calls (the pages of each
table, ``ceil(n / page)``, plus the task_sla batches), PATCHes (at most one per changed
record: fields and the note travel together), calls per record and records/s. The second run
must write nothing; that, and no session cookie ever sent back, are checked and printed.
Figures only: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.connectors.base import ConnectorContext
from bridge.connectors.servicenow.connector import ServiceNowConnector
from bridge.rules.loader import load_rules
from bridge.store.sqlite import SqliteStore
from bridge.sync import SyncReport, sync_source
from bridge.testing.servicenow import ServiceNowDouble

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "bench-only"  # noqa: S105 - the fake instance's, passed through the environment
WRITEBACK = {
    "work_type": "u_work_type",
    "phase": "u_phase",
    "rule": "u_rule",
    "sla.time-to-resolution.state": "u_sla_state",
}
# table → share of the records
MIX = {
    "incident": 0.40,
    "sc_req_item": 0.15,
    "problem": 0.10,
    "change_request": 0.15,
    "pm_project": 0.05,
    "pm_project_task": 0.15,
}
STATES = {
    "incident": ["1", "2", "2", "3", "6", "7"],
    "sc_req_item": ["1", "2", "3"],
    "problem": ["101", "102", "104", "106"],
    "change_request": ["-5", "-2", "-1", "3"],
    "pm_project": ["1", "2", "3"],
    "pm_project_task": ["-5", "1", "2", "3"],
}


def fmt(stamp: datetime) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def populate(sn: ServiceNowDouble, n: int, now: datetime, rng: random.Random) -> Counter[str]:
    counts: Counter[str] = Counter()
    tables = list(MIX)
    shares = [MIX[t] for t in tables]
    for index in range(n):
        counts[
            tables[index % len(tables)] if index < len(tables) else rng.choices(tables, shares)[0]
        ] += 1
    projects: list[str] = []
    for table in tables:
        sn.add_table(table, WRITEBACK.values())

        def fields(i: int, table: str = table, projects: list[str] = projects) -> dict[str, str]:
            opened = now - timedelta(minutes=rng.randint(60, 60 * 24 * 30))
            updated = opened + timedelta(minutes=rng.randint(0, 600))
            state = rng.choice(STATES[table])
            values = {
                "state": state,
                "priority": str(rng.randint(1, 4)),
                "short_description": f"{table} {i}",
                "opened_at": fmt(opened),
                "sys_created_on": fmt(opened),
                "sys_updated_on": fmt(min(updated, now - timedelta(seconds=5))),
                **dict.fromkeys(WRITEBACK.values(), ""),
            }
            if state in ("6", "7", "106", "3"):
                values["resolved_at"] = fmt(min(updated, now - timedelta(seconds=5)))
            if table in ("pm_project", "pm_project_task"):
                values["effort"] = "1970-01-03 00:00:00"
                values["work_effort"] = f"1970-01-01 {rng.randint(0, 23):02d}:00:00"
                if table == "pm_project_task" and projects:
                    values["top_task"] = rng.choice(projects)
            return values

        ids = sn.bulk_add(table, counts[table], fields)
        if table == "pm_project":
            projects = ids
        if table == "incident":
            for sys_id in ids:
                sn.add_task_sla(
                    sys_id,
                    sla_name="Time to resolution",
                    business_duration="1970-01-01 02:00:00",
                    business_time_left="1970-01-01 06:00:00",
                )
    return counts


def line(run: int, report: SyncReport, sn: ServiceNowDouble, seconds: float, sla: int) -> str:
    gets = sn.count("GET", r"/api/now/table/")
    sla_gets = sn.count("GET", r"/api/now/table/task_sla")
    patches = sn.count("PATCH")
    changed = report.items_written
    per_changed = f"{patches / changed:.2f}" if changed else "n/a"
    return (
        f"run {run}: {seconds:6.1f} s  {report.pulled / seconds:7.0f} records/s  "
        f"GET {gets} (tables {gets - sla_gets}, task_sla {sla_gets}; connector counted {sla})  "
        f"PATCH {patches} ({per_changed} per changed record, {changed} changed)  "
        f"calls/record {(gets + patches) / max(1, report.pulled):.3f}  "
        f"failed {len(report.failed)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="500 records")
    parser.add_argument("--latency", type=float, default=50.0, help="ms per request")
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=150, help="tasks per task_sla request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    n = 500 if args.quick else args.records
    rng = random.Random(args.seed)
    now = datetime.now(UTC).replace(microsecond=0)
    rule_set = load_rules([REPO / "rules"])
    os.environ["BENCH_SN_PASSWORD"] = PASSWORD
    double = ServiceNowDouble(latency=args.latency / 1000, password=PASSWORD)
    with tempfile.TemporaryDirectory() as tmp, double as sn:
        counts = populate(sn, n, now, rng)
        store = SqliteStore(str(Path(tmp) / "bridge.db"))
        settings = {
            "name": "sn",
            "connector": "servicenow",
            "url": sn.url,
            "auth": {"user": sn.user, "password_env": "BENCH_SN_PASSWORD"},
            "scope": {"tables": dict.fromkeys(MIX, "")},
            "writeback": {"fields": WRITEBACK, "journal": "work_notes"},
            "sla": {"batch_size": args.batch},
            "limits": {"concurrency": args.concurrency},
            "page_size": args.page,
        }
        connector = ServiceNowConnector(settings, ConnectorContext(store=store))
        pages = sum(math.ceil(c / args.page) for c in counts.values())
        batches = 0
        for count in counts.values():
            full, rest = divmod(count, args.page)
            batches += full * math.ceil(args.page / args.batch) + math.ceil(rest / args.batch)
        print(
            f"python {platform.python_version()}; {n} records "
            f"({', '.join(f'{t} {c}' for t, c in counts.items())}); latency {args.latency:g} ms; "
            f"page {args.page}; task_sla batch {args.batch}; concurrency {args.concurrency}"
        )
        print(
            f"expected GETs per run: {pages} table pages (sum of ceil(n/{args.page})) + "
            f"{batches} task_sla batches (per page of tasks, ceil(tasks/{args.batch})) = "
            f"{pages + batches}; run 1 also reads sys_choice once (the write-back columns' "
            f"choices) and bridge's last work notes in {batches} batches (a new store knows none)"
        )
        problems = []
        for run in (1, 2):
            sn.reset_counters()
            before = connector.sla_requests
            started = time.perf_counter()
            report = sync_source(
                "sn", connector, rule_set, store, now, full=True, concurrency=args.concurrency
            )
            seconds = time.perf_counter() - started
            print(line(run, report, sn, seconds, connector.sla_requests - before))
            if sn.cookie_requests:
                problems.append(f"run {run}: {sn.cookie_requests} requests sent a session cookie")
            if report.failed:
                problems.append(f"run {run}: {len(report.failed)} failed, e.g. {report.failed[0]}")
            # Run 1 also reads sys_choice once, and bridge's last work notes in the same
            # batches as task_sla (the store knows none yet; run 2 knows them all).
            expected = pages + batches + (1 + batches if run == 1 else 0)
            if sn.count("GET") != expected:
                problems.append(f"run {run}: {sn.count('GET')} GETs, expected {expected}")
            if run == 1 and sn.count("GET", r"/api/now/table/sys_choice") != 1:
                problems.append("run 1: the choice lists were not read exactly once")
            if sn.count("PATCH") > report.items_written:
                problems.append(f"run {run}: more PATCHes than changed records")
            if run == 2 and sn.count("PATCH"):
                problems.append(f"run 2 wrote {sn.count('PATCH')} PATCHes; expected none")
        notes = Counter(
            len(sn.journal(t, r["sys_id"], "work_notes")) for t in MIX for r in sn.records(t)
        )
        print(f"work notes per record after both runs: {dict(sorted(notes.items()))}")
        connector.close()
        store.close()
    print("checks: " + ("all passed (run 2 wrote nothing)" if not problems else "FAILED"))
    for problem in problems:
        print(f"  {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
