"""The command line: outputs, exit codes, and no tracebacks for user errors."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli

DATA = Path(__file__).parent.parent / "data"
REPO = Path(__file__).parent.parent.parent
VALID = str(DATA / "rules" / "valid")
SN_INCIDENT = str(DATA / "servicenow" / "table_get_incident_by_sys_id.json")
JIRA_SEARCH = str(DATA / "jira" / "jira-cli" / "search.json")
NOW = "2026-05-04T10:00:00Z"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_check_valid_prints_a_summary(run) -> None:
    result = run("rules", "check", VALID)
    assert result.exit_code == 0
    assert "ok: 3 rules, 1 disabled, 1 SLA, 1 calendar in 2 files" in result.output


def test_check_invalid_lists_every_problem_and_exits_1(run) -> None:
    result = run("rules", "check", str(DATA / "rules" / "invalid" / "shape.yaml"))
    assert result.exit_code == 1
    assert "shape.yaml:2:1: unknown key 'rule'; did you mean 'rules'?" in result.output
    assert "10 problems found" in result.output
    assert "Traceback" not in result.output


def test_check_without_paths_and_no_rules_folder_is_a_usage_error(
    run, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("rules", "check")
    assert result.exit_code == 2
    assert "there is no rules/ folder here" in result.output


def test_unknown_option_is_a_usage_error(run) -> None:
    assert run("classify", "--colour").exit_code == 2


def test_classify_json(run) -> None:
    result = run(
        "classify", "-r", VALID, "-i", SN_INCIDENT, "-i", JIRA_SEARCH, "--now", NOW, "-f", "json"
    )
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["now"] == NOW
    assert len(document["rule_set"]) == 16
    assert document["skipped"] == []
    rows = document["items"]
    assert [(r["key"], r["system"], r["work_type"], r["rule"]) for r in rows] == [
        ("INC0000046", "servicenow", "service", "incidents"),
        ("TEST-1", "jira", "unclassified", None),
        ("TEST-2", "jira", "unclassified", None),
        ("TEST-3", "jira", "unclassified", None),
    ]
    assert {"key", "system", "work_type", "phase", "rule", "kpis"} <= set(rows[0])


def test_classify_csv_and_output_file(run, tmp_path) -> None:
    out = tmp_path / "out.csv"
    result = run(
        "classify", "-r", VALID, "-i", SN_INCIDENT, "--now", NOW, "-f", "csv", "-o", str(out)
    )
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["key"] == "INC0000046"
    assert rows[0]["work_type"] == "service"


def test_classify_table_ends_with_a_summary(run) -> None:
    result = run("classify", "-r", VALID, "-i", SN_INCIDENT, "-i", JIRA_SEARCH, "--now", NOW)
    assert result.exit_code == 0
    tail = result.output[result.output.index("summary:") :]
    assert "4 items: 0 project (0.0%), 1 service (25.0%), 3 unclassified (75.0%)" in tail


def test_classify_table_fits_100_columns_when_piped_and_explains_its_abbreviations(
    run, monkeypatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    result = run("classify", "--now", NOW)
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert "summary" in result.stdout.splitlines()[1]
    lines = result.stdout.splitlines()
    legend = " ".join(lines[next(i for i, line in enumerate(lines) if "legend:" in line) :])
    for text in (
        "TTFR = time-to-first-response (SLA)",
        "TTR = time-to-resolution (SLA)",
        "SPI = schedule performance index",
        "CPI = cost performance index",
    ):
        assert text in legend


def test_classify_json_is_the_same_on_one_core_and_two(run) -> None:
    one = run("classify", "--now", NOW, "-f", "json", "-j", "1")
    two = run("classify", "--now", NOW, "-f", "json", "-j", "2")
    assert one.exit_code == two.exit_code == 0
    assert one.stdout == two.stdout
    assert len(json.loads(one.stdout)["items"]) == 406


def test_classify_a_bad_item_is_left_out_named_and_fails_the_run_unless_keep_going(
    run, tmp_path
) -> None:
    page = json.loads((REPO / "examples/export/jira/ops-page-1.json").read_text("utf-8"))
    page["issues"][3]["fields"]["created"] = "yesterday"
    export = tmp_path / "ops.json"
    export.write_text(json.dumps(page), "utf-8")

    failing = run("classify", "-i", str(export), "--now", NOW, "-f", "json")
    going = run("classify", "-i", str(export), "--now", NOW, "-f", "json", "--keep-going")

    assert failing.exit_code == 2
    assert going.exit_code == 0
    for result in (failing, going):
        document = json.loads(result.stdout)
        assert len(document["items"]) == 49
        assert [s["key"] for s in document["skipped"]] == ["OPS-4"]
        assert "warning: skipped ops.json: issues[3] (OPS-4): fields.created" in result.stderr
        assert "1 item left out" in result.stderr


def test_classify_bad_export_is_a_located_message(run) -> None:
    bad = str(DATA / "exports" / "invalid" / "unknown-shape.json")
    result = run("classify", "-r", VALID, "-i", bad, "--now", NOW)
    assert result.exit_code == 2
    assert "unknown-shape.json: not an export bridge knows" in result.output
    assert "Traceback" not in result.output


def test_classify_bad_now(run) -> None:
    result = run("classify", "-r", VALID, "-i", SN_INCIDENT, "--now", "yesterday")
    assert result.exit_code == 2
    assert "--now: 'yesterday' is not an ISO 8601 date-time" in result.output


def test_classify_invalid_rules_exits_1(run) -> None:
    bad = str(DATA / "rules" / "invalid" / "tab.yaml")
    result = run("classify", "-r", bad, "-i", SN_INCIDENT)
    assert result.exit_code == 1
    assert "tab.yaml:4:1: YAML syntax" in result.output


def test_explain_shows_every_condition(run) -> None:
    result = run("explain", "-r", VALID, "-i", SN_INCIDENT, "--now", NOW, "INC0000046")
    assert result.exit_code == 0
    out = result.output
    assert "rule urgent-first" in out
    assert 'labels contains "urgent"' in out
    assert "saw []" in out
    assert "← wins" in out
    assert "decision: service by rule incidents" in out


def test_explain_json(run) -> None:
    result = run(
        "explain", "-r", VALID, "-i", SN_INCIDENT, "--now", NOW, "-f", "json", "INC0000046"
    )
    data = json.loads(result.stdout)
    assert data["rule"] == "incidents"
    first = data["rules"][0]
    assert first["id"] == "urgent-first"
    assert first["matched"] is False
    assert first["conditions"][0] == {
        "depth": 0,
        "field": "labels",
        "operator": "contains",
        "expected": "urgent",
        "actual": [],
        "result": False,
        "where": first["conditions"][0]["where"],
    }


def test_explain_unknown_key(run) -> None:
    result = run("explain", "-r", VALID, "-i", SN_INCIDENT, "INC00000")
    assert result.exit_code == 2
    assert "no item with key 'INC00000'" in result.output
    assert "similar: INC0000046" in result.output


def test_rules_test_passes_on_the_shipped_rules(run) -> None:
    result = run("rules", "test", str(REPO / "rules"))
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output
    assert "every enabled rule is exercised by a test" in result.output


def test_rules_test_failures_junit_and_coverage(run, tmp_path) -> None:
    junit = tmp_path / "junit.xml"
    tests = str(DATA / "rules" / "rule-tests" / "mixed.yaml")
    result = run("rules", "test", tests, "--junit", str(junit))
    assert result.exit_code == 1
    assert "FAIL wrong expectation fails with a diff" in result.output
    assert "work_type: expected 'service', got 'project'" in result.output
    assert "3 passed, 3 failed" in result.output
    suites = ET.parse(junit).getroot()
    suite = suites.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "6"
    assert suite.get("failures") == "3"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert "wrong expectation fails with a diff" in failed


def test_rules_test_reports_uncovered_rules(run, tmp_path) -> None:
    tests = tmp_path / "t.yaml"
    tests.write_text(
        f"rules: {VALID}\nnow: '{NOW}'\ntests:\n"
        "  - {item: {type: Incident}, expect: {rule: incidents}}\n"
    )
    result = run("rules", "test", str(tests))
    assert result.exit_code == 0
    assert "2 rules not exercised by any test" in result.output
    assert "urgent-first" in result.output
    strict = run("rules", "test", str(tests), "--fail-on-uncovered")
    assert strict.exit_code == 1


def test_rules_test_with_no_tests_fails(run, tmp_path) -> None:
    (tmp_path / "r.yaml").write_text("bridge: 1\n")
    result = run("rules", "test", str(tmp_path))
    assert result.exit_code == 1
    assert "no rule tests here" in result.output


def test_bundled_defaults_run_without_options(run) -> None:
    result = run("classify", "--now", NOW, "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["items"]
    assert len(rows) > 100
    assert {r["work_type"] for r in rows} >= {"project", "service"}


def test_rules_test_claims_no_coverage_when_a_test_file_could_not_run(run, tmp_path) -> None:
    broken = tmp_path / "t.yaml"
    broken.write_text(f"rules: {VALID}\nnow: '{NOW}'\ntests:\n  - {{item: [not, a, map]}}\n")
    result = run("rules", "test", str(broken))
    assert result.exit_code == 1
    assert "0 passed, 0 failed, 1 file could not run" in result.output
    assert "every enabled rule is exercised" not in result.output
    assert "rule coverage: not known" in result.output


def test_rules_check_and_test_on_a_missing_path_exit_2_like_any_wrong_input(run) -> None:
    for command in ("check", "test"):
        result = run("rules", command, "/no/such/rules")
        assert result.exit_code == 2, result.output
        assert "no such file or folder: /no/such/rules" in result.output


def test_sync_refuses_a_files_source_before_creating_anything(run, tmp_path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"store: sqlite://{tmp_path / 'bridge.db'}\n"
        f"sources:\n  - {{name: export, connector: files, path: {REPO / 'examples' / 'export'}}}\n"
    )
    result = run("sync", "-c", str(config))
    assert result.exit_code == 2
    assert "only reads; use bridge classify for it" in result.output
    assert not (tmp_path / "bridge.db").exists()  # the refused run leaves nothing behind


def test_rules_check_finds_a_misspelled_kpi_in_a_test_expectation(run, tmp_path) -> None:
    rules_dir = tmp_path / "rules"
    (rules_dir / "tests").mkdir(parents=True)
    for part in Path(VALID).glob("*.yaml"):
        (rules_dir / part.name).write_text(part.read_text())
    (rules_dir / "tests" / "t.yaml").write_text(
        f"now: '{NOW}'\ntests:\n  - item: {{type: Incident}}\n    expect:\n"
        "      kpis:\n        tco.labor_hours: null\n"
    )
    result = run("rules", "check", str(rules_dir))
    assert result.exit_code == 1
    assert "t.yaml:6:9: expect.kpis:" in result.output
    assert "did you mean 'tco.labour_hours'" in result.output
