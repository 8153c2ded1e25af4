"""Business Rule deliveries: signatures (HMAC, shared secret), payloads, dedupe keys, echoes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bridge.connectors.base import ConnectorContext
from bridge.connectors.servicenow.connector import ServiceNowConnector, parse_settings
from bridge.connectors.servicenow.webhooks import (
    MAX_BODY_BYTES,
    SignatureFormat,
    WebhookConfig,
    parse_delivery,
    record_key,
    sign,
    verify_delivery,
)
from bridge.errors import (
    ConfigError,
    ItemNotFoundError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from bridge.rules.ast import RuleSet
from bridge.testing.servicenow import ServiceNowDouble
from tests.connectors.servicenow.conftest import ConnectorFactory, incident, settings

SECRET = b"0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SYS_ID = "a9e30c7dc61122760116894de7bcc7bd"
CONFIG = WebhookConfig(
    secret=SECRET,
    tables=frozenset(("incident", "pm_project")),
    integration_user="bridge.integration",
    bridge_fields=frozenset(("u_work_type", "u_rule", "work_notes")),
)


def body(**fields: Any) -> bytes:
    doc: dict[str, Any] = {
        "table": "incident",
        "sys_id": SYS_ID,
        "sys_updated_on": "2026-07-01 09:30:00",
        "sys_mod_count": "7",
        "operation": "update",
    }
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def signed(payload: bytes, secret: bytes = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Bridge-Signature": sign(secret, payload)}


# ---- signatures ----------------------------------------------------------------------------


def test_a_good_hex_signature() -> None:
    payload = body()
    event = parse_delivery(signed(payload), payload, CONFIG)

    assert event.keys == (f"incident:{SYS_ID}",)
    assert event.delivery_id == f"{SYS_ID}:7"
    assert event.kind == "incident.update"
    assert not event.deleted
    assert event.ignore_reason is None


def test_a_base64_signature_as_generate_mac_returns_it() -> None:
    """GlideCertificateEncryption.generateMac returns the MAC in Base64; bridge takes it."""
    payload = body()
    mac = base64.b64encode(hmac.new(SECRET, payload, hashlib.sha256).digest()).decode()

    event = parse_delivery({"x-bridge-signature": f"sha256={mac}"}, payload, CONFIG)

    assert event.keys == (f"incident:{SYS_ID}",)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "no X-Bridge-Signature"),
        ({"X-Bridge-Signature": sign(b"another secret", body())}, "does not match the body"),
        ({"X-Bridge-Signature": "sha1=" + "0" * 40}, "uses 'sha1'; bridge accepts only sha256"),
        ({"X-Bridge-Signature": "0" * 63}, "malformed"),  # a bare MAC is allowed, not this
        ({"X-Bridge-Signature": "0" * 64}, "does not match the body"),
        ({"X-Bridge-Signature": "sha256=zz"}, "malformed"),
        ({"X-Bridge-Token": SECRET.decode()}, "no X-Bridge-Signature"),  # token not configured
    ],
)
def test_bad_signatures(headers: dict[str, str], message: str) -> None:
    with pytest.raises(WebhookSignatureError, match=message):
        parse_delivery(headers, body(), CONFIG)


def test_a_changed_body_fails_its_signature() -> None:
    headers = signed(body())
    with pytest.raises(WebhookSignatureError, match="does not match"):
        parse_delivery(headers, body(sys_mod_count="8"), CONFIG)


def test_the_signature_is_checked_before_the_body_is_parsed() -> None:
    with pytest.raises(WebhookSignatureError):
        parse_delivery({"X-Bridge-Signature": "sha256=" + "0" * 64}, b"not json", CONFIG)


def test_the_shared_secret_header() -> None:
    config = WebhookConfig(token=b"s3cret-token", tables=frozenset(("incident",)))

    event = parse_delivery({"X-Bridge-Token": "s3cret-token"}, body(), config)
    assert event.keys == (f"incident:{SYS_ID}",)
    with pytest.raises(WebhookSignatureError, match="X-Bridge-Token does not match"):
        parse_delivery({"X-Bridge-Token": "guess"}, body(), config)
    with pytest.raises(WebhookSignatureError, match=r"no X-Bridge-Token \(the shared secret\)"):
        parse_delivery({}, body(), config)


def test_either_header_when_both_are_configured() -> None:
    config = WebhookConfig(secret=SECRET, token=b"tok")
    payload = body()
    verify_delivery(signed(payload), payload, config)
    verify_delivery({"X-Bridge-Token": "tok"}, payload, config)
    with pytest.raises(WebhookSignatureError, match=r"X-Bridge-Signature .* or X-Bridge-Token"):
        verify_delivery({}, payload, config)


def test_nothing_configured_refuses_everything() -> None:
    with pytest.raises(WebhookSignatureError, match="no webhook secret: set webhook_secret_env"):
        verify_delivery({"X-Bridge-Token": "x"}, body(), WebhookConfig())


# ---- payloads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object"),
        (body(table=None), "no 'table'"),
        (body(table="incident/../sys_user"), "not a table name"),
        (body(sys_id="123"), "not a 32-character sys_id"),
        (body(operation="merge"), "not one of insert, update, delete"),
        (body(sys_mod_count="seven"), "not a whole number"),
        (body(sys_mod_count=True), "not a whole number"),
        (body(sys_updated_on="01/07/2026 09:30"), "is not a ServiceNow date-time"),
        (body(sys_updated_by=42), "not a user name"),
        (body(changed_fields={"state": 1}), "changed_fields must be a list"),
        (body(changed_fields=["state; drop"]), "not fields"),
        (b"{" + b" " * MAX_BODY_BYTES + b"}", "limit"),
    ],
)
def test_bad_payloads(payload: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=message):
        parse_delivery(signed(payload), payload, CONFIG)


def test_a_signed_body_nested_30000_deep_under_the_size_cap_is_a_payload_error() -> None:
    hostile = Path(__file__).parents[2] / "data" / "hostile" / "exports" / "webhooks"
    payload = (hostile / "servicenow-nested-30k.json").read_bytes()
    assert len(payload) < MAX_BODY_BYTES  # the parser, not the size cap, meets it

    with pytest.raises(WebhookPayloadError) as caught:
        parse_delivery(signed(payload), payload, CONFIG)

    assert str(caught.value) == "the body is nested too deeply to be a ServiceNow delivery"


def test_delete_insert_and_missing_counts() -> None:
    deleted = body(operation="delete")
    event = parse_delivery(signed(deleted), deleted, CONFIG)
    assert event.deleted
    assert event.delivery_id == f"{SYS_ID}:7:delete"
    assert event.ignore_reason is None

    inserted = body(operation="INSERT", sys_mod_count=0, sys_id=SYS_ID.upper())
    event = parse_delivery(signed(inserted), inserted, CONFIG)
    assert (event.kind, event.delivery_id) == ("incident.insert", f"{SYS_ID}:0")

    bare = body(sys_mod_count=None, sys_updated_on=None)
    assert parse_delivery(signed(bare), bare, CONFIG).delivery_id is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"table": "sc_task"}, "table sc_task is not in this source's scope"),
        ({"sys_updated_by": "bridge.integration"}, "bridge's own user"),
        ({"changed_fields": ["u_work_type", "work_notes", "sys_mod_count"]}, "only fields bridge"),
        ({"changed_fields": "u_rule,sys_updated_on"}, "only fields bridge writes changed (u_rule)"),
        ({"changed_fields": ["sys_updated_on"]}, "only system fields"),
    ],
)
def test_ignored_deliveries(fields: dict[str, Any], reason: str) -> None:
    payload = body(**fields)
    event = parse_delivery(signed(payload), payload, CONFIG)
    assert event.ignore_reason is not None
    assert reason in event.ignore_reason


@pytest.mark.parametrize(
    "fields",
    [
        {"sys_updated_by": "jane.doe"},
        {"changed_fields": ["state", "u_work_type"]},
        {"operation": "delete", "sys_updated_by": "bridge.integration"},
    ],
)
def test_real_changes_are_not_ignored(fields: dict[str, Any]) -> None:
    payload = body(**fields)
    assert parse_delivery(signed(payload), payload, CONFIG).ignore_reason is None


# ---- how the outbound message signs (webhook_signature) --------------------------------------


def formatted(**section: Any) -> WebhookConfig:
    return replace(CONFIG, signature=SignatureFormat.from_settings(section, source="sn"))


def b64(payload: bytes, secret: bytes = SECRET) -> str:
    return base64.b64encode(hmac.new(secret, payload, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("encoding", ["hex", "base64"])
@pytest.mark.parametrize("prefix", ["sha256=", ""])
def test_by_default_hex_or_base64_with_or_without_the_label(encoding: Any, prefix: str) -> None:
    payload = body()
    value = sign(SECRET, payload, encoding=encoding, prefix=prefix)
    assert parse_delivery({"X-Bridge-Signature": value}, payload, CONFIG).keys


def test_another_header_in_base64_without_a_label() -> None:
    """An outbound REST message that sends ``X-Signature: <Base64 MAC>``."""
    config = formatted(header="X-Signature", encoding="base64", prefix="")
    payload = body()
    assert parse_delivery({"x-signature": b64(payload)}, payload, config).keys

    with pytest.raises(WebhookSignatureError) as caught:  # bridge's default header is ignored
        parse_delivery(signed(payload), payload, config)
    assert str(caught.value) == (
        "the delivery is not authenticated: no X-Signature (<MAC>) header "
        "(webhook_signature.header)"
    )
    with pytest.raises(WebhookSignatureError, match=r"webhook_signature\.encoding"):
        parse_delivery({"X-Signature": sign(SECRET, payload, prefix="")}, payload, config)
    with pytest.raises(WebhookSignatureError, match="expected the MAC alone"):
        parse_delivery({"X-Signature": "sha256=" + b64(payload)}, payload, config)
    with pytest.raises(WebhookSignatureError, match="does not match the body"):
        parse_delivery({"X-Signature": b64(payload, b"other")}, payload, config)


def test_hex_only_and_the_label_required() -> None:
    config = formatted(encoding="hex", prefix="sha256=")
    payload = body()
    assert parse_delivery(signed(payload), payload, config).keys
    with pytest.raises(WebhookSignatureError, match="64 hex digits"):
        parse_delivery({"X-Bridge-Signature": "sha256=" + b64(payload)}, payload, config)
    with pytest.raises(WebhookSignatureError, match=r"webhook_signature\.prefix"):
        parse_delivery({"X-Bridge-Signature": sign(SECRET, payload, prefix="")}, payload, config)


@pytest.mark.parametrize(
    "value",
    [
        "sha256=" + "B" * 43,  # 43 characters whose last one leaves bits over
        "sha256=" + "A" * 42 + "==",  # 31 bytes
        "sha256=" + "*" * 44,
        "sha256=" + "é" * 44,
        "sha256=====",
        "sha256=" + "0" * 65,
        "\x00\x01",
    ],
)
def test_a_malformed_mac_is_a_signature_error(value: str) -> None:
    with pytest.raises(WebhookSignatureError):
        parse_delivery({"X-Bridge-Signature": value}, b"not even json", CONFIG)


def test_the_custom_signature_is_still_checked_before_the_body() -> None:
    config = formatted(header="X-Signature", encoding="base64", prefix="")
    with pytest.raises(WebhookSignatureError):
        parse_delivery({"X-Signature": "A" * 43 + "="}, b"not json", config)


def test_the_token_header_cannot_carry_the_signature() -> None:
    with pytest.raises(ConfigError, match="cannot be X-Bridge-Token"):
        SignatureFormat.from_settings({"header": "x-bridge-token"}, source="sn")
    assert SignatureFormat.from_settings(None, source="sn") == SignatureFormat()


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ({"encoding": "b64"}, "webhook_signature/encoding"),
        ({"header": "X Signature"}, "webhook_signature/header"),
        ({"prefix": "x" * 40}, "webhook_signature/prefix"),
        ({"algorithm": "sha256"}, "webhook_signature"),
    ],
)
def test_webhook_signature_settings_are_checked(section: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        parse_settings(settings("https://acme.service-now.com", webhook_signature=section))


# ---- the secret is read when a delivery arrives, not when the connector is built -------------


UNSET = "BRIDGE_TEST_SN_HOOK_NOT_SET"


def test_a_sync_needs_no_webhook_secret(
    make_connector: ConnectorFactory,
    double: ServiceNowDouble,
    rule_set: RuleSet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    sys_id = incident(double, 1)
    connector = make_connector(
        webhook_secret_env=UNSET,
        webhook_signature={"header": "X-Signature", "encoding": "base64", "prefix": ""},
    )
    connector.prepare(rule_set)
    assert [i.raw["sys_id"] for i in connector.pull()] == [sys_id]

    payload = body(sys_id=sys_id)
    headers = {"X-Signature": b64(payload, b"the-secret")}
    with pytest.raises(ConfigError) as caught:
        connector.parse_webhook(headers, payload)
    assert "webhook_secret_env: the environment variable it names is not set" in str(caught)
    assert UNSET not in str(caught)  # it may be the secret itself
    with pytest.raises(ConfigError, match="webhook_secret_env: the environment variable"):
        connector.webhook_ready()

    monkeypatch.setenv(UNSET, "the-secret")  # the failure was not remembered
    assert connector.webhook_ready()
    assert connector.parse_webhook(headers, payload).keys == (f"incident:{sys_id}",)
    monkeypatch.setenv(UNSET, "rotated")  # read once, then kept
    assert connector.parse_webhook(headers, payload).keys == (f"incident:{sys_id}",)
    assert "the-secret" not in str(caught.value)


def test_without_any_webhook_secret_the_connector_is_not_ready(
    make_connector: ConnectorFactory, double: ServiceNowDouble
) -> None:
    raw = settings(double.url)
    del raw["webhook_secret_env"]
    bare = ServiceNowConnector(raw, ConnectorContext())  # the fixture has set the password
    try:
        assert not bare.webhook_ready()
        with pytest.raises(WebhookSignatureError, match="no webhook secret"):
            bare.parse_webhook(signed(body()), body())
    finally:
        bare.close()
    assert make_connector().webhook_ready()


# ---- record keys: only table:sys_id built from checked parts is queued -----------------------


def test_record_keys_from_good_parts() -> None:
    assert record_key("incident", SYS_ID) == f"incident:{SYS_ID}"
    assert record_key("u_custom_task", SYS_ID.upper()) == f"u_custom_task:{SYS_ID}"
    assert record_key("x" * 80, SYS_ID) == f"{'x' * 80}:{SYS_ID}"


BAD_TABLES = [
    "..",
    ".",
    "../x",
    "incident/../sys_user",
    "incident/",
    "%2e%2e",
    "incident%00",
    "incident\x00",
    "incident:x",
    "Incident",
    "1incident",
    "_incident",
    "incident-x",
    "x" * 81,
    "x" * 10_000,
    "\u0131ncident",  # dotless i
]
BAD_SYS_IDS = [
    "..",
    "../" + SYS_ID,
    SYS_ID + "/..",
    SYS_ID[:-1],
    SYS_ID + "0",
    SYS_ID[:-1] + "\x00",
    SYS_ID[:-2] + "%00",
    SYS_ID[:-1] + "g",
    "\uff10" * 32,  # full-width digits
    "a" * 10_000,
]


@pytest.mark.parametrize("table", BAD_TABLES)
def test_record_keys_refuse_bad_tables(table: str) -> None:
    with pytest.raises(WebhookPayloadError, match=r"^table .* is not a table name like incident"):
        record_key(table, SYS_ID)


@pytest.mark.parametrize("sys_id", BAD_SYS_IDS)
def test_record_keys_refuse_bad_sys_ids(sys_id: str) -> None:
    with pytest.raises(WebhookPayloadError, match=r"^sys_id .* is not a 32-character sys_id"):
        record_key("incident", sys_id)


@pytest.mark.parametrize("table", [t for t in BAD_TABLES if t.strip()])
def test_a_delivery_with_a_bad_table_is_refused(table: str) -> None:
    payload = body(table=table)
    with pytest.raises(WebhookPayloadError, match=r"^table .* is not a table name") as caught:
        parse_delivery(signed(payload), payload, CONFIG)
    assert len(str(caught.value)) < 400  # a 10,000-character value is not echoed whole


@pytest.mark.parametrize("sys_id", BAD_SYS_IDS)
def test_a_delivery_with_a_bad_sys_id_is_refused(sys_id: str) -> None:
    payload = body(sys_id=sys_id)
    with pytest.raises(WebhookPayloadError, match=r"^sys_id .* is not a 32-character") as caught:
        parse_delivery(signed(payload), payload, CONFIG)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"table": ""}, "no 'table'"),
        ({"sys_id": ""}, "no 'sys_id'"),
        ({"table": 42}, "table 42 is not"),
        ({"sys_id": ["x"]}, "sys_id \\['x'\\] is not"),
        # Python refuses int() of more than 4300 digits: a 400, not a 500.
        ({"sys_mod_count": "1" * 5000}, "not a whole number"),
        ({"sys_mod_count": "1" * 19}, "at most 18 digits"),
        ({"sys_mod_count": "7\x00"}, "not a whole number"),
        ({"sys_mod_count": -1}, "not a whole number"),
        ({"sys_mod_count": "\u0667"}, "not a whole number"),  # an Arabic-Indic 7
    ],
)
def test_parts_of_the_key_and_the_delivery_id(fields: dict[str, Any], message: str) -> None:
    payload = body(**fields)
    with pytest.raises(WebhookPayloadError, match=message) as caught:
        parse_delivery(signed(payload), payload, CONFIG)
    assert len(str(caught.value)) < 400


def test_surrounding_blanks_and_an_upper_case_sys_id_are_normalised() -> None:
    payload = body(table=" incident ", sys_id=f" {SYS_ID.upper()}\n", sys_mod_count=" 12 ")
    event = parse_delivery(signed(payload), payload, CONFIG)
    assert event.keys == (f"incident:{SYS_ID}",)
    assert event.delivery_id == f"{SYS_ID}:12"


def test_a_well_formed_table_out_of_scope_is_ignored_not_queued() -> None:
    payload = body(table="sc_task")  # a child of task the Business Rule may send
    event = parse_delivery(signed(payload), payload, CONFIG)
    assert event.keys == (f"sc_task:{SYS_ID}",)
    assert event.ignore_reason is not None
    assert "not in this source's scope" in event.ignore_reason


@pytest.mark.parametrize(
    "key", ["incident:..", "..:" + SYS_ID, "../x:" + SYS_ID, f"incident:{SYS_ID}\x00"]
)
def test_fetch_of_a_bad_record_key_makes_no_request(
    make_connector: ConnectorFactory, double: ServiceNowDouble, key: str
) -> None:
    connector = make_connector()
    double.reset_counters()
    with pytest.raises(ItemNotFoundError, match="is not a ServiceNow record key"):
        connector.fetch(key)
    assert double.requests == []


def test_fetch_of_dots_looks_for_a_number_in_a_query_never_in_the_path(
    make_connector: ConnectorFactory, double: ServiceNowDouble
) -> None:
    connector = make_connector()
    double.reset_counters()
    with pytest.raises(ItemNotFoundError, match="no record numbered"):
        connector.fetch("..")
    assert [r.path for r in double.requests] == ["/api/now/table/incident"]
    assert double.requests[0].query["sysparm_query"] == "number=.."
