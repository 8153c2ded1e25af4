"""The live connector against ServiceNowDouble: settings, pull, fetch, apply, webhooks, faults."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from bridge.config import load_config
from bridge.connectors.base import ConnectorContext, LiveConnector
from bridge.connectors.http import RetryPolicy
from bridge.connectors.servicenow.connector import (
    BASE_FIELDS,
    DEFAULT_TABLES,
    SETTINGS_SCHEMA,
    ServiceNowConnector,
    parse_settings,
)
from bridge.connectors.servicenow.writes import MEMO_RAW_KEY, RecordMemo, memo_key
from bridge.errors import (
    ConfigError,
    ConfigInvalidError,
    ConnectorAuthError,
    ConnectorTransportError,
    ItemNotFoundError,
    WritebackError,
)
from bridge.kpi.compute import KpiEngine
from bridge.model import Classification
from bridge.plugins import load_registry, make_plugin_manager
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules
from bridge.testing.servicenow import ServiceNowDouble
from bridge.writeback.plan import SetFields, UpsertSummary
from bridge.writeback.values import WritebackOptions

from .conftest import (
    NOW,
    PASSWORD_ENV,
    SLA_NAME,
    WRITEBACK,
    ConnectorFactory,
    Sleeps,
    incident,
    settings,
)

URL = "https://instance.servicenow.com"


def walk_objects(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from walk_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from walk_objects(value)


# ---- registration and settings ---------------------------------------------------------------


def test_registered_with_a_closed_settings_schema() -> None:
    registry = load_registry(make_plugin_manager(load_entrypoints=False))
    spec = registry.connectors["servicenow"]

    assert spec.settings_schema is SETTINGS_SCHEMA
    assert "task_sla" in spec.description
    for obj in walk_objects(SETTINGS_SCHEMA):
        assert obj.get("additionalProperties") is not True
        assert "additionalProperties" in obj, obj


def test_bridge_yaml_is_validated_with_positions(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "sources:\n"
        "  - name: sn\n"
        "    connector: servicenow\n"
        "    url: https://acme.service-now.com\n"
        "    auth: {oauth: {grant: client_credentials, client_id_env: SN_ID,\n"
        "           client_secret_file: /run/secrets/sn}}\n"
        "    scope: {tables: {incident: active=true, pm_project: ''}}\n"
        "    writeback:\n"
        "      fields: {work_type: u_work_type, sla.time-to-resolution.state: u_sla_state}\n"
        "      journal: comments\n"
        "    sla: {read_task_sla: true, batch_size: 100}\n"
        "    webhook_secret_env: SN_HOOK\n"
        "    limits: {reads_per_second: 10, writes_per_second: 5, concurrency: 4}\n"
        "    page_size: 500\n"
        "    timeout: 30\n"
    )
    assert load_config(good).sources[0].connector == "servicenow"

    bad = tmp_path / "bridge.yaml"
    bad.write_text(
        "sources:\n"
        "  - name: sn\n"
        "    connector: servicenow\n"
        "    url: https://acme.service-now.com\n"
        "    auth: {user: bridge, password: hunter2}\n"
        "    writeback: {fields: {work_type: state}, journal: worknotes}\n"
        "    page_size: 20000\n"
    )
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(bad)
    text = str(caught.value)
    assert "bridge.yaml:5:" in text
    assert "unknown key 'password'" in text
    assert "'state' does not match" in text  # only u_ / x_ columns are written
    assert "worknotes" in text
    assert "20000" in text


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"user": "a", "user_env": "B", "password_env": "P"}, "exactly one of user, user_env"),
        ({"user": "a"}, "exactly one of password_env, password_file"),
        (
            {"user": "a", "oauth": {"grant": "client_credentials"}},
            "auth has oauth and basic credentials",
        ),
        ({"oauth": {"grant": "client_credentials", "client_id": "c"}}, "client_secret_env"),
        (
            {"oauth": {"grant": "password", "client_id": "c", "client_secret_env": "S"}},
            "(password grant) needs exactly one of user, user_env",
        ),
    ],
)
def test_auth_combinations(auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_settings(settings(URL, auth=auth))


def test_defaults_and_other_checks() -> None:
    parsed = parse_settings(
        {
            "name": "sn",
            "connector": "servicenow",
            "url": URL + "/",
            "auth": {"user": "u", "password_env": "P"},
        }
    )
    assert parsed.url == URL
    assert dict(parsed.tables) == dict(DEFAULT_TABLES)
    assert list(parsed.tables) == [
        "incident",
        "sc_req_item",
        "problem",
        "change_request",
        "pm_project",
        "pm_project_task",
    ]
    assert (parsed.journal, parsed.page_size, parsed.read_task_sla) == ("work_notes", 1000, True)
    assert parse_settings(settings(URL, writeback={"journal": "none"})).journal is None
    with pytest.raises(ConfigError, match="writes u_x from two keys"):
        parse_settings(settings(URL, writeback={"fields": {"rule": "u_x", "phase": "u_x"}}))
    with pytest.raises(ConfigError, match="webhook_secret_env or webhook_secret_file, not both"):
        parse_settings(settings(URL, webhook_secret_file="/x"))
    with pytest.raises(ConfigError, match="invalid settings"):
        parse_settings(settings(URL, scope={"tables": {"Incident": ""}}))


CONFIG_DATA = Path(__file__).parent.parent.parent / "data" / "config"


def test_round_and_refresh_of_writeback_fields_are_parsed() -> None:
    [_, source] = load_config(CONFIG_DATA / "writeback-options.yaml").sources
    parsed = parse_settings(source.settings)
    assert dict(parsed.writeback_options) == {
        "evm.sv_days": WritebackOptions(round=1, refresh=timedelta(minutes=15)),
        "sla.resolution.elapsed_seconds": WritebackOptions(round=0),
    }
    assert dict(parsed.writeback_fields) == {
        "evm.sv_days": "u_sv_days",
        "sla.resolution.elapsed_seconds": "u_elapsed",
    }
    assert dict(parse_settings(settings(URL)).writeback_options) == {}


def test_a_round_or_refresh_the_figure_cannot_take_is_refused_without_bridge_yaml() -> None:
    fields = {
        "sla.resolution.state": {"field": "u_sla_state", "refresh": "1h"},
        "csat.satisfied": {"field": "u_satisfied", "round": 0},
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings(settings(URL, writeback={"fields": fields}))
    assert str(caught.value).splitlines() == [
        "source 'sn': writeback.fields.sla.resolution.state.refresh: sla.resolution.state does "
        "not move with the clock: it changes only when the item does or at an instant bridge "
        "evaluates it at anyway (a breach, a due date), so between evaluations it never changes "
        "and a refresh would rewrite the same value; remove refresh",
        "source 'sn': writeback.fields.csat.satisfied.round: round: 0 rounds numbers, and "
        "csat.satisfied is a yes/no flag; remove round",
    ]
    with pytest.raises(ConfigError, match=r"writeback/fields/evm.spi/round: 7 is greater"):
        parse_settings(
            settings(URL, writeback={"fields": {"evm.spi": {"field": "u_spi", "round": 7}}})
        )


def test_secrets_come_from_the_environment_or_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pw").write_text("from-a-file\n")
    monkeypatch.setenv("SN_USER", "svc.bridge")
    monkeypatch.setenv("BRIDGE_TEST_SN_WEBHOOK", "hook")
    connector = ServiceNowConnector(
        settings(URL, auth={"user_env": "SN_USER", "password_file": str(tmp_path / "pw")})
    )
    auth = connector.client.http.session.auth
    assert (auth.username, auth.password) == ("svc.bridge", "from-a-file")  # type: ignore[union-attr]
    assert connector.integration_user == "svc.bridge"
    connector.close()
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(ConfigError, match=r"auth\.password_env: the environment variable it names"):
        ServiceNowConnector(settings(URL))


def test_it_is_a_live_connector(make_connector: ConnectorFactory) -> None:
    connector: LiveConnector = make_connector()
    assert connector.name == "sn"


# ---- what is asked for -----------------------------------------------------------------------


def test_prepare_asks_for_what_rules_kpis_and_writeback_read(
    make_connector: ConnectorFactory, rule_set: RuleSet, tmp_path: Path
) -> None:
    connector = make_connector()
    connector.prepare(rule_set)

    assert connector.fields[: len(BASE_FIELDS)] == BASE_FIELDS
    assert {"caller_id.vip", "top_task.number", "business_service.name"} <= set(connector.fields)
    assert set(WRITEBACK.values()) <= set(connector.fields)
    assert connector.read_task_sla

    (tmp_path / "r.yaml").write_text(
        "bridge: 1\nkpi: {inputs: {budget: [raw.u_budget.value]}}\nrules:\n"
        "  - {id: a, when: {field: raw.assignment_group.name, equals: DB}, then: "
        "{work_type: service}}\n"
    )
    computed_only = load_rules([tmp_path])
    connector.prepare(computed_only)
    assert {"u_budget", "assignment_group.name"} <= set(connector.fields)
    assert not connector.read_task_sla  # no SLA may use native data: task_sla is not read


# ---- pull ------------------------------------------------------------------------------------


def test_pull_maps_records_with_people_projects_and_native_slas(
    double: ServiceNowDouble, make_connector: ConnectorFactory, rule_set: RuleSet
) -> None:
    vip = double.add_record(
        "sys_user", {"user_name": "ceo", "name": "Chief Executive", "vip": "true"}
    )
    ids = [incident(double, n, caller_id=vip if n == 0 else "") for n in range(5)]
    for sys_id in ids:
        double.add_task_sla(
            sys_id,
            sla_name=SLA_NAME,
            business_duration="1970-01-01 01:00:00",
            business_time_left="1970-01-01 03:00:00",
        )
    double.add_task_sla(
        ids[0], sla_name="First response", stage="completed", end_time="2026-06-01 00:30:00"
    )
    connector = make_connector(page_size=2)
    connector.prepare(rule_set)

    items = list(connector.pull())

    assert [i.key for i in items] == [f"INC00{10001 + n}" for n in range(5)]
    first = items[0]
    assert first.reporter == "Chief Executive"
    assert first.raw["caller_id.vip"] == "true"
    assert first.url == f"{double.url}/nav_to.do?uri=incident.do?sys_id={ids[0]}"
    slas = {s.name: s for s in first.native_slas}
    assert set(slas) == {SLA_NAME, "First response"}
    assert slas[SLA_NAME].cycles[0].goal_seconds == 4 * 3600
    assert slas["First response"].cycles[0].stop == datetime(2026, 6, 1, 0, 30, tzinfo=UTC)
    assert isinstance(first.raw[MEMO_RAW_KEY], RecordMemo)
    assert Engine(rule_set).classify(first, NOW).rule == "vip-incidents"
    kpis = KpiEngine(rule_set).compute(first, Engine(rule_set).classify(first, NOW), NOW)
    assert kpis.values["sla.resolution.source"] == "native"
    # One task_sla request per page of tasks (3 pages of 2, 2, 1), never one per task.
    assert connector.sla_requests == 3
    assert double.count("GET", "/task_sla") == 3
    assert double.spec_problems == []
    assert double.cookie_requests == 0


def test_project_tasks_group_under_their_projects_number(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    project = double.add_record("pm_project", {"short_description": "ERP", "state": "2"})
    double.add_record(
        "pm_project_task",
        {"short_description": "Design", "state": "2", "top_task": project, "parent": project},
    )
    connector = make_connector(
        scope={"tables": {"pm_project": "", "pm_project_task": ""}}, sla={"read_task_sla": False}
    )

    items = {i.key: i for i in connector.pull()}

    task = items["PRJTASK0010001"]
    assert (task.project, task.parent, task.type) == ("PRJ0010001", "PRJ0010001", "Project Task")
    assert items["PRJ0010001"].project == "PRJ0010001"


def test_task_sla_batches_are_bounded(
    double: ServiceNowDouble, make_connector: ConnectorFactory, rule_set: RuleSet
) -> None:
    for n in range(7):
        incident(double, n)
    connector = make_connector(page_size=5, sla={"batch_size": 2})
    connector.prepare(rule_set)

    assert len(list(connector.pull())) == 7
    # pages of 5 and 2 tasks: ceil(5/2) + ceil(2/2) task_sla requests
    assert connector.sla_requests == math.ceil(5 / 2) + 1


def test_pull_is_incremental_and_bounded_by_the_sweep_start(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    for n in range(4):
        incident(double, n)
    incident(double, 30, sys_updated_on="2027-01-01 00:00:00")  # after the sweep's bound
    connector = make_connector(sla={"read_task_sla": False})

    since = datetime(2026, 6, 1, 2, tzinfo=UTC)
    assert [i.key for i in connector.pull(since=since)] == ["INC0010003", "INC0010004"]
    [query] = [r.query["sysparm_query"] for r in double.requests if r.path.endswith("/incident")]
    assert "sys_updated_on>=2026-06-01 02:00:00" in query
    assert "javascript:" not in query


def test_a_sweep_loses_nothing_when_records_change_under_it(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    """Records updated mid-sweep jump to the end of the order; offset paging would then skip
    the records that slide into the pages already read. Keyset paging does not."""
    ids = [incident(double, n) for n in range(7)]
    connector = make_connector(page_size=2, sla={"read_task_sla": False})

    seen = []
    for item in connector.pull():
        seen.append(item.key)
        if len(seen) == 1:
            for sys_id in ids[:3]:
                double.update_as_user("incident", sys_id, short_description="edited")

    assert set(seen) >= {f"INC00{10001 + n}" for n in range(7)}


def test_records_seen_again_with_the_same_mod_count_are_dropped(
    double: ServiceNowDouble, make_connector: ConnectorFactory, sleeps: Sleeps
) -> None:
    """bridge's own write moves the record to the end of the sweep; the re-read is dropped."""
    for n in range(3):
        incident(double, n)
    connector = make_connector(page_size=1, sla={"read_task_sla": False})
    connector._wall_clock = lambda: datetime(2100, 1, 1, tzinfo=UTC)  # nothing is after the bound

    keys = []
    for item in connector.pull():
        keys.append(item.key)
        if item.key == "INC0010001":
            connector.apply(item, [SetFields({"u_rule": "incidents"})])

    assert keys == ["INC0010001", "INC0010002", "INC0010003"]
    assert connector.duplicates == 1


def test_a_record_that_cannot_be_mapped_is_skipped_and_logged(
    double: ServiceNowDouble, make_connector: ConnectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    incident(double, 0)
    bad = incident(double, 1, opened_at="yesterday")
    incident(double, 2)
    connector = make_connector(sla={"read_task_sla": False})

    assert [i.key for i in connector.pull()] == ["INC0010001", "INC0010003"]
    assert connector.skipped[0][0] == f"incident:{bad}"
    assert "'yesterday' is not a ServiceNow date-time" in caplog.text


# ---- fetch -----------------------------------------------------------------------------------


def test_fetch_by_table_and_sys_id_or_by_number(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    sys_id = incident(double, 0)
    project = double.add_record("pm_project", {"short_description": "Migration", "state": "2"})
    connector = make_connector(sla={"read_task_sla": False})

    assert connector.fetch(f"incident:{sys_id}").key == "INC0010001"
    assert connector.fetch(f"incident:{sys_id.upper()}").key == "INC0010001"
    assert connector.fetch("INC0010001").raw["sys_id"] == sys_id
    assert connector.fetch("PRJ0010001").raw["sys_id"] == project
    with pytest.raises(ItemNotFoundError) as gone:
        connector.fetch("INC0099999")
    assert gone.value.item_key == "INC0099999"
    double.delete("incident", sys_id)
    with pytest.raises(ItemNotFoundError) as deleted:
        connector.fetch(f"incident:{sys_id}")
    assert deleted.value.item_key == f"incident:{sys_id}"
    with pytest.raises(ItemNotFoundError, match="not a ServiceNow record key"):
        connector.fetch("incident:../../sys_user")


# ---- apply -----------------------------------------------------------------------------------


def planned(connector: ServiceNowConnector, key: str) -> tuple[Any, list[Any]]:
    item = connector.fetch(key)
    decision = Classification("service", None, "incidents", ())
    from bridge.kpi.result import KpiResult

    return item, connector.plan(item, decision, KpiResult())


def test_fields_and_the_note_go_in_one_patch_then_nothing(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    sys_id = incident(double, 0)
    connector = make_connector(sla={"read_task_sla": False})
    item, ops = planned(connector, f"incident:{sys_id}")
    assert [type(op) for op in ops] == [SetFields, UpsertSummary]

    connector.apply(item, ops)

    [patch] = [r for r in double.requests if r.method == "PATCH"]
    assert set(patch.json()) == {"u_work_type", "u_rule", "work_notes"}
    assert double.record("incident", sys_id)["u_rule"] == "incidents"
    [note] = double.journal("incident", sys_id, "work_notes")
    assert note["sys_created_by"] == "bridge.integration"
    assert "[bridge summary " in note["value"]
    _, again = planned(connector, f"incident:{sys_id}")
    assert again == []


def test_a_refused_field_is_named(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    sys_id = incident(double, 0)
    double.set_acl("incident", "u_work_type", write=False)
    connector = make_connector(
        sla={"read_task_sla": False},
        writeback={"fields": {"work_type": "u_work_type"}, "journal": "none"},
    )
    item, ops = planned(connector, f"incident:{sys_id}")

    with pytest.raises(ConnectorAuthError) as caught:
        connector.apply(item, ops)

    assert str(caught.value).startswith(
        "ServiceNow refused to update incident.u_work_type: ACL Exception Update Failed due to "
        "security constraints — grant the integration user write access to the field"
    )


def test_a_column_servicenow_ignores_is_reported_after_the_memo_is_saved(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    sys_id = incident(double, 0)
    connector = make_connector(
        sla={"read_task_sla": False}, writeback={"fields": {"rule": "u_no_such_column"}}
    )
    item, ops = planned(connector, f"incident:{sys_id}")

    with pytest.raises(WritebackError, match=r"ignored incident.u_no_such_column: .*no such col"):
        connector.apply(item, ops)

    # The journal entry did land; it is remembered, so it is not added again.
    assert len(double.journal("incident", sys_id)) == 1
    _, again = planned(connector, f"incident:{sys_id}")
    assert not any(isinstance(op, UpsertSummary) for op in again)


def test_an_unapplied_journal_patch_that_timed_out_fails_the_item(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    sys_id = incident(double, 0)
    connector = make_connector(sla={"read_task_sla": False}, timeout=0.3)
    item, ops = planned(connector, f"incident:{sys_id}")
    double.inject_timeout(1.0, method="PATCH")
    before = connector.calls

    with pytest.raises(ConnectorTransportError, match="timed out"):
        connector.apply(item, ops)
    # one PATCH (not repeated: it might have landed) and one look at the journal (the
    # fetch read it once already, for bridge's last entry: the store knew none)
    assert connector.calls - before == 2
    assert double.count("GET", "/sys_journal_field") == 2
    assert double.journal("incident", sys_id) == []


def test_a_journal_patch_that_landed_despite_a_timeout_is_remembered(
    sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    monkeypatch.setenv("BRIDGE_TEST_SN_WEBHOOK", "hook")
    sys_id = "a9e30c7dc61122760116894de7bcc7bd"
    record = {
        "sys_id": sys_id,
        "number": "INC0000046",
        "sys_class_name": "incident",
        "sys_updated_on": "2026-06-01 00:00:00",
        "sys_mod_count": "3",
    }
    connector = ServiceNowConnector(
        settings(URL, sla={"read_task_sla": False}), sleep=sleeps, retry=RetryPolicy(max_attempts=2)
    )
    with responses.RequestsMock() as mock:
        mock.get(f"{URL}/api/now/table/incident/{sys_id}", json={"result": record})
        mock.patch(f"{URL}/api/now/table/incident/{sys_id}", body=requests.ConnectionError("reset"))
        mock.get(
            f"{URL}/api/now/table/sys_journal_field",
            json={"result": [{"sys_id": "j"}]},
            headers={"X-Total-Count": "1"},
        )
        item, ops = planned(connector, f"incident:{sys_id}")
        connector.apply(item, ops)  # no error: the entry is there

        memo = RecordMemo.from_text(connector._memos.get_memo("sn", memo_key("incident", sys_id)))
        summary = next(op for op in ops if isinstance(op, UpsertSummary))
        assert memo.journal == summary.digest
        query = parse_qs(urlsplit(mock.calls[-1].request.url).query)["sysparm_query"][0]
        # The marker of this very attempt: the record's version when the entry was sent.
        assert query.endswith(f"^element=work_notes^valueLIKE[bridge summary {memo.journal} @3]")
    connector.close()


# ---- transport -------------------------------------------------------------------------------


def test_injected_faults_are_retried(
    double: ServiceNowDouble, make_connector: ConnectorFactory, sleeps: Sleeps
) -> None:
    for n in range(3):
        incident(double, n)
    connector = make_connector(page_size=1, sla={"read_task_sla": False}, timeout=0.3)
    double.inject(429, times=1, retry_after=2)
    double.inject(503, times=1)
    double.inject_overloaded(1)
    double.inject_timeout(1.0, times=1, method="GET")

    assert len(list(connector.pull())) == 3

    assert sleeps.waits[0] == 2.0  # Retry-After
    assert len(sleeps.waits) == 4  # 429, 503, 202, timeout: all on the first request
    assert double.cookie_requests == 0


def test_cookies_are_never_sent_back(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    for n in range(6):
        incident(double, n)
    connector = make_connector(page_size=2)

    items = list(connector.pull())
    for item in items:
        connector.apply(item, [SetFields({"u_rule": "x"})])

    assert double.count() > 6
    assert double.cookie_requests == 0
    assert len(connector.client.http.session.cookies) == 0


def test_oauth_tokens_survive_expiry_mid_pull(
    double: ServiceNowDouble, make_connector: ConnectorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SN_CLIENT_SECRET", "csecret")
    for n in range(4):
        incident(double, n)
    connector = make_connector(
        page_size=1,
        sla={"read_task_sla": False},
        auth={
            "oauth": {
                "grant": "password",
                "client_id": "cid",
                "client_secret_env": "SN_CLIENT_SECRET",
                "user": "bridge.integration",
                "password_env": PASSWORD_ENV,
            }
        },
    )

    keys = []
    for item in connector.pull():
        keys.append(item.key)
        if len(keys) == 2:
            double.expire_tokens()

    assert len(keys) == 4
    assert double.count("POST", "/oauth_token.do") == 2
    assert sum(1 for r in double.requests if r.status == 401) == 1
    assert connector.client.oauth is not None
    assert connector.client.oauth.grants == 2


# ---- webhooks --------------------------------------------------------------------------------


def test_a_business_rule_delivery_is_verified_and_fetched(
    double: ServiceNowDouble, make_connector: ConnectorFactory
) -> None:
    sys_id = incident(double, 0)
    connector = make_connector(sla={"read_task_sla": False})
    double.update_as_user("incident", sys_id, state="6", resolved_at="2026-06-02 00:00:00")
    body, headers = double.webhook("incident", sys_id, secret="hook-secret")

    event = connector.parse_webhook(headers, body)

    assert event.keys == (f"incident:{sys_id}",)
    assert event.delivery_id == f"{sys_id}:1"
    assert event.ignore_reason is None
    assert connector.fetch(event.keys[0]).status == "Resolved"
    double.delete("incident", sys_id)
    body, headers = double.webhook("incident", sys_id, "delete", secret="hook-secret")
    assert connector.parse_webhook(headers, body).deleted


def test_the_shared_secret_header_option(
    double: ServiceNowDouble, make_connector: ConnectorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SN_TOKEN", "shared")
    sys_id = incident(double, 0)
    connector = make_connector(webhook_token_env="SN_TOKEN")
    body, headers = double.webhook("incident", sys_id, secret="shared", shared_secret_header=True)
    assert connector.parse_webhook(headers, body).keys == (f"incident:{sys_id}",)
    body, headers = double.webhook(
        "sc_task", double.add_record("sc_task", {}), secret="shared", shared_secret_header=True
    )
    assert "not in this source's scope" in (
        connector.parse_webhook(headers, body).ignore_reason or ""
    )


def test_context_store_is_used_for_memos(
    double: ServiceNowDouble, make_connector: ConnectorFactory, tmp_path: Path
) -> None:
    from bridge.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "s.db"))
    sys_id = incident(double, 0)
    connector = make_connector(store=store, sla={"read_task_sla": False})
    item, ops = planned(connector, f"incident:{sys_id}")
    connector.apply(item, ops)
    assert RecordMemo.from_text(store.get_memo("sn", memo_key("incident", sys_id))).journal
    assert ConnectorContext(store=store).store is store
    store.close()
