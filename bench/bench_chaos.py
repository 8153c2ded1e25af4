"""Never twice, under interruption and concurrency: duplicate comments and work notes.

Run: .venv/bin/python bench/bench_chaos.py [--items 300] [--interruptions 25] [--seeds 1 2 3]
     [--race-items 30] [--no-race]

For each seed and system (Jira, ServiceNow): real ``bridge sync`` processes against the
doubles over HTTP, interrupted ``--interruptions`` times with a random SIGINT, SIGTERM or
SIGKILL after a random number (1-40) of writes reached the system, while people edit a
tenth of the tickets before each run; then two clean syncs. Jira's store is PostgreSQL,
ServiceNow's SQLite. Then, unless ``--no-race``, the concurrency scenario per seed: two
``bridge worker`` processes on Redis take three different webhook deliveries per Jira issue,
in a random order through the real receiver, while a full ``bridge sync`` runs.

Printed per run: runs, interruptions by signal, edits, writes, summaries on record and
**duplicate comments, duplicate work notes** (target: 0), and items whose fields or summary
are not what bridge computes (target: 0). The race prints writes beyond one per issue.
Needs PostgreSQL (BRIDGE_BENCH_POSTGRES_URL, default the machine's) and Redis
(BRIDGE_BENCH_REDIS_URL, default database 15) for the Jira and race scenarios.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bridge.testing.chaos import Figures, run_chaos, run_race

POSTGRES_URL = os.environ.get("BRIDGE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test")
REDIS_URL = os.environ.get("BRIDGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--interruptions", type=int, default=25)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--race-items", type=int, default=30)
    parser.add_argument("--no-race", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores; {args.items} items, "
        f"{args.interruptions} interruptions per system and seed; seeds {args.seeds}"
    )
    results: list[Figures] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for kind in ("jira", "servicenow"):
                figures = run_chaos(
                    kind,
                    Path(tmp) / f"{kind}-{seed}",
                    items=args.items,
                    interruptions=args.interruptions,
                    seed=seed,
                    store=POSTGRES_URL if kind == "jira" else None,
                )
                results.append(figures)
                print(figures.line(), flush=True)
            if not args.no_race:
                race = run_race(
                    Path(tmp) / f"race-{seed}",
                    redis_url=REDIS_URL,
                    store=POSTGRES_URL,
                    items=args.race_items,
                    seed=seed,
                )
                results.append(race)
                print(
                    f"{race.system:<11} seed {seed}: {race.items} issues, {race.runs - 1} "
                    f"deliveries + a full sync, 2 workers; {race.summaries} comments, "
                    f"duplicate comments {race.duplicate_comments}, writes beyond one per "
                    f"issue {race.writes}, wrong items {len(race.wrong)} ({race.seconds:.0f} s)",
                    flush=True,
                )
    duplicated = sum(f.duplicate_comments + f.duplicate_notes for f in results)
    wrong = sum(len(f.wrong) for f in results)
    interrupted = sum(f.interrupted for f in results)
    print(
        f"\ntotal: {interrupted} interruptions, {duplicated} duplicated summaries, "
        f"{wrong} wrong items"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
