from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from bridge.connectors.base import WebhookEvent
from bridge.connectors.jira.webhooks import (
    authenticate,
    issue_ref,
    parse_payload,
    parse_webhook,
    require_issue_ref,
    verify_signature,
)
from bridge.errors import ItemNotFoundError, WebhookPayloadError, WebhookSignatureError

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


def test_a_signed_body_nested_100000_deep_is_a_payload_error_not_a_crash() -> None:
    hostile = Path(__file__).parents[2] / "data" / "hostile" / "exports" / "webhooks"
    body = (hostile / "jira-nested-100k.json").read_bytes()

    with pytest.raises(WebhookPayloadError) as caught:
        parse(body)

    assert str(caught.value) == "the delivery is nested too deeply to be a Jira event"


# -- issue keys and delivery ids: checked before anything is queued or recorded ---------------


@pytest.mark.parametrize(
    ("value", "ref"),
    [
        ("OPS-1", "OPS-1"),
        ("OPS-123456", "OPS-123456"),
        ("ops-1", "OPS-1"),  # Jira's project keys are upper case; it accepts either
        ("Ops_2-42", "OPS_2-42"),
        ("A-7", "A-7"),  # a one-letter key, which a custom key pattern allows
        ("P" + "X" * 254 + "-9", "P" + "X" * 254 + "-9"),  # 255 characters of project key
        ("10001", "10001"),  # a numeric issue id
        (10001, "10001"),  # ... as JSON sends it in issue.id
        ("9223372036854775807", "9223372036854775807"),  # a Java long
    ],
)
def test_issue_refs_that_are_accepted(value: object, ref: str) -> None:
    assert issue_ref(value) == ref
    assert require_issue_ref(str(value)) == ref


BAD_KEYS = [
    "",
    " ",
    ".",
    "..",
    "../x",
    "OPS-1/../..",
    "OPS-1/comment",
    "%2e%2e",
    "%2E%2E/x",
    "OPS-1%00",
    "OPS-1\x00",
    "\x00",
    "OPS-1\n",
    "OPS-1\t",
    " OPS-1",
    "OPS-1?expand=x",
    "OPS-1#x",
    "OPS-0",  # issue numbers start at 1
    "OPS-01",
    "0",
    "-1",
    "OPS_1",
    "1OPS-1",
    "_OPS-1",
    "OPS-",
    "OPS--1",
    "OPS-1-2",
    "OPS-\u0661",  # an Arabic-Indic digit, which \d matches
    "ÖPS-1",
    "\u017fPS-1",  # long s, which upper() turns into an ASCII S
    "\u212aEY-1",  # the Kelvin sign, which re.IGNORECASE matches as k
    "X" * 10_000,
    "OPS-" + "1" * 10_000,
    "P" + "X" * 255 + "-9",  # 256 characters of project key
    "1" * 20,
]


@pytest.mark.parametrize("value", BAD_KEYS)
def test_issue_refs_that_are_refused(value: str) -> None:
    assert issue_ref(value) is None
    with pytest.raises(ItemNotFoundError, match="is not an issue key like PROJECT-123") as caught:
        require_issue_ref(value)
    assert caught.value.item_key == value
    assert len(str(caught.value)) < 400  # a 10,000-character key is not echoed whole


@pytest.mark.parametrize("value", [None, True, False, -5, 0, 1.5, ["OPS-1"], {"key": "OPS-1"}])
def test_values_of_other_types_are_not_issue_refs(value: object) -> None:
    assert issue_ref(value) is None


def issue_body(kind: str = "jira:issue_updated", **issue: object) -> bytes:
    return json.dumps({"webhookEvent": kind, "issue": issue, "user": {"accountId": "x"}}).encode()


@pytest.mark.parametrize("key", BAD_KEYS[2:])  # "" and " " are tested below
def test_a_delivery_with_a_bad_issue_key_is_refused(key: str) -> None:
    with pytest.raises(WebhookPayloadError, match=r"^issue\.key .* is not an issue key") as caught:
        parse(issue_body(key=key, id="10001"))
    assert "PROJECT-123" in str(caught.value)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize("kind", ["jira:issue_created", "comment_created", "issue_property_set"])
def test_a_bad_key_is_refused_whatever_the_event(kind: str) -> None:
    doc = {
        "webhookEvent": kind,
        "issue": {"key": "../../myself"},
        "comment": {"self": "https://x/rest/api/2/issue/1/comment/2", "author": {}},
    }
    with pytest.raises(WebhookPayloadError, match=r"issue\.key '\.\./\.\./myself'"):
        parse(json.dumps(doc).encode())


@pytest.mark.parametrize("issue_id", ["..", "10001/../..", "1e3", -1, True, "", " "])
def test_a_bad_issue_id_is_refused(issue_id: object) -> None:
    body = issue_body(id=issue_id)
    if issue_id == "":  # empty: no id at all
        with pytest.raises(WebhookPayloadError, match="without an issue key or id"):
            parse(body)
        return
    with pytest.raises(WebhookPayloadError, match=r"^issue\.id .* is not an issue key"):
        parse(body)


def test_an_empty_key_falls_back_to_the_id_and_none_at_all_is_refused() -> None:
    assert parse(issue_body(key="", id=10001)).keys == ("10001",)
    assert parse(issue_body(key=None, id="10001")).keys == ("10001",)
    with pytest.raises(WebhookPayloadError, match="without an issue key or id"):
        parse(issue_body(key=""))


@pytest.mark.parametrize("issue", ["..", "%2e%2e", "OPS-1%00", "x" * 5000])
def test_a_bad_issue_in_the_comment_self_link_is_refused(issue: str) -> None:
    doc = {
        "webhookEvent": "comment_created",
        "comment": {"self": f"https://x/rest/api/2/issue/{issue}/comment/5", "author": {}},
    }
    with pytest.raises(WebhookPayloadError, match=r"the issue in comment\.self .* is not"):
        parse(json.dumps(doc).encode())


def test_a_lower_case_key_is_normalised() -> None:
    assert parse(issue_body(key="ops-42")).keys == ("OPS-42",)


@pytest.mark.parametrize(
    "identifier",
    ["d-1", "8b7c1a9e-3f5d-4e2a-9c1b-0a2b3c4d5e6f", "1557384235366", "x" * 255],
)
def test_delivery_ids_that_are_kept(identifier: str) -> None:
    body = payload("issue__created")
    headers = signed(body, **{"X-Atlassian-Webhook-Identifier": f" {identifier} "})
    assert parse(body, headers).delivery_id == identifier


@pytest.mark.parametrize("identifier", ["d-1\x00", "\x00", "d\x1b[31m", "d-1\x7f", "x" * 256, "é"])
def test_delivery_ids_that_are_refused(identifier: str) -> None:
    body = payload("issue__created")
    headers = signed(body, **{"X-Atlassian-Webhook-Identifier": identifier})
    with pytest.raises(WebhookPayloadError, match="X-Atlassian-Webhook-Identifier") as caught:
        parse(body, headers)
    assert "printable ASCII" in str(caught.value)
    assert len(str(caught.value)) < 400


def test_a_blank_delivery_id_is_no_delivery_id() -> None:
    body = payload("issue__created")
    headers = signed(body, **{"X-Atlassian-Webhook-Identifier": "  "})
    assert parse(body, headers).delivery_id is None
