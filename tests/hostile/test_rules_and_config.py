"""Hostile rules and bridge.yaml (issue 12): what an admin's file may hold, through the CLI.

Every case is a file under ``tests/data/hostile/rules/cases/`` or ``.../config/cases/``,
listed in its folder's ``cases.yaml`` with the message fragment and exit code bridge must
answer; the test names read as the list of attacks handled. Each runs in a fresh process,
as a terminal would, with a deadline and an address-space limit: a case that hangs or
balloons fails by the deadline or a MemoryError, never by a timing assert.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.cli import cli

HOSTILE = Path(__file__).parents[1] / "data" / "hostile"
MAIN = "import sys; from bridge.cli import main; sys.exit(main(sys.argv[1:]))"
DEADLINE_S = 30
MEMORY_BYTES = 2 * 1024**3  # the merge bomb needed 2.9 GB before it was counted
NOW = "2026-03-02T00:00:00Z"


def cases(folder: str) -> list[Any]:
    index = yaml.safe_load((HOSTILE / folder / "cases.yaml").read_text("utf-8"))
    return [pytest.param(case, id=case["attack"]) for case in index["cases"]]


def _limit_memory() -> None:  # pragma: no cover - runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``bridge ARGS`` in a fresh process; fails the test when it outlives the deadline."""
    try:
        return subprocess.run(  # noqa: S603 - the command line under test, no shell
            [sys.executable, "-c", MAIN, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1"},
            preexec_fn=_limit_memory if sys.platform != "win32" else None,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"bridge {' '.join(args)} did not finish within {DEADLINE_S} s")


def check_answer(case: dict[str, Any], done: subprocess.CompletedProcess[str]) -> None:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert "MemoryError" not in output, output
    assert case["expect"] in output, output
    assert done.returncode == case["exit"], output


@pytest.mark.parametrize("case", cases("rules"))
def test_hostile_rule_file_is_handled(case: dict[str, Any]) -> None:
    folder = HOSTILE / "rules" / "cases"
    if case.get("command", "check") == "classify":
        args = ["classify", "-r", case["file"], "-i", case["input"], "--now", NOW, "-f", "csv"]
    else:
        args = ["rules", "check", case["file"]]
    check_answer(case, run_cli(args, folder))


@pytest.mark.parametrize("case", cases("config"))
def test_hostile_bridge_yaml_is_handled(case: dict[str, Any]) -> None:
    check_answer(case, run_cli(["status", "-c", case["file"]], HOSTILE / "config" / "cases"))


def test_every_case_file_is_listed_once() -> None:
    """A case file nobody runs is an attack nobody checks."""
    for folder in ("rules", "config"):
        listed = [case["file"] for case in cases_of(folder)]
        on_disk = sorted(p.name for p in (HOSTILE / folder / "cases").glob("*.yaml"))
        assert sorted(set(listed)) == on_disk, folder


def cases_of(folder: str) -> list[dict[str, Any]]:
    index = yaml.safe_load((HOSTILE / folder / "cases.yaml").read_text("utf-8"))
    cases: list[dict[str, Any]] = index["cases"]
    return cases


# -- any value an admin may write: an answer, never a traceback --------------------------------

RULE = """bridge: 1
slas:
  ttr:
    goals: [{{target: {target}}}]
rules:
  - id: hostile
    when:
      all:
        - {{field: summary, matches: {pattern}}}
        - {{field: created, older_than: {age}}}
    then: {{work_type: service, kpis: [sla.ttr]}}
"""

# Text that reaches the YAML as a double-quoted scalar: any code point but surrogates.
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_REGEX_BITS = st.sampled_from(
    ["a", "(", ")", "[", "]", "^", "$", "\\", "|", "*", "+", "?", "{2,}", "{1001}", ".",
     "\\b", "\\w", "\\1", "(?=", "(?<!", "(?P<n>", "(?>", "++", "(?i)", "(?x)", "ä", "\\Z"]
)  # fmt: skip
_PATTERNS = st.one_of(_TEXT, st.lists(_REGEX_BITS, max_size=12).map("".join))
_DURATIONS = st.one_of(
    _TEXT,
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.one_of(st.integers(min_value=0, max_value=10**30), st.floats(allow_nan=False)),
        st.sampled_from(["w", "d", "h", "m", "s", "x", ""]),
    ),
)


def _quoted(text: str) -> str:
    return '"' + "".join(f"\\U{ord(c):08x}" if not c.isalnum() else c for c in text) + '"'


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_PATTERNS, age=_DURATIONS, target=_DURATIONS)
def test_any_pattern_or_duration_gets_an_answer_never_a_traceback(
    pattern: str, age: str, target: str
) -> None:
    text = RULE.format(pattern=_quoted(pattern), age=_quoted(age), target=_quoted(target))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(cli, ["rules", "check", str(path)])
    assert result.exit_code in (0, 1), result.output
    assert not isinstance(result.exception, Exception), result.exception
    if result.exit_code == 1:
        assert f"{path}:" in result.output  # every problem is located
    else:
        assert result.output.startswith("ok: 1 rule")
