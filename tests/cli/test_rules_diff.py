"""``bridge rules diff``: the three formats, exit codes for CI, and old rules read from git.

Fixtures: tests/data/rules/diff (``old`` and ``new`` rule sets, ``export.json`` with an item
whose type holds markup, a ``|``, backticks and an ANSI escape, ``bridge.yaml`` with the
write-back of two sources, ``invalid`` rules).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli

DIFF = Path(__file__).parent.parent / "data" / "rules" / "diff"
OLD = str(DIFF / "old")
NEW = str(DIFF / "new")
EXPORT = str(DIFF / "export.json")
NOW = "2026-03-02T16:00:00Z"
HOSTILE_TYPE = "Odd | `type` [bold]x[/] \x1b[31mred"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["rules", "diff", *args], catch_exceptions=False)

    return invoke


def _digest(path: str) -> str:
    """The digest ``rules check`` prints for these rules."""
    result = CliRunner().invoke(cli, ["rules", "check", path])
    return result.output.rsplit("digest ", 1)[1].rstrip(")\n")


def test_table_shows_the_headline_matrix_items_and_kpis(run) -> None:
    result = run(OLD, NEW, "-i", EXPORT, "--now", NOW)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "2 of 7 items change class, 2 change phase, 2 change their deciding rule; 3" in out
    assert "stories → run-the-business" in out
    assert "(default) → odd-ones" in out
    assert "execution → monitoring" in out
    assert "OPS-1: 7200 → -7200 (-14400)" in out
    assert "OPS-2: running → breaching" in out
    assert "fields a sync would write differently" in out
    # The item's type is text: its markup shows as written, its escape sequence as "?".
    assert "Odd | `type` [bold]x[/] ?[31mred" in out
    assert "\x1b" not in out


def test_json_is_standard_and_names_both_rule_sets_and_now(run) -> None:
    result = run(OLD, NEW, "-i", EXPORT, "--now", NOW, "-f", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout, parse_constant=pytest.fail)
    assert document["now"] == NOW
    assert document["old"] == {"digest": _digest(OLD), "rules": [OLD]}
    assert document["new"] == {"digest": _digest(NEW), "rules": [NEW]}
    assert document["changed"] is True
    assert document["items_compared"] == 7
    assert document["matrix"]["unclassified"] == {"project": 0, "service": 1, "unclassified": 0}
    weird = next(item for item in document["items"] if item["key"] == "WEB-1")
    assert weird["type"] == HOSTILE_TYPE  # exact in the data, escaped on the wire
    assert "\\u001b" in result.stdout
    assert weird["old"] == {"work_type": "unclassified", "phase": None, "rule": None}
    assert weird["changed"] == ["work_type", "rule"]
    goal = next(s for s in document["kpis"] if s["kpi"] == "sla.resolution.goal_seconds")
    assert goal["items"] == 2
    assert goal["largest"][0] == {
        "key": "OPS-1",
        "old": 28800.0,
        "new": 14400.0,
        "change": -14400.0,
    }
    assert document["skipped"] == []
    assert document["errors"] == []


def test_markdown_is_a_pull_request_comment_with_data_escaped(run) -> None:
    result = run(OLD, NEW, "-i", EXPORT, "--now", NOW, "-f", "markdown")
    assert result.exit_code == 0
    text = result.stdout
    assert "**2 of 7 items change class, 2 change phase" in text
    assert "| old \\\\ new | project | service | unclassified |" in text
    assert "| **unclassified** | 0 | 1 | 0 |" in text
    assert "| sla.resolution.goal\\_seconds | 2 | OPS-1: 28800 → 14400 (-14400) |" in text
    row = next(line for line in text.splitlines() if line.startswith("| WEB-1 "))
    assert "Odd \\| \\`type\\` \\[bold\\]x\\[/\\] ?\\[31mred" in row
    # The escaped | does not split the cell: item, type, work type, phase, rule.
    assert len(row.replace("\\|", "").strip("|").split("|")) == 5
    assert "\x1b" not in text


def test_fail_on_change_is_a_ci_gate(run) -> None:
    changed = run(OLD, NEW, "-i", EXPORT, "--now", NOW, "--fail-on-change", "-f", "json")
    assert changed.exit_code == 1
    assert json.loads(changed.stdout)["changed"] is True  # the output is written first
    same = run(OLD, OLD, "-i", EXPORT, "--now", NOW, "--fail-on-change", "-f", "markdown")
    assert same.exit_code == 0
    assert "No change: the new rules decide and compute the same for all 7 items." in same.stdout
    assert run(OLD, NEW, "-i", EXPORT, "--now", NOW).exit_code == 0  # no flag, no gate


def test_config_restricts_the_sync_fields_to_what_sources_write_back(run) -> None:
    result = run(
        OLD, NEW, "-i", EXPORT, "--now", NOW, "-c", str(DIFF / "bridge.yaml"), "-f", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sync"] == [
        {"key": "work_type", "items": 2, "sources": ["jira", "servicenow"]},
        {"key": "phase", "items": 2, "sources": ["servicenow"]},
        {"key": "sla.resolution.state", "items": 2, "sources": ["jira"]},
    ]


def test_invalid_rules_report_their_diagnostics_and_exit_1(run) -> None:
    result = run(str(DIFF / "invalid"), NEW, "-i", EXPORT)
    assert result.exit_code == 1
    assert "invalid/rules.yaml:4:25: unknown operator 'equal'; did you mean 'equals'?" in (
        result.output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((OLD, "-i", EXPORT), "name the OLD and NEW rule files or folders"),
        ((OLD, NEW), "Missing option '--input'"),
        ((OLD, str(DIFF / "nope"), "-i", EXPORT), "no such file or folder"),
        ((OLD, NEW, "-i", str(DIFF / "nope.json")), "no such file or folder"),
        ((OLD, NEW, "-i", EXPORT, "--now", "yesterday"), "--now"),
        ((OLD, NEW, "-i", EXPORT, "-c", str(DIFF / "nope.yaml")), "nope.yaml"),
        ((NEW, "-i", EXPORT, "--base", "main"), "write git:REF"),
        ((NEW, "-i", EXPORT, "--base", "git:--output=x"), "write git:REF"),
    ],
)
def test_input_problems_exit_2(run, args, message) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


# -- --base git:REF -------------------------------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=bridge tests", "-c", "user.email=tests@example.com"]
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        ["git", *identity, "-c", "commit.gpgsign=false", *args],  # noqa: S607 - git from PATH
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose rules/ holds the old rules in the first commit, the new in the
    second."""
    rules = tmp_path / "repo" / "rules"
    rules.mkdir(parents=True)
    _git(rules.parent, "init", "-q")
    shutil.copy(DIFF / "old" / "rules.yaml", rules / "rules.yaml")
    (rules / "notes.txt").write_text("not a rule file\n")
    _git(rules.parent, "add", ".")
    _git(rules.parent, "commit", "-q", "-m", "old rules")
    shutil.copy(DIFF / "new" / "rules.yaml", rules / "rules.yaml")
    _git(rules.parent, "commit", "-q", "-a", "-m", "new rules")
    return rules.parent


@needs_git
def test_base_reads_the_old_rules_from_git(run, repo) -> None:
    rules = str(repo / "rules")
    result = run("--base", "git:HEAD~1", rules, "-i", EXPORT, "--now", NOW, "-f", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["old"] == {"digest": _digest(OLD), "rules": ["HEAD~1:rules"]}
    assert document["new"] == {"digest": _digest(NEW), "rules": [rules]}
    # Exactly what comparing the two folders says.
    direct = json.loads(run(OLD, NEW, "-i", EXPORT, "--now", NOW, "-f", "json").stdout)
    assert document["items"] == direct["items"]
    assert document["matrix"] == direct["matrix"]
    # One file works as well as a folder; HEAD is the new rules, so nothing changes.
    file = str(repo / "rules" / "rules.yaml")
    same = run("--base", "git:HEAD", file, "-i", EXPORT, "--now", NOW, "--fail-on-change")
    assert same.exit_code == 0, same.output
    assert "No change" in same.stdout


@needs_git
def test_base_reports_invalid_old_rules_under_their_git_name(run, repo) -> None:
    rules = repo / "rules"
    shutil.copy(DIFF / "invalid" / "rules.yaml", rules / "rules.yaml")
    _git(repo, "commit", "-q", "-a", "-m", "broken rules")
    shutil.copy(DIFF / "new" / "rules.yaml", rules / "rules.yaml")
    result = run("--base", "git:HEAD", str(rules), "-i", EXPORT)
    assert result.exit_code == 1
    assert "HEAD:rules/rules.yaml:4:25: unknown operator 'equal'" in result.output
    assert "bridge-rules-diff-" not in result.output  # no temporary copy named


@needs_git
def test_base_errors_exit_2(run, repo, tmp_path) -> None:
    added = repo / "rules" / "more.yaml"
    shutil.copy(DIFF / "new" / "rules.yaml", added)
    missing = run("--base", "git:HEAD", str(added), "-i", EXPORT)
    assert missing.exit_code == 2
    assert "did not exist at HEAD" in missing.output
    no_ref = run("--base", "git:no-such-branch", str(repo / "rules"), "-i", EXPORT)
    assert no_ref.exit_code == 2
    assert "no revision 'no-such-branch'" in no_ref.output
    outside = tmp_path / "outside"
    shutil.copytree(DIFF / "new", outside)
    not_a_repo = run("--base", "git:HEAD", str(outside), "-i", EXPORT)
    assert not_a_repo.exit_code == 2
    assert "is not in a git repository" in not_a_repo.output
