"""``bridge rules check``: warnings with their line (text and JSON), --strict, several
paths, YAML mistakes in words, and the operators of the installed plugins.

Fixtures: tests/data/rules/warnings (rules that work, with settings that do nothing or do
not fit the work type), tests/data/rules/valid, tests/data/rules/invalid.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli, rules_cmd
from bridge.plugins import Registry
from bridge.rules.operators import BUILTIN_OPERATORS, OperatorSpec

DATA = Path(__file__).parent.parent / "data" / "rules"
WARNINGS = DATA / "warnings"
WARNED = str(WARNINGS / "rules.yaml")
EXPECTED_WARNINGS = [
    (
        14,
        47,
        "ignore_case has no effect here: story_points is a number, not text; remove it",
    ),
    (
        16,
        50,
        "csat measures service work, but this outcome classifies items as project work; "
        "remove it from kpis or set work_type: service",
    ),
    (
        21,
        35,
        "schedule measures project work, but this outcome classifies items as service work; "
        "remove it from kpis or set work_type: project",
    ),
    (
        24,
        39,
        "sla.resolution measures service work, but this outcome classifies items as project "
        "work; remove it from kpis or set work_type: service",
    ),
]


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_warnings_are_printed_with_their_line_and_do_not_fail(run) -> None:
    result = run("rules", "check", str(WARNINGS))
    assert result.exit_code == 0, result.output
    for line, col, message in EXPECTED_WARNINGS:
        assert f"warning: {WARNED}:{line}:{col}: {message}" in " ".join(result.output.split())
    assert "ok: 3 rules, 1 SLA, 0 calendars in 1 file" in result.output
    assert "4 warnings" in result.output
    # text, a category and raw.* fields take ignore_case without a word
    assert ":13:" not in result.output
    assert ":15:" not in result.output
    assert ":18:" not in result.output


def test_warnings_in_json(run) -> None:
    result = run("rules", "check", "--format", "json", str(WARNINGS))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["errors"] == []
    assert [(w["path"], w["line"], w["col"], w["message"]) for w in document["warnings"]] == [
        (WARNED, line, col, message) for line, col, message in EXPECTED_WARNINGS
    ]
    assert document["rules"] == 3
    assert document["files"] == [WARNED]


def test_strict_fails_on_warnings(run) -> None:
    result = run("rules", "check", "--strict", str(WARNINGS))
    assert result.exit_code == 1
    assert "failed (--strict)" in result.output
    as_json = run("rules", "check", "--strict", "-f", "json", str(WARNINGS))
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["ok"] is False


def test_the_shipped_rules_have_no_warnings(run) -> None:
    result = run("rules", "check", "--strict", str(Path(__file__).parents[2] / "rules"))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


def test_errors_in_json_are_listed_with_their_place(run) -> None:
    path = DATA / "invalid" / "indent-more.yaml"
    result = run("rules", "check", "-f", "json", str(path))
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert [(e["line"], e["col"]) for e in document["errors"]] == [(5, 7)]
    assert document["errors"][0]["message"].startswith(
        "YAML syntax: this line is indented more than `when:` on line 4"
    )


def test_a_yaml_mistake_is_explained_not_quoted_from_pyyaml(run) -> None:
    result = run("rules", "check", str(DATA / "invalid" / "missing-colon.yaml"))
    assert result.exit_code == 1
    assert "missing-colon.yaml:4:5: YAML syntax: `when` has no colon after it" in result.output
    assert "could not find expected" not in result.output


def test_several_paths_are_checked_as_one_rule_set(run) -> None:
    result = run("rules", "check", str(DATA / "valid"), str(DATA / "diff" / "extra"))
    assert result.exit_code == 0, result.output
    assert "ok: 4 rules, 1 disabled, 1 SLA, 1 calendar in 3 files" in result.output


def test_defined_twice_points_at_both_keys(run) -> None:
    result = run("rules", "check", str(DATA / "valid"), WARNED)
    assert result.exit_code == 1
    first = DATA / "valid" / "two-files-a.yaml"
    assert f"{WARNED}:4:3: sla 'resolution' is defined twice (first at {first}:5:3)" in " ".join(
        result.output.split()
    )


def test_a_missing_path_among_several_exits_2(run) -> None:
    result = run("rules", "check", str(DATA / "valid"), str(DATA / "nope"))
    assert result.exit_code == 2
    assert "no such file or folder" in result.output


def test_the_operators_of_installed_plugins_are_used(run, tmp_path, monkeypatch) -> None:
    """The rule language knows no plugins: the command passes the registry's operators."""
    shouting = OperatorSpec(
        name="shouts",
        field_types=frozenset({"string"}),
        value_schema={"type": "boolean"},
        prepare=lambda value, field_type: value,
        test=lambda actual, expected, now: isinstance(actual, str) and actual.isupper(),
    )
    registry = Registry(operators={spec.name: spec for spec in (*BUILTIN_OPERATORS, shouting)})
    monkeypatch.setattr(rules_cmd, "installed_operators", lambda: list(registry.operators.values()))
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "bridge: 1\nrules:\n  - id: loud\n    when: {field: summary, shouts: true}\n"
        "    then: {work_type: service}\n"
    )
    assert run("rules", "check", str(rules)).exit_code == 0
    monkeypatch.setattr(rules_cmd, "installed_operators", lambda: list(BUILTIN_OPERATORS))
    result = run("rules", "check", str(rules))
    assert result.exit_code == 1
    assert "shouts" in result.output
