"""The Jira connector against JiraDouble: a stateful fake site over real HTTP, which checks
every v3 request against Atlassian's OpenAPI document and refuses what Jira refuses."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.config import load_config
from bridge.connectors.base import ConnectorContext
from bridge.connectors.http import RetryPolicy
from bridge.connectors.jira import CONNECTOR, JiraConnector
from bridge.connectors.jira.client import JiraClient
from bridge.connectors.jira.connector import (
    OAUTH_GATEWAY,
    IssueWritePacer,
    make_connector,
    parse_settings,
    resolve_auth,
)
from bridge.connectors.jira.writes import COMMENT_PROPERTY
from bridge.errors import (
    ConfigError,
    ConfigInvalidError,
    ConnectorError,
    ConnectorTransportError,
    ItemNotFoundError,
    RemoteValidationError,
    WebhookSignatureError,
)
from bridge.kpi.result import KpiResult
from bridge.model import PHASES, Classification, WorkItem
from bridge.plugins import default_registry
from bridge.rules.ast import RuleSet
from bridge.rules.loader import load_rules
from bridge.store.sqlite import SqliteStore
from bridge.testing import OpenApiSpec
from bridge.testing.jira import HUMAN_ACCOUNT_ID, JiraDouble, adf_to_text
from bridge.writeback.plan import SetFields, UpsertSummary

SPEC_PATH = Path(__file__).parents[2] / "data" / "jira" / "openapi-cloud-platform-v3.json"
TOKEN_ENV = "BRIDGE_TEST_JIRA_TOKEN"
HOOK_ENV = "BRIDGE_TEST_JIRA_HOOK"
PAT_ENV = "BRIDGE_TEST_JIRA_PAT"
SECRET = "hook-secret"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
PROJECT = Classification("project", "execution", "projects", ("effort",))

RULES = """bridge: 1
slas:
  resolution:
    source: {source}
    native: {{jira_field: Time to resolution}}
    start: {{on: created}}
    stop: {{field: status_category, equals: done}}
    goals: [{{target: 8h}}]
rules:
  - id: projects
    when: {{field: type, in: [Epic, Story]}}
    then:
      work_type: project
      phase: {{by_status_category: {{todo: planning, in_progress: execution, done: closing}}}}
      kpis: [effort]
  - id: incidents
    when: {{field: raw.fields.customfield_10022, exists: true}}
    then: {{work_type: service, kpis: [sla.resolution]}}
default: {{work_type: unclassified}}
"""


@pytest.fixture(scope="module")
def spec() -> OpenApiSpec:
    return OpenApiSpec.load(SPEC_PATH)


@pytest.fixture
def double(spec: OpenApiSpec) -> Iterator[JiraDouble]:
    with JiraDouble(spec=spec, max_page=50) as site:
        site.add_field("Bridge phase", "select", options=list(PHASES))
        yield site


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "token")
    monkeypatch.setenv(HOOK_ENV, SECRET)
    monkeypatch.setenv(PAT_ENV, "pat")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(str(tmp_path / "bridge.db"))
    yield db
    db.close()


def rules(tmp_path: Path, source: str = "computed") -> RuleSet:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "r.yaml").write_text(RULES.format(source=source))
    return load_rules([folder])


def settings(url: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "jira-test",
        "connector": "jira",
        "url": url,
        "auth": {"email": "bot@example.com", "token_env": TOKEN_ENV},
        "scope": {"jql": "project = OPS"},
        "writeback": {
            "fields": {
                "effort.variance_pct": "SPI",
                "work_type": "Work type",
                "phase": "Bridge phase",
            }
        },
        "webhook_secret_env": HOOK_ENV,
    }
    base.update(overrides)
    return base


def connect(
    double: JiraDouble,
    *,
    store: SqliteStore | None = None,
    sleep: Callable[[float], None] = time.sleep,
    pacer: IssueWritePacer | None = None,
    **overrides: Any,
) -> JiraConnector:
    """What ``make_connector`` builds, with a sleep the test controls."""
    raw = settings(double.url, **overrides)
    parsed = parse_settings(raw)
    _, auth, url = resolve_auth(raw, parsed)
    client = JiraClient(
        base_url=url,
        deployment=parsed.deployment,
        auth=auth,
        reads_per_second=parsed.reads_per_second,
        writes_per_second=parsed.writes_per_second,
        concurrency=parsed.concurrency,
        sleep=sleep,
        retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05),
        timeout=parsed.timeout,
    )
    return JiraConnector(parsed, client, store=store, webhook_secret=SECRET, pacer=pacer)


def story(double: JiraDouble, **fields: Any) -> str:
    values: dict[str, Any] = {
        "issuetype": "Story",
        "status": "In Progress",
        "timeoriginalestimate": 36000,
        "timespent": 18000,
        "timeestimate": 36000,
        "created": T0,
        "updated": T0,
    }
    values.update(fields)
    return double.add_issue(values)


def writes(double: JiraDouble) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in double.requests if r.method in ("PUT", "POST")]


# -- settings -------------------------------------------------------------------------------------


def test_registered_with_a_closed_settings_schema() -> None:
    spec = default_registry().connectors["jira"]
    assert spec is CONNECTOR
    assert spec.settings_schema is not None
    assert spec.settings_schema["additionalProperties"] is False
    assert spec.settings_schema["properties"]["auth"]["additionalProperties"] is False


def test_defaults() -> None:
    parsed = parse_settings(settings("https://acme.atlassian.net"))
    assert (parsed.deployment, parsed.page_size, parsed.timeout) == ("cloud", 100, 30.0)
    assert (parsed.reads_per_second, parsed.writes_per_second, parsed.concurrency) == (100, 50, 8)
    assert (parsed.comment, parsed.notify_users, parsed.webhook_unsigned) == (True, False, False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"auth": {"email": "a@b.c", "token": "ATATT3xFfGF0"}},
            "unknown key 'token'; did you mean 'token_env'?",
        ),
        ({"api_token": "x"}, "unknown key 'api_token'"),
        (
            {"auth": {"email": "a@b.c", "token_env": "ATATT3xFfGF0T-abc=ABCD1234"}},
            "looks like a secret",
        ),
        ({"auth": {"email": "a@b.c", "token_env": "ATATT3xFfGF0" + "x" * 180}}, "auth.token_env"),
        ({"auth": {"email": "a@b.c", "token_env": "MY-TOKEN"}}, "name of an environment variable"),
        ({"scope": {}}, "missing required key 'jql'"),
        ({"limits": {"reads_per_second": 0}}, "limits.reads_per_second"),
        ({"deployment": "server"}, "deployment"),
        (
            {"writeback": {"fields": {"evm.spi": "SPI"}, "comments": True}},
            "unknown key 'comments'; did you mean 'comment'?",
        ),
        ({"url": "http://jira.example.com"}, "plain http"),
        ({"scope": {"jql": "project = OPS ORDER BY key"}}, "must not have ORDER BY"),
        ({"scope": {"jql": "order by created"}}, "ORDER BY"),
        ({"scope": {"jql": "OPS"}}, "not a bounded search"),
        ({"writeback": {"fields": {"evn.spi": "SPI"}}}, "did you mean 'evm'?"),
        ({"writeback": {"fields": {"work type": "SPI"}}}, "writeback.fields"),
        ({"writeback": {"fields": {"sla.state": "SPI"}}}, "sla.<sla name>.<figure>"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "is not a file"),
    ],
)
def test_bad_settings_are_config_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({**settings("https://acme.atlassian.net"), **overrides})
    assert message in str(caught.value)
    assert "ATATT3xFfGF0" not in str(caught.value)  # a pasted secret is never quoted


@pytest.mark.parametrize(
    ("auth", "deployment", "message"),
    [
        (
            {"email": "a@b.c", "token_env": "NOT_SET_ANYWHERE_42"},
            "cloud",
            "auth.token_env: the environment variable it names is not set",
        ),
        ({"email": "a@b.c", "token_env": TOKEN_ENV, "pat_env": PAT_ENV}, "cloud", "exactly one of"),
        ({"pat_env": PAT_ENV}, "cloud", "is for Data Center"),
        ({"token_env": TOKEN_ENV}, "cloud", "give email or email_env"),
        ({"oauth_token_env": TOKEN_ENV, "cloud_id": "abc"}, "datacenter", "only with Jira Cloud"),
    ],
)
def test_auth_problems(auth: dict[str, Any], deployment: str, message: str) -> None:
    raw = settings("https://acme.atlassian.net", auth=auth, deployment=deployment)
    with pytest.raises(ConfigError, match=message):
        make_connector(raw, ConnectorContext())


def test_auth_kinds_and_secret_files(tmp_path: Path) -> None:
    (tmp_path / "pat.txt").write_text("pat-from-file\n")
    raw = settings(
        "https://jira.example.com", deployment="datacenter", auth={"pat_file": "pat.txt"}
    )
    dc = make_connector(raw, ConnectorContext(base_dir=str(tmp_path)))
    assert dc.client.api == "/rest/api/2"
    assert "pat-from-file" not in repr(dc.client.http.session.auth)
    oauth = make_connector(
        settings(
            "https://acme.atlassian.net", auth={"oauth_token_env": TOKEN_ENV, "cloud_id": "c1d2"}
        ),
        ConnectorContext(),
    )
    assert oauth.client.http.base_url == OAUTH_GATEWAY + "c1d2"
    assert oauth.settings.url == "https://acme.atlassian.net"  # browse links use the site
    email_env = make_connector(
        settings(
            "https://acme.atlassian.net",
            deployment="cloud",  # said, so nothing asks the (unreachable) site
            auth={"email_env": HOOK_ENV, "token_env": TOKEN_ENV},
        ),
        ConnectorContext(),
    )
    assert email_env.client.http.session.auth.username == SECRET  # type: ignore[union-attr]


def test_bridge_yaml_diagnostics_are_located(tmp_path: Path) -> None:
    (tmp_path / "bridge.yaml").write_text(
        "sources:\n"
        "  - name: jira\n"
        "    connector: jira\n"
        "    url: https://acme.atlassian.net\n"
        "    auth: {email: a@b.c, token: ATATT3xFfGF0}\n"
        "    scope: {jql: project = OPS}\n"
    )
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(tmp_path / "bridge.yaml")
    text = str(caught.value)
    assert "bridge.yaml:5:" in text
    assert "unknown key 'token'" in text


# -- discovery and what is asked for ---------------------------------------------------------------


def test_discovery_resolves_writeback_fields_and_the_search_asks_for_only_whats_needed(
    double: JiraDouble, tmp_path: Path
) -> None:
    connector = connect(double)
    connector.prepare(rules(tmp_path, source="auto"))

    assert connector.account_ids == {"bridge-bot-account"}
    targets = {k: t.id for k, t in connector.write_spec.targets.items()}
    assert targets == {
        "effort.variance_pct": double.field_id("SPI"),
        "work_type": double.field_id("Work type"),
        "phase": double.field_id("Bridge phase"),
    }
    shape = connector.shape
    assert {"summary", "updated"} <= set(shape.fields)
    assert double.field_id("Story point estimate") in shape.fields  # KPI input by name
    assert double.field_id("Start date") in shape.fields
    assert double.field_id("Time to resolution") in shape.fields  # native/auto SLA
    assert "customfield_10022" in shape.fields  # raw.fields.* in a rule
    assert set(targets.values()) <= set(shape.fields)
    assert "description" not in shape.fields
    assert shape.expand == ("changelog",)  # an SLA computed from history
    assert shape.properties == (COMMENT_PROPERTY,)
    assert double.count("GET", "/myself$") == 1
    assert double.count("GET", "/field$") == 1
    connector.prepare(rules(tmp_path, source="auto"))
    # Discovery happens once: bridge's account, the fields, and the select's options.
    assert double.count("GET", "/context") == 2
    assert double.count("GET") == 4


def test_native_only_slas_need_no_changelog(double: JiraDouble, tmp_path: Path) -> None:
    connector = connect(double, writeback={"comment": False})
    connector.prepare(rules(tmp_path, source="native"))
    assert connector.shape.expand == ()
    assert connector.shape.properties == ()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"evm.spi": "SPl"}, "no field 'SPl'; did you mean 'SPI'?"),
        ({"evm.spi": "Labels"}, "of type 'array'"),
        ({"work_type": "SPI"}, "work_type is text, but field 'SPI'"),
        ({"evm.spi": "SPI", "evm.cpi": "customfield_10010"}, "both write field"),
    ],
)
def test_writeback_field_problems(double: JiraDouble, fields: dict[str, str], message: str) -> None:
    connector = connect(double, writeback={"fields": fields})
    with pytest.raises(ConfigError, match=message):
        connector.discover()


def test_an_ambiguous_field_name_lists_the_candidates(double: JiraDouble) -> None:
    second = double.add_field("SPI", "number")
    connector = connect(double, writeback={"fields": {"evm.spi": "SPI"}})
    with pytest.raises(ConfigError) as caught:
        connector.discover()
    assert f"customfield_10010, {second}" in str(caught.value)
    ok = connect(double, writeback={"fields": {"evm.spi": second}})
    ok.discover()
    assert ok.write_spec.targets["evm.spi"].id == second


def test_writeback_of_an_undefined_sla(double: JiraDouble, tmp_path: Path) -> None:
    connector = connect(double, writeback={"fields": {"sla.resolutoin.state": "Work type"}})
    with pytest.raises(ConfigError, match="did you mean 'resolution'"):
        connector.prepare(rules(tmp_path))


# -- pull -----------------------------------------------------------------------------------------


def test_pull_pages_streams_items_and_asks_the_spec_compliant_way(
    double: JiraDouble, tmp_path: Path
) -> None:
    double.bulk_add(
        120,
        fields=lambda i: {
            "issuetype": "Story",
            "created": T0,
            "updated": T0 + timedelta(minutes=i),
        },
    )
    connector = connect(double)
    connector.prepare(rules(tmp_path))
    double.reset_counters()

    items = list(connector.pull())

    assert len(items) == 120
    assert [i.created for i in items] == sorted(i.created for i in items if i.created)
    assert items[0].url == f"{double.url}/browse/{items[0].key}"
    searches = [r for r in double.requests if r.path.endswith("/search/jql")]
    assert len(searches) == math.ceil(120 / 50)  # the double caps pages at 50
    assert all(r.status == 200 for r in double.requests)
    query = searches[0].query
    assert query["jql"] == ["(project = OPS) ORDER BY created ASC, key ASC"]
    assert query["properties"] == [COMMENT_PROPERTY]
    assert query["expand"] == ["changelog"]
    assert len(double.requests) == len(searches)  # no request per issue


def test_incremental_jql_in_the_api_users_time_zone(double: JiraDouble) -> None:
    connector = connect(double)
    connector.discover()
    since = datetime(2024, 5, 1, 22, 59, 59, tzinfo=UTC)
    assert connector.jql(since) == (
        '(project = OPS) AND updated >= "2024-05-01 22:59" ORDER BY created ASC, key ASC'
    )
    connector.time_zone = ZoneInfo("Australia/Sydney")
    assert '"2024-05-02 08:59"' in connector.jql(since)


def test_incremental_pull_returns_what_changed(double: JiraDouble, tmp_path: Path) -> None:
    old = story(double, updated=T0)
    recent = story(double, updated=datetime.now(UTC))
    connector = connect(double)
    connector.prepare(rules(tmp_path))
    keys = [i.key for i in connector.pull(since=datetime.now(UTC) - timedelta(minutes=10))]
    assert keys == [recent]
    assert old not in keys


def test_the_whole_changelog_when_the_search_embeds_only_20(
    double: JiraDouble, tmp_path: Path
) -> None:
    histories = [
        {
            "created": T0 + timedelta(minutes=i),
            "items": [
                {"field": "labels", "fieldId": "labels", "fromString": None, "toString": f"l{i}"}
            ],
        }
        for i in range(25)
    ]
    key = double.add_issue({"issuetype": "Story", "created": T0}, changelog=histories)
    connector = connect(double)
    connector.prepare(rules(tmp_path))

    (item,) = list(connector.pull())

    assert len(item.history) == 25
    assert double.count("GET", r"/changelog$") == 1
    assert item.key == key


def test_a_malformed_issue_is_skipped_not_fatal(double: JiraDouble, tmp_path: Path) -> None:
    story(double)
    bad = story(double, **{"Story point estimate": "many"})
    connector = connect(double)
    connector.prepare(rules(tmp_path))
    items = list(connector.pull())
    assert len(items) == 1
    assert connector.skipped[0][0] == bad


def test_data_center_pages_and_continues_past_the_result_window(tmp_path: Path) -> None:
    with JiraDouble(deployment="datacenter", max_page=50) as dc:
        dc.bulk_add(
            260,
            fields=lambda i: {
                "issuetype": "Story",
                "created": T0 + timedelta(minutes=i // 2),  # two issues per minute
                "updated": T0 + timedelta(minutes=i // 2),
            },
        )
        connector = connect(
            dc, deployment="datacenter", auth={"pat_env": PAT_ENV}, writeback={"fields": {}}
        )
        connector.client.result_window = 100
        connector.prepare(rules(tmp_path))

        keys = [i.key for i in connector.pull()]

        assert sorted(keys) == sorted(dc.keys())
        assert len(keys) == len(set(keys)) == 260
        searches = [r for r in dc.requests if r.path == "/rest/api/2/search"]
        assert all(r.query["maxResults"] == ["100"] for r in searches)
        assert any('created >= "' in r.query["jql"][0] for r in searches)  # continued


def test_fetch_before_prepare_asks_for_everything(
    double: JiraDouble, caplog: pytest.LogCaptureFixture
) -> None:
    history = {"created": T0, "items": [{"field": "status", "fieldId": "status", "toString": "X"}]}
    key = double.add_issue({"issuetype": "Story", "created": T0}, changelog=[history])
    connector = connect(double)  # the webhook path may fetch before any sync prepared it
    item = connector.fetch(key)
    assert len(item.history) == 1
    assert "description" in item.raw["fields"]
    assert "before prepare" in caplog.text


def test_prepare_again_with_the_same_rules_is_free(double: JiraDouble, tmp_path: Path) -> None:
    connector = connect(double)
    rule_set = rules(tmp_path)
    connector.prepare(rule_set)
    shape = connector.shape
    connector.prepare(rule_set)
    assert connector.shape is shape
    assert double.count() == 4  # discovery only (with the select's context and options)


def test_fetch_and_a_deleted_issue(double: JiraDouble, tmp_path: Path) -> None:
    key = story(double)
    connector = connect(double)
    connector.prepare(rules(tmp_path))
    assert connector.fetch(key).type == "Story"
    double.delete_issue(key)
    with pytest.raises(ItemNotFoundError) as caught:
        connector.fetch(key)
    assert caught.value.item_key == key


# -- writes ---------------------------------------------------------------------------------------


def kpis(variance: float) -> KpiResult:
    return KpiResult(values={"effort.variance_pct": variance, "effort.forecast_hours": 15.0})


def plan_and_apply(connector: JiraConnector, key: str, result: KpiResult) -> list[Any]:
    item = connector.fetch(key)
    ops = connector.plan(item, PROJECT, result)
    if ops:
        connector.apply(item, ops)
    return ops


def test_comment_upsert_created_once_then_edited_then_untouched(
    double: JiraDouble, tmp_path: Path
) -> None:
    key = story(double)
    connector = connect(double)
    connector.prepare(rules(tmp_path))
    fid = double.field_id("SPI")

    double.reset_counters()
    ops = plan_and_apply(connector, key, kpis(50.0))
    assert [type(op) for op in ops] == [SetFields, UpsertSummary]
    # Two writes: the comment, then one PUT with the fields and the property that finds it.
    assert writes(double) == [
        ("POST", f"/rest/api/3/issue/{key}/comment"),
        ("PUT", f"/rest/api/3/issue/{key}"),
    ]
    (comment,) = double.comments(key)
    put = next(r for r in double.requests if r.method == "PUT")
    assert put.query == {"notifyUsers": ["false"]}
    assert put.body["fields"] == {
        fid: 50,
        double.field_id("Work type"): "project",
        double.field_id("Bridge phase"): {"value": "execution"},
    }
    assert put.body["properties"][0]["key"] == COMMENT_PROPERTY
    assert put.body["properties"][0]["value"]["id"] == comment["id"]
    assert comment["author"]["accountId"] == "bridge-bot-account"
    digest = double.properties(key)[COMMENT_PROPERTY]["digest"]
    assert double.properties(key)[COMMENT_PROPERTY] == {
        "id": comment["id"],
        "digest": digest,
        "version": 1,
    }
    assert f"bridge summary {digest}" in adf_to_text(comment["body"])

    double.reset_counters()
    ops = plan_and_apply(connector, key, kpis(60.0))  # the summary's variance changes
    assert writes(double) == [
        ("PUT", f"/rest/api/3/issue/{key}/comment/{comment['id']}"),
        ("PUT", f"/rest/api/3/issue/{key}"),
    ]
    assert len(double.comments(key)) == 1
    assert double.issue(key)["fields"][fid] == 60

    double.reset_counters()
    assert plan_and_apply(connector, key, kpis(60.0)) == []
    assert writes(double) == []
    assert double.count() == 1  # the GET of fetch, nothing else


def test_a_comment_a_person_deleted_is_added_again(double: JiraDouble, tmp_path: Path) -> None:
    key = story(double)
    connector = connect(double, writeback={"fields": {}})
    connector.prepare(rules(tmp_path))
    plan_and_apply(connector, key, kpis(50.0))
    # The property now points at a comment that no longer exists (a person deleted it).
    connector.client.set_property(
        key, COMMENT_PROPERTY, {"id": "99999", "digest": "old", "version": 1}
    )
    double.reset_counters()

    plan_and_apply(connect(double, writeback={"fields": {}}), key, kpis(50.0))  # a later run

    changes = [r for r in double.requests if r.method in ("PUT", "POST")]
    assert [(r.method, r.path.rsplit("/", 2)[-2:], r.status) for r in changes] == [
        ("PUT", ["comment", "99999"], 404),
        ("POST", [key, "comment"], 201),
        ("PUT", ["issue", key], 204),  # the property travels with the issue edit
    ]
    assert len(double.comments(key)) == 2  # the first one bridge wrote, and the new one
    new_id = double.comments(key)[-1]["id"]
    assert double.properties(key)[COMMENT_PROPERTY]["id"] == new_id


def test_an_issue_seen_again_with_stale_data_gets_no_second_comment(
    double: JiraDouble, tmp_path: Path
) -> None:
    key = story(double)
    connector = connect(double, writeback={"fields": {}})
    connector.prepare(rules(tmp_path))
    stale = connector.fetch(key)  # read before bridge wrote anything
    ops = connector.plan(stale, PROJECT, kpis(50.0))
    connector.apply(stale, ops)
    double.reset_counters()

    connector.apply(stale, connector.plan(stale, PROJECT, kpis(50.0)))

    assert writes(double) == []
    assert len(double.comments(key)) == 1


def test_a_lost_comment_answer_never_makes_a_second_comment(
    double: JiraDouble, tmp_path: Path, store: SqliteStore
) -> None:
    key = story(double)
    connector = connect(double, store=store, writeback={"fields": {}}, timeout=0.3)
    connector.prepare(rules(tmp_path))
    double.inject_timeout(0.8, method="POST", path=r"/comment$")

    with pytest.raises(ConnectorTransportError):
        plan_and_apply(connector, key, kpis(50.0))
    deadline = time.monotonic() + 5
    while not double.comments(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(double.comments(key)) == 1  # Jira created it; bridge never heard back
    assert COMMENT_PROPERTY not in double.properties(key)

    double.reset_counters()
    plan_and_apply(connector, key, kpis(50.0))

    (comment,) = double.comments(key)
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in double.requests[1:]] == [
        ("GET", "comment"),  # looked for its own comment first
        ("PUT", comment["id"]),
        ("PUT", key),  # the property, with the issue edit
    ]
    assert double.properties(key)[COMMENT_PROPERTY]["id"] == comment["id"]
    assert store.get_memo("jira-test", f"jira-comment:{key}") == ""


def test_a_failed_property_write_is_remembered(
    double: JiraDouble, tmp_path: Path, store: SqliteStore
) -> None:
    key = story(double)
    naps: list[float] = []
    connector = connect(double, store=store, sleep=naps.append, writeback={"fields": {}})
    connector.prepare(rules(tmp_path))
    double.inject(503, times=4, method="PUT", path=rf"/issue/{key}$")

    with pytest.raises(ConnectorTransportError, match="gave up after 4 attempts"):
        plan_and_apply(connector, key, kpis(50.0))
    (comment,) = double.comments(key)
    assert store.get_memo("jira-test", f"jira-comment:{key}") == comment["id"]

    double.reset_counters()
    plan_and_apply(connector, key, kpis(50.0))

    assert len(double.comments(key)) == 1
    assert [r.method for r in double.requests[1:]] == ["PUT", "PUT"]  # edit, then property
    assert double.properties(key)[COMMENT_PROPERTY]["id"] == comment["id"]


def test_a_field_not_on_the_screen_still_lets_the_comment_through(
    spec: OpenApiSpec, tmp_path: Path
) -> None:
    with JiraDouble(spec=spec, not_editable=["SPI"]) as site:
        key = story(site)
        connector = connect(site, writeback={"fields": {"effort.variance_pct": "SPI"}})
        connector.prepare(rules(tmp_path))
        with pytest.raises(RemoteValidationError) as caught:
            plan_and_apply(connector, key, kpis(50.0))
        assert "field 'SPI' (customfield_10010) cannot be set: it is not on the edit screen" in str(
            caught.value
        )
        assert len(site.comments(key)) == 1
        # the comment was still recorded, so the next run edits it instead of adding one
        assert site.properties(key)[COMMENT_PROPERTY]["id"] == site.comments(key)[0]["id"]


def test_writes_to_a_deleted_issue_raise_item_not_found(double: JiraDouble, tmp_path: Path) -> None:
    key = story(double)
    connector = connect(double)
    connector.prepare(rules(tmp_path))
    item = connector.fetch(key)
    ops = connector.plan(item, PROJECT, kpis(10.0))
    double.delete_issue(key)
    with pytest.raises(ItemNotFoundError):
        connector.apply(item, ops)


def test_data_center_comments_are_wiki_strings(tmp_path: Path) -> None:
    with JiraDouble(deployment="datacenter") as dc:
        key = story(dc)
        connector = connect(
            dc,
            deployment="datacenter",
            auth={"pat_env": PAT_ENV},
            writeback={"fields": {"work_type": "Work type"}},
        )
        connector.prepare(rules(tmp_path))
        plan_and_apply(connector, key, kpis(50.0))
        post = next(r for r in dc.requests if r.method == "POST")
        assert post.path == f"/rest/api/2/issue/{key}/comment"
        assert isinstance(post.body["body"], str)
        assert post.body["body"].startswith("*bridge: ")
        dc.reset_counters()
        assert plan_and_apply(connector, key, kpis(50.0)) == []


def test_writes_stay_under_the_per_issue_limit(spec: OpenApiSpec, tmp_path: Path) -> None:
    limits = ((4, 0.3),)
    with JiraDouble(spec=spec, write_limits=limits) as site:
        key = story(site)
        connector = connect(
            site,
            pacer=IssueWritePacer(limits),
            writeback={"fields": {"effort.variance_pct": "SPI"}},
        )
        connector.prepare(rules(tmp_path))
        for n in range(5):
            plan_and_apply(connector, key, kpis(float(n)))
        statuses = [r.status for r in site.requests if r.method in ("PUT", "POST")]
        assert len(statuses) == 10  # the comment, then fields and property in one PUT
        assert 429 not in statuses


def test_issue_write_pacer_waits_per_issue() -> None:
    now = [0.0]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    pacer = IssueWritePacer(((2, 1.0),), margin=0.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(2):
        pacer.acquire("A")
        now[0] += 0.25  # the write takes a while; it counts from its answer
        pacer.release("A")
    pacer.acquire("B")  # another issue is not slowed
    assert naps == []
    pacer.acquire("A")
    assert naps == [0.75]  # until the first write's answer (at 0.25 s) is a window old


# -- webhooks -------------------------------------------------------------------------------------


def test_webhooks_through_the_connector(double: JiraDouble, tmp_path: Path) -> None:
    key = story(double)
    connector = connect(double)
    spi = double.field_id("SPI")

    body, headers = double.webhook(
        "jira:issue_updated",
        key,
        secret=SECRET,
        identifier="delivery-1",
        changelog_items=[{"field": "status", "fieldId": "status", "toString": "Done"}],
    )
    event = connector.parse_webhook(headers, body)
    assert (event.delivery_id, event.keys, event.ignore_reason) == ("delivery-1", (key,), None)

    echo, echo_headers = double.webhook(
        "jira:issue_updated", key, secret=SECRET, user_account_id=double.account_id
    )
    assert connector.parse_webhook(echo_headers, echo).ignore_reason is not None

    human, human_headers = double.webhook(
        "jira:issue_updated",
        key,
        secret=SECRET,
        user_account_id=HUMAN_ACCOUNT_ID,
        changelog_items=[{"field": "SPI", "fieldId": spi, "toString": "1"}],
    )
    assert connector.parse_webhook(human_headers, human).ignore_reason == (
        "only fields bridge writes changed"
    )

    forged = dict(headers, **{"X-Hub-Signature": "sha256=" + "0" * 64})
    with pytest.raises(WebhookSignatureError):
        connector.parse_webhook(forged, body)


def test_a_webhook_signature_is_checked_once_per_delivery(
    double: JiraDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = connect(double)
    body, headers = double.webhook("jira:issue_created", story(double), secret=SECRET)
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    checks = 0
    compare = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        nonlocal checks
        checks += any(x in (mac, mac.hex()) for x in (a, b))  # the double checks auth too
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert connector.parse_webhook(headers, body).kind == "jira:issue_created"
    assert checks == 1


def test_unsigned_webhooks_are_refused_before_any_request(double: JiraDouble) -> None:
    raw = settings(double.url)
    del raw["webhook_secret_env"]
    connector = make_connector(raw, ConnectorContext())
    body, headers = double.webhook("jira:issue_created", story(double))
    double.reset_counters()
    with pytest.raises(WebhookSignatureError, match="no webhook secret is configured"):
        connector.parse_webhook(headers, body)
    assert double.count() == 0
    allowed = make_connector(dict(raw, webhook_unsigned=True), ConnectorContext())
    assert allowed.parse_webhook(headers, body).kind == "jira:issue_created"


def test_factory_builds_a_working_connector(double: JiraDouble, tmp_path: Path) -> None:
    key = story(double)
    connector = make_connector(settings(double.url), ConnectorContext(base_dir=str(tmp_path)))
    try:
        connector.prepare(rules(tmp_path))
        items: list[WorkItem] = list(connector.pull())
        assert [i.key for i in items] == [key]
        assert json.dumps(connector.shape.fields)
    finally:
        connector.close()


# -- the webhook secret is read when a delivery arrives -------------------------------------------

UNSET_HOOK_ENV = "BRIDGE_TEST_JIRA_HOOK_NOT_SET"


def test_a_sync_needs_no_webhook_secret(
    double: JiraDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNSET_HOOK_ENV, raising=False)
    key = story(double)
    raw = settings(double.url, deployment="cloud", webhook_secret_env=UNSET_HOOK_ENV)
    connector = make_connector(raw, ConnectorContext())  # builds: a sync reads no secret
    try:
        connector.prepare(rules(tmp_path))
        assert [i.key for i in connector.pull()] == [key]

        body, headers = double.webhook("jira:issue_updated", key, secret=SECRET)
        double.reset_counters()
        with pytest.raises(ConfigError) as caught:
            connector.parse_webhook(headers, body)
        assert str(caught.value) == (
            "source 'jira-test': webhook_secret_env: the environment variable it names is not "
            "set or empty; set it before starting bridge"
        )
        assert UNSET_HOOK_ENV not in str(caught.value)  # it may be the secret itself
        assert double.count() == 0  # refused before anything else
        with pytest.raises(ConfigError, match="webhook_secret_env"):
            connector.webhook_ready()

        monkeypatch.setenv(UNSET_HOOK_ENV, SECRET)  # the refusal was not remembered
        assert connector.webhook_ready()
        assert connector.parse_webhook(headers, body).keys == (key,)
        forged = dict(headers, **{"X-Hub-Signature": "sha256=" + "0" * 64})
        with pytest.raises(WebhookSignatureError, match="does not match"):
            connector.parse_webhook(forged, body)
        assert SECRET not in str(caught.value)
    finally:
        connector.close()


def test_webhook_ready_says_whether_deliveries_can_be_verified(double: JiraDouble) -> None:
    raw = settings(double.url, deployment="cloud")
    assert make_connector(raw, ConnectorContext()).webhook_ready()
    del raw["webhook_secret_env"]
    assert not make_connector(raw, ConnectorContext()).webhook_ready()
    assert make_connector(dict(raw, webhook_unsigned=True), ConnectorContext()).webhook_ready()


def _serve_config(tmp_path: Path, url: str, hook: str | None) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yaml").write_text(RULES.format(source="computed"))
    secret_line = f"    webhook_secret_env: {hook}\n" if hook else ""
    path = tmp_path / "bridge.yaml"
    path.write_text(
        f"rules: rules\nstore: sqlite://{tmp_path / 'state.db'}\nsources:\n"
        f"  - name: jira\n    connector: jira\n    url: {url}\n    deployment: cloud\n"
        f"    auth: {{email: bot@example.com, token_env: {TOKEN_ENV}}}\n"
        f'    scope: {{jql: "project = OPS"}}\n{secret_line}'
        "  - {name: export, connector: files, path: .}\n"
    )
    return path


def test_serve_checks_every_webhook_secret_before_it_starts(
    double: JiraDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner
    from gunicorn.app.base import BaseApplication

    from bridge.cli import cli
    from bridge.service.app import check_webhook_sources

    started: list[object] = []

    def run(server: object) -> None:  # gunicorn would serve until stopped
        started.append(server)

    monkeypatch.setattr(BaseApplication, "run", run)
    monkeypatch.delenv(UNSET_HOOK_ENV, raising=False)
    path = _serve_config(tmp_path, double.url, UNSET_HOOK_ENV)
    with pytest.raises(ConfigError, match="webhook_secret_env: the environment variable"):
        check_webhook_sources(load_config(path))
    refused = CliRunner().invoke(cli, ["serve", "-c", str(path)])
    assert refused.exit_code == 2
    assert "webhook_secret_env: the environment variable it names" in refused.output
    assert "Traceback" not in refused.output
    assert started == []

    monkeypatch.setenv(UNSET_HOOK_ENV, SECRET)
    assert check_webhook_sources(load_config(path)) == {"jira": True}  # files: no webhooks
    served = CliRunner().invoke(cli, ["serve", "-c", str(path)])
    assert served.exit_code == 0, served.output
    assert "webhooks/<source> (jira)" in served.output
    assert len(started) == 1
    assert SECRET not in served.output

    unsigned = _serve_config(tmp_path, double.url, None)
    assert check_webhook_sources(load_config(unsigned)) == {"jira": False}
    warned = CliRunner().invoke(cli, ["serve", "-c", str(unsigned)])
    assert "configures no webhook secret" in warned.output


# -- deployment: asked of the site when the source does not say -----------------------------------


def test_a_pat_without_deployment_asks_a_data_center_site(tmp_path: Path) -> None:
    with JiraDouble(deployment="datacenter") as dc:
        key = story(dc)
        raw = settings(
            dc.url, auth={"pat_env": PAT_ENV}, writeback={"fields": {"work_type": "Work type"}}
        )
        assert "deployment" not in raw  # as the README writes a Data Center source
        connector = make_connector(raw, ConnectorContext())
        try:
            assert [(r.method, r.path, r.status) for r in dc.requests] == [
                ("GET", "/rest/api/2/serverInfo", 200)
            ]
            assert connector.settings.deployment == "datacenter"
            assert connector.client.api == "/rest/api/2"
            connector.prepare(rules(tmp_path))
            assert [i.key for i in connector.pull()] == [key]
            plan_and_apply(connector, key, kpis(50.0))
            post = next(r for r in dc.requests if r.method == "POST")
            assert post.path == f"/rest/api/2/issue/{key}/comment"
            assert isinstance(post.body["body"], str)  # wiki markup, as Data Center takes
            assert dc.count("GET", "/serverInfo") == 1  # asked once, at the start
        finally:
            connector.close()


def test_a_pat_without_deployment_on_a_cloud_site_is_a_clear_error(double: JiraDouble) -> None:
    raw = settings(double.url, auth={"pat_env": PAT_ENV})
    with pytest.raises(ConfigError) as caught:
        make_connector(raw, ConnectorContext())
    assert str(caught.value) == (
        f"source 'jira-test': {double.url} says it is Jira Cloud, and a personal access token "
        "(pat_env/pat_file) is for Data Center: Jira Cloud takes email + token_env (an API "
        "token)"
    )
    # Cloud refused the PAT; the site said what it is when asked without it.
    asked = [
        (r.path, r.status, any(h.lower() == "authorization" for h in r.headers))
        for r in double.requests
    ]
    assert asked == [("/rest/api/2/serverInfo", 401, True), ("/rest/api/2/serverInfo", 200, False)]


def test_an_explicit_deployment_is_not_asked(double: JiraDouble) -> None:
    with JiraDouble(deployment="datacenter") as dc:
        raw = settings(dc.url, deployment="datacenter", auth={"pat_env": PAT_ENV})
        assert make_connector(raw, ConnectorContext()).client.api == "/rest/api/2"
        assert dc.count() == 0
    cloud = make_connector(settings(double.url, deployment="cloud"), ConnectorContext())
    assert cloud.client.api == "/rest/api/3"
    assert double.count() == 0
    with pytest.raises(ConfigError, match="is for Data Center"):
        make_connector(
            settings(double.url, deployment="cloud", auth={"pat_env": PAT_ENV}), ConnectorContext()
        )
    assert double.count() == 0


def test_basic_auth_without_deployment_asks_too(double: JiraDouble) -> None:
    connector = make_connector(settings(double.url), ConnectorContext())
    assert (connector.settings.deployment, connector.client.api) == ("cloud", "/rest/api/3")
    assert [(r.path, r.status) for r in double.requests] == [("/rest/api/2/serverInfo", 200)]


def test_a_site_that_cannot_be_asked_says_how_to_skip_the_question(double: JiraDouble) -> None:
    double.inject(404, path="serverInfo")
    with pytest.raises(ConnectorError) as caught:
        make_connector(settings(double.url), ConnectorContext())
    assert type(caught.value) is ConnectorError  # not ItemNotFoundError: no item is gone
    message = str(caught.value)
    assert "HTTP 404 — no Jira answers at this url" in message
    assert "set deployment: cloud or deployment: datacenter in the source" in message


def test_a_delivery_without_its_secret_is_refused_and_logged(
    double: JiraDouble,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bridge.service.app import create_app
    from bridge.service.runtime import Runtime

    monkeypatch.delenv(UNSET_HOOK_ENV, raising=False)
    runtime = Runtime(load_config(_serve_config(tmp_path, double.url, UNSET_HOOK_ENV)))
    queued: list[tuple[str, str, bool]] = []
    try:
        app = create_app(runtime, lambda *job: queued.append(job))
        body, headers = double.webhook("jira:issue_updated", story(double), secret=SECRET)
        with caplog.at_level("ERROR", logger="bridge.service"):
            answer = app.test_client().post("/webhooks/jira", data=body, headers=headers)
        assert answer.status_code == 500
        assert answer.get_json() == {
            "error": "bridge is misconfigured for this source; see its log"
        }
        assert "webhook_secret_env: the environment variable it names is not set" in caplog.text
        assert queued == []

        monkeypatch.setenv(UNSET_HOOK_ENV, SECRET)  # exported, the next retry goes through
        assert (
            app.test_client().post("/webhooks/jira", data=body, headers=headers).status_code == 202
        )
        assert SECRET not in caplog.text
    finally:
        runtime.close()


# -- Data Center paging while the results change --------------------------------------------------

OPEN_SCOPE = "project = OPS AND status != Done"


def dc_paging_site(minutes: list[int], page: int) -> JiraDouble:
    """A Data Center site serving pages of ``page``; issue ``i`` created ``minutes[i]``
    minutes after T0 (several issues may share a minute)."""
    site = JiraDouble(deployment="datacenter", max_page=page)
    site.bulk_add(
        len(minutes),
        fields=lambda i: {
            "issuetype": "Story",
            "status": "In Progress",
            "created": T0 + timedelta(minutes=minutes[i], seconds=i % 60),
            "updated": T0 + timedelta(minutes=minutes[i], seconds=i % 60),
        },
    )
    return site


def dc_connect(site: JiraDouble, tmp_path: Path, page: int) -> JiraConnector:
    connector = connect(
        site,
        deployment="datacenter",
        auth={"pat_env": PAT_ENV},
        writeback={"fields": {}},
        scope={"jql": OPEN_SCOPE},
        page_size=page,
    )
    connector.prepare(rules(tmp_path))
    return connector


def pull_changing(
    site: JiraDouble, connector: JiraConnector, at: int, change: Callable[[list[str]], None]
) -> tuple[list[str], set[str]]:
    """The keys one pull hands out, ``change`` (given the keys handed out so far) made just
    before search request ``at`` is answered; and the keys in scope before any change."""
    pulled: list[str] = []
    before = set(site.run_jql(OPEN_SCOPE))

    def hook(number: int) -> None:
        if number == at:
            change(list(pulled))

    site.before_search = hook
    for item in connector.pull():
        pulled.append(item.key)
    return pulled, before


def assert_nothing_skipped(site: JiraDouble, pulled: list[str], before: set[str]) -> None:
    assert len(pulled) == len(set(pulled)), "an issue was handed out twice"
    # Every issue in scope from start to end is read; one that left was read at most once.
    assert set(site.run_jql(OPEN_SCOPE)) & before <= set(pulled)
    assert set(pulled) <= before | set(site.run_jql(OPEN_SCOPE))


@pytest.mark.parametrize(
    "change",
    ["delete a read issue", "delete an unread issue", "a read issue stops matching",
     "an unread issue stops matching", "a new issue", "all at once"],
)  # fmt: skip
def test_data_center_paging_skips_nothing_when_issues_leave_between_pages(
    tmp_path: Path, change: str
) -> None:
    """The reported bug: with ``startAt`` paging, an issue leaving the results after page 1
    moved every later one back a place and the first issue of page 2 was never read."""
    with dc_paging_site(list(range(20)), page=5) as site:
        keys = site.keys()
        connector = dc_connect(site, tmp_path, page=5)

        unread_gone: list[str] = []
        added: list[str] = []

        def between_pages(read: list[str]) -> None:
            assert read == keys[:5]  # page 1 was handed out, page 2 not yet asked for
            if change in ("delete a read issue", "all at once"):
                site.delete_issue(keys[1])
            if change in ("delete an unread issue", "all at once"):
                site.delete_issue(keys[7])
                unread_gone.append(keys[7])
            if change in ("a read issue stops matching", "all at once"):
                site.touch(keys[3], status="Done")
            if change in ("an unread issue stops matching", "all at once"):
                site.touch(keys[9], status="Done")
                unread_gone.append(keys[9])
            if change in ("a new issue", "all at once"):
                new = {"issuetype": "Story", "created": T0 + timedelta(hours=2)}
                added.append(site.add_issue(new))

        pulled, before = pull_changing(site, connector, 2, between_pages)

        assert_nothing_skipped(site, pulled, before)
        assert keys[5] in pulled  # the one startAt paging lost
        assert sorted(pulled) == sorted(set(keys) - set(unread_gone) | set(added))
        searches = [r.query for r in site.requests if r.path == "/rest/api/2/search"]
        assert all(q["maxResults"] == ["5"] for q in searches)
        assert all(q["startAt"] == ["0"] for q in searches[1:])  # one issue a minute: keyset


def test_data_center_search_calls_with_the_anchor(tmp_path: Path) -> None:
    """Each page after the first starts with the last issue handed out: N issues take
    1 + ceil((N - size) / (size - 1)) searches (ceil(N / size) = 4 with startAt here)."""
    with dc_paging_site([i // 3 for i in range(20)], page=5) as site:
        connector = dc_connect(site, tmp_path, page=5)
        keys = [item.key for item in connector.pull()]
        assert keys == site.keys()
        assert site.count("GET", "/rest/api/2/search") == 1 + math.ceil((20 - 5) / 4) == 5


# Three issues in minute 0, seven in minute 1 (straddling pages of 4), one in minute 2,
# six in minute 3, then one a minute.
DENSE = [0] * 3 + [1] * 7 + [2] + [3] * 6 + [4, 5, 6, 7]


@pytest.mark.parametrize("at", [2, 3, 4, 5])
@pytest.mark.parametrize(
    "change",
    ["delete the anchor", "delete an earlier read", "delete the next", "anchor leaves",
     "earlier read leaves", "one joins before", "two new issues", "delete two read"],
)  # fmt: skip
def test_data_center_paging_within_a_crowded_minute(tmp_path: Path, at: int, change: str) -> None:
    """Many issues created in one minute straddle page boundaries: pages go on by position
    within the minute, checked by the anchor; a change among the minute's issues already
    read makes the minute be read again, not an issue skipped or handed out twice."""
    with dc_paging_site(DENSE, page=4) as site:
        keys = site.keys()
        joiner = site.add_issue(
            {"issuetype": "Story", "status": "Done", "created": T0 + timedelta(minutes=3)}
        )
        connector = dc_connect(site, tmp_path, page=4)

        def between_pages(read: list[str]) -> None:
            unread = [k for k in keys if k not in read]
            if change == "delete the anchor":
                site.delete_issue(read[-1])
            elif change == "delete an earlier read":
                site.delete_issue(read[-2])
            elif change == "delete the next" and unread:
                site.delete_issue(unread[0])
            elif change == "anchor leaves":
                site.touch(read[-1], status="Done")
            elif change == "earlier read leaves":
                site.touch(read[-2], status="Done")
            elif change == "one joins before":
                site.touch(joiner, status="In Progress")
            elif change == "two new issues":
                for _ in range(2):
                    site.add_issue({"issuetype": "Story", "created": T0 + timedelta(minutes=7)})
            elif change == "delete two read":
                site.delete_issue(read[-1])
                site.delete_issue(read[0])

        pulled, before = pull_changing(site, connector, at, between_pages)

        assert_nothing_skipped(site, pulled, before)
        assert joiner not in before
        if change == "two new issues":
            assert len(pulled) == len(keys) + 2
