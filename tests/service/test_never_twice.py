"""Never twice: one bridge comment per Jira issue however many jobs race for it.

A sync and a webhook job on one issue, a signed body replayed under fresh delivery ids,
and two real ``bridge worker`` processes on the real Redis queue and PostgreSQL store taking
three deliveries per issue while a full ``bridge sync`` runs — each ends with one comment per
issue and one write per changed issue.
"""

from __future__ import annotations

import threading
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
from bridge.sync import sync_source
from bridge.testing.chaos import bridge_comments, run_race
from bridge.testing.jira import JiraDouble
from tests.service.test_worker_killed import REDIS_URL, services
from tests.store.test_store import POSTGRES_URL

__all__ = ["services"]  # the Redis + PostgreSQL fixture, shared with the killed-worker test

SECRET = "hook-secret"
TOKEN_ENV = "BRIDGE_TEST_JIRA_TOKEN"
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
    services: None, tmp_path: Path
) -> None:
    figures = run_race(tmp_path, redis_url=REDIS_URL, store=POSTGRES_URL, items=30)

    assert figures.duplicate_comments == 0, figures.line()
    assert figures.summaries == 30, figures.line()
    assert figures.writes == 0, figures.line()  # one PUT per issue: writes = changed issues
    assert figures.wrong == [], figures.line()


def test_a_sync_with_an_empty_store_adds_no_comment_to_issues_bridge_already_wrote(
    site: JiraDouble, tmp_path: Path
) -> None:
    """The ticket is the truth: a lost store, or the move to PostgreSQL, costs reads only."""
    keys = site.bulk_add(10, fields={"issuetype": "Story", "status": "Done"})
    for name in ("first.db", "lost-and-new.db"):
        config = load_config(write_config(tmp_path, site, "jira", f"sqlite://{tmp_path / name}"))
        runtime = Runtime(config)
        try:
            report = sync_source(
                "jira",
                runtime.connector("jira"),
                runtime.evaluators().rule_set,
                runtime.store,
                datetime.now(UTC),
            )
        finally:
            runtime.close()
        assert report.failed == []

    assert report.items_written == 0
    assert site.count("POST", r"/comment$") == len(keys)
    assert [bridge_comments(site, k) for k in keys] == [1] * len(keys)
