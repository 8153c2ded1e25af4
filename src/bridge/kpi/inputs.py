"""Reading KPI inputs from an item: the configured fields, tried in order, then defaults.

Defaults read the normalized fields, which both connectors already fill (Jira time
tracking and named custom fields; ServiceNow ``effort``, ``work_effort``, ``budget_cost``...),
so KPIs work without configuration. ``kpi.inputs`` in the rule set overrides any of them,
e.g. ``budget: raw.fields.customfield_10100``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from bridge.model import FIELD_TYPES, WorkItem
from bridge.rules.ast import FieldRef, KpiConfig
from bridge.rules.operators import as_instant, is_present

__all__ = ["DEFAULT_INPUTS", "Inputs", "number"]

DEFAULT_INPUTS: Mapping[str, tuple[str, ...]] = {
    "planned_start": ("planned_start",),
    "planned_end": ("planned_end", "due"),
    "resolved": ("resolved",),
    "estimate_hours": ("estimate_hours",),
    "spent_hours": ("spent_hours",),
    "remaining_hours": ("remaining_hours",),
    "budget": ("budget",),
    "actual_cost": ("actual_cost",),
    "percent_complete": ("percent_complete",),
    "satisfaction": ("satisfaction",),
}


def _ref(name: str) -> FieldRef:
    if name.startswith("raw."):
        return FieldRef(name, None, tuple(name[4:].split(".")))
    return FieldRef(name, FIELD_TYPES[name])


def number(value: Any) -> float | None:
    """A number from a normalized float or a raw JSON value ("1,250.50", {"value": 3}...)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        for key in ("rating", "value"):
            if key in value:
                return number(value[key])
        return None
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if ";" in text:  # ServiceNow currency "USD;1000.00"
            text = text.split(";", 1)[1]
        text = text.rstrip("%")
        try:
            return float(text)
        except ValueError:
            return None
    return None


class Inputs:
    """The fields each KPI input is read from, resolved once per rule set."""

    def __init__(self, config: KpiConfig) -> None:
        self.refs: dict[str, tuple[FieldRef, ...]] = {
            name: tuple(_ref(f) for f in fields) for name, fields in DEFAULT_INPUTS.items()
        }
        for name, refs in config.inputs.items():
            if refs:
                self.refs[name] = refs
        # Inputs read from exactly one normalized field: that field's name.
        self.plain: dict[str, str] = {
            name: refs[0].name
            for name, refs in self.refs.items()
            if len(refs) == 1 and refs[0].type is not None
        }

    def raw_value(self, item: WorkItem, name: str) -> Any:
        for ref in self.refs[name]:
            value = ref.get(item)
            if is_present(value):
                return value
        return None

    def number(self, item: WorkItem, name: str) -> float | None:
        refs = self.refs[name]
        if len(refs) == 1 and refs[0].type is not None:  # the default: one normalized field
            value = getattr(item, refs[0].name)
            return value if value is None or type(value) is float else number(value)
        for ref in refs:
            value = number(ref.get(item))
            if value is not None:
                if name == "percent_complete" and ref.is_raw and value > 1:
                    value /= 100  # raw fields hold percentages (45.5), not fractions
                return value
        return None

    def moment(self, item: WorkItem, name: str) -> date | datetime | None:
        """A date stays a date (its meaning needs the calendar's zone); else a UTC instant."""
        refs = self.refs[name]
        if len(refs) == 1 and refs[0].type is not None:  # normalized fields are UTC already
            value = getattr(item, refs[0].name)
            if value is None or isinstance(value, date):
                return value
        for ref in refs:
            value = ref.get(item)
            if isinstance(value, datetime):
                return value.astimezone(UTC)
            if isinstance(value, date):
                return value
            if isinstance(value, str) and value:
                if len(value) == 10:
                    try:
                        return date.fromisoformat(value)
                    except ValueError:
                        pass
                instant = as_instant(value)
                if instant is not None:
                    return instant
        return None
