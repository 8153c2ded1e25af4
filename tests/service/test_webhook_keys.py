"""Item keys and delivery ids from webhooks, through the real WSGI receiver: a key that is not
one (``..``, ``/``, NUL, 10,000 characters) is a 400 naming the field; it is never queued,
its delivery id is never recorded, and nothing reaches the ticketing system."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from bridge.config import load_config
from bridge.connectors.jira.client import JiraClient
from bridge.connectors.servicenow.webhooks import sign as sn_sign
from bridge.errors import ItemNotFoundError
from bridge.model import PHASES, WorkItem
from bridge.plugins import load_registry, make_plugin_manager
from bridge.service.app import MAX_ID_CHARS, create_app
from bridge.service.runtime import Runtime
from bridge.store import open_store
from bridge.testing.jira import JiraDouble
from bridge.testing.servicenow import ServiceNowDouble
from tests.service.fake import FakeConnector, Plugin
from tests.service.fake import sign as fake_sign

JIRA_SECRET = "hook-secret"
SN_SECRET = "sn-hook-secret"
SYS_ID = "a9e30c7dc61122760116894de7bcc7bd"
RULES = """bridge: 1
rules:
  - {id: all, when: {field: type, exists: true}, then: {work_type: project}}
default: {work_type: unclassified}
"""

Queued = list[tuple[str, str, bool]]

# What the issue reported, and its neighbours.
BAD_JIRA_KEYS = [
    "..",
    ".",
    "../x",
    "OPS-1/../..",
    "../../myself",
    "%2e%2e",
    "OPS-1%00",
    "OPS-1\x00",
    "OPS-1\x1b[2J",
    "OPS-1\n",
    "X" * 10_000,
]


@dataclass
class Receiver:
    base: str
    queued: Queued
    runtime: Runtime

    def post(self, source: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(
            f"{self.base}/webhooks/{source}", data=body, headers=headers, timeout=10
        )


def serve(runtime: Runtime) -> Iterator[Receiver]:
    queued: Queued = []
    app = create_app(runtime, lambda source, key, deleted: queued.append((source, key, deleted)))
    http = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll interval: shutdown() waits for it, once per test.
    thread = threading.Thread(target=http.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{http.server_port}", queued, runtime)
    finally:
        http.shutdown()
        thread.join()
        runtime.close()


def write_config(tmp_path: Path, source: str) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    path = tmp_path / "bridge.yaml"
    path.write_text(f"rules: rules\nstore: sqlite://{tmp_path / 'state.db'}\nsources:\n{source}")
    return path


# -- Jira ---------------------------------------------------------------------------------------


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraDouble]:
    monkeypatch.setenv("KEYS_JIRA_TOKEN", "token")
    monkeypatch.setenv("KEYS_JIRA_HOOK", JIRA_SECRET)
    with JiraDouble() as double:
        double.add_field("Bridge phase", "select", options=list(PHASES))
        double.bulk_add(2, fields=lambda i: {"issuetype": "Story", "status": "To Do"})
        yield double


@pytest.fixture
def jira(site: JiraDouble, tmp_path: Path) -> Iterator[Receiver]:
    path = write_config(
        tmp_path,
        f"""  - name: jira
    connector: jira
    url: {site.url}
    auth: {{email: bot@example.com, token_env: KEYS_JIRA_TOKEN}}
    scope: {{jql: "project = OPS"}}
    writeback:
      fields: {{work_type: Work type, phase: Bridge phase}}
    webhook_secret_env: KEYS_JIRA_HOOK
""",
    )
    yield from serve(Runtime(load_config(path)))


def jira_delivery(site: JiraDouble, identifier: str, **issue: Any) -> tuple[bytes, dict[str, str]]:
    """A signed jira:issue_updated delivery for the first issue, its issue object changed."""
    body, headers = site.webhook(
        "jira:issue_updated", site.keys()[0], secret=JIRA_SECRET, identifier=identifier
    )
    doc = json.loads(body)
    for name, value in issue.items():
        if value is None:
            doc["issue"].pop(name, None)
        else:
            doc["issue"][name] = value
    raw = json.dumps(doc).encode()
    digest = hmac.new(JIRA_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {**headers, "X-Hub-Signature": f"sha256={digest}"}


def issue_requests(site: JiraDouble) -> list[str]:
    return [f"{r.method} {r.path}" for r in site.requests if "/issue" in r.path]


def test_bad_jira_keys_are_refused_and_go_nowhere(site: JiraDouble, jira: Receiver) -> None:
    for n, key in enumerate(BAD_JIRA_KEYS):
        body, headers = jira_delivery(site, f"bad-{n}", key=key)
        response = jira.post("jira", body, headers)
        assert response.status_code == 400, (key, response.text)
        error = response.json()["error"]
        assert error.startswith("issue.key "), error
        assert "an issue key like PROJECT-123" in error
        assert len(error) < 400
    # The first verified delivery lets the connector discover bridge's account and fields
    # (GET /myself, /field ...); no request ever named an issue.
    assert issue_requests(site) == []
    assert {r.method for r in site.requests} <= {"GET"}
    assert jira.queued == []

    site.reset_counters()  # discovery done: now not a single request
    for n, (name, value) in enumerate([("key", ".."), ("id", "../.."), ("id", "1\x00")]):
        body, headers = jira_delivery(site, f"more-{n}", **{"key": None, name: value})
        response = jira.post("jira", body, headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"].startswith(f"issue.{name} ")
    assert site.requests == []
    assert jira.queued == []

    # None of the refused deliveries was recorded: Jira's retry of one is not a "duplicate".
    key = site.keys()[0]
    body, headers = jira_delivery(site, "bad-0", key=key.lower())
    response = jira.post("jira", body, headers)
    assert (response.status_code, response.json()) == (202, {"status": "queued", "keys": [key]})
    assert jira.queued == [("jira", key, False)]  # upper-cased, as Jira's keys are
    assert site.requests == []  # the receiver only queues


@pytest.mark.parametrize("identifier", ["d-1\x00", "d\x1b[31m", "x" * 300])
def test_bad_jira_delivery_ids_are_refused(
    site: JiraDouble, jira: Receiver, identifier: str
) -> None:
    body, headers = jira_delivery(site, identifier)
    response = jira.post("jira", body, headers)
    assert response.status_code == 400, response.text
    assert "X-Atlassian-Webhook-Identifier" in response.json()["error"]
    assert jira.queued == []
    assert issue_requests(site) == []


def test_the_worker_never_sends_a_bad_key_to_jira(site: JiraDouble, jira: Receiver) -> None:
    connector = jira.runtime.connector("jira")
    connector.fetch(site.keys()[0])  # warm: discovery and one good read
    site.reset_counters()
    for key in [*BAD_JIRA_KEYS, "", "OPS-1/comment"]:
        with pytest.raises(ItemNotFoundError, match="no request was made") as caught:
            connector.fetch(key)
        assert caught.value.item_key == key
    assert site.requests == []
    item: WorkItem = connector.fetch(site.keys()[0].lower())  # Jira would take it as well
    assert item.key == site.keys()[0]


def test_quoting_alone_does_not_stop_dot_segments(site: JiraDouble) -> None:
    """Why the client refuses '.' and '..' itself: quote() leaves dots alone and requests
    (urllib3) resolves dot segments, so issue/.. was GET /rest/api/3/ with credentials."""
    api = f"{site.url}/rest/api/3"
    assert requests.Request("GET", f"{api}/issue/..").prepare().url == f"{api}/"
    assert requests.Request("GET", f"{api}/issue/../comment").prepare().url == f"{api}/comment"

    client = JiraClient(base_url=site.url, auth=None)
    try:
        for key in ("", ".", "..", "..."):
            with pytest.raises(ItemNotFoundError, match="is not an issue key or id"):
                client.issue(key, fields=["summary"])
            with pytest.raises(ItemNotFoundError):
                list(client.comments(key))
        assert site.requests == []
        # Anything else stays one encoded path segment after the request is prepared.
        for key, segment in [
            ("OPS-1/../..", "OPS-1%2F..%2F.."),
            ("../x", "..%2Fx"),
            ("%2e%2e", "%252e%252e"),
            ("OPS-1\x00", "OPS-1%00"),
        ]:
            path = client._issue_path(key, "/comment")
            prepared = requests.Request("GET", f"{site.url}{path}").prepare().url
            assert prepared == f"{site.url}{client.api}/issue/{segment}/comment"
    finally:
        client.close()


# -- ServiceNow ---------------------------------------------------------------------------------


@pytest.fixture
def instance(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceNowDouble]:
    monkeypatch.setenv("KEYS_SN_PASSWORD", "secret")
    monkeypatch.setenv("KEYS_SN_HOOK", SN_SECRET)
    with ServiceNowDouble() as double:
        double.add_table("incident", ("u_work_type",))
        yield double


@pytest.fixture
def servicenow(instance: ServiceNowDouble, tmp_path: Path) -> Iterator[Receiver]:
    path = write_config(
        tmp_path,
        f"""  - name: sn
    connector: servicenow
    url: {instance.url}
    auth: {{user: bridge.integration, password_env: KEYS_SN_PASSWORD}}
    scope: {{tables: {{incident: ""}}}}
    writeback: {{fields: {{work_type: u_work_type}}}}
    webhook_secret_env: KEYS_SN_HOOK
""",
    )
    yield from serve(Runtime(load_config(path)))


def sn_delivery(**fields: Any) -> tuple[bytes, dict[str, str]]:
    doc = {"table": "incident", "sys_id": SYS_ID, "sys_mod_count": "7", "operation": "update"}
    doc.update(fields)
    body = json.dumps(doc).encode()
    return body, {
        "Content-Type": "application/json",
        "X-Bridge-Signature": sn_sign(SN_SECRET.encode(), body),
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("table", "..", "table '..' is not a table name like incident"),
        ("table", "../x", "table '../x' is not a table name"),
        ("table", "incident/../sys_user", "is not a table name"),
        ("table", "%2e%2e", "is not a table name"),
        ("table", "incident\x00", "is not a table name"),
        ("table", "x" * 10_000, "(10000 characters) is not a table name"),
        ("sys_id", "..", "sys_id '..' is not a 32-character sys_id"),
        ("sys_id", f"{SYS_ID}/..", "is not a 32-character sys_id"),
        ("sys_id", f"{SYS_ID[:-1]}\x00", "is not a 32-character sys_id"),
        ("sys_id", "a" * 10_000, "is not a 32-character sys_id"),
        ("sys_mod_count", "1" * 5_000, "is not a whole number"),  # was a 500
        ("sys_mod_count", "7\x00", "is not a whole number"),
    ],
)
def test_bad_servicenow_keys_are_refused_and_go_nowhere(
    instance: ServiceNowDouble, servicenow: Receiver, field: str, value: str, message: str
) -> None:
    body, headers = sn_delivery(**{field: value})
    response = servicenow.post("sn", body, headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith(f"{field} ")
    assert message in error
    assert len(error) < 400
    assert servicenow.queued == []
    assert instance.requests == []

    # Not recorded: the same record and count, well formed, is queued rather than a duplicate.
    body, headers = sn_delivery()
    response = servicenow.post("sn", body, headers)
    assert response.json() == {"status": "queued", "keys": [f"incident:{SYS_ID}"]}
    assert servicenow.queued == [("sn", f"incident:{SYS_ID}", False)]
    assert instance.requests == []


def test_a_servicenow_table_out_of_scope_is_ignored(
    instance: ServiceNowDouble, servicenow: Receiver
) -> None:
    body, headers = sn_delivery(table="sc_task")
    response = servicenow.post("sn", body, headers)
    assert (response.status_code, response.json()["status"]) == (200, "ignored")
    assert servicenow.queued == []
    assert instance.requests == []


# -- any connector: the receiver's own check ----------------------------------------------------


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Receiver]:
    """A third-party connector (tests/service/fake.py) that passes its keys on unchecked."""
    path = write_config(tmp_path, "  - {name: desk, connector: fake}\n")
    registry = load_registry(make_plugin_manager(load_entrypoints=False, extra_plugins=[Plugin()]))
    config = load_config(path, registry)
    FakeConnector.items = {"D-1": WorkItem("D-1", "fake", type="Incident")}
    FakeConnector.written = {}
    FakeConnector.fail_next = []
    store = open_store(f"sqlite://{tmp_path / 'state.db'}")
    yield from serve(Runtime(config, store=store, registry=registry))


def fake_post(desk: Receiver, key: str, delivery: str) -> requests.Response:
    body = json.dumps({"key": key}).encode()
    headers = {"X-Fake-Signature": fake_sign(body), "X-Delivery": delivery}
    return desk.post("desk", body, headers)


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("..", "has a '.' or '..' path segment"),
        (".", "has a '.' or '..' path segment"),
        ("a/../b", "has a '.' or '..' path segment"),
        ("%2e%2e/x", "has a '.' or '..' path segment"),
        ("D-1\x00", "contains control characters"),
        ("D-1\u0085", "contains control characters"),
        ("", "is empty"),
        (" ", "is empty"),
        ("D" * (MAX_ID_CHARS + 1), f"at most {MAX_ID_CHARS}"),
    ],
)
def test_the_receiver_refuses_unsafe_keys_from_any_connector(
    desk: Receiver, key: str, why: str
) -> None:
    response = fake_post(desk, key, "d-1")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith("the item key ")
    assert why in error
    assert len(error) < 400
    assert desk.queued == []
    again = fake_post(desk, "D-1", "d-1")  # the refused delivery was not recorded
    assert (again.status_code, desk.queued) == (202, [("desk", "D-1", False)])


@pytest.mark.parametrize(
    ("delivery", "why"),
    [
        ("d-1\x00", "contains control characters"),
        ("d\x1b[31m", "contains control characters"),
        ("d\t", "contains control characters"),
        ("d" * (MAX_ID_CHARS + 1), f"at most {MAX_ID_CHARS}"),
    ],
)
def test_the_receiver_refuses_unsafe_delivery_ids_from_any_connector(
    desk: Receiver, delivery: str, why: str
) -> None:
    response = fake_post(desk, "D-1", delivery)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error.startswith("the delivery id ")
    assert why in error
    assert desk.queued == []


def test_ordinary_keys_and_ids_pass_the_receivers_check(desk: Receiver) -> None:
    for n, key in enumerate(["D-1", "incident:" + SYS_ID, "owner/repo#12", "a.b", "D" * 512]):
        response = fake_post(desk, key, f"{n}-8b7c1a9e-3f5d-4e2a-9c1b-0a2b3c4d5e6f")
        assert response.status_code == 202, (key, response.text)
    assert len(desk.queued) == 5
