"""The SLA trace ``bridge explain`` shows: the same numbers as the KPIs, cycle by cycle."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.connectors.files import read_export
from bridge.kpi.calendar_spec import calendar_from_spec
from bridge.kpi.compute import KpiEngine
from bridge.kpi.result import KpiResult, iso
from bridge.kpi.sla import StatusCategories, sla_kpis, timeline
from bridge.kpi.sla_trace import SlaTrace, condition_text, trace_sla, trace_slas
from bridge.model import FieldChange, WorkItem
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules

REPO = Path(__file__).parent.parent.parent
OFFICE = calendar_from_spec("office", {"timezone": "UTC", "hours": {"mon-fri": "08:00-17:00"}})
CATEGORIES = StatusCategories({"Waiting for customer": "in_progress", "Reopened": "todo"})
RULES = """bridge: 1
calendars:
  office: {timezone: UTC, hours: {mon-fri: '08:00-17:00'}}
slas:
  resolution:
    calendar: office
    pause: {field: status, in: ["Waiting for customer"]}
    stop: {field: status_category, equals: done}
    cancel: {field: status, equals: Cancelled}
    goals:
      - {when: {field: priority, equals: Highest}, target: 4h}
      - {target: 8h}
"""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """March 2026: Fri 6, Mon 9, Tue 10, Wed 11."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def item(*moves: tuple[datetime, str, str], priority: str = "Medium") -> WorkItem:
    status = moves[-1][2] if moves else "Open"
    return WorkItem(
        "OPS-1",
        "jira",
        type="Incident",
        status=status,
        priority=priority,
        status_category=CATEGORIES.category(status),
        created=at(9, 8),
        history=tuple(FieldChange(t, "status", a, b) for t, a, b in moves),
        history_complete=True,
    )


def traced(tmp_path: Path, work: WorkItem, now: datetime) -> tuple[SlaTrace, dict[str, Any]]:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    sla = load_rules([path]).slas["resolution"]
    out = KpiResult()
    snapshots = timeline(work, CATEGORIES)
    sla_kpis(sla, work, snapshots, OFFICE, now, out)
    values = {k.split(".", 2)[2]: v for k, v in out.values.items()}
    return trace_sla(sla, work, snapshots, OFFICE, now), values


def test_a_breached_cycle_shows_its_pause_goal_and_when_the_goal_was_crossed(
    tmp_path: Path,
) -> None:
    work = item(
        (at(9, 10), "Open", "Waiting for customer"),
        (at(9, 14), "Waiting for customer", "In Progress"),
        (at(10, 16), "In Progress", "Resolved"),
        priority="Highest",
    )
    trace, values = traced(tmp_path, work, now=at(11, 12))
    assert trace.source == "computed"
    assert trace.why == "computed from the item's history (the SLA's source is computed)"
    assert trace.cancel == 'status equals "Cancelled"'
    (cycle,) = trace.cycles
    assert (cycle.start, cycle.stop, cycle.ended_by) == (at(9, 8), at(10, 16), "stop")
    assert cycle.pauses == ((at(9, 10), at(9, 14)),)
    assert cycle.goal.chosen_by == "rule"
    assert (cycle.goal.index, cycle.goal.target_seconds) == (0, 4 * 3600)
    assert cycle.goal.condition == 'priority equals "Highest"'
    assert cycle.goal.seen == (("priority", "Highest"),)
    # Mon 08-10 and 14-17 (5 h) then Tue 08-16 (8 h): 13 h of business time, 4 h paused
    assert cycle.elapsed_seconds == values["elapsed_seconds"] == 13 * 3600
    assert cycle.elapsed_wall_seconds == values["elapsed_wall_seconds"] == 28 * 3600
    assert (cycle.state, cycle.breached) == ("breached", True)
    assert cycle.breach_time is None  # a completed clock has none (KPIS.md)
    assert cycle.goal_reached_at == at(9, 16)  # 2 h before the pause, 2 h after it
    assert cycle.status_at_end == "Resolved"


def test_a_running_clock_predicts_its_breach_as_the_kpi_does(tmp_path: Path) -> None:
    work = item((at(9, 9), "Open", "In Progress"))
    trace, values = traced(tmp_path, work, now=at(9, 12))
    (cycle,) = trace.cycles
    assert (cycle.stop, cycle.ended_by, cycle.state) == (None, None, "running")
    assert cycle.goal.condition is None  # the catch-all goal
    assert (cycle.goal.index, cycle.goal.target_seconds) == (1, 8 * 3600)
    assert cycle.breach_time == at(9, 16)
    assert iso(cycle.breach_time) == values["breach_time"]
    assert cycle.goal_reached_at is None


def test_an_open_pause_ends_at_now(tmp_path: Path) -> None:
    work = item((at(9, 10), "Open", "Waiting for customer"))
    trace, values = traced(tmp_path, work, now=at(9, 12))
    (cycle,) = trace.cycles
    assert cycle.pauses == ((at(9, 10), None),)
    assert (cycle.state, cycle.elapsed_seconds) == ("paused", values["elapsed_seconds"])


def test_every_cycle_is_kept_and_a_cancel_says_so(tmp_path: Path) -> None:
    work = item(
        (at(9, 9), "Open", "Resolved"),
        (at(9, 10), "Resolved", "Reopened"),
        (at(9, 11), "Reopened", "Cancelled"),
    )
    trace, _ = traced(
        tmp_path,
        work,
        now=at(9, 12),
    )
    # started on creation: re-opening after the stop starts no second cycle
    assert [(c.ended_by, c.state) for c in trace.cycles] == [("stop", "met")]


def test_never_started_is_missing_with_the_kpis_reason(tmp_path: Path) -> None:
    work = WorkItem("OPS-1", "jira", type="Incident", status="Open")
    trace, _ = traced(tmp_path, work, now=at(9, 12))
    assert (trace.source, trace.cycles) == ("missing", ())
    assert trace.missing == "no creation date to start the clock"


def test_conditions_read_as_written() -> None:
    rule_set = load_rules([REPO / "rules"])
    sla = rule_set.slas["time-to-resolution"]
    assert condition_text(sla.cancel) == 'status in ["Cancelled", "Canceled"]'
    assert condition_text(sla.goals[0][0]) == 'priority in ["Highest", "1 - Critical"]'
    assert condition_text(None) is None


# -- the bundled export: every SLA item, every figure ------------------------------------------

NOW = datetime(2026, 11, 2, tzinfo=UTC)
_FIGURES = (
    "state",
    "elapsed_seconds",
    "elapsed_wall_seconds",
    "remaining_seconds",
    "breached",
)


def _bundled() -> list[tuple[str, SlaTrace, dict[str, Any], list[bool]]]:
    rule_set = load_rules([REPO / "rules"])
    items = list(read_export(REPO / "examples" / "export"))
    engine, kpis = Engine(rule_set), KpiEngine.for_items(rule_set, items)
    cases = []
    for work in items:
        decision = engine.classify(work, NOW)
        if not any(group.startswith("sla.") for group in decision.kpis):
            continue
        result = kpis.compute(work, decision, NOW)
        for trace in trace_slas(kpis, work, decision.kpis, NOW):
            prefix = f"sla.{trace.name}."
            values = {k[len(prefix) :]: v for k, v in result.values.items() if k.startswith(prefix)}
            values["missing"] = [
                m["reason"] for m in result.missing if m["kpi"] == prefix + "state"
            ]
            cases.append((work.key, trace, values, result.facts.get("sla_completed", [])))
    return cases


BUNDLED = _bundled()


def test_the_bundled_export_has_computed_native_and_missing_clocks() -> None:
    sources = {trace.source for _, trace, _, _ in BUNDLED}
    assert sources >= {"computed", "native"}
    assert len(BUNDLED) > 200


@pytest.mark.parametrize(
    ("key", "trace", "values"),
    [(key, trace, values) for key, trace, values, _ in BUNDLED],
    ids=[f"{key}-{trace.name}" for key, trace, _, _ in BUNDLED],
)
def test_the_trace_agrees_with_the_kpis(key: str, trace: SlaTrace, values: dict[str, Any]) -> None:
    if trace.source == "missing":
        assert values["state"] is None
        assert values["missing"] == [trace.missing]
        return
    last = trace.cycles[-1]
    assert values["source"] == trace.source
    for figure in _FIGURES:
        assert getattr(last, figure) == values[figure], figure
    assert last.goal.target_seconds == values["goal_seconds"]
    assert iso(last.breach_time) == values["breach_time"]
    assert any(c.breached for c in trace.cycles) == values["ever_breached"]


def test_the_completed_cycles_are_those_attainment_counts() -> None:
    by_key: dict[str, list[bool]] = {}
    facts: dict[str, list[bool]] = {}
    for key, trace, _, completed in BUNDLED:
        facts[key] = completed
        by_key.setdefault(key, []).extend(
            bool(c.breached) for c in trace.cycles if c.state in ("met", "breached")
        )
    assert by_key == facts
