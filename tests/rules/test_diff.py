"""The impact of a rule change (bridge.rules.diff): decisions, transitions, KPIs, sync fields.

The fixtures under tests/data/rules/diff: ``old`` and ``new`` rule sets that differ in a
tighter SLA goal for High incidents, a review phase for epics, a business-as-usual rule run
first and a rule for unclassified items; ``export.json`` holds one item for each.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.connectors.files import read_export
from bridge.kpi.compute import KpiEngine
from bridge.model import WorkItem
from bridge.plugins import default_registry
from bridge.rules.ast import RuleSet
from bridge.rules.diff import ABSENT, Decision, diff_rules
from bridge.rules.loader import load_rules

DIFF = Path(__file__).parent.parent / "data" / "rules" / "diff"
NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def old() -> RuleSet:
    return load_rules([DIFF / "old"])


@pytest.fixture(scope="module")
def new() -> RuleSet:
    return load_rules([DIFF / "new"])


@pytest.fixture(scope="module")
def items() -> list[WorkItem]:
    return list(read_export(DIFF / "export.json", list(default_registry().formats.values())))


def _by_key(result, key):
    return next(item for item in result.items if item.key == key)


def test_the_same_rules_change_nothing(old, items) -> None:
    result = diff_rules(old, old, items, NOW)
    assert not result.changed
    assert result.items == ()
    assert result.kpis == ()
    assert result.sync == ()
    assert result.compared == len(items) == 7
    # Every item stays where it was: the diagonal holds them all.
    assert sum(result.matrix[w][w] for w in result.matrix) == 7
    assert result.old_digest == result.new_digest


def test_decisions_that_change_and_the_transition_matrix(old, new, items) -> None:
    result = diff_rules(old, new, items, NOW)
    assert result.changed
    decided = {item.key: item.changed for item in result.items if item.changed}
    assert decided == {
        "OPS-4": ("work_type", "phase", "rule"),  # labelled bau: run-the-business first
        "PMO-1": ("phase",),  # In Review is monitoring now
        "WEB-1": ("work_type", "rule"),  # the default gave it nothing; odd-ones does
    }
    assert _by_key(result, "OPS-4").old == Decision("project", "execution", "stories")
    assert _by_key(result, "OPS-4").new == Decision("service", None, "run-the-business")
    assert _by_key(result, "WEB-1").old == Decision("unclassified", None, None)
    assert result.matrix == {
        "project": {"project": 2, "service": 1, "unclassified": 0},
        "service": {"project": 0, "service": 3, "unclassified": 0},
        "unclassified": {"project": 0, "service": 1, "unclassified": 0},
    }
    assert (result.count("work_type"), result.count("phase"), result.count("rule")) == (2, 2, 2)
    # OPS-1 and OPS-2 change only KPIs; OPS-3 (Low) and PMO-2 not at all.
    assert result.kpi_items == 3
    assert {item.key for item in result.items} == {"OPS-1", "OPS-2", "OPS-4", "PMO-1", "WEB-1"}


def test_numeric_kpis_report_the_largest_change_with_the_item(old, new, items) -> None:
    result = diff_rules(old, new, items, NOW)
    stats = {s.kpi: s for s in result.kpis}
    remaining = stats["sla.resolution.remaining_seconds"]
    assert remaining.items == 2
    assert [(c.key, c.old, c.new, c.delta) for c in remaining.largest] == [
        ("OPS-1", 7200.0, -7200.0, -14400.0),
        ("OPS-2", 3600.0, -10800.0, -14400.0),
    ]
    assert remaining.examples == ()
    # A state is no number: examples, old → new, without a difference.
    state = stats["sla.resolution.state"]
    assert [(c.key, c.old, c.new, c.delta) for c in state.examples] == [
        ("OPS-1", "met", "breached", None),
        ("OPS-2", "running", "breaching", None),
    ]
    assert state.largest == ()
    # Flags are not numbers either, though Python would subtract them.
    assert stats["sla.resolution.breached"].largest == ()
    # Most items first, then by name.
    assert [s.items for s in result.kpis] == sorted((s.items for s in result.kpis), reverse=True)


def test_a_kpi_not_computed_is_told_apart_from_a_null_one(old, new, items) -> None:
    story = _by_key(diff_rules(old, new, items, NOW), "OPS-4")
    changes = {c.kpi: c for c in story.kpis}
    # The story was project work with effort KPIs; as service work it gets TCO instead.
    assert changes["effort.actual_hours"].old == 5.0
    assert changes["effort.actual_hours"].new is ABSENT
    assert changes["effort.forecast_hours"].old is None  # computed, no remaining estimate
    assert changes["effort.forecast_hours"].new is ABSENT
    assert changes["tco.total"].old is ABSENT
    assert changes["tco.total"].new == 500.0
    assert changes["tco.total"].delta is None
    listed = next(k for k in story.as_dict()["kpis"] if k["kpi"] == "effort.forecast_hours")
    assert listed == {"kpi": "effort.forecast_hours", "old": None}


def test_sync_fields_are_every_changed_key_without_bridge_yaml(old, new, items) -> None:
    result = diff_rules(old, new, items, NOW)
    keys = [(f.key, f.items) for f in result.sync]
    assert keys[:3] == [("work_type", 2), ("phase", 2), ("rule", 2)]
    assert ("sla.resolution.state", 2) in keys
    assert ("tco.total", 1) in keys
    assert all(f.sources == () for f in result.sync)
    assert {f.key for f in result.sync} == {"work_type", "phase", "rule"} | {
        s.kpi for s in result.kpis
    }


def test_sync_fields_with_write_back_keep_only_what_the_sources_write(old, new, items) -> None:
    writeback = {
        "jira": frozenset({"work_type", "sla.resolution.state", "evm.cpi"}),
        "servicenow": frozenset({"work_type", "phase"}),
    }
    result = diff_rules(old, new, items, NOW, writeback=writeback)
    assert [(f.key, f.items, f.sources) for f in result.sync] == [
        ("work_type", 2, ("jira", "servicenow")),
        ("phase", 2, ("servicenow",)),
        ("sla.resolution.state", 2, ("jira",)),
    ]


def test_an_item_one_side_cannot_evaluate_is_left_out_and_is_a_change(
    old, new, items, monkeypatch
) -> None:
    compute = KpiEngine.compute

    def fails_on_new_rules(self, item, decision, now):
        if self.rule_set is new and item.key == "OPS-3":
            raise ValueError("year 10000 is out of range")
        return compute(self, item, decision, now)

    monkeypatch.setattr(KpiEngine, "compute", fails_on_new_rules)
    result = diff_rules(old, old, items, NOW)
    assert not result.changed
    result = diff_rules(old, new, items, NOW)
    assert result.compared == 6
    assert [(e.key, e.old, e.new) for e in result.errors] == [
        ("OPS-3", None, "cannot be evaluated: ValueError: year 10000 is out of range")
    ]
    assert sum(sum(row.values()) for row in result.matrix.values()) == 6
    assert "OPS-3" not in {item.key for item in result.items}


def test_as_dict_is_standard_json_with_instants_in_z_form(old, new, items) -> None:
    document = diff_rules(old, new, items, NOW).as_dict()
    text = json.dumps(document, allow_nan=False)  # no NaN, no datetime left
    back = json.loads(text)
    assert back["now"] == "2026-03-02T16:00:00Z"
    assert back["old"] == {"digest": old.digest}
    assert back["new"] == {"digest": new.digest}
    assert back["summary"] == {"work_type": 2, "phase": 2, "rule": 2, "kpis": 3, "items": 5}
    breach = next(s for s in back["kpis"] if s["kpi"] == "sla.resolution.breach_time")
    assert breach["examples"] == [
        {"key": "OPS-2", "old": "2026-03-02T17:00:00Z", "new": "2026-03-02T13:00:00Z"}
    ]
    goal = next(s for s in back["kpis"] if s["kpi"] == "sla.resolution.goal_seconds")
    assert goal["largest"][0] == {
        "key": "OPS-1",
        "old": 28800.0,
        "new": 14400.0,
        "change": -14400.0,
    }
