from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from bridge.connectors.base import WebhookEvent
from bridge.connectors.jira.webhooks import (
    authenticate,
    parse_payload,
    parse_webhook,
    verify_signature,
)
from bridge.errors import WebhookPayloadError, WebhookSignatureError

DATA = Path(__file__).parents[2] / "data" / "jira" / "jira-to-matrix"
SECRET = "It's a Secret to Everybody"
BRIDGE = "bridge-bot"


def payload(name: str) -> bytes:
    """A captured delivery, as bytes exactly as stored (logger artefacts and all)."""
    return (DATA / f"webhooks__{name}.json").read_bytes()


def signed(body: bytes, secret: str = SECRET, **extra: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}", **extra}


def parse(
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    account: str | None = BRIDGE,
    ids: tuple[str, ...] = ("customfield_10050",),
    names: tuple[str, ...] = ("SPI",),
) -> WebhookEvent:
    return parse_webhook(
        signed(body) if headers is None else headers,
        body,
        secret=SECRET,
        bridge_account_id=account,
        bridge_field_ids=ids,
        bridge_field_names=names,
    )


# -- signatures ------------------------------------------------------------------------------


def test_good_signature_is_accepted_and_the_delivery_id_kept() -> None:
    body = payload("issue__updated__status-changed")
    headers = signed(body, **{"X-Atlassian-Webhook-Identifier": "d-1"})
    event = parse(body, headers)
    assert event == WebhookEvent("d-1", "jira:issue_updated", ("INDEV-6",))


def test_header_names_are_case_insensitive() -> None:
    body = payload("issue__created")
    headers = {k.lower(): v for k, v in signed(body).items()}
    assert parse(body, headers).keys == ("BBCOM-1398",)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "no X-Hub-Signature header"),
        ({"X-Hub-Signature": ""}, "no X-Hub-Signature header"),
        ({"X-Hub-Signature": "sha1=" + "a" * 40}, "uses 'sha1'; bridge accepts only sha256"),
        ({"X-Hub-Signature": "sha256=xyz"}, "malformed"),
        ({"X-Hub-Signature": "deadbeef"}, "malformed"),
        ({"X-Hub-Signature": "sha256=" + "0" * 64}, "does not match the body"),
    ],
)
def test_bad_signatures_are_refused_before_parsing(headers: dict[str, str], message: str) -> None:
    body = b"not even json"
    with pytest.raises(WebhookSignatureError, match=message):
        parse(body, headers)


def test_wrong_secret_and_altered_body() -> None:
    body = payload("issue__created")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        parse(body, signed(body, secret="another secret"))
    with pytest.raises(WebhookSignatureError, match="does not match"):
        parse(body + b" ", signed(body))
    verify_signature(signed(body), body, SECRET)  # and the right one passes


def test_without_a_secret_deliveries_are_refused_unless_unsigned_is_allowed() -> None:
    body = payload("issue__created")
    with pytest.raises(WebhookSignatureError, match="webhook_unsigned: true"):
        parse_webhook({}, body, secret=None, bridge_account_id=None, bridge_field_ids=())
    event = parse_webhook(
        {}, body, secret=None, bridge_account_id=None, bridge_field_ids=(), allow_unsigned=True
    )
    assert event.keys == ("BBCOM-1398",)


def test_authenticate_then_parse_payload_is_parse_webhook() -> None:
    body = payload("issue__created")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        authenticate(signed(body, secret="another secret"), body, secret=SECRET)
    with pytest.raises(WebhookSignatureError, match="webhook_unsigned: true"):
        authenticate({}, body, secret=None)
    authenticate(signed(body), body, secret=SECRET)
    authenticate({}, body, secret=None, allow_unsigned=True)
    # parse_payload trusts its caller: it reads the body without looking at the signature.
    event = parse_payload({}, body, bridge_account_id=BRIDGE, bridge_field_ids=())
    assert event == parse(body)


# -- real payloads --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "keys"),
    [
        ("issue__created", "jira:issue_created", ("BBCOM-1398",)),
        ("issue__updated__generic", "jira:issue_updated", ("BBCOM-1233",)),
        ("issue__updated__commented", "jira:issue_updated", ("BBCOM-956",)),
        ("issue__updated__description-update", "jira:issue_updated", ("INDEV-131",)),
        ("issue__updated__issue-assigned", "jira:issue_updated", ("INDEV-242",)),
        ("issue__updated__status-changed", "jira:issue_updated", ("INDEV-6",)),
        ("comment__updated", "comment_updated", ("INDEV-28",)),
        ("comment__deleted", "comment_deleted", ("INDEV-28",)),
        # An old capture without an issue object: the id comes from the comment's self link.
        ("comment__created", "comment_created", ("26313",)),
    ],
)
def test_real_payloads(name: str, kind: str, keys: tuple[str, ...]) -> None:
    event = parse(payload(name))
    assert (event.kind, event.keys, event.deleted, event.ignore_reason) == (
        kind,
        keys,
        False,
        None,
    )
    assert event.delivery_id is None


def test_issue_deleted() -> None:
    doc = json.loads(payload("issue__created"))
    doc["webhookEvent"] = "jira:issue_deleted"
    body = json.dumps(doc).encode()
    event = parse(body)
    assert (event.kind, event.keys, event.deleted) == ("jira:issue_deleted", ("BBCOM-1398",), True)


# -- loop prevention ------------------------------------------------------------------------------


def test_events_by_bridges_account_are_ignored() -> None:
    assigned = payload("issue__updated__issue-assigned")  # user.accountId 5c07f55b...
    event = parse(assigned, account="5c07f55ba1b46046f530e0f3")
    assert event.ignore_reason is not None
    assert "bridge's own account" in event.ignore_reason
    # A comment event's actor is the comment's author.
    updated = payload("comment__updated")
    assert parse(updated, account="5b912e21fa38ae2c896099ae").ignore_reason is not None
    assert parse(updated, account="someone-else").ignore_reason is None


def test_data_center_users_match_by_name() -> None:
    body = payload("issue__updated__commented")  # user ?username=jira_test, no accountId
    assert parse(body, account="jira_test").ignore_reason is not None
    assert parse(body, account=None).ignore_reason is None


def test_an_update_of_only_bridge_fields_is_ignored() -> None:
    description = payload("issue__updated__description-update")  # fieldId: description
    assert parse(description, ids=("description",)).ignore_reason == (
        "only fields bridge writes changed"
    )
    # Old payloads carry only the display name in `field`.
    created = json.loads(payload("issue__updated__generic"))
    created["changelog"]["items"] = [
        {"field": "SPI", "fieldtype": "custom", "from": None, "to": "0.9"}
    ]
    body = json.dumps(created).encode()
    assert parse(body, ids=("customfield_10050",), names=("SPI",)).ignore_reason is not None
    # One human change among bridge's → processed.
    generic = payload("issue__updated__generic")  # status, description, Key
    assert parse(generic, ids=("description",), names=("status",)).ignore_reason is None


def test_other_events_are_parsed_but_ignored() -> None:
    body = json.dumps(
        {"webhookEvent": "issue_property_set", "issue": {"key": "OPS-1"}, "property": {}}
    ).encode()
    event = parse(body)
    assert event.keys == ("OPS-1",)
    assert event.ignore_reason == "bridge does not act on issue_property_set events"


# -- malformed payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"issue": {"key": "OPS-1"}}', "no webhookEvent"),
        (b'{"webhookEvent": "jira:issue_updated", "issue": {}}', "without an issue key"),
        (
            b'{"webhookEvent": "comment_created", "issue": {"key": "OPS-1"}}',
            "without a comment object",
        ),
    ],
)
def test_malformed_payloads(body: bytes, message: str) -> None:
    with pytest.raises(WebhookPayloadError, match=message):
        parse(body)
