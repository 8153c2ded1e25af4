"""Never twice: one bridge comment per Jira issue however many jobs race for it.

A sync and a webhook job on one issue, a signed body replayed under fresh delivery ids,
and two real ``bridge worker`` processes on the real Redis queue and PostgreSQL store taking
three deliveries per issue while a full ``bridge sync`` runs — each ends with one comment per
issue and one write per changed issue.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from bridge.config import load_config
from bridge.model import PHASES
from bridge.service.app import create_app
from bridge.service.runtime import Runtime
from bridge.service.tasks import Jobs, make_huey
from bridge.store import open_store
from bridge.sync import sync_source
from bridge.testing.jira import JiraDouble
from tests.service.test_worker_killed import REDIS_URL, services, start_worker, wait_for
from tests.store.test_store import POSTGRES_URL

__all__ = ["services"]  # the Redis + PostgreSQL fixture, shared with the killed-worker test

SECRET = "hook-secret"
TOKEN_ENV = "BRIDGE_TEST_JIRA_TOKEN"
BRIDGE = str(Path(sys.executable).with_name("bridge"))
RULES = """bridge: 1
rules:
  - id: stories
    when: {field: type, in: [Story, Task]}
    then:
      work_type: project
      phase: {by_status_category: {todo: planning, in_progress: execution, done: closing}}
      kpis: [effort]
default: {work_type: unclassified}
"""


def write_config(tmp_path: Path, site: JiraDouble, source: str, store: str) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    path = tmp_path / "bridge.yaml"
    path.write_text(
        f"rules: rules\nstore: {store}\nsources:\n"
        f"  - name: {source}\n"
        "    connector: jira\n"
        f"    url: {site.url}\n"
        "    deployment: cloud\n"
        f"    auth: {{email: {site.email}, token_env: {TOKEN_ENV}}}\n"
        "    scope: {jql: 'project = OPS'}\n"
        "    writeback: {fields: {work_type: Work type, phase: Bridge phase}}\n"
        "    webhook_secret_env: BRIDGE_TEST_JIRA_HOOK\n"
    )
    return path


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraDouble]:
    monkeypatch.setenv(TOKEN_ENV, "token")
    monkeypatch.setenv("BRIDGE_TEST_JIRA_HOOK", SECRET)
    with JiraDouble(max_page=50) as double:
        double.add_field("Bridge phase", "select", options=list(PHASES))
        yield double


def bridge_comments(site: JiraDouble, key: str) -> int:
    return sum(1 for c in site.comments(key) if "bridge summary" in str(c.get("body")))


def issue_writes(site: JiraDouble, key: str) -> int:
    return site.count("PUT", rf"/issue/{key}$")


def test_a_sync_whose_copy_a_webhook_job_overtook_fetches_it_again(
    site: JiraDouble, tmp_path: Path
) -> None:
    """The sync pulls an issue; a webhook job for it runs to completion before the sync
    writes. The sync's copy knows no comment — writing from it would add a second one.
    The job's release ticket is newer than the sync's pull, so the sync fetches it again."""
    keys = site.bulk_add(8, fields={"issuetype": "Story", "status": "In Progress"})
    config = load_config(write_config(tmp_path, site, "jira", f"sqlite://{tmp_path / 's.db'}"))
    runtime = Runtime(config)
    jobs = Jobs(runtime, make_huey(config, immediate=True))
    evaluators = runtime.evaluators()
    try:
        report = sync_source(
            "jira",
            runtime.connector("jira"),
            evaluators.rule_set,
            runtime.store,
            datetime.now(UTC),
            on_item=lambda item: jobs.enqueue("jira", item.key, False),
        )
    finally:
        runtime.close()

    assert report.failed == []
    assert report.refetched == len(keys)
    assert report.items_written == 0  # the jobs wrote every issue; the sync had nothing left
    assert [bridge_comments(site, k) for k in keys] == [1] * len(keys)
    assert [issue_writes(site, k) for k in keys] == [1] * len(keys)


def test_a_signed_body_replayed_100_times_with_fresh_ids_is_evaluated_once(
    site: JiraDouble, tmp_path: Path
) -> None:
    (key,) = site.bulk_add(1, fields={"issuetype": "Story", "status": "To Do"})
    config = load_config(write_config(tmp_path, site, "jira", f"sqlite://{tmp_path / 's.db'}"))
    runtime = Runtime(config)
    jobs = Jobs(runtime, make_huey(config, immediate=True))
    http = make_server("127.0.0.1", 0, create_app(runtime, jobs.enqueue), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    body, headers = site.webhook("jira:issue_updated", key, secret=SECRET, identifier="first")
    site.reset_counters()

    def replay(n: int) -> str:
        fresh = {**headers, "X-Atlassian-Webhook-Identifier": f"replay-{n}"}
        url = f"http://127.0.0.1:{http.server_port}/webhooks/jira"
        answer = requests.post(url, data=body, headers=fresh, timeout=30)
        return f"{answer.status_code} {answer.json().get('status')}"

    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = sorted(pool.map(replay, range(100)))
    finally:
        http.shutdown()
        thread.join()
        runtime.close()

    assert answers == ["200 duplicate"] * 99 + ["202 queued"]
    assert site.count("GET", rf"/issue/{key}$") == 1  # one evaluation
    assert issue_writes(site, key) == 1
    assert bridge_comments(site, key) == 1


@pytest.mark.redis
@pytest.mark.postgres
def test_two_workers_three_deliveries_per_issue_and_a_full_sync_write_each_issue_once(
    services: None, site: JiraDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 30
    source = f"jira-{uuid.uuid4().hex[:8]}"
    site.latency = 0.01  # requests overlap, so the jobs and the sync really race
    keys = site.bulk_add(n, fields={"issuetype": "Story", "status": "In Progress"})
    monkeypatch.setenv("BRIDGE_REDIS_URL", REDIS_URL)
    path = write_config(tmp_path, site, source, POSTGRES_URL)
    config = load_config(path)
    runtime = Runtime(config, store=open_store(POSTGRES_URL))
    jobs = Jobs(runtime, make_huey(config))
    http = make_server("127.0.0.1", 0, create_app(runtime, jobs.enqueue), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    env = {**os.environ, "BRIDGE_REDIS_URL": REDIS_URL}
    log = tmp_path / "processes.log"
    workers = [start_worker(path, log, env) for _ in range(2)]
    for key in keys:
        site.add_comment(key, "a person's comment")
    deliveries = [  # three different events per issue: none is a replay of another
        site.webhook(event, key, secret=SECRET, identifier=f"{event}-{key}")
        for key in keys
        for event in ("jira:issue_created", "jira:issue_updated", "comment_created")
    ]

    def deliver(delivery: tuple[bytes, dict[str, str]]) -> int:
        url = f"http://127.0.0.1:{http.server_port}/webhooks/{source}"
        return requests.post(url, data=delivery[0], headers=delivery[1], timeout=30).status_code

    try:
        with log.open("ab") as out:
            sync = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
                [BRIDGE, "sync", "-c", str(path), "--full"], stdout=out, stderr=out, env=env
            )
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(deliver, deliveries))
        assert sync.wait(timeout=120) == 0, log.read_text()
        assert statuses == [202] * len(deliveries)
        try:
            wait_for(
                lambda: (
                    not runtime.store.list_pending(source, limit=1)
                    and all(bridge_comments(site, k) for k in keys)
                ),
                "every delivery to be processed",
            )
        except AssertionError as exc:
            left = runtime.store.list_pending(source, limit=5)
            raise AssertionError(f"{exc}; pending: {left}\n{log.read_text()[-3000:]}") from None
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
        http.shutdown()
        thread.join()
        runtime.close()

    assert [bridge_comments(site, k) for k in keys] == [1] * n, log.read_text()
    assert [issue_writes(site, k) for k in keys] == [1] * n  # writes = changed issues
    field = site.field_id("Work type")
    assert {site.issue(k)["fields"][field] for k in keys} == {"project"}
