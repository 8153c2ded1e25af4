"""The KPI engine: groups chosen by the classifying rule, settings from the rule set."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bridge.errors import RuleValidationError
from bridge.kpi.compute import KpiEngine
from bridge.model import WorkItem
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules

NOW = datetime(2026, 1, 16, tzinfo=UTC)

RULES = """bridge: 1
calendars:
  office: {timezone: UTC, hours: {mon-fri: "08:00-17:00"}}
kpi:
  currency: EUR
  calendar: office
  hourly_rate: 80
  rates:
    - {when: {field: labels, contains: contractor}, rate: 120}
  inputs:
    budget: [raw.fields.customfield_10100, budget]
    percent_complete: raw.fields.progress
  cost_fields: [raw.fields.licence_cost, raw.u_infra_cost]
rules:
  - id: projects
    when: {field: type, equals: Epic}
    then: {work_type: project, kpis: [evm, effort, schedule, cost]}
  - id: only-cost
    when: {field: type, equals: Initiative}
    then: {work_type: project, kpis: [cost]}
  - id: service
    when: {field: type, equals: Incident}
    then: {work_type: service, kpis: [csat, tco]}
"""


@pytest.fixture
def engines(tmp_path: Path) -> tuple[Engine, KpiEngine]:
    (tmp_path / "r.yaml").write_text(RULES)
    rule_set = load_rules([tmp_path])
    return Engine(rule_set), KpiEngine(rule_set)


def compute(engines: tuple[Engine, KpiEngine], item: WorkItem) -> dict[str, object]:
    rules, kpis = engines
    return kpis.compute(item, rules.classify(item, NOW), NOW).values


EPIC = WorkItem(
    "P-1",
    "jira",
    type="Epic",
    status_category="in_progress",
    planned_start=date(2026, 1, 1),
    due=date(2026, 1, 31),
    estimate_hours=100.0,
    spent_hours=60.0,
    remaining_hours=50.0,
    raw={"fields": {"customfield_10100": "10,000", "progress": 40}},
)


def test_inputs_come_from_the_configured_fields_first(engines) -> None:
    v = compute(engines, EPIC)
    assert v["evm.bac"] == 10_000  # raw text "10,000" read as a number
    assert v["evm.percent_complete"] == 0.4  # raw 40 read as a percentage
    assert v["evm.ac"] == 4_800  # no actual cost: 60 h × 80
    assert v["schedule.slip_days"] == 0
    assert v["cost.variance_pct"] == pytest.approx((4000 - 4800) / 4000 * 100)


def test_rates_by_condition(engines) -> None:
    contractor = WorkItem("P-2", "jira", type="Epic", labels=("contractor",), spent_hours=10.0)
    assert compute(engines, contractor)["evm.ac"] == 1_200


def test_cost_alone_does_not_leak_evm_values(engines) -> None:
    v = compute(
        engines,
        WorkItem(
            "I-1",
            "jira",
            type="Initiative",
            budget=1000.0,
            actual_cost=600.0,
            raw={"fields": {"progress": "50%"}},
        ),
    )
    assert set(v) == {"cost.variance_pct"}
    assert v["cost.variance_pct"] == pytest.approx(-20.0)


def test_service_kpis(engines) -> None:
    item = WorkItem(
        "S-1",
        "jira",
        type="Incident",
        satisfaction=4.0,
        spent_hours=1.5,
        raw={"fields": {"licence_cost": 10}, "u_infra_cost": "USD;2.50"},
    )
    v = compute(engines, item)
    assert v == {
        "csat.rating": 4.0,
        "csat.satisfied": True,
        "tco.labour_hours": 1.5,
        "tco.labour_cost": 120.0,
        "tco.other_cost": 12.5,
        "tco.total": 132.5,
    }


def test_unclassified_items_get_no_kpis(engines) -> None:
    assert compute(engines, WorkItem("X", "jira", type="Risk")) == {}


def test_kpi_settings_are_validated(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("""bridge: 1
kpi:
  calendar: ofice
  hourly_rate: -5
  currency: euro
  inputs: {budget: raw., buget: budget, satisfaction: [csat]}
  cost_fields: [licence]
""")
    with pytest.raises(RuleValidationError) as caught:
        load_rules([tmp_path])
    assert [f"{d.line}: {d.message}" for d in caught.value.diagnostics] == [
        "3: unknown calendar 'ofice' (calendars: none defined; define it under calendars:)",
        "4: -5 is out of range (minimum 0)",
        "5: 'euro' is not a currency code; write the ISO 4217 code, e.g. EUR or USD",
        "6: field 'raw.' has an empty path segment; write e.g. raw.fields.customfield_10050",
        "6: unknown key 'buget'; did you mean 'budget'?",
        "6: unknown field 'csat'; did you mean 'status'?",
        "7: unknown field 'licence' (fields: key, system, type, status, status_category, "
        "summary, url, priority, project, service, labels, components, assignee, team, reporter, "
        "created, updated, resolved, due, planned_start, planned_end, estimate_hours, "
        "spent_hours, remaining_hours, story_points, budget, actual_cost, percent_complete, "
        "parent, satisfaction; a field of the system's own record is raw.<path>, e.g. "
        "raw.fields.customfield_10050)",
    ]
