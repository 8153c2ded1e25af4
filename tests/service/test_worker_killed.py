"""A worker killed with SIGKILL while it holds jobs loses nothing: real ``bridge worker``
processes, the real Redis queue, the real PostgreSQL store and the Jira double over HTTP.

Every webhook item is a pending row in the store before its job is queued; the killed
worker's jobs are gone from Redis, but their rows are not. Once the rows' claim time has
passed (simulated here by sweeping with a later clock instead of waiting 15 minutes), the
sweeper queues them again and a new worker writes every item.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.service.runtime import Runtime
from bridge.service.tasks import ITEM_LEASE, Jobs, make_huey
from bridge.store import open_store
from bridge.sync import CLAIM
from bridge.testing.jira import JiraDouble
from tests.connectors.jira.test_connector import RULES
from tests.store.test_store import POSTGRES_URL

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

REDIS_URL = os.environ.get("BRIDGE_TEST_WORKER_REDIS_URL", "redis://127.0.0.1:6379/14")
N = 40
BRIDGE = str(Path(sys.executable).with_name("bridge"))


def wait_for(condition: Callable[[], bool], what: str, deadline: float = 90.0) -> None:
    """Poll ``condition`` until it holds, with a generous deadline (never a fixed sleep)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def services() -> Iterator[None]:
    redis = pytest.importorskip("redis")
    psycopg = pytest.importorskip("psycopg")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except Exception as exc:  # reported as a skip with the reason
        client.close()
        pytest.skip(f"needs Redis at {REDIS_URL} and PostgreSQL at {POSTGRES_URL}: {exc}")
    client.flushdb()
    yield
    client.flushdb()
    client.close()


def start_worker(config: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
            [BRIDGE, "worker", "-c", str(config), "--workers", "4"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def test_a_worker_killed_holding_jobs_loses_no_item(
    services: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = f"jira-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "BRIDGE_DATABASE_URL": POSTGRES_URL,
        "BRIDGE_REDIS_URL": REDIS_URL,
        "BRIDGE_TEST_JIRA_TOKEN": "token",
    }
    for name in ("BRIDGE_DATABASE_URL", "BRIDGE_REDIS_URL", "BRIDGE_TEST_JIRA_TOKEN"):
        monkeypatch.setenv(name, env[name])
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES.format(source="computed"))
    log = tmp_path / "worker.log"
    # Each request takes a while, so the first worker is killed with jobs in hand.
    with JiraDouble(latency=0.05) as site:
        keys = site.bulk_add(N, fields={"issuetype": "Story", "status": "In Progress"})
        (tmp_path / "bridge.yaml").write_text(
            "rules: rules\n"
            "sources:\n"
            f"  - name: {source}\n"
            "    connector: jira\n"
            f"    url: {site.url}\n"
            "    deployment: cloud\n"
            "    auth: {email: bot@example.com, token_env: BRIDGE_TEST_JIRA_TOKEN}\n"
            "    scope: {jql: 'project = OPS'}\n"
            "    writeback: {fields: {work_type: Work type}}\n"
        )
        config = load_config(tmp_path / "bridge.yaml")
        runtime = Runtime(config, store=open_store(POSTGRES_URL))
        jobs = Jobs(runtime, make_huey(config))
        received = datetime.now(UTC)
        for key in keys:  # what the receiver does for each delivery
            runtime.store.add_pending(source, key, "webhook", received, due=received + CLAIM)
            jobs.enqueue(source, key, False)
        field = site.field_id("Work type")

        def written() -> int:
            return sum(1 for k in keys if site.issue(k)["fields"].get(field) == "project")

        first = start_worker(tmp_path / "bridge.yaml", log, env)
        try:
            wait_for(lambda: written() >= 3, "the first worker to write a few items")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        lost = N - written()
        assert lost > 0, "the worker finished before it was killed; nothing was tested"

        # Time passes (simulated): the killed worker's item leases expire, and the claim
        # time of the lost jobs' rows has passed, so the sweeper queues them again.
        for key in keys:
            name = f"item:{source}:{key}"
            expired = runtime.store.acquire_lease(
                name, "time-passes", datetime.now(UTC) + ITEM_LEASE, ITEM_LEASE
            )
            assert expired.acquired
            runtime.store.release_lease(name, "time-passes")
        later = Jobs(runtime, make_huey(config), clock=lambda: received + CLAIM)
        assert later.sweep() >= lost  # every unwritten item is queued again, lost jobs included
        second = start_worker(tmp_path / "bridge.yaml", log, env)
        try:
            wait_for(
                lambda: not runtime.store.list_pending(source, limit=1),
                "every pending item to be written",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)

        assert written() == N, log.read_text()
        assert all(site.comments(k) for k in keys)
        runtime.close()
