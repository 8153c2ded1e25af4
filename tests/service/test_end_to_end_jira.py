"""End to end against the local Jira double: `bridge sync` from the command line, and a
webhook through the real WSGI receiver into a job that writes the KPIs back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from werkzeug.serving import make_server

from bridge.cli import cli
from bridge.config import load_config
from bridge.connectors.jira.writes import COMMENT_PROPERTY
from bridge.model import PHASES
from bridge.service.app import create_app
from bridge.service.runtime import Runtime
from bridge.service.tasks import Jobs, make_huey
from bridge.testing.jira import JiraDouble

SECRET = "hook-secret"
RULES = """bridge: 1
rules:
  - id: stories
    when: {field: type, in: [Story, Epic]}
    then:
      work_type: project
      phase: {by_status_category: {todo: planning, in_progress: execution, done: closing}}
      kpis: [effort]
default: {work_type: unclassified}
"""


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraDouble]:
    monkeypatch.setenv("E2E_JIRA_TOKEN", "token")
    monkeypatch.setenv("E2E_JIRA_HOOK", SECRET)
    with JiraDouble(max_page=50) as double:
        double.add_field("Bridge phase", "select", options=list(PHASES))
        double.bulk_add(
            12,
            fields=lambda i: {
                "issuetype": "Story",
                "status": ("To Do", "In Progress", "Done")[i % 3],
                "timeoriginalestimate": 3600 * 8,
                "timespent": 3600 * (i % 5),
                "timeestimate": 3600 * 2,
            },
        )
        yield double


@pytest.fixture
def config_file(site: JiraDouble, tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    path = tmp_path / "bridge.yaml"
    path.write_text(f"""rules: rules
store: sqlite://{tmp_path / "state.db"}
sources:
  - name: jira
    connector: jira
    url: {site.url}
    auth: {{email: bot@example.com, token_env: E2E_JIRA_TOKEN}}
    scope: {{jql: "project = OPS"}}
    writeback:
      fields: {{work_type: Work type, phase: Bridge phase, effort.variance_pct: SPI}}
    webhook_secret_env: E2E_JIRA_HOOK
""")
    return path


def writes(site: JiraDouble) -> int:
    return sum(1 for r in site.requests if r.method in ("PUT", "POST"))


def test_cli_sync_writes_once_then_nothing(site: JiraDouble, config_file: Path) -> None:
    runner = CliRunner()
    dry = runner.invoke(
        cli,
        ["sync", "-c", str(config_file), "--dry-run", "--now", "2026-05-01T12:00:00Z"],
        catch_exceptions=False,
    )
    assert dry.exit_code == 0, dry.output
    assert "would write 12 item(s)" in dry.output
    assert writes(site) == 0

    first = runner.invoke(
        cli,
        ["sync", "-c", str(config_file), "--now", "2026-05-01T12:00:00Z"],
        catch_exceptions=False,
    )
    assert first.exit_code == 0, first.output
    assert "wrote 12 item(s)" in first.output
    key = site.keys()[0]
    assert site.issue(key)["fields"][site.field_id("Work type")] == "project"
    assert len(site.comments(key)) == 1
    assert COMMENT_PROPERTY in site.properties(key)

    before = writes(site)
    second = runner.invoke(
        cli,
        ["sync", "-c", str(config_file), "--full", "--now", "2026-05-01T12:00:00Z"],
        catch_exceptions=False,
    )
    assert second.exit_code == 0, second.output
    assert "12 unchanged" in second.output
    assert writes(site) == before


def test_a_webhook_updates_the_issue_through_the_receiver_and_a_job(
    site: JiraDouble, config_file: Path
) -> None:
    config = load_config(config_file)
    runtime = Runtime(config)
    jobs = Jobs(runtime, make_huey(config, immediate=True))
    http = make_server("127.0.0.1", 0, create_app(runtime, jobs.enqueue), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{http.server_port}"
    try:
        key = site.keys()[1]
        site.touch(key, status="Done")
        body, headers = site.webhook(
            "jira:issue_updated", key, secret=SECRET, identifier="delivery-1"
        )
        response = requests.post(f"{base}/webhooks/jira", data=body, headers=headers, timeout=10)
        assert response.status_code == 202, response.text
        fields = site.issue(key)["fields"]
        assert fields[site.field_id("Work type")] == "project"
        assert fields[site.field_id("Bridge phase")]["value"] == "closing"
        assert len(site.comments(key)) == 1

        retry = requests.post(
            f"{base}/webhooks/jira",
            data=body,
            headers={**headers, "X-Atlassian-Webhook-Retry": "1"},
            timeout=10,
        )
        assert retry.json()["status"] == "duplicate"

        own_body, own_headers = site.webhook(
            "jira:issue_updated",
            key,
            secret=SECRET,
            identifier="delivery-2",
            user_account_id="bridge-bot-account",
        )
        own = requests.post(f"{base}/webhooks/jira", data=own_body, headers=own_headers, timeout=10)
        assert own.json()["status"] == "ignored"

        forged = requests.post(
            f"{base}/webhooks/jira",
            data=body + b" ",
            headers={**headers, "X-Atlassian-Webhook-Identifier": "d-3"},
            timeout=10,
        )
        assert forged.status_code == 401
    finally:
        http.shutdown()
        thread.join()
        runtime.close()
