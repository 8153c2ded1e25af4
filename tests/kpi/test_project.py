"""Worked examples, computed by hand, for every project formula of KPIS.md."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bridge.kpi.calendar import Calendar
from bridge.kpi.calendar_spec import calendar_from_spec
from bridge.kpi.compute import DEFAULT_KPI_CALENDAR
from bridge.kpi.project import ProjectInputs, cost_kpis, effort_kpis, evm_kpis, schedule_kpis
from bridge.kpi.result import KpiResult

CAL = DEFAULT_KPI_CALENDAR  # Monday to Friday, UTC
BASE = ProjectInputs(
    done=False,
    planned_start=date(2026, 1, 1),
    planned_end=date(2026, 1, 31),
    resolved=None,
    estimate_hours=100.0,
    spent_hours=60.0,
    remaining_hours=50.0,
    budget=10_000.0,
    actual_cost=5_000.0,
    percent_field=0.4,
    rate=80.0,
)
MID = datetime(2026, 1, 16, tzinfo=UTC)  # 15 of 30 planned days gone


def evm(p: ProjectInputs = BASE, now: datetime = MID, cal: Calendar = CAL) -> KpiResult:
    out = KpiResult()
    evm_kpis(p, cal, now, out)
    return out


def test_earned_value_worked_example() -> None:
    v = evm().values
    assert v["evm.bac"] == 10_000
    assert v["evm.planned_pct"] == 0.5
    assert v["evm.percent_complete"] == 0.4
    assert v["evm.percent_complete_source"] == "field"
    assert v["evm.pv"] == 5_000
    assert v["evm.ev"] == 4_000
    assert v["evm.ac"] == 5_000
    assert v["evm.sv"] == -1_000
    assert v["evm.cv"] == -1_000
    assert v["evm.spi"] == pytest.approx(0.8)
    assert v["evm.cpi"] == pytest.approx(0.8)
    assert v["evm.eac"] == pytest.approx(12_500)
    assert v["evm.etc"] == pytest.approx(7_500)
    assert v["evm.vac"] == pytest.approx(-2_500)
    assert v["evm.es_days"] == pytest.approx(12)  # 0.4 × 30 planned days
    assert v["evm.at_days"] == pytest.approx(15)
    assert v["evm.sv_days"] == pytest.approx(-3)


def test_cost_variance_pct() -> None:
    out = evm()
    cost_kpis(out)
    assert out.values["cost.variance_pct"] == pytest.approx(-25.0)  # -1000 / 4000


def test_bac_and_ac_from_hours_and_rate() -> None:
    v = evm(BASE._replace(budget=None, actual_cost=None)).values
    assert v["evm.bac"] == 8_000  # 100 h × 80
    assert v["evm.ac"] == 4_800  # 60 h × 80
    assert v["evm.ev"] == pytest.approx(3_200)


def test_percent_complete_sources() -> None:
    done = evm(
        BASE._replace(percent_field=None, done=True, resolved=datetime(2026, 2, 1, tzinfo=UTC))
    ).values
    assert (done["evm.percent_complete"], done["evm.percent_complete_source"]) == (1.0, "done")
    effort = evm(BASE._replace(percent_field=None)).values
    assert effort["evm.percent_complete"] == pytest.approx(60 / 110)
    assert effort["evm.percent_complete_source"] == "effort"


def test_planned_pct_is_clamped_and_done_items_use_resolution_for_actual_time() -> None:
    late = evm(now=datetime(2026, 3, 1, tzinfo=UTC)).values
    assert late["evm.planned_pct"] == 1.0
    finished = evm(
        BASE._replace(done=True, resolved=datetime(2026, 2, 5, 12, tzinfo=UTC)),
        now=datetime(2026, 6, 1, tzinfo=UTC),
    ).values
    assert finished["evm.at_days"] == pytest.approx(35.5)
    assert finished["evm.sv_days"] == pytest.approx(0.4 * 30 - 35.5)  # explicit 40 % field


def test_missing_inputs_are_reported_with_reasons_never_zero() -> None:
    out = evm(BASE._replace(budget=None, estimate_hours=None, planned_start=None))
    v = out.values
    assert v["evm.bac"] is None
    assert v["evm.pv"] is None
    assert v["evm.spi"] is None
    reasons = {m["kpi"]: m["reason"] for m in out.missing}
    assert reasons["evm.bac"] == "no budget and no original estimate"
    assert reasons["evm.planned_pct"] == "no planned start"
    assert reasons["evm.pv"] == "needs evm.bac: no budget and no original estimate"
    assert reasons["evm.es_days"] == "no planned start"
    assert v["evm.ac"] == 5_000  # what can be computed still is


def test_no_rate_to_price_hours() -> None:
    out = evm(BASE._replace(budget=None, rate=None))
    assert {m["kpi"]: m["reason"] for m in out.missing}["evm.bac"] == (
        "no budget, and no hourly_rate to price the original estimate"
    )


def test_division_by_zero_gives_null_with_a_reason() -> None:
    before_start = evm(BASE._replace(actual_cost=0.0), now=datetime(2025, 12, 1, tzinfo=UTC))
    v = before_start.values
    assert v["evm.pv"] == 0
    assert v["evm.spi"] is None
    assert v["evm.cpi"] is None
    assert v["evm.eac"] is None
    reasons = {m["kpi"]: m["reason"] for m in before_start.missing}
    assert reasons["evm.spi"] == "evm.pv is 0 (the planned start has not been reached)"
    assert reasons["evm.cpi"] == "evm.ac is 0 (no cost recorded yet)"
    assert reasons["evm.vac"] == "evm.cpi is null (no cost recorded yet)"
    zero_ev = evm(BASE._replace(percent_field=0.0))
    cost_kpis(zero_ev)
    assert zero_ev.values["evm.eac"] is None  # cpi = 0
    assert zero_ev.values["cost.variance_pct"] is None


def test_planned_end_before_start_is_missing() -> None:
    out = evm(BASE._replace(planned_end=date(2025, 12, 1)))
    assert out.values["evm.planned_pct"] is None
    assert out.missing[0]["reason"] == "the planned end is not after the planned start"


@pytest.mark.parametrize("planned_end", [None, date(2025, 12, 1)])
def test_actual_time_needs_only_the_planned_start(planned_end: date | None) -> None:
    out = evm(BASE._replace(planned_end=planned_end))
    v = out.values
    assert v["evm.at_days"] == pytest.approx(15)  # MID is 15 days after the planned start
    reasons = {m["kpi"]: m["reason"] for m in out.missing}
    assert "evm.at_days" not in reasons
    # The figures that read the planned span stay missing, with the span's reason.
    span_reason = reasons["evm.planned_pct"]
    assert reasons["evm.es_days"] == span_reason
    assert reasons["evm.sv_days"] == f"needs evm.es_days: {span_reason}"
    assert v["evm.pv"] is None


def test_actual_time_of_a_done_item_without_planned_end_runs_to_its_resolution() -> None:
    done = BASE._replace(planned_end=None, done=True, resolved=datetime(2026, 2, 5, 12, tzinfo=UTC))
    assert evm(done, now=datetime(2026, 6, 1, tzinfo=UTC)).values["evm.at_days"] == (
        pytest.approx(35.5)
    )
    unresolved = evm(BASE._replace(planned_end=None, done=True, resolved=None))
    reasons = {m["kpi"]: m["reason"] for m in unresolved.missing}
    assert reasons["evm.at_days"] == "done but no resolved date"
    no_start = evm(BASE._replace(planned_start=None, planned_end=None))
    assert {m["kpi"]: m["reason"] for m in no_start.missing}["evm.at_days"] == "no planned start"


def test_date_only_fields_are_local_midnight_in_the_calendar_zone() -> None:
    berlin = calendar_from_spec("b", {"timezone": "Europe/Berlin"})
    # 2026-03-29 is the spring-forward day; local midnight is still 23:00 UTC the day before.
    p = BASE._replace(planned_start=date(2026, 3, 29), planned_end=date(2026, 3, 31))
    v = evm(p, now=datetime(2026, 3, 30, 11, tzinfo=UTC), cal=berlin).values
    # start 2026-03-28T23:00Z, end 2026-03-30T22:00Z (CEST): 47 h planned, 36 h gone.
    assert v["evm.at_days"] == pytest.approx(36 / 24)
    assert v["evm.planned_pct"] == pytest.approx(36 / 47)


def test_effort_open_and_done() -> None:
    out = KpiResult()
    effort_kpis(BASE, out)
    assert out.values == {
        "effort.planned_hours": 100.0,
        "effort.actual_hours": 60.0,
        "effort.forecast_hours": 110.0,
        "effort.variance_pct": pytest.approx(10.0),
    }
    done = KpiResult()
    effort_kpis(BASE._replace(done=True), done)
    assert done.values["effort.forecast_hours"] == 60.0
    assert done.values["effort.variance_pct"] == pytest.approx(-40.0)


def test_effort_missing_and_zero_plan() -> None:
    out = KpiResult()
    effort_kpis(BASE._replace(remaining_hours=None, estimate_hours=0.0), out)
    reasons = {m["kpi"]: m["reason"] for m in out.missing}
    assert reasons["effort.forecast_hours"] == "open, and no remaining estimate"
    assert out.values["effort.variance_pct"] is None
    none = KpiResult()
    effort_kpis(BASE._replace(spent_hours=None), none)
    assert none.values["effort.actual_hours"] is None
    assert none.values["effort.forecast_hours"] is None


@pytest.mark.parametrize(
    ("done", "resolved", "now", "slip", "business"),
    [
        # due Sat 2026-01-31; resolved Tue 2026-02-03: Mon 2 and Tue 3 are working days
        (True, datetime(2026, 2, 3, 10, tzinfo=UTC), MID, 3, 2),
        # early: resolved Wed 2026-01-28 → Thu 29, Fri 30 (Sat 31 is not a working day)
        (True, datetime(2026, 1, 28, 10, tzinfo=UTC), MID, -3, -2),
        (True, datetime(2026, 1, 31, 18, tzinfo=UTC), MID, 0, 0),
        # open and overdue on Thu 2026-02-05: Mon..Thu
        (False, None, datetime(2026, 2, 5, 9, tzinfo=UTC), 5, 4),
        # open, not yet due
        (False, None, datetime(2026, 1, 20, tzinfo=UTC), 0, 0),
    ],
)
def test_schedule_slip(
    done: bool, resolved: datetime | None, now: datetime, slip: int, business: int
) -> None:
    out = KpiResult()
    schedule_kpis(BASE._replace(done=done, resolved=resolved), CAL, now, out)
    assert out.values == {"schedule.slip_days": slip, "schedule.slip_business_days": business}


def test_slip_counts_holidays_as_non_working() -> None:
    de = calendar_from_spec(
        "de",
        {
            "timezone": "Europe/Berlin",
            "hours": {"mon-fri": "08:00-17:00"},
            "holidays": {"country": "DE"},
        },
    )
    out = KpiResult()
    # due Thu 2026-12-24, resolved Mon 2026-12-28: Fri 25 and Sat/Sun are not working days
    schedule_kpis(
        BASE._replace(
            planned_end=date(2026, 12, 24),
            done=True,
            resolved=datetime(2026, 12, 28, 9, tzinfo=UTC),
        ),
        de,
        MID,
        out,
    )
    assert out.values == {"schedule.slip_days": 4, "schedule.slip_business_days": 1}


def test_slip_without_due_date_is_missing() -> None:
    out = KpiResult()
    schedule_kpis(BASE._replace(planned_end=None), CAL, MID, out)
    assert out.values == {"schedule.slip_days": None, "schedule.slip_business_days": None}
    assert out.missing[0]["reason"] == "no due date (planned end)"
