"""Nothing lost: a Jira issue whose write fails is kept pending and written by a later sync
once the fault clears, or visibly given up (JiraDouble over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.kpi.compute import KpiEngine
from bridge.rules.engine import Engine
from bridge.store.records import Backoff
from bridge.store.sqlite import SqliteStore
from bridge.sync import evaluate_item, sync_source
from bridge.testing.jira import JiraDouble
from tests.connectors.jira.test_connector import HOOK_ENV, TOKEN_ENV, connect, rules
from tests.connectors.jira.test_sync_jira import NOW, SOURCE, seed

N = 6


def no_sleep(_: float) -> None:
    """The client's backoff between attempts, without the wait."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(str(tmp_path / "bridge.db"))
    yield db
    db.close()


@pytest.fixture
def jira(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraDouble]:
    monkeypatch.setenv(TOKEN_ENV, "token")
    monkeypatch.setenv(HOOK_ENV, "hook")
    with JiraDouble(max_page=50) as site:
        yield site


def jira_values(site: JiraDouble) -> dict[str, object]:
    field = site.field_id("Work type")
    return {key: site.issue(key)["fields"].get(field) for key in site.keys()}  # noqa: SIM118


@pytest.mark.parametrize("status", [503, 409, 400])
def test_a_jira_write_refused_until_the_fault_clears_is_written_by_the_next_sync(
    status: int, jira: JiraDouble, store: SqliteStore, tmp_path: Path
) -> None:
    keys = seed(jira, N)
    rule_set = rules(tmp_path)
    victim = keys[2]
    jira.inject(status, times=50, method="PUT", path=rf"/issue/{victim}$")
    fields = {"writeback": {"fields": {"work_type": "Work type"}}}

    first = sync_source(
        SOURCE, connect(jira, store=store, sleep=no_sleep, **fields), rule_set, store, NOW
    )

    assert [k for k, _ in first.failed] == [victim]
    row = store.get_pending(SOURCE, victim)
    assert row is not None
    assert (row.attempts, row.given_up) == (1, False)
    assert str(status) in (row.last_error or "")

    jira.clear_faults()
    later = NOW + timedelta(minutes=10)
    second = sync_source(
        SOURCE, connect(jira, store=store, sleep=no_sleep, **fields), rule_set, store, later
    )

    assert second.failed == []
    assert second.items_written == 1  # only the victim still needed writing
    assert store.get_pending(SOURCE, victim) is None
    values = jira_values(jira)
    assert values[victim] == "project"  # a Story, like its neighbours
    assert None not in values.values()  # every issue shows its class
    assert len(jira.comments(victim)) == 1


def test_a_jira_item_refused_for_good_is_given_up_visibly(
    jira: JiraDouble, store: SqliteStore, tmp_path: Path
) -> None:
    keys = seed(jira, N)
    rule_set = rules(tmp_path)
    victim = keys[0]
    jira.inject(400, times=10_000, method="PUT", path=rf"/issue/{victim}$")
    backoff = Backoff(max_attempts=3)
    fields = {"writeback": {"fields": {"work_type": "Work type"}}}

    for run in range(3):
        report = sync_source(
            SOURCE,
            connect(jira, store=store, sleep=no_sleep, **fields),
            rule_set,
            store,
            NOW + timedelta(hours=run),
            backoff=backoff,
        )
        assert [k for k, _ in report.failed] == [victim]

    given_up = store.list_pending(SOURCE, given_up=True)
    assert [(p.key, p.attempts) for p in given_up] == [(victim, 3)]
    assert "HTTP 400" in (given_up[0].last_error or "") or "400" in (given_up[0].last_error or "")
    audit = [line for line in store.audit_log(SOURCE, limit=1000) if line[3] == "given up"]
    assert [line[2] for line in audit] == [victim]
    # The rest were written on the first run and never again.
    assert store.list_pending(SOURCE, given_up=False) == []


class Killed(BaseException):
    """The process died: nothing after this point runs, no handler sees it."""


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_a_process_killed_between_the_comment_and_its_property_makes_no_second_comment(
    deployment: str, store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "token")
    monkeypatch.setenv(HOOK_ENV, "hook")
    monkeypatch.setenv("BRIDGE_TEST_JIRA_PAT", "pat")
    auth = {"auth": {"pat_env": "BRIDGE_TEST_JIRA_PAT"}} if deployment == "datacenter" else {}
    with JiraDouble(deployment=deployment, max_page=50) as site:  # type: ignore[arg-type]
        keys = seed(site, N)
        rule_set = rules(tmp_path)
        fields = {"writeback": {"fields": {"work_type": "Work type"}}}
        dying = connect(site, store=store, sleep=no_sleep, deployment=deployment, **auth, **fields)
        real_edit = dying._edit
        victim = keys[2]
        assert real_edit

        def edit_then_die(key: str, body: dict[str, object]) -> None:
            if key == victim:  # its comment is posted, then the process dies
                raise Killed
            real_edit(key, body)

        monkeypatch.setattr(dying, "_edit", edit_then_die)
        dying.prepare(rule_set)
        item = dying.fetch(victim)
        ops = evaluate_item(item, Engine(rule_set), KpiEngine(rule_set), dying, NOW)
        with pytest.raises(Killed):
            dying.apply(item, ops)
        assert len(site.comments(victim)) == 1
        assert "bridge.comment" not in site.properties(victim)  # never recorded on the issue

        again = connect(site, store=store, sleep=no_sleep, deployment=deployment, **auth, **fields)
        report = sync_source(SOURCE, again, rule_set, store, NOW + timedelta(minutes=5))

        assert report.failed == []
        assert [len(site.comments(k)) for k in keys] == [1] * N  # never a second one
        assert all(site.properties(k).get("bridge.comment") for k in keys)
