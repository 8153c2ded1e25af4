"""Jira webhook deliveries: verify the signature, then parse. Pure: no I/O, no clock.

An admin webhook saved with a secret is signed ``X-Hub-Signature: sha256=<hex>`` with
HMAC-SHA256 of the raw body (Cloud since 2024, and Data Center). The signature is checked
on the raw bytes, in constant time, *before* the body is parsed, so an unsigned or forged
delivery never reaches the JSON parser.

Without a configured secret, deliveries are refused unless the source says
``webhook_unsigned: true`` (for a trusted network only): a webhook endpoint that accepts
anything lets anyone make bridge re-read (and re-write) any issue.

Payloads are REST v2-shaped even on Cloud. Comment events may carry no issue at all (old
payloads); the issue id is then taken from the comment's ``self`` link, and ``fetch`` takes
an id as well as a key.

The key becomes part of a URL the worker requests with bridge's credentials, and the
delivery id a row in the store, so both are checked here, before anything is queued or
recorded: an issue key (``PROJECT-123``, upper-cased if it came in lower case) or a numeric
issue id, and a delivery id of printable ASCII. Anything else (``..``, a ``/``, NUL, a
10,000-character string) is a WebhookPayloadError naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bridge.connectors.base import WebhookEvent
from bridge.connectors.signatures import (
    SignatureWording,
    header_value,
    hex_mac,
    verify_sha256_signature,
)
from bridge.errors import ItemNotFoundError, WebhookPayloadError, WebhookSignatureError

__all__ = [
    "COMMENT_EVENTS",
    "ISSUE_EVENTS",
    "account_ids",
    "authenticate",
    "issue_ref",
    "parse_payload",
    "parse_webhook",
    "require_issue_ref",
    "verify_signature",
]

SIGNATURE_HEADER = "x-hub-signature"
DELIVERY_HEADER = "x-atlassian-webhook-identifier"

ISSUE_EVENTS = frozenset(("jira:issue_created", "jira:issue_updated", "jira:issue_deleted"))
COMMENT_EVENTS = frozenset(("comment_created", "comment_updated", "comment_deleted"))

_COMMENT_SELF = re.compile(r"/rest/api/(?:2|3|latest)/issue/(?P<issue>[^/]+)/comment/")

# A project key is letters, digits and underscores, starting with a letter (Jira's rule for
# every project-key pattern an admin may configure; 10 characters by default, more allowed);
# the issue number and the issue id (a Java long) are positive integers. ASCII only, written
# out: re.IGNORECASE and \d would also match non-ASCII letters and digits.
_ISSUE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,254}-[1-9][0-9]{0,17}")
_ISSUE_ID = re.compile(r"[1-9][0-9]{0,18}")
_KEY_FORM = (
    "an issue key like PROJECT-123 (a project key of letters, digits and underscores starting "
    "with a letter, a hyphen, the issue number) or a numeric issue id"
)
# Jira's identifier is a UUID or a number; printable ASCII, bounded, is all the store takes.
_DELIVERY_ID = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")

_SIGNATURE = SignatureWording(
    header="X-Hub-Signature",
    no_separator="expected 'sha256=<64 hex digits>'",
    accepted="sha256 (HMAC-SHA256 of the body, 'sha256=<hex>')",
    bad_mac="expected 'sha256=' followed by 64 hex digits",
    mismatch=(
        "the secret saved with the webhook in Jira differs from this source's webhook secret, "
        "or the body was changed on the way"
    ),
)


def verify_signature(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Raise WebhookSignatureError unless ``X-Hub-Signature`` is HMAC-SHA256(secret, body)."""
    value = header_value(headers, SIGNATURE_HEADER)
    if value is None or not value.strip():
        raise WebhookSignatureError(
            "the delivery has no X-Hub-Signature header: either the webhook in Jira was saved "
            "without a secret (set the same secret there as in webhook_secret_env / "
            "webhook_secret_file), or the request did not come from Jira"
        )
    verify_sha256_signature(
        value, body, secret.encode("utf-8"), decode_mac=hex_mac, wording=_SIGNATURE
    )


def account_ids(user: Any) -> set[str]:
    """The identifiers of a user object that can name bridge's own account (Cloud accountId;
    Data Center name and key): which one a payload or a comment carries depends on the
    deployment and its age, so echoes are recognised by any of them."""
    if not isinstance(user, Mapping):
        return set()
    return {
        str(user[attr])
        for attr in ("accountId", "name", "key")
        if isinstance(user.get(attr), str) and user.get(attr)
    }


def _user_ids(user: Any) -> set[str]:
    """:func:`account_ids`, plus those only the ``self`` link of old Server payloads names."""
    ids = account_ids(user)
    link = user.get("self") if isinstance(user, Mapping) else None
    if isinstance(link, str):
        # Old Server payloads name the user only in the link: .../user?username=jira_test
        for attr in ("accountId", "username", "key"):
            ids.update(v for v in parse_qs(urlsplit(link).query).get(attr, []) if v)
    return ids


def _shown(value: Any, limit: int = 60) -> str:
    """``value`` for an error message: its repr, cut short (a key may be 10,000 characters)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def issue_ref(value: Any) -> str | None:
    """The issue key (upper-cased: Jira's project keys are) or numeric id ``value`` is, or
    None when it is neither — ``..``, ``OPS-1/../..``, ``OPS-1%00``, a NUL, an empty or an
    overlong string. What is returned is safe in a URL path and in the store."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    if _ISSUE_ID.fullmatch(text):
        return text
    if _ISSUE_KEY.fullmatch(text):
        return text.upper()
    return None


def require_issue_ref(key: str) -> str:
    """:func:`issue_ref`, for ``fetch``: ItemNotFoundError (no request is made) if not one."""
    ref = issue_ref(key)
    if ref is None:
        raise ItemNotFoundError(
            f"jira: {_shown(key)} is not {_KEY_FORM}; no request was made",
            connector="jira",
            item_key=key,
        )
    return ref


def _checked(value: Any, field: str) -> str:
    ref = issue_ref(value)
    if ref is None:
        raise WebhookPayloadError(f"{field} {_shown(value)} is not {_KEY_FORM}")
    return ref


def _issue_key(payload: Mapping[str, Any]) -> str | None:
    """The issue the delivery is about, checked; None when it names none."""
    issue = payload.get("issue")
    if isinstance(issue, Mapping):
        for attr in ("key", "id"):
            value = issue.get(attr)
            if value is not None and value != "":
                return _checked(value, f"issue.{attr}")
    comment = payload.get("comment")
    if isinstance(comment, Mapping) and isinstance(comment.get("self"), str):
        match = _COMMENT_SELF.search(comment["self"])
        if match:
            return _checked(match.group("issue"), "the issue in comment.self")
    return None


def _delivery_id(headers: Mapping[str, str]) -> str | None:
    value = header_value(headers, DELIVERY_HEADER)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _DELIVERY_ID.fullmatch(value):
        raise WebhookPayloadError(
            f"the X-Atlassian-Webhook-Identifier header {_shown(value)} is not a delivery id "
            "(expected at most 255 printable ASCII characters, as Jira sends)"
        )
    return value


def _only_bridge_fields(
    changelog: Any, field_ids: Collection[str], field_names: Collection[str]
) -> bool:
    if not isinstance(changelog, Mapping):
        return False
    items = changelog.get("items")
    if not isinstance(items, list) or not items:
        return False
    for item in items:
        if not isinstance(item, Mapping):
            return False
        field_id = item.get("fieldId")
        if isinstance(field_id, str) and field_id:
            if field_id not in field_ids:
                return False
            continue
        name = item.get("field")
        if not isinstance(name, str) or (name not in field_names and name not in field_ids):
            return False
    return True


def authenticate(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | None,
    allow_unsigned: bool = False,
) -> None:
    """Refuse a delivery that cannot be trusted, before anything reads its body.

    :param secret: the webhook secret; None refuses every delivery unless ``allow_unsigned``.
    :raises WebhookSignatureError: the signature is missing, malformed or wrong, or there is
        no secret to check it against.
    """
    if secret:
        verify_signature(headers, body, secret)
    elif not allow_unsigned:
        raise WebhookSignatureError(
            "no webhook secret is configured for this source, so deliveries cannot be "
            "verified and are refused: set webhook_secret_env or webhook_secret_file (and the "
            "same secret on the webhook in Jira), or — on a trusted network only — "
            "webhook_unsigned: true"
        )


def parse_payload(
    headers: Mapping[str, str],
    body: bytes,
    *,
    bridge_account_id: str | Collection[str] | None,
    bridge_field_ids: Collection[str],
    bridge_field_names: Collection[str] = (),
) -> WebhookEvent:
    """Parse a delivery :func:`authenticate` has let through. Separate from it because
    recognising echoes needs bridge's account and fields, which the connector discovers
    only once a delivery is known to be genuine.

    :param bridge_account_id: bridge's own account (Cloud accountId; on Data Center the user
        name or key): its events are echoes of bridge's writes and are ignored.
    :param bridge_field_ids: the fields bridge writes; an update that changed only these is
        an echo too. ``bridge_field_names`` are their display names, which old payloads
        carry in ``field`` instead of a ``fieldId``.
    :raises WebhookPayloadError: the body is not JSON (or nested too deeply to parse) or not
        a Jira event, or the issue key or the delivery id is not one (:func:`issue_ref`).
    """
    delivery_id = _delivery_id(headers)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"the delivery is not JSON: {exc}") from None
    except RecursionError:
        # Signed, yet nested beyond what the parser can follow: a 400 like any other body
        # that is not a Jira event, never a 500 (and never a traceback in the log).
        raise WebhookPayloadError("the delivery is nested too deeply to be a Jira event") from None
    if not isinstance(payload, Mapping):
        raise WebhookPayloadError("the delivery is not a JSON object")
    kind = payload.get("webhookEvent")
    if not isinstance(kind, str) or not kind:
        raise WebhookPayloadError(
            "the delivery has no webhookEvent: not a Jira webhook payload "
            "(dynamic/Connect webhooks are not supported)"
        )
    key = _issue_key(payload)
    known = kind in ISSUE_EVENTS or kind in COMMENT_EVENTS
    if known and key is None:
        raise WebhookPayloadError(f"a {kind} delivery without an issue key or id")
    keys = (key,) if key else ()
    if not known:
        return WebhookEvent(
            delivery_id, kind, keys, ignore_reason=f"bridge does not act on {kind} events"
        )

    ours = (
        {bridge_account_id} if isinstance(bridge_account_id, str) else set(bridge_account_id or ())
    )
    actor: Any
    if kind in COMMENT_EVENTS:
        comment = payload.get("comment")
        if not isinstance(comment, Mapping):
            raise WebhookPayloadError(f"a {kind} delivery without a comment object")
        actor = comment.get("author")
    else:
        actor = payload.get("user")
    ignore: str | None = None
    if ours and _user_ids(actor) & ours:
        ignore = "made by bridge's own account (an echo of its write)"
    elif kind == "jira:issue_updated" and _only_bridge_fields(
        payload.get("changelog"), bridge_field_ids, bridge_field_names
    ):
        ignore = "only fields bridge writes changed"
    return WebhookEvent(
        delivery_id,
        kind,
        keys,
        deleted=kind == "jira:issue_deleted",
        ignore_reason=ignore,
    )


def parse_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | None,
    bridge_account_id: str | Collection[str] | None,
    bridge_field_ids: Collection[str],
    bridge_field_names: Collection[str] = (),
    allow_unsigned: bool = False,
) -> WebhookEvent:
    """Verify and parse one delivery: :func:`authenticate`, then :func:`parse_payload`.

    :raises WebhookSignatureError: the signature is missing, malformed or wrong.
    :raises WebhookPayloadError: the body is not JSON or not a Jira event, or it names no
        valid issue key or id, or the delivery id is malformed.
    """
    authenticate(headers, body, secret=secret, allow_unsigned=allow_unsigned)
    return parse_payload(
        headers,
        body,
        bridge_account_id=bridge_account_id,
        bridge_field_ids=bridge_field_ids,
        bridge_field_names=bridge_field_names,
    )
