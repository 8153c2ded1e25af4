"""``bridge rules check`` and ``bridge rules test``: the rule author's inner loop."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import click
from rich.table import Table

from bridge.cli import (
    EXIT_INVALID,
    fail,
    handle_errors,
    json_text,
    plain,
    print_diagnostics,
    printable,
    stderr,
    stdout,
    warn,
)
from bridge.cli.options import (
    NOW_OPTION,
    config_from,
    format_option,
    now_from,
    read_items,
    warn_skipped,
)
from bridge.connectors import SkippedRecord
from bridge.errors import Diagnostic, RuleValidationError
from bridge.kpi.result import iso
from bridge.model import WORK_TYPES
from bridge.plugins import default_registry, installed_operators
from bridge.rules.ast import RuleSet
from bridge.rules.diff import ABSENT, DECISION_FIELDS, RuleDiff, ValueChange, diff_rules, json_value
from bridge.rules.loader import RULE_SUFFIXES, load_rules
from bridge.ruletests.runner import (
    FileResult,
    discover_test_files,
    expect_problems,
    run_test_file,
)

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


def _diagnostic_json(diagnostic: Diagnostic) -> dict[str, Any]:
    return {
        "path": diagnostic.path,
        "line": diagnostic.line,
        "col": diagnostic.col,
        "message": diagnostic.message,
    }


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path())
@format_option("text", "json")
@click.option(
    "--strict",
    is_flag=True,
    help="Fail (exit 1) on warnings too, not only on errors.",
)
@handle_errors
def check(paths: tuple[str, ...], output_format: str, strict: bool) -> None:
    """Validate rule files; print every problem as path:line:col.

    PATHS are rule files or folders (their *.yaml files; default: rules/). Warnings (a
    setting with no effect, a KPI that does not fit the work type) are printed with their
    line but do not fail the check unless --strict. Exit 0 when valid, 1 when not.
    """
    chosen = _default_paths(paths)
    try:
        rule_set = load_rules(chosen, installed_operators())
        # The rule tests beside them: a misspelled KPI in an expectation is found now.
        typos = expect_problems(chosen)
        if typos:
            raise RuleValidationError(typos)
    except RuleValidationError as exc:
        if output_format != "json":
            raise
        document = {"ok": False, "errors": [_diagnostic_json(d) for d in exc.diagnostics]}
        sys.stdout.write(json_text({**document, "warnings": []}))
        raise SystemExit(EXIT_INVALID) from None
    warnings = rule_set.warnings
    failed = strict and bool(warnings)
    if output_format == "json":
        sys.stdout.write(
            json_text(
                {
                    "ok": not failed,
                    "errors": [],
                    "warnings": [_diagnostic_json(d) for d in warnings],
                    "rules": len(rule_set.rules),
                    "disabled": len(rule_set.disabled),
                    "slas": len(rule_set.slas),
                    "calendars": len(rule_set.calendars),
                    "files": list(rule_set.files),
                    "digest": rule_set.digest,
                }
            )
        )
    else:
        for diagnostic in warnings:
            warn(str(diagnostic))
        enabled = len(rule_set.rules)
        disabled = f", {len(rule_set.disabled)} disabled" if rule_set.disabled else ""
        noted = f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""
        stdout.print(
            f"{'failed (--strict)' if failed else 'ok'}: "
            f"{enabled} rule{'s' if enabled != 1 else ''}{disabled}, "
            f"{len(rule_set.slas)} SLA{'s' if len(rule_set.slas) != 1 else ''}, "
            f"{len(rule_set.calendars)} calendar{'s' if len(rule_set.calendars) != 1 else ''} "
            f"in {len(rule_set.files)} file{'s' if len(rule_set.files) != 1 else ''} "
            f"(digest {rule_set.digest}){noted}"
        )
    if failed:
        raise SystemExit(EXIT_INVALID)


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
    from bridge.ruletests.kpis import check_kpis  # noqa: PLC0415

    registry = default_registry()
    formats = list(registry.formats.values())
    operators = list(registry.operators.values())
    cache: dict[tuple[str, ...], RuleSet | RuleValidationError] = {}
    results: list[FileResult] = []
    started = time.perf_counter()
    for file in files:
        result = run_test_file(
            file,
            formats,
            name_filter=pattern,
            kpi_check=check_kpis,
            rules_cache=cache,
            operators=operators,
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


# -- diff -----------------------------------------------------------------------------------------

# A pull-request comment has a size limit (GitHub: 65,536 characters); the JSON lists them all.
_MARKDOWN_ITEMS = 50
_MARKDOWN_KPIS = 10
_GIT_TIMEOUT = 60.0


@rules.command()
@click.argument("paths", nargs=-1, type=click.Path(), metavar="[OLD] NEW")
@click.option(
    "--base",
    metavar="git:REF",
    help="Compare with NEW's files as committed at git revision REF (instead of naming OLD).",
)
@click.option(
    "--old",
    "old_options",
    multiple=True,
    type=click.Path(),
    metavar="PATH",
    help="A file or folder of the old rule set (repeatable); every PATH argument is then NEW.",
)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    type=click.Path(),
    help="Export file or folder both rule sets are evaluated on (repeatable).",
)
@NOW_OPTION
@format_option("table", "json", "markdown")
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    help="bridge.yaml: count only the fields its sources write back (nothing is contacted).",
)
@click.option("--fail-on-change", is_flag=True, help="Exit 1 when anything changes (CI gates).")
@handle_errors
def diff(
    paths: tuple[str, ...],
    base: str | None,
    old_options: tuple[str, ...],
    inputs: tuple[str, ...],
    now_text: str | None,
    output_format: str,
    config_path: str | None,
    fail_on_change: bool,
) -> None:
    """What a rule change does to real items: evaluate OLD and NEW on the same export at the
    same instant and show the items whose work type, phase or rule changes, the work-type
    transitions, the KPIs that move and the fields a sync would write differently.

    OLD and NEW are rule files or folders. A rule set of several paths: give the old ones
    with --old (repeatable) and the new ones as arguments. With --base git:REF, name only
    NEW (one path or several): the old rules are the same paths as committed at REF.
    Exit 0 (1 with --fail-on-change when anything changes), 1 when either rule set is
    invalid, 2 for wrong input.
    """
    now = now_from(now_text)
    if old_options:
        if base is not None:
            raise fail("--old and --base both name the old rules; give one of them")
        if not paths:
            raise fail("name the NEW rule files or folders after the --old ones")
        old_paths, new_paths = _default_paths(old_options), _default_paths(paths)
        old_labels, new_labels = old_paths, new_paths
    elif base is None:
        if len(paths) != 2:
            raise fail(
                "name the OLD and NEW rule files or folders (for several: --old OLD... NEW...), "
                f"or only NEW with --base git:REF (got {len(paths)} path"
                f"{'s' if len(paths) != 1 else ''})"
            )
        old_paths, new_paths = _default_paths(paths[:1]), _default_paths(paths[1:])
        old_labels, new_labels = old_paths, new_paths
    else:
        new_paths = new_labels = _default_paths(paths)
    writeback = _writeback_keys(config_path) if config_path else None
    with tempfile.TemporaryDirectory(prefix="bridge-rules-diff-") as scratch:
        relabel: dict[str, str] = {}
        if base is not None:
            old_paths, old_labels = _rules_at_revision(base, new_paths, Path(scratch), relabel)
        old_set, new_set = _load_both(old_paths, new_paths, relabel)
    skipped: list[SkippedRecord] = []
    items = read_items(inputs, skipped)
    warn_skipped(skipped)
    result = diff_rules(old_set, new_set, items, now, writeback=writeback)
    for error in result.errors:
        sides = (("old", error.old), ("new", error.new))
        why = "; ".join(f"{side} rules: {reason}" for side, reason in sides if reason)
        warn(f"{error.key} left out of the comparison: {why}")
    if output_format == "json":
        document = result.as_dict()
        document["old"]["rules"] = list(old_labels)
        document["new"]["rules"] = list(new_labels)
        document["skipped"] = [
            {"key": s.key, "where": s.where, "problem": s.problem} for s in skipped
        ]
        sys.stdout.write(json_text(document))
    elif output_format == "markdown":
        sys.stdout.write(_diff_markdown(result))
    else:
        _print_diff(result, old_labels, new_labels)
    if fail_on_change and result.changed:
        raise SystemExit(EXIT_INVALID)


def _load_both(
    old_paths: Sequence[str], new_paths: Sequence[str], relabel: Mapping[str, str]
) -> tuple[RuleSet, RuleSet]:
    """Both rule sets, or every problem of both at once (old ones under their git names)."""
    loaded: list[RuleSet] = []
    problems: list[Diagnostic] = []
    for paths in (old_paths, new_paths):
        try:
            loaded.append(load_rules(paths, installed_operators()))
        except RuleValidationError as exc:
            problems.extend(_relabelled(d, relabel) for d in exc.diagnostics)
    if problems:
        raise RuleValidationError(list(set(problems)))
    return loaded[0], loaded[1]


def _relabelled(problem: Diagnostic, relabel: Mapping[str, str]) -> Diagnostic:
    """A problem of a copy made from git, named as in git: where it is, and any file its
    message points to (a second definition names the first)."""
    message = problem.message
    for copy in sorted(relabel, key=len, reverse=True):
        message = message.replace(copy, relabel[copy])
    return dataclasses.replace(
        problem, path=relabel.get(problem.path, problem.path), message=message
    )


def _writeback_keys(config_path: str) -> dict[str, frozenset[str]]:
    """The keys each source of bridge.yaml writes back, read from the checked file as
    written: building the connectors would read their secrets, and a diff needs none."""
    from bridge.writeback.values import split_writeback_fields  # noqa: PLC0415

    config = config_from(config_path)
    keys: dict[str, frozenset[str]] = {}
    for source in config.sources:
        writeback = source.settings.get("writeback")
        fields = writeback.get("fields") if isinstance(writeback, Mapping) else None
        targets, _ = split_writeback_fields(fields if isinstance(fields, Mapping) else {})
        keys[source.name] = frozenset(targets)
    return keys


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        # Fixed arguments, no shell; REF was checked not to start with "-".
        return subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607 - git from PATH, as the user runs it
            cwd=cwd,
            capture_output=True,
            check=False,
            timeout=_GIT_TIMEOUT,
        )
    except FileNotFoundError:
        raise fail("--base: git is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise fail(f"--base: git {args[0]} took longer than {_GIT_TIMEOUT:.0f}s") from None


def _git_error(process: subprocess.CompletedProcess[bytes]) -> str:
    lines = process.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"git exited with {process.returncode}"


def _rules_at_revision(
    base: str, new_paths: Sequence[str], scratch: Path, relabel: dict[str, str]
) -> tuple[list[str], list[str]]:
    """The NEW paths' rule files as committed at REF, copied under ``scratch``; and their
    names as ``REF:path``, which ``relabel`` maps the copies to for diagnostics.

    Copies rather than text in memory: ``load_rules`` then reads them exactly as it reads
    NEW (a folder's *.yaml in name order, not recursive), and the digest, taken from the
    content only, is the one ``rules check`` prints for that revision.
    """
    kind, _, ref = base.partition(":")
    if kind != "git" or not ref or ref.startswith("-"):
        raise fail(f"--base {base!r}: write git:REF, e.g. git:main or git:HEAD~1")
    old_paths: list[str] = []
    labels: list[str] = []
    for index, entry in enumerate(new_paths):
        path = Path(entry).resolve()
        where = path if path.is_dir() else path.parent
        top = _git(["rev-parse", "--show-toplevel"], where)
        if top.returncode != 0:
            raise fail(
                f"{entry} is not in a git repository; --base reads the old rules from git "
                "(name OLD and NEW instead)"
            )
        root = Path(top.stdout.decode("utf-8", "replace").strip()).resolve()
        commit = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
        if commit.returncode != 0:
            raise fail(f"--base: no revision {ref!r} in the git repository {root}")
        sha = commit.stdout.decode().strip()
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            raise fail(f"{entry} is not inside the git repository {root}") from None
        rel = "" if rel == "." else rel
        label = f"{ref}:{rel or '.'}"
        spec = f"{sha}:{rel}"
        kind_of = _git(["cat-file", "-t", spec], root)
        if kind_of.returncode != 0:
            raise fail(f"{entry} did not exist at {ref} (--base {base}); nothing to compare with")
        home = scratch / str(index)
        if kind_of.stdout.strip() == b"tree":
            folder = home / (path.name or "root")
            folder.mkdir(parents=True)
            listing = _git(["ls-tree", "-z", spec], root)
            if listing.returncode != 0:
                raise fail(f"--base: cannot list {label}: {_git_error(listing)}")
            for record in listing.stdout.split(b"\0"):
                meta, _, name_bytes = record.partition(b"\t")
                mode, _, rest = meta.partition(b" ")
                name = name_bytes.decode("utf-8", "surrogateescape")
                if not rest.startswith(b"blob ") or mode not in (b"100644", b"100755"):
                    continue
                # A tree entry is one name; a crafted one with a "/" must not write elsewhere.
                if Path(name).suffix not in RULE_SUFFIXES or "/" in name or "\\" in name:
                    continue
                target = folder / name
                relabel[str(target)] = f"{ref}:{rel}/{name}" if rel else f"{ref}:{name}"
                _git_blob(rest.split(b" ", 1)[1].decode(), root, target, relabel[str(target)])
            relabel[str(folder)] = label
            old_paths.append(str(folder))
        else:
            home.mkdir(parents=True)
            target = home / path.name
            _git_blob(spec, root, target, label)
            relabel[str(target)] = label
            old_paths.append(str(target))
        labels.append(label)
    return old_paths, labels


def _git_blob(spec: str, root: Path, target: Path, label: str) -> None:
    blob = _git(["cat-file", "blob", spec], root)
    if blob.returncode != 0:
        raise fail(f"--base: cannot read {label}: {_git_error(blob)}")
    target.write_bytes(blob.stdout)


def _shown(value: Any) -> str:
    """A KPI value as people read it (unescaped): JSON's words, instants with a ``Z``, and
    "—" where the rule set does not compute the KPI at all."""
    if value is ABSENT:
        return "—"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float):
        return _number(value)
    return str(json_value(value))


def _number(value: float, sign: bool = False) -> str:
    """Four decimals, or four significant digits below 1: a tiny change never shows as 0."""
    spec = ("+" if sign else "") + ".15g"
    text = format(value, spec[:-3] + "4g") if 0 < abs(value) < 1 else format(round(value, 4), spec)
    return "0" if text in ("-0", "+0") else text


def _change_text(change: ValueChange) -> str:
    text = f"{change.key}: {_shown(change.old)} → {_shown(change.new)}"
    return text if change.delta is None else f"{text} ({_number(change.delta, sign=True)})"


def _decision_text(value: str | None, field: str) -> str:
    if value is None:
        return "(default)" if field == "rule" else "—"
    return value


def _headline(result: RuleDiff) -> str:
    """Numbers only, no data: safe as markup and as Markdown."""
    total = result.compared
    if not result.changed:
        return f"No change: the new rules decide and compute the same for all {total} items."
    return (
        f"{result.count('work_type')} of {total} items change class, "
        f"{result.count('phase')} change phase, {result.count('rule')} change their deciding "
        f"rule; {result.kpi_items} change KPI values."
    )


def _print_diff(result: RuleDiff, old_labels: Sequence[str], new_labels: Sequence[str]) -> None:
    stdout.print(f"[bold]{_headline(result)}[/]")
    stdout.print(
        f"[dim]old {plain(', '.join(old_labels))} (digest {result.old_digest}) → new "
        f"{plain(', '.join(new_labels))} (digest {result.new_digest}) at {iso(result.now)}[/]"
    )
    matrix = Table(title="work type transitions (old ↓, new →)", header_style="bold")
    matrix.add_column("old \\ new")
    for work_type in WORK_TYPES:
        matrix.add_column(work_type, justify="right")
    for old, row in result.matrix.items():
        matrix.add_row(
            old,
            *(
                f"[dim]{count}[/]" if new == old or not count else f"[bold]{count}[/]"
                for new, count in row.items()
            ),
        )
    stdout.print(matrix)
    decided = [item for item in result.items if item.changed]
    if decided:
        table = Table(title="items whose decision changes", header_style="bold")
        for column in ("key", "type", "work type", "phase", "rule"):
            table.add_column(column, overflow="fold")
        for item in decided:
            cells = []
            for field in DECISION_FIELDS:
                before = _decision_text(getattr(item.old, field), field)
                after = _decision_text(getattr(item.new, field), field)
                cells.append(
                    f"{plain(before)} → [bold]{plain(after)}[/]"
                    if field in item.changed
                    else f"[dim]{plain(after)}[/]"
                )
            table.add_row(plain(item.key), plain(item.type or ""), *cells)
        stdout.print(table)
    if result.kpis:
        kpis = Table(
            title="KPI values that change",
            caption="— not computed by that rule set; null: computed, an input is missing",
            header_style="bold",
        )
        kpis.add_column("KPI", overflow="fold")
        kpis.add_column("items", justify="right")
        kpis.add_column("largest changes / examples (old → new)", overflow="fold", ratio=1)
        for stats in result.kpis:
            lines = [_change_text(c) for c in (*stats.largest, *stats.examples)]
            kpis.add_row(plain(stats.kpi), str(stats.items), plain("\n".join(lines)))
        stdout.print(kpis)
    if result.sync:
        sync = Table(title="fields a sync would write differently", header_style="bold")
        sync.add_column("key", overflow="fold")
        sync.add_column("items", justify="right")
        with_sources = any(write.sources for write in result.sync)
        if with_sources:
            sync.add_column("written by", overflow="fold")
        for write in result.sync:
            extra = [plain(", ".join(write.sources))] if with_sources else []
            sync.add_row(plain(write.key), str(write.items), *extra)
        stdout.print(sync)


_MD_SPECIAL = re.compile(r"[\\`*_{}\[\]<>|#~!&]")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def _md(text: object) -> str:
    """Data as Markdown text: on one line, every character Markdown or HTML would act on
    escaped (a ``|`` would split a table cell, a backtick open code, ``<`` start a tag), and
    control characters shown as ``?`` as everywhere else."""
    flat = " ".join(printable(text).split())
    return _MD_SPECIAL.sub(lambda m: _MD_ENTITIES.get(m.group(), "\\" + m.group()), flat)


def _diff_markdown(result: RuleDiff) -> str:
    """A summary fit for a pull-request comment: the headline, the matrix and the top KPI
    changes first; the items, capped, folded away."""
    lines = [
        "### Rule change impact",
        "",
        f"**{_headline(result)}**",
        "",
        f"Rules `{result.old_digest}` → `{result.new_digest}`, evaluated at {iso(result.now)}.",
        "",
        "| old \\\\ new | " + " | ".join(WORK_TYPES) + " |",
        "|---|" + "---:|" * len(WORK_TYPES),
    ]
    lines.extend(
        f"| **{old}** | " + " | ".join(str(count) for count in row.values()) + " |"
        for old, row in result.matrix.items()
    )
    if result.kpis:
        lines += ["", "#### Top KPI changes", "", "| KPI | items | largest change |"]
        lines.append("|---|---:|---|")
        for stats in result.kpis[:_MARKDOWN_KPIS]:
            top = (stats.largest or stats.examples)[0]
            lines.append(f"| {_md(stats.kpi)} | {stats.items} | {_md(_change_text(top))} |")
        more = len(result.kpis) - _MARKDOWN_KPIS
        lines += [
            "",
            (f"…and {more} more KPIs. " if more > 0 else "")
            + "— not computed by that rule set; null: computed, an input is missing.",
        ]
    if result.sync:
        shown = ", ".join(f"{_md(f.key)} ({f.items})" for f in result.sync)
        lines += ["", f"Fields a sync would write differently: {shown}."]
    decided = [item for item in result.items if item.changed]
    if decided:
        lines += [
            "",
            f"<details><summary>Items whose decision changes ({len(decided)})</summary>",
            "",
            "| item | type | work type | phase | rule |",
            "|---|---|---|---|---|",
        ]
        for item in decided[:_MARKDOWN_ITEMS]:
            cells = []
            for field in DECISION_FIELDS:
                before = _md(_decision_text(getattr(item.old, field), field))
                after = _md(_decision_text(getattr(item.new, field), field))
                cells.append(f"{before} → **{after}**" if field in item.changed else after)
            lines.append(f"| {_md(item.key)} | {_md(item.type or '')} | {' | '.join(cells)} |")
        if len(decided) > _MARKDOWN_ITEMS:
            lines += ["", f"…and {len(decided) - _MARKDOWN_ITEMS} more (see `--format json`)."]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
