"""Running rule tests, in the spirit of ``promtool test rules``.

A test file is YAML with a top-level ``tests:`` list. Each case gives an item (inline
normalized fields, an inline export document, or an export file plus a key), an optional
``now``, and what the rules must decide. Results carry readable differences; coverage says
which rules no case exercised. Test files are checked for shape like rule files, with
locations, so a typo in a test is reported rather than silently passing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, cast

from jsonschema import Draft202012Validator

from bridge.connectors.base import ExportFormat
from bridge.connectors.files import export_format, read_export
from bridge.errors import BridgeError, Diagnostic, InputError, RuleValidationError
from bridge.model import FIELD_TYPES, PHASES, STATUS_CATEGORIES, WORK_TYPES, FieldChange, WorkItem
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules
from bridge.rules.operators import BUILTIN_OPERATORS, OperatorSpec
from bridge.rules.source import SourceDoc, parse_yaml
from bridge.rules.validate import schema_errors_for
from bridge.timefmt import parse_date_or_instant, parse_instant

__all__ = [
    "CaseResult",
    "FileResult",
    "KpiCheck",
    "discover_test_files",
    "item_from_fields",
    "run_test_file",
    "test_file_schema",
]

KpiCheck = Callable[[WorkItem, RuleSet, Any, datetime, Mapping[str, Any]], list[str]]


_ITEM_VALUE_SCHEMAS: Mapping[str, Mapping[str, Any]] = {
    "string": {"type": ["string", "number", "null"]},
    "category": {"enum": [*STATUS_CATEGORIES, None]},
    "list": {"type": "array", "items": {"type": ["string", "number"]}},
    "number": {"type": ["number", "null"]},
    "instant": {"type": ["string", "null"]},
    "date": {"type": ["string", "null"]},
}


@cache
def test_file_schema() -> Mapping[str, Any]:
    """The shape of a rule-test file, built from the model so it never lags behind it."""
    item_properties: dict[str, Any] = {
        name: _ITEM_VALUE_SCHEMAS[kind] for name, kind in FIELD_TYPES.items()
    }
    item_properties["raw"] = {"type": "object"}
    item_properties["history"] = {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["at"],
            "properties": {
                "at": {"type": "string"},
                "field": {"type": "string"},
                "from": {"type": ["string", "null"]},
                "to": {"type": ["string", "null"]},
                "author": {"type": ["string", "null"]},
            },
        },
    }
    phase = {"enum": [*PHASES, None]}
    case = {
        "type": "object",
        "additionalProperties": False,
        "required": ["expect"],
        "properties": {
            "name": {"type": "string"},
            "now": {"type": "string"},
            "item": {
                "type": "object",
                "additionalProperties": False,
                "properties": item_properties,
            },
            "export": {"type": "object"},
            "input": {"type": "string"},
            "key": {"type": "string"},
            "expect": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "work_type": {"enum": list(WORK_TYPES)},
                    "phase": phase,
                    "rule": {"type": ["string", "null"]},
                    "kpis": {"type": "object"},
                },
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["tests"],
        "properties": {
            "description": {"type": "string"},
            "rules": {"type": ["string", "array"], "items": {"type": "string"}},
            "now": {"type": "string"},
            "tests": {"type": "array", "minItems": 1, "items": case},
        },
    }


@cache
def _schema_validator() -> Draft202012Validator:
    return Draft202012Validator(test_file_schema())


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One test case: passed, or the differences that made it fail."""

    name: str
    where: str
    failures: tuple[str, ...]
    rule: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class FileResult:
    """One test file: its cases, or the problems that kept it from running."""

    path: str
    cases: list[CaseResult] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    rules_covered: set[str] = field(default_factory=set)
    rule_set: RuleSet | None = None

    @property
    def passed(self) -> bool:
        return not self.problems and all(case.passed for case in self.cases)


def discover_test_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Test files under the paths: YAML files with a top-level ``tests:`` key."""
    found: list[Path] = []
    problems: list[Diagnostic] = []
    for entry in paths:
        path = Path(entry)
        if path.is_file():
            found.append(path)
            continue
        if not path.is_dir():
            problems.append(Diagnostic(str(path), 0, 0, "no such file or folder"))
            continue
        candidates = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        tests = [p for p in candidates if _looks_like_test_file(p)]
        if not tests:
            problems.append(
                Diagnostic(
                    str(path),
                    0,
                    0,
                    "no rule tests here (YAML files with a "
                    "top-level `tests:` list); add some under tests/",
                )
            )
        found.extend(tests)
    return found, problems


def _looks_like_test_file(path: Path) -> bool:
    try:
        head = path.read_text("utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^tests\s*:", head, re.MULTILINE) is not None


# -- items from test data -------------------------------------------------------------------------

_WORK_ITEM_FIELDS = {f.name for f in fields(WorkItem)}


def _convert(name: str, value: Any) -> Any:
    kind = FIELD_TYPES.get(name)
    if value is None:
        return None
    if kind == "list":
        if not isinstance(value, list):
            raise ValueError(f"{name} must be a list")
        return tuple(str(v) for v in value)
    if kind == "instant":
        return parse_instant(str(value))
    if kind == "date":
        return parse_date_or_instant(str(value))
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, not {value!r}")
        return float(value)
    return str(value) if kind in ("string", "category") else value


def item_from_fields(data: Mapping[str, Any]) -> WorkItem:
    """A WorkItem from inline test fields (dates as ISO strings); raises ValueError."""
    unknown = [k for k in data if k not in _WORK_ITEM_FIELDS]
    if unknown:
        raise ValueError(f"unknown item field {unknown[0]!r}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "history":
            values[name] = tuple(_change(c) for c in value or [])
            # The author gave the whole history: a state without a recorded change has held
            # since creation (not since `updated`), as for a Jira changelog.
            values["history_complete"] = True
        elif name == "raw":
            values[name] = value or {}
        else:
            values[name] = _convert(name, value)
    values.setdefault("key", "TEST-1")
    values.setdefault("system", "test")
    if values.get("status_category") not in (None, *STATUS_CATEGORIES):
        *first, last = STATUS_CATEGORIES
        raise ValueError(f"status_category must be {', '.join(first)} or {last}")
    return WorkItem(**values)


def _change(data: Mapping[str, Any]) -> FieldChange:
    return FieldChange(
        at=parse_instant(str(data["at"])),
        field=str(data.get("field", "status")),
        from_value=None if data.get("from") is None else str(data["from"]),
        to_value=None if data.get("to") is None else str(data["to"]),
        author=data.get("author"),
    )


# -- running --------------------------------------------------------------------------------------


def _rules_paths(doc: SourceDoc, test_path: Path) -> list[Path]:
    declared = doc.data.get("rules") if isinstance(doc.data, Mapping) else None
    if declared is None:
        parent = test_path.parent
        return [parent.parent if parent.name == "tests" else parent]
    entries = declared if isinstance(declared, list) else [declared]
    return [(test_path.parent / str(entry)).resolve() for entry in entries]


def _case_item(case: Mapping[str, Any], base: Path, formats: Sequence[ExportFormat]) -> WorkItem:
    if "item" in case:
        return item_from_fields(case["item"])
    key = case.get("key")
    if "export" in case:
        doc = case["export"]
        fmt = export_format(doc, formats)
        if fmt is None:
            raise ValueError(
                "the inline export is not a shape bridge knows (Jira "
                '{"issues": [...]} or ServiceNow {"result": [...]})'
            )
        items = list(fmt.read(doc, "<inline export>"))
    else:
        path = (base / str(case["input"])).resolve()
        try:
            items = list(read_export(path, formats))
        except InputError as exc:
            raise ValueError(str(exc)) from None
    if key is None:
        if len(items) != 1:
            raise ValueError(f"the export holds {len(items)} items; say which with key:")
        return items[0]
    for item in items:
        if item.key == key:
            return item
    raise ValueError(f"no item with key {key!r} in the export")


def _case_now(case: Mapping[str, Any], file_now: datetime | None) -> datetime:
    if "now" in case:
        return parse_instant(str(case["now"]))
    if file_now is not None:
        return file_now
    raise ValueError("no `now:` for this test or the file; tests must pin the time")


def _compare(
    expect: Mapping[str, Any], work_type: str, phase: str | None, rule: str | None
) -> list[str]:
    failures = []
    for name, actual in (("work_type", work_type), ("phase", phase), ("rule", rule)):
        if name in expect and expect[name] != actual:
            failures.append(f"{name}: expected {expect[name]!r}, got {actual!r}")
    return failures


def run_test_file(
    path: Path,
    formats: Sequence[ExportFormat],
    *,
    name_filter: re.Pattern[str] | None = None,
    kpi_check: KpiCheck | None = None,
    rules_cache: dict[tuple[str, ...], RuleSet | RuleValidationError] | None = None,
    operators: Sequence[OperatorSpec] = BUILTIN_OPERATORS,
) -> FileResult:
    """Run every case of one test file against the rules it names.

    ``operators`` are those the rules may use (a plugin's too, when the caller passes them):
    the rules under test are loaded exactly as ``rules check`` loads them.
    """
    result = FileResult(str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        result.problems.append(Diagnostic(str(path), 0, 0, f"cannot read: {exc.strerror}"))
        return result
    doc, problems = parse_yaml(str(path), data)
    result.problems.extend(problems)
    if doc is None:
        return result
    result.problems.extend(schema_errors_for(doc, _schema_validator()))
    if result.problems:
        return result
    rule_paths = _rules_paths(doc, path)
    cache_key = tuple(str(p) for p in rule_paths)
    cache_ = rules_cache if rules_cache is not None else {}
    if cache_key not in cache_:
        try:
            cache_[cache_key] = load_rules(rule_paths, operators)
        except RuleValidationError as exc:
            cache_[cache_key] = exc
    loaded = cache_[cache_key]
    if isinstance(loaded, RuleValidationError):
        result.problems.append(
            doc.diag(("rules",), "the rules under test are invalid (run `bridge rules check`):")
        )
        result.problems.extend(loaded.diagnostics)
        return result
    rule_set = result.rule_set = loaded
    engine = Engine(rule_set)
    file_now = None
    if "now" in doc.data:
        file_now = parse_instant(str(doc.data["now"]))
    for index, case in enumerate(doc.data["tests"]):
        name = str(case.get("name", f"test {index + 1}"))
        if name_filter is not None and not name_filter.search(name):
            continue
        where = f"{doc.path}:{doc.loc(('tests', index)).line}"
        started = datetime.now(UTC)
        sources = [k for k in ("item", "export", "input") if k in case]
        if len(sources) != 1:
            result.cases.append(
                CaseResult(
                    name,
                    where,
                    (
                        "give exactly one of item:, export: or input: (found "
                        f"{', '.join(sources) or 'none'})",
                    ),
                )
            )
            continue
        try:
            item = _case_item(case, path.parent, formats)
            now = _case_now(case, file_now)
        except (ValueError, KeyError, BridgeError) as exc:
            result.cases.append(CaseResult(name, where, (f"cannot build the item: {exc}",)))
            continue
        classification = engine.classify(item, now)
        expect = cast(Mapping[str, Any], case.get("expect", {}))
        failures = _compare(
            expect, classification.work_type, classification.phase, classification.rule
        )
        if "kpis" in expect:
            if kpi_check is None:
                failures.append("kpis: this bridge cannot check KPI values")
            else:
                failures.extend(kpi_check(item, rule_set, classification, now, expect["kpis"]))
        if classification.rule is not None:
            result.rules_covered.add(classification.rule)
        elapsed = (datetime.now(UTC) - started).total_seconds()
        result.cases.append(CaseResult(name, where, tuple(failures), classification.rule, elapsed))
    return result


def expect_problems(paths: Iterable[str | Path]) -> list[Diagnostic]:
    """Misspelled KPI names in the ``expect: {kpis: ...}`` of the rule tests under
    ``paths``, with did-you-mean, at their line: for ``rules check``, so that a typo is
    found when the rules are checked, not as a confusing failure when the tests run."""
    from bridge.writeback.values import writeback_key_problem  # noqa: PLC0415 - KPI names

    files, _ = discover_test_files(paths)
    problems: list[Diagnostic] = []
    for path in files:
        doc, _ = parse_yaml(str(path), path.read_bytes())
        if doc is None or not isinstance(doc.data, Mapping):
            continue  # unreadable test files are reported when the tests run
        cases = doc.data.get("tests")
        for index, case in enumerate(cases if isinstance(cases, list) else []):
            expect = case.get("expect") if isinstance(case, Mapping) else None
            kpis = expect.get("kpis") if isinstance(expect, Mapping) else None
            for key in kpis if isinstance(kpis, Mapping) else ():
                why = writeback_key_problem(str(key))
                if why is None:
                    continue
                where = doc.keys.get(("tests", index, "expect", "kpis", key))
                line, col = (where.line, where.col) if where else (0, 0)
                problems.append(Diagnostic(str(path), line, col, f"expect.kpis: {why}"))
    return sorted(problems)
