"""Nothing lost: a ServiceNow record whose PATCH fails is kept pending and written by a
later sync once the fault clears (ServiceNowDouble over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.rules.ast import RuleSet
from bridge.store.sqlite import SqliteStore
from bridge.sync import sync_source
from bridge.testing.servicenow import ServiceNowDouble

from .conftest import NOW as NOW_SN
from .conftest import ConnectorFactory, incident

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
