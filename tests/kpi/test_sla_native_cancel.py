"""A system-computed SLA (JSM field, ServiceNow task_sla) obeys the rule set's ``cancel``.

JSM stops its clocks at any done status, so a cancelled ticket's SLA reads "met"; the rule set
says a cancelled ticket's clock is cancelled, and KPIS.md's precedence is cancelled > met /
breached. A cancelled cycle is not a completed one: attainment leaves it out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.connectors.files import read_export
from bridge.kpi.calendar_spec import calendar_from_spec
from bridge.kpi.compute import KpiEngine
from bridge.kpi.result import KpiResult
from bridge.kpi.sla import Clock, StatusCategories, sla_kpis, timeline
from bridge.model import FieldChange, NativeSla, NativeSlaCycle, WorkItem
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules

REPO = Path(__file__).parent.parent.parent
NOW = datetime(2026, 11, 2, tzinfo=UTC)
OFFICE = calendar_from_spec("office", {"timezone": "UTC", "hours": "24x7"})
CATEGORIES = StatusCategories({"Cancelled": "done", "Resolved": "done", "Reopened": "todo"})
RULES = """bridge: 1
calendars:
  office: {timezone: UTC, hours: 24x7}
slas:
  resolution:
    calendar: office
    source: auto
    native: {jira_field: Time to resolution}
    stop: {field: status_category, equals: done}
    cancel: {field: status, equals: Cancelled}
    goals: [{target: 8h}]
"""


def at(hour: int, minute: int = 0, second: float = 0) -> datetime:
    return datetime(2026, 3, 9, hour, minute, tzinfo=UTC) + timedelta(seconds=second)


def cycle(start: datetime, stop: datetime | None, *, breached: bool = False) -> NativeSlaCycle:
    elapsed = ((stop or at(12)) - start).total_seconds()
    return NativeSlaCycle(
        start=start,
        stop=stop,
        breach_time=start + timedelta(hours=8),
        goal_seconds=8 * 3600,
        elapsed_seconds=elapsed,
        remaining_seconds=8 * 3600 - elapsed,
        breached=breached,
    )


def jsm_item(
    *moves: tuple[datetime, str, str], cycles: tuple[NativeSlaCycle, ...], status: str
) -> WorkItem:
    return WorkItem(
        "OPS-1",
        "jira",
        type="Incident",
        status=status,
        status_category=CATEGORIES.category(status),
        created=at(8),
        history=tuple(FieldChange(t, "status", a, b) for t, a, b in moves),
        history_complete=True,
        native_slas=(NativeSla("Time to resolution", "customfield_10030", cycles),),
    )


def kpis(tmp_path: Path, work: WorkItem, now: datetime = NOW) -> KpiResult:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    clock = Clock.of(load_rules([path]).slas["resolution"])
    out = KpiResult()
    outcome = sla_kpis(clock, work, timeline(work, CATEGORIES), OFFICE, now, out)
    if outcome is not None and outcome.completed:
        out.facts["sla_completed"] = list(outcome.completed)
    return out


def test_a_cancelled_jira_ticket_whose_jsm_sla_says_met_is_cancelled(tmp_path: Path) -> None:
    work = jsm_item((at(9), "Open", "Cancelled"), cycles=(cycle(at(8), at(9)),), status="Cancelled")
    out = kpis(tmp_path, work)
    assert out.values["sla.resolution.state"] == "cancelled"
    assert out.values["sla.resolution.source"] == "native"
    assert out.values["sla.resolution.at_risk"] is False
    assert out.values["sla.resolution.breach_time"] is None
    # the system's own figures stay: the clock ran one hour of its eight
    assert out.values["sla.resolution.elapsed_seconds"] == 3600
    assert "sla_completed" not in out.facts  # not counted as met in attainment


def test_the_cancel_is_found_when_the_systems_stop_is_stamped_a_moment_earlier(
    tmp_path: Path,
) -> None:
    work = jsm_item(
        (at(9, 0, 0.4), "Open", "Cancelled"), cycles=(cycle(at(8), at(9)),), status="Cancelled"
    )
    assert kpis(tmp_path, work).values["sla.resolution.state"] == "cancelled"


def test_a_resolved_ticket_keeps_the_systems_met(tmp_path: Path) -> None:
    work = jsm_item((at(9), "Open", "Resolved"), cycles=(cycle(at(8), at(9)),), status="Resolved")
    out = kpis(tmp_path, work)
    assert out.values["sla.resolution.state"] == "met"
    assert out.facts["sla_completed"] == [False]


def test_only_the_cycle_that_ended_cancelled_is_cancelled(tmp_path: Path) -> None:
    """Resolved late at 17:00 (breached), reopened, then cancelled: the first cycle counts."""
    work = jsm_item(
        (at(17), "Open", "Resolved"),
        (at(18), "Resolved", "Reopened"),
        (at(19), "Reopened", "Cancelled"),
        cycles=(cycle(at(8), at(17), breached=True), cycle(at(18), at(19))),
        status="Cancelled",
    )
    out = kpis(tmp_path, work)
    assert out.values["sla.resolution.state"] == "cancelled"
    assert out.values["sla.resolution.ever_breached"] is True
    assert out.facts["sla_completed"] == [True]


def test_a_running_system_clock_on_a_cancelled_ticket_is_cancelled(tmp_path: Path) -> None:
    work = jsm_item((at(9), "Open", "Cancelled"), cycles=(cycle(at(8), None),), status="Cancelled")
    out = kpis(tmp_path, work, now=at(12))
    assert out.values["sla.resolution.state"] == "cancelled"


def test_a_cancel_after_now_is_not_seen(tmp_path: Path) -> None:
    work = jsm_item((at(13), "Open", "Cancelled"), cycles=(cycle(at(8), None),), status="Cancelled")
    assert kpis(tmp_path, work, now=at(12)).values["sla.resolution.state"] == "running"


def test_cancelled_jira_incidents_of_the_bundled_export_are_cancelled_not_met() -> None:
    """`bridge classify` showed these as ``TTFR: cancelled · TTR: met`` (issue 13)."""
    rule_set = load_rules([REPO / "rules"])
    items = list(read_export(REPO / "examples" / "export"))
    engine, kpi_engine = Engine(rule_set), KpiEngine.for_items(rule_set, items)
    cancelled = [
        item
        for item in items
        if item.system == "jira" and item.status == "Cancelled" and item.type == "Incident"
    ]
    # four cancelled before anyone responded, two after (their first response was met)
    assert [item.key for item in cancelled] == [
        "OPS-7",
        "OPS-14",
        "OPS-29",
        "OPS-63",
        "OPS-64",
        "OPS-81",
    ]
    for item in cancelled:
        result = kpi_engine.compute(item, engine.classify(item, NOW), NOW)
        values = result.values
        assert values["sla.time-to-resolution.source"] == "native", item.key
        assert values["sla.time-to-resolution.state"] == "cancelled", item.key
        first_response = values["sla.time-to-first-response.state"]
        # attainment counts the first response where it completed, never the resolution
        completed = result.facts.get("sla_completed", [])
        assert completed == ([] if first_response == "cancelled" else [False]), item.key
