"""Portfolio figures: KPIs aggregated across items, by project, by service or by any field.

Ratios are of sums (Σ EV / Σ PV), never means of ratios, so a large project weighs more
than a small one — the PMI convention for rolled-up SPI and CPI.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.kpi.result import KpiResult
from bridge.model import Classification, WorkItem

__all__ = ["Evaluated", "GroupFigures", "group_key", "portfolio", "wilson"]

NONE_GROUP = "(none)"


@dataclass(frozen=True, slots=True)
class Evaluated:
    """One item with its classification and KPIs, the unit the report aggregates."""

    item: WorkItem
    decision: Classification
    kpis: KpiResult
    #: The configured source the item came from (a bridge.yaml source name); None for an
    #: export, where the item's system stands in.
    source: str | None = None


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """The portfolio KPIs of one group (KPIS.md, "Portfolio")."""

    group: str
    items: int
    work_mix: Mapping[str, Mapping[str, float]]
    csat_top2_pct: float | None
    csat_mean: float | None
    csat_n: int
    low_sample: bool
    sla_attainment_pct: float | None
    sla_cycles: int
    tco_total: float | None
    spi: float | None
    cpi: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "items": self.items,
            "work_mix": {k: dict(v) for k, v in self.work_mix.items()},
            "csat_top2_pct": self.csat_top2_pct,
            "csat_mean": self.csat_mean,
            "csat_n": self.csat_n,
            "low_sample": self.low_sample,
            "sla_attainment_pct": self.sla_attainment_pct,
            "sla_cycles": self.sla_cycles,
            "tco_total": self.tco_total,
            "spi": self.spi,
            "cpi": self.cpi,
        }


def group_key(by: str) -> Callable[[WorkItem], str]:
    """How items are grouped: ``project``, ``service``, a field name or ``raw.<path>``."""
    if by.startswith("raw."):
        path = by[4:].split(".")

        def raw_key(item: WorkItem) -> str:
            value: Any = item.raw
            for part in path:
                value = value.get(part) if isinstance(value, Mapping) else None
            if isinstance(value, Mapping):
                value = value.get("display_value", value.get("value"))
            return NONE_GROUP if value in (None, "") else str(value)

        return raw_key

    def field_key(item: WorkItem) -> str:
        value = getattr(item, by)
        if isinstance(value, tuple):
            return ", ".join(value) if value else NONE_GROUP
        return NONE_GROUP if value in (None, "") else str(value)

    return field_key


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion, in percent (95 % by default), or None for
    n = 0. Why Wilson: unlike the normal approximation it stays inside 0–100 % and is honest
    at small n and at 0 % or 100 %, which is where CSAT samples of a few ratings live; an
    interval says how sure a figure is, where a fixed "low n" threshold only says "unsure"."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _sums(members: list[Evaluated], a: str, b: str) -> tuple[float, float] | None:
    """Σ a and Σ b over the members that have both, or None when none has."""
    pairs = [
        (values[a], values[b])
        for e in members
        if isinstance((values := e.kpis.values).get(a), float) and isinstance(values.get(b), float)
    ]
    if not pairs:
        return None
    return sum(x for x, _ in pairs), sum(y for _, y in pairs)


def _figures(group: str, members: list[Evaluated], min_sample: int) -> GroupFigures:
    mix = Counter(e.decision.work_type for e in members)
    total = len(members)
    ratings = [v for e in members if isinstance(v := e.kpis.values.get("csat.rating"), float)]
    completed = [flag for e in members for flag in e.kpis.facts.get("sla_completed", [])]
    met = sum(1 for breached in completed if not breached)
    tco = [
        v
        for e in members
        if e.decision.work_type == "service"
        if isinstance(v := e.kpis.values.get("tco.total"), float)
    ]
    ev_pv = _sums(members, "evm.ev", "evm.pv")
    ev_ac = _sums(members, "evm.ev", "evm.ac")
    return GroupFigures(
        group=group,
        items=total,
        work_mix={
            w: {"count": mix[w], "share": mix[w] / total if total else 0.0}
            for w in ("project", "service", "unclassified")
        },
        csat_top2_pct=_ratio(100.0 * sum(1 for r in ratings if r >= 4), len(ratings)),
        csat_mean=_ratio(sum(ratings), len(ratings)),
        csat_n=len(ratings),
        low_sample=len(ratings) < min_sample,
        sla_attainment_pct=_ratio(100.0 * met, len(completed)),
        sla_cycles=len(completed),
        tco_total=sum(tco) if tco else None,
        spi=_ratio(*ev_pv) if ev_pv else None,
        cpi=_ratio(*ev_ac) if ev_ac else None,
    )


def portfolio(
    evaluated: Iterable[Evaluated], by: str | None, *, min_sample: int = 30
) -> tuple[list[GroupFigures], GroupFigures]:
    """Figures per group (sorted by name) and for all items together."""
    everything = list(evaluated)
    groups: dict[str, list[Evaluated]] = defaultdict(list)
    if by is not None:
        key = group_key(by)
        for e in everything:
            groups[key(e.item)].append(e)
    rows = [_figures(name, groups[name], min_sample) for name in sorted(groups)]
    return rows, _figures("all items", everything, min_sample)
