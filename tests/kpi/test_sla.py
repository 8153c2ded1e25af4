"""SLA clocks: worked examples over status histories, native data, and ServiceNow records."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.connectors.jira.mapping import item_from_issue
from bridge.connectors.servicenow.mapping import item_from_record
from bridge.kpi.calendar_spec import calendar_from_spec
from bridge.kpi.result import KpiResult
from bridge.kpi.sla import SlaOutcome, StatusCategories, compute_sla, sla_kpis, timeline
from bridge.model import FieldChange, WorkItem
from bridge.rules.ast import RuleSet
from bridge.rules.loader import load_rules

DATA = Path(__file__).parent.parent / "data"
OFFICE = calendar_from_spec("office", {"timezone": "UTC", "hours": {"mon-fri": "08:00-17:00"}})
CATEGORIES = StatusCategories({"Waiting for customer": "in_progress", "Reopened": "todo"})


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """March 2026: Fri 6, Mon 9, Tue 10, Wed 11."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def rules(tmp_path: Path, slas: str) -> RuleSet:
    path = tmp_path / "slas.yaml"
    path.write_text(
        "bridge: 1\ncalendars:\n  office: {timezone: UTC, hours: {mon-fri: "
        "'08:00-17:00'}}\nslas:\n" + slas
    )
    return load_rules([path])


RESOLUTION = """  resolution:
    calendar: office
    pause: {field: status, in: ["Waiting for customer"]}
    stop: {field: status_category, equals: done}
    cancel: {field: status, equals: Cancelled}
    goals:
      - {when: {field: priority, equals: Highest}, target: 4h}
      - {target: 8h}
"""


def item(
    created: datetime,
    *moves: tuple[datetime, str, str],
    priority: str = "Medium",
    final_category: str | None = None,
    **extra: Any,
) -> WorkItem:
    history = tuple(FieldChange(t, "status", a, b) for t, a, b in moves)
    status = moves[-1][2] if moves else "Open"
    return WorkItem(
        "OPS-1",
        "jira",
        type="Incident",
        status=status,
        priority=priority,
        status_category=final_category or CATEGORIES.category(status),
        created=created,
        history=history,
        **extra,
    )


def run(tmp_path: Path, work: WorkItem, now: datetime, slas: str = RESOLUTION) -> dict[str, Any]:
    rule_set = rules(tmp_path, slas)
    out = KpiResult()
    sla = next(iter(rule_set.slas.values()))
    sla_kpis(sla, work, timeline(work, CATEGORIES), OFFICE, now, out)
    return {k.split(".", 2)[2]: v for k, v in out.values.items()}


def test_the_kpis_md_example_fri_evening_to_monday_morning(tmp_path: Path) -> None:
    work = item(at(6, 20, 49), (at(9, 9, 44), "Open", "Resolved"))
    v = run(tmp_path, work, now=at(11, 12))
    assert v["elapsed_seconds"] == 6240  # 1 h 44 min: the clock starts Monday 08:00
    assert v["state"] == "met"
    assert v["goal_seconds"] == 8 * 3600
    assert v["remaining_seconds"] == 8 * 3600 - 6240
    assert v["breached"] is False
    assert v["breach_time"] is None
    assert v["elapsed_wall_seconds"] == (at(9, 9, 44) - at(6, 20, 49)).total_seconds()
    assert v["source"] == "computed"


def test_pauses_are_subtracted_in_business_and_wall_time(tmp_path: Path) -> None:
    work = item(
        at(9, 8),
        (at(9, 10), "Open", "Waiting for customer"),
        (at(9, 14), "Waiting for customer", "In Progress"),
        (at(9, 16), "In Progress", "Resolved"),
    )
    v = run(tmp_path, work, now=at(10, 12))
    assert v["elapsed_seconds"] == 4 * 3600
    assert v["elapsed_wall_seconds"] == 4 * 3600
    assert v["state"] == "met"


def test_running_clock_predicts_its_breach_across_closing_time(tmp_path: Path) -> None:
    work = item(at(9, 15), priority="Highest")
    v = run(tmp_path, work, now=at(9, 16))
    assert v["state"] == "running"
    assert v["remaining_seconds"] == 3 * 3600
    assert v["breach_time"] == "2026-03-10T10:00:00Z"  # 1 h Monday, 2 h Tuesday


def test_goal_running_out_at_closing_time_is_17_00_not_next_morning(tmp_path: Path) -> None:
    work = item(at(9, 13), priority="Highest")
    v = run(tmp_path, work, now=at(9, 14))
    assert v["breach_time"] == "2026-03-09T17:00:00Z"


def test_breaching_reports_when_the_goal_was_crossed(tmp_path: Path) -> None:
    work = item(
        at(9, 8),
        (at(9, 9), "Open", "Waiting for customer"),
        (at(9, 10), "Waiting for customer", "In Progress"),
        priority="Highest",
    )
    v = run(tmp_path, work, now=at(9, 15))
    assert v["state"] == "breaching"
    assert v["elapsed_seconds"] == 6 * 3600
    assert v["remaining_seconds"] == -2 * 3600
    assert v["breached"] is True
    assert v["breach_time"] == "2026-03-09T13:00:00Z"  # 8-9 and 10-13 make 4 h


FIVE_DAYS = RESOLUTION.replace(
    "      - {when: {field: priority, equals: Highest}, target: 4h}\n      - {target: 8h}\n",
    "      - {target: 45h}\n",
)


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (at(13, 16), "running"),  # an hour before: the prediction
        (at(13, 17), "running"),  # just as the goal is reached, at Friday's closing
        (at(13, 22), "running"),  # a weekday night
        (at(14, 12), "running"),  # Saturday
        (at(16, 7, 59), "running"),  # Monday, just before opening
        (at(16, 9), "breaching"),
    ],
)
def test_goal_reached_at_closing_keeps_its_breach_time_through_the_closed_time(
    tmp_path: Path, now: datetime, state: str
) -> None:
    work = item(at(9, 8))  # Mon 08:00; a 45 h goal is exactly five office days
    v = run(tmp_path, work, now=now, slas=FIVE_DAYS)
    assert v["state"] == state
    if now >= at(13, 17) and state == "running":
        assert (v["elapsed_seconds"], v["remaining_seconds"]) == (45 * 3600, 0)
    assert v["breach_time"] == "2026-03-13T17:00:00Z"  # never `now` itself


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (at(9, 16), "running"),
        (at(9, 17), "running"),
        (at(9, 23), "running"),  # a weekday night
        (at(10, 7), "running"),
        (at(10, 9), "breaching"),
    ],
)
def test_goal_reached_at_closing_after_a_pause_keeps_its_breach_time(
    tmp_path: Path, now: datetime, state: str
) -> None:
    work = item(
        at(9, 8),
        (at(9, 9), "Open", "Waiting for customer"),
        (at(9, 10), "Waiting for customer", "In Progress"),
    )
    v = run(tmp_path, work, now=now)
    assert v["state"] == state
    assert v["breach_time"] == "2026-03-09T17:00:00Z"  # 8-9 and 10-17 make the 8 h goal


@pytest.mark.parametrize("now", [at(9, 17), at(9, 20), at(10, 7)])
def test_goal_reached_at_closing_with_millisecond_pauses_keeps_its_breach_time(
    tmp_path: Path, now: datetime
) -> None:
    def ms(hour: int, minute: int, second: int, millis: int) -> datetime:
        return at(9, hour, minute) + timedelta(seconds=second, milliseconds=millis)

    # Jira stamps changes in ms: the pauses sum to exactly 1 h minus the late start, so the
    # 8 h goal is reached at 17:00, yet the float subtraction leaves ~4e-12 s "remaining".
    work = item(
        ms(8, 17, 17, 846),
        (ms(8, 35, 19, 898), "Open", "Waiting for customer"),
        (ms(8, 50, 30, 8), "Waiting for customer", "In Progress"),
        (ms(9, 37, 28, 754), "In Progress", "Waiting for customer"),
        (ms(10, 5, 0, 798), "Waiting for customer", "In Progress"),
    )
    v = run(tmp_path, work, now=now)
    assert v["state"] == "running"
    assert v["remaining_seconds"] == pytest.approx(0, abs=1e-6)
    assert v["breach_time"] == "2026-03-09T17:00:00Z"


@pytest.mark.parametrize("now", [at(9, 17), at(9, 20), at(10, 7), at(10, 9)])
def test_crossing_found_when_per_span_sums_fall_short_of_the_goal(
    tmp_path: Path, now: datetime
) -> None:
    def ms(hour: int, minute: int, second: int, millis: int) -> datetime:
        return at(9, hour, minute) + timedelta(seconds=second, milliseconds=millis)

    # Six ms-stamped pauses leave exactly 8 h by 17:00, but the running spans summed one by
    # one come to ~4e-12 s short of the goal: the crossing is still 17:00, never `now`.
    pauses = [
        (ms(8, 24, 1, 301), ms(8, 30, 16, 621)),
        (ms(8, 47, 51, 842), ms(8, 51, 56, 977)),
        (ms(9, 16, 19, 962), ms(9, 26, 48, 849)),
        (ms(9, 43, 51, 820), ms(9, 44, 10, 852)),
        (ms(10, 10, 54, 296), ms(10, 32, 13, 250)),
        (ms(10, 56, 0, 541), ms(11, 1, 0, 918)),
    ]
    moves = [
        move
        for begin, end in pauses
        for move in (
            (begin, "In Progress", "Waiting for customer"),
            (end, "Waiting for customer", "In Progress"),
        )
    ]
    work = item(ms(8, 12, 32, 295), *moves)
    v = run(tmp_path, work, now=now)
    if now < at(10, 8):
        assert v["elapsed_seconds"] == pytest.approx(8 * 3600, abs=1e-6)
    assert v["breach_time"] == "2026-03-09T17:00:00Z"


def ms_paused(*stop: tuple[datetime, str, str]) -> WorkItem:
    """Started 08:20:38.545 with two ms-stamped pauses: exactly 8 h elapsed by 17:00, but the
    pauses subtracted one by one leave the float sum ~4e-12 s *over* the goal."""

    def ms(hour: int, minute: int, second: int, millis: int) -> datetime:
        return at(9, hour, minute) + timedelta(seconds=second, milliseconds=millis)

    return item(
        ms(8, 20, 38, 545),
        (ms(9, 1, 30, 475), "Open", "Waiting for customer"),
        (ms(9, 16, 43, 116), "Waiting for customer", "In Progress"),
        (ms(9, 49, 56, 71), "In Progress", "Waiting for customer"),
        (ms(10, 14, 4, 885), "Waiting for customer", "In Progress"),
        *stop,
    )


@pytest.mark.parametrize("resolved", [at(9, 17), at(9, 18, 30), at(10, 7)])
def test_stopped_with_elapsed_equal_to_the_goal_despite_float_noise_is_met(
    tmp_path: Path, resolved: datetime
) -> None:
    work = ms_paused((resolved, "In Progress", "Resolved"))
    v = run(tmp_path, work, now=at(11, 8))
    assert v["state"] == "met"  # equal is met: compared in whole µs, as the calendar counts
    assert (v["elapsed_seconds"], v["remaining_seconds"]) == (8 * 3600, 0)
    assert (v["breached"], v["ever_breached"]) == (False, False)


@pytest.mark.parametrize("now", [at(9, 17), at(9, 20), at(10, 7)])
def test_running_with_elapsed_equal_to_the_goal_despite_float_noise_is_not_breaching(
    tmp_path: Path, now: datetime
) -> None:
    v = run(tmp_path, ms_paused(), now=now)
    assert v["state"] == "running"
    assert (v["elapsed_seconds"], v["remaining_seconds"]) == (8 * 3600, 0)
    assert (v["breached"], v["ever_breached"]) == (False, False)
    assert v["breach_time"] == "2026-03-09T17:00:00Z"


def test_an_earlier_cycle_equal_to_its_goal_despite_float_noise_was_not_breached(
    tmp_path: Path,
) -> None:
    reopened = RESOLUTION.replace(
        "    calendar: office\n",
        "    calendar: office\n    start: {field: status_category, in: [todo, in_progress]}\n",
    )
    work = ms_paused(
        (at(9, 17), "In Progress", "Resolved"),
        (at(10, 9), "Resolved", "Reopened"),
        (at(10, 10), "Reopened", "Resolved"),
    )
    v = run(tmp_path, work, now=at(11, 8), slas=reopened)
    assert (v["state"], v["ever_breached"]) == ("met", False)
    snapshots = timeline(work, CATEGORIES)
    assert isinstance(snapshots, list)
    sla = rules(tmp_path, reopened).slas["resolution"]
    outcome = compute_sla(sla, snapshots, OFFICE, at(11, 8))
    assert isinstance(outcome, SlaOutcome)
    assert outcome.completed == (False, False)  # the first cycle took exactly its 8 h


@pytest.mark.parametrize(
    ("now", "state"),
    [(at(9, 11), "running"), (at(9, 12), "running"), (at(9, 12, 30), "breaching")],
)
def test_goal_reached_exactly_now_during_open_hours(
    tmp_path: Path, now: datetime, state: str
) -> None:
    work = item(at(9, 8), priority="Highest")  # 4 h goal, reached at 12:00
    v = run(tmp_path, work, now=now)
    assert v["state"] == state
    if now == at(9, 12):
        assert (v["remaining_seconds"], v["breached"]) == (0, False)  # equal is not breached
    assert v["breach_time"] == "2026-03-09T12:00:00Z"


def test_paused_at_now_has_no_breach_time(tmp_path: Path) -> None:
    work = item(at(9, 8), (at(9, 9), "Open", "Waiting for customer"))
    v = run(tmp_path, work, now=at(10, 12))
    assert v["state"] == "paused"
    assert v["elapsed_seconds"] == 3600
    assert v["breach_time"] is None


def test_completed_late_is_breached_and_equal_is_met(tmp_path: Path) -> None:
    late = item(at(9, 8), (at(9, 17), "Open", "Resolved"), (at(10, 8), "Resolved", "Closed"))
    v = run(tmp_path, late, now=at(11, 8))
    assert (v["state"], v["breached"], v["elapsed_seconds"]) == ("breached", True, 9 * 3600)
    exact = item(at(9, 8), (at(9, 16), "Open", "Resolved"))
    assert run(tmp_path, exact, now=at(11, 8))["state"] == "met"


def test_cancel_wins_over_stop(tmp_path: Path) -> None:
    work = item(at(9, 8), (at(9, 10), "Open", "Cancelled"))
    v = run(tmp_path, work, now=at(11, 8))
    assert v["state"] == "cancelled"
    assert v["breach_time"] is None


def test_reopening_after_the_stop_does_not_start_a_second_cycle(tmp_path: Path) -> None:
    work = item(at(9, 8), (at(9, 9), "Open", "Resolved"), (at(9, 10), "Resolved", "Reopened"))
    v = run(tmp_path, work, now=at(11, 8))
    assert v["state"] == "met"
    assert v["elapsed_seconds"] == 3600


CYCLES = """  in-progress:
    calendar: office
    start: {field: status, equals: In Progress}
    stop: {field: status, in: [Review, Done]}
    goals: [{target: 2h}]
"""


def test_start_conditions_make_cycles_and_ever_breached_remembers(tmp_path: Path) -> None:
    work = item(
        at(9, 8),
        (at(9, 9), "Open", "In Progress"),
        (at(9, 12), "In Progress", "Review"),
        (at(9, 13), "Review", "In Progress"),
        final_category="in_progress",
    )
    v = run(tmp_path, work, now=at(9, 14), slas=CYCLES)
    assert v["state"] == "running"
    assert v["elapsed_seconds"] == 3600
    assert v["breached"] is False
    assert v["ever_breached"] is True  # the first cycle took 3 h of a 2 h goal
    snapshots = timeline(work, CATEGORIES)
    assert isinstance(snapshots, list)
    outcome = compute_sla(rules(tmp_path, CYCLES).slas["in-progress"], snapshots, OFFICE, at(9, 14))
    assert isinstance(outcome, SlaOutcome)
    assert outcome.cycles == 2
    assert outcome.completed == (True,)


def test_never_started_is_missing_with_a_reason(tmp_path: Path) -> None:
    rule_set = rules(tmp_path, CYCLES)
    out = KpiResult()
    work = item(at(9, 8))
    sla_kpis(rule_set.slas["in-progress"], work, timeline(work, CATEGORIES), OFFICE, at(9, 9), out)
    assert out.values["sla.in-progress.state"] is None
    assert out.missing[0]["reason"] == "the SLA never started (its start condition never held)"


def test_goal_chosen_by_state_at_the_end(tmp_path: Path) -> None:
    work = item(at(9, 8), (at(9, 9), "Open", "Resolved"), priority="Highest")
    assert run(tmp_path, work, now=at(9, 10))["goal_seconds"] == 4 * 3600


def test_no_created_date_is_missing(tmp_path: Path) -> None:
    work = WorkItem("X-1", "jira", type="Incident")
    out = KpiResult()
    sla = rules(tmp_path, RESOLUTION).slas["resolution"]
    sla_kpis(sla, work, timeline(work, CATEGORIES), OFFICE, at(9, 9), out)
    assert out.missing[0]["reason"] == "no creation date to start the clock"


# -- ServiceNow records carry no history ---------------------------------------------------------


def incident(**fields: str) -> WorkItem:
    record = json.loads((DATA / "servicenow" / "table_get_incident_by_sys_id.json").read_text())
    record = dict(record["result"], **fields)
    return item_from_record(record)


SN_RESOLUTION = RESOLUTION.replace('in: ["Waiting for customer"]', 'in: ["On Hold"]').replace(
    "equals: Cancelled", "equals: Canceled"
)


def test_servicenow_resolved_incident_stops_at_resolved_at(tmp_path: Path) -> None:
    work = incident(
        state="6",
        opened_at="2026-03-09 08:00:00",
        resolved_at="2026-03-09 11:30:00",
        sys_updated_on="2026-03-10 09:00:00",
    )
    v = run(tmp_path, work, now=at(11, 8), slas=SN_RESOLUTION)
    assert (v["state"], v["elapsed_seconds"]) == ("met", 3.5 * 3600)


def test_servicenow_on_hold_is_paused_since_the_last_update(tmp_path: Path) -> None:
    work = incident(
        state="3", opened_at="2026-03-09 08:00:00", sys_updated_on="2026-03-09 10:00:00"
    )
    v = run(tmp_path, work, now=at(10, 12), slas=SN_RESOLUTION)
    assert (v["state"], v["elapsed_seconds"]) == ("paused", 2 * 3600)


def test_servicenow_canceled_at_closed_at(tmp_path: Path) -> None:
    work = incident(
        state="8",
        opened_at="2026-03-09 08:00:00",
        closed_at="2026-03-09 09:00:00",
        sys_updated_on="2026-03-10 09:00:00",
    )
    v = run(tmp_path, work, now=at(11, 8), slas=SN_RESOLUTION)
    assert (v["state"], v["elapsed_seconds"]) == ("cancelled", 3600)


# -- Jira issues read with their whole changelog -------------------------------------------------


def custom_change(created: str, author: str, field_id: str, value: str) -> dict[str, Any]:
    """A changelog entry for a field SLA clocks do not replay (bridge's own write-back)."""
    return {
        "created": created,
        "author": {"displayName": author},
        "items": [
            {"field": field_id, "fieldtype": "custom", "fieldId": field_id, "toString": value}
        ],
    }


def waiting_issue(updated: str, *histories: dict[str, Any]) -> WorkItem:
    """Created Mon 08:00 straight into "Waiting for customer"; no status change since."""
    return item_from_issue(
        {
            "key": "OPS-7",
            "fields": {
                "issuetype": {"name": "Incident"},
                "status": {
                    "name": "Waiting for customer",
                    "statusCategory": {"key": "indeterminate"},
                },
                "priority": {"name": "Medium"},
                "created": "2026-03-09T08:00:00.000+0000",
                "updated": updated,
            },
            "changelog": {
                "startAt": 0,
                "maxResults": len(histories),
                "total": len(histories),
                "histories": list(histories),
            },
        }
    )


BRIDGE_WROTE = custom_change(
    "2026-03-09T10:00:00.000+0000", "bridge", "customfield_10200", "paused"
)


def test_jira_item_without_a_replayed_change_has_been_as_it_is_since_creation(
    tmp_path: Path,
) -> None:
    work = waiting_issue("2026-03-09T10:00:00.000+0000", BRIDGE_WROTE)
    assert work.history_complete
    assert timeline(work, CATEGORIES) == [(at(9, 8), work)]
    v = run(tmp_path, work, now=at(10, 12))
    # Paused from creation, not from bridge's write at 10:00 (which bumped `updated`).
    assert v["state"] == "paused"
    assert (v["elapsed_seconds"], v["elapsed_wall_seconds"]) == (0, 0)
    assert v["remaining_seconds"] == 8 * 3600
    assert v["breach_time"] is None


def test_jira_sla_figures_do_not_move_with_updated_or_unreplayed_changes(
    tmp_path: Path,
) -> None:
    before = run(tmp_path, waiting_issue("2026-03-09T10:00:00.000+0000", BRIDGE_WROTE), at(10, 12))
    later = waiting_issue(
        "2026-03-10T11:00:00.000+0000",
        BRIDGE_WROTE,
        custom_change("2026-03-10T11:00:00.000+0000", "Ann", "customfield_10020", "Sprint 3"),
    )
    assert run(tmp_path, later, at(10, 12)) == before


def test_without_the_whole_history_the_state_is_taken_to_begin_at_the_last_update(
    tmp_path: Path,
) -> None:
    # The same issue read without its changelog: when "Waiting for customer" began is unknown,
    # so (as for ServiceNow) it is taken to be the last update.
    work = replace(waiting_issue("2026-03-09T10:00:00.000+0000"), history_complete=False)
    v = run(tmp_path, work, now=at(10, 12))
    assert (v["state"], v["elapsed_seconds"]) == ("paused", 2 * 3600)


# -- native SLA data -----------------------------------------------------------------------------


def jsm_issue() -> WorkItem:
    issue = json.loads((DATA / "jira" / "jsm-sla-issue.json").read_text())
    return item_from_issue(issue)


NATIVE = RESOLUTION.replace(
    "    calendar: office\n",
    "    calendar: office\n    source: auto\n    native: {jira_field: Time to resolution}\n",
)


def test_native_jsm_sla_is_read_when_the_rules_ask_for_it(tmp_path: Path) -> None:
    work = jsm_issue()
    v = run(tmp_path, work, now=at(11, 8), slas=NATIVE)
    assert v["source"] == "native"
    assert v["state"] == "running"
    assert v["goal_seconds"] == 4 * 3600
    assert v["elapsed_seconds"] == 5640
    assert v["remaining_seconds"] == 8760
    assert v["breach_time"] == "2015-10-10T16:15:23Z"
    assert v["ever_breached"] is True  # the completed cycle was breached
    assert v["elapsed_wall_seconds"] is None


def test_computed_source_ignores_native_data(tmp_path: Path) -> None:
    v = run(tmp_path, jsm_issue(), now=at(11, 8), slas=RESOLUTION)
    assert v["source"] == "computed"


def test_native_source_without_data_is_missing(tmp_path: Path) -> None:
    only_native = NATIVE.replace("source: auto", "source: native")
    v = run(tmp_path, item(at(9, 8)), now=at(9, 9), slas=only_native)
    assert v["state"] is None


# -- calendars across DST ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29, tzinfo=UTC), 23),
        ("Europe/Berlin", datetime(2026, 10, 25, tzinfo=UTC), 25),
        ("America/New_York", datetime(2026, 3, 8, tzinfo=UTC), 23),
    ],
)
def test_a_24x7_local_calendar_has_23_and_25_hour_days(
    zone: str, day: datetime, hours: int
) -> None:
    cal = calendar_from_spec("c", {"timezone": zone, "hours": "24x7"})
    midnight = cal.local_midnight(day.date())
    next_midnight = cal.local_midnight(day.date() + timedelta(days=1))
    assert cal.elapsed(midnight, next_midnight) == hours * 3600
