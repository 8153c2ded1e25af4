"""What the receiver tells whoever asks: ok or degraded to anyone, the detail of /status
and the metrics only with the status token, nothing about the sources to a wrong URL — and
a body over the cap is refused as too large even when it comes in chunks."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from prometheus_client import CollectorRegistry
from werkzeug.serving import BaseWSGIServer, make_server

from bridge import __version__
from bridge.config import load_config
from bridge.errors import ConfigError, ConfigInvalidError
from bridge.model import WorkItem
from bridge.plugins import load_registry, make_plugin_manager
from bridge.service.app import MAX_BODY_BYTES, STATUS_TOKEN_ENV, create_app, read_status_token
from bridge.service.runtime import Runtime
from bridge.store import open_store
from tests.service.fake import FakeConnector, Plugin, sign

TOKEN = "status-token-0123456789abcdef"
RULES = """bridge: 1
rules:
  - {id: incidents, when: {field: type, equals: Incident}, then: {work_type: service}}
default: {work_type: unclassified}
"""
SOURCE = "desk-7f3a"  # a name no message would hold by chance

MakeRuntime = Callable[..., Runtime]


@pytest.fixture
def make_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeRuntime]:
    """A runtime over the fake connector, with ``service`` as bridge.yaml's service: section."""
    monkeypatch.delenv(STATUS_TOKEN_ENV, raising=False)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    registry = load_registry(make_plugin_manager(load_entrypoints=False, extra_plugins=[Plugin()]))
    FakeConnector.items = {"D-1": WorkItem("D-1", "fake", type="Incident")}
    FakeConnector.written = {}
    FakeConnector.fail_next = []
    made: list[Runtime] = []

    def make(service: str | None = None) -> Runtime:
        path = tmp_path / "bridge.yaml"
        path.write_text(
            f"rules: rules\nsources:\n  - {{name: {SOURCE}, connector: fake}}\n"
            + (f"service: {service}\n" if service else "")
        )
        store = open_store(f"sqlite://{tmp_path / f'state-{len(made)}.db'}")
        runtime = Runtime(load_config(path, registry), store=store, registry=registry)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], str]]:
    """Start a real WSGI server for an app; its base URL."""
    running: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(app: Flask) -> str:
        http = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=http.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        running.append((http, thread))
        return f"http://127.0.0.1:{http.server_port}"

    yield start
    for http, thread in running:
        http.shutdown()
        thread.join()


def app_for(runtime: Runtime) -> Flask:
    return create_app(runtime, lambda *job: None, metrics=CollectorRegistry())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_file(tmp_path: Path, text: str = TOKEN + "\n") -> str:
    (tmp_path / "status-token").write_text(text)
    return "{status_token_file: status-token}"


def break_rules(runtime: Runtime) -> None:
    (runtime.config.rules[0] / "r.yaml").write_text(RULES.replace("equals", "equal"))


# -- /status ------------------------------------------------------------------------------------


def test_a_stranger_asking_for_status_hears_only_ok_or_degraded(
    make_runtime: MakeRuntime, serve: Callable[[Flask], str], tmp_path: Path
) -> None:
    runtime = make_runtime(token_file(tmp_path))
    base = serve(app_for(runtime))

    healthy = requests.get(f"{base}/status", timeout=5)
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok"})
    break_rules(runtime)
    degraded = requests.get(f"{base}/status", timeout=5)
    assert (degraded.status_code, degraded.json()) == (503, {"status": "degraded"})
    for told in (healthy.text, degraded.text):
        assert SOURCE not in told
        assert "r.yaml" not in told  # no rule errors, so no paths or line numbers
    assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}


def test_the_status_token_unlocks_which_rules_are_in_force_and_what_waits(
    make_runtime: MakeRuntime, serve: Callable[[Flask], str], tmp_path: Path
) -> None:
    runtime = make_runtime(token_file(tmp_path))
    base = serve(app_for(runtime))

    detail = requests.get(f"{base}/status", headers=bearer(TOKEN), timeout=5)
    assert detail.status_code == 200
    body = detail.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["rules"]["in_force"] == "current"
    assert body["sources"] == [SOURCE]
    assert "pending" in body
    # RFC 6750: the scheme is case-insensitive.
    lower = requests.get(f"{base}/status", headers={"Authorization": f"bearer {TOKEN}"}, timeout=5)
    assert lower.json()["rules"] == body["rules"]

    break_rules(runtime)
    broken = requests.get(f"{base}/status", headers=bearer(TOKEN), timeout=5)
    assert broken.status_code == 503
    assert broken.json()["rules"]["in_force"] == "last good"
    assert "r.yaml:" in broken.json()["rules"]["error"]


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (f"Bearer {TOKEN}x", 'Bearer realm="bridge", error="invalid_token"'),
        (f"Bearer {TOKEN[:-1]}", 'Bearer realm="bridge", error="invalid_token"'),
        ("Bearer ", 'Bearer realm="bridge"'),
        (f"Basic {TOKEN}", 'Bearer realm="bridge"'),
        (TOKEN, 'Bearer realm="bridge"'),
    ],
    ids=["one-character-more", "one-character-less", "no-token", "basic", "no-scheme"],
)
def test_a_wrong_token_is_refused_with_a_bearer_challenge_and_no_detail(
    make_runtime: MakeRuntime,
    serve: Callable[[Flask], str],
    tmp_path: Path,
    authorization: str,
    challenge: str,
) -> None:
    base = serve(app_for(make_runtime(token_file(tmp_path))))

    refused = requests.get(f"{base}/status", headers={"Authorization": authorization}, timeout=5)

    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == challenge
    assert set(refused.json()) == {"error"}
    assert SOURCE not in refused.text


def test_without_a_configured_token_no_one_gets_the_detail_and_metrics_stay_open(
    make_runtime: MakeRuntime, serve: Callable[[Flask], str], caplog: pytest.LogCaptureFixture
) -> None:
    base = serve(app_for(make_runtime()))

    assert requests.get(f"{base}/status", timeout=5).json() == {"status": "ok"}
    with caplog.at_level(logging.WARNING, logger="bridge.service"):
        for _ in range(3):
            asked = requests.get(f"{base}/status", headers=bearer(TOKEN), timeout=5)
            assert asked.status_code == 401
    # The operator is told why, once, not on every request.
    told = [r.getMessage() for r in caplog.records if r.name == "bridge.service"]
    assert len(told) == 1
    assert "no status token is configured" in told[0]
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 200


# -- /metrics -----------------------------------------------------------------------------------


def test_metrics_need_the_token_when_one_is_configured(
    make_runtime: MakeRuntime, serve: Callable[[Flask], str], tmp_path: Path
) -> None:
    base = serve(app_for(make_runtime(token_file(tmp_path))))
    raw = json.dumps({"key": "D-1"}).encode()
    requests.post(
        f"{base}/webhooks/{SOURCE}",
        data=raw,
        headers={"X-Fake-Signature": sign(raw), "X-Delivery": "m-1"},
        timeout=5,
    )

    anonymous = requests.get(f"{base}/metrics", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="bridge"'
    assert SOURCE not in anonymous.text
    wrong = requests.get(f"{base}/metrics", headers=bearer("x" * 32), timeout=5)
    assert wrong.status_code == 401
    scraped = requests.get(f"{base}/metrics", headers=bearer(TOKEN), timeout=5)
    assert scraped.status_code == 200
    assert (
        f'bridge_webhook_deliveries_total{{outcome="queued",source="{SOURCE}"}} 1.0' in scraped.text
    )


# -- where the token comes from -----------------------------------------------------------------


def test_the_token_comes_from_the_variable_bridge_yaml_names(
    make_runtime: MakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_STATUS_TOKEN", f"  {TOKEN}\n")
    monkeypatch.setenv(STATUS_TOKEN_ENV, "not-this-one-0123456789")
    runtime = make_runtime("{status_token_env: OPS_STATUS_TOKEN}")
    assert read_status_token(runtime.config) == TOKEN


def test_the_file_is_read_when_the_variable_is_unset(
    make_runtime: MakeRuntime, tmp_path: Path
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "status").write_text(TOKEN)
    runtime = make_runtime(
        "{status_token_env: UNSET_STATUS_TOKEN, status_token_file: secrets/status}"
    )
    assert read_status_token(runtime.config) == TOKEN


def test_bridge_status_token_is_the_default(
    make_runtime: MakeRuntime, monkeypatch: pytest.MonkeyPatch, serve: Callable[[Flask], str]
) -> None:
    runtime = make_runtime()
    assert read_status_token(runtime.config) is None
    monkeypatch.setenv(STATUS_TOKEN_ENV, TOKEN)
    assert read_status_token(runtime.config) == TOKEN
    base = serve(app_for(runtime))
    assert requests.get(f"{base}/status", headers=bearer(TOKEN), timeout=5).json()["sources"] == [
        SOURCE
    ]


@pytest.mark.parametrize(
    ("service", "file_text", "message"),
    [
        ("{status_token_env: UNSET_STATUS_TOKEN}", None, "status_token_env: the environment"),
        ("{status_token_file: missing}", None, "status_token_file: cannot read the file"),
        ("{status_token_file: status-token}", "\n", "is empty"),
        ("{status_token_file: status-token}", "hunter2\n", "at least 16"),
        ("{status_token_file: status-token}", "a token with spaces in it\n", "without spaces"),
    ],
    ids=["variable-unset", "file-missing", "file-empty", "too-short", "spaces"],
)
def test_a_token_that_cannot_be_read_or_guessed_too_easily_stops_the_service(
    make_runtime: MakeRuntime,
    tmp_path: Path,
    service: str,
    file_text: str | None,
    message: str,
) -> None:
    if file_text is not None:
        (tmp_path / "status-token").write_text(file_text)
    runtime = make_runtime(service)
    with pytest.raises(ConfigError, match=message) as caught:
        create_app(runtime, lambda *job: None, metrics=CollectorRegistry())
    assert "hunter2" not in str(caught.value)  # the message names the setting, not the secret


def test_a_token_written_into_bridge_yaml_is_an_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        "sources:\n  - {name: export, connector: files, path: .}\n"
        f"service:\n  status_token: {TOKEN}\n"
    )
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(path)
    assert "bridge.yaml:4:" in str(caught.value)
    assert "status_token" in str(caught.value)


# -- strangers at the webhook URLs --------------------------------------------------------------


def test_an_unknown_source_is_a_bare_404(
    make_runtime: MakeRuntime, serve: Callable[[Flask], str]
) -> None:
    base = serve(app_for(make_runtime()))
    for name in ("nope", SOURCE.upper(), SOURCE[:-1], "..%2f"):
        answer = requests.post(f"{base}/webhooks/{name}", data=b"{}", timeout=5)
        assert answer.status_code == 404, name
        assert SOURCE not in answer.text


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """``body`` as a generator: requests sends it chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_over_the_cap_is_refused_as_too_large_before_its_signature(
    make_runtime: MakeRuntime, serve: Callable[[Flask], str]
) -> None:
    base = serve(app_for(make_runtime()))
    url = f"{base}/webhooks/{SOURCE}"
    over = b" " * MAX_BODY_BYTES + json.dumps({"key": "D-1"}).encode()

    signed = requests.post(
        url, data=chunks(over), headers={"X-Fake-Signature": sign(over)}, timeout=30
    )
    unsigned = requests.post(url, data=chunks(over), timeout=30)

    assert signed.status_code == 413, signed.text
    assert unsigned.status_code == 413, unsigned.text
    # Exactly at the cap is still read whole, and reaches the parser (which wants JSON).
    at_cap = b"x" * MAX_BODY_BYTES
    whole = requests.post(
        url, data=chunks(at_cap), headers={"X-Fake-Signature": sign(at_cap)}, timeout=30
    )
    assert whole.status_code == 400, whole.text
    small = json.dumps({"key": "D-1"}).encode()
    queued = requests.post(
        url,
        data=chunks(small),
        headers={"X-Fake-Signature": sign(small), "X-Delivery": "c-1"},
        timeout=30,
    )
    assert queued.status_code == 202, queued.text
