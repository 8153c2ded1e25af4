"""``sync_source`` end to end against JiraDouble, with a SQLite store: what a scheduled
``bridge sync`` of a Jira source does, request by request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.connectors.jira.writes import COMMENT_PROPERTY
from bridge.errors import ConnectorAuthError
from bridge.model import PHASES, WorkItem
from bridge.store.sqlite import SqliteStore
from bridge.sync import sync_source
from bridge.testing import OpenApiSpec
from bridge.testing.jira import JiraDouble
from tests.connectors.jira.test_connector import (
    PAT_ENV,
    T0,
    connect,
    double,
    rules,
    secrets,
    spec,
    store,
)

__all__ = ["double", "secrets", "spec", "store"]  # fixtures shared with test_connector

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
N = 40
SOURCE = "jira-test"


def seed(site: JiraDouble, n: int = N) -> list[str]:
    return site.bulk_add(
        n,
        fields=lambda i: {
            "issuetype": "Story" if i % 4 else "Bug",
            "status": ("To Do", "In Progress", "Done")[i % 3],
            "timeoriginalestimate": 3600 * (4 + i % 5),
            "timespent": 3600 * (i % 7),
            "timeestimate": 3600 * (i % 3),
            "created": T0,
            "updated": T0 + timedelta(minutes=i),
        },
    )


def mutations(site: JiraDouble) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in site.requests if r.method in ("PUT", "POST")]


@pytest.fixture
def synced(
    double: JiraDouble, store: SqliteStore, tmp_path: Path
) -> tuple[JiraDouble, SqliteStore, Path]:
    seed(double)
    return double, store, tmp_path


def test_first_sync_writes_every_issue_once_and_a_second_writes_nothing(
    synced: tuple[JiraDouble, SqliteStore, Path],
) -> None:
    site, store, tmp_path = synced
    rule_set = rules(tmp_path)
    connector = connect(site, store=store)

    first = sync_source(SOURCE, connector, rule_set, store, NOW, concurrency=4)

    assert first.ok, first.failed
    assert (first.pulled, first.items_written, first.comment_writes) == (N, N, N)
    writes = mutations(site)
    assert all(status in (200, 201, 204) for _, _, status in writes)
    assert len(writes) == 2 * N  # the comment, then fields + property in one PUT: per issue
    for key in site.keys():  # noqa: SIM118 - a method of the double, not a dict
        assert len(site.comments(key)) == 1
        assert site.properties(key)[COMMENT_PROPERTY]["id"] == site.comments(key)[0]["id"]
    assert store.get_cursor(SOURCE) == T0 + timedelta(minutes=N - 1)

    site.reset_counters()
    connector = connect(site, store=store)  # the next scheduled run is a new process
    second = sync_source(SOURCE, connector, rule_set, store, NOW, concurrency=4)

    assert second.ok, second.failed
    assert mutations(site) == []  # ZERO writes
    assert second.pulled == N  # bridge's own writes made every issue "updated"
    assert second.unchanged + second.duplicates == N
    searches = [r for r in site.requests if r.path.endswith("/search/jql")]
    others = [r.path for r in site.requests if r not in searches]
    phase = site.field_id("Bridge phase")
    assert others == [  # discovery (with the select's options), then pages only
        "/rest/api/3/myself",
        "/rest/api/3/field",
        f"/rest/api/3/field/{phase}/context",
        f"/rest/api/3/field/{phase}/context/{10000 + int(phase.rsplit('_', 1)[1])}/option",
    ]
    assert 'updated >= "' in searches[0].query["jql"][0]

    site.reset_counters()
    third = sync_source(SOURCE, connector, rule_set, store, NOW, concurrency=4)
    assert mutations(site) == []
    assert third.pulled <= N


def test_a_human_change_is_written_back_in_place(
    synced: tuple[JiraDouble, SqliteStore, Path],
) -> None:
    site, store, tmp_path = synced
    rule_set = rules(tmp_path)
    connector = connect(site, store=store)
    sync_source(SOURCE, connector, rule_set, store, NOW)
    key = site.keys()[1]  # a Story "In Progress"
    comment_id = site.comments(key)[0]["id"]
    site.touch(key, status="Done", timeestimate=0)
    site.reset_counters()

    report = sync_source(SOURCE, connector, rule_set, store, NOW)

    assert report.items_written == 1
    assert mutations(site) == [
        ("PUT", f"/rest/api/3/issue/{key}/comment/{comment_id}", 200),
        ("PUT", f"/rest/api/3/issue/{key}", 204),  # fields and the comment's property
    ]
    assert site.issue(key)["fields"][site.field_id("Bridge phase")]["value"] == "closing"
    assert len(site.comments(key)) == 1


def test_an_issue_deleted_during_the_sync_is_skipped_and_recorded(
    synced: tuple[JiraDouble, SqliteStore, Path],
) -> None:
    site, store, tmp_path = synced
    victim = site.keys()[5]

    def delete_when_seen(item: WorkItem) -> None:
        if item.key == victim:
            site.delete_issue(victim)

    report = sync_source(
        SOURCE, connect(site, store=store), rules(tmp_path), store, NOW, on_item=delete_when_seen
    )

    assert report.ok
    assert [key for key, _ in report.skipped] == [victim]
    assert "does not exist" in report.skipped[0][1]
    assert report.items_written == N - 1
    audit = [(item, action) for _, _, item, action, _ in store.audit_log(SOURCE, limit=500)]
    assert (victim, "skipped") in audit


def test_dry_run_plans_and_writes_nothing(synced: tuple[JiraDouble, SqliteStore, Path]) -> None:
    site, store, tmp_path = synced
    report = sync_source(
        SOURCE, connect(site, store=store), rules(tmp_path), store, NOW, dry_run=True
    )
    assert len(report.planned) == N
    assert mutations(site) == []
    assert store.get_cursor(SOURCE) is None


def test_rate_limits_are_honoured_without_failing_the_sync(
    synced: tuple[JiraDouble, SqliteStore, Path],
) -> None:
    site, store, tmp_path = synced
    naps: list[float] = []
    site.inject(429, times=3, method="PUT", retry_after=2, reason="jira-per-issue-on-write")
    site.inject(429, times=1, method="GET", path="/search/jql", reason="jira-burst-based")

    report = sync_source(
        SOURCE, connect(site, store=store, sleep=naps.append), rules(tmp_path), store, NOW
    )

    assert report.ok, report.failed
    assert report.items_written == N
    assert naps.count(2.0) == 3  # waited what Retry-After said, per refused write
    assert 1.0 in naps


def test_a_failing_pull_keeps_the_cursor(
    synced: tuple[JiraDouble, SqliteStore, Path],
) -> None:
    site, store, tmp_path = synced
    connector = connect(site, store=store)
    sync_source(SOURCE, connector, rules(tmp_path), store, NOW)
    cursor = store.get_cursor(SOURCE)
    site.inject(401, method="GET", path="/search/jql")
    with pytest.raises(ConnectorAuthError):
        sync_source(SOURCE, connector, rules(tmp_path), store, NOW)
    assert store.get_cursor(SOURCE) == cursor


def test_writes_never_exceed_the_per_issue_limit_under_concurrency(
    spec: OpenApiSpec, store: SqliteStore, tmp_path: Path
) -> None:
    with JiraDouble(spec=spec, max_page=25) as site:
        site.add_field("Bridge phase", "select", options=list(PHASES))
        seed(site, 60)
        report = sync_source(
            SOURCE, connect(site, store=store), rules(tmp_path), store, NOW, concurrency=8
        )
        assert report.ok
        assert all(status != 429 for _, _, status in mutations(site))
        # Writing while paging moves nothing: every issue pulled once, one comment each.
        assert (report.pulled, report.items_written) == (60, 60)
        assert len(mutations(site)) == 2 * 60
        assert all(len(site.comments(k)) == 1 for k in site.keys())  # noqa: SIM118


def test_data_center_second_sync_writes_nothing(store: SqliteStore, tmp_path: Path) -> None:
    """Data Center's search returns no issue properties (JRASERVER-62898): the comment's id
    and digest come from the store's copy, so the second run makes no request per issue."""
    with JiraDouble(deployment="datacenter", max_page=20) as site:
        site.add_field("Bridge phase", "select", options=list(PHASES))
        seed(site, 30)
        dc = {"deployment": "datacenter", "auth": {"pat_env": PAT_ENV}}
        first = sync_source(SOURCE, connect(site, store=store, **dc), rules(tmp_path), store, NOW)
        assert first.items_written == 30
        assert all(len(site.comments(k)) == 1 for k in site.keys())  # noqa: SIM118
        site.reset_counters()

        second = sync_source(SOURCE, connect(site, store=store, **dc), rules(tmp_path), store, NOW)

        assert mutations(site) == []
        assert second.unchanged + second.duplicates == 30
        assert {r.path for r in site.requests} == {
            "/rest/api/2/myself",
            "/rest/api/2/field",
            "/rest/api/2/search",
            "/rest/api/2/issue/OPS-1/editmeta",  # the select's options, without admin rights
        }


def test_data_center_without_the_stores_copy_reads_the_property(
    store: SqliteStore, tmp_path: Path
) -> None:
    with JiraDouble(deployment="datacenter", max_page=20) as site:
        site.add_field("Bridge phase", "select", options=list(PHASES))
        seed(site, 10)
        dc = {"deployment": "datacenter", "auth": {"pat_env": PAT_ENV}}
        sync_source(SOURCE, connect(site, store=store, **dc), rules(tmp_path), store, NOW)
        fresh = SqliteStore(str(tmp_path / "fresh.db"))  # a new store: no copies, no cursor
        site.reset_counters()

        report = sync_source(SOURCE, connect(site, store=fresh, **dc), rules(tmp_path), fresh, NOW)

        assert mutations(site) == []  # each property read once, the digest matched
        assert site.count("GET", r"/properties/bridge\.comment$") == 10
        # The report and the audit say what Jira saw: nothing written, not 10 summaries.
        assert (report.items_written, report.comment_writes, report.unchanged) == (0, 0, 10)
        assert [line for line in fresh.audit_log(SOURCE) if line[3] == "written"] == []
        fresh.close()


def test_a_comment_posted_before_its_fields_were_refused_is_counted(
    synced: tuple[JiraDouble, SqliteStore, Path],
) -> None:
    site, store, tmp_path = synced
    key = site.keys()[0]
    site.inject(400, method="PUT", path=rf"/issue/{key}$")

    report = sync_source(SOURCE, connect(site, store=store), rules(tmp_path), store, NOW)

    assert [k for k, _ in report.failed] == [key]
    assert len(site.comments(key)) == 1  # the comment was posted, then its fields refused
    assert report.items_written == N - 1
    assert report.comment_writes == N  # the failed item's comment counts: Jira has it
    failed = [line for line in store.audit_log(SOURCE, limit=1000) if line[2] == key]
    assert "written before it failed: 0 field(s), 1 summary" in failed[0][4]


@pytest.mark.parametrize("per_minute", [1, 150])
def test_data_center_sync_reads_every_issue_while_issues_leave_between_pages(
    store: SqliteStore, tmp_path: Path, per_minute: int
) -> None:
    """The report: one issue leaving the results while a Data Center sync paged through
    them moved every later one back a place, and the 51st was never read ("pulled 149"),
    nor by later incremental syncs. Here one read issue stops matching and one unread issue
    is deleted before page 2; one issue a minute, then all 150 in one minute."""
    scope = {"jql": "project = OPS AND status != Done"}
    with JiraDouble(deployment="datacenter", max_page=50) as site:
        site.add_field("Bridge phase", "select", options=list(PHASES))
        keys = site.bulk_add(
            150,
            fields=lambda i: {
                "issuetype": "Story",
                "status": "In Progress",
                "timeoriginalestimate": 3600 * (4 + i % 5),
                "created": T0 + timedelta(minutes=i // per_minute),
                "updated": T0 + timedelta(minutes=i),
            },
        )
        pulled: list[str] = []

        def between_pages(number: int) -> None:
            if len(pulled) == 50 and site.issue(keys[49])["fields"]["status"]["name"] != "Done":
                assert pulled == keys[:50]  # page 1 handed out, page 2 not yet asked for
                site.touch(keys[49], status="Done")  # read: the last issue of page 1
                site.delete_issue(keys[120])  # not read yet

        site.before_search = between_pages
        dc = {"deployment": "datacenter", "auth": {"pat_env": PAT_ENV}, "scope": scope}
        report = sync_source(
            SOURCE,
            connect(site, store=store, **dc),
            rules(tmp_path),
            store,
            NOW,
            on_item=lambda item: pulled.append(item.key),
        )

        assert report.ok, report.failed
        assert report.pulled == 149 == len(set(pulled))
        assert sorted(pulled) == sorted(k for k in keys if k != keys[120])
        assert report.items_written == 149
        assert all(len(site.comments(k)) == 1 for k in site.keys())  # noqa: SIM118
        # Discovery's one-issue search, then pages of 50 whose first issue is the last one
        # handed out. With one issue a minute, the anchor's leaving is harmless (it was
        # alone in its minute); in the crowded minute, the minute is read again once.
        assert site.searches == 1 + (3 if per_minute == 1 else 5)


def test_fetch_many_reads_due_issues_in_searches_of_a_hundred_keys(
    double: JiraDouble, store: SqliteStore, tmp_path: Path
) -> None:
    """What a timer tick reads: its due issues in batches, gone ones left out; a batch
    Jira refuses (it names a key that no longer exists) is read issue by issue."""
    keys = seed(double, 150)
    double.delete_issue(keys[7])
    connector = connect(double, store=store)
    connector.prepare(rules(tmp_path))
    wanted = keys[:120] + keys[130:140]
    double.reset_counters()

    found = [item.key for item in connector.fetch_many(wanted)]

    assert found == [k for k in wanted if k != keys[7]]
    assert double.count("GET", r"/search/jql") == 3  # 100 keys, then 30; 50 per page here
    assert double.count("GET", r"/issue/") == 0

    double.inject(400, times=1, method="GET", path=r"/search/jql")
    double.reset_counters()
    again = [item.key for item in connector.fetch_many(wanted)]

    assert again == found
    assert double.count("GET", r"/issue/[A-Z]+-\d+$") == 100
