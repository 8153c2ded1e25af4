"""Checking ``sha256=<MAC>`` webhook signatures, shared by the connectors that receive them.

Jira signs its deliveries itself and the ServiceNow Business Rule bridge documents signs
them the same way, but each side words its errors for the admin who set that system up and
reads the MAC its own way (Jira: hex; ServiceNow: hex or Base64). So the checking order, the
HMAC and the constant-time comparison live here once, and each connector brings its header
name, its MAC decoder and its wording. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bridge.errors import WebhookSignatureError

__all__ = ["SignatureWording", "header_value", "hex_mac", "verify_sha256_signature"]

_HEX_MAC = re.compile(r"[0-9a-fA-F]{64}")

MacDecoder = Callable[[str], bytes | None]
"""The 32 MAC bytes a signature's text after ``sha256=`` stands for; None when malformed."""


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


@dataclass(frozen=True, slots=True)
class SignatureWording:
    """How one connector words each refusal: ``<header> is malformed: <no_separator>``,
    ``<header> uses '<algorithm>'; bridge accepts only <accepted>``, ``<header> is
    malformed: <bad_mac>`` and ``<header> does not match the body: <mismatch>``."""

    header: str
    no_separator: str
    accepted: str
    bad_mac: str
    mismatch: str


def verify_sha256_signature(
    value: str,
    body: bytes,
    secret: bytes,
    *,
    decode_mac: MacDecoder,
    wording: SignatureWording,
) -> None:
    """Raise WebhookSignatureError unless ``value`` is ``sha256=<HMAC-SHA256(secret, body)>``.

    The MAC is compared in constant time, so a forger learns nothing from how long a refusal
    takes.
    """
    algorithm, sep, mac = value.strip().partition("=")
    if not sep:
        raise WebhookSignatureError(f"{wording.header} is malformed: {wording.no_separator}")
    if algorithm.strip().lower() != "sha256":
        raise WebhookSignatureError(
            f"{wording.header} uses {algorithm.strip()!r}; bridge accepts only {wording.accepted}"
        )
    given = decode_mac(mac.strip())
    if given is None:
        raise WebhookSignatureError(f"{wording.header} is malformed: {wording.bad_mac}")
    expected = hmac.new(secret, body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise WebhookSignatureError(f"{wording.header} does not match the body: {wording.mismatch}")
