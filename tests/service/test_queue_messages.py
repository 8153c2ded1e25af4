"""The job queue carries JSON that bridge wrote, never pickle: a message that is not
bridge's is refused with a warning, never run, and the worker goes on with the next one.

The queue tests run on the SQLite queue and on a real Redis (``BRIDGE_TEST_REDIS_URL``,
default database 15 of 127.0.0.1:6379, under a queue name of their own that they delete);
they are skipped, saying why, when Redis is not reachable. The worker is driven one step
at a time (huey's own ``Worker.loop``), so nothing waits on a clock.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from huey import RedisHuey, SqliteHuey
from huey.consumer import Worker
from huey.registry import Message
from huey.serializer import Serializer
from huey.utils import Error

from bridge.config import load_config
from bridge.model import WorkItem
from bridge.plugins import load_registry, make_plugin_manager
from bridge.service.messages import (
    MARKER,
    MAX_MESSAGE_BYTES,
    JsonSerializer,
    RefusedMessage,
)
from bridge.service.runtime import Runtime
from bridge.service.tasks import Jobs, make_huey
from bridge.store import open_store
from tests.service.fake import FakeConnector, Plugin, transient

RULES = """bridge: 1
rules:
  - {id: incidents, when: {field: type, equals: Incident}, then: {work_type: service}}
default: {work_type: unclassified}
"""

REDIS_URL = os.environ.get("BRIDGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class Touch:
    """Unpickling this creates a file: what an attacker pushes to run code in the worker."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def exploit(marker: Path) -> bytes:
    return pickle.dumps(Touch(marker))


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.delenv("BRIDGE_REDIS_URL", raising=False)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    (tmp_path / "bridge.yaml").write_text(
        "rules: rules\nsources:\n  - {name: desk, connector: fake}\n"
        "schedules:\n  - {source: desk, cron: '*/10 * * * *'}\n"
    )
    registry = load_registry(make_plugin_manager(load_entrypoints=False, extra_plugins=[Plugin()]))
    config = load_config(tmp_path / "bridge.yaml", registry)
    FakeConnector.items = {
        f"D-{n}": WorkItem(f"D-{n}", "fake", type="Incident") for n in range(1, 6)
    }
    FakeConnector.written = {}
    FakeConnector.fail_next = []
    made = Runtime(config, store=open_store(f"sqlite://{tmp_path / 'state.db'}"), registry=registry)
    yield made
    made.close()


@dataclass
class Queue:
    """A real bridge queue, and what an attacker with access to its storage could do."""

    jobs: Jobs
    huey: Any
    push: Callable[[bytes], None]  # raw bytes onto the queue, past bridge and huey
    stored: Callable[[], int]  # entries in the store huey keeps results and locks in
    size: Callable[[], int]

    def step(self) -> None:
        """One turn of ``bridge worker``'s loop: dequeue, then execute."""
        stop = threading.Event()
        stop.set()  # a worker that backs off does not wait
        Worker(self.huey, stop, 0.01, 0.01, 1.0).loop()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def queue(
    request: pytest.FixtureRequest, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Queue]:
    if request.param == "sqlite":
        huey = make_huey(runtime.config)
        assert isinstance(huey, SqliteHuey)
        path = runtime.config.path.parent / "bridge-queue.db"
        assert huey.storage.filename == str(path)

        def push(data: bytes) -> None:
            with sqlite3.connect(path) as conn:
                conn.execute(
                    "insert into task (queue, data, priority) values (?, ?, 0)", (huey.name, data)
                )
            conn.close()

        def count(sql: str) -> int:
            conn = sqlite3.connect(path)
            try:
                return int(conn.execute(sql, (huey.name,)).fetchone()[0])
            finally:
                conn.close()

        yield Queue(
            Jobs(runtime, huey),
            huey,
            push,
            lambda: count("select count(*) from kv where queue = ?"),
            lambda: count("select count(*) from task where queue = ?"),
        )
        huey.storage.close()
        return

    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"needs Redis at {REDIS_URL} (set BRIDGE_TEST_REDIS_URL): {exc}")
    name = f"bridge_test_{uuid.uuid4().hex}"
    monkeypatch.setenv("BRIDGE_REDIS_URL", REDIS_URL)
    huey = make_huey(runtime.config, name=name)
    assert isinstance(huey, RedisHuey)
    queue_key, results_key = f"huey.redis.{name}", f"huey.results.{name}"
    assert (huey.storage.queue_key, huey.storage.result_key) == (queue_key, results_key)
    try:
        yield Queue(
            Jobs(runtime, huey),
            huey,
            lambda data: client.lpush(queue_key, data),
            lambda: int(client.hlen(results_key)),
            lambda: int(client.llen(queue_key)),
        )
    finally:
        keys = list(client.scan_iter(match=f"huey.*{name}*"))
        if keys:
            client.delete(*keys)
        huey.storage.pool.disconnect()
        client.close()


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bridge.queue"]


# ---- the issue: a pickle on the queue -------------------------------------------------------


def test_the_crafted_pickle_runs_code_when_unpickled(tmp_path: Path) -> None:
    # The payload the tests push is a real exploit: plain pickle creates the file.
    marker = tmp_path / "unpickled"
    pickle.loads(exploit(marker))  # noqa: S301 - the point of the test
    assert marker.exists()


def test_a_pickle_on_the_queue_is_refused_not_run_and_the_next_message_runs(
    queue: Queue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"
    queue.push(exploit(marker))
    queue.jobs.enqueue("desk", "D-1", False)
    assert queue.size() == 2

    with caplog.at_level(logging.INFO):
        queue.step()

    assert not marker.exists()
    assert FakeConnector.written == {"D-1": {"work_type": "service"}}
    assert queue.size() == 0
    [warning] = refusals(caplog)
    assert warning.levelno == logging.WARNING
    text = warning.getMessage()
    assert "refused a message" in text
    assert "dropped without running it" in text
    assert "not UTF-8" in text
    assert str(marker) not in text  # a short prefix and the length, not the payload
    assert f"{len(exploit(marker))} bytes" in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_pickle_in_the_schedule_is_refused_not_run(
    queue: Queue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"
    now = queue.huey._get_timestamp()
    queue.huey.storage.add_to_schedule(exploit(marker), now - timedelta(minutes=1))
    queue.huey.add_schedule(queue.jobs.process.s("desk", "D-1", eta=now - timedelta(seconds=1)))

    with caplog.at_level(logging.WARNING, logger="bridge.queue"):
        due = queue.huey.read_schedule(now)

    assert not marker.exists()
    assert [task.args for task in due] == [("desk", "D-1")]
    assert len(refusals(caplog)) == 1


def test_garbage_and_foreign_messages_are_refused_and_the_worker_goes_on(
    queue: Queue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = queue.huey._registry.task_to_string(queue.jobs.process.task_class)
    stock = Message("t-1", name, None, 0, 0, None, ("desk", "D-2"), {}, None, None, None, None)

    def ours(task: dict[str, Any]) -> bytes:
        return json.dumps({MARKER: 1, "task": task}).encode()

    foreign = [
        Serializer().serialize(stock),  # what stock huey queued: a pickle of a real task
        b"",
        b"\x00\xffgarbage",
        b"[1, 2, 3]",
        b'{"id": "t-1", "name": "x"}',  # JSON, but no marker
        json.dumps({MARKER: 2, "task": {"id": "t", "name": name}}).encode(),
        json.dumps({MARKER: True, "task": {"id": "t", "name": name}}).encode(),
        json.dumps({MARKER: 1, "value": "1"}).encode(),  # a value where a task belongs
        ours({"id": "t", "name": "os.system", "args": ["touch /tmp/x"]}),
        ours({"id": "t", "name": name, "args": ["desk"]}),  # arguments it does not take
        ours({"id": "t", "name": name, "args": ["desk", "D-2"], "kwargs": {"evil": 1}}),
        ours({"id": "t", "name": name, "args": "desk"}),
        ours({"id": "t", "name": name, "args": ["desk", "D-2"], "eta": "tomorrow"}),
        ours({"id": "t", "name": name, "args": ["desk", "D-2"], "pickle": "gASV"}),
        ours({"id": "t", "name": name, "args": ["desk", {"$pickle": "gASV"}]}),
    ]
    for data in foreign:
        queue.push(data)
    queue.jobs.enqueue("desk", "D-1", False)

    with caplog.at_level(logging.WARNING):
        queue.step()

    assert FakeConnector.written == {"D-1": {"work_type": "service"}}  # never D-2
    assert queue.size() == 0
    warnings = refusals(caplog)
    assert len(warnings) == len(foreign)
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert "no task named 'os.system' here" in warnings[8].getMessage()
    assert "touch /tmp/x" not in warnings[8].getMessage()
    assert "arguments that task" in warnings[9].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---- bridge's own messages ----------------------------------------------------------------


def test_a_bridge_task_round_trips_as_json_and_runs(queue: Queue) -> None:
    queue.jobs.enqueue("desk", "D-1", False)
    [raw] = queue.huey.storage.enqueued_items()
    doc = json.loads(bytes(raw))
    assert doc[MARKER] == 1
    assert doc["task"]["name"].endswith("bridge.process_item")
    assert doc["task"]["args"] == ["desk", "D-1"]
    assert doc["task"]["retries"] == 0  # failures back off in the store, not in huey

    task = queue.huey.dequeue()
    assert task.args == ("desk", "D-1")
    assert task.retries == 0
    queue.huey.execute(task)
    assert FakeConnector.written == {"D-1": {"work_type": "service"}}


def test_a_failed_item_comes_back_through_the_sweeper_as_json(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    store = queue.jobs.runtime.store
    FakeConnector.fail_next.append(transient())
    queue.jobs.enqueue("desk", "D-1", False)
    queue.step()
    assert FakeConnector.written == {}
    row = store.get_pending("desk", "D-1")
    assert row is not None
    assert (row.attempts, row.given_up) == (1, False)
    assert queue.size() == 0  # nothing left in huey: the store holds the retry

    queue.jobs.clock = lambda: row.next_try  # the backoff has run out
    assert queue.jobs.sweep() == 1
    [raw] = queue.huey.storage.enqueued_items()
    assert json.loads(bytes(raw))["task"]["args"] == ["desk", "D-1"]
    queue.step()

    assert FakeConnector.written == {"D-1": {"work_type": "service"}}
    assert store.get_pending("desk", "D-1") is None
    assert not refusals(caplog)


def test_no_results_are_kept_after_the_queue_drains(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    FakeConnector.fail_next.append(transient())  # a failure would store an error result
    for n in range(1, 6):
        queue.jobs.enqueue("desk", f"D-{n}", False)
    [sync] = queue.jobs.syncs.values()
    queue.huey.enqueue(sync.s())  # a scheduled sync takes and releases its lock
    with caplog.at_level(logging.CRITICAL, logger="huey"):
        for _ in range(20):
            if not queue.size():
                break
            queue.step()
    assert queue.size() == 0
    assert len(FakeConnector.written) == 4 + 1  # D-1 failed once, then the sync wrote it
    assert queue.stored() == 0
    assert not refusals(caplog)


def test_every_queue_is_json_without_results(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    hueys = [make_huey(runtime.config), make_huey(runtime.config, immediate=True)]
    monkeypatch.setenv("BRIDGE_REDIS_URL", "rediss://bridge:pw@127.0.0.1:6380/0")
    hueys.append(make_huey(runtime.config))  # no connection is made until it is used
    assert isinstance(hueys[0], SqliteHuey)
    assert isinstance(hueys[2], RedisHuey)
    for huey in hueys:
        assert isinstance(huey.serializer, JsonSerializer)
        assert huey.results is False
    hueys[0].storage.close()
    hueys[2].storage.pool.disconnect()


# ---- the serializer ---------------------------------------------------------------------------


def test_messages_and_values_round_trip() -> None:
    serializer = JsonSerializer()
    eta = datetime(2025, 3, 1, 12, 30, 15, 123456)  # huey's naive UTC
    aware = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    callback = Message("c", "t.cb", None, 0, 0, None, (), {}, None, None, None, None)
    message = Message(
        "id-1",
        "bridge.service.tasks.bridge.process_item",
        eta,
        5,
        30,
        None,
        ("desk", "D-1", 3, 1.5, True, None, [1, "a"], (1, 2), aware, timedelta(seconds=90)),
        {"full": True, "data": {"$ref": "x", "nested": {"k": [None]}}},
        callback,
        None,
        timedelta(hours=1),
        eta,
    )
    decoded = serializer.deserialize(serializer.serialize(message))
    assert decoded == message
    assert isinstance(decoded.args, tuple)
    assert isinstance(decoded.on_complete, Message)

    for value in [(eta, False), (None, True), "1", {"a": (1,)}, Error({"error": "E()"}), [aware]]:
        assert serializer.deserialize(serializer.serialize(value)) == value
    assert type(serializer.deserialize(serializer.serialize(Error({})))) is Error


@pytest.mark.parametrize(
    "value", [object(), {1, 2}, b"bytes", {1: "int key"}, float("nan"), Path("/etc")]
)
def test_only_json_values_go_on_the_queue(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        JsonSerializer().serialize(value)


def test_an_oversized_message_is_neither_written_nor_read() -> None:
    big = "x" * MAX_MESSAGE_BYTES
    with pytest.raises(ValueError, match="over"):
        JsonSerializer().serialize(big)
    raw = json.dumps({MARKER: 1, "value": big}).encode()
    with pytest.raises(RefusedMessage, match="over"):
        JsonSerializer().deserialize(raw)


SECRET = "S3CRET-payload"


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps({"secret": SECRET}),
        b"\x80\x04" + SECRET.encode(),
        SECRET.encode(),
        f'{{"{MARKER}": 1, "task": "{SECRET}"}}'.encode(),
        f'{{"{MARKER}": 1, "value": {{"${SECRET}": 1}}}}'.encode(),
        f'{{"{MARKER}": 1, "value": {{"$datetime": "{SECRET}"}}}}'.encode(),
        f'{{"{MARKER}": 1, "value": {{"$tuple": [1], "{SECRET}": 2}}}}'.encode(),
        f'{{"{MARKER}": 1, "value": NaN, "x": "{SECRET}"}}'.encode(),
        f'{{"{MARKER}": "{SECRET}", "value": 1}}'.encode(),
        f'{{"{MARKER}": 1, "value": 1, "{SECRET}": 1}}'.encode(),
        f'{{"{MARKER}": 1, "task": {{"id": "t", "name": "n", "{SECRET}": 1}}}}'.encode(),
        f'{{"{MARKER}": 1, "task": {{"id": "t", "name": "n", "retries": "{SECRET}"}}}}'.encode(),
        f'{{"{MARKER}": 1, "task": {{"id": "t", "name": "n", "retries": -1}}}}'.encode(),
        f'{{"{MARKER}": 1, "task": {{"id": "t", "name": "n", "kwargs": ["{SECRET}"]}}}}'.encode(),
        f'{{"{MARKER}": 1, "task": {{"name": "{SECRET}"}}}}'.encode(),
        f'{{"{MARKER}": 1, "value": {"[" * 40}{"]" * 40}}}'.encode(),
        f'{{"{MARKER}": 1, "value": {"[" * 100_000}{"]" * 100_000}}}'.encode(),
        f'{{"{MARKER}": 1, "value": 1{"0" * 5000}}}'.encode(),
    ],
)
def test_what_bridge_did_not_write_is_refused_without_quoting_it(data: bytes) -> None:
    with pytest.raises(RefusedMessage) as refused:
        JsonSerializer().deserialize(data)
    assert SECRET not in str(refused.value)
