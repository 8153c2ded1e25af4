"""The ``sha256=<MAC>`` check both webhook receivers share; their wording is tested with them."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from bridge.connectors.signatures import (
    SignatureWording,
    base64_mac,
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


# -- MAC encodings and prefixes ----------------------------------------------------------------


def test_base64_mac() -> None:
    text = base64.b64encode(MAC.digest()).decode()
    assert base64_mac(text) == MAC.digest()
    assert base64_mac(f" {text.rstrip('=')} ") == MAC.digest()  # padding left off
    assert base64_mac(base64.b64encode(MAC.digest()[:-1]).decode()) is None  # 31 bytes
    assert base64_mac(base64.urlsafe_b64encode(b"\xfb" * 32).decode()) is None  # not standard
    assert base64_mac("!" * 44) is None
    assert base64_mac(MAC.hexdigest()) is None


def check_with(value: str, prefix: str | None) -> None:
    verify_sha256_signature(value, BODY, SECRET, decode_mac=hex_mac, wording=WORDING, prefix=prefix)


def test_without_a_prefix_setting_the_label_is_optional() -> None:
    check_with(MAC.hexdigest(), None)
    check_with(f"sha256={MAC.hexdigest()}", None)
    check_with(f" Sha256 = {MAC.hexdigest()}", None)
    with pytest.raises(WebhookSignatureError, match="X-Sig uses 'sha1'; bridge accepts only"):
        check_with(f"sha1={MAC.hexdigest()}", None)


def test_an_empty_prefix_means_the_mac_alone() -> None:
    check_with(MAC.hexdigest(), "")
    with pytest.raises(WebhookSignatureError) as caught:
        check_with(f"sha256={MAC.hexdigest()}", "")
    assert str(caught.value).startswith("X-Sig is malformed: expected the MAC alone")


def test_another_prefix_must_start_the_value() -> None:
    check_with(f"HMAC {MAC.hexdigest()}", "HMAC ")
    check_with(f"v1={MAC.hexdigest()}", "v1=")
    with pytest.raises(WebhookSignatureError, match="X-Sig is malformed: NOSEP"):
        check_with(MAC.hexdigest(), "HMAC ")
    with pytest.raises(WebhookSignatureError, match="X-Sig uses 'sha256'"):
        check_with(f"sha256={MAC.hexdigest()}", "v1=")


def test_a_base64_mac_is_never_read_as_a_label() -> None:
    """Base64 ends in '=' padding; only '<label>=' followed by more text is a prefix."""
    text = base64.b64encode(MAC.digest()).decode()
    assert text.endswith("=")
    verify_sha256_signature(text, BODY, SECRET, decode_mac=base64_mac, wording=WORDING, prefix="")


@pytest.mark.parametrize("value", ["sha256=", "sha256=ü" * 10, "=" * 44, "sha256=" + "=" * 64])
def test_garbage_is_a_signature_error_not_a_crash(value: str) -> None:
    with pytest.raises(WebhookSignatureError):
        verify_sha256_signature(
            value, BODY, SECRET, decode_mac=base64_mac, wording=WORDING, prefix=None
        )


def test_the_macs_are_compared_as_bytes_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[type, type]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        seen.append((type(a), type(b)))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    check(f"sha256={MAC.hexdigest()}")
    with pytest.raises(WebhookSignatureError):
        check(f"sha256={'0' * 64}")
    assert seen == [(bytes, bytes), (bytes, bytes)]
