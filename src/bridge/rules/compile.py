"""Parsed rule files → a :class:`~bridge.rules.ast.RuleSet`, checking meaning on the way.

The JSON Schema has already checked shape; this pass checks what a schema cannot: that a
field exists, that an operator fits the field's type, that a regex compiles, that ids are
unique across files and that every calendar and SLA reference resolves. Checking and
building are one walk, so the checks can never drift from what is evaluated. The walk is
defensive about types (a file with schema errors is still walked to find more problems).
"""

from __future__ import annotations

import difflib
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from jsonschema import Draft202012Validator

from bridge.errors import Diagnostic
from bridge.model import (
    CATEGORY_VALUES,
    FIELD_TYPES,
    PHASES,
    WORK_TYPES,
    FieldType,
    Phase,
    WorkType,
)
from bridge.rules.ast import (
    AllOf,
    AnyOf,
    AtRisk,
    Cond,
    FieldRef,
    KpiConfig,
    Leaf,
    NotOf,
    Outcome,
    PhaseMap,
    Rule,
    RuleSet,
    SlaDef,
)
from bridge.rules.operators import OperatorSpec, fold
from bridge.rules.regex import compile_regex
from bridge.rules.source import Path_, SourceDoc
from bridge.timefmt import DurationTooLongError, parse_duration

__all__ = ["KPI_GROUPS", "CalendarChecker", "compile_rule_set", "did_you_mean"]

# KPI groups a rule may list in ``then.kpis`` besides ``sla.<name>`` (see KPIS.md).
KPI_GROUPS: tuple[str, ...] = ("evm", "effort", "schedule", "cost", "csat", "tco")

# The longest SLA goal: a clock is walked through its calendar's working time, so a target
# of decades would cost every evaluation a walk through decades of calendar.
MAX_SLA_TARGET = timedelta(days=365)
# ... and the calendar time it may take to reach it, whatever the calendar's hours.
MAX_SLA_SPAN = timedelta(days=3650)

# Field types whose values are text, so that ``ignore_case`` changes what matches.
_TEXT_TYPES = frozenset(("string", "category", "list"))

# KPI groups that measure one kind of work: asked of the other kind, they are computed from
# inputs that kind of item rarely has (CSAT of an epic, the earned value of an incident) and
# end as nulls or misleading numbers. ``cost`` fits both; ``sla.<name>`` is service work.
_SERVICE_KPIS = frozenset(("csat", "tco"))
_PROJECT_KPIS = frozenset(("evm", "effort", "schedule"))

# Operators that compare text, so ``ignore_case`` means something for them.
_CASE_OPERATORS = frozenset(
    ("equals", "not_equals", "in", "not_in", "contains", "contains_any", "contains_all", "matches")
)

# When an operator does not fit a field's type, the operator that probably was meant.
_INSTEAD: Mapping[tuple[str, str], str] = {
    ("list", "equals"): "contains",
    ("list", "in"): "contains_any",
    ("list", "not_in"): "contains_any inside not:",
    ("list", "not_equals"): "contains inside not:",
    ("instant", "equals"): "gte and lte",
    ("date", "equals"): "gte and lte",
    ("string", "gt"): "matches or in",
}

_TYPE_WORDS: Mapping[str, str] = {
    "string": "text",
    "category": "one of a fixed set",
    "list": "a list",
    "number": "a number",
    "instant": "a date-time",
    "date": "a date",
}

CalendarChecker = Callable[[Mapping[str, Any]], Sequence[tuple[Path_, str]]]


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """``; did you mean 'x'?`` for a close option, else an empty string."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _where(doc: SourceDoc, path: Path_, *, key: bool = False) -> str:
    loc = doc.loc(path, key=key)
    return f"{doc.path}:{loc.line}:{loc.col}"


@dataclass
class _Context:
    operators: Mapping[str, OperatorSpec]
    problems: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)

    def error(self, doc: SourceDoc, path: Path_, message: str, *, key: bool = False) -> None:
        self.problems.append(doc.diag(path, message, key=key))

    def warn(self, doc: SourceDoc, path: Path_, message: str, *, key: bool = False) -> None:
        self.warnings.append(doc.diag(path, message, key=key))


def _resolve_field(ctx: _Context, doc: SourceDoc, path: Path_, name: Any) -> FieldRef | None:
    if not isinstance(name, str):
        return None  # the schema reports the type
    if name.startswith("raw."):
        segments = tuple(name[4:].split("."))
        if not all(segments):
            ctx.error(
                doc,
                path,
                f"field {name!r} has an empty path segment; write e.g. "
                "raw.fields.customfield_10050",
            )
            return None
        return FieldRef(name, None, segments)
    if name in FIELD_TYPES:
        return FieldRef(name, FIELD_TYPES[name])
    hint = did_you_mean(name, list(FIELD_TYPES))
    if not hint:
        hint = (
            f" (fields: {', '.join(FIELD_TYPES)}; a field of the system's own record is "
            "raw.<path>, e.g. raw.fields.customfield_10050)"
        )
    ctx.error(doc, path, f"unknown field {name!r}{hint}")
    return None


def _check_value_type(field_type: FieldType, op: str, value: Any) -> str | None:
    """A message when a value cannot be compared with a field of this type."""
    values = value if isinstance(value, list) else [value]
    if op in ("exists", "older_than", "newer_than", "matches"):
        return None
    if field_type in ("string", "list", "category"):
        for v in values:
            if not isinstance(v, str):
                return (
                    f"{v!r} is not text, but the field holds {_TYPE_WORDS[field_type]}; "
                    f"quote it: '{v}'"
                )
    elif field_type == "number":
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return f"{v!r} is not a number, but the field holds numbers"
    return None


def _compile_leaf(
    ctx: _Context, doc: SourceDoc, node: Mapping[str, Any], path: Path_
) -> Cond | None:
    op_names = [k for k in node if k in ctx.operators]
    other = [k for k in node if k not in ctx.operators and k not in ("field", "ignore_case")]
    if not op_names:
        if not other and "field" in node:
            ctx.error(
                doc,
                path,
                f"condition on {node['field']!r} has no operator; add one of: "
                f"{', '.join(ctx.operators)}",
            )
        elif other:
            _resolve_field(ctx, doc, (*path, "field"), node.get("field"))
        return None
    if len(op_names) > 1:
        ctx.error(
            doc,
            (*path, op_names[1]),
            f"a condition takes one operator, this one has {len(op_names)} "
            f"({', '.join(op_names)}); combine several conditions with all:",
            key=True,
        )
        return None
    ref = _resolve_field(ctx, doc, (*path, "field"), node.get("field"))
    if ref is None or other:
        return None  # unknown keys / a missing field are reported by the schema
    op_name = op_names[0]
    spec = ctx.operators[op_name]
    value = node[op_name]
    value_path = (*path, op_name)
    ignore_case = node.get("ignore_case") is True
    if ignore_case and op_name not in _CASE_OPERATORS:
        ctx.error(
            doc,
            (*path, "ignore_case"),
            f"ignore_case does not apply to {op_name}; remove it",
            key=True,
        )
        return None
    if ref.type is not None:
        if ref.type not in spec.field_types:
            instead = _INSTEAD.get((ref.type, op_name))
            hint = (
                f"; use {instead}"
                if instead
                else (
                    "; operators for it: "
                    + ", ".join(n for n, s in ctx.operators.items() if ref.type in s.field_types)
                )
            )
            ctx.error(
                doc,
                value_path,
                f"operator {op_name} does not apply to {ref.name} ({_TYPE_WORDS[ref.type]}){hint}",
                key=True,
            )
            return None
        if ignore_case and ref.type not in _TEXT_TYPES:
            ctx.warn(
                doc,
                (*path, "ignore_case"),
                f"ignore_case has no effect here: {ref.name} is {_TYPE_WORDS[ref.type]}, not "
                "text; remove it",
                key=True,
            )
            ignore_case = False
        problem = _check_value_type(ref.type, op_name, value) if spec.builtin else None
        if problem:
            ctx.error(doc, value_path, problem)
            return None
        if ref.type == "category":
            allowed = CATEGORY_VALUES[ref.name]
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str) and v not in allowed:
                    ctx.error(
                        doc,
                        value_path,
                        f"{v!r} is not a {ref.name}{did_you_mean(v, allowed)}"
                        f" (values: {', '.join(allowed)})",
                    )
                    return None
    if not _value_fits(spec, value):
        return None  # the schema reports it
    try:
        if ignore_case and op_name == "matches" and spec.builtin and isinstance(value, str):
            # Lower-casing a pattern changes it (\W is not \w): compile it case-insensitive,
            # by flag rather than a "(?i)" prefix, so messages quote the pattern as written.
            prepared = compile_regex(value, ignore_case=True)
            ignore_case = False
        elif ignore_case and op_name == "matches":
            prepared = spec.prepare(f"(?i){value}", ref.type)
            ignore_case = False
        else:
            prepared = spec.prepare(fold(value) if ignore_case else value, ref.type)
    except (ValueError, TypeError, OverflowError) as exc:
        ctx.error(doc, value_path, str(exc))
        return None
    return Leaf(ref, spec, node[op_name], prepared, ignore_case, _where(doc, path))


_VALUE_VALIDATORS: dict[str, Draft202012Validator] = {}


def _value_fits(spec: OperatorSpec, value: Any) -> bool:
    validator = _VALUE_VALIDATORS.get(spec.name)
    if validator is None or validator.schema != spec.value_schema:
        validator = _VALUE_VALIDATORS[spec.name] = Draft202012Validator(spec.value_schema)
    return bool(validator.is_valid(value))


def compile_condition(ctx: _Context, doc: SourceDoc, node: Any, path: Path_) -> Cond | None:
    if not isinstance(node, Mapping):
        return None
    for combinator in ("all", "any"):
        if combinator in node:
            children_nodes = node[combinator]
            if not isinstance(children_nodes, list):
                return None
            children = [
                compile_condition(ctx, doc, child, (*path, combinator, i))
                for i, child in enumerate(children_nodes)
            ]
            if any(c is None for c in children) or not children:
                return None
            kids = tuple(cast(list[Cond], children))
            return (
                AllOf(kids, _where(doc, path))
                if combinator == "all"
                else AnyOf(kids, _where(doc, path))
            )
    if "not" in node:
        child = compile_condition(ctx, doc, node["not"], (*path, "not"))
        return None if child is None else NotOf(child, _where(doc, path))
    return _compile_leaf(ctx, doc, node, path)


def _compile_phase(ctx: _Context, doc: SourceDoc, node: Any, path: Path_) -> PhaseMap | None:
    if isinstance(node, str):
        return PhaseMap(constant=cast(Phase, node)) if node in PHASES else None
    if not isinstance(node, Mapping):
        return None
    by_status = node.get("by_status") or {}
    by_category = node.get("by_status_category") or {}
    default = node.get("default")
    if not isinstance(by_status, Mapping) or not isinstance(by_category, Mapping):
        return None
    return PhaseMap(
        by_status={str(k): cast(Phase, v) for k, v in by_status.items() if v in PHASES},
        by_status_category={str(k): cast(Phase, v) for k, v in by_category.items() if v in PHASES},
        default=cast(Phase, default) if default in PHASES else None,
    )


@dataclass
class _Names:
    """Names defined across all files, for reference checks and duplicate detection."""

    slas: dict[str, str] = field(default_factory=dict)
    calendars: dict[str, str] = field(default_factory=dict)
    calendar_specs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    rule_ids: dict[str, str] = field(default_factory=dict)
    default_at: str | None = None


def _kpi_misfit(kpi: str, work_type: Any) -> str | None:
    """Why a KPI group does not fit the work type an outcome classifies as, or None."""
    if work_type == "project" and (kpi in _SERVICE_KPIS or kpi.startswith("sla.")):
        return (
            f"{kpi} measures service work, but this outcome classifies items as project work; "
            "remove it from kpis or set work_type: service"
        )
    if work_type == "service" and kpi in _PROJECT_KPIS:
        return (
            f"{kpi} measures project work, but this outcome classifies items as service work; "
            "remove it from kpis or set work_type: project"
        )
    return None


def _compile_outcome(
    ctx: _Context, doc: SourceDoc, node: Any, path: Path_, names: _Names
) -> Outcome | None:
    if not isinstance(node, Mapping):
        return None
    work_type = node.get("work_type")
    phase = None
    if "phase" in node:
        if work_type in ("service", "unclassified"):
            ctx.error(
                doc,
                (*path, "phase"),
                f"phase applies to project work only; remove it or "
                f"set work_type: project (this outcome is {work_type})",
                key=True,
            )
        phase = _compile_phase(ctx, doc, node["phase"], (*path, "phase"))
    kpis = node.get("kpis") or []
    ok_kpis: list[str] = []
    if isinstance(kpis, list):
        for i, kpi in enumerate(kpis):
            if not isinstance(kpi, str):
                continue
            if kpi.startswith("sla."):
                sla_name = kpi[4:]
                if sla_name not in names.slas:
                    hint = did_you_mean(sla_name, list(names.slas))
                    known = ", ".join(names.slas) or "none defined"
                    ctx.error(
                        doc,
                        (*path, "kpis", i),
                        f"unknown SLA {sla_name!r}{hint} (SLAs: {known}; define it under slas:)",
                    )
                    continue
            elif kpi not in KPI_GROUPS:
                options = [*KPI_GROUPS, *(f"sla.{n}" for n in names.slas)]
                ctx.error(
                    doc,
                    (*path, "kpis", i),
                    f"unknown KPI {kpi!r}{did_you_mean(kpi, options)} (KPIs: {', '.join(options)})",
                )
                continue
            ok_kpis.append(kpi)
            misfit = _kpi_misfit(kpi, work_type)
            if misfit:
                ctx.warn(doc, (*path, "kpis", i), misfit)
    if work_type not in WORK_TYPES:
        return None  # the schema reports it
    return Outcome(cast(WorkType, work_type), phase, tuple(ok_kpis))


def _check_calendar(
    ctx: _Context, doc: SourceDoc, path: Path_, calendar: Any, names: _Names
) -> None:
    if isinstance(calendar, str) and calendar not in names.calendars:
        hint = did_you_mean(calendar, list(names.calendars))
        known = ", ".join(names.calendars) or "none defined"
        ctx.error(
            doc,
            path,
            f"unknown calendar {calendar!r}{hint} (calendars: {known}; define it under calendars:)",
        )


def _calendar_span_problem(
    text: str, target: float, name: str, spec: Mapping[str, Any]
) -> str | None:
    """A message when a target in working time would take the calendar over
    ``MAX_SLA_SPAN`` to reach: 8760h at one working hour a week is 168 years, which every
    evaluation of a running clock would walk (holidays aside, so this errs on the kind side).
    """
    from bridge.kpi.calendar_spec import calendar_from_spec  # noqa: PLC0415 - startup light

    try:
        week = calendar_from_spec(name, spec).week
    except ValueError:
        return None  # the calendar's own problems are reported where it is defined
    weekly = sum(end - start for day in week for start, end in day)
    if weekly <= 0 or target / weekly * 7 <= MAX_SLA_SPAN.days:
        return None
    years = target / weekly * 7 / 365
    return (
        f"an SLA target of {text} takes about {years:,.0f} years of calendar {name!r} "
        f"({weekly / 3600:g} h of working time a week); the most is "
        f"{MAX_SLA_SPAN.days // 365} years: shorten the target or give the calendar more hours"
    )


def _compile_sla(
    ctx: _Context, doc: SourceDoc, name: str, node: Any, path: Path_, names: _Names
) -> SlaDef | None:
    if not isinstance(node, Mapping):
        return None
    calendar = node.get("calendar")
    _check_calendar(ctx, doc, (*path, "calendar"), calendar, names)
    conds: dict[str, Cond | None] = {}
    for part in ("pause", "stop", "cancel"):
        if part in node:
            conds[part] = compile_condition(ctx, doc, node[part], (*path, part))
    start_node = node.get("start", {"on": "created"})
    start_on_created = isinstance(start_node, Mapping) and start_node.get("on") == "created"
    start = None if start_on_created else compile_condition(ctx, doc, start_node, (*path, "start"))
    goals: list[tuple[Cond | None, float]] = []
    goal_nodes = node.get("goals")
    if isinstance(goal_nodes, list):
        for i, goal in enumerate(goal_nodes):
            if not isinstance(goal, Mapping):
                continue
            when = None
            if "when" in goal:
                when = compile_condition(ctx, doc, goal["when"], (*path, "goals", i, "when"))
            target_path = (*path, "goals", i, "target")
            try:
                target = parse_duration(str(goal.get("target", ""))).total_seconds()
            except DurationTooLongError:
                target = math.inf
            except ValueError:
                continue  # the schema's pattern reports it
            if target <= 0:
                ctx.error(doc, target_path, "an SLA target must be longer than 0")
            elif target > MAX_SLA_TARGET.total_seconds():
                hours = int(MAX_SLA_TARGET.total_seconds() // 3600)
                ctx.error(
                    doc,
                    target_path,
                    f"an SLA target of {goal.get('target')} is over a year of working time; "
                    f"write at most {hours}h",
                )
            elif isinstance(calendar, str) and calendar in names.calendar_specs:
                problem = _calendar_span_problem(
                    str(goal.get("target")), target, calendar, names.calendar_specs[calendar]
                )
                if problem:
                    ctx.error(doc, target_path, problem)
            goals.append((when, target))
        unconditional = [
            i for i, g in enumerate(goal_nodes) if isinstance(g, Mapping) and "when" not in g
        ]
        if unconditional and unconditional[0] != len(goal_nodes) - 1:
            ctx.error(
                doc,
                (*path, "goals", unconditional[0] + 1),
                "this goal can never apply: the goal before it has no `when:` and "
                "matches every item; move the catch-all goal last",
            )
    at_risk = None
    if "at_risk" in node:
        targets = [target for _, target in goals if 0 < target < math.inf]
        at_risk = _compile_at_risk(ctx, doc, node["at_risk"], (*path, "at_risk"), targets)
    native = node.get("native") or {}
    return SlaDef(
        name=name,
        goals=tuple(goals),
        where=_where(doc, path),
        calendar=calendar if isinstance(calendar, str) else None,
        source=str(node.get("source", "computed")),
        start_on_created=start_on_created,
        start=start,
        pause=conds.get("pause"),
        stop=conds.get("stop"),
        cancel=conds.get("cancel"),
        native={str(k): str(v) for k, v in native.items()} if isinstance(native, Mapping) else {},
        at_risk=at_risk,
    )


# An at-risk share must leave room on both sides: at 100 % it is the goal itself (that is
# `breaching`), under 1 % the clock would be at risk from its first minutes.
_MIN_SHARE, _MAX_SHARE = 1.0, 99.0


def _compile_at_risk(
    ctx: _Context, doc: SourceDoc, value: Any, path: Path_, targets: Sequence[float]
) -> AtRisk | None:
    """``75%`` (a share of the goal's target) or ``1h`` (working time left before the goal).

    Which goal applies is only known per item, so a duration is not checked against each
    goal (one that leaves no time before an item's goal never triggers for it); only one
    that leaves no time before even the longest goal is refused, as it could never apply.
    """
    if not isinstance(value, str):
        return None  # the schema reports the type
    text = value.strip()
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            return None  # the schema's pattern reports it
        if not _MIN_SHARE <= percent <= _MAX_SHARE:
            why = (
                "under 1% a clock is at risk from its first minutes"
                if percent < _MIN_SHARE
                else "at 100% and over it warns of nothing: the clock is breaching by then"
            )
            ctx.error(
                doc,
                path,
                f"an at-risk share of {text} is outside 1% to 99% of the goal's target ({why}); "
                "write e.g. 75%",
            )
            return None
        return AtRisk(share=percent / 100)
    try:
        before = parse_duration(text).total_seconds()
    except DurationTooLongError as exc:
        ctx.error(doc, path, str(exc))
        return None
    except ValueError:
        return None  # the schema's pattern reports it
    if before <= 0:
        ctx.error(doc, path, "an at-risk time must be longer than 0; write e.g. 1h")
        return None
    longest = max(targets, default=None)
    if longest is not None and before >= longest:
        ctx.error(
            doc,
            path,
            f"an at-risk time of {text} leaves no time before any goal of this SLA (the "
            f"longest target is {_hours(longest)}), so it could never apply; write less "
            "time, or a share of the goal's target such as 75%",
        )
        return None
    return AtRisk(before=before)


def _hours(seconds: float) -> str:
    """A target as admins write it (``4h``, ``1h30m``, ``45s``), for messages."""
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


def _compile_kpi(ctx: _Context, doc: SourceDoc, node: Any, names: _Names) -> KpiConfig | None:
    if not isinstance(node, Mapping):
        return None
    path: Path_ = ("kpi",)
    calendar = node.get("calendar")
    _check_calendar(ctx, doc, (*path, "calendar"), calendar, names)
    rates: list[tuple[Cond | None, float]] = []
    for i, entry in enumerate(node.get("rates") or []):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("rate"), int | float):
            continue
        when = None
        if "when" in entry:
            when = compile_condition(ctx, doc, entry["when"], (*path, "rates", i, "when"))
        rates.append((when, float(entry["rate"])))
    inputs: dict[str, tuple[FieldRef, ...]] = {}
    raw_inputs = node.get("inputs")
    if isinstance(raw_inputs, Mapping):
        for name, spec in raw_inputs.items():
            entries = spec if isinstance(spec, list) else [spec]
            refs = [
                _resolve_field(
                    ctx,
                    doc,
                    (*path, "inputs", name, i)
                    if isinstance(spec, list)
                    else (*path, "inputs", name),
                    entry,
                )
                for i, entry in enumerate(entries)
            ]
            inputs[str(name)] = tuple(r for r in refs if r is not None)
    cost_fields = [
        _resolve_field(ctx, doc, (*path, "cost_fields", i), entry)
        for i, entry in enumerate(node.get("cost_fields") or [])
    ]
    categories = node.get("status_categories")
    hourly_rate = node.get("hourly_rate")
    currency = node.get("currency")
    min_sample = node.get("csat_min_sample", 30)
    return KpiConfig(
        currency=currency if isinstance(currency, str) else None,
        calendar=calendar if isinstance(calendar, str) else None,
        hourly_rate=float(hourly_rate) if isinstance(hourly_rate, int | float) else None,
        rates=tuple(rates),
        inputs=inputs,
        cost_fields=tuple(r for r in cost_fields if r is not None),
        status_categories={str(k): str(v) for k, v in categories.items()}
        if isinstance(categories, Mapping)
        else {},
        csat_min_sample=min_sample if isinstance(min_sample, int) else 30,
        where=_where(doc, path),
    )


def _collect_names(
    ctx: _Context, docs: Sequence[SourceDoc], names: _Names, check_calendar: CalendarChecker | None
) -> None:
    for doc in docs:
        data = doc.data if isinstance(doc.data, Mapping) else {}
        for section, table in (("calendars", names.calendars), ("slas", names.slas)):
            defs = data.get(section)
            if not isinstance(defs, Mapping):
                continue
            for name in defs:
                where = _where(doc, (section, name), key=True)
                if name in table:
                    ctx.error(
                        doc,
                        (section, name),
                        f"{section[:-1]} {name!r} is defined twice (first at {table[name]})",
                        key=True,
                    )
                else:
                    table[name] = where
                if section == "calendars" and isinstance(defs[name], Mapping):
                    names.calendar_specs.setdefault(name, defs[name])
                if section == "calendars" and check_calendar and isinstance(defs[name], Mapping):
                    for sub_path, message in check_calendar(defs[name]):
                        ctx.error(doc, ("calendars", name, *sub_path), message)


def compile_rule_set(
    docs: Sequence[SourceDoc],
    operators: Mapping[str, OperatorSpec],
    *,
    check_calendar: CalendarChecker | None = None,
    contents: Sequence[bytes] = (),
) -> tuple[RuleSet | None, list[Diagnostic]]:
    """Check and compile parsed rule files (in the given order) into one rule set."""
    ctx = _Context(operators)
    names = _Names()
    _collect_names(ctx, docs, names, check_calendar)
    ordered: list[tuple[int, int, Rule]] = []
    default: Outcome | None = None
    kpi: KpiConfig | None = None
    kpi_at: str | None = None
    calendars: dict[str, Mapping[str, Any]] = {}
    slas: dict[str, SlaDef] = {}
    for doc in docs:
        data = doc.data if isinstance(doc.data, Mapping) else {}
        if isinstance(data.get("calendars"), Mapping):
            for name, spec in data["calendars"].items():
                if isinstance(spec, Mapping):
                    calendars.setdefault(name, spec)
        if isinstance(data.get("slas"), Mapping):
            for name, spec in data["slas"].items():
                sla = _compile_sla(ctx, doc, name, spec, ("slas", name), names)
                if sla is not None:
                    slas.setdefault(name, sla)
        if "kpi" in data:
            if kpi_at is not None:
                ctx.error(
                    doc,
                    ("kpi",),
                    f"kpi settings are defined twice (first at {kpi_at}); keep one",
                    key=True,
                )
            else:
                kpi_at = _where(doc, ("kpi",), key=True)
                kpi = _compile_kpi(ctx, doc, data["kpi"], names)
        if "default" in data:
            where = _where(doc, ("default",), key=True)
            if names.default_at is not None:
                ctx.error(
                    doc,
                    ("default",),
                    f"default is defined twice (first at {names.default_at}); keep one",
                    key=True,
                )
            else:
                names.default_at = where
                default = _compile_outcome(ctx, doc, data["default"], ("default",), names)
        rules = data.get("rules")
        if not isinstance(rules, list):
            continue
        for i, node in enumerate(rules):
            rule = _compile_rule(ctx, doc, node, ("rules", i), names)
            if rule is not None:
                ordered.append((-rule.priority, len(ordered), rule))
    if ctx.problems:
        return None, ctx.problems
    ordered.sort(key=lambda entry: (entry[0], entry[1]))
    all_rules = [rule for _, _, rule in ordered]
    # The content only, in the order it is read: the same rules give the same digest in
    # every checkout and on every machine (status, report and rules check agree).
    digest = hashlib.sha256()
    for content in contents:
        digest.update(str(len(content)).encode() + b"\0" + content)
    return RuleSet(
        rules=tuple(r for r in all_rules if r.enabled),
        default=default or Outcome("unclassified"),
        calendars=calendars,
        slas=slas,
        digest=digest.hexdigest()[:16],
        files=tuple(doc.path for doc in docs),
        disabled=tuple(r for r in all_rules if not r.enabled),
        kpi=kpi or KpiConfig(),
        warnings=tuple(sorted(set(ctx.warnings))),
    ), []


def _compile_rule(
    ctx: _Context, doc: SourceDoc, node: Any, path: Path_, names: _Names
) -> Rule | None:
    if not isinstance(node, Mapping):
        return None
    rule_id = node.get("id")
    if isinstance(rule_id, str):
        if rule_id in names.rule_ids:
            ctx.error(
                doc,
                (*path, "id"),
                f"duplicate rule id {rule_id!r} (first at "
                f"{names.rule_ids[rule_id]}); rule ids must be unique across the rule set",
            )
        else:
            names.rule_ids[rule_id] = _where(doc, (*path, "id"))
    when = compile_condition(ctx, doc, node.get("when"), (*path, "when"))
    then = _compile_outcome(ctx, doc, node.get("then"), (*path, "then"), names)
    if when is None or then is None or not isinstance(rule_id, str):
        return None
    priority = node.get("priority", 0)
    description = node.get("description")
    return Rule(
        id=rule_id,
        when=when,
        then=then,
        where=_where(doc, path),
        description=description if isinstance(description, str) else None,
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
        enabled=node.get("enabled", True) is not False,
    )
