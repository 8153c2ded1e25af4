"""Exports at enterprise scale: ``bridge classify`` and ``bridge report`` end to end.

Run: .venv/bin/python bench/bench_export.py [--quick] [--sizes 10000,100000,1000000]

Generates Jira + ServiceNow exports (deterministic: the bundled example export multiplied,
each copy with its own keys) into a temporary folder, runs ``bridge`` on them as a child
process and prints items/s, the peak RSS of the child and its workers, and the ratio to
decoding the same bytes with ``json.loads`` alone. Targets (issue 15): ≥ 15,000 items/s on
one core with KPIs, peak RSS < 400 MB at every size, table within 1.5× of JSON, ``--jobs 2``
≥ 1.8× the one-core rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "export"
NOW = "2026-02-01T12:00:00Z"
JIRA_PAGE = 100
SERVICENOW_PAGE = 1000

_KEY = "@@KEY@@"
_ID = "@@ID@@"


def _jira_templates() -> tuple[list[tuple[str, str]], dict[str, object]]:
    """Each bundled issue as JSON text with its key and id made placeholders, and the
    ``names`` of the first page (every page of one site names the same fields)."""
    templates = []
    names: dict[str, object] = {}
    for path in sorted((EXAMPLES / "jira").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        names = names or doc.get("names", {})
        for original in doc["issues"]:
            project, _, number = original["key"].partition("-")
            issue = dict(original, key=f"{project}-{_KEY}{number}", id=_ID)
            issue["self"] = issue["self"].rsplit("/", 1)[0] + "/" + _ID
            templates.append((number, json.dumps(issue, ensure_ascii=False)))
    return templates, names


def _servicenow_templates() -> dict[str, list[str]]:
    """Each bundled record per table as JSON text with its number and sys_id made
    placeholders."""
    tables: dict[str, list[str]] = {}
    for path in sorted((EXAMPLES / "servicenow").glob("*.json")):
        records = []
        for original in json.loads(path.read_text(encoding="utf-8"))["result"]:
            record = dict(original, sys_id=f"{_ID}{original['sys_id'][8:]}")
            number = record.get("number")
            if isinstance(number, str):
                record["number"] = f"{number[:3]}{_KEY}{number[3:]}"
            records.append(json.dumps(record, ensure_ascii=False))
        tables[path.stem] = records
    return tables


def generate(items: int, folder: Path) -> int:
    """Write ``items`` items (about 60 % Jira issues, 40 % ServiceNow records, the bundled
    export's mix) under ``folder``: Jira search pages of 100, ServiceNow pages of 1,000 per
    table. Copy ``c`` of a record gets key ``OPS-<c>1`` style prefixes, so keys are unique.
    Returns the bytes written."""
    jira, names = _jira_templates()
    tables = _servicenow_templates()
    per_copy = len(jira) + sum(len(r) for r in tables.values())
    copies = -(-items // per_copy)
    (folder / "jira").mkdir(parents=True, exist_ok=True)
    (folder / "servicenow").mkdir(parents=True, exist_ok=True)
    left = items
    jira_records: list[str] = []
    sn_records: dict[str, list[str]] = {t: [] for t in tables}
    written = 0
    pages = {"jira": 0, **dict.fromkeys(tables, 0)}

    def flush_jira(final: bool = False) -> None:
        nonlocal written
        while len(jira_records) >= JIRA_PAGE or (final and jira_records):
            page, rest = jira_records[:JIRA_PAGE], jira_records[JIRA_PAGE:]
            jira_records[:] = rest
            pages["jira"] += 1
            body = (
                '{"issues": ['
                + ", ".join(page)
                + '], "names": '
                + json.dumps(names)
                + ', "isLast": false}'
            )
            path = folder / "jira" / f"site-page-{pages['jira']:06d}.json"
            written += path.write_text(body, encoding="utf-8")

    def flush_sn(table: str, final: bool = False) -> None:
        nonlocal written
        records = sn_records[table]
        while len(records) >= SERVICENOW_PAGE or (final and records):
            page, rest = records[:SERVICENOW_PAGE], records[SERVICENOW_PAGE:]
            records[:] = rest
            pages[table] += 1
            body = '{"result": [' + ", ".join(page) + "]}"
            path = folder / "servicenow" / f"{table}-page-{pages[table]:05d}.json"
            written += path.write_text(body, encoding="utf-8")

    for copy in range(copies):
        tag = f"{copy:06d}"
        for number, text in jira:
            if left == 0:
                break
            left -= 1
            jira_records.append(
                text.replace(_KEY, str(copy + 1)).replace(_ID, f"{copy * 1000 + int(number)}")
            )
        flush_jira()
        for table, records in tables.items():
            for text in records:
                if left == 0:
                    break
                left -= 1
                sn_records[table].append(text.replace(_KEY, tag).replace(_ID, f"{copy:08x}"))
            flush_sn(table)
    flush_jira(final=True)
    for table in tables:
        flush_sn(table, final=True)
    return written


_MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(code, took, peak)
"""


def run_bridge(args: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB, the largest of bridge and its workers) of one run, measured
    by a small parent of its own so that earlier runs do not count."""
    bridge = str(Path(sys.executable).with_name("bridge"))
    env = dict(os.environ, COLUMNS="100")
    out = subprocess.run(  # noqa: S603 - our own interpreter and bridge
        [sys.executable, "-c", _MEASURE, bridge, *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    code, took, peak = int(out[0]), float(out[1]), int(out[2])
    if code != 0:
        raise SystemExit(f"bridge {' '.join(args)} exited {code}")
    return took, peak / 1024


def decode_alone(folder: Path) -> float:
    """Seconds to json.loads every export file (read from the page cache), one core."""
    start = time.perf_counter()
    for path in sorted(folder.rglob("*.json")):
        json.loads(path.read_bytes())
    return time.perf_counter() - start


def measure(items: int, root: Path, jobs: list[int], only: set[str] | None = None) -> None:
    folder = root / f"export-{items}"
    started = time.perf_counter()
    size = generate(items, folder)
    print(
        f"\n## {items:,} items, {size / 1e6:,.0f} MB "
        f"(generated in {time.perf_counter() - started:.1f} s)"
    )
    decode = decode_alone(folder)
    print(f"json.loads alone: {decode:.2f} s, {items / decode:,.0f} items/s")
    common = ["-i", str(folder), "--now", NOW]
    print(
        f"{'command':<34} {'jobs':>4} {'seconds':>8} {'items/s':>9} {'peak MB':>8} {'÷ decode':>8}"
    )
    rates: dict[tuple[str, int], float] = {}
    for label, args in (
        ("classify -f json", ["classify", "-f", "json", *common]),
        ("classify -f csv", ["classify", "-f", "csv", *common]),
        ("classify -f table", ["classify", "-f", "table", *common]),
        ("report -f json", ["report", "-f", "json", *common]),
    ):
        name = "report" if label.startswith("report") else label.split()[-1]
        if only and name not in only:
            continue
        for n in jobs:
            took, peak = run_bridge([*args, "-j", str(n)])
            rates[(label, n)] = items / took
            print(
                f"{label:<34} {n:>4} {took:>8.2f} {items / took:>9,.0f} {peak:>8.0f} "
                f"{took / decode:>8.2f}"
            )
    json_1 = rates.get(("classify -f json", 1))
    table_1 = rates.get(("classify -f table", 1))
    if json_1 and table_1:
        print(f"table ÷ json time (1 job): {json_1 / table_1:.2f} (target ≤ 1.5)")
    for label, name in (("classify -f json", "json"), ("report -f json", "report")):
        if (label, 1) in rates and (label, 2) in rates:
            print(
                f"{name}, 2 jobs ÷ 1 job rate: {rates[(label, 2)] / rates[(label, 1)]:.2f} "
                "(target ≥ 1.8)"
            )
    shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 items only")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="item counts")
    parser.add_argument("--jobs", default="1,2", help="--jobs values to compare")
    parser.add_argument(
        "--only",
        help="commands to run, comma-separated: json, csv, table, report (default: all)",
    )
    parser.add_argument("--generate", metavar="N", type=int, help="only generate N items")
    parser.add_argument("--out", type=Path, help="with --generate: the folder to write")
    args = parser.parse_args()
    if args.generate:
        out = args.out or Path(tempfile.mkdtemp(prefix="bridge-export-"))
        size = generate(args.generate, out)
        print(f"{args.generate} items, {size / 1e6:.0f} MB in {out}")
        return
    sizes = [10_000] if args.quick else [int(n) for n in args.sizes.split(",")]
    print(
        f"bench_export: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{len(os.sched_getaffinity(0))} available"
    )
    with tempfile.TemporaryDirectory(prefix="bridge-bench-export-") as root:
        for items in sizes:
            only = set(args.only.split(",")) if args.only else None
            measure(items, Path(root), [int(n) for n in args.jobs.split(",")], only)


if __name__ == "__main__":
    main()
