"""Interrupted syncs against the doubles: is anything ever written twice?

bridge promises one summary comment per Jira issue and a ServiceNow work note only when the
summary materially changes, whatever happens to the process writing them. This drives real
``bridge sync`` processes against a :class:`JiraDouble` or a :class:`ServiceNowDouble` over
HTTP while people keep editing tickets, and interrupts them — SIGINT, SIGTERM or SIGKILL,
after a random number of writes have reached the system — then runs clean syncs and counts:
bridge comments beyond one per issue, work notes that repeat the one before them, and items
whose fields are not what bridge computes for them now.

``tests/service/test_chaos.py`` runs it small and asserts; ``bench/bench_chaos.py`` runs it
at several seeds and prints the figures.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.config import load_config
from bridge.connectors.servicenow.writes import marker_digest
from bridge.model import PHASES
from bridge.service.runtime import Runtime
from bridge.store import open_store
from bridge.sync import evaluate_item
from bridge.testing.jira import JiraDouble
from bridge.testing.servicenow import ServiceNowDouble

__all__ = ["Figures", "JiraChaos", "ServiceNowChaos", "bridge_comments", "run_chaos", "run_race"]

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
TOKEN_ENV = "BRIDGE_CHAOS_TOKEN"  # noqa: S105 - the name of a variable, not a secret
PASSWORD = "chaos-only"  # noqa: S105 - the double's own, passed through the environment

JIRA_RULES = """bridge: 1
rules:
  - id: stories
    when: {field: type, in: [Story, Task]}
    then:
      work_type: project
      phase: {by_status_category: {todo: planning, in_progress: execution, done: closing}}
      kpis: [effort]
  - id: bugs
    when: {field: type, equals: Bug}
    then: {work_type: service}
default: {work_type: unclassified}
"""

SERVICENOW_RULES = """bridge: 1
calendars:
  always: {timezone: UTC, hours: 24x7}
slas:
  resolution:
    calendar: always
    start: {on: created}
    stop: {field: status_category, equals: done}
    goals:
      - {when: {field: priority, equals: "1 - Critical"}, target: 4h}
      - {target: 30d}
rules:
  - id: incidents
    when: {field: type, equals: Incident}
    then: {work_type: service, kpis: [sla.resolution]}
  - id: projects
    when: {field: raw.sys_class_name, equals: pm_project}
    then:
      work_type: project
      phase: {by_status_category: {todo: planning, in_progress: execution, done: closing}}
default: {work_type: unclassified}
"""


@dataclass
class Figures:
    """What one chaos run did and found."""

    system: str
    seed: int
    items: int
    runs: int = 0
    interruptions: Counter[str] = field(default_factory=Counter)
    edits: int = 0
    writes: int = 0  # write requests the system received, clean syncs included
    summaries: int = 0  # bridge comments (Jira) or bridge work notes (ServiceNow) on record
    duplicate_comments: int = 0
    duplicate_notes: int = 0
    wrong: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def interrupted(self) -> int:
        return sum(self.interruptions.values())

    def line(self) -> str:
        signals = ", ".join(f"{n} {s}" for s, n in sorted(self.interruptions.items()))
        return (
            f"{self.system:<11} seed {self.seed}: {self.items} items, {self.runs} runs, "
            f"{self.interrupted} interrupted ({signals}), {self.edits} edits, "
            f"{self.writes} writes, {self.summaries} summaries; "
            f"duplicate comments {self.duplicate_comments}, "
            f"duplicate work notes {self.duplicate_notes}, wrong items {len(self.wrong)} "
            f"({self.seconds:.0f} s)"
        )


class _Chaos:
    """One system, its items, bridge.yaml and the counting; subclasses per system."""

    system = ""
    rules = ""

    def __init__(self, workdir: Path, items: int, rng: random.Random, store: str) -> None:
        self.workdir = workdir
        self.items = items
        self.rng = rng
        self.store = store
        self.source = f"chaos-{uuid.uuid4().hex[:8]}"  # its own rows in a shared store
        self.env = {**os.environ, TOKEN_ENV: "token", "BRIDGE_CHAOS_PASSWORD": PASSWORD}
        self.env.pop("BRIDGE_DATABASE_URL", None)

    def source_yaml(self) -> str:
        raise NotImplementedError

    def edit(self) -> int:
        """People change some tickets; how many."""
        raise NotImplementedError

    def writes(self) -> int:
        raise NotImplementedError

    def count(self, figures: Figures) -> None:
        """Fill in the summaries on record and their duplicates."""
        raise NotImplementedError

    def pending(self) -> int:
        """Items of this source still to be written (failed or deferred)."""
        store = open_store(self.store)
        try:
            return len(store.list_pending(self.source, given_up=False, limit=100_000))
        finally:
            store.close()

    def write_config(self) -> Path:
        rules = self.workdir / "rules"
        rules.mkdir(parents=True, exist_ok=True)
        (rules / "rules.yaml").write_text(self.rules, encoding="utf-8")
        path = self.workdir / "bridge.yaml"
        path.write_text(
            f"rules: rules\nstore: {self.store}\nsources:\n{self.source_yaml()}",
            encoding="utf-8",
        )
        return path

    def wrong(self, config: Path, now: datetime) -> list[str]:
        """Items a fresh evaluation (at the last sync's ``now``) would still write."""
        secrets = {TOKEN_ENV: "token", "BRIDGE_CHAOS_PASSWORD": PASSWORD}
        saved = {name: os.environ.get(name) for name in secrets}
        os.environ.update(secrets)
        runtime = Runtime(load_config(config))
        try:
            connector = runtime.connector(self.source)
            evaluators = runtime.evaluators()
            connector.prepare(evaluators.rule_set)
            return [
                item.key
                for item in connector.pull(since=None)
                if evaluate_item(item, evaluators.engine, evaluators.kpis, connector, now)
            ]
        finally:
            runtime.close()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class JiraChaos(_Chaos):
    system = "jira"
    rules = JIRA_RULES

    def __init__(self, workdir: Path, items: int, rng: random.Random, store: str) -> None:
        super().__init__(workdir, items, rng, store)
        self.site = JiraDouble(max_page=100)
        self.site.start()
        self.site.add_field("Bridge phase", "select", options=list(PHASES))
        types = ("Story", "Task", "Bug")
        self.keys = self.site.bulk_add(
            items,
            fields=lambda i: {
                "issuetype": types[i % 3],
                "status": ("To Do", "In Progress", "Done")[rng.randrange(3)],
                "timeoriginalestimate": 3600 * (1 + i % 8),
                "timespent": 1800 * (i % 7),
            },
        )

    def source_yaml(self) -> str:
        return (
            f"  - name: {self.source}\n"
            "    connector: jira\n"
            f"    url: {self.site.url}\n"
            "    deployment: cloud\n"
            f"    auth: {{email: {self.site.email}, token_env: {TOKEN_ENV}}}\n"
            "    scope: {jql: 'project = OPS'}\n"
            "    writeback: {fields: {work_type: Work type, phase: Bridge phase}}\n"
        )

    def edit(self) -> int:
        touched = self.rng.sample(self.keys, k=max(1, len(self.keys) // 10))
        for key in touched:
            self.site.touch(key, status=self.rng.choice(("To Do", "In Progress", "Done")))
        return len(touched)

    def writes(self) -> int:
        return self.site.count("PUT") + self.site.count("POST", r"/comment$")

    def count(self, figures: Figures) -> None:
        for key in self.keys:
            ours = bridge_comments(self.site, key)
            figures.summaries += ours
            figures.duplicate_comments += max(0, ours - 1)
            if not ours:
                figures.wrong.append(f"{key} (no comment)")

    def close(self) -> None:
        self.site.stop()


class ServiceNowChaos(_Chaos):
    system = "servicenow"
    rules = SERVICENOW_RULES
    columns = ("u_work_type", "u_phase", "u_sla_state")

    def __init__(self, workdir: Path, items: int, rng: random.Random, store: str) -> None:
        super().__init__(workdir, items, rng, store)
        self.site = ServiceNowDouble(password=PASSWORD)
        self.site.start()
        now = datetime.now(UTC).replace(microsecond=0)
        self.ids: list[tuple[str, str]] = []
        for table, share in (("incident", 0.8), ("pm_project", 0.2)):
            self.site.add_table(table, self.columns)

            def fields(i: int, table: str = table) -> dict[str, str]:
                opened = now - timedelta(minutes=rng.randint(60, 60 * 24 * 20))
                stamp = opened.strftime("%Y-%m-%d %H:%M:%S")
                return {
                    "state": rng.choice(("1", "2")) if table == "incident" else "-5",
                    "priority": str(rng.randint(1, 4)),
                    "short_description": f"{table} {i}",
                    "opened_at": stamp,
                    "sys_created_on": stamp,
                    "sys_updated_on": stamp,
                    **dict.fromkeys(self.columns, ""),
                }

            count = round(items * share)
            self.ids += [(table, i) for i in self.site.bulk_add(table, count, fields)]

    def source_yaml(self) -> str:
        return (
            f"  - name: {self.source}\n"
            "    connector: servicenow\n"
            f"    url: {self.site.url}\n"
            f"    auth: {{user: {self.site.user}, password_env: BRIDGE_CHAOS_PASSWORD}}\n"
            "    scope: {tables: {incident: '', pm_project: ''}}\n"
            "    writeback:\n"
            "      fields: {work_type: u_work_type, phase: u_phase,"
            " sla.resolution.state: u_sla_state}\n"
            "      journal: work_notes\n"
        )

    def edit(self) -> int:
        touched = self.rng.sample(self.ids, k=max(1, len(self.ids) // 10))
        for table, sys_id in touched:
            states = ("1", "2", "6") if table == "incident" else ("-5", "2", "3")
            self.site.update_as_user(table, sys_id, state=self.rng.choice(states))
        return len(touched)

    def writes(self) -> int:
        return self.site.count("PATCH")

    def count(self, figures: Figures) -> None:
        for table, sys_id in self.ids:
            digests = [
                marker_digest(str(row["value"]))
                for row in self.site.journal(table, sys_id, "work_notes")
            ]
            ours = [d for d in digests if d]
            figures.summaries += len(ours)
            figures.duplicate_notes += sum(1 for a, b in itertools.pairwise(ours) if a == b)
            if not ours:
                figures.wrong.append(f"{table}/{sys_id} (no work note)")

    def close(self) -> None:
        self.site.stop()


def _bridge() -> list[str]:
    """The ``bridge`` console script of this interpreter (or the module, where none)."""
    script = Path(sys.executable).with_name("bridge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bridge.cli"]


def _sync(
    chaos: _Chaos,
    config: Path,
    log: Path,
    *,
    stop_after: int | None,
    how: signal.Signals,
    now: datetime | None = None,
    deadline: float = 120.0,
) -> bool:
    """One ``bridge sync`` process; interrupted with ``how`` once ``stop_after`` more writes
    have reached the system. True when it was interrupted (False: it finished first)."""
    argv = [*_bridge(), "sync", "-c", str(config)]
    if now is not None:
        argv += ["--now", now.isoformat()]
    start = chaos.writes()
    end = time.monotonic() + deadline
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
            argv, stdout=out, stderr=subprocess.STDOUT, env=chaos.env
        )
    try:
        while process.poll() is None:
            if stop_after is not None and chaos.writes() - start >= stop_after:
                process.send_signal(how)
                process.wait(timeout=deadline)
                return True
            if time.monotonic() > end:
                raise AssertionError(f"bridge sync ran over {deadline:.0f} s; see {log}")
            time.sleep(0.02)  # the double serves from this process: leave it the CPU
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_chaos(
    kind: str,
    workdir: Path,
    *,
    items: int = 300,
    interruptions: int = 25,
    seed: int = 1,
    store: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Figures:
    """Interrupt ``bridge sync`` ``interruptions`` times over ``items`` tickets of ``kind``
    (``jira`` or ``servicenow``) while people edit, then run two clean syncs; count."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible storm, not a secret
    workdir.mkdir(parents=True, exist_ok=True)
    chaos: JiraChaos | ServiceNowChaos = (JiraChaos if kind == "jira" else ServiceNowChaos)(
        workdir, items, rng, store or f"sqlite://{workdir / 'state.db'}"
    )
    figures = Figures(kind, seed, items)
    started = time.perf_counter()
    log = workdir / "sync.log"
    try:
        config = chaos.write_config()
        while figures.interrupted < interruptions:
            if figures.runs >= 4 * interruptions:
                raise AssertionError(f"syncs kept finishing before their interruption; see {log}")
            if figures.runs:
                figures.edits += chaos.edit()
            how = rng.choice(list(SIGNALS))
            stopped = _sync(chaos, config, log, stop_after=rng.randint(1, 40), how=SIGNALS[how])
            figures.runs += 1
            if stopped:
                figures.interruptions[how] += 1
            if progress is not None:
                progress(f"run {figures.runs}: {how if stopped else 'finished'}")
        now = datetime.now(UTC).replace(microsecond=0)
        for _ in range(2):
            _sync(chaos, config, log, stop_after=None, how=signal.SIGKILL, now=now)
            figures.runs += 1
        # A write whose sender was killed may still have been on its way: bridge waits for
        # it (a short grace) before writing again, leaving the item pending meanwhile.
        end = time.monotonic() + 240
        while chaos.pending() and time.monotonic() < end:
            time.sleep(1)
            now = datetime.now(UTC).replace(microsecond=0)
            _sync(chaos, config, log, stop_after=None, how=signal.SIGKILL, now=now)
            figures.runs += 1
        figures.writes = chaos.writes()
        chaos.count(figures)
        figures.wrong += chaos.wrong(config, now)
    finally:
        chaos.close()
    figures.seconds = time.perf_counter() - started
    return figures


def describe(figures: Figures) -> dict[str, Any]:
    """The figures as JSON-ready data (for a benchmark's machine-readable output)."""
    return {
        "system": figures.system,
        "seed": figures.seed,
        "items": figures.items,
        "runs": figures.runs,
        "interruptions": dict(figures.interruptions),
        "edits": figures.edits,
        "writes": figures.writes,
        "summaries": figures.summaries,
        "duplicate_comments": figures.duplicate_comments,
        "duplicate_notes": figures.duplicate_notes,
        "wrong": figures.wrong,
        "seconds": round(figures.seconds, 1),
    }


def run_race(
    workdir: Path,
    *,
    redis_url: str,
    store: str,
    items: int = 30,
    seed: int = 1,
    deadline: float = 120.0,
) -> Figures:
    """Two ``bridge worker`` processes on ``redis_url`` take three different webhook
    deliveries per Jira issue, in a random order through the real receiver, while a full
    ``bridge sync`` runs; then count bridge comments and writes per issue.

    ``figures.writes`` counts issue PUTs beyond one per issue (each issue changed once, so
    the right number is 0); ``wrong`` lists issues without their comment or fields."""
    # Imported here: the receiver's web stack is needed by this scenario only.
    import threading  # noqa: PLC0415
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    import requests  # noqa: PLC0415
    from werkzeug.serving import make_server  # noqa: PLC0415

    from bridge.service.app import create_app  # noqa: PLC0415
    from bridge.service.tasks import Jobs, make_huey  # noqa: PLC0415

    rng = random.Random(seed)  # noqa: S311 - a reproducible order, not a secret
    workdir.mkdir(parents=True, exist_ok=True)
    figures = Figures("jira race", seed, items)
    started = time.perf_counter()
    chaos = JiraChaos(workdir, 0, rng, store)
    site = chaos.site
    site.latency = 0.01  # requests overlap, so the jobs and the sync really race
    keys = chaos.keys = site.bulk_add(items, fields={"issuetype": "Story", "status": "To Do"})
    secret = "race-hook-secret"  # noqa: S105 - the double's own
    env = {**chaos.env, "BRIDGE_REDIS_URL": redis_url, "BRIDGE_CHAOS_HOOK": secret}
    config = chaos.write_config()
    config.write_text(
        config.read_text(encoding="utf-8") + "    webhook_secret_env: BRIDGE_CHAOS_HOOK\n",
        encoding="utf-8",
    )
    saved = {k: os.environ.get(k) for k in (TOKEN_ENV, "BRIDGE_REDIS_URL", "BRIDGE_CHAOS_HOOK")}
    os.environ.update({k: env[k] for k in saved})
    # One access-log line per delivery would bury the figures.
    access_log = logging.getLogger("werkzeug")
    access_level = access_log.level
    access_log.setLevel(logging.WARNING)
    runtime = Runtime(load_config(config), store=open_store(store))
    jobs = Jobs(runtime, make_huey(runtime.config))
    http = make_server("127.0.0.1", 0, create_app(runtime, jobs.enqueue), threaded=True)
    serving = threading.Thread(target=http.serve_forever, daemon=True)
    serving.start()
    log = workdir / "processes.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for key in keys:
            site.add_comment(key, "a person's comment")
        deliveries = [  # three different events per issue: none is a replay of another
            site.webhook(event, key, secret=secret, identifier=f"{event}-{key}")
            for key in keys
            for event in ("jira:issue_created", "jira:issue_updated", "comment_created")
        ]
        rng.shuffle(deliveries)
        with log.open("ab") as out:
            for argv in (["worker", "--workers", "4"], ["worker", "--workers", "4"]):
                processes.append(
                    subprocess.Popen(  # noqa: S603 - our own console script
                        [*_bridge(), *argv, "-c", str(config)], stdout=out, stderr=out, env=env
                    )
                )
            sync = subprocess.Popen(  # noqa: S603 - our own console script
                [*_bridge(), "sync", "--full", "-c", str(config)], stdout=out, stderr=out, env=env
            )
        processes.append(sync)
        url = f"http://127.0.0.1:{http.server_port}/webhooks/{chaos.source}"

        def deliver(delivery: tuple[bytes, dict[str, str]]) -> int:
            return requests.post(url, data=delivery[0], headers=delivery[1], timeout=30).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            refused = [s for s in pool.map(deliver, deliveries) if s != 202]
        if refused or sync.wait(timeout=deadline) != 0:
            raise AssertionError(f"deliveries refused {refused} or the sync failed; see {log}")
        figures.runs = 1 + len(deliveries)
        end = time.monotonic() + deadline

        def busy() -> bool:
            pending = runtime.store.list_pending(chaos.source, limit=1)
            return bool(pending) or not all(bridge_comments(site, k) for k in keys)

        while busy():
            if time.monotonic() > end:
                raise AssertionError(f"deliveries still pending after {deadline:.0f} s; see {log}")
            time.sleep(0.05)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=30)
        http.shutdown()
        serving.join()
        runtime.close()
        access_log.setLevel(access_level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    field_id = site.field_id("Work type")
    for key in keys:
        comments = bridge_comments(site, key)
        figures.summaries += comments
        figures.duplicate_comments += max(0, comments - 1)
        figures.writes += max(0, site.count("PUT", rf"/issue/{key}$") - 1)
        if comments == 0 or site.issue(key)["fields"].get(field_id) != "project":
            figures.wrong.append(key)
    chaos.close()
    figures.seconds = time.perf_counter() - started
    return figures


def bridge_comments(site: JiraDouble, key: str) -> int:
    """bridge's summary comments on a Jira issue (people do not write its marker line)."""
    return sum(1 for c in site.comments(key) if "bridge summary" in str(c.get("body")))
