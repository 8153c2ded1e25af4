"""Project KPIs: earned value (with earned schedule), effort and schedule variance, cost.

Formulas and names are those of ``KPIS.md`` (PMI Practice Standard for EVM, GAO-20-195G).
Every function is pure: the item's inputs, the calendar and ``now`` in, values out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, NamedTuple, cast, overload

from bridge.kpi.calendar import Calendar
from bridge.kpi.result import KpiResult, Missing

__all__ = [
    "ProjectInputs",
    "as_instant_on",
    "cost_kpis",
    "effort_kpis",
    "evm_kpis",
    "schedule_kpis",
]

DAY = 86400.0

Value = float | Missing


class ProjectInputs(NamedTuple):
    """What the project KPIs read from one item (None: not available). A NamedTuple: one is
    built per project item, and a frozen dataclass pays an ``object.__setattr__`` per field."""

    done: bool
    planned_start: date | datetime | None
    planned_end: date | datetime | None
    resolved: datetime | None
    estimate_hours: float | None
    spent_hours: float | None
    remaining_hours: float | None
    budget: float | None
    actual_cost: float | None
    percent_field: float | None
    rate: float | None


def as_instant_on(value: date | datetime | None, calendar: Calendar) -> datetime | None:
    """Date-only fields mean local midnight at the start of that date in the calendar's zone."""
    if value is None or isinstance(value, datetime):
        return value
    return calendar.local_midnight(value)


def _local_date(value: date | datetime, calendar: Calendar) -> date:
    return calendar.local_date(value) if isinstance(value, datetime) else value


@overload
def _need(name: str, value: Missing) -> Missing: ...
@overload
def _need(name: str, value: Value | None) -> Missing | None: ...
def _need(name: str, value: Value | None) -> Missing | None:
    """The reason a dependent KPI inherits (typed ``Missing`` once the caller has narrowed
    ``value``, so ``_need(a, x) or _need(b, y)`` forwards the first reason as-is)."""
    return Missing(f"needs {name}: {value.reason}") if isinstance(value, Missing) else None


def _combine(formula: Callable[..., float], *operands: tuple[str, Value]) -> Value:
    """``formula(*values)``, or the first operand's reason (prefixed) when one is missing."""
    values = []
    for name, value in operands:
        if isinstance(value, Missing):
            return Missing(f"needs {name}: {value.reason}")
        values.append(value)
    return formula(*values)


def _minus(a: float, b: float) -> float:
    return a - b


def _times(a: float, b: float) -> float:
    return a * b


def _bac(p: ProjectInputs) -> Value:
    if p.budget is not None:
        return p.budget
    if p.estimate_hours is None:
        return Missing("no budget and no original estimate")
    if p.rate is None:
        return Missing("no budget, and no hourly_rate to price the original estimate")
    return p.estimate_hours * p.rate


def _percent_complete(p: ProjectInputs) -> tuple[Value, str | None]:
    if p.percent_field is not None:
        return min(max(p.percent_field, 0.0), 1.0), "field"
    if p.done:
        return 1.0, "done"
    if p.spent_hours is not None and p.remaining_hours is not None:
        total = p.spent_hours + p.remaining_hours
        if total > 0:
            return p.spent_hours / total, "effort"
    return Missing(
        "no percent-complete field, not done, and no time spent plus remaining "
        "estimate to derive it from"
    ), None


def _ac(p: ProjectInputs) -> Value:
    if p.actual_cost is not None:
        return p.actual_cost
    if p.spent_hours is None:
        return Missing("no actual cost and no time spent")
    if p.rate is None:
        return Missing("no actual cost, and no hourly_rate to price the time spent")
    return p.spent_hours * p.rate


def _planned_span(p: ProjectInputs, calendar: Calendar) -> tuple[datetime, datetime] | Missing:
    start = as_instant_on(p.planned_start, calendar)
    end = as_instant_on(p.planned_end, calendar)
    if start is None:
        return Missing("no planned start")
    if end is None:
        return Missing("no planned end (due date)")
    if end <= start:
        return Missing("the planned end is not after the planned start")
    return start, end


def evm_kpis(p: ProjectInputs, calendar: Calendar, now: datetime, out: KpiResult) -> None:
    """``evm.*``: budget at completion through the variance at completion, plus earned
    schedule in days (which, unlike SV in money, stays meaningful after completion)."""
    bac = _bac(p)
    span = _planned_span(p, calendar)
    percent, source = _percent_complete(p)
    ac = _ac(p)
    if (
        not isinstance(bac, Missing)
        and not isinstance(span, Missing)
        and not isinstance(percent, Missing)
        and not isinstance(ac, Missing)
        and ac != 0
        and (p.resolved is not None or not p.done)
        and _evm_complete(bac, span, percent, source, ac, p, now, out)
    ):
        return
    out.put("evm.bac", bac)
    if isinstance(span, Missing):
        planned_pct: Value = span
    else:
        start, end = span
        fraction = (now - start).total_seconds() / (end - start).total_seconds()
        planned_pct = min(max(fraction, 0.0), 1.0)
    out.put("evm.planned_pct", planned_pct)
    out.put("evm.percent_complete", percent)
    out.values["evm.percent_complete_source"] = source

    pv = out.put("evm.pv", _combine(_times, ("evm.bac", bac), ("evm.planned_pct", planned_pct)))
    ev = out.put("evm.ev", _combine(_times, ("evm.bac", bac), ("evm.percent_complete", percent)))
    out.put("evm.ac", ac)
    out.put("evm.sv", _combine(_minus, ("evm.ev", ev), ("evm.pv", pv)))
    out.put("evm.cv", _combine(_minus, ("evm.ev", ev), ("evm.ac", ac)))

    if isinstance(ev, Missing) or isinstance(pv, Missing):
        out.put("evm.spi", _need("evm.ev", ev) or _need("evm.pv", pv))
    elif pv == 0:
        out.null("evm.spi", "evm.pv is 0 (the planned start has not been reached)")
    else:
        out.put("evm.spi", ev / pv)

    cpi: Value | None
    if isinstance(ev, Missing) or isinstance(ac, Missing):
        cpi = out.put("evm.cpi", _need("evm.ev", ev) or _need("evm.ac", ac))
    elif ac == 0:
        out.null("evm.cpi", "evm.ac is 0 (no cost recorded yet)")
        cpi = None
    else:
        cpi = out.put("evm.cpi", ev / ac)

    if isinstance(cpi, Missing) or isinstance(bac, Missing):
        reason = _need("evm.cpi", cpi) or _need("evm.bac", bac) or Missing("unreachable")
        for name in ("evm.eac", "evm.etc", "evm.vac"):
            out.put(name, reason)
    elif cpi is None or cpi == 0:
        why = "evm.cpi is null (no cost recorded yet)" if cpi is None else "evm.cpi is 0"
        for name in ("evm.eac", "evm.etc", "evm.vac"):
            out.null(name, why)
    else:
        eac = bac / cpi
        out.put("evm.eac", eac)
        out.put("evm.etc", _combine(_minus, ("evm.eac", eac), ("evm.ac", ac)))
        out.put("evm.vac", bac - eac)

    es_days: Value
    if isinstance(span, Missing):
        es_days = span
    else:
        start, end = span
        planned_days = (end - start).total_seconds() / DAY
        es_days = _combine(lambda pc: pc * planned_days, ("evm.percent_complete", percent))
    at_days = _at_days(p, calendar, now)
    out.put("evm.es_days", es_days)
    out.put("evm.at_days", at_days)
    out.put("evm.sv_days", _combine(_minus, ("evm.es_days", es_days), ("evm.at_days", at_days)))


def _at_days(p: ProjectInputs, calendar: Calendar, now: datetime) -> Value:
    """Actual time reads only the planned start (and the finish), not the planned span: an
    item without a planned end, or with one not after its start, still has it."""
    start = as_instant_on(p.planned_start, calendar)
    if start is None:
        return Missing("no planned start")
    if p.done and p.resolved is None:
        return Missing("done but no resolved date")
    finish = p.resolved if p.done and p.resolved is not None else now
    return (finish - start).total_seconds() / DAY


def _evm_complete(
    bac: float,
    span: tuple[datetime, datetime],
    percent: float,
    source: str | None,
    ac: float,
    p: ProjectInputs,
    now: datetime,
    out: KpiResult,
) -> bool:
    """Every ``evm.*`` value when all inputs are there and no ratio divides by zero (the
    usual case: one dict update instead of a reason check per KPI). The arithmetic is that of
    :func:`evm_kpis`, operation for operation, so both give the same floats. False: nothing
    written, take the general path."""
    start, end = span
    planned_seconds = (end - start).total_seconds()
    planned_pct = min(max((now - start).total_seconds() / planned_seconds, 0.0), 1.0)
    pv = bac * planned_pct
    ev = bac * percent
    if pv == 0 or ev == 0:
        return False
    cpi = ev / ac
    eac = bac / cpi
    es_days = percent * (planned_seconds / DAY)
    finish = p.resolved if p.done and p.resolved is not None else now
    at_days = (finish - start).total_seconds() / DAY
    out.values.update(
        {
            "evm.bac": bac,
            "evm.planned_pct": planned_pct,
            "evm.percent_complete": percent,
            "evm.percent_complete_source": source,
            "evm.pv": pv,
            "evm.ev": ev,
            "evm.ac": ac,
            "evm.sv": ev - pv,
            "evm.cv": ev - ac,
            "evm.spi": ev / pv,
            "evm.cpi": cpi,
            "evm.eac": eac,
            "evm.etc": eac - ac,
            "evm.vac": bac - eac,
            "evm.es_days": es_days,
            "evm.at_days": at_days,
            "evm.sv_days": es_days - at_days,
        }
    )
    return True


def effort_kpis(p: ProjectInputs, out: KpiResult) -> None:
    """``effort.*``: hours planned (original estimate), spent and forecast, and the variance."""
    estimate, spent = p.estimate_hours, p.spent_hours
    if estimate and spent is not None and (p.done or p.remaining_hours is not None):
        forecast_hours = spent if p.done else spent + cast(float, p.remaining_hours)
        out.values.update(  # everything known: no reason to check per KPI
            {
                "effort.planned_hours": estimate,
                "effort.actual_hours": spent,
                "effort.forecast_hours": forecast_hours,
                "effort.variance_pct": (forecast_hours - estimate) / estimate * 100,
            }
        )
        return
    planned = out.put(
        "effort.planned_hours",
        p.estimate_hours if p.estimate_hours is not None else Missing("no original estimate"),
    )
    actual = out.put(
        "effort.actual_hours",
        p.spent_hours if p.spent_hours is not None else Missing("no time spent"),
    )
    forecast: Value
    if isinstance(actual, Missing):
        forecast = _need("effort.actual_hours", actual)
    elif p.done:
        forecast = actual
    elif p.remaining_hours is None:
        forecast = Missing("open, and no remaining estimate")
    else:
        forecast = actual + p.remaining_hours
    out.put("effort.forecast_hours", forecast)
    if isinstance(planned, Missing) or isinstance(forecast, Missing):
        out.put(
            "effort.variance_pct",
            _need("effort.planned_hours", planned) or _need("effort.forecast_hours", forecast),
        )
    elif planned == 0:
        out.null("effort.variance_pct", "effort.planned_hours is 0")
    else:
        out.put("effort.variance_pct", (forecast - planned) / planned * 100)


def schedule_kpis(p: ProjectInputs, calendar: Calendar, now: datetime, out: KpiResult) -> None:
    """``schedule.*``: days late (+) or early (−) against the due date, in calendar days and
    in the calendar's working days. An open item is never early, only late or not yet due."""
    if p.planned_end is None:
        reason = Missing("no due date (planned end)")
        out.put("schedule.slip_days", reason)
        out.put("schedule.slip_business_days", reason)
        return
    due = _local_date(p.planned_end, calendar)
    if p.done:
        if p.resolved is None:
            reason = Missing("done but no resolved date")
            out.put("schedule.slip_days", reason)
            out.put("schedule.slip_business_days", reason)
            return
        finished = calendar.local_date(p.resolved)
        out.put("schedule.slip_days", (finished - due).days)
        out.put("schedule.slip_business_days", calendar.working_days_between(due, finished))
        return
    today = calendar.local_date(now)
    out.put("schedule.slip_days", max(0, (today - due).days))
    out.put(
        "schedule.slip_business_days",
        calendar.working_days_between(due, today) if today > due else 0,
    )


def cost_kpis(out: KpiResult, evm: Mapping[str, Any] | None = None) -> None:
    """``cost.variance_pct`` = CV / EV × 100. ``evm`` names where CV and EV come from when a
    rule asks for cost without the EVM KPIs, which then stay out of ``out``."""
    source = out.values if evm is None else evm
    cv = source.get("evm.cv")
    ev = source.get("evm.ev")
    if cv is None or ev is None:
        out.put("cost.variance_pct", Missing("needs evm.cv and evm.ev"))
    elif ev == 0:
        out.null("cost.variance_pct", "evm.ev is 0 (nothing earned yet)")
    else:
        out.put("cost.variance_pct", cv / ev * 100)
