"""Deliveries from the ServiceNow Business Rule bridge documents (docs/servicenow-webhooks.md).

ServiceNow signs nothing it sends, so the Business Rule does: by default ``X-Bridge-Signature:
sha256=<HMAC-SHA256 of the raw body>`` with a secret shared with bridge. The MAC may be hex
(what most tools print) or Base64 (what ``GlideCertificateEncryption.generateMac`` returns),
so the script can send it unconverted, with or without the ``sha256=`` label. An outbound REST
message that already signs another way (its own header name, Base64 only, no label) is
described by the source's ``webhook_signature`` setting (:class:`SignatureFormat`) rather
than rebuilt. Instances where a script cannot hold a key can send the secret itself in
``X-Bridge-Token`` instead (weaker: anyone who sees one request can replay and forge). Both
are compared in constant time, before the body is parsed.

The body names a record, nothing more; bridge re-reads it through the Table API, so a
delivery that is late, repeated or out of order still acts on the record as it is now::

    {"table": "incident", "sys_id": "<32 hex>", "sys_updated_on": "2026-07-01 09:30:00",
     "sys_mod_count": "7", "operation": "update",
     "sys_updated_by": "jane.doe",                  # optional: echo detection
     "changed_fields": ["state", "work_notes"]}     # optional: echo detection

The record key ``table:sys_id`` becomes a Table API path the worker requests with bridge's
credentials, and the delivery id a row in the store, so both are built only from checked parts
(:func:`record_key`): a table name (lower-case letters, digits, underscores) and 32 hex digits.
Anything else (``..``, a ``/``, NUL, an overlong value) is a WebhookPayloadError naming the
field. A well-formed table outside the source's ``scope.tables`` is not an error: the delivery
is ignored, as the Business Rule on ``task`` may send a child table bridge does not read.

Pure: no I/O. The connector reads the secrets when the first delivery arrives (a sync needs
none) and hands them over in a :class:`WebhookConfig`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge.connectors.base import WebhookEvent
from bridge.connectors.signatures import (
    SHA256_PREFIX,
    MacDecoder,
    SignatureWording,
    base64_mac,
    header_value,
    hex_mac,
    verify_sha256_signature,
)
from bridge.errors import ConfigError, WebhookPayloadError, WebhookSignatureError
from bridge.timefmt import parse_servicenow_instant

__all__ = [
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "SIGNATURE_SETTINGS_SCHEMA",
    "TOKEN_HEADER",
    "SignatureFormat",
    "WebhookConfig",
    "parse_delivery",
    "record_key",
    "sign",
    "verify_delivery",
]

SIGNATURE_HEADER = "X-Bridge-Signature"
TOKEN_HEADER = "X-Bridge-Token"  # noqa: S105 - a header name, not a secret
MAX_BODY_BYTES = 64 * 1024  # the payload is a few hundred bytes; anything big is not ours

_OPERATIONS = frozenset(("insert", "update", "delete"))
_TABLE = re.compile(r"[a-z][a-z0-9_]{0,79}")
_SYS_ID = re.compile(r"[0-9a-fA-F]{32}")
_FIELD = re.compile(r"[a-z][a-z0-9_]*")
# sys_mod_count is an integer column; bounded so that int() never sees thousands of digits
# (Python refuses more than 4300, which would be a 500 instead of a 400).
_MOD_COUNT = re.compile(r"[0-9]{1,18}")
_TABLE_FORM = "a table name like incident (at most 80 lower-case letters, digits, underscores)"
_SYS_ID_FORM = "a 32-character sys_id (hex digits)"


Encoding = Literal["hex", "base64"]
_HEADER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"

SIGNATURE_SETTINGS_SCHEMA: Mapping[str, Any] = {
    "description": (
        "How the Business Rule or outbound REST message signs: the header, the MAC's "
        "encoding and the text before it. Defaults: X-Bridge-Signature, hex or Base64, "
        "with or without 'sha256='."
    ),
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "header": {
            "type": "string",
            "pattern": _HEADER_NAME,
            "description": "the header that carries the signature, e.g. X-Signature",
        },
        "encoding": {
            "enum": ["hex", "base64"],
            "description": "how the MAC is written (default: either)",
        },
        "prefix": {
            "type": "string",
            "maxLength": 32,
            "pattern": "^[ -~]*$",
            "description": "text before the MAC: 'sha256=' or '' (default: either)",
        },
    },
}


@dataclass(frozen=True, slots=True)
class SignatureFormat:
    """How deliveries are signed (``webhook_signature`` in the source's settings).

    :param header: the header that carries the signature.
    :param encoding: ``hex`` or ``base64``; None accepts either.
    :param prefix: the text before the MAC (``sha256=``, or ``""`` for the MAC alone); None
        accepts the MAC with or without ``sha256=``.
    """

    header: str = SIGNATURE_HEADER
    encoding: Encoding | None = None
    prefix: str | None = None

    @classmethod
    def from_settings(cls, section: Mapping[str, Any] | None, *, source: str) -> SignatureFormat:
        """The format a ``webhook_signature`` mapping describes (its shape already checked by
        the settings schema); ConfigError for what the schema cannot say."""
        section = section or {}
        header = str(section.get("header", SIGNATURE_HEADER)).strip()
        if header.lower() == TOKEN_HEADER.lower():
            raise ConfigError(
                f"source {source!r}: webhook_signature.header cannot be {TOKEN_HEADER}, which "
                "carries the shared secret itself (webhook_token_env); name the header the "
                "signature is sent in, e.g. X-Signature"
            )
        encoding = section.get("encoding")
        prefix = section.get("prefix")
        return cls(
            header=header,
            encoding=encoding if encoding in ("hex", "base64") else None,
            prefix=str(prefix).strip() if prefix is not None else None,
        )

    @property
    def decoder(self) -> MacDecoder:
        if self.encoding == "hex":
            return hex_mac
        if self.encoding == "base64":
            return base64_mac
        return _mac_bytes

    @property
    def wording(self) -> SignatureWording:
        """Refusals that name this format, so the admin sees what bridge expected."""
        mac = {
            "hex": "64 hex digits",
            "base64": "44 Base64 characters",
            None: "64 hex digits or 44 Base64 characters",
        }[self.encoding]
        expected = f"{self.prefix}<MAC>" if self.prefix is not None else "[sha256=]<MAC>"
        return SignatureWording(
            header=self.header,
            no_separator=(
                f"expected {self.prefix!r} before the MAC (webhook_signature.prefix); set "
                "prefix: '' if the message sends the MAC alone"
            ),
            accepted="sha256=<HMAC-SHA256 of the body> (HmacSHA256 in generateMac)",
            bad_mac=(
                f"expected {expected} with the HMAC-SHA256 of the body as {mac}"
                + (" (webhook_signature.encoding)" if self.encoding else "")
            ),
            mismatch=(
                "the Business Rule signs with another secret, or the body was changed on the way"
            ),
            unexpected_prefix=(
                "expected the MAC alone (webhook_signature.prefix is ''); remove the "
                "'<algorithm>=' label from the message, or set prefix: 'sha256='"
            ),
        )


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """What a source knows for judging deliveries.

    :param secret: the HMAC key (``webhook_secret_env`` / ``_file``), as bytes.
    :param token: the shared-secret header value (``webhook_token_env`` / ``_file``).
    :param tables: the tables in scope; a delivery for another table is ignored.
    :param integration_user: bridge's own ServiceNow user; its updates are echoes.
    :param bridge_fields: the columns bridge writes (``u_`` fields and the journal field).
    :param signature: the header, encoding and prefix of the signature.
    """

    secret: bytes | None = None
    token: bytes | None = None
    tables: frozenset[str] | None = None
    integration_user: str | None = None
    bridge_fields: frozenset[str] = frozenset()
    signature: SignatureFormat = field(default_factory=SignatureFormat)


def sign(
    secret: bytes,
    body: bytes,
    *,
    encoding: Encoding = "hex",
    prefix: str = SHA256_PREFIX,
) -> str:
    """The signature header's value for a body (what the Business Rule computes)."""
    mac = hmac.new(secret, body, hashlib.sha256).digest()
    text = mac.hex() if encoding == "hex" else base64.b64encode(mac).decode("ascii")
    return prefix + text


def _mac_bytes(text: str) -> bytes | None:
    """The 32 MAC bytes of ``<hex>`` or ``<base64>``: a Business Rule can send what
    ``generateMac`` returns (Base64) without converting it."""
    mac = hex_mac(text)
    return mac if mac is not None else base64_mac(text)


def verify_delivery(headers: Mapping[str, str], body: bytes, config: WebhookConfig) -> None:
    """Check the signature (or the shared-secret token) of one delivery, in constant time.

    :raises WebhookSignatureError: nothing is configured to check against, the header is
        missing or malformed, it uses another algorithm, or it does not match.
    """
    scheme = config.signature
    signature = header_value(headers, scheme.header)
    token = header_value(headers, TOKEN_HEADER)
    if config.secret is None and config.token is None:
        raise WebhookSignatureError(
            "this source has no webhook secret: set webhook_secret_env or webhook_secret_file "
            "(HMAC signature) or webhook_token_env or webhook_token_file (shared-secret header)"
        )
    if config.secret is not None and signature is not None:
        verify_sha256_signature(
            signature,
            body,
            config.secret,
            decode_mac=scheme.decoder,
            wording=scheme.wording,
            prefix=scheme.prefix,
        )
        return
    if config.token is not None and token is not None:
        if not hmac.compare_digest(token.strip().encode("utf-8"), config.token):
            raise WebhookSignatureError(f"{TOKEN_HEADER} does not match this source's token")
        return
    form = (
        f"{scheme.prefix}<MAC>" if scheme.prefix is not None else "sha256=<HMAC-SHA256 of the body>"
    )
    wanted = [
        f"{scheme.header} ({form})" if config.secret else "",
        f"{TOKEN_HEADER} (the shared secret)" if config.token else "",
    ]
    custom = scheme.header.lower() != SIGNATURE_HEADER.lower()
    where = " (webhook_signature.header)" if config.secret and custom else ""
    raise WebhookSignatureError(
        f"the delivery is not authenticated: no {' or '.join(w for w in wanted if w)} header{where}"
    )


def _payload(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise WebhookPayloadError(
            f"the body is {len(body)} bytes; a ServiceNow delivery is a few hundred "
            f"(limit {MAX_BODY_BYTES})"
        )
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise WebhookPayloadError("the body is not UTF-8 text") from None
    except ValueError as exc:
        raise WebhookPayloadError(f"the body is not JSON: {exc}") from None
    except RecursionError:
        # Within the size cap a body can still nest deeper than the parser follows: a 400
        # like any other body that is not a delivery, never a 500.
        raise WebhookPayloadError(
            "the body is nested too deeply to be a ServiceNow delivery"
        ) from None
    if not isinstance(doc, dict):
        raise WebhookPayloadError(
            'the body must be a JSON object {"table", "sys_id", "sys_updated_on", '
            '"sys_mod_count", "operation"}'
        )
    return doc


def _shown(value: Any, limit: int = 60) -> str:
    """``value`` for an error message: its repr, cut short (it may be thousands of characters)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def _required(doc: Mapping[str, Any], name: str, pattern: re.Pattern[str], hint: str) -> str:
    value = doc.get(name)
    if value is None or value == "":
        raise WebhookPayloadError(f"the payload has no {name!r} ({hint})")
    if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
        raise WebhookPayloadError(f"{name} {_shown(value)} is not {hint}")
    return value.strip()


def record_key(table: str, sys_id: str) -> str:
    """``table:sys_id``, what ``fetch`` takes, from a checked table name and sys_id (the
    sys_id lower-cased, as ServiceNow writes it).

    :raises WebhookPayloadError: either part is not of its form, so the key could not be
        used safely in a Table API path.
    """
    if not _TABLE.fullmatch(table):
        raise WebhookPayloadError(f"table {_shown(table)} is not {_TABLE_FORM}")
    if not _SYS_ID.fullmatch(sys_id):
        raise WebhookPayloadError(f"sys_id {_shown(sys_id)} is not {_SYS_ID_FORM}")
    return f"{table}:{sys_id.lower()}"


def _mod_count(doc: Mapping[str, Any]) -> str | None:
    value = doc.get("sys_mod_count")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WebhookPayloadError(f"sys_mod_count {_shown(value)} is not a whole number")
    text = str(value).strip()  # a JSON number has at most 4300 digits (json refuses more)
    if not _MOD_COUNT.fullmatch(text):
        raise WebhookPayloadError(
            f"sys_mod_count {_shown(value)} is not a whole number (at most 18 digits)"
        )
    return str(int(text))


def _changed_fields(doc: Mapping[str, Any]) -> frozenset[str] | None:
    value = doc.get("changed_fields")
    if value is None:
        return None
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WebhookPayloadError(
            "changed_fields must be a list of field names (or one comma-separated string)"
        )
    names = frozenset(v.strip() for v in value)
    bad = sorted(n for n in names if not _FIELD.fullmatch(n))
    if bad:
        raise WebhookPayloadError(
            f"changed_fields holds names that are not fields: {_shown(bad, 200)}"
        )
    return names


def parse_delivery(headers: Mapping[str, str], body: bytes, config: WebhookConfig) -> WebhookEvent:
    """Verify, then parse one delivery into the record key to re-read.

    ``delivery_id`` is ``<sys_id>:<sys_mod_count>`` (``:delete`` added for a deletion, which
    carries the last update's count), so a retried or duplicated delivery is recognised.

    :raises WebhookSignatureError: see :func:`verify_delivery` (checked before parsing).
    :raises WebhookPayloadError: the body is not the documented payload.
    """
    verify_delivery(headers, body, config)
    doc = _payload(body)
    table = _required(doc, "table", _TABLE, _TABLE_FORM)
    sys_id = _required(doc, "sys_id", _SYS_ID, _SYS_ID_FORM).lower()
    key = record_key(table, sys_id)
    operation = doc.get("operation")
    if not isinstance(operation, str) or operation.strip().lower() not in _OPERATIONS:
        raise WebhookPayloadError(
            f"operation {_shown(operation)} is not one of insert, update, delete "
            "(current.operation() in the Business Rule)"
        )
    operation = operation.strip().lower()
    updated_on = doc.get("sys_updated_on")
    if updated_on not in (None, ""):
        try:
            parse_servicenow_instant(str(updated_on))
        except ValueError:
            raise WebhookPayloadError(
                f"sys_updated_on {_shown(updated_on)} is not a ServiceNow date-time like "
                "2026-07-01 09:30:00 (send current.sys_updated_on.getValue(), which is UTC)"
            ) from None
    mod_count = _mod_count(doc)
    updated_by = doc.get("sys_updated_by")
    if updated_by is not None and not isinstance(updated_by, str):
        raise WebhookPayloadError(f"sys_updated_by {_shown(updated_by)} is not a user name")
    changed = _changed_fields(doc)

    deleted = operation == "delete"
    delivery_id = None
    if mod_count is not None:
        delivery_id = f"{sys_id}:{mod_count}" + (":delete" if deleted else "")
    return WebhookEvent(
        delivery_id=delivery_id,
        kind=f"{table}.{operation}",
        keys=(key,),
        deleted=deleted,
        ignore_reason=_ignore_reason(config, table, deleted, updated_by, changed),
    )


def _ignore_reason(
    config: WebhookConfig,
    table: str,
    deleted: bool,
    updated_by: str | None,
    changed: frozenset[str] | None,
) -> str | None:
    if config.tables is not None and table not in config.tables:
        return f"table {table} is not in this source's scope ({', '.join(sorted(config.tables))})"
    if deleted:
        return None
    if config.integration_user and updated_by and updated_by.strip() == config.integration_user:
        return f"updated by bridge's own user {config.integration_user} (an echo of its write)"
    if changed is not None:
        relevant = {name for name in changed if not name.startswith("sys_")}
        if not relevant:
            return "only system fields changed"
        if relevant <= config.bridge_fields:
            return f"only fields bridge writes changed ({', '.join(sorted(relevant))})"
    return None
