"""The webhook receiver over a real WSGI server, and the jobs behind it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from werkzeug.serving import make_server

from bridge.config import load_config
from bridge.errors import ConfigError
from bridge.model import WorkItem
from bridge.plugins import load_registry, make_plugin_manager
from bridge.service.app import create_app
from bridge.service.runtime import Runtime
from bridge.service.tasks import ITEM_LEASE, SYNC_LEASE, Jobs, make_huey, parse_cron
from bridge.store import open_store
from bridge.store.records import Backoff
from bridge.sync import CLAIM
from tests.service.fake import BOT, FakeConnector, Plugin, sign, transient

RULES = """bridge: 1
rules:
  - {id: incidents, when: {field: type, equals: Incident}, then: {work_type: service}}
default: {work_type: unclassified}
"""
TOKEN = "status-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    (tmp_path / "status-token").write_text(TOKEN + "\n")
    (tmp_path / "bridge.yaml").write_text(
        "rules: rules\nsources:\n  - {name: desk, connector: fake}\n"
        "schedules:\n  - {source: desk, cron: '*/10 * * * *'}\n"
        "service: {status_token_file: status-token}\n"
    )
    registry = load_registry(make_plugin_manager(load_entrypoints=False, extra_plugins=[Plugin()]))
    config = load_config(tmp_path / "bridge.yaml", registry)
    FakeConnector.items = {"D-1": WorkItem("D-1", "fake", type="Incident")}
    FakeConnector.written = {}
    FakeConnector.fail_next = []
    made = Runtime(config, store=open_store(f"sqlite://{tmp_path / 'state.db'}"), registry=registry)
    yield made
    made.close()


@pytest.fixture
def server(runtime: Runtime) -> Iterator[tuple[str, list[tuple[str, str, bool]]]]:
    queued: list[tuple[str, str, bool]] = []
    app = create_app(runtime, lambda source, key, deleted: queued.append((source, key, deleted)))
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", queued
    http.shutdown()
    thread.join()


def post(
    base: str,
    body: dict[str, object],
    *,
    delivery: str = "d-1",
    signature: str | None = None,
    source: str = "desk",
) -> requests.Response:
    raw = json.dumps(body).encode()
    headers = {
        "X-Fake-Signature": signature if signature is not None else sign(raw),
        "X-Delivery": delivery,
        "Content-Type": "application/json",
    }
    return requests.post(f"{base}/webhooks/{source}", data=raw, headers=headers, timeout=5)


def test_a_signed_delivery_is_queued_once(server) -> None:
    base, queued = server
    first = post(base, {"key": "D-1"})
    assert (first.status_code, first.json()) == (202, {"status": "queued", "keys": ["D-1"]})
    again = post(base, {"key": "D-1"})  # Jira retries with the same identifier
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert queued == [("desk", "D-1", False)]


def test_bad_signatures_and_bodies_are_refused(server) -> None:
    base, queued = server
    assert post(base, {"key": "D-1"}, signature="sha256=00").status_code == 401
    assert post(base, {"key": "D-1"}, signature="").status_code == 401
    raw = b"not json"
    bad = requests.post(
        f"{base}/webhooks/desk",
        data=raw,
        timeout=5,
        headers={"X-Fake-Signature": sign(raw), "X-Delivery": "d-9"},
    )
    assert bad.status_code == 400
    assert "expected" in bad.json()["error"]
    assert queued == []


def test_own_writes_unknown_sources_and_oversized_bodies(server) -> None:
    base, queued = server
    echo = post(base, {"key": "D-1", "user": BOT}, delivery="d-2")
    assert (echo.status_code, echo.json()["status"]) == (200, "ignored")
    unknown = post(base, {"key": "D-1"}, source="nope")
    assert unknown.status_code == 404
    assert "desk" not in unknown.text  # a stranger learns no source names
    big = requests.post(f"{base}/webhooks/desk", data=b"x" * (2 * 1024 * 1024), timeout=5)
    assert big.status_code == 413
    assert queued == []


def test_a_queue_that_is_down_asks_the_sender_to_retry(runtime: Runtime) -> None:
    def broken(source: str, key: str, deleted: bool) -> None:
        raise ConnectionError("redis is down")

    raw = json.dumps({"key": "D-1"}).encode()
    headers = {"X-Fake-Signature": sign(raw), "X-Delivery": "d-3"}
    response = (
        create_app(runtime, broken).test_client().post("/webhooks/desk", data=raw, headers=headers)
    )
    assert response.status_code == 503
    # Not lost: the item is pending in the store, and the delivery was not marked seen.
    assert runtime.store.get_pending("desk", "D-1") is not None

    queued: list[tuple[str, str, bool]] = []
    back = create_app(runtime, lambda *job: queued.append(job), metrics=CollectorRegistry())
    retry = back.test_client().post("/webhooks/desk", data=raw, headers=headers)

    assert retry.status_code == 202  # the sender's retry is processed, not a duplicate
    assert queued == [("desk", "D-1", False)]
    again = back.test_client().post("/webhooks/desk", data=raw, headers=headers)
    assert again.json == {"status": "duplicate", "delivery": "d-3"}


def test_an_item_whose_job_was_lost_is_run_by_the_sweeper(runtime: Runtime) -> None:
    """The receiver recorded the item, but its job never ran (the queue lost it, or the
    worker holding it was killed): once the fast path's time is up, the sweeper queues it."""
    received = datetime.now(UTC)
    runtime.store.add_pending("desk", "D-1", "webhook", received, due=received + CLAIM)
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True))

    assert jobs.sweep() == 0  # the fast path may still be on its way
    assert FakeConnector.written == {}
    jobs.clock = lambda: received + CLAIM
    assert jobs.sweep() == 1

    assert FakeConnector.written == {"D-1": {"work_type": "service"}}
    assert runtime.store.get_pending("desk", "D-1") is None
    assert jobs.sweep() == 0


def test_status_says_which_rules_are_in_force(server, runtime: Runtime) -> None:
    base, _ = server
    good = requests.get(f"{base}/status", headers=AUTH, timeout=5).json()
    assert good["status"] == "ok"
    assert good["rules"]["in_force"] == "current"
    digest = good["rules"]["digest"]
    rules_file = runtime.config.rules[0] / "r.yaml"
    rules_file.write_text(RULES.replace("equals", "equal") + "# broken\n")
    broken = requests.get(f"{base}/status", headers=AUTH, timeout=5)
    assert broken.status_code == 503
    body = broken.json()
    assert body["status"] == "degraded"
    assert body["rules"]["digest"] == digest
    assert body["rules"]["in_force"] == "last good"
    assert "unknown operator 'equal'" in body["rules"]["error"]
    assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}


def test_metrics_count_deliveries(server) -> None:
    base, _ = server
    post(base, {"key": "D-1"}, delivery="m-1")
    post(base, {"key": "D-1"}, delivery="m-1")
    text = requests.get(f"{base}/metrics", headers=AUTH, timeout=5).text
    assert 'bridge_webhook_deliveries_total{outcome="queued",source="desk"} 1.0' in text
    assert 'bridge_webhook_deliveries_total{outcome="duplicate",source="desk"} 1.0' in text


def test_jobs_process_items_and_retry_transient_failures(runtime: Runtime) -> None:
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True))
    jobs.enqueue("desk", "D-1", False)
    assert FakeConnector.written == {"D-1": {"work_type": "service"}}
    jobs.enqueue("desk", "D-1", False)  # nothing changed: no second write
    assert [a for _, _, item, a, _ in runtime.store.audit_log("desk")] == ["written"]
    FakeConnector.fail_next.append(transient())
    failed = jobs._process("desk", "D-1")
    assert failed.action == "failed"
    row = runtime.store.get_pending("desk", "D-1")  # kept, with its error and next try
    assert row is not None
    assert row.attempts == 1
    assert row.last_error == failed.detail
    assert jobs._process("desk", "D-1").action == "unchanged"
    assert runtime.store.get_pending("desk", "D-1") is None
    assert jobs._process("desk", "GONE").action == "skipped"
    jobs.enqueue("desk", "D-2", True)
    assert runtime.store.audit_log("desk", 1)[0][3] == "deleted"


def test_scheduled_sync_runs_and_never_twice_at_once(runtime: Runtime) -> None:
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True))
    assert len(jobs.syncs) == 1
    report = jobs.sync("desk")
    assert report is not None
    assert report.items_written == 1
    other = runtime.store.acquire_lease("sync:desk", "another-worker", now(), SYNC_LEASE)
    assert other.acquired
    assert jobs.sync("desk") is None  # skipped, with a warning naming the holder
    # That worker was killed: its lease runs out, and the next sync runs.
    jobs.clock = lambda: now() + SYNC_LEASE + timedelta(seconds=1)
    assert jobs.sync("desk") is not None


def now() -> datetime:
    return datetime.now(UTC)


def test_cron_expressions() -> None:
    assert parse_cron("*/10 * * * *") is not None
    with pytest.raises(ConfigError, match="needs 5 fields"):
        parse_cron("*/10 * * *")


def test_syncs_and_items_share_one_snapshot_of_the_runtime_engines(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(rule_set: object) -> None:
        raise AssertionError("a scheduled sync rebuilt the engines the runtime keeps")

    monkeypatch.setattr("bridge.sync.Engine", refuse)
    monkeypatch.setattr("bridge.sync.KpiEngine", refuse)
    prepared: list[object] = []
    monkeypatch.setattr(FakeConnector, "prepare", lambda self, rule_set: prepared.append(rule_set))
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True))
    snapshot = runtime.evaluators()
    report = jobs.sync("desk")
    assert report is not None
    assert report.items_written == 1
    assert runtime.evaluators() is snapshot

    # The rules reload right after the item's task took its snapshot: the connector must
    # still be prepared for the rules the engines were built from.
    taken = runtime.evaluators

    def then_reload():  # type: ignore[no-untyped-def]
        evaluators = taken()
        (tmp_path / "rules" / "r.yaml").write_text(RULES + "# edited\n")
        runtime.refresh_rules()
        return evaluators

    monkeypatch.setattr(runtime, "evaluators", then_reload)
    FakeConnector.written = {}
    assert jobs._process("desk", "D-1").action == "written"
    assert runtime.rules.current.digest != snapshot.digest
    assert prepared == [snapshot.rule_set, snapshot.rule_set]


def test_worker_metrics_count_jobs_and_read_pending_items_from_the_store(
    runtime: Runtime,
) -> None:
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True))
    FakeConnector.fail_next.append(transient())
    jobs.enqueue("desk", "D-1", False)  # fails: pending
    runtime.store.fail_pending("desk", "X-9", "refused", now(), Backoff(max_attempts=1))

    text = generate_latest(jobs.metrics).decode()

    assert 'bridge_pending_items{source="desk"} 1.0' in text
    assert 'bridge_given_up_items{source="desk"} 1.0' in text
    assert 'bridge_worker_items_total{outcome="failed",source="desk"} 1.0' in text


def test_a_job_for_an_item_another_job_holds_is_coalesced_into_it(runtime: Runtime) -> None:
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True))
    other = runtime.store.acquire_lease("item:desk:D-1", "another-worker", now(), ITEM_LEASE)
    assert other.acquired

    coalesced = jobs._process("desk", "D-1")

    assert coalesced.action == "coalesced"
    assert FakeConnector.written == {}  # not fetched, not written
    assert runtime.store.get_pending("desk", "D-1") is not None  # left for the holder
    runtime.store.release_lease("item:desk:D-1", "another-worker")
    assert jobs._process("desk", "D-1").action == "written"
    assert runtime.store.get_pending("desk", "D-1") is None


def test_a_change_arriving_while_its_item_is_processed_is_evaluated_once_more(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True))
    runtime.store.add_pending("desk", "D-1", "webhook", now())
    fetched: list[str] = []
    real_fetch = FakeConnector.fetch

    def fetch(self: FakeConnector, key: str) -> WorkItem:
        fetched.append(key)
        if len(fetched) == 1:  # a second delivery lands meanwhile
            runtime.store.add_pending("desk", key, "webhook", now())
        return real_fetch(self, key)

    monkeypatch.setattr(FakeConnector, "fetch", fetch)

    assert jobs._process("desk", "D-1").action in ("written", "unchanged")

    assert fetched == ["D-1", "D-1"]  # once more for the change that came in between
    assert runtime.store.get_pending("desk", "D-1") is None


def test_an_export_source_receives_no_deliveries(tmp_path: Path) -> None:
    """A ``files`` source has no webhooks: a delivery to it is answered as one to a source
    that does not exist (a bare 404), never a 500 or a queued job."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "page.json").write_text('{"issues": []}')
    (tmp_path / "bridge.yaml").write_text(
        "rules: rules\nsources:\n  - {name: desk, connector: fake}\n"
        "  - {name: export, connector: files, path: export}\n"
    )
    registry = load_registry(make_plugin_manager(load_entrypoints=False, extra_plugins=[Plugin()]))
    config = load_config(tmp_path / "bridge.yaml", registry)
    runtime = Runtime(config, store=open_store(f"sqlite://{tmp_path / 's.db'}"), registry=registry)
    queued: list[object] = []
    try:
        client = create_app(runtime, lambda *job: queued.append(job)).test_client()
        raw = json.dumps({"key": "D-1"}).encode()
        headers = {"X-Fake-Signature": sign(raw), "X-Delivery": "d-9"}
        export = client.post("/webhooks/export", data=raw, headers=headers)
        unknown = client.post("/webhooks/nowhere", data=raw, headers=headers)
        assert export.status_code == unknown.status_code == 404
        assert export.get_json() == unknown.get_json()
        assert client.post("/webhooks/desk", data=raw, headers=headers).status_code == 202
        assert len(queued) == 1
    finally:
        runtime.close()
