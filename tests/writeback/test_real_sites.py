"""Write-back on sites set up the way admins set them up, end to end over real HTTP.

The README's configuration, the bundled rules, and doubles of Jira and ServiceNow whose
select fields and choice lists name their options their own way ("Project", "Executing").
A first sync writes every item in the site's words; a second sync with nothing changed —
at the same instant, later that night, later that weekend day — writes nothing: bridge's
own writes never feed back into its KPIs and no written value moves with the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.config import load_config
from bridge.connectors.base import ConnectorContext, LiveConnector
from bridge.errors import ConfigInvalidError
from bridge.kpi.compute import KpiEngine
from bridge.plugins import default_registry
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules
from bridge.store.sqlite import SqliteStore
from bridge.sync import SyncReport, evaluate_item, sync_source
from bridge.testing import OpenApiSpec
from bridge.testing.jira import JiraDouble
from bridge.testing.servicenow import ServiceNowDouble
from bridge.writeback.plan import SetFields

DATA = Path(__file__).parents[1] / "data"
RULES = Path(__file__).parents[2] / "rules"  # the bundled rules
JIRA_SPEC = DATA / "jira" / "openapi-cloud-platform-v3.json"
SN_SPEC = DATA / "servicenow" / "openapi-table-api.yaml"

# (first sync, second sync): office hours are 08:00-17:00 Europe/Berlin, Monday to Friday.
NOWS = {
    "weekday": (datetime(2026, 7, 1, 10, 0, tzinfo=UTC), datetime(2026, 7, 1, 10, 0, tzinfo=UTC)),
    "night": (datetime(2026, 6, 30, 23, 30, tzinfo=UTC), datetime(2026, 7, 1, 5, 0, tzinfo=UTC)),
    "weekend": (datetime(2026, 7, 4, 8, 0, tzinfo=UTC), datetime(2026, 7, 4, 20, 0, tzinfo=UTC)),
}
MONDAY = datetime(2026, 6, 29, 6, 0, tzinfo=UTC)  # 08:00 in Berlin


class Clock:
    """The site's clock: what it stamps bridge's writes with."""

    def __init__(self) -> None:
        self.now = MONDAY

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def rule_set() -> RuleSet:
    return load_rules([RULES])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(str(tmp_path / "bridge.db"))
    yield db
    db.close()


def connector_from(config_path: Path, store: SqliteStore) -> LiveConnector:
    """What ``bridge sync -c bridge.yaml`` builds."""
    config = load_config(config_path)
    source = config.sources[0]
    return (
        default_registry()
        .connectors[source.connector]
        .factory(  # type: ignore[return-value]
            source.settings,
            ConnectorContext(store=store, base_dir=str(source.base_dir), locate=source.locate),
        )
    )


def kpis_of(
    connector: LiveConnector, keys: list[str], rule_set: RuleSet, now: datetime
) -> dict[str, tuple[dict[str, Any], int]]:
    """Every item's KPI values and the number of writes it would still need, fetched fresh."""
    engine, kpis = Engine(rule_set), KpiEngine(rule_set)
    connector.prepare(rule_set)
    out = {}
    for key in keys:
        item = connector.fetch(key)
        values = kpis.compute(item, engine.classify(item, now), now).values
        out[key] = (dict(values), len(evaluate_item(item, engine, kpis, connector, now)))
    return out


def write_config(tmp_path: Path, source: dict[str, Any]) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump({"rules": str(RULES), "sources": [source]}, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# Jira
# --------------------------------------------------------------------------------------------

JIRA_FIELDS = {
    "work_type": "Work category",
    "phase": {"field": "Project phase", "values": {"execution": "Executing"}},
    "sla.time-to-resolution.state": "SLA state",
    "sla.time-to-resolution.breach_time": "Resolution due",
    "sla.time-to-first-response.state": "Response state",
    "schedule.slip_days": "Schedule slip",
    "rule": "Bridge rule",
}


def jira_site(double: JiraDouble) -> None:
    double.add_field("Work category", "select", options=["Project", "Service", "Unclassified"])
    double.add_field(
        "Project phase",
        "select",
        options=["Initiation", "Planning", "Executing", "Monitoring", "Closing"],
    )
    states = ["Running", "Paused", "Breaching", "Met", "Breached", "Cancelled"]
    double.add_field("SLA state", "select", options=states)
    double.add_field("Response state", "select", options=states)
    double.add_field("Resolution due", "datetime")
    double.add_field("Schedule slip", "number")
    double.add_field("Bridge rule", "string")


def status(at: datetime, old: str, new: str) -> dict[str, Any]:
    return {
        "created": at,
        "items": [{"field": "status", "fieldtype": "jira", "fromString": old, "toString": new}],
    }


def jira_issues(double: JiraDouble) -> list[str]:
    """Service and project work in every state an SLA clock can be in, including an
    incident whose elapsed time equals its goal exactly over a closed weekend."""
    keys = []
    priorities = ["Highest", "High", "Medium", "Low"]
    for i, priority in enumerate(priorities):
        created = MONDAY + timedelta(hours=2 * i)
        keys.append(
            double.add_issue({"issuetype": "Incident", "priority": priority, "created": created})
        )
        waiting = double.add_issue(
            {
                "issuetype": "Incident",
                "priority": priority,
                "status": "Waiting for customer",
                "created": created,
                "updated": created + timedelta(hours=1),
            },
            changelog=[status(created + timedelta(hours=1), "To Do", "Waiting for customer")],
        )
        keys.append(waiting)
        done_at = created + timedelta(hours=3 + i)
        keys.append(
            double.add_issue(
                {
                    "issuetype": "Incident",
                    "priority": priority,
                    "status": "Done",
                    "created": created,
                    "updated": done_at,
                    "resolutiondate": done_at,
                },
                changelog=[status(done_at, "In Progress", "Done")],
            )
        )
    # Created Monday 08:00 Berlin with the 45 h goal: exactly reached Friday 17:00.
    keys.append(double.add_issue({"issuetype": "Incident", "priority": "Low", "created": MONDAY}))
    keys.append(
        double.add_issue(
            {"issuetype": "Incident", "status": "Cancelled", "created": MONDAY},
            changelog=[status(MONDAY + timedelta(hours=4), "To Do", "Cancelled")],
        )
    )
    keys.append(
        double.add_issue(
            {"issuetype": "Service Request", "status": "In Progress", "created": MONDAY},
            changelog=[status(MONDAY + timedelta(minutes=20), "To Do", "In Progress")],
        )
    )
    for i, state in enumerate(["To Do", "In Progress", "In Review", "Done"]):
        keys.append(
            double.add_issue(
                {
                    "issuetype": "Epic",
                    "status": state,
                    "created": MONDAY - timedelta(days=60),
                    "Start date": "2026-05-01",
                    "Target end": "2026-06-30",
                    "duedate": "2026-06-30",
                    "timeoriginalestimate": 3600 * (40 + 8 * i),
                    "timespent": 3600 * (10 + 12 * i),
                    "timeestimate": 3600 * (30 - 6 * i),
                },
                project="PMO",
            )
        )
        keys.append(
            double.add_issue(
                {
                    "issuetype": "Story",
                    "status": state,
                    "created": MONDAY - timedelta(days=20),
                    "duedate": "2026-06-26",
                    "timeoriginalestimate": 3600 * 8,
                    "timespent": 3600 * (2 + i),
                },
                project="PMO",
            )
        )
    keys.append(double.add_issue({"issuetype": "Improvement", "created": MONDAY}, project="PMO"))
    return keys


def jira_source(url: str) -> dict[str, Any]:
    return {  # the README's Jira source, against the double
        "name": "jira",
        "connector": "jira",
        "url": url,
        "auth": {"email": "bot@example.com", "token_env": "BRIDGE_TEST_JIRA_TOKEN"},
        "scope": {"jql": "project in (OPS, PMO)"},
        "writeback": {"fields": JIRA_FIELDS, "comment": True},
        "webhook_secret_env": "BRIDGE_TEST_JIRA_WEBHOOK_SECRET_UNSET",
    }


def jira_mutations(double: JiraDouble) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in double.requests if r.method in ("PUT", "POST")]


@pytest.mark.parametrize("when", list(NOWS))
def test_jira_first_sync_writes_in_the_sites_words_and_a_second_writes_nothing(
    when: str,
    rule_set: RuleSet,
    store: SqliteStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_JIRA_TOKEN", "token")
    monkeypatch.delenv("BRIDGE_TEST_JIRA_WEBHOOK_SECRET_UNSET", raising=False)
    first_now, second_now = NOWS[when]
    clock = Clock()
    with JiraDouble(spec=OpenApiSpec.load(JIRA_SPEC), clock=clock) as double:
        jira_site(double)
        keys = jira_issues(double)
        config = write_config(tmp_path, jira_source(double.url))
        clock.now = first_now
        before = kpis_of(connector_from(config, store), keys, rule_set, first_now)

        first = sync_source("jira", connector_from(config, store), rule_set, store, first_now)

        # bridge's own writes, read back, change no KPI and leave nothing to write.
        after = kpis_of(connector_from(config, store), keys, rule_set, first_now)
        assert {k: v for k, (v, _) in after.items()} == {k: v for k, (v, _) in before.items()}
        assert {n for _, n in after.values()} == {0}

        assert first.failed == [], first.failed
        assert (first.pulled, first.items_written, first.comment_writes) == (
            len(keys),
            len(keys),
            len(keys),
        )
        writes = jira_mutations(double)
        assert all(code in (200, 201, 204) for _, _, code in writes)
        assert len(writes) == 2 * len(keys)  # the comment, then fields and property
        category = double.field_id("Work category")
        phase = double.field_id("Project phase")
        values = {
            k: (
                double.issue(k)["fields"][category]["value"],
                (double.issue(k)["fields"][phase] or {}).get("value"),
            )
            for k in keys
        }
        assert set(values.values()) >= {("Service", None), ("Project", "Executing")}
        assert {v[1] for v in values.values()} <= {
            None,
            "Initiation",
            "Planning",
            "Executing",
            "Monitoring",
            "Closing",
        }
        sla_state = double.field_id("SLA state")
        states = {double.issue(k)["fields"][sla_state]["value"] for k in keys[:3]}
        assert states
        assert all(s[0].isupper() for s in states)

        double.reset_counters()
        clock.now = second_now
        second = sync_source("jira", connector_from(config, store), rule_set, store, second_now)

        assert second.failed == []
        assert jira_mutations(double) == []
        assert (second.items_written, second.field_writes, second.comment_writes) == (0, 0, 0)
        assert all(len(double.comments(k)) == 1 for k in keys)


def test_jira_select_without_an_option_is_reported_at_its_line_before_any_write(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_JIRA_TOKEN", "token")
    with JiraDouble(spec=OpenApiSpec.load(JIRA_SPEC)) as double:
        jira_site(double)
        jira_issues(double)
        source = jira_source(double.url)
        source["writeback"]["fields"] = {
            "work_type": "Work category",
            "phase": {"field": "Project phase", "values": {"execution": "Doing"}},
        }
        config = write_config(tmp_path, source)
        connector = connector_from(config, store)

        with pytest.raises(ConfigInvalidError) as caught:
            connector.prepare(load_rules([RULES]))

        text = str(caught.value)
        lines = config.read_text().splitlines()
        doing = next(i for i, line in enumerate(lines, 1) if "Doing" in line)
        assert f"bridge.yaml:{doing}:" in text
        assert "'Doing' is not an option of field 'Project phase'" in text
        assert "'Executing'" in text  # the options are listed
        assert jira_mutations(double) == []


def test_jira_options_come_from_the_edit_screen_without_admin_rights(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_JIRA_TOKEN", "token")
    with JiraDouble(spec=OpenApiSpec.load(JIRA_SPEC), admin=False) as double:
        jira_site(double)
        keys = jira_issues(double)
        source = jira_source(double.url)
        source["writeback"]["fields"] = {"work_type": "Work category", "phase": "Project phase"}
        connector = connector_from(write_config(tmp_path, source), store)

        with pytest.raises(ConfigInvalidError, match="no option for 'execution'"):
            connector.prepare(load_rules([RULES]))

        assert double.count("GET", "/context$") == 2  # refused, then the edit screen
        assert double.count("GET", "/editmeta$") == 1  # one issue's screen serves both
        assert keys


# --------------------------------------------------------------------------------------------
# ServiceNow
# --------------------------------------------------------------------------------------------

SN_USER = "svc.bridge"
SN_FIELDS = {
    "work_type": "u_work_type",
    "phase": {"field": "u_phase", "values": {"execution": "Executing"}},
    "sla.time-to-resolution.state": "u_sla_state",
    "sla.time-to-resolution.breach_time": "u_sla_breach",
    "rule": "u_rule",
}
SN_TABLES = ("incident", "sc_req_item", "pm_project", "pm_project_task")


def fmt(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def sn_site(sn: ServiceNowDouble) -> None:
    for table in SN_TABLES:
        sn.add_table(table, ["u_work_type", "u_phase", "u_sla_state", "u_sla_breach", "u_rule"])
    choices = {
        # Stored values of the site's own making; labels as people read them.
        "u_work_type": [("proj", "Project"), ("svc", "Service"), ("none", "Unclassified")],
        "u_phase": [
            ("initiation", "Initiation"),
            ("planning", "Planning"),
            ("executing", "Executing"),
            ("monitoring", "Monitoring"),
            ("closing", "Closing"),
        ],
        "u_sla_state": [
            (s.capitalize(), s.capitalize())
            for s in ("running", "paused", "breaching", "met", "breached", "cancelled")
        ],
    }
    for column, rows in choices.items():
        for sequence, (value, label) in enumerate(rows):
            sn.add_record(
                "sys_choice",
                {
                    "name": "task",
                    "element": column,
                    "value": value,
                    "label": label,
                    "language": "en",
                    "inactive": "false",
                    "sequence": str(sequence),
                },
            )


def sn_records(sn: ServiceNowDouble) -> list[str]:
    """Incidents in every state the computed SLA reads from the record alone: open, in
    progress, On Hold (paused since the last update), resolved, closed, cancelled without
    ``closed_at`` (cancelled at the last update); requests; projects and their tasks."""
    ids = []
    for i, state in enumerate(["1", "2", "3", "6", "7", "8", "3", "8"]):
        opened = MONDAY + timedelta(hours=i)
        touched = opened + timedelta(hours=2)
        fields = {
            "state": state,
            "priority": str(1 + i % 4),
            "short_description": f"incident {i}",
            "opened_at": fmt(opened),
            "sys_created_on": fmt(opened),
            "sys_updated_on": fmt(touched),
            "sys_updated_by": "jane.doe",
        }
        if state in ("6", "7"):
            fields["resolved_at"] = fmt(touched)
        if state == "7":
            fields["closed_at"] = fmt(touched + timedelta(hours=1))
        ids.append(sn.add_record("incident", fields))
    for state in ("1", "2", "3"):
        ids.append(
            sn.add_record(
                "sc_req_item",
                {
                    "state": state,
                    "opened_at": fmt(MONDAY),
                    "sys_created_on": fmt(MONDAY),
                    "sys_updated_on": fmt(MONDAY + timedelta(hours=1)),
                },
            )
        )
    project = sn.add_record(
        "pm_project",
        {
            "state": "2",
            "short_description": "Migration",
            "start_date": "2026-05-01 08:00:00",
            "end_date": "2026-06-30 17:00:00",
            "effort": "1970-01-03 00:00:00",
            "work_effort": "1970-01-01 20:00:00",
            "sys_created_on": fmt(MONDAY - timedelta(days=60)),
            "sys_updated_on": fmt(MONDAY),
        },
    )
    ids.append(project)
    for state in ("-5", "2", "3"):
        ids.append(
            sn.add_record(
                "pm_project_task",
                {
                    "state": state,
                    "top_task": project,
                    "start_date": "2026-06-01 08:00:00",
                    "end_date": "2026-06-26 17:00:00",
                    "sys_created_on": fmt(MONDAY - timedelta(days=30)),
                    "sys_updated_on": fmt(MONDAY),
                },
            )
        )
    return ids


def sn_source(url: str) -> dict[str, Any]:
    return {  # the README's ServiceNow source, against the double
        "name": "servicenow",
        "connector": "servicenow",
        "url": url,
        "auth": {"user": SN_USER, "password_env": "BRIDGE_TEST_SN_PASSWORD"},
        "scope": {"tables": dict.fromkeys(SN_TABLES, "")},
        "writeback": {"fields": SN_FIELDS, "journal": "work_notes"},
        "webhook_secret_env": "BRIDGE_TEST_SN_WEBHOOK_SECRET_UNSET",
    }


def sn_sync(config: Path, store: SqliteStore, rule_set: RuleSet, now: datetime) -> SyncReport:
    return sync_source("servicenow", connector_from(config, store), rule_set, store, now)


@pytest.fixture
def sn_double(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ServiceNowDouble, Clock]]:
    monkeypatch.setenv("BRIDGE_TEST_SN_PASSWORD", "secret")
    monkeypatch.delenv("BRIDGE_TEST_SN_WEBHOOK_SECRET_UNSET", raising=False)
    clock = Clock()
    with ServiceNowDouble(
        spec=OpenApiSpec.load(SN_SPEC), clock=clock, user=SN_USER, password="secret"
    ) as sn:
        sn_site(sn)
        yield sn, clock


@pytest.mark.parametrize("when", list(NOWS))
def test_servicenow_first_sync_writes_choice_values_and_a_second_writes_nothing(
    when: str,
    sn_double: tuple[ServiceNowDouble, Clock],
    rule_set: RuleSet,
    store: SqliteStore,
    tmp_path: Path,
) -> None:
    sn, clock = sn_double
    ids = sn_records(sn)
    config = write_config(tmp_path, sn_source(sn.url))
    first_now, second_now = NOWS[when]
    clock.now = first_now
    refs = [f"{table}:{r['sys_id']}" for table in SN_TABLES for r in sn.records(table)]
    before = kpis_of(connector_from(config, store), refs, rule_set, first_now)

    first = sn_sync(config, store, rule_set, first_now)

    # bridge's own PATCH moved sys_updated_on; read back, no KPI moves and nothing is left.
    after = kpis_of(connector_from(config, store), refs, rule_set, first_now)
    assert {k: v for k, (v, _) in after.items()} == {k: v for k, (v, _) in before.items()}
    assert {n for _, n in after.values()} == {0}

    assert first.failed == [], first.failed
    assert first.items_written == len(ids)
    assert sn.count("PATCH") == len(ids)
    stored = {
        (r["u_work_type"], r.get("u_phase", ""))
        for table in SN_TABLES
        for r in sn.records(table)
        if r["sys_id"] in ids
    }
    assert {("svc", ""), ("proj", "executing")} <= stored
    assert {w for w, _ in stored} <= {"proj", "svc", "none"}
    states = {r["u_sla_state"] for r in sn.records("incident")}
    assert states <= {"Running", "Paused", "Breaching", "Met", "Breached", "Cancelled"}
    assert {"Paused", "Cancelled"} <= states
    notes = {sys_id: len(sn.journal("incident", sys_id, "work_notes")) for sys_id in ids[:8]}
    assert set(notes.values()) == {1}

    sn.reset_counters()
    clock.now = second_now
    second = sn_sync(config, store, rule_set, second_now)

    assert second.failed == []
    assert sn.count("PATCH") == 0  # bridge's own PATCH moved sys_updated_on: no feedback
    assert (second.items_written, second.comment_writes) == (0, 0)
    assert {sys_id: len(sn.journal("incident", sys_id, "work_notes")) for sys_id in ids[:8]} == (
        notes
    )


def test_servicenow_without_its_memo_reads_the_last_human_update_from_the_audit(
    sn_double: tuple[ServiceNowDouble, Clock],
    rule_set: RuleSet,
    store: SqliteStore,
    tmp_path: Path,
) -> None:
    """A new store has no memo of the update before bridge's own write; the audit history,
    where readable, still gives the last update not made by bridge, so the On Hold pause
    keeps its start and no field would change."""
    sn, clock = sn_double
    sn_records(sn)
    held = next(r for r in sn.records("incident") if r["state"] == "3")
    human_update = held["sys_updated_on"]
    config = write_config(tmp_path, sn_source(sn.url))
    first_now, second_now = NOWS["night"]
    clock.now = first_now
    sn_sync(config, store, rule_set, first_now)
    assert sn.record("incident", held["sys_id"])["sys_updated_by"] == SN_USER
    sn.add_table("sys_audit", ["documentkey", "tablename", "user", "fieldname"])
    for user, at in (("jane.doe", human_update), (SN_USER, fmt(first_now))):
        sn.add_record(
            "sys_audit",
            {
                "documentkey": held["sys_id"],
                "tablename": "incident",
                "user": user,
                "fieldname": "state",
                "sys_created_on": at,
            },
        )
    fresh = SqliteStore(str(tmp_path / "fresh.db"))
    try:
        connector = connector_from(config, fresh)
        connector.prepare(rule_set)
        item = connector.fetch(f"incident:{held['sys_id']}")

        assert item.updated == datetime.strptime(human_update, "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=UTC
        )
        ops = evaluate_item(item, Engine(rule_set), KpiEngine(rule_set), connector, second_now)
        assert [op for op in ops if isinstance(op, SetFields)] == []
        # Found once, remembered: the audit is not asked again for this record.
        assert connector.fetch(f"incident:{held['sys_id']}").updated == item.updated
        assert sn.count("GET", "/api/now/table/sys_audit") == 1
    finally:
        fresh.close()
