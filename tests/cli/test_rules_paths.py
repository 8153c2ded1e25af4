"""A rule set may span several paths, and every command that reads rules takes them all:
``-r`` (repeatable) for classify, explain and report, arguments for ``rules check`` and
``rules test``, ``--old`` plus arguments for ``rules diff``.

Fixtures: tests/data/rules/diff (``old`` rules, ``extra`` — one more rule file that makes
whatever no other rule took service work, with its own rule test — and ``export.json``,
whose WEB-1 no rule of ``old`` classifies).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli

REPO = Path(__file__).parents[2]
DIFF = REPO / "tests" / "data" / "rules" / "diff"
OLD = str(DIFF / "old")
EXTRA = str(DIFF / "extra")
EXPORT = str(DIFF / "export.json")
NOW = "2026-03-02T16:00:00Z"
BOTH = ("-r", OLD, "-r", EXTRA, "-i", EXPORT, "--now", NOW)


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_classify_reads_every_rules_path(run) -> None:
    alone = json.loads(run("classify", "-r", OLD, "-i", EXPORT, "--now", NOW, "-f", "json").stdout)
    both = json.loads(run("classify", *BOTH, "-f", "json").stdout)
    rules_alone = {item["key"]: item["rule"] for item in alone["items"]}
    rules_both = {item["key"]: item["rule"] for item in both["items"]}
    assert rules_alone["WEB-1"] is None
    assert rules_both["WEB-1"] == "everything-else"
    assert {k: v for k, v in rules_both.items() if k != "WEB-1"} == {
        k: v for k, v in rules_alone.items() if k != "WEB-1"
    }


def test_explain_reads_every_rules_path(run) -> None:
    result = run("explain", "WEB-1", *BOTH, "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rule"] == "everything-else"


def test_report_reads_every_rules_path(run) -> None:
    result = run("report", *BOTH, "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"]["work_mix"]["unclassified"]["count"] == 0


def test_rules_test_runs_the_tests_of_every_path(run) -> None:
    result = run("rules", "test", str(REPO / "rules"), EXTRA)
    assert result.exit_code == 0, result.output
    assert "PASS anything no other rule takes is service work" in result.output
    assert "PASS a late, finished ServiceNow project task" in result.output


def test_rules_diff_takes_several_paths_on_each_side(run) -> None:
    result = run(
        "rules", "diff", "--old", OLD, "--old", EXTRA, OLD, "-i", EXPORT, "--now", NOW, "-f", "json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["old"]["rules"] == [OLD, EXTRA]
    assert document["new"]["rules"] == [OLD]
    assert [(item["key"], item["changed"]) for item in document["items"]] == [
        ("WEB-1", ["work_type", "rule"])
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--old", OLD, "-i", EXPORT), "name the NEW rule files or folders"),
        (("--old", OLD, OLD, "--base", "git:HEAD", "-i", EXPORT), "--old and --base"),
        (("--old", str(DIFF / "nope"), OLD, "-i", EXPORT), "no such file or folder"),
    ],
)
def test_rules_diff_old_option_problems_exit_2(run, args, message) -> None:
    result = run("rules", "diff", *args)
    assert result.exit_code == 2
    assert message in result.output
