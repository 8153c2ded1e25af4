"""``bridge plan``: the preview from an export is the plan a live dry-run sync makes.

The Jira double is seeded with issues of the bundled export; the export bridge plan reads is
then saved from the double the way the bundled one was made (``GET /search/jql`` with
``fields=*all&expand=names,changelog``), and its field list from ``GET /field``, so the two
runs see the same items and the same field kinds. A live dry-run sync of the real connector
against the double plans; ``bridge plan`` plans offline; the operations must be the same.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from bridge.cli.plan_cmd import plan
from bridge.config import load_config
from bridge.connectors.base import ConnectorContext
from bridge.connectors.jira.connector import make_connector
from bridge.plugins import default_registry
from bridge.preview.offline_site import OfflineRequestError
from bridge.preview.plan import build_preview, jira_field_list
from bridge.rules.loader import load_rules
from bridge.store.sqlite import SqliteStore
from bridge.sync import sync_source
from bridge.testing.jira import JiraDouble
from bridge.writeback.plan import SetFields, UpsertSummary, WriteOp

REPO = Path(__file__).resolve().parents[2]
EXPORT = REPO / "examples" / "export"
RULES = REPO / "rules"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TOKEN_ENV = "PLAN_TEST_JIRA_TOKEN"
SECRET = "s3cr3t-never-printed"

WRITEBACK = {
    "work_type": "Work type",
    "evm.spi": "SPI",
    "schedule.slip_days": "Slip days",
    "sla.time-to-resolution.state": "TTR state",
    "sla.time-to-resolution.breach_time": "TTR breach",
}


def _export_issues(page: str, count: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    doc = json.loads((EXPORT / "jira" / page).read_text("utf-8"))
    return doc["issues"][:count], doc["names"]


def _seed(site: JiraDouble) -> list[str]:
    """Issues of the bundled export, their custom values under the double's field of the
    same name (its catalogue numbers them differently)."""
    site.add_field("Slip days", "number")
    site.add_field("TTR state", "string")
    site.add_field("TTR breach", "datetime")
    site.add_field("Budget", "number")
    site.add_field("Actual cost", "number")
    keys = []
    for page, count in (("ops-page-1.json", 14), ("pmo-page-1.json", 10)):
        issues, names = _export_issues(page, count)
        for issue in issues:
            fields: dict[str, Any] = {}
            for fid, value in issue["fields"].items():
                if not fid.startswith("customfield_"):
                    fields[fid] = value
                    continue
                try:
                    fields[site.field_id(names[fid])] = value
                except KeyError:
                    continue  # a field the double has no kind for (a second SLA)
            histories = issue.get("changelog", {}).get("histories", [])
            keys.append(
                site.add_issue(
                    fields,
                    key=issue["key"],
                    project=issue["key"].split("-")[0],
                    changelog=[{**h, "author": None} for h in histories],
                )
            )
    return keys


def _save_export(site: JiraDouble, folder: Path) -> None:
    """The double's issues as an admin saves them: search pages with names and changelogs."""
    folder.mkdir()
    auth = (site.email, site.api_token)
    params: dict[str, Any] = {
        "jql": "project in (OPS, PMO) ORDER BY key ASC",
        "fields": "*all",
        "expand": "names,changelog",
        "maxResults": 50,
    }
    page = 1
    while True:
        answer = requests.get(
            f"{site.url}/rest/api/3/search/jql", params=params, auth=auth, timeout=10
        )
        answer.raise_for_status()
        doc = answer.json()
        (folder / f"page-{page}.json").write_text(json.dumps(doc), "utf-8")
        if doc.get("isLast", True) or not doc.get("nextPageToken"):
            return
        params["nextPageToken"] = doc["nextPageToken"]
        page += 1


def _config(folder: Path, url: str, *, connector_extra: str = "") -> Path:
    fields = "\n".join(f"        {k}: {v}" for k, v in WRITEBACK.items())
    path = folder / "bridge.yaml"
    path.write_text(
        f"""rules: {RULES}
sources:
  - name: jira
    connector: jira
    url: {url}
    auth: {{email: bot@example.com, token_env: {TOKEN_ENV}}}
    scope: {{jql: "project in (OPS, PMO)"}}
    writeback:
      fields:
{fields}
      comment: true{connector_extra}
  - name: export
    connector: files
    path: {EXPORT}
""",
        "utf-8",
    )
    return path


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection the preview tried would fail the test, not reach a network."""

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("bridge plan opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _ops(planned: dict[str, list[WriteOp]]) -> dict[str, list[tuple[str, Any]]]:
    out: dict[str, list[tuple[str, Any]]] = {}
    for key, ops in planned.items():
        out[key] = [
            ("fields", dict(op.values))
            if isinstance(op, SetFields)
            else ("summary", (op.digest, json.dumps(op.text, sort_keys=True)))
            for op in ops
            if isinstance(op, SetFields | UpsertSummary)
        ]
    return out


@pytest.fixture
def jira_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[JiraDouble, Path]]:
    monkeypatch.setenv(TOKEN_ENV, "token")
    with JiraDouble() as site:
        _seed(site)
        _save_export(site, tmp_path / "export")
        fields = requests.get(
            f"{site.url}/rest/api/3/field", auth=(site.email, site.api_token), timeout=10
        )
        (tmp_path / "fields.json").write_text(fields.text, "utf-8")
        yield site, tmp_path


def test_the_jira_preview_is_the_plan_of_a_live_dry_run_sync(
    jira_case: tuple[JiraDouble, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site, folder = jira_case
    config = load_config(_config(folder, site.url))
    source = config.source("jira")
    rule_set = load_rules([RULES])
    store = SqliteStore(str(folder / "bridge.db"))
    live = make_connector(source.settings, ConnectorContext(store=store))
    try:
        report = sync_source("jira", live, rule_set, store, NOW, dry_run=True, full=True)
    finally:
        live.close()
        store.close()
    assert report.pulled == 24
    assert not report.failed
    assert sum(len(ops) for ops in report.planned.values()) > 24  # fields and comments

    # Offline now: the double is not asked anything, and no socket may open.
    site.reset_counters()
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    from bridge.cli.options import read_items

    spec = default_registry().connectors["jira"]
    preview = build_preview(
        "jira",
        "jira",
        source.settings,
        ConnectorContext(base_dir=str(folder), locate=source.locate),
        spec.factory,
        rule_set,
        read_items([str(folder / "export")]),
        NOW,
        jira_fields=json.loads((folder / "fields.json").read_text("utf-8")),
    )
    assert site.requests == []
    assert _ops(preview.planned) == _ops(report.planned)
    assert preview.unchanged == report.unchanged
    assert preview.failed == []
    # 127.0.0.1 is not an atlassian.net site, and the source does not say: said, not hidden.
    assert [a.split(" (")[0] for a in preview.assumptions] == ["assumed Jira Cloud"]
    assert sorted(preview.asked) == ["GET /rest/api/3/field", "GET /rest/api/3/myself"]


def _refuse(*_: Any, **__: Any) -> None:
    raise AssertionError("bridge plan opened a connection")


def test_bridge_plan_json_says_the_same_as_the_sync(
    jira_case: tuple[JiraDouble, Path], no_network: None
) -> None:
    _site, folder = jira_case
    path = _config(folder, "https://acme.atlassian.net")
    result = CliRunner().invoke(
        plan,
        ["-c", str(path), "-s", "jira", "-i", str(folder / "export"), "--fields",
         str(folder / "fields.json"), "--now", "2026-11-02T09:00:00Z", "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["totals"]["items"] == 24
    assert doc["totals"]["field_writes"] == sum(len(i["fields"]) for i in doc["items"])
    assert doc["totals"]["comments"] == sum(1 for i in doc["items"] if i["comment"])
    first = doc["items"][0]
    assert first["comment"]["text"].startswith(f"bridge: {first['key']} is ")
    assert first["comment"]["body"]["type"] == "doc"  # the ADF Jira Cloud would be sent
    assert {f["label"] for i in doc["items"] for f in i["fields"]} <= set(WRITEBACK.values())


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(plan, list(args))


def test_the_table_shows_each_field_now_and_then_and_the_comment(
    tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    path = _config(tmp_path, "https://acme.atlassian.net")
    result = _invoke(
        "-c", str(path), "-s", "jira", "-i", str(EXPORT / "jira" / "ops-page-1.json"),
        "--now", "2026-11-02T09:00:00Z",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "assumed 'Slip days' is a number field" in out  # no --fields: the kinds are said
    assert "OPS-1  https://acme.atlassian.net/browse/OPS-1" in out
    assert "  Work type  — → service" in out
    assert "    bridge: OPS-1 is service work" in out
    assert "50 item(s) planned offline" in out
    assert "nothing was sent to jira" in out
    assert SECRET not in result.output


def test_an_unknown_source_is_a_located_error(tmp_path: Path) -> None:
    result = _invoke("-c", str(_config(tmp_path, "https://x.atlassian.net")), "-s", "jria",
                     "-i", str(EXPORT / "jira"))  # fmt: skip
    assert result.exit_code == 2
    assert "no source named 'jria'" in result.stderr
    assert "did you mean 'jira'" in result.stderr
    assert "Traceback" not in result.output


def test_a_source_that_only_reads_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _config(tmp_path, "https://x.atlassian.net")
    result = _invoke("-c", str(path), "-s", "export", "-i", str(EXPORT / "jira"))
    assert result.exit_code == 2
    assert f"{path}:17:" in result.stderr  # the `connector: files` line
    assert "only reads exports" in result.stderr
    assert "(live sources in" in result.stderr


def test_a_request_the_offline_site_cannot_answer_fails_loudly(no_network: None) -> None:
    """A connector asking for more than discovery (here: a write) gets no made-up answer."""
    spec = default_registry().connectors["jira"]
    fields, _ = jira_field_list({}, {"work_type": "Work type"})

    def factory(settings: Any, context: ConnectorContext) -> Any:
        connector = spec.factory(settings, context)
        original = connector.prepare

        def prepare(rule_set: Any) -> None:
            original(rule_set)
            connector.client.edit_issue("OPS-1", {"fields": {}}, notify_users=False)

        connector.prepare = prepare
        return connector

    settings = {
        "name": "jira",
        "connector": "jira",
        "url": "https://acme.atlassian.net",
        "auth": {"email": "bot@example.com", "token_env": "UNSET_PLAN_VARIABLE"},
        "scope": {"jql": "project = OPS"},
        "writeback": {"fields": {"work_type": "Work type"}, "comment": True},
    }
    with pytest.raises(OfflineRequestError, match=r"cannot answer PUT /rest/api/3/issue/OPS-1"):
        build_preview(
            "jira", "jira", settings, ConnectorContext(), factory,
            load_rules([RULES]), [], NOW, jira_fields=fields,
        )  # fmt: skip


def test_the_offline_error_is_a_message_not_a_traceback(
    tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bridge.preview.offline_site as site

    monkeypatch.setattr(site.JiraAnswers, "__call__", lambda *_: None)
    result = _invoke("-c", str(_config(tmp_path, "https://x.atlassian.net")), "-s", "jira",
                     "-i", str(EXPORT / "jira" / "web-page-2.json"))  # fmt: skip
    assert result.exit_code == 2
    assert "error: the offline jira site cannot answer GET /rest/api/3/myself" in result.stderr
    assert "Traceback" not in result.output


SN_PASSWORD_ENV = "PLAN_TEST_SN_PASSWORD"
SN_WRITEBACK = {
    "work_type": "u_work_type",
    "phase": "u_phase",
    "sla.time-to-resolution.state": "u_ttr_state",
}


def test_the_servicenow_preview_is_the_plan_of_a_live_dry_run_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.connectors.servicenow.connector import ServiceNowConnector
    from bridge.testing.servicenow import ServiceNowDouble

    monkeypatch.setenv(SN_PASSWORD_ENV, "secret")
    records = json.loads((EXPORT / "servicenow" / "incident.json").read_text("utf-8"))["result"]
    with ServiceNowDouble() as sn:
        sn.add_table("incident", SN_WRITEBACK.values())
        for record in records[:15]:
            values = {
                k: (v["value"] if isinstance(v, dict) else v)
                for k, v in record.items()
                if "." not in k and k != "sys_id"
            }
            sn.add_record("incident", {**values, **dict.fromkeys(SN_WRITEBACK.values(), "")},
                          sys_id=record["sys_id"])  # fmt: skip
        answer = requests.get(
            f"{sn.url}/api/now/table/incident",
            params={"sysparm_display_value": "false", "sysparm_limit": 100},
            auth=(sn.user, "secret"),
            timeout=10,
        )
        answer.raise_for_status()
        (tmp_path / "incident.json").write_text(answer.text, "utf-8")
        settings = {
            "name": "snow",
            "connector": "servicenow",
            "url": sn.url,
            "auth": {"user": sn.user, "password_env": SN_PASSWORD_ENV},
            "scope": {"tables": {"incident": ""}},
            "writeback": {"fields": SN_WRITEBACK, "journal": "work_notes"},
        }
        rule_set = load_rules([RULES])
        store = SqliteStore(str(tmp_path / "bridge.db"))
        live = ServiceNowConnector(settings, ConnectorContext(store=store))
        try:
            report = sync_source("snow", live, rule_set, store, NOW, dry_run=True, full=True)
        finally:
            live.close()
            store.close()
        assert report.pulled == 15
        assert not report.failed
        sn.reset_counters()
        monkeypatch.setattr(socket.socket, "connect", _refuse)
        from bridge.cli.options import read_items

        preview = build_preview(
            "snow", "servicenow", settings, ConnectorContext(),
            default_registry().connectors["servicenow"].factory, rule_set,
            read_items([str(tmp_path / "incident.json")]), NOW,
        )  # fmt: skip
    assert len(report.planned) == 15  # a work note each, and fields where they change
    assert _ops(preview.planned) == _ops(report.planned)
    assert preview.unchanged == report.unchanged
    assert preview.asked == ["GET /api/now/table/sys_choice"]
