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

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.model import Classification, FieldType, WorkItem
from bridge.rules.ast import (
    AllOf,
    AnyOf,
    Cond,
    FieldRef,
    Leaf,
    NotOf,
    Outcome,
    Rule,
    RuleSet,
    leaves,
)
from bridge.rules.operators import fold

__all__ = [
    "Engine",
    "Explanation",
    "LeafTrace",
    "Predicate",
    "RuleTrace",
    "compile_condition",
    "evaluate_condition",
]

Matcher = Callable[[WorkItem, datetime], int]

# Field types whose values are hashable scalars, usable as dispatch keys.
_DISPATCHABLE: frozenset[FieldType] = frozenset(("string", "category"))


# -- the reference interpreter ------------------------------------------------------------------


def _leaf_actual(leaf: Leaf, item: WorkItem) -> Any:
    actual = leaf.field.get(item)
    if leaf.ignore_case:
        actual = fold(actual)
    return actual


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


_SCALARS = frozenset((str, int, float, bool))


def raw_getter(ref: FieldRef) -> Callable[[WorkItem], Any]:
    """A getter for a ``raw.*`` path with a fast path for the usual case (plain dicts, a scalar
    or missing value) and :meth:`FieldRef.get` for everything else, so results are equal."""
    slow = ref.get
    path = ref.raw_path
    if len(path) == 1:
        (key,) = path

        def get_one(item: WorkItem) -> Any:
            raw = item.raw
            if type(raw) is dict:
                value = raw.get(key)
                if value is None or type(value) in _SCALARS:
                    return value
            return slow(item)

        return get_one
    if len(path) == 2:
        outer, inner = path
        dotted = ref.name[4:]

        def get_two(item: WorkItem) -> Any:
            raw = item.raw
            if type(raw) is dict and dotted not in raw:
                middle = raw.get(outer)
                if middle is None:
                    return None
                if type(middle) is dict:
                    value = middle.get(inner)
                    if value is None or type(value) in _SCALARS:
                        return value
            return slow(item)

        return get_two
    return slow


# Operators whose outcome depends only on the value (never on ``now``), so a dispatch value
# known when a matcher is generated decides them there.
_FOLDABLE = frozenset(("equals", "not_equals", "in", "not_in"))
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class _Gen:
    """Builds the source of one generated function and the constants it refers to.

    Every field value a function needs is read once into a local at its top (``raw.*``
    paths through their getter, ``ignore_case`` fields folded once), so a value tested by
    several rules costs one read per item, not one per condition.
    """

    def __init__(self, consts: dict[str, Any], known: Mapping[str, str] | None = None) -> None:
        self.consts = consts
        self.reads: dict[tuple[str, bool], str] = {}
        self.lines: list[str] = []
        # Field values every item reaching this function has (its dispatch key): conditions
        # on them are decided here, once, instead of for every item.
        self.known = known or {}

    def const(self, value: Any) -> str:
        name = f"K{len(self.consts)}"
        self.consts[name] = value
        return name

    def local(self, ref: FieldRef, *, folded: bool = False) -> str:
        """The local holding ``ref``'s value (casefolded when ``folded``), read on first use."""
        key = (ref.name, folded)
        name = self.reads.get(key)
        if name is not None:
            return name
        name = f"v{len(self.reads)}"
        if folded:
            base = self.local(ref)
            self.lines.append(
                f"    {name} = {base}.casefold() if type({base}) is str "
                f"else {self.const(fold)}({base})"
            )
        elif ref.type is None and len(ref.raw_path) == 1:
            # One segment: read the dict inline; anything unusual goes through the getter.
            getter = self.const(raw_getter(ref))
            raw = self.raw_local()
            self.lines.append(
                f"    {name} = {raw}.get({self.const(ref.raw_path[0])}) "
                f"if type({raw}) is dict else {getter}(item)"
            )
            self.lines.append(
                f"    if {name} is not None and type({name}) not in "
                f"{self.const(_SCALARS)}:\n        {name} = {getter}(item)"
            )
        elif ref.type is None:
            self.lines.append(f"    {name} = {self.const(raw_getter(ref))}(item)")
        else:
            self.lines.append(f"    {name} = item.{ref.name}")
        self.reads[key] = name
        return name

    def raw_local(self) -> str:
        """The local holding ``item.raw``, read on first use."""
        if ("raw", False) not in self.reads:
            self.reads[("raw", False)] = "raw"
            self.lines.append("    raw = item.raw")
        return "raw"

    def cond(self, cond: Cond) -> str:
        """An expression for ``cond``; ``"True"`` / ``"False"`` when the known values decide."""
        if isinstance(cond, AllOf | AnyOf):
            decisive, neutral = ("False", "True") if isinstance(cond, AllOf) else ("True", "False")
            parts = []
            for child in cond.children:
                part = self.cond(child)
                if part == decisive:
                    return decisive
                if part != neutral:
                    parts.append(part)
            if not parts:
                return neutral
            joiner = " and " if isinstance(cond, AllOf) else " or "
            return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
        if isinstance(cond, NotOf):
            inner = self.cond(cond.child)
            return {"True": "False", "False": "True"}.get(inner, f"(not {inner})")
        return self.leaf(cond)

    def _decided(self, leaf: Leaf) -> str | None:
        value = self.known.get(leaf.field.name)
        if value is None or leaf.ignore_case or leaf.op.name not in _FOLDABLE:
            return None
        return "True" if leaf.op.test(value, leaf.prepared, _NEVER) else "False"

    def leaf(self, leaf: Leaf) -> str:
        decided = self._decided(leaf)
        if decided is not None:
            return decided
        v = self.local(leaf.field, folded=leaf.ignore_case)
        call = f"{self.const(leaf.op.test)}({v}, {self.const(leaf.prepared)}, now)"
        if not leaf.op.builtin:
            return call
        if leaf.field.type is None:
            return self._inline_raw(leaf, v, call)
        # Folded text behaves like text (a folded list like a list) for every template.
        return self._inline(leaf, v) or call

    def _inline_raw(self, leaf: Leaf, v: str, call: str) -> str:
        """Raw JSON compares loosely; when the value is text and so is the expected value,
        loose equality is plain equality, so the common case needs no call."""
        op, value = leaf.op.name, leaf.prepared
        texts = isinstance(value, str) or (
            isinstance(value, tuple) and all(isinstance(x, str) for x in value)
        )
        if op in ("equals", "not_equals", "in", "not_in", "contains") and texts:
            if op in ("in", "not_in"):
                k = self.const(frozenset(value))
                fast = f"{v} in {k}" if op == "in" else f"{v} not in {k}"
            elif op == "contains":
                fast = f"{self.const(value)} in {v}"
            else:
                fast = f"{v} {'==' if op == 'equals' else '!='} {self.const(value)}"
            missing = "True" if op in ("not_equals", "not_in") else "False"
            return f"(({fast}) if type({v}) is str else ({missing} if {v} is None else {call}))"
        if op == "exists":
            present = f"({v} is not None and {v} != '' and {v} != () and {v} != [])"
            return present if value is True else f"(not {present})"
        return call

    def _inline(self, leaf: Leaf, v: str) -> str | None:
        """An inline expression equivalent to the operator's test, or None for a call."""
        field_type = leaf.field.type
        op = leaf.op.name
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
            return f"({v} is not None and {self.const(leaf.prepared)}.search({v}))"
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


def _build_matcher(
    conds: Sequence[tuple[int, Cond | None]],
    name: str,
    consts: dict[str, Any],
    known: Mapping[str, str] | None = None,
) -> str:
    """One function trying the conditions in order, returning the index paired with the first
    that holds (None always holds), -1 when none does. A value is read just before the first
    condition that needs it, so an item decided early never pays for later reads."""
    gen = _Gen(consts, known)
    body = [f"def {name}(item, now):"]
    for index, cond in conds:
        if cond is None:
            body.append(f"    return {index}")
            break
        mark, seen = len(gen.lines), set(gen.reads)
        test = gen.cond(cond)
        if test == "False":  # decided by the dispatch values: drop the reads it asked for
            del gen.lines[mark:]
            for key in set(gen.reads) - seen:
                del gen.reads[key]
            continue
        body.extend(gen.lines[mark:])
        if test == "True":
            body.append(f"    return {index}")
            break  # nothing after a rule that always matches can win
        body.append(f"    if {test}:\n        return {index}")
    else:
        body.append("    return -1")
    return "\n".join([*body, ""])


Predicate = Callable[[WorkItem, datetime], bool]


def compile_condition(cond: Cond) -> Predicate:
    """One condition as a generated function ``(item, now) -> bool``; same semantics as
    :func:`evaluate_condition`, several times faster (used for SLA conditions, which run at
    every change of every item's history)."""
    consts: dict[str, Any] = {}
    gen = _Gen(consts)
    expression = gen.cond(cond)
    source = "\n".join(["def predicate(item, now):", *gen.lines, f"    return {expression}", ""])
    namespace: dict[str, Any] = dict(consts)
    exec(compile(source, "<condition>", "exec"), namespace)  # noqa: S102 - see module docstring
    predicate: Predicate = namespace["predicate"]
    return predicate


def compile_first_match(conds: Sequence[Cond | None]) -> Callable[[WorkItem, datetime], int]:
    """One generated function ``(item, now) -> int``: the index of the first condition that
    holds (None always holds), -1 when none does. An SLA clock asks which of cancel, stop and
    pause holds at every change of every item's history: one call instead of one per
    condition, each field read once."""
    consts: dict[str, Any] = {}
    source = _build_matcher(list(enumerate(conds)), "first_match", consts)
    namespace: dict[str, Any] = dict(consts)
    exec(compile(source, "<conditions>", "exec"), namespace)  # noqa: S102 - see module docstring
    first_match: Callable[[WorkItem, datetime], int] = namespace["first_match"]
    return first_match


def _required_values(cond: Cond, field: str) -> frozenset[Any] | None:
    """Values ``field`` must take for ``cond`` to hold, or None when it is unconstrained.

    Raw fields compare loosely (``"3"`` equals ``3``), so they only constrain through text
    values, and items whose raw value is not text are never dispatched on it.
    """
    if isinstance(cond, Leaf):
        if cond.field.name != field or cond.ignore_case:
            return None
        if cond.op.name == "equals":
            values = frozenset((cond.prepared,))
        elif cond.op.name == "in":
            values = frozenset(cond.prepared)
        else:
            return None
        if cond.field.type is None and not all(isinstance(v, str) for v in values):
            return None
        return values
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


# Dispatch key parts for values no rule asks for, and for raw values that are not text
# (which every rule must still see, because raw values compare loosely).
OTHER = "\x00other"
ANY = "\x00any"


@dataclass(frozen=True, slots=True)
class _DispatchField:
    ref: FieldRef
    known: frozenset[Any]
    required: tuple[frozenset[Any] | None, ...]  # per rule


def _choose_dispatch(rules: tuple[Rule, ...], limit: int = 3) -> list[_DispatchField]:
    """Up to ``limit`` fields that constrain the most rules, picked greedily: each next field
    is the one that most shrinks the candidates the fields chosen so far leave."""
    refs: dict[str, FieldRef] = {}
    for rule in rules:
        for leaf in leaves(rule.when):
            if leaf.field.type in _DISPATCHABLE or leaf.field.type is None:
                refs.setdefault(leaf.field.name, leaf.field)
    table = {name: tuple(_required_values(rule.when, name) for rule in rules) for name in refs}
    chosen: list[_DispatchField] = []
    unconstrained = list(range(len(rules)))
    for _ in range(limit):
        best, best_count = None, 1
        for name in sorted(table):
            if any(d.ref.name == name for d in chosen):
                continue
            count = sum(1 for i in unconstrained if table[name][i] is not None)
            if count > best_count:
                best, best_count = name, count
        if best is None:
            break
        required = table[best]
        known = frozenset(v for r in required if r is not None for v in r)
        chosen.append(_DispatchField(refs[best], known, required))
        unconstrained = [i for i in unconstrained if required[i] is None]
    return chosen


def _fixed_decision(outcome: Outcome, rule_id: str | None) -> Classification | None:
    """The decision ``outcome`` makes for every item, or None when its phase depends on the
    item's status; deciding it once spares ``classify`` a cache lookup per item."""
    if outcome.phase is not None and outcome.phase.constant is None:
        return None
    return outcome.classify(WorkItem("", ""), rule_id)


class Engine:
    """A rule set compiled for evaluation. Build once, call :meth:`classify` per item.

    Matchers are generated per combination of dispatch values the items actually have,
    on first use, so a large rule set costs nothing for combinations never seen.
    """

    def __init__(self, rule_set: RuleSet) -> None:
        self.rule_set = rule_set
        self._rules = rule_set.rules
        self._dispatch = _choose_dispatch(self._rules)
        self.dispatch_fields = tuple(d.ref.name for d in self._dispatch)
        self._consts: dict[str, Any] = {}
        self._matchers: dict[tuple[Any, ...], Matcher] = {}
        self._build_lock = threading.Lock()
        self._key, self._match = self._build_dispatch()
        self._outcomes = [rule.then for rule in self._rules]
        self._ids = [rule.id for rule in self._rules]
        self._fixed = [_fixed_decision(rule.then, rule.id) for rule in self._rules]
        self._default = _fixed_decision(rule_set.default, None)
        self._decisions: dict[tuple[int, str | None, str | None], Classification] = {}
        self.sources: list[str] = []

    @property
    def source(self) -> str:
        """The code generated so far, at least the matcher for values no rule names."""
        self._matcher(tuple(OTHER for _ in self._dispatch))
        return "\n".join(self.sources)

    def _build_dispatch(self) -> tuple[Callable[[WorkItem], tuple[Any, ...]], Matcher]:
        """The dispatch key of an item, and ``match`` itself: one generated function that
        computes the key, finds (or builds) its matcher and calls it."""
        consts: dict[str, Any] = {
            "OTHER": OTHER,
            "ANY": ANY,
            "TABLE": self._matchers,
            "BUILD": self._matcher,
        }
        reads: list[str] = []
        parts = []
        for n, field in enumerate(self._dispatch):
            known = f"K{n}"
            consts[known] = field.known
            if field.ref.type is None:
                consts[f"G{n}"] = raw_getter(field.ref)
                reads.append(f"    a{n} = G{n}(item)")
                parts.append(
                    f"((a{n} if a{n} in {known} else OTHER) if type(a{n}) is str else ANY)"
                )
            else:
                reads.append(f"    a{n} = item.{field.ref.name}")
                parts.append(f"(a{n} if a{n} in {known} else OTHER)")
        key = f"({', '.join(parts)}{',' if len(parts) == 1 else ''})"
        source = "\n".join(
            [
                "def key(item):",
                *reads,
                f"    return {key}",
                "def match(item, now):",
                *reads,
                f"    k = {key}",
                "    m = TABLE.get(k)",
                "    if m is None:",
                "        m = BUILD(k)",
                "    return m(item, now)",
                "",
            ]
        )
        exec(compile(source, "<dispatch>", "exec"), consts)  # noqa: S102 - see the docstring
        return consts["key"], consts["match"]

    def _admits(self, index: int, key: tuple[Any, ...]) -> bool:
        """Whether rule ``index`` can match an item whose dispatch values are ``key``."""
        for field, part in zip(self._dispatch, key, strict=True):
            required = field.required[index]
            if part != ANY and required is not None and part not in required:
                return False
        return True

    def _matcher(self, key: tuple[Any, ...]) -> Matcher:
        existing = self._matchers.get(key)
        if existing is not None:
            return existing
        # Webhook worker threads and a scheduled sync share one engine: two threads generating
        # at once would both number their constants from len(consts) and could overwrite
        # each other's values, misclassifying silently.
        with self._build_lock:
            existing = self._matchers.get(key)
            if existing is not None:
                return existing
            return self._generate(key)

    def _generate(self, key: tuple[Any, ...]) -> Matcher:
        candidates = [(i, rule) for i, rule in enumerate(self._rules) if self._admits(i, key)]
        name = f"match_{len(self.sources)}"
        known = {
            field.ref.name: part
            for field, part in zip(self._dispatch, key, strict=True)
            if part not in (OTHER, ANY)
        }
        conds = [(i, rule.when) for i, rule in candidates]
        source = _build_matcher(conds, name, self._consts, known)
        namespace: dict[str, Any] = dict(self._consts)
        # The source holds only generated identifiers and operators; admin values live in
        # ``namespace`` as constants (see the module docstring).
        exec(compile(source, f"<rules {self.rule_set.digest}>", "exec"), namespace)  # noqa: S102
        matcher: Matcher = namespace[name]
        self._matchers[key] = matcher
        self.sources.append(source)
        return matcher

    def candidates(self, item: WorkItem) -> tuple[int, ...]:
        """The indexes of the rules dispatch leaves for this item (the rest cannot match)."""
        key = self._key(item)
        return tuple(i for i in range(len(self._rules)) if self._admits(i, key))

    def match(self, item: WorkItem, now: datetime) -> int:
        """The index in ``rule_set.rules`` of the first matching rule, or -1."""
        return self._match(item, now)

    def classify(self, item: WorkItem, now: datetime) -> Classification:
        index = self._match(item, now)
        if index < 0:
            return self._default or self.rule_set.default.classify(item, None)
        fixed = self._fixed[index]
        if fixed is not None:
            return fixed
        cache_key = (index, item.status, item.status_category)
        decision = self._decisions.get(cache_key)
        if decision is None:
            decision = self._outcomes[index].classify(item, self._ids[index])
            if len(self._decisions) < 100_000:
                self._decisions[cache_key] = decision
        return decision

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
