"""``sync_source`` end to end: ServiceNowDouble, the real rules engine and KPIs, a SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.connectors.servicenow.connector import ServiceNowConnector
from bridge.rules.ast import RuleSet
from bridge.store.sqlite import SqliteStore
from bridge.sync import sync_source
from bridge.testing.servicenow import ServiceNowDouble
from bridge.writeback.render import MARKER

from .conftest import NOW, SLA_NAME, ConnectorFactory, InstanceClock, incident


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(str(tmp_path / "bridge.db"))
    yield db
    db.close()


def notes(double: ServiceNowDouble, sys_id: str) -> list[str]:
    return [row["value"] for row in double.journal("incident", sys_id, "work_notes")]


def test_journal_once_and_zero_writes_when_nothing_changed(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    rule_set: RuleSet,
    store: SqliteStore,
    instance_clock: InstanceClock,
) -> None:
    ids = [incident(double, n) for n in range(5)]
    double.add_task_sla(
        ids[0],
        sla_name=SLA_NAME,
        business_duration="1970-01-01 01:00:00",
        business_time_left="1970-01-01 07:00:00",
    )
    connector = make_connector(store=store, page_size=2)

    first = sync_source("sn", connector, rule_set, store, NOW)

    assert (first.pulled, first.items_written, first.comment_writes) == (5, 5, 5)
    assert first.failed == []
    assert first.skipped == []
    assert double.count("PATCH") == 5  # fields and the note in one PATCH per record
    record = double.record("incident", ids[0])
    assert (record["u_work_type"], record["u_rule"], record["u_sla_state"]) == (
        "service",
        "incidents",
        "running",
    )
    assert record["u_phase"] == ""
    for sys_id in ids:
        [note] = notes(double, sys_id)
        assert note.startswith(f"{MARKER}: INC")
    assert "source: native" in notes(double, ids[0])[0]
    assert "source: computed" in notes(double, ids[1])[0]

    double.reset_counters()
    second = sync_source("sn", connector, rule_set, store, NOW)

    assert second.pulled == 5  # bridge's own writes are newer than the cursor: read again
    assert double.count("PATCH") == 0
    assert (second.items_written, second.unchanged) == (0, 5)
    assert all(len(notes(double, sys_id)) == 1 for sys_id in ids)

    # A material change (resolved): exactly one more note, and the state field, in one PATCH.
    instance_clock.tick()
    double.update_as_user("incident", ids[1], state="6", resolved_at="2026-06-01 05:00:00")
    double.reset_counters()
    third = sync_source("sn", connector, rule_set, store, NOW)

    assert double.count("PATCH") == 1
    assert third.items_written == 1
    assert third.comment_writes == 1
    assert len(notes(double, ids[1])) == 2
    assert "state: met" in notes(double, ids[1])[-1]
    assert double.record("incident", ids[1])["u_sla_state"] == "met"
    assert all(len(notes(double, sys_id)) == 1 for sys_id in ids if sys_id != ids[1])

    # Nothing the readers care about changed (only a description): no write at all.
    instance_clock.tick()
    double.update_as_user("incident", ids[2], short_description="typo fixed")
    double.reset_counters()
    sync_source("sn", connector, rule_set, store, NOW)
    assert double.count("PATCH") == 0

    assert double.cookie_requests == 0
    assert double.spec_problems == []


def test_a_record_deleted_before_its_write_is_skipped_and_recorded(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    rule_set: RuleSet,
    store: SqliteStore,
) -> None:
    ids = [incident(double, n) for n in range(3)]
    connector = make_connector(store=store, sla={"read_task_sla": False})

    def delete_the_second(item: object) -> None:
        if getattr(item, "key", None) == "INC0010002":
            double.delete("incident", ids[1])

    report = sync_source("sn", connector, rule_set, store, NOW, on_item=delete_the_second)

    assert report.items_written == 2
    [(key, reason)] = report.skipped
    assert key == "INC0010002"
    assert "ServiceNow has no incident record" in reason
    assert report.ok
    audit = {(item, action) for _, _, item, action, _ in store.audit_log("sn")}
    assert ("INC0010002", "skipped") in audit
    assert ("INC0010001", "written") in audit


def test_a_refused_field_fails_its_items_and_not_the_others(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    rule_set: RuleSet,
    store: SqliteStore,
) -> None:
    incident(double, 0)
    double.add_record(
        "problem", {"short_description": "db leak", "state": "101", "u_work_type": "", "u_rule": ""}
    )
    double.set_acl("problem", "u_rule", write=False)
    connector = make_connector(
        store=store,
        scope={"tables": {"incident": "", "problem": ""}},
        writeback={"fields": {"rule": "u_rule"}, "journal": "none"},
    )

    report = sync_source("sn", connector, rule_set, store, NOW)

    assert report.items_written == 1
    [(key, reason)] = report.failed
    assert key == "PRB0010001"
    assert reason.startswith(
        "ServiceNow refused to update problem.u_rule: ACL Exception Update Failed due to "
        "security constraints — grant the integration user write access to the field"
    )


def test_dry_run_writes_nothing_and_the_cursor_stays(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    rule_set: RuleSet,
    store: SqliteStore,
) -> None:
    incident(double, 0)
    connector = make_connector(store=store)

    report = sync_source("sn", connector, rule_set, store, NOW, dry_run=True)

    assert list(report.planned) == ["INC0010001"]
    assert double.count("PATCH") == 0
    assert store.get_cursor("sn") is None


def test_incremental_syncs_read_only_what_changed(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    rule_set: RuleSet,
    store: SqliteStore,
    instance_clock: InstanceClock,
) -> None:
    ids = [incident(double, n) for n in range(4)]
    connector: ServiceNowConnector = make_connector(
        store=store, writeback={"fields": {}, "journal": "none"}
    )
    sync_source("sn", connector, rule_set, store, NOW)
    cursor = store.get_cursor("sn")
    assert cursor is not None

    instance_clock.tick(3600)
    double.update_as_user("incident", ids[0], priority="1")
    double.reset_counters()
    report = sync_source("sn", connector, rule_set, store, NOW)

    assert report.since == cursor - timedelta(minutes=5)
    # the record read last time at the cursor comes again (overlap) and is dropped by sync
    assert (report.pulled, report.duplicates, report.unchanged) == (2, 1, 1)
    [read] = [r for r in double.requests if r.path.endswith("/incident")]
    assert "sys_updated_on>=" in read.query["sysparm_query"]


def test_a_record_that_cannot_be_mapped_is_reported_and_audited(
    double: ServiceNowDouble,
    make_connector: ConnectorFactory,
    rule_set: RuleSet,
    store: SqliteStore,
) -> None:
    incident(double, 0)
    bad = incident(double, 1, opened_at="yesterday")
    connector = make_connector(store=store, sla={"read_task_sla": False})

    report = sync_source("sn", connector, rule_set, store, NOW)

    assert report.pulled == 1
    [(where, reason)] = report.skipped
    assert where == f"incident:{bad}"
    assert "'yesterday' is not a ServiceNow date-time" in reason
    assert ("sn", where, "skipped") in [(s, i, a) for _, s, i, a, _ in store.audit_log("sn")]


def test_fetch_many_reads_due_records_in_one_query_per_table_and_batch(
    double: ServiceNowDouble, make_connector: ConnectorFactory, rule_set: RuleSet
) -> None:
    """What a timer tick reads: numbers and table:sys_id keys alike, gone ones left out."""
    ids = [incident(double, n) for n in range(6)]
    numbers = [double.record("incident", i)["number"] for i in ids]
    double.delete("incident", ids[2])
    connector = make_connector(sla={"read_task_sla": False})
    connector.prepare(rule_set)
    double.reset_counters()

    found = {item.key for item in connector.fetch_many([*numbers[:4], f"incident:{ids[5]}"])}

    assert found == {numbers[0], numbers[1], numbers[3], numbers[5]}
    assert double.count("GET", r"/table/incident$") == 2  # numberIN…, then sys_idIN…
