"""What to write onto an item: desired values from the decision and KPIs, diffed against what
the item holds now. Pure: a connector supplies how its fields read and compare.

A write that would change nothing is never planned, so a re-sync of unchanged items makes
zero writes and bridge's own writes do not echo back as changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.model import Classification

__all__ = ["Applied", "SetFields", "UpsertSummary", "WriteOp", "desired_values", "diff_fields"]


@dataclass(frozen=True, slots=True)
class SetFields:
    """Set these fields (target id → value in bridge's terms; the connector encodes them)."""

    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UpsertSummary:
    """Create or update bridge's comment (or add a journal entry) with this content."""

    text: Any
    digest: str


WriteOp = SetFields | UpsertSummary


@dataclass(frozen=True, slots=True)
class Applied:
    """What an ``apply`` really wrote: field values set, summaries posted or edited.

    Planned and written differ: a comment found already up to date is not written, and a
    comment posted before its fields were refused was. Reports and the audit log count
    this, so they say what the ticketing system saw. A connector that raises after writing
    part of the plan attaches its ``Applied`` to the error as ``applied``.
    """

    fields: int = 0
    summaries: int = 0

    def __bool__(self) -> bool:
        return bool(self.fields or self.summaries)

    @property
    def detail(self) -> str:
        return f"{self.fields} field(s), {self.summaries} summary"


def desired_values(
    decision: Classification, kpis: Mapping[str, Any], mapping: Mapping[str, str]
) -> dict[str, Any]:
    """Target field → value for every mapped key: ``work_type``, ``phase``, ``rule`` or a KPI
    name. A KPI that does not apply to the item clears its field (None)."""
    facts: dict[str, Any] = {
        "work_type": decision.work_type,
        "phase": decision.phase,
        "rule": decision.rule,
    }
    return {
        target: facts[key] if key in facts else kpis.get(key) for key, target in mapping.items()
    }


def diff_fields(
    desired: Mapping[str, Any],
    current: Mapping[str, Any],
    same: Callable[[str, Any, Any], bool],
) -> dict[str, Any]:
    """The desired values that differ from the current ones, by the connector's comparison."""
    return {
        target: value
        for target, value in desired.items()
        if not same(target, current.get(target), value)
    }
