"""Evaluating a rule set: fast classification, and a full explanation of one decision.

Speed comes from three things, all decided once when the rule set is compiled:

1. **Dispatch.** Most rules require an exact value of one field (``type in [Incident, ...]``).
   The field that most rules constrain becomes a dispatch key; each of its values gets the
   ordered list of rules that can still match, so an item only meets its candidates.
2. **Generated code.** Each candidate list becomes one Python function whose conditions are
   inline comparisons. The source is generated from the closed operator set only: every
   value an admin wrote is passed in as a named constant, never pasted into the source, so no
   admin text is ever executed. Operators without a template (plugins, ``raw.*`` fields,
   ``ignore_case``) are called through the same constants.
3. **Work per item, not per condition.** The fields a function needs are read into locals
   once at its top.

``explain`` interprets the same tree without short-circuits, recording every leaf, and is
the reference the generated code is tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.model import Classification, FieldType, WorkItem
from bridge.rules.ast import AllOf, AnyOf, Cond, FieldRef, Leaf, NotOf, Rule, RuleSet

__all__ = ["Engine", "Explanation", "LeafTrace", "RuleTrace", "evaluate_condition"]

Matcher = Callable[[WorkItem, datetime], int]

# Field types whose values are hashable scalars, usable as dispatch keys.
_DISPATCHABLE: frozenset[FieldType] = frozenset(("string", "category"))


# -- the reference interpreter ------------------------------------------------------------------


def _leaf_actual(leaf: Leaf, item: WorkItem) -> Any:
    actual = leaf.field.get(item)
    if leaf.ignore_case:
        actual = _fold(actual)
    return actual


def _fold(value: Any) -> Any:
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, list | tuple):
        return [v.casefold() if isinstance(v, str) else v for v in value]
    return value


def evaluate_condition(cond: Cond, item: WorkItem, now: datetime) -> bool:
    """Interpret a condition (short-circuiting); used for SLA conditions and as a reference."""
    if isinstance(cond, Leaf):
        return cond.op.test(_leaf_actual(cond, item), cond.prepared, now)
    if isinstance(cond, AllOf):
        return all(evaluate_condition(c, item, now) for c in cond.children)
    if isinstance(cond, AnyOf):
        return any(evaluate_condition(c, item, now) for c in cond.children)
    return not evaluate_condition(cond.child, item, now)


# -- explain ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeafTrace:
    """One leaf condition as it was tried on one item."""

    depth: int
    field: str
    op: str
    expected: Any
    actual: Any
    result: bool
    where: str


@dataclass(frozen=True, slots=True)
class GroupTrace:
    """An ``all`` / ``any`` / ``not`` node and its result."""

    depth: int
    kind: str
    result: bool
    where: str


@dataclass(frozen=True, slots=True)
class RuleTrace:
    rule: Rule
    matched: bool
    steps: tuple[LeafTrace | GroupTrace, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Every rule tried on one item, every condition's value, and the decision."""

    item: WorkItem
    classification: Classification
    rules: tuple[RuleTrace, ...]
    winner: str | None


def _trace(
    cond: Cond, item: WorkItem, now: datetime, depth: int, out: list[LeafTrace | GroupTrace]
) -> bool:
    if isinstance(cond, Leaf):
        actual = _leaf_actual(cond, item)
        result = cond.op.test(actual, cond.prepared, now)
        out.append(
            LeafTrace(depth, cond.field.name, cond.op.name, cond.value, actual, result, cond.where)
        )
        return result
    index = len(out)
    out.append(GroupTrace(depth, "", False, cond.where))  # filled in below
    if isinstance(cond, AllOf):
        results = [_trace(c, item, now, depth + 1, out) for c in cond.children]
        kind, result = "all", all(results)
    elif isinstance(cond, AnyOf):
        results = [_trace(c, item, now, depth + 1, out) for c in cond.children]
        kind, result = "any", any(results)
    else:
        kind, result = "not", not _trace(cond.child, item, now, depth + 1, out)
    out[index] = GroupTrace(depth, kind, result, cond.where)
    return result


# -- code generation ----------------------------------------------------------------------------


class _Gen:
    """Builds the source of one matcher function and the constants it refers to."""

    def __init__(self, consts: dict[str, Any]) -> None:
        self.consts = consts
        self.locals: dict[str, str] = {}

    def const(self, value: Any) -> str:
        name = f"K{len(self.consts)}"
        self.consts[name] = value
        return name

    def local(self, ref: FieldRef) -> str:
        name = self.locals.get(ref.name)
        if name is None:
            name = self.locals[ref.name] = f"f_{ref.name}"
        return name

    def cond(self, cond: Cond) -> str:
        if isinstance(cond, AllOf):
            return "(" + " and ".join(self.cond(c) for c in cond.children) + ")"
        if isinstance(cond, AnyOf):
            return "(" + " or ".join(self.cond(c) for c in cond.children) + ")"
        if isinstance(cond, NotOf):
            return f"(not {self.cond(cond.child)})"
        return self.leaf(cond)

    def leaf(self, leaf: Leaf) -> str:
        inline = None if leaf.ignore_case or leaf.field.type is None else self._inline(leaf)
        if inline is not None:
            return inline
        test = self.const(leaf.op.test)
        value = self.const(leaf.prepared)
        if leaf.ignore_case or leaf.field.type is None:
            getter = self.const(lambda item, _leaf=leaf: _leaf_actual(_leaf, item))
            actual = f"{getter}(item)"
        else:
            actual = self.local(leaf.field)
        return f"{test}({actual}, {value}, now)"

    def _inline(self, leaf: Leaf) -> str | None:
        """An inline expression equivalent to the operator's test, or None for a call."""
        field_type = leaf.field.type
        op = leaf.op.name
        v = self.local(leaf.field)
        if op in ("equals", "not_equals", "in", "not_in") and field_type in (
            "string",
            "category",
            "number",
        ):
            k = self.const(leaf.prepared)
            symbol = {"equals": "==", "not_equals": "!=", "in": "in", "not_in": "not in"}[op]
            return f"({v} {symbol} {k})"
        if op == "contains" and field_type == "list":
            return f"({self.const(leaf.prepared)} in {v})"
        if op == "contains" and field_type == "string":
            return f"({v} is not None and {self.const(leaf.prepared)} in {v})"
        if op == "contains_any" and field_type == "list":
            return f"(not {self.const(frozenset(leaf.prepared))}.isdisjoint({v}))"
        if op == "contains_all" and field_type == "list":
            return f"{self.const(frozenset(leaf.prepared))}.issubset({v})"
        if op == "matches" and field_type == "string":
            return f"({v} is not None and {self.const(leaf.prepared)}.search({v}) is not None)"
        if op == "exists":
            present = (
                f"bool({v})"
                if field_type == "list"
                else f"({v} is not None and {v} != '')"
                if field_type == "string"
                else f"({v} is not None)"
            )
            return present if leaf.prepared is True else f"(not {present})"
        if op in ("gt", "gte", "lt", "lte") and field_type in ("number", "instant"):
            symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
            return f"({v} is not None and {v} {symbol} {self.const(leaf.prepared)})"
        if op in ("older_than", "newer_than") and field_type == "instant":
            symbol = "<" if op == "older_than" else ">"
            return f"({v} is not None and {v} {symbol} now - {self.const(leaf.prepared)})"
        return None


def _build_matcher(rules: list[tuple[int, Rule]], name: str, consts: dict[str, Any]) -> str:
    gen = _Gen(consts)
    body = [f"    if {gen.cond(rule.when)}:\n        return {index}" for index, rule in rules]
    reads = [f"    {local} = item.{field}" for field, local in gen.locals.items()]
    return "\n".join([f"def {name}(item, now):", *reads, *body, "    return -1", ""])


def _required_values(cond: Cond, field: str) -> frozenset[Any] | None:
    """Values ``field`` must take for ``cond`` to hold, or None when it is unconstrained."""
    if isinstance(cond, Leaf):
        if cond.field.name != field or cond.ignore_case:
            return None
        if cond.op.name == "equals":
            return frozenset((cond.prepared,))
        if cond.op.name == "in":
            return frozenset(cond.prepared)
        return None
    if isinstance(cond, AllOf):
        found = [r for r in (_required_values(c, field) for c in cond.children) if r is not None]
        if not found:
            return None
        result = found[0]
        for other in found[1:]:
            result &= other
        return result
    if isinstance(cond, AnyOf):
        options = [_required_values(c, field) for c in cond.children]
        if any(o is None for o in options):
            return None
        return frozenset().union(*(o for o in options if o is not None))
    return None


def _choose_dispatch(rules: tuple[Rule, ...]) -> str | None:
    counts: dict[str, int] = {}
    fields = {
        leaf.field.name
        for rule in rules
        for leaf in _leaves(rule.when)
        if leaf.field.type in _DISPATCHABLE
    }
    for field in fields:
        counts[field] = sum(1 for rule in rules if _required_values(rule.when, field) is not None)
    if not counts:
        return None
    best = max(sorted(counts), key=lambda f: counts[f])
    return best if counts[best] >= 2 else None


def _leaves(cond: Cond) -> Iterable[Leaf]:
    if isinstance(cond, Leaf):
        yield cond
    elif isinstance(cond, AllOf | AnyOf):
        for child in cond.children:
            yield from _leaves(child)
    else:
        yield from _leaves(cond.child)


class Engine:
    """A rule set compiled for evaluation. Build once, call :meth:`classify` per item."""

    def __init__(self, rule_set: RuleSet) -> None:
        self.rule_set = rule_set
        rules = rule_set.rules
        self.dispatch_field = _choose_dispatch(rules)
        consts: dict[str, Any] = {}
        sources: list[str] = []
        indexed = list(enumerate(rules))
        if self.dispatch_field is None:
            sources.append(_build_matcher(indexed, "match_all", consts))
            bucket_names: dict[Any, str] = {}
            fallback = "match_all"
        else:
            required = [_required_values(rule.when, self.dispatch_field) for rule in rules]
            values = sorted({v for r in required if r is not None for v in r}, key=repr)
            bucket_names = {}
            for n, value in enumerate(values):
                candidates = [
                    (i, rule)
                    for (i, rule), req in zip(indexed, required, strict=True)
                    if req is None or value in req
                ]
                name = f"match_{n}"
                sources.append(_build_matcher(candidates, name, consts))
                bucket_names[value] = name
            unconstrained = [(i, rule) for i, rule in indexed if required[i] is None]
            sources.append(_build_matcher(unconstrained, "match_other", consts))
            fallback = "match_other"
        self.source = "\n".join(sources)
        namespace: dict[str, Any] = dict(consts)
        # The source holds only generated identifiers and operators; admin values live in
        # ``namespace`` as constants (see the module docstring).
        exec(compile(self.source, f"<rules {rule_set.digest}>", "exec"), namespace)  # noqa: S102
        self._table: dict[Any, Matcher] = {v: namespace[n] for v, n in bucket_names.items()}
        self._fallback: Matcher = namespace[fallback]
        self._outcomes = [rule.then for rule in rules]
        self._ids = [rule.id for rule in rules]

    def match(self, item: WorkItem, now: datetime) -> int:
        """The index in ``rule_set.rules`` of the first matching rule, or -1."""
        if self.dispatch_field is None:
            return self._fallback(item, now)
        key = getattr(item, self.dispatch_field)
        return self._table.get(key, self._fallback)(item, now)

    def classify(self, item: WorkItem, now: datetime) -> Classification:
        index = self.match(item, now)
        if index < 0:
            return self.rule_set.default.classify(item, None)
        return self._outcomes[index].classify(item, self._ids[index])

    def explain(self, item: WorkItem, now: datetime) -> Explanation:
        traces: list[RuleTrace] = []
        winner: Rule | None = None
        for rule in self.rule_set.rules:
            steps: list[LeafTrace | GroupTrace] = []
            matched = _trace(rule.when, item, now, 0, steps)
            traces.append(RuleTrace(rule, matched, tuple(steps)))
            if matched and winner is None:
                winner = rule
        if winner is None:
            classification = self.rule_set.default.classify(item, None)
        else:
            classification = winner.then.classify(item, winner.id)
        return Explanation(item, classification, tuple(traces), winner.id if winner else None)


def rules_by_id(rule_set: RuleSet) -> Mapping[str, Rule]:
    return {rule.id: rule for rule in (*rule_set.rules, *rule_set.disabled)}
