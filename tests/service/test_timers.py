"""KPIs that stay true between changes: a breach and a passed due date reach the ticket
within one tick of the worker's timers, without any edit to the item and without a sync.

The Jira double over HTTP, the real store; the worker's clock is moved on by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.model import PHASES
from bridge.service.runtime import Runtime
from bridge.service.tasks import Jobs, make_huey
from bridge.sync import sync_source
from bridge.testing.jira import JiraDouble

TOKEN_ENV = "BRIDGE_TEST_JIRA_TOKEN"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
RULES = """bridge: 1
calendars:
  always: {timezone: UTC, hours: 24x7}
slas:
  resolution:
    calendar: always
    start: {on: created}
    stop: {field: status_category, equals: done}
    at_risk: 75%
    goals:
      - {target: 4h}
rules:
  - id: incidents
    when: {field: type, equals: Bug}
    then: {work_type: service, kpis: [sla.resolution]}
  - id: stories
    when: {field: type, equals: Story}
    then:
      work_type: project
      phase: {by_status_category: {todo: planning, in_progress: execution, done: closing}}
      kpis: [schedule]
default: {work_type: unclassified}
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraDouble]:
    monkeypatch.setenv(TOKEN_ENV, "token")
    with JiraDouble() as double:
        double.add_field("Bridge phase", "select", options=list(PHASES))
        double.add_field("TTR state", "string")
        double.add_field("Slip days", "number")
        yield double


def runtime_for(site: JiraDouble, tmp_path: Path, extra: str = "") -> Runtime:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    path = tmp_path / "bridge.yaml"
    path.write_text(
        f"rules: rules\nstore: sqlite://{tmp_path / 'state.db'}\nsources:\n"
        "  - name: jira\n"
        "    connector: jira\n"
        f"    url: {site.url}\n"
        "    deployment: cloud\n"
        f"    auth: {{email: {site.email}, token_env: {TOKEN_ENV}}}\n"
        "    scope: {jql: 'project = OPS'}\n"
        "    writeback:\n"
        "      fields: {work_type: Work type, sla.resolution.state: TTR state,"
        f" schedule.slip_days: Slip days{extra}}}\n"
    )
    return Runtime(load_config(path))


def test_an_at_risk_point_a_breach_and_a_passed_due_date_reach_the_ticket_within_one_tick(
    site: JiraDouble, tmp_path: Path
) -> None:
    (incident,) = site.bulk_add(1, fields={"issuetype": "Bug", "status": "To Do", "created": T0})
    (story,) = site.bulk_add(
        1,
        fields={
            "issuetype": "Story",
            "status": "In Progress",
            "created": T0,
            "duedate": "2026-03-03",
        },
    )
    runtime = runtime_for(site, tmp_path)
    clock = Clock(T0 + timedelta(hours=1))
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True), clock=clock)
    ttr, slip = site.field_id("TTR state"), site.field_id("Slip days")
    try:
        evaluators = runtime.evaluators()
        sync_source("jira", runtime.connector("jira"), evaluators.rule_set, runtime.store, clock())
        assert site.issue(incident)["fields"][ttr] == "running"
        assert site.issue(story)["fields"][slip] == 0
        timers = {t.key: t.due for t in runtime.store.next_timers(10)}
        # At risk past 75% of the goal (3h); equal is not yet over, so 1 µs after.
        assert timers[incident] == T0 + timedelta(hours=3, microseconds=1)
        assert timers[story] == datetime(2026, 3, 4, tzinfo=UTC)  # the day after it was due
        site.reset_counters()

        clock.now = T0 + timedelta(hours=2)
        assert jobs.tick() == 0  # nothing due yet: nothing read, nothing written
        assert site.count() == 0

        clock.now = T0 + timedelta(hours=3, seconds=30)  # one tick after the at-risk point
        assert jobs.tick() == 1
        assert site.issue(incident)["fields"][ttr] == "at_risk"
        site.reset_counters()

        clock.now = T0 + timedelta(hours=4, seconds=30)  # one tick after the breach
        assert jobs.tick() == 1
        assert site.issue(incident)["fields"][ttr] == "breaching"
        assert site.count("GET", r"/search/jql") == 1  # the due items, in one search
        assert site.count("PUT", rf"/issue/{story}$") == 0  # not due: not touched

        clock.now = datetime(2026, 3, 4, 0, 0, 30, tzinfo=UTC)
        assert jobs.tick() == 1
        assert site.issue(story)["fields"][slip] == 1
        later = {t.key: t.due for t in runtime.store.next_timers(10)}
        assert later[story] == datetime(2026, 3, 5, tzinfo=UTC)  # and one more each day
        assert incident not in later or later[incident] > clock.now
    finally:
        runtime.close()


def test_a_deleted_item_loses_its_timer_at_its_tick(site: JiraDouble, tmp_path: Path) -> None:
    (incident,) = site.bulk_add(1, fields={"issuetype": "Bug", "status": "To Do", "created": T0})
    runtime = runtime_for(site, tmp_path)
    clock = Clock(T0 + timedelta(hours=1))
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True), clock=clock)
    try:
        evaluators = runtime.evaluators()
        sync_source("jira", runtime.connector("jira"), evaluators.rule_set, runtime.store, clock())
        assert runtime.store.count_timers() == {"jira": 1}
        site.delete_issue(incident)
        clock.now = T0 + timedelta(hours=5)

        assert jobs.tick() == 0
        assert runtime.store.count_timers() == {}
    finally:
        runtime.close()


def test_a_moving_figure_is_written_once_per_refresh_period_and_rounded(
    site: JiraDouble, tmp_path: Path
) -> None:
    (incident,) = site.bulk_add(1, fields={"issuetype": "Bug", "status": "To Do", "created": T0})
    site.add_field("Hours left", "number")
    extra = ", sla.resolution.remaining_seconds: {field: Hours left, refresh: 1h, round: 0}"
    runtime = runtime_for(site, tmp_path, extra)
    clock = Clock(T0 + timedelta(hours=1, minutes=30))
    jobs = Jobs(runtime, make_huey(runtime.config, immediate=True), clock=clock)
    left = site.field_id("Hours left")
    try:
        rules = runtime.evaluators().rule_set
        connector = runtime.connector("jira")
        sync_source("jira", connector, rules, runtime.store, clock())
        # As at the start of the hour: 3h left, the same value all hour long.
        assert site.issue(incident)["fields"][left] == 10800
        assert {t.key: t.due for t in runtime.store.next_timers()}[incident] == T0 + timedelta(
            hours=2
        )
        site.reset_counters()

        clock.now = T0 + timedelta(hours=1, minutes=50)
        again = sync_source("jira", connector, rules, runtime.store, clock(), full=True)
        assert again.items_written == 0  # same hour: nothing to rewrite
        assert site.count("PUT") == 0

        clock.now = T0 + timedelta(hours=2, seconds=20)  # the next refresh, at its tick
        assert jobs.tick() == 1
        assert site.issue(incident)["fields"][left] == 7200
    finally:
        runtime.close()
