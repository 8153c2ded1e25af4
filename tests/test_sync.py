"""One sync: per-item isolation, cursor and overlap, dry runs, unreadable records."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.errors import ConnectorTransportError, ItemNotFoundError, RemoteValidationError
from bridge.kpi.compute import KpiEngine
from bridge.model import WorkItem
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules
from bridge.store import open_store
from bridge.store.base import Store
from bridge.sync import sync_source
from bridge.writeback.plan import SetFields

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
T = datetime(2026, 6, 1, 9, tzinfo=UTC)


class Connector:
    """Items in memory; ``broken`` keys fail on write with the given error."""

    def __init__(self, items: list[WorkItem]) -> None:
        self.name = "test"
        self.items = items
        self.broken: dict[str, Exception] = {}
        self.writes: list[str] = []
        self.pulls: list[datetime | None] = []
        self.skipped: list[tuple[str, str]] = []
        self.fail_pull = False

    def prepare(self, rule_set: object) -> None:
        pass

    def pull(self, *, since: datetime | None = None) -> Iterator[WorkItem]:
        self.pulls.append(since)
        if self.fail_pull:
            raise ConnectorTransportError("the connection failed")
        self.skipped = [("BAD-1", "fields.updated: not a date")]
        for item in self.items:
            if since is None or (item.updated is not None and item.updated >= since):
                yield item

    def plan(self, item, decision, kpis, *, currency=None):  # type: ignore[no-untyped-def]
        return [] if item.key in self.writes else [SetFields({"work_type": decision.work_type})]

    def apply(self, item: WorkItem, ops: object) -> None:
        if item.key in self.broken:
            raise self.broken[item.key]
        self.writes.append(item.key)

    def fetch(self, key: str) -> WorkItem:
        raise NotImplementedError

    def parse_webhook(self, headers: object, body: bytes) -> object:
        raise NotImplementedError

    def close(self) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = open_store(f"sqlite://{tmp_path / 'state.db'}")
    yield made
    made.close()


@pytest.fixture
def rules(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "r.yaml").write_text(
        "bridge: 1\nrules:\n  - {id: i, when: {field: type, equals: Incident}, "
        "then: {work_type: service}}\n"
    )
    return load_rules([tmp_path / "r.yaml"])


def items(n: int) -> list[WorkItem]:
    return [
        WorkItem(f"I-{i}", "test", type="Incident", updated=T + timedelta(minutes=i))
        for i in range(n)
    ]


def test_one_failing_item_does_not_stop_the_others(store, rules) -> None:
    connector = Connector(items(4))
    connector.broken = {
        "I-1": RemoteValidationError("field 'SPI' cannot be set"),
        "I-2": ItemNotFoundError("I-2 is gone", item_key="I-2"),
    }
    report = sync_source("src", connector, rules, store, NOW)
    assert sorted(connector.writes) == ["I-0", "I-3"]
    assert report.failed == [("I-1", "field 'SPI' cannot be set")]
    assert ("I-2", "I-2 is gone") in report.skipped
    assert ("BAD-1", "fields.updated: not a date") in report.skipped
    assert not report.ok
    actions = {(item, action) for _, _, item, action, _ in store.audit_log("src")}
    assert {
        ("I-1", "failed"),
        ("I-2", "skipped"),
        ("BAD-1", "skipped"),
        ("I-0", "written"),
    } <= actions


def test_cursor_overlap_and_duplicates(store, rules) -> None:
    connector = Connector(items(3))
    first = sync_source("src", connector, rules, store, NOW, overlap=timedelta(minutes=5))
    assert first.cursor == T + timedelta(minutes=2)
    assert store.get_cursor("src") == T + timedelta(minutes=2)
    second = sync_source("src", connector, rules, store, NOW, overlap=timedelta(minutes=5))
    assert connector.pulls[-1] == T - timedelta(minutes=3)  # cursor − overlap
    assert second.duplicates == 3  # same items at the same `updated`: dropped
    assert second.items_written == 0
    connector.items.append(
        WorkItem("I-9", "test", type="Incident", updated=T + timedelta(minutes=9))
    )
    third = sync_source("src", connector, rules, store, NOW, overlap=timedelta(minutes=5))
    assert third.items_written == 1
    assert store.get_cursor("src") == T + timedelta(minutes=9)


def test_dry_run_plans_but_writes_and_moves_nothing(store, rules) -> None:
    connector = Connector(items(2))
    report = sync_source("src", connector, rules, store, NOW, dry_run=True)
    assert connector.writes == []
    assert set(report.planned) == {"I-0", "I-1"}
    assert store.get_cursor("src") is None


def test_a_failed_pull_leaves_the_cursor(store, rules) -> None:
    connector = Connector(items(2))
    sync_source("src", connector, rules, store, NOW)
    cursor = store.get_cursor("src")
    connector.fail_pull = True
    with pytest.raises(ConnectorTransportError):
        sync_source("src", connector, rules, store, NOW)
    assert store.get_cursor("src") == cursor


def test_a_stop_ends_the_sync_between_items_and_leaves_the_cursor(store, rules) -> None:
    """Ctrl-C or SIGTERM (``bridge sync`` sets ``stop``): the items under way are written,
    no other is taken, and the next sync pulls again from where the cursor was."""
    connector = Connector(items(2))
    sync_source("src", connector, rules, store, NOW)
    cursor = store.get_cursor("src")
    connector.items += [
        WorkItem(f"J-{i}", "test", type="Incident", updated=T + timedelta(hours=1, minutes=i))
        for i in range(6)
    ]
    stop = threading.Event()
    seen: list[str] = []

    def on_item(item: WorkItem) -> None:
        seen.append(item.key)
        if item.key == "J-2":
            stop.set()

    report = sync_source("src", connector, rules, store, NOW, on_item=on_item, stop=stop)
    assert report.interrupted
    assert not report.ok
    assert report.cursor == cursor
    assert store.get_cursor("src") == cursor
    assert [k for k in connector.writes if k.startswith("J-")] == ["J-0", "J-1", "J-2"]
    assert "J-3" not in seen
    again = sync_source("src", connector, rules, store, NOW)
    assert not again.interrupted
    assert sorted(k for k in connector.writes if k.startswith("J-")) == [f"J-{i}" for i in range(6)]
    assert store.get_cursor("src") == T + timedelta(hours=1, minutes=5)


def test_full_ignores_the_cursor(store, rules) -> None:
    connector = Connector(items(2))
    sync_source("src", connector, rules, store, NOW)
    sync_source("src", connector, rules, store, NOW, full=True)
    assert connector.pulls == [None, None]


def test_an_item_met_twice_in_one_sync_is_handled_once(store, rules) -> None:
    first, second = items(2)
    moved = WorkItem(first.key, "test", type="Incident", updated=T + timedelta(hours=1))
    connector = Connector([first, second, moved])  # e.g. our write moved it to a later page
    report = sync_source("src", connector, rules, store, NOW)
    assert connector.writes == ["I-0", "I-1"]
    assert (report.pulled, report.duplicates) == (2, 1)
    # the newer `updated` was not processed, so it must not move the cursor past it
    assert store.get_cursor("src") == T + timedelta(minutes=1)


def test_engines_passed_in_are_used_instead_of_new_ones(store, rules, monkeypatch) -> None:
    engine, kpis = Engine(rules), KpiEngine(rules)

    def refuse(rule_set: object) -> None:
        raise AssertionError("sync_source built an engine although it was given one")

    monkeypatch.setattr("bridge.sync.Engine", refuse)
    monkeypatch.setattr("bridge.sync.KpiEngine", refuse)
    connector = Connector(items(2))
    report = sync_source("src", connector, rules, store, NOW, engine=engine, kpis=kpis)
    assert report.items_written == 2
    assert engine.sources  # the matchers were generated in (and stay cached on) the given engine


def test_the_store_keeps_each_items_latest_evaluation_and_forgets_gone_ones(store, rules) -> None:
    from bridge.evaluations import decode

    connector = Connector([*items(3), WorkItem("T-1", "test", type="Task", updated=T)])
    connector.broken = {"I-2": ItemNotFoundError("I-2 is gone", item_key="I-2")}
    store.put_evaluation("src", "I-2", "{}", T)  # from an earlier sync
    sync_source("src", connector, rules, store, NOW)

    kept = {key: decode(record, name) for name, key, _, record in store.evaluations("src")}
    assert set(kept) == {"I-0", "I-1", "T-1"}  # I-2 is gone: not reported any more
    assert kept["I-0"].decision.work_type == "service"
    assert kept["I-0"].decision.rule == "i"
    assert kept["T-1"].decision.work_type == "unclassified"
    assert kept["I-1"].item.updated == T + timedelta(minutes=1)
    assert {at for _, _, at, _ in store.evaluations("src")} == {NOW}


def test_a_dry_run_keeps_no_evaluation(store, rules) -> None:
    sync_source("src", Connector(items(2)), rules, store, NOW, dry_run=True)
    assert list(store.evaluations("src")) == []


def test_a_change_that_came_while_a_command_line_sync_held_the_item_is_written_by_it(
    store, rules
) -> None:
    """A webhook job that finds the sync holding an item leaves it pending and returns. A
    worker's sync hands such an item to the queue; a sync from the command line has none,
    so it fetches the item again itself rather than leave it for the sweeper's next round
    (up to the lease's five minutes)."""

    class Changing(Connector):
        def __init__(self, items: list[WorkItem]) -> None:
            super().__init__(items)
            self.fetched: list[str] = []

        def apply(self, item: WorkItem, ops: object) -> None:
            first = item.key not in self.writes
            super().apply(item, ops)
            if first and item.key == "I-1":  # a delivery for I-1 arrives mid-write
                store.add_pending("src", "I-1", "webhook", NOW)

        def plan(self, item, decision, kpis, *, currency=None):  # type: ignore[no-untyped-def]
            return [SetFields({"work_type": decision.work_type})]

        def fetch(self, key: str) -> WorkItem:
            self.fetched.append(key)
            return next(i for i in self.items if i.key == key)

    connector = Changing(items(3))
    report = sync_source("src", connector, rules, store, NOW)

    assert report.ok
    assert connector.fetched == ["I-1"]  # looked at again, at once
    assert sorted(connector.writes) == ["I-0", "I-1", "I-1", "I-2"]
    assert store.get_pending("src", "I-1") is None  # nothing left for the sweeper
