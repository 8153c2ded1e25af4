"""Rule tests: results, differences, located errors, coverage."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.plugins import default_registry
from bridge.ruletests.kpis import check_kpis
from bridge.ruletests.runner import discover_test_files, item_from_fields, run_test_file

HERE = Path(__file__).parent.parent / "data" / "rules" / "rule-tests"
FORMATS = list(default_registry().formats.values())


def test_cases_pass_fail_and_explain_the_difference() -> None:
    result = run_test_file(HERE / "mixed.yaml", FORMATS)
    assert not result.problems
    outcome = {case.name: case.failures for case in result.cases}
    assert outcome["incident passes"] == ()
    assert outcome["wrong expectation fails with a diff"] == (
        "work_type: expected 'service', got 'project'",
        "phase: expected 'execution', got 'planning'",
    )
    assert outcome["item from an inline Jira export"] == ()
    assert outcome["item from an export file"] == ()
    assert outcome["key not in export"] == (
        "cannot build the item: no item with key 'INC9999999' in the export",
    )
    assert outcome["two sources"] == (
        "give exactly one of item:, export: or input: (found item, input)",
    )
    assert result.rules_covered == {"incidents", "epics", "urgent-first"}
    assert not result.passed


def test_name_filter_runs_only_matching_cases() -> None:
    result = run_test_file(HERE / "mixed.yaml", FORMATS, name_filter=re.compile("^incident"))
    assert [case.name for case in result.cases] == ["incident passes"]


def test_test_file_typos_are_located() -> None:
    result = run_test_file(HERE / "bad-shape.yaml", FORMATS)
    assert [f"{d.line}:{d.col}: {d.message}" for d in result.problems] == [
        "4:12: unknown key 'tpye'; did you mean 'type'?",
        "5:14: unknown key 'work_typ'; did you mean 'work_type'?",
    ]
    assert result.cases == []


def test_invalid_rules_under_test_are_reported() -> None:
    result = run_test_file(HERE / "bad-rules.yaml", FORMATS)
    messages = [d.message for d in result.problems]
    assert messages[0] == "the rules under test are invalid (run `bridge rules check`):"
    assert "unknown operator 'equal'; did you mean 'equals'?" in messages


def test_a_test_without_now_fails_instead_of_using_the_clock() -> None:
    result = run_test_file(HERE / "no-now.yaml", FORMATS)
    assert result.cases[0].failures == (
        "cannot build the item: no `now:` for this test or the file; tests must pin the time",
    )


def test_discovery_finds_test_files_and_skips_rule_files(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("bridge: 1\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "a.yaml").write_text("tests: []\n")
    found, problems = discover_test_files([tmp_path])
    assert found == [tmp_path / "tests" / "a.yaml"]
    assert problems == []
    found, problems = discover_test_files([tmp_path / "tests" / "nothing"])
    assert found == []
    assert problems[0].message == "no such file or folder"


def test_inline_items_convert_types() -> None:
    item = item_from_fields(
        {
            "type": "Epic",
            "labels": ["a", "b"],
            "created": "2026-01-02T03:04:05+01:00",
            "due": "2026-02-01",
            "story_points": 5,
            "history": [{"at": "2026-01-03T00:00:00Z", "from": "Open", "to": "Done"}],
        }
    )
    assert item.labels == ("a", "b")
    assert item.created is not None
    assert item.created.isoformat() == "2026-01-02T02:04:05+00:00"
    assert str(item.due) == "2026-02-01"
    assert item.story_points == 5.0
    assert item.history[0].field == "status"
    assert item.history[0].to_value == "Done"


def test_an_item_given_a_history_has_been_as_it_is_since_creation(tmp_path: Path) -> None:
    # The test gives the whole history: "Waiting for customer" with no recorded status change
    # has held since creation, so the SLA is paused from then — not from the later `updated`.
    (tmp_path / "rules.yaml").write_text(
        "bridge: 1\n"
        "calendars:\n  office: {timezone: UTC, hours: {mon-fri: '08:00-17:00'}}\n"
        "slas:\n"
        "  resolution:\n"
        "    calendar: office\n"
        '    pause: {field: status, in: ["Waiting for customer"]}\n'
        "    stop: {field: status_category, equals: done}\n"
        "    goals: [{target: 8h}]\n"
        "rules:\n"
        "  - {id: incidents, when: {field: type, equals: Incident},\n"
        "     then: {work_type: service, kpis: [sla.resolution]}}\n"
    )
    (tmp_path / "waiting.yaml").write_text(
        "rules: rules.yaml\n"
        'now: "2026-03-10T12:00:00Z"\n'
        "tests:\n"
        "  - name: waiting since creation\n"
        "    item:\n"
        "      type: Incident\n"
        "      status: Waiting for customer\n"
        "      status_category: in_progress\n"
        '      created: "2026-03-09T08:00:00Z"\n'
        '      updated: "2026-03-09T10:00:00Z"\n'
        "      history:\n"
        '        - {at: "2026-03-09T10:00:00Z", field: customfield_10200, to: paused}\n'
        "    expect:\n"
        "      kpis:\n"
        "        sla.resolution.state: paused\n"
        "        sla.resolution.elapsed_seconds: 0\n"
        "        sla.resolution.elapsed_wall_seconds: 0\n"
        "        sla.resolution.remaining_seconds: 28800\n"
    )
    result = run_test_file(tmp_path / "waiting.yaml", FORMATS, kpi_check=check_kpis)
    assert not result.problems
    assert [case.failures for case in result.cases] == [()]


def test_an_item_given_a_history_has_all_of_it_and_one_without_does_not() -> None:
    fields = {"status": "Waiting for customer", "created": "2026-03-09T08:00:00Z"}
    assert not item_from_fields(fields).history_complete
    given = item_from_fields({**fields, "history": []})
    assert given.history_complete
