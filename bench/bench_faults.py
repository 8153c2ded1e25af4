"""A seeded fault storm against both doubles: does any item end up wrong for good?

Run: .venv/bin/python bench/bench_faults.py [--items N] [--seeds 1 2 3] [--rounds R]

For each seed, N items on a JiraDouble and N records on a ServiceNowDouble, then rounds of
``sync_source`` (what ``bridge worker`` runs on its schedule) while the doubles misbehave:
writes refused with 503, 502, 500, 409 or 400 (some beyond the client's own attempts), a
whole-site outage for a stretch of requests (searches and reads included), 429s with
Retry-After, syncs killed mid-way (the process dies:
nothing after that item runs, the cursor is not saved) and people editing tickets between
rounds. The faults stop after ``--rounds``; then syncs run until nothing is pending (or at
most five more). Printed per system and seed: items, faults injected, failed item writes,
retries of pending items, items given up and **lost** — items whose values on the site
differ from what bridge computes for them (a fresh fetch still plans a write).
Target: 0 lost. Figures only; nothing asserts on time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_jira_sync as jira_bench
import bench_servicenow_sync as sn_bench

from bridge.connectors.base import ConnectorContext, LiveConnector
from bridge.connectors.http import RetryPolicy
from bridge.connectors.jira.client import JiraClient
from bridge.connectors.jira.connector import JiraConnector
from bridge.connectors.jira.settings import parse_settings, resolve_auth
from bridge.connectors.servicenow.connector import ServiceNowConnector
from bridge.kpi.compute import KpiEngine
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules
from bridge.store.records import Backoff
from bridge.store.sqlite import SqliteStore
from bridge.sync import evaluate_item, sync_source
from bridge.testing.jira import JiraDouble
from bridge.testing.servicenow import ServiceNowDouble

REPO = Path(__file__).resolve().parent.parent
# Retried often enough to outlast the storm: the storm refuses some items up to ~4 times.
BACKOFF = Backoff(max_attempts=12)
# The clients' own retries, with short waits: the storm is about what survives, not time.
FAST = RetryPolicy(max_attempts=4, base_delay=0.005, max_delay=0.02)


class Killed(Exception):
    """The worker process died in the middle of a sync."""


@dataclass
class Tally:
    items: int = 0
    faults: int = 0
    kills: int = 0
    aborted: int = 0  # syncs whose pull failed (the site was down): the next one catches up
    failed: int = 0
    retried: int = 0
    given_up: int = 0
    lost: int = 0
    rounds: int = 0
    seconds: float = 0.0
    lost_keys: list[str] = field(default_factory=list)


@contextmanager
def quiet() -> Iterator[None]:
    """The connectors log every retry at WARNING; a storm would bury the figures."""
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def storm(
    rng: random.Random,
    inject: Callable[..., None],
    keys: Sequence[str],
    write_method: str,
    path_of: Callable[[str], str],
    throttle: dict[str, Any],
) -> int:
    """One round of faults; how many were injected. ``throttle`` completes a 429 the way
    the system sends it for one item (Jira: the per-issue write limit)."""
    count = 0
    for key in rng.sample(list(keys), k=max(1, len(keys) // 4)):
        status = rng.choice([503, 503, 502, 409, 400, 500])
        times = rng.randint(1, 7)  # beyond the client's own attempts, some of them
        inject(status, times=times, method=write_method, path=path_of(key))
        count += times
    for key in rng.sample(list(keys), k=max(1, len(keys) // 40)):
        inject(429, times=rng.randint(1, 3), method=write_method, path=path_of(key), **throttle)
        count += 1
    if rng.random() < 0.5:  # the whole site is down for a stretch of requests
        stretch = rng.randint(2, 10)
        inject(503, times=stretch)
        count += stretch
    return count


def settle(
    name: str,
    build: Callable[[], LiveConnector],
    rule_set: RuleSet,
    store: SqliteStore,
    now: datetime,
    tally: Tally,
    kill_after: int | None,
) -> None:
    """One scheduled sync; ``kill_after`` items in, the process dies."""
    seen = 0

    def on_item(_: Any) -> None:
        nonlocal seen
        seen += 1
        if kill_after is not None and seen > kill_after:
            raise Killed

    connector = build()
    try:
        report = sync_source(
            name, connector, rule_set, store, now, backoff=BACKOFF, on_item=on_item
        )
    except Killed:
        tally.kills += 1
        return
    except Exception:  # the pull itself failed (an outage on a search): next round
        tally.aborted += 1
        return
    finally:
        connector.close()
    tally.failed += len(report.failed)
    tally.retried += report.retried


def lost_items(
    build: Callable[[], LiveConnector], keys: Sequence[str], rule_set: RuleSet, now: datetime
) -> list[str]:
    """Items whose site values differ from what bridge computes: a fresh fetch plans a
    write. (Clock-driven figures are not written back by these benchmarks' fields.)"""
    connector = build()
    engine, kpis = Engine(rule_set), KpiEngine(rule_set)
    connector.prepare(rule_set)
    try:
        return [k for k in keys if evaluate_item(connector.fetch(k), engine, kpis, connector, now)]
    finally:
        connector.close()


def campaign(
    name: str,
    build: Callable[[], LiveConnector],
    site: Any,
    keys: Sequence[str],
    rule_set: RuleSet,
    store: SqliteStore,
    now: datetime,
    rng: random.Random,
    rounds: int,
    write_method: str,
    path_of: Callable[[str], str],
    touch: Callable[[str], None],
    throttle: dict[str, Any],
) -> Tally:
    tally = Tally(items=len(keys))
    started = time.perf_counter()
    for round_no in range(rounds):
        # People keep working: what they change is what this round must write, and where
        # the faults land (the first round writes everything).
        touched = list(keys) if round_no == 0 else rng.sample(list(keys), k=len(keys) // 10)
        for key in touched if round_no else ():
            touch(key)
        tally.faults += storm(rng, site.inject, touched, write_method, path_of, throttle)
        kill = rng.randint(len(keys) // 4, len(keys)) if rng.random() < 0.4 else None
        settle(name, build, rule_set, store, now + timedelta(minutes=round_no), tally, kill)
    site.clear_faults()
    for extra in range(5):  # the storm is over: syncs until nothing is pending
        if not store.list_pending(name, given_up=False, limit=1) and extra:
            break
        settle(name, build, rule_set, store, now + timedelta(hours=1 + extra), tally, None)
        tally.rounds = rounds + extra + 1
    tally.given_up = len(store.list_pending(name, given_up=True, limit=100_000))
    tally.lost_keys = lost_items(build, keys, rule_set, now + timedelta(hours=6))
    tally.lost = len(tally.lost_keys)
    tally.seconds = time.perf_counter() - started
    return tally


def jira_campaign(seed: int, n: int, rounds: int, tmp: Path) -> Tally:
    rng = random.Random(seed)
    rules_dir = tmp / f"jira-rules-{seed}"
    rules_dir.mkdir()
    (rules_dir / "r.yaml").write_text(jira_bench.RULES)
    rule_set = load_rules([rules_dir])
    os.environ[jira_bench.TOKEN_ENV] = "token"
    with JiraDouble(write_limits=()) as site:
        jira_bench.seed(site, n)
        keys = site.keys()
        raw = jira_bench.settings(site, page_size=100, writes_per_second=500)
        raw["timeout"] = 2
        raw["deployment"] = "cloud"
        store = SqliteStore(str(tmp / f"jira-{seed}.db"))

        parsed = parse_settings(raw)
        _, auth, url = resolve_auth(raw, parsed)

        def build() -> LiveConnector:
            client = JiraClient(
                base_url=url, auth=auth, writes_per_second=500, timeout=2, retry=FAST
            )
            return JiraConnector(parsed, client, store=store)

        statuses = ("To Do", "In Progress", "Done")
        try:
            return campaign(
                "bench-jira",
                build,
                site,
                keys,
                rule_set,
                store,
                jira_bench.NOW,
                rng,
                rounds,
                "PUT",
                lambda key: rf"/issue/{key}$",
                lambda key: site.touch(key, status=rng.choice(statuses)),
                {"retry_after": 1, "reason": "jira-per-issue-on-write"},
            )
        finally:
            store.close()


def servicenow_campaign(seed: int, n: int, rounds: int, tmp: Path) -> Tally:
    rng = random.Random(seed)
    rule_set = load_rules([REPO / "rules"])
    now = datetime.now(UTC).replace(microsecond=0)
    os.environ["BENCH_SN_PASSWORD"] = sn_bench.PASSWORD
    with ServiceNowDouble(password=sn_bench.PASSWORD) as sn:
        sn_bench.populate(sn, n, now, rng)
        refs = [(table, record["sys_id"]) for table in sn_bench.MIX for record in sn.records(table)]
        keys = [f"{table}:{sys_id}" for table, sys_id in refs]
        store = SqliteStore(str(tmp / f"sn-{seed}.db"))
        settings = {
            "name": "sn",
            "connector": "servicenow",
            "url": sn.url,
            "auth": {"user": sn.user, "password_env": "BENCH_SN_PASSWORD"},
            "scope": {"tables": dict.fromkeys(sn_bench.MIX, "")},
            "writeback": {"fields": sn_bench.WRITEBACK, "journal": "work_notes"},
            "timeout": 2,
        }

        def build() -> LiveConnector:
            return ServiceNowConnector(settings, ConnectorContext(store=store), retry=FAST)

        def touch(key: str) -> None:
            table, _, sys_id = key.partition(":")
            sn.update_as_user(table, sys_id, priority=str(rng.randint(1, 4)))

        try:
            return campaign(
                "sn",
                build,
                sn,
                keys,
                rule_set,
                store,
                now,
                rng,
                rounds,
                "PATCH",
                lambda key: rf"/{key.partition(':')[2]}$",
                touch,
                {"retry_after": 1},
            )
        finally:
            store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=500, help="items per system (default 500)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rounds", type=int, default=6, help="syncs during the storm")
    args = parser.parse_args(argv)
    print(
        f"bench_faults: {args.items} items per system, seeds {args.seeds}, "
        f"{args.rounds} stormy rounds; Python {sys.version.split()[0]}"
    )
    header = (
        f"{'system':<11}{'seed':>5}{'items':>7}{'faults':>8}{'kills':>7}{'aborted':>9}{'failed':>8}"
        f"{'retried':>9}{'given up':>10}{'lost':>6}{'rounds':>8}{'time':>8}"
    )
    print(header)
    total_lost = 0
    with tempfile.TemporaryDirectory() as folder, quiet():
        tmp = Path(folder)
        for seed in args.seeds:
            for system, run in (("jira", jira_campaign), ("servicenow", servicenow_campaign)):
                tally = run(seed, args.items, args.rounds, tmp)
                total_lost += tally.lost
                print(
                    f"{system:<11}{seed:>5}{tally.items:>7}{tally.faults:>8}{tally.kills:>7}"
                    f"{tally.aborted:>9}"
                    f"{tally.failed:>8}{tally.retried:>9}{tally.given_up:>10}{tally.lost:>6}"
                    f"{tally.rounds:>8}{tally.seconds:>7.1f}s"
                    + (f"  lost: {', '.join(tally.lost_keys[:5])}" if tally.lost else ""),
                    flush=True,
                )
    print(f"lost in all: {total_lost} (target 0)")
    return 0 if total_lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
