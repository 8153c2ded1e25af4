"""Warnings: settings that do nothing or do not fit the work type are located, and the
rules still load (a warning never stops classification)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bridge.errors import RuleValidationError
from bridge.rules.loader import LastGoodRules, load_rules

WARNINGS = Path(__file__).parent.parent / "data" / "rules" / "warnings"


def _rules(tmp_path: Path, then: str, when: str = "{field: type, equals: Bug}") -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "bridge: 1\nslas:\n  fix:\n    stop: {field: status_category, equals: done}\n"
        f"    goals: [{{target: 1d}}]\nrules:\n  - id: r\n    when: {when}\n    then: {then}\n"
    )
    return path


def test_the_rule_set_loads_with_its_warnings_in_line_order() -> None:
    rule_set = load_rules([WARNINGS])
    assert [r.id for r in rule_set.rules] == ["big-epics", "incidents", "projects-with-an-sla"]
    assert [(w.line, w.col) for w in rule_set.warnings] == [(14, 47), (16, 50), (21, 35), (24, 39)]


@pytest.mark.parametrize(
    ("field", "value", "warned"),
    [
        ("story_points", "[3, 5]", True),  # a number
        ("summary", "[a, b]", False),  # text
        ("status_category", "[todo]", False),  # one of a fixed set of words
        ("labels", "[a]", False),  # a list of words: contains_any folds each one
        ("raw.fields.customfield_1", "[a]", False),  # unknown: may well be text
    ],
)
def test_ignore_case_is_warned_only_where_the_field_is_not_text(
    tmp_path: Path, field: str, value: str, warned: bool
) -> None:
    operator = "contains_any" if field == "labels" else "in"
    when = f"{{field: {field}, {operator}: {value}, ignore_case: true}}"
    rule_set = load_rules([_rules(tmp_path, "{work_type: service}", when)])
    messages = [w.message for w in rule_set.warnings]
    if warned:
        assert messages == [
            f"ignore_case has no effect here: {field} is a number, not text; remove it"
        ]
        # at the ignore_case key
        assert (rule_set.warnings[0].line, rule_set.warnings[0].col) == (8, 45)
    else:
        assert messages == []


def test_ignore_case_on_a_number_does_not_change_what_matches(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bridge.model import WorkItem
    from bridge.rules.engine import Engine

    when = "{field: story_points, in: [3], ignore_case: true}"
    engine = Engine(load_rules([_rules(tmp_path, "{work_type: project}", when)]))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert engine.classify(WorkItem("A-1", "jira", story_points=3.0), now).rule == "r"
    assert engine.classify(WorkItem("A-2", "jira", story_points=5.0), now).rule is None


@pytest.mark.parametrize(
    ("then", "misfits"),
    [
        ("{work_type: project, kpis: [evm, effort, schedule, cost]}", []),
        ("{work_type: service, kpis: [sla.fix, csat, tco, cost]}", []),
        ("{work_type: project, kpis: [csat, tco, sla.fix]}", ["csat", "tco", "sla.fix"]),
        ("{work_type: service, kpis: [evm, effort, schedule]}", ["evm", "effort", "schedule"]),
    ],
)
def test_kpis_that_do_not_fit_the_work_type_are_warned_at_their_place(
    tmp_path: Path, then: str, misfits: list[str]
) -> None:
    rule_set = load_rules([_rules(tmp_path, then)])
    assert [w.message.split(" ")[0] for w in rule_set.warnings] == misfits
    assert all(w.line == 9 for w in rule_set.warnings)


def test_the_default_outcome_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("bridge: 1\ndefault: {work_type: service, kpis: [evm]}\n")
    (warning,) = load_rules([path]).warnings
    assert (warning.line, warning.col) == (2, 38)
    assert warning.message.startswith("evm measures project work")


def test_an_error_is_still_an_error_when_there_are_warnings(tmp_path: Path) -> None:
    when = "{field: story_points, gt: 3, ignore_case: true}"
    with pytest.raises(RuleValidationError, match="ignore_case does not apply to gt"):
        load_rules([_rules(tmp_path, "{work_type: service, kpis: [evm]}", when)])


def test_the_service_logs_the_warnings_of_the_rules_it_switches_to(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = LastGoodRules([WARNINGS])
    with caplog.at_level(logging.WARNING, logger="bridge.rules"):
        assert holder.reload()
        assert holder.reload()  # the same rules again: nothing new to say
    assert len(caplog.records) == 4
    assert "rules.yaml:14:47: ignore_case has no effect here" in caplog.records[0].getMessage()
