"""What a rule change does to real items, before it is merged: ``bridge rules diff``.

A reviewer cannot see from a YAML diff that moving one rule above another turns forty
incidents into project work, or that a new SLA goal breaches a dozen tickets. Both rule sets
are evaluated on the same items at the same ``now`` and only the outcomes are compared, so
every difference reported is caused by the rules, never by the clock or the data.

Pure: the rule sets and items come in, a :class:`RuleDiff` goes out; the command reads the
files (or git) and prints it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final

from bridge.kpi.compute import KpiEngine
from bridge.kpi.result import iso
from bridge.model import WORK_TYPES, Classification, WorkItem
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.timefmt import json_value

__all__ = [
    "ABSENT",
    "DECISION_FIELDS",
    "Absent",
    "Decision",
    "EvaluationError",
    "ItemDiff",
    "KpiStats",
    "RuleDiff",
    "SyncField",
    "ValueChange",
    "diff_rules",
    "json_value",
]

DECISION_FIELDS: Final = ("work_type", "phase", "rule")
# Per KPI, enough cases to see the kind of change; the JSON lists every item anyway.
EXAMPLES: Final = 3
# What data, not code, can make an evaluation raise (as bridge.cli.options): the item is
# reported for the side that failed and left out of the comparison.
_DATA_ERRORS = (ArithmeticError, ValueError)


class Absent(Enum):
    """A KPI one rule set does not compute for an item at all. Kept apart from ``None`` (computed,
    but its input is missing): a rule author needs to tell "dropped" from "unknown"."""

    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = Absent.ABSENT


@dataclass(frozen=True, slots=True)
class Decision:
    """What a sync writes from the classification: the work type, the phase, the rule."""

    work_type: str
    phase: str | None
    rule: str | None

    @classmethod
    def of(cls, classification: Classification) -> Decision:
        return cls(classification.work_type, classification.phase, classification.rule)

    def as_dict(self) -> dict[str, Any]:
        return {"work_type": self.work_type, "phase": self.phase, "rule": self.rule}


@dataclass(frozen=True, slots=True)
class ValueChange:
    """One KPI of one item, before and after; ``delta`` when both sides are numbers."""

    key: str
    kpi: str
    old: Any
    new: Any

    @property
    def delta(self) -> float | None:
        if _is_number(self.old) and _is_number(self.new):
            return float(self.new - self.old)
        return None

    def sides(self) -> dict[str, Any]:
        """``old``, ``new`` and ``change`` as JSON takes them. A side where the KPI is not
        computed is left out, so it is never confused with a computed null."""
        out: dict[str, Any] = {}
        if self.old is not ABSENT:
            out["old"] = json_value(self.old)
        if self.new is not ABSENT:
            out["new"] = json_value(self.new)
        if self.delta is not None:
            out["change"] = self.delta
        return out


@dataclass(frozen=True, slots=True)
class ItemDiff:
    """An item whose decision or KPI values differ between the rule sets."""

    key: str
    system: str
    type: str | None
    status: str | None
    old: Decision
    new: Decision
    kpis: tuple[ValueChange, ...]

    @property
    def changed(self) -> tuple[str, ...]:
        """The decision fields that differ, in :data:`DECISION_FIELDS` order."""
        return tuple(f for f in DECISION_FIELDS if getattr(self.old, f) != getattr(self.new, f))

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "system": self.system,
            "type": self.type,
            "status": self.status,
            "old": self.old.as_dict(),
            "new": self.new.as_dict(),
            "changed": list(self.changed),
            "kpis": [{"kpi": change.kpi, **change.sides()} for change in self.kpis],
        }


@dataclass(frozen=True, slots=True)
class KpiStats:
    """How one KPI moves across the items: how many change, the largest numeric changes and
    a few examples of the others (a state, a date, a value that appears or goes null)."""

    kpi: str
    items: int
    largest: tuple[ValueChange, ...]
    examples: tuple[ValueChange, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "items": self.items,
            "largest": [{"key": c.key, **c.sides()} for c in self.largest],
            "examples": [{"key": c.key, **c.sides()} for c in self.examples],
        }


@dataclass(frozen=True, slots=True)
class SyncField:
    """A write-back key whose value changes on ``items`` items; ``sources`` are the sources
    of bridge.yaml that write it (empty when no bridge.yaml was given)."""

    key: str
    items: int
    sources: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "items": self.items, "sources": list(self.sources)}


@dataclass(frozen=True, slots=True)
class EvaluationError:
    """An item one rule set (or both) could not evaluate, with why; None: that side could."""

    key: str
    old: str | None
    new: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class RuleDiff:
    """The impact of replacing the old rule set by the new one on a set of items."""

    now: datetime
    old_digest: str
    new_digest: str
    compared: int
    items: tuple[ItemDiff, ...]
    matrix: Mapping[str, Mapping[str, int]]
    kpis: tuple[KpiStats, ...]
    sync: tuple[SyncField, ...]
    errors: tuple[EvaluationError, ...]

    def count(self, field: str) -> int:
        """How many items change ``field`` (a decision field)."""
        return sum(1 for item in self.items if field in item.changed)

    @property
    def kpi_items(self) -> int:
        """How many items change at least one KPI value."""
        return sum(1 for item in self.items if item.kpis)

    @property
    def changed(self) -> bool:
        """Anything a reviewer must look at: a decision, a KPI, or an item only one side
        can evaluate. The same outcome from different rule text is no change."""
        return bool(self.items) or any(e.old != e.new for e in self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": iso(self.now),
            "old": {"digest": self.old_digest},
            "new": {"digest": self.new_digest},
            "changed": self.changed,
            "items_compared": self.compared,
            "summary": {
                **{field: self.count(field) for field in DECISION_FIELDS},
                "kpis": self.kpi_items,
                "items": len(self.items),
            },
            "matrix": {old: dict(row) for old, row in self.matrix.items()},
            "items": [item.as_dict() for item in self.items],
            "kpis": [stats.as_dict() for stats in self.kpis],
            "sync": [field.as_dict() for field in self.sync],
            "errors": [error.as_dict() for error in self.errors],
        }


def _is_number(value: Any) -> bool:
    # A flag is not a quantity: "True - False" is no change anyone could read.
    return type(value) is int or type(value) is float


_Outcome = tuple[Classification, dict[str, Any]]


def _evaluate(engine: Engine, kpis: KpiEngine, item: WorkItem, now: datetime) -> _Outcome | str:
    try:
        decision = engine.classify(item, now)
        return decision, kpis.compute(item, decision, now).finite().values
    except _DATA_ERRORS as exc:
        return f"cannot be evaluated: {type(exc).__name__}: {exc}"


def _kpi_changes(key: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ValueChange]:
    changes = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name, ABSENT), new.get(name, ABSENT)
        # True == 1 in Python, but a flag that becomes a count is a change; 1 and 1.0 are not.
        retyped = type(before) is not type(after) and not (_is_number(before) and _is_number(after))
        if before != after or retyped:
            changes.append(ValueChange(key, name, before, after))
    return changes


def _kpi_stats(items: Iterable[ItemDiff]) -> tuple[KpiStats, ...]:
    by_kpi: dict[str, list[ValueChange]] = {}
    for item in items:
        for change in item.kpis:
            by_kpi.setdefault(change.kpi, []).append(change)
    stats = []
    for name, changes in by_kpi.items():
        numeric = [c for c in changes if c.delta is not None]
        numeric.sort(key=lambda c: (-abs(c.delta or 0.0), c.key))
        others = [c for c in changes if c.delta is None]
        stats.append(
            KpiStats(name, len(changes), tuple(numeric[:EXAMPLES]), tuple(others[:EXAMPLES]))
        )
    stats.sort(key=lambda s: (-s.items, s.kpi))
    return tuple(stats)


def _sync_fields(
    items: Sequence[ItemDiff], writeback: Mapping[str, Collection[str]] | None
) -> tuple[SyncField, ...]:
    counts: dict[str, int] = {}
    for item in items:
        for key in (*item.changed, *(c.kpi for c in item.kpis)):
            counts[key] = counts.get(key, 0) + 1
    first = {key: index for index, key in enumerate(DECISION_FIELDS)}
    ordered = sorted(counts, key=lambda k: (first.get(k, len(first)), -counts[k], k))
    if writeback is None:
        # Without bridge.yaml every changed value is one a sync could write.
        return tuple(SyncField(key, counts[key]) for key in ordered)
    fields = []
    for key in ordered:
        sources = tuple(name for name, keys in writeback.items() if key in keys)
        if sources:
            fields.append(SyncField(key, counts[key], sources))
    return tuple(fields)


def diff_rules(
    old: RuleSet,
    new: RuleSet,
    items: Sequence[WorkItem],
    now: datetime,
    *,
    writeback: Mapping[str, Collection[str]] | None = None,
) -> RuleDiff:
    """Evaluate both rule sets on ``items`` at ``now`` and compare what they decide and
    compute.

    ``writeback`` maps a source name to the keys its ``writeback.fields`` write: the sync
    fields are then only those; None means every changed key counts. An item either side
    cannot evaluate is left out of the comparison and listed in ``errors``.
    """
    engines = [(Engine(rules), KpiEngine.for_items(rules, items)) for rules in (old, new)]
    matrix = {before: dict.fromkeys(WORK_TYPES, 0) for before in WORK_TYPES}
    diffs: list[ItemDiff] = []
    errors: list[EvaluationError] = []
    compared = 0
    for item in items:
        before, after = (_evaluate(engine, kpis, item, now) for engine, kpis in engines)
        if isinstance(before, str) or isinstance(after, str):
            errors.append(
                EvaluationError(
                    item.key,
                    before if isinstance(before, str) else None,
                    after if isinstance(after, str) else None,
                )
            )
            continue
        compared += 1
        (old_class, old_kpis), (new_class, new_kpis) = before, after
        matrix[old_class.work_type][new_class.work_type] += 1
        diff = ItemDiff(
            item.key,
            item.system,
            item.type,
            item.status,
            Decision.of(old_class),
            Decision.of(new_class),
            tuple(_kpi_changes(item.key, old_kpis, new_kpis)),
        )
        if diff.changed or diff.kpis:
            diffs.append(diff)
    return RuleDiff(
        now=now,
        old_digest=old.digest,
        new_digest=new.digest,
        compared=compared,
        items=tuple(diffs),
        matrix=matrix,
        kpis=_kpi_stats(diffs),
        sync=_sync_fields(diffs, writeback),
        errors=tuple(errors),
    )
