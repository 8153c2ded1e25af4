"""The compiled form of a rule set: plain frozen data the engine evaluates.

Nothing here refers back to YAML; every value an admin wrote has already been checked and
turned into a ready-to-use constant (``prepared``), and every node knows where it was
written so ``explain`` and test reports can point at it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.errors import Diagnostic
from bridge.model import Classification, FieldType, Phase, WorkItem, WorkType
from bridge.rules.operators import OperatorSpec

__all__ = [
    "AllOf",
    "AnyOf",
    "AtRisk",
    "Cond",
    "FieldRef",
    "KpiConfig",
    "Leaf",
    "NotOf",
    "Outcome",
    "PhaseMap",
    "Rule",
    "RuleSet",
    "SlaDef",
    "leaves",
]


def _unwrap(value: Any) -> Any:
    """A Jira select option or a ServiceNow reference compares by its ``value``."""
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is dict or isinstance(value, Mapping):
        return value.get("value", value)
    if kind is list and value and isinstance(value[0], Mapping):
        return [v["value"] if isinstance(v, Mapping) and "value" in v else v for v in value]
    return value


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field a condition reads: a normalized ``WorkItem`` attribute or ``raw.<path>``."""

    name: str
    type: FieldType | None
    raw_path: tuple[str, ...] = ()

    @property
    def is_raw(self) -> bool:
        return self.type is None

    def get(self, item: WorkItem) -> Any:
        if self.type is not None:
            return getattr(item, self.name)
        current: Any = item.raw
        path = self.raw_path
        if len(path) > 1 and isinstance(current, Mapping):
            # ServiceNow returns dot-walked fields under their dotted name ("top_task.number").
            dotted = current.get(self.name[4:])
            if dotted is not None:
                return _unwrap(dotted)
        for segment in path:
            if type(current) is dict or isinstance(current, Mapping):
                current = current.get(segment)
            elif type(current) is list and segment.isdigit():
                index = int(segment)
                current = current[index] if index < len(current) else None
            else:
                return None
            if current is None:
                return None
        return _unwrap(current)


@dataclass(frozen=True, slots=True)
class Leaf:
    """``{field: F, <op>: value}`` with the value prepared once."""

    field: FieldRef
    op: OperatorSpec
    value: Any
    prepared: Any
    ignore_case: bool
    where: str


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Cond, ...]
    where: str


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Cond, ...]
    where: str


@dataclass(frozen=True, slots=True)
class NotOf:
    child: Cond
    where: str


Cond = Leaf | AllOf | AnyOf | NotOf


def leaves(cond: Cond | None) -> Iterator[Leaf]:
    """Every leaf condition of a tree, in order."""
    if cond is None:
        return
    if isinstance(cond, Leaf):
        yield cond
    elif isinstance(cond, AllOf | AnyOf):
        for child in cond.children:
            yield from leaves(child)
    else:
        yield from leaves(cond.child)


@dataclass(frozen=True, slots=True)
class PhaseMap:
    """A project phase: a constant, or looked up by status, then status category."""

    constant: Phase | None = None
    by_status: Mapping[str, Phase] = field(default_factory=dict)
    by_status_category: Mapping[str, Phase] = field(default_factory=dict)
    default: Phase | None = None

    def phase_of(self, item: WorkItem) -> Phase | None:
        if self.constant is not None:
            return self.constant
        if item.status is not None and item.status in self.by_status:
            return self.by_status[item.status]
        if item.status_category is not None and item.status_category in self.by_status_category:
            return self.by_status_category[item.status_category]
        return self.default


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a rule (or the default) decides."""

    work_type: WorkType
    phase: PhaseMap | None = None
    kpis: tuple[str, ...] = ()

    def classify(self, item: WorkItem, rule_id: str | None) -> Classification:
        phase = self.phase.phase_of(item) if self.phase is not None else None
        return Classification(self.work_type, phase, rule_id, self.kpis)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    when: Cond
    then: Outcome
    where: str
    description: str | None = None
    priority: int = 0
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AtRisk:
    """An SLA's early warning, exactly one of: a share of the goal's target (``75%`` → 0.75)
    or the working time left before the goal (``1h`` → 3600.0). Kept as written rather than
    as seconds because goals are chosen per item: the instant it stands for is only known
    once the item's goal is."""

    share: float | None = None
    before: float | None = None


@dataclass(frozen=True, slots=True)
class SlaDef:
    """An SLA definition with its conditions compiled; the KPI engine gives it meaning."""

    name: str
    goals: tuple[tuple[Cond | None, float], ...]
    where: str
    calendar: str | None = None
    source: str = "computed"
    start_on_created: bool = True
    start: Cond | None = None
    pause: Cond | None = None
    stop: Cond | None = None
    cancel: Cond | None = None
    native: Mapping[str, str] = field(default_factory=dict)
    at_risk: AtRisk | None = None


@dataclass(frozen=True, slots=True)
class KpiConfig:
    """The ``kpi:`` section: where KPI inputs come from, rates, currency, calendar.

    ``inputs`` maps an input name (``budget``, ``planned_start``...) to the fields tried in
    order; inputs not configured use the KPI engine's defaults.
    """

    currency: str | None = None
    calendar: str | None = None
    hourly_rate: float | None = None
    rates: tuple[tuple[Cond | None, float], ...] = ()
    inputs: Mapping[str, tuple[FieldRef, ...]] = field(default_factory=dict)
    cost_fields: tuple[FieldRef, ...] = ()
    status_categories: Mapping[str, str] = field(default_factory=dict)
    csat_min_sample: int = 30
    where: str = ""


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A whole, valid rule set: rules in evaluation order, the default, calendars and SLAs."""

    rules: tuple[Rule, ...]
    default: Outcome
    calendars: Mapping[str, Mapping[str, Any]]
    slas: Mapping[str, SlaDef]
    digest: str
    files: tuple[str, ...]
    disabled: tuple[Rule, ...] = ()
    kpi: KpiConfig = field(default_factory=KpiConfig)
    # Located problems that do not stop the rules from working (``ignore_case`` on a
    # number, CSAT asked of project work): shown by ``rules check``, never fatal there
    # unless --strict, and logged when the service loads the rules.
    warnings: tuple[Diagnostic, ...] = ()

    def conditions(self) -> Iterator[Cond]:
        """Every condition the rule set evaluates: rules, SLA conditions and goals, rates."""
        for rule in self.rules:
            yield rule.when
        for sla in self.slas.values():
            yield from (c for c in (sla.start, sla.pause, sla.stop, sla.cancel) if c is not None)
            yield from (when for when, _ in sla.goals if when is not None)
        yield from (when for when, _ in self.kpi.rates if when is not None)

    def field_refs(self) -> Iterator[FieldRef]:
        """Every field the rule set reads — what a connector must ask its system for."""
        for cond in self.conditions():
            for leaf in leaves(cond):
                yield leaf.field
        for refs in self.kpi.inputs.values():
            yield from refs
        yield from self.kpi.cost_fields

    def kpi_groups(self) -> set[str]:
        """The KPI groups (``evm``, ``sla.<name>``...) any rule or the default asks for."""
        groups: set[str] = set(self.default.kpis)
        for rule in self.rules:
            groups.update(rule.then.kpis)
        return groups
