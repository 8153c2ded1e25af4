"""Checking HMAC-SHA256 webhook signatures, shared by the connectors that receive them.

Jira signs its deliveries itself (``sha256=<hex>``); ServiceNow sends whatever the admin's
Business Rule or outbound REST message computes, in the header, encoding and form that
message was built with. So the checking order, the HMAC and the constant-time comparison live
here once, and each connector brings its header name, its MAC decoder, the prefix it expects
and its wording (each side words errors for the admin who set that system up). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bridge.errors import WebhookSignatureError

__all__ = [
    "SHA256_PREFIX",
    "SignatureWording",
    "base64_mac",
    "header_value",
    "hex_mac",
    "verify_sha256_signature",
]

SHA256_PREFIX = "sha256="
MAC_BYTES = 32  # SHA-256

_HEX_MAC = re.compile(r"[0-9a-fA-F]{64}")
_BASE64_MAC = re.compile(r"[A-Za-z0-9+/]{43}=?")
# ``<algorithm>=`` before a MAC. Neither hex nor Base64 has a '=' followed by anything but
# padding, so a label is never mistaken for (part of) a MAC.
_LABEL = re.compile(r"\s*(?P<label>[A-Za-z][A-Za-z0-9_-]{0,31})\s*=\s*(?P<rest>.*[^=\s].*)")

MacDecoder = Callable[[str], bytes | None]
"""The 32 MAC bytes a signature's text (its prefix removed) stands for; None when malformed."""


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name in any case: servers and proxies differ in how they spell them, and
    not every framework hands over a case-insensitive mapping."""
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value)
    return None


def hex_mac(text: str) -> bytes | None:
    """The MAC of ``<64 hex digits>`` (either case), None when it is not that."""
    text = text.strip()
    return bytes.fromhex(text) if _HEX_MAC.fullmatch(text) else None


def base64_mac(text: str) -> bytes | None:
    """The MAC of ``<44 Base64 characters>`` (standard alphabet; the padding '=' may be left
    off, as some tools do), None when it is not that."""
    text = text.strip()
    if not _BASE64_MAC.fullmatch(text):
        return None
    try:
        raw = base64.b64decode(text.rstrip("=") + "=", validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == MAC_BYTES else None


@dataclass(frozen=True, slots=True)
class SignatureWording:
    """How one connector words each refusal: ``<header> is malformed: <no_separator>`` (the
    expected prefix is missing), ``<header> uses '<algorithm>'; bridge accepts only
    <accepted>``, ``<header> is malformed: <bad_mac>``, ``<header> is malformed:
    <unexpected_prefix>`` (a prefix where none is expected) and ``<header> does not match the
    body: <mismatch>``."""

    header: str
    no_separator: str
    accepted: str
    bad_mac: str
    mismatch: str
    unexpected_prefix: str = "expected the MAC alone, without an '<algorithm>=' prefix"


def _mac_text(value: str, prefix: str | None, wording: SignatureWording) -> str:
    """The MAC part of a signature, after checking its prefix.

    ``prefix`` None accepts ``sha256=<MAC>`` and a bare ``<MAC>``; ``""`` only a bare MAC; an
    ``<algorithm>=`` prefix (``sha256=``) is matched in any case and spacing; any other
    prefix must start the value (any case).
    """
    text = value.strip()
    labelled = _LABEL.fullmatch(text)
    if prefix is None or (prefix.endswith("=") and _LABEL.fullmatch(prefix + "x")):
        wanted = (prefix or SHA256_PREFIX)[:-1].strip().lower()
        if labelled is not None:
            label = labelled.group("label")
            if label.lower() != wanted:
                raise WebhookSignatureError(
                    f"{wording.header} uses {label!r}; bridge accepts only {wording.accepted}"
                )
            return labelled.group("rest").strip()
        if prefix is None:
            return text
        raise WebhookSignatureError(f"{wording.header} is malformed: {wording.no_separator}")
    if not prefix:
        if labelled is not None:
            raise WebhookSignatureError(
                f"{wording.header} is malformed: {wording.unexpected_prefix}"
            )
        return text
    if text[: len(prefix)].lower() == prefix.lower():
        return text[len(prefix) :].strip()
    raise WebhookSignatureError(f"{wording.header} is malformed: {wording.no_separator}")


def verify_sha256_signature(
    value: str,
    body: bytes,
    secret: bytes,
    *,
    decode_mac: MacDecoder,
    wording: SignatureWording,
    prefix: str | None = SHA256_PREFIX,
) -> None:
    """Raise WebhookSignatureError unless ``value`` is ``<prefix><HMAC-SHA256(secret, body)>``
    (see :func:`_mac_text` for ``prefix``).

    The MAC is compared as bytes in constant time, so a forger learns nothing from how long a
    refusal takes; a MAC that does not decode is a refusal like any other, never a crash.
    """
    given = decode_mac(_mac_text(value, prefix, wording))
    if given is None:
        raise WebhookSignatureError(f"{wording.header} is malformed: {wording.bad_mac}")
    expected = hmac.new(secret, body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise WebhookSignatureError(f"{wording.header} does not match the body: {wording.mismatch}")
