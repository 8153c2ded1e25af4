"""CSAT and TCO of one item; portfolio aggregates across items."""

from __future__ import annotations

import pytest

from bridge.kpi.portfolio import Evaluated, portfolio
from bridge.kpi.result import KpiResult
from bridge.kpi.service import csat_kpis, tco_kpis
from bridge.model import Classification, WorkItem


@pytest.mark.parametrize(
    ("rating", "satisfied"), [(5.0, True), (4.0, True), (3.0, False), (1.0, False)]
)
def test_csat(rating: float, satisfied: bool) -> None:
    out = KpiResult()
    csat_kpis(rating, out)
    assert out.values == {"csat.rating": rating, "csat.satisfied": satisfied}


@pytest.mark.parametrize(
    ("rating", "reason"),
    [
        (None, "no satisfaction rating"),
        (7.0, "satisfaction 7 is not a rating from 1 to 5"),
        (0.0, "satisfaction 0 is not a rating from 1 to 5"),
    ],
)
def test_csat_missing(rating: float | None, reason: str) -> None:
    out = KpiResult()
    csat_kpis(rating, out)
    assert out.values == {"csat.rating": None, "csat.satisfied": None}
    assert out.missing[0] == {"kpi": "csat.rating", "reason": reason}


def test_tco_labour_plus_other_costs() -> None:
    out = KpiResult()
    tco_kpis(2.5, 80.0, [40.0, 12.5], out)
    assert out.values == {
        "tco.labour_hours": 2.5,
        "tco.labour_cost": 200.0,
        "tco.other_cost": 52.5,
        "tco.total": 252.5,
    }


def test_tco_without_cost_fields_and_without_rate() -> None:
    no_fields = KpiResult()
    tco_kpis(1.0, 50.0, [], no_fields)
    assert no_fields.values["tco.other_cost"] == 0.0
    no_rate = KpiResult()
    tco_kpis(1.0, None, [10.0], no_rate)
    assert no_rate.values["tco.labour_cost"] is None
    assert no_rate.values["tco.total"] is None
    assert no_rate.missing[-1] == {
        "kpi": "tco.total",
        "reason": "needs tco.labour_cost: no hourly_rate configured",
    }


def evaluated(
    key: str,
    work_type: str,
    service: str | None = None,
    project: str | None = None,
    **values: object,
) -> Evaluated:
    result = KpiResult(values=dict(values))
    if "completed" in values:
        result.facts["sla_completed"] = values.pop("completed")
        del result.values["completed"]
    return Evaluated(
        WorkItem(key, "jira", service=service, project=project),
        Classification(work_type, None, None),
        result,
    )  # type: ignore[arg-type]


def test_portfolio_by_service_and_project() -> None:
    rows = [
        evaluated(
            "S1",
            "service",
            service="Email",
            **{"csat.rating": 5.0, "tco.total": 100.0},
            completed=[False, True],
        ),
        evaluated(
            "S2",
            "service",
            service="Email",
            **{"csat.rating": 3.0, "tco.total": 50.0},
            completed=[False],
        ),
        evaluated("S3", "service", service="VPN", **{"csat.rating": 4.0}),
        evaluated(
            "P1", "project", project="PMO", **{"evm.ev": 400.0, "evm.pv": 500.0, "evm.ac": 500.0}
        ),
        evaluated(
            "P2", "project", project="PMO", **{"evm.ev": 600.0, "evm.pv": 500.0, "evm.ac": 300.0}
        ),
        evaluated("P3", "project", project="PMO", **{"evm.ev": None}),
        evaluated("U1", "unclassified"),
    ]
    groups, total = portfolio(rows, "service", min_sample=2)
    by_name = {g.group: g for g in groups}
    email = by_name["Email"]
    assert email.csat_top2_pct == 50.0
    assert email.csat_mean == 4.0
    assert (email.csat_n, email.low_sample) == (2, False)
    assert email.sla_attainment_pct == pytest.approx(200 / 3)
    assert email.sla_cycles == 3
    assert email.tco_total == 150.0
    assert by_name["VPN"].low_sample is True
    assert by_name["VPN"].tco_total is None
    projects, _ = portfolio(rows, "project")
    pmo = {g.group: g for g in projects}["PMO"]
    assert pmo.spi == pytest.approx(1000 / 1000)
    assert pmo.cpi == pytest.approx(1000 / 800)  # ratio of sums, not mean of ratios
    assert total.work_mix["service"] == {"count": 3, "share": 3 / 7}
    assert total.work_mix["unclassified"]["count"] == 1
    assert total.items == 7
