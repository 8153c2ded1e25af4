"""The ``sha256=<MAC>`` check both webhook receivers share; their wording is tested with them."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bridge.connectors.signatures import (
    SignatureWording,
    header_value,
    hex_mac,
    verify_sha256_signature,
)
from bridge.errors import WebhookSignatureError

SECRET = b"s3cret"
BODY = b'{"a": 1}'
MAC = hmac.new(SECRET, BODY, hashlib.sha256)
WORDING = SignatureWording(
    header="X-Sig",
    no_separator="NOSEP",
    accepted="ONLY-SHA256",
    bad_mac="BADMAC",
    mismatch="MISMATCH",
)


def check(value: str) -> None:
    verify_sha256_signature(value, BODY, SECRET, decode_mac=hex_mac, wording=WORDING)


def test_header_value_ignores_case() -> None:
    headers = {"content-type": "x", "X-SIG": "v"}
    assert header_value(headers, "x-sig") == "v"
    assert header_value(headers, "X-Other") is None


def test_hex_mac() -> None:
    assert hex_mac(f" {MAC.hexdigest().upper()} ") == MAC.digest()
    assert hex_mac(MAC.hexdigest()[:-1]) is None
    assert hex_mac("zz" * 32) is None


def test_a_good_signature_passes_in_any_case_and_spacing() -> None:
    check(f"sha256={MAC.hexdigest()}")
    check(f" SHA256 = {MAC.hexdigest().upper()} ")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (MAC.hexdigest(), "X-Sig is malformed: NOSEP"),
        (f"sha1={MAC.hexdigest()}", "X-Sig uses 'sha1'; bridge accepts only ONLY-SHA256"),
        ("sha256=abc", "X-Sig is malformed: BADMAC"),
        (f"sha256={'0' * 64}", "X-Sig does not match the body: MISMATCH"),
    ],
)
def test_each_refusal_uses_the_callers_wording(value: str, message: str) -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        check(value)
    assert str(caught.value) == message
