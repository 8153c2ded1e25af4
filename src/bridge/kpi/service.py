"""Service KPIs of one item: customer satisfaction and its share of total cost of ownership."""

from __future__ import annotations

from collections.abc import Iterable

from bridge.kpi.result import KpiResult, Missing

__all__ = ["csat_kpis", "tco_kpis"]


def csat_kpis(rating: float | None, out: KpiResult) -> None:
    """``csat.rating`` (1–5) and ``csat.satisfied`` (rating ≥ 4, the top-two-box rule)."""
    if rating is None:
        reason = Missing("no satisfaction rating")
    elif not 1 <= rating <= 5:
        reason = Missing(f"satisfaction {rating:g} is not a rating from 1 to 5")
    else:
        out.values["csat.rating"] = rating
        out.values["csat.satisfied"] = rating >= 4
        return
    out.put("csat.rating", reason)
    out.put("csat.satisfied", reason)


def tco_kpis(
    spent_hours: float | None, rate: float | None, other_costs: Iterable[float], out: KpiResult
) -> None:
    """``tco.*``: labour (time spent × rate) plus the configured cost fields that are set."""
    if spent_hours is not None and rate is not None:
        labour = spent_hours * rate
        other_cost = float(sum(other_costs))
        out.values.update(  # everything known: no reason to check per KPI
            {
                "tco.labour_hours": spent_hours,
                "tco.labour_cost": labour,
                "tco.other_cost": other_cost,
                "tco.total": labour + other_cost,
            }
        )
        return
    labour_hours = out.put(
        "tco.labour_hours", spent_hours if spent_hours is not None else Missing("no time spent")
    )
    if isinstance(labour_hours, Missing):
        labour_cost = out.put("tco.labour_cost", Missing("needs tco.labour_hours: no time spent"))
    elif rate is None:
        labour_cost = out.put("tco.labour_cost", Missing("no hourly_rate configured"))
    else:
        labour_cost = out.put("tco.labour_cost", labour_hours * rate)
    other = out.put("tco.other_cost", float(sum(other_costs)))
    if isinstance(labour_cost, Missing):
        out.put("tco.total", Missing(f"needs tco.labour_cost: {labour_cost.reason}"))
    else:
        out.put("tco.total", labour_cost + other)
