"""Business Rule deliveries: signatures (HMAC, shared secret), payloads, dedupe keys, echoes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from bridge.connectors.servicenow.webhooks import (
    MAX_BODY_BYTES,
    WebhookConfig,
    parse_delivery,
    sign,
    verify_delivery,
)
from bridge.errors import WebhookPayloadError, WebhookSignatureError

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
        ({"X-Bridge-Signature": "0" * 64}, "malformed"),
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
