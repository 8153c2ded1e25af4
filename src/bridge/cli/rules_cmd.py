"""``bridge rules check`` and ``bridge rules test``: the rule author's inner loop."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

import click

from bridge.cli import EXIT_INVALID, fail, handle_errors, plain, print_diagnostics, stderr, stdout
from bridge.errors import RuleValidationError
from bridge.plugins import default_registry
from bridge.rules.ast import RuleSet
from bridge.rules.loader import load_rules
from bridge.rules.testing import FileResult, discover_test_files, run_test_file

__all__ = ["rules"]


def _default_paths(paths: Sequence[str]) -> list[str]:
    if paths:
        missing = [p for p in paths if not Path(p).exists()]
        if missing:  # a wrong argument, like every other input problem: exit 2
            raise fail(
                f"no such file or folder: {', '.join(plain(p) for p in missing)} "
                "(name rule files or folders that exist)"
            )
        return list(paths)
    if Path("rules").is_dir():
        return ["rules"]
    raise fail("name the rule files or folders to use (there is no rules/ folder here)")


@click.group()
def rules() -> None:
    """Check and test rule files."""


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path())
@handle_errors
def check(paths: tuple[str, ...]) -> None:
    """Validate rule files; print every problem as path:line:col.

    PATHS are rule files or folders (their *.yaml files; default: rules/).
    Exit 0 when valid, 1 when not.
    """
    rule_set = load_rules(_default_paths(paths))
    enabled = len(rule_set.rules)
    disabled = f", {len(rule_set.disabled)} disabled" if rule_set.disabled else ""
    stdout.print(
        f"ok: {enabled} rule{'s' if enabled != 1 else ''}{disabled}, "
        f"{len(rule_set.slas)} SLA{'s' if len(rule_set.slas) != 1 else ''}, "
        f"{len(rule_set.calendars)} calendar{'s' if len(rule_set.calendars) != 1 else ''} "
        f"in {len(rule_set.files)} file{'s' if len(rule_set.files) != 1 else ''} "
        f"(digest {rule_set.digest})"
    )


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the results as JUnit XML to this file.",
)
@click.option(
    "--run",
    "run_pattern",
    metavar="REGEX",
    help="Only run tests whose name matches this regular expression.",
)
@click.option(
    "--fail-on-uncovered",
    is_flag=True,
    help="Fail when some enabled rule is not exercised by any test.",
)
@handle_errors
def test(
    paths: tuple[str, ...], junit_path: str | None, run_pattern: str | None, fail_on_uncovered: bool
) -> None:
    """Run rule tests: YAML files with a top-level `tests:` list (default: under rules/).

    Each test gives an item and what the rules must decide for it; failures show the
    difference. Ends with rule coverage: the rules no test exercised.
    """
    try:
        pattern = re.compile(run_pattern) if run_pattern else None
    except re.error as exc:
        raise fail(f"--run: invalid regular expression: {exc}") from None
    files, problems = discover_test_files(_default_paths(paths))
    if problems:
        print_diagnostics(RuleValidationError(problems))
        raise fail("no tests to run" if not files else "some test paths are wrong", EXIT_INVALID)
    # The KPI code (and its holiday calendars) is loaded only when tests run.
    from bridge.kpi.testing import check_kpis  # noqa: PLC0415

    formats = list(default_registry().formats.values())
    cache: dict[tuple[str, ...], RuleSet | RuleValidationError] = {}
    results: list[FileResult] = []
    started = time.perf_counter()
    for file in files:
        result = run_test_file(
            file, formats, name_filter=pattern, kpi_check=check_kpis, rules_cache=cache
        )
        results.append(result)
        _print_file_result(result)
    elapsed = time.perf_counter() - started
    total = sum(len(r.cases) for r in results)
    failed = sum(1 for r in results for c in r.cases if not c.passed)
    broken = sum(1 for r in results if r.problems)
    uncovered = _uncovered(results)
    if junit_path:
        _write_junit(results, Path(junit_path), elapsed)
    summary = f"{total - failed} passed, {failed} failed"
    if broken:
        summary += f", {broken} file{'s' if broken != 1 else ''} could not run"
    style = "bold red" if failed or broken else "bold green"
    stdout.print(f"\n{summary} in {elapsed:.2f}s", style=style)
    if uncovered:
        stdout.print(
            f"rule coverage: {len(uncovered)} rule{'s' if len(uncovered) != 1 else ''} "
            "not exercised by any test:",
            style="yellow",
        )
        for rule_id, where in uncovered:
            stdout.print(f"  {plain(rule_id)}  ({plain(where)})")
    elif broken or not total:
        # Coverage is not known when tests did not run: never claimed.
        stdout.print("rule coverage: not known (some tests could not run)", style="yellow")
    elif results and not pattern:
        stdout.print("rule coverage: every enabled rule is exercised by a test")
    if failed or broken or total == 0 or (fail_on_uncovered and uncovered):
        raise SystemExit(EXIT_INVALID)


def _print_file_result(result: FileResult) -> None:
    if result.problems:
        stdout.print(f"[bold red]ERROR[/] {plain(result.path)}")
        for problem in result.problems:
            stderr.print(f"  {plain(problem)}")
        return
    for case in result.cases:
        if case.passed:
            stdout.print(f"[green]PASS[/] {plain(case.name)}", highlight=False)
        else:
            stdout.print(f"[bold red]FAIL[/] {plain(case.name)}  [dim]({plain(case.where)})[/]")
            for failure in case.failures:
                stdout.print(f"     {plain(failure)}")


def _uncovered(results: list[FileResult]) -> list[tuple[str, str]]:
    covered: set[str] = set()
    rule_sets: dict[str, RuleSet] = {}
    for result in results:
        covered |= result.rules_covered
        if result.rule_set is not None:
            rule_sets[result.rule_set.digest] = result.rule_set
    seen: set[str] = set()
    missing: list[tuple[str, str]] = []
    for rule_set in rule_sets.values():
        for rule in rule_set.rules:
            if rule.id not in covered and rule.id not in seen:
                seen.add(rule.id)
                missing.append((rule.id, rule.where))
    return missing


def _write_junit(results: list[FileResult], path: Path, elapsed: float) -> None:
    suites = ET.Element("testsuites", name="bridge rules", time=f"{elapsed:.3f}")
    for result in results:
        failures = sum(1 for c in result.cases if not c.passed)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=result.path,
            tests=str(len(result.cases) + (1 if result.problems else 0)),
            failures=str(failures),
            errors=str(1 if result.problems else 0),
        )
        if result.problems:
            case = ET.SubElement(suite, "testcase", classname=result.path, name="load")
            error = ET.SubElement(case, "error", message="the test file could not run")
            error.text = "\n".join(str(p) for p in result.problems)
        for case_result in result.cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=result.path,
                name=case_result.name,
                time=f"{case_result.seconds:.4f}",
            )
            if not case_result.passed:
                failure = ET.SubElement(case, "failure", message=case_result.failures[0])
                failure.text = f"{case_result.where}\n" + "\n".join(case_result.failures)
    ET.indent(suites)
    try:
        ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise fail(f"--junit: cannot write {path}: {exc.strerror}") from None
