"""Nothing lost: a ServiceNow record whose PATCH fails is kept pending and written by a
later sync once the fault clears (ServiceNowDouble over HTTP)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.connectors.servicenow.writes import RecordMemo, memo_key
from bridge.rules.ast import RuleSet
from bridge.store.sqlite import SqliteStore
from bridge.sync import sync_source
from bridge.testing.servicenow import ServiceNowDouble

from .conftest import NOW as NOW_SN
from .conftest import ConnectorFactory, InstanceClock, incident

N = 6


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(str(tmp_path / "bridge.db"))
    yield db
    db.close()


def test_a_servicenow_patch_failing_with_503_is_written_by_the_next_sync(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    store: SqliteStore,
    rule_set: RuleSet,
) -> None:
    ids = [incident(double, n) for n in range(N)]
    victim = ids[3]
    double.inject(503, times=50, method="PATCH", path=rf"/incident/{victim}$")

    first = sync_source("sn", make_connector(store=store), rule_set, store, NOW_SN)

    assert len(first.failed) == 1
    assert store.get_pending("sn", first.failed[0][0]) is not None

    double.clear_faults()
    second = sync_source(
        "sn", make_connector(store=store), rule_set, store, NOW_SN + timedelta(minutes=10)
    )

    assert second.failed == []
    assert second.retried == 1  # the record is unchanged since: the pull passed it by
    assert second.items_written == 1
    assert store.list_pending("sn") == []
    record = double.record("incident", victim)
    assert record["u_work_type"] == "service"
    assert len(double.journal("incident", victim, "work_notes")) == 1


def test_a_work_note_committed_after_the_client_gave_up_is_not_added_twice(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    store: SqliteStore,
    rule_set: RuleSet,
) -> None:
    """The PATCH times out on the client, the instance commits it a moment later: the
    check right after the timeout finds nothing, so the item stays pending — and the retry
    looks for its own note (the write-ahead intent) before sending it again."""
    ids = [incident(double, n) for n in range(3)]
    victim = ids[1]
    double.inject_timeout(0.6, method="PATCH", path=rf"/incident/{victim}$", apply=True)

    first = sync_source("sn", make_connector(store=store, timeout=0.3), rule_set, store, NOW_SN)

    assert [k for k, _ in first.failed] == [double.record("incident", victim)["number"]]
    wait_for(lambda: len(double.journal("incident", victim, "work_notes")) == 1)
    second = sync_source(
        "sn", make_connector(store=store), rule_set, store, NOW_SN + timedelta(minutes=10)
    )

    assert second.failed == []
    assert store.list_pending("sn") == []
    assert [len(double.journal("incident", i, "work_notes")) for i in ids] == [1, 1, 1]


def test_a_new_store_finds_bridge_s_last_work_notes_on_the_records(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    store: SqliteStore,
    rule_set: RuleSet,
    tmp_path: Path,
) -> None:
    """The ticket is the truth: a lost or new store (or the move to PostgreSQL) costs one
    journal query per batch of records, and adds no summary a record already shows."""
    ids = [incident(double, n) for n in range(N)]
    sync_source("sn", make_connector(store=store), rule_set, store, NOW_SN)
    assert [len(double.journal("incident", i, "work_notes")) for i in ids] == [1] * N
    fresh = SqliteStore(str(tmp_path / "fresh.db"))
    double.reset_counters()
    try:
        connector = make_connector(store=fresh)
        again = sync_source("sn", connector, rule_set, fresh, NOW_SN + timedelta(minutes=1))
    finally:
        fresh.close()

    assert again.failed == []
    assert double.count("PATCH") == 0
    assert [len(double.journal("incident", i, "work_notes")) for i in ids] == [1] * N
    assert connector.journal_requests == 1  # one batch: every record's last note at once


def wait_for(condition: Callable[[], bool], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_a_work_note_whose_sender_died_moments_ago_is_waited_for_not_sent_again(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    store: SqliteStore,
    rule_set: RuleSet,
    instance_clock: InstanceClock,
) -> None:
    """A process killed with its PATCH on the way: the note may still land. The next sync
    does not send another; it leaves the record pending, counting no failed attempt, and
    writes it once the grace is over and the journal still lacks it."""
    sys_id = incident(double, 1)
    first = sync_source("sn", make_connector(store=store), rule_set, store, NOW_SN)
    assert first.items_written == 1
    number = double.record("incident", sys_id)["number"]
    double.update_as_user("incident", sys_id, state="6")  # resolved: a new summary is due
    key = memo_key("incident", sys_id)
    memo = RecordMemo.from_text(store.get_memo("sn", key))
    # What a killed process leaves: the intent of a note that never reached the instance.
    sent_at = instance_clock().isoformat()
    store.set_memo(
        "sn", key, replace(memo, intent="0123456789abcdef0123 @2", intent_at=sent_at).to_text()
    )

    waited = sync_source("sn", make_connector(store=store), rule_set, store, NOW_SN)

    assert (waited.deferred, waited.failed, waited.items_written) == (1, [], 0)
    row = store.get_pending("sn", number)
    assert row is not None
    assert row.attempts == 0  # waiting is not failing
    assert len(double.journal("incident", sys_id, "work_notes")) == 1

    instance_clock.tick(90)  # past the grace: the note never came, so it is sent now
    later = sync_source("sn", make_connector(store=store), rule_set, store, NOW_SN)
    assert later.items_written == 1
    assert len(double.journal("incident", sys_id, "work_notes")) == 2
    assert store.get_pending("sn", number) is None
