"""SLA at-risk thresholds: worked examples of the state, the flag and the instant it steps.

The generated items of ``test_next_change.py`` check the stepping instant against the KPIs
themselves; these examples pin the meaning down with numbers worked out by hand. Office hours
are Mon-Fri 08:00-17:00 in Berlin; March 2026: Tue 10, Wed 11, Thu 12.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.kpi import next_change
from bridge.kpi.compute import KpiEngine
from bridge.kpi.sla import StatusCategories
from bridge.model import FieldChange, NativeSla, NativeSlaCycle, WorkItem
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules
from bridge.writeback.values import (
    SLA_STATES,
    numeric,
    resolve_value_map,
    vocabulary,
    writeback_key_problem,
)

US = timedelta(microseconds=1)
BERLIN = ZoneInfo("Europe/Berlin")

RULES = """bridge: 1
calendars:
  office: {timezone: Europe/Berlin, hours: {mon-fri: "08:00-17:00"}}
slas:
  resolution:                     # a share of the goal's target
    calendar: office
    start: {on: created}
    pause: {field: status, equals: Waiting for customer}
    stop: {field: status_category, equals: done}
    at_risk: 75%
    goals:
      - {when: {field: priority, equals: Highest}, target: 4h}
      - {target: 8h}
  response:                       # time left before the goal
    calendar: office
    stop: {field: status_category, equals: done}
    at_risk: 1h
    goals:
      - {when: {field: priority, equals: Highest}, target: 30m}
      - {target: 8h}
  plain:                          # no threshold
    calendar: office
    pause: {field: status, equals: Waiting for customer}
    stop: {field: status_category, equals: done}
    source: auto
    goals: [{target: 4h}]
  native-resolution:
    source: native
    native: {jira_field: Time to resolution}
    at_risk: 75%
    goals: [{target: 8h}]
rules:
  - id: incidents
    when: {field: type, equals: Incident}
    then:
      work_type: service
      kpis: [sla.resolution, sla.response, sla.plain, sla.native-resolution]
"""
CATEGORY = {
    "Open": "todo",
    "In Progress": "in_progress",
    "Waiting for customer": "in_progress",
    "Resolved": "done",
}

with tempfile.TemporaryDirectory() as folder:
    (Path(folder) / "rules.yaml").write_text(RULES)
    RULE_SET = load_rules([folder])
RULES_ENGINE = Engine(RULE_SET)
KPIS = KpiEngine(RULE_SET, StatusCategories(CATEGORY))


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall-clock time in March 2026, as the UTC instant."""
    return datetime(2026, 3, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def incident(
    created: datetime, *moves: tuple[datetime, str, str], priority: str = "Medium", **extra: Any
) -> WorkItem:
    status = moves[-1][2] if moves else "Open"
    return WorkItem(
        "OPS-1",
        "jira",
        type="Incident",
        status=status,
        status_category=CATEGORY[status],  # type: ignore[arg-type]
        priority=priority,
        created=created,
        history=tuple(FieldChange(at, "status", a, b) for at, a, b in moves),
        history_complete=True,
        **extra,
    )


def sla(work: WorkItem, name: str, at: datetime) -> dict[str, Any]:
    """The SLA's figures at ``at``, by figure name (``state``, ``at_risk``...)."""
    values = KPIS.compute(work, RULES_ENGINE.classify(work, at), at).values
    prefix = f"sla.{name}."
    return {key[len(prefix) :]: value for key, value in values.items() if key.startswith(prefix)}


def change(work: WorkItem, written: list[str], now: datetime) -> datetime | None:
    return next_change(work, RULES_ENGINE.classify(work, now), KPIS, written, now)


# -- a share of the goal ------------------------------------------------------------------------


def test_a_p1_incident_is_at_risk_at_3h_of_its_4h_goal_across_the_night() -> None:
    # Opened Tue 15:00: 2 h on Tuesday, then the night; the third hour ends Wed 09:00.
    work = incident(berlin(10, 15), priority="Highest")
    evening = sla(work, "resolution", berlin(10, 16, 59))
    assert (evening["state"], evening["at_risk"]) == ("running", False)
    morning = sla(work, "resolution", berlin(11, 8, 30))  # 2 h 30 min: the night did not count
    assert (morning["state"], morning["at_risk"], morning["elapsed_seconds"]) == (
        "running",
        False,
        9000.0,
    )
    threshold = berlin(11, 9)
    assert sla(work, "resolution", threshold)["state"] == "running"  # 3 h is not past 3 h
    risky = sla(work, "resolution", threshold + US)
    assert (risky["state"], risky["at_risk"], risky["breached"]) == ("at_risk", True, False)
    # Still on its way to the goal: the breach instant is the running clock's.
    assert risky["breach_time"] == "2026-03-11T09:00:00Z"  # Wed 10:00 Berlin
    over = sla(work, "resolution", berlin(11, 10) + US)
    assert (over["state"], over["at_risk"], over["breached"]) == ("breaching", True, True)
    # The timer set on Tuesday evening comes back at the first µs past the threshold.
    written = ["sla.resolution.state", "sla.resolution.at_risk"]
    assert change(work, written, berlin(10, 16, 59)) == threshold + US
    assert change(work, written, threshold + US) == berlin(11, 10) + US  # then breaching


def test_resolved_after_the_threshold_is_met_and_no_longer_at_risk() -> None:
    work = incident(
        berlin(10, 15), (berlin(11, 9, 30), "Open", "Resolved"), priority="Highest"
    )  # 3 h 30 min of 4 h
    done = sla(work, "resolution", berlin(12, 12))
    assert (done["state"], done["at_risk"], done["breached"]) == ("met", False, False)
    assert change(work, ["sla.resolution.state", "sla.resolution.at_risk"], berlin(12, 12)) is None


# -- time left before the goal ------------------------------------------------------------------


def test_at_risk_1h_is_one_working_hour_before_the_goal() -> None:
    # Medium: the 8 h goal, at risk once less than 1 h is left: past 7 h, Wed 09:00 + 7 h.
    work = incident(berlin(11, 9))
    assert sla(work, "response", berlin(11, 16))["state"] == "running"  # 7 h: 1 h left
    late = sla(work, "response", berlin(11, 16) + US)
    assert (late["state"], late["at_risk"], late["remaining_seconds"]) == (
        "at_risk",
        True,
        3599.999999,
    )
    assert change(work, ["sla.response.state"], berlin(11, 12)) == berlin(11, 16) + US
    # The goal is reached at closing time; the clock is past it at Thursday's first µs.
    assert sla(work, "response", berlin(12, 7))["state"] == "at_risk"
    assert sla(work, "response", berlin(12, 8) + US)["state"] == "breaching"
    assert change(work, ["sla.response.state"], berlin(11, 16) + US) == berlin(12, 8) + US


def test_a_time_left_longer_than_the_items_goal_never_comes_before_the_breach() -> None:
    # Highest: a 30 min goal, shorter than the hour; the clock goes from running to breaching.
    work = incident(berlin(11, 10), priority="Highest")
    for minute in (0, 1, 29):
        figures = sla(work, "response", berlin(11, 10, minute))
        assert (figures["state"], figures["at_risk"]) == ("running", False)
    breaching = sla(work, "response", berlin(11, 10, 30) + US)
    assert (breaching["state"], breaching["at_risk"]) == ("breaching", True)
    assert change(work, ["sla.response.state"], berlin(11, 10)) == berlin(11, 10, 30) + US


# -- paused -------------------------------------------------------------------------------------


def test_a_paused_clock_at_risk_stays_paused_and_keeps_the_flag() -> None:
    # 6 h 30 min of the 8 h goal (past 6 h), then waiting for the customer from Wed 14:30.
    waiting = incident(
        berlin(11, 8),
        (berlin(11, 9), "Open", "In Progress"),
        (berlin(11, 14, 30), "In Progress", "Waiting for customer"),
    )
    now = berlin(12, 11)
    figures = sla(waiting, "resolution", now)
    assert (figures["state"], figures["at_risk"], figures["breach_time"]) == ("paused", True, None)
    written = ["sla.resolution.state", "sla.resolution.at_risk", "sla.resolution.breached"]
    assert change(waiting, written, now) is None  # a paused clock does not move
    resumed = incident(
        berlin(11, 8),
        (berlin(11, 9), "Open", "In Progress"),
        (berlin(11, 14, 30), "In Progress", "Waiting for customer"),
        (berlin(12, 10), "Waiting for customer", "In Progress"),
    )
    again = sla(resumed, "resolution", now)  # 1 h 30 min left: at risk, not merely running
    assert (again["state"], again["at_risk"]) == ("at_risk", True)
    assert change(resumed, written, now) == berlin(12, 11, 30) + US  # the goal


def test_a_paused_clock_below_its_threshold_is_not_at_risk() -> None:
    waiting = incident(berlin(11, 8), (berlin(11, 9), "Open", "Waiting for customer"))
    figures = sla(waiting, "resolution", berlin(12, 16))
    assert (figures["state"], figures["at_risk"]) == ("paused", False)


# -- without a threshold ------------------------------------------------------------------------


def test_without_a_threshold_the_flag_rises_with_the_breach_only() -> None:
    work = incident(berlin(11, 8))
    assert sla(work, "plain", berlin(11, 11, 59))["state"] == "running"  # 3 h 59 min of 4 h
    assert sla(work, "plain", berlin(11, 11, 59))["at_risk"] is False
    assert sla(work, "plain", berlin(11, 12) + US)["at_risk"] is True
    assert change(work, ["sla.plain.at_risk"], berlin(11, 9)) == berlin(11, 12) + US
    # Paused past the goal: still paused, and still at risk.
    over = incident(berlin(11, 8), (berlin(11, 13), "Open", "Waiting for customer"))
    figures = sla(over, "plain", berlin(12, 9))
    assert (figures["state"], figures["breached"], figures["at_risk"]) == ("paused", True, True)


def test_a_clock_with_no_matching_goal_has_no_at_risk_flag() -> None:
    rules_text = RULES.replace("      - {target: 8h}\n  response:", "  response:")
    assert rules_text != RULES
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "rules.yaml").write_text(rules_text)
        rule_set = load_rules([folder])
    kpis = KpiEngine(rule_set, StatusCategories(CATEGORY))
    work = incident(berlin(11, 8))  # Medium: only the Highest goal is left
    result = kpis.compute(work, Engine(rule_set).classify(work, berlin(11, 9)), berlin(11, 9))
    assert result.values["sla.resolution.at_risk"] is None
    assert {"kpi": "sla.resolution.at_risk", "reason": "no goal of this SLA matches the item"} in (
        result.missing
    )


# -- native SLA data ----------------------------------------------------------------------------


def native(elapsed: float | None, **changes: Any) -> WorkItem:
    """An incident with a JSM "Time to resolution" cycle of 8 h started Wed 08:00."""
    cycle = NativeSlaCycle(
        start=berlin(11, 8),
        stop=None,
        breach_time=berlin(12, 8),
        goal_seconds=8 * 3600.0,
        elapsed_seconds=elapsed,
        remaining_seconds=None if elapsed is None else 8 * 3600.0 - elapsed,
        breached=False,
    )
    cycle = replace(cycle, **changes)
    return incident(berlin(11, 8), native_slas=(NativeSla("Time to resolution", None, (cycle,)),))


@pytest.mark.parametrize(
    ("elapsed", "state", "flag"),
    [(5 * 3600.0, "running", False), (6 * 3600.0, "running", False), (6.5 * 3600, "at_risk", True)],
)
def test_the_threshold_holds_against_the_systems_own_figures(
    elapsed: float, state: str, flag: bool
) -> None:
    figures = sla(native(elapsed), "native-resolution", berlin(11, 16))
    assert (figures["source"], figures["state"], figures["at_risk"]) == ("native", state, flag)
    assert figures["breach_time"] == "2026-03-12T07:00:00Z"


def test_native_data_without_elapsed_time_cannot_say_at_risk() -> None:
    work = native(None)
    result = KPIS.compute(work, RULES_ENGINE.classify(work, berlin(11, 16)), berlin(11, 16))
    assert result.values["sla.native-resolution.state"] == "running"
    assert result.values["sla.native-resolution.at_risk"] is None
    assert {
        "kpi": "sla.native-resolution.at_risk",
        "reason": "the system's SLA data has no elapsed time to hold against at_risk",
    } in result.missing


def test_native_data_breached_or_stopped() -> None:
    breaching = sla(native(9 * 3600.0, breached=True), "native-resolution", berlin(12, 16))
    assert (breaching["state"], breaching["at_risk"]) == ("breaching", True)
    stopped = sla(native(7 * 3600.0, stop=berlin(11, 16)), "native-resolution", berlin(12, 16))
    assert (stopped["state"], stopped["at_risk"]) == ("met", False)


# -- written back -------------------------------------------------------------------------------


def test_the_state_and_the_flag_can_be_written_back() -> None:
    assert writeback_key_problem("sla.resolution.at_risk") is None
    assert not numeric("sla.resolution.at_risk")
    assert vocabulary("sla.resolution.at_risk") == ("yes", "no")
    assert "at_risk" in SLA_STATES


STATE_OPTIONS = [
    (f"100{i}", label)
    for i, label in enumerate(["Running", "Paused", "Breaching", "Met", "Breached", "Cancelled"])
]


def test_a_state_field_without_an_at_risk_option_shows_it_as_running() -> None:
    resolved, problems = resolve_value_map(
        "sla.resolution.state", "SLA state", {}, STATE_OPTIONS, SLA_STATES
    )
    assert problems == []
    assert resolved["at_risk"] == resolved["running"] == "1000"


def test_an_at_risk_option_in_words_is_found() -> None:
    options = [*STATE_OPTIONS, ("1009", "At risk")]
    resolved, problems = resolve_value_map(
        "sla.resolution.state", "SLA state", {}, options, SLA_STATES
    )
    assert (resolved["at_risk"], problems) == ("1009", [])


def test_a_state_field_without_running_names_both() -> None:
    options = [option for option in STATE_OPTIONS if option[1] != "Running"]
    _, problems = resolve_value_map("sla.resolution.state", "SLA state", {}, options, SLA_STATES)
    assert [problem.message.split(" (options")[0] for problem in problems] == [
        "field SLA state has no option for 'running', 'at_risk'"
    ]
