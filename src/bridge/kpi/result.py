"""The shape every KPI calculation writes into: values, and the reasons for what is missing.

A KPI whose inputs are missing is recorded as ``None`` *with a reason*, never as 0, so a
reader can tell "on budget" from "we don't know". Dependent KPIs inherit the reason. So does a
KPI whose arithmetic leaves the floats (finite inputs near 1e308 can overflow): JSON has no
Infinity or NaN, and a write-back of one would be refused (:meth:`KpiResult.finite`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

new_tuple: Callable[[type, Iterable[Any]], Any] = tuple.__new__
"""``new_tuple(SomeNamedTuple, values)``: a NamedTuple from values in field order, without
its generated ``__new__`` (a Python frame each; KPI code builds several per item)."""

__all__ = ["KpiResult", "Missing", "iso", "new_tuple"]


def iso(instant: datetime | None) -> str | None:
    """An instant as ISO 8601 UTC with a ``Z``, the form every output uses."""
    if instant is None:
        return None
    if instant.tzinfo is not UTC:  # calendar results are UTC already
        instant = instant.astimezone(UTC)
    return instant.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Missing:
    """Why a value could not be computed; passed along to everything that depends on it."""

    reason: str


class KpiResult:
    """KPI values by name (``evm.spi``...) and ``missing``: ``[{kpi, reason}]``."""

    __slots__ = ("facts", "missing", "values")

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = {} if values is None else values
        self.missing: list[dict[str, str]] = []
        # Figures the portfolio report aggregates but which are not KPIs of their own.
        self.facts: dict[str, Any] = {}

    def put(self, name: str, value: Any) -> Any:
        """Record a value, or a :class:`Missing` (recorded as None plus its reason)."""
        if isinstance(value, Missing):
            self.values[name] = None
            self.missing.append({"kpi": name, "reason": value.reason})
            return value
        self.values[name] = value
        return value

    def null(self, name: str, reason: str) -> None:
        """A KPI defined as null in this case (a division by zero), with the reason."""
        self.values[name] = None
        self.missing.append({"kpi": name, "reason": reason})

    def finite(self) -> KpiResult:
        """This result with every infinite or NaN value made null with its reason. The
        calculations do not check each operation (most items take one fast path); whoever
        hands KPIs on — to output, to a write-back — calls this once."""
        for name, value in self.values.items():
            if type(value) is float and not math.isfinite(value):
                self.null(
                    name,
                    f"{name} is not a finite number ({value}): its inputs are too large "
                    "to compute with",
                )
        return self
