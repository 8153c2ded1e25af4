"""Hostile deliveries to the webhook receiver: the corpus under
tests/data/hostile/webhooks/ (each request and the status it must get) through a real WSGI
server, and arbitrary signed bodies through the Flask test client. Whatever arrives, the
answer is never a 5xx and the log never holds a traceback."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from werkzeug.serving import make_server

from bridge.config import load_config
from bridge.model import PHASES
from bridge.service.app import create_app
from bridge.service.runtime import Runtime
from bridge.testing.jira import JiraDouble

CORPUS = Path(__file__).parents[1] / "data" / "hostile" / "webhooks"
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text("utf-8"))["cases"]
SECRETS = {"jira": "hostile-jira-hook", "servicenow": "hostile-servicenow-hook"}
SIGNATURE_HEADERS = {"jira": "X-Hub-Signature", "servicenow": "X-Bridge-Signature"}
RULES = """bridge: 1
rules:
  - {id: incidents, when: {field: type, equals: Incident}, then: {work_type: service}}
default: {work_type: unclassified}
"""

Queued = list[tuple[str, str, bool]]


@dataclass
class Receiver:
    app: Flask
    queued: Queued


@pytest.fixture(scope="module")
def site() -> Iterator[JiraDouble]:
    with pytest.MonkeyPatch.context() as env, JiraDouble() as double:
        env.setenv("HOSTILE_JIRA_TOKEN", "token")
        env.setenv("HOSTILE_SN_PASSWORD", "password")
        env.setenv("HOSTILE_JIRA_HOOK", SECRETS["jira"])
        env.setenv("HOSTILE_SN_HOOK", SECRETS["servicenow"])
        double.add_field("Bridge phase", "select", options=list(PHASES))
        yield double


@pytest.fixture
def receiver(site: JiraDouble, tmp_path: Path) -> Iterator[Receiver]:
    """A receiver with a store of its own: a body one case sent is news to the next."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    path = tmp_path / "bridge.yaml"
    path.write_text(f"""rules: rules
store: sqlite://{tmp_path / "state.db"}
sources:
  - name: jira
    connector: jira
    url: {site.url}
    auth: {{email: bot@example.com, token_env: HOSTILE_JIRA_TOKEN}}
    scope: {{jql: "project = OPS"}}
    writeback: {{fields: {{work_type: Work type, phase: Bridge phase}}}}
    webhook_secret_env: HOSTILE_JIRA_HOOK
  - name: servicenow
    connector: servicenow
    url: http://127.0.0.1:9
    auth: {{user: bridge.integration, password_env: HOSTILE_SN_PASSWORD}}
    scope: {{tables: {{incident: ""}}}}
    webhook_secret_env: HOSTILE_SN_HOOK
""")
    runtime = Runtime(load_config(path))
    queued: Queued = []
    app = create_app(
        runtime,
        lambda source, key, deleted: queued.append((source, key, deleted)),
        metrics=CollectorRegistry(),
    )
    try:
        yield Receiver(app, queued)
    finally:
        runtime.close()


@pytest.fixture
def base_url(receiver: Receiver) -> Iterator[str]:
    """The receiver behind a real WSGI server (chunked bodies, Content-Length, sockets)."""
    http = make_server("127.0.0.1", 0, receiver.app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join()


def body_of(spec: str | dict[str, Any]) -> bytes:
    if isinstance(spec, str):
        return (CORPUS / "bodies" / spec).read_bytes()
    times = int(spec["times"])
    text = (
        spec.get("before", "")
        + spec.get("repeat", "") * times
        + spec.get("middle", "")
        + spec.get("close", "") * times
        + spec.get("after", "")
    )
    return text.encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(case: dict[str, Any], body: bytes, extra: dict[str, str] | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    sign = case.get("sign")
    if sign:
        source = case["source"] if case["source"] in SECRETS else "jira"
        secret = SECRETS[source] if sign is True else str(sign)
        headers[SIGNATURE_HEADERS[source]] = signature(secret, body)
    headers.update(extra or {})
    return headers


def send(base: str, case: dict[str, Any], body: bytes, extra: dict[str, str] | None) -> Any:
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    return requests.post(
        f"{base}/webhooks/{case['source']}",
        data=chunks() if case.get("chunked") else body,
        headers=headers_for(case, body, extra),
        timeout=60,
    )


def tracebacks(records: list[logging.LogRecord], stderr: str) -> list[str]:
    """Tracebacks in the log records, and any a server thread printed."""
    found = [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.exc_info or r.exc_text or "Traceback" in r.getMessage()
    ]
    return found + (["stderr: " + stderr] if "Traceback" in stderr else [])


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_the_receiver_answers_each_hostile_delivery_as_the_corpus_says(
    case: dict[str, Any],
    receiver: Receiver,
    base_url: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = body_of(case["body"])
    with caplog.at_level(logging.INFO):
        answer = send(base_url, case, body, case.get("headers"))
        again = case.get("again")
        repeated = send(base_url, case, body, again["headers"]) if again else None

    assert answer.status_code == case["expect"], answer.text[:500]
    if "says" in case:
        assert answer.json()["status"] == case["says"]
    if again:
        assert repeated is not None
        assert repeated.status_code == again["expect"], repeated.text[:500]
        assert repeated.json()["status"] == again["says"]
    if answer.status_code >= 400:
        assert receiver.queued == []
        assert set(answer.json()) == {"error"}
    if answer.status_code == 404:
        assert "jira" not in answer.text
        assert "servicenow" not in answer.text
    assert tracebacks(caplog.records, capsys.readouterr().err) == []


def test_the_corpus_covers_what_the_issue_lists() -> None:
    names = " | ".join(case["name"] for case in CASES)
    for kind in (
        "unsigned",
        "signed with another secret",
        "oversized",
        "chunked oversized",
        "not JSON",
        "nested 100,000 deep",
        "control characters in the object keys",
        "an unknown source",
        "a replayed body with a fresh delivery id",
    ):
        assert kind in names
    assert {case["expect"] for case in CASES} == {202, 400, 401, 404, 413}


# -- arbitrary signed bodies ---------------------------------------------------------------------

_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
_json = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.one_of(
    st.from_regex(r"[A-Z][A-Z0-9_]{0,5}-[1-9][0-9]{0,5}", fullmatch=True),
    st.from_regex(r"[1-9][0-9]{0,8}", fullmatch=True),
    st.text(max_size=40),
    st.integers(),
    _json,
)
_jira = st.fixed_dictionaries(
    {
        "webhookEvent": st.sampled_from(
            [
                "jira:issue_created",
                "jira:issue_updated",
                "jira:issue_deleted",
                "comment_created",
                "comment_deleted",
                "worklog_updated",
            ]
        )
        | st.text(max_size=20)
        | _json
    },
    optional={
        "issue": st.fixed_dictionaries({}, optional={"key": _keys, "id": _keys}) | _json,
        "user": st.fixed_dictionaries(
            {}, optional={"accountId": st.text(max_size=30) | _json, "self": st.text(max_size=60)}
        )
        | _json,
        "comment": st.fixed_dictionaries(
            {},
            optional={
                "self": st.builds(
                    "https://acme.atlassian.net/rest/api/2/issue/{}/comment/1".format,
                    st.text(max_size=30),
                )
                | _json,
                "author": _json,
            },
        )
        | _json,
        "changelog": st.fixed_dictionaries(
            {}, optional={"items": st.lists(st.dictionaries(st.text(max_size=10), _json))}
        )
        | _json,
    },
)
_servicenow = st.fixed_dictionaries(
    {},
    optional={
        "table": st.sampled_from(["incident", "problem", "pm_project"])
        | st.text(max_size=20)
        | _json,
        "sys_id": st.from_regex(r"[0-9a-fA-F]{32}", fullmatch=True) | st.text(max_size=40) | _json,
        "sys_mod_count": st.integers() | st.text(max_size=30) | _json,
        "operation": st.sampled_from(["insert", "update", "delete", " UPDATE "]) | _json,
        "sys_updated_on": st.sampled_from(["2026-07-01 09:30:00", "yesterday"])
        | st.text(max_size=30)
        | _json,
        "sys_updated_by": st.text(max_size=20) | _json,
        "changed_fields": st.lists(st.text(max_size=12), max_size=4) | st.text(max_size=40) | _json,
    },
)


@st.composite
def _encoded(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> bytes:
    text = json.dumps(draw(documents), ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate makes it invalid UTF-8


_bodies = st.one_of(
    st.binary(max_size=2048),
    _encoded(_json),
    _encoded(_jira),
    _encoded(_servicenow),
)


def test_arbitrary_signed_bodies_never_get_a_5xx_or_leave_a_traceback(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    client = receiver.app.test_client()

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        source=st.sampled_from(sorted(SECRETS)),
        body=_bodies,
        delivery=st.none()
        | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    )
    def deliver(source: str, body: bytes, delivery: str | None) -> None:
        headers = {SIGNATURE_HEADERS[source]: signature(SECRETS[source], body)}
        if delivery is not None:
            headers["X-Atlassian-Webhook-Identifier"] = delivery
        caplog.clear()
        answer = client.post(f"/webhooks/{source}", data=body, headers=headers)
        assert answer.status_code < 500, (answer.status_code, answer.get_data(as_text=True))
        assert answer.status_code in (200, 202, 400), answer.get_data(as_text=True)
        assert tracebacks(caplog.records, capsys.readouterr().err) == []

    with caplog.at_level(logging.INFO):
        deliver()
