"""Portfolio sums are exact and built incrementally: the same figures whatever order the
items come in, from whatever source, with nothing kept per item."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from bridge.kpi.portfolio import Evaluated, ExactSum, Portfolio, portfolio, wilson
from bridge.kpi.result import KpiResult
from bridge.model import Classification, WorkItem

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@given(st.lists(finite, max_size=80))
def test_the_running_sum_is_math_fsum_of_everything_added(values: list[float]) -> None:
    total = ExactSum()
    for value in values:
        total.add(value)
    assert total.value == math.fsum(values)
    assert total.count == len(values)


@given(st.lists(finite, max_size=40), st.randoms())
def test_the_order_of_the_items_does_not_change_the_sum(values: list[float], rng) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(values)
    rng.shuffle(shuffled)
    one, two = ExactSum(), ExactSum()
    for a, b in zip(values, shuffled, strict=True):
        one.add(a)
        two.add(b)
    assert one.value == two.value


def test_a_sum_past_the_largest_float_is_infinite_not_an_error() -> None:
    total = ExactSum()
    for value in (1.7e308, 1.7e308, -1.0):
        total.add(value)
    assert total.value == math.inf


def _item(n: int, rng: random.Random) -> Evaluated:
    kpis = KpiResult(
        {
            "csat.rating": float(rng.randint(1, 5)),
            "tco.total": rng.uniform(0, 1e4) / 3,
            "tco.labour_cost": 0.1 * n,
            "tco.other_cost": 0.2,
            "evm.ev": rng.uniform(0, 1e5) / 7,
            "evm.pv": rng.uniform(1, 1e5) / 3,
            "evm.ac": rng.uniform(1, 1e5) / 11,
        }
    )
    kpis.facts["sla_completed"] = [rng.random() < 0.2 for _ in range(rng.randint(0, 3))]
    work = ("service", "project")[n % 2]
    return Evaluated(
        WorkItem(f"K-{n}", "jira", service=f"S{n % 3}", labels=("a", "b")[: n % 3]),
        Classification(work, None, None),  # type: ignore[arg-type]
        kpis,
    )


def test_every_figure_is_the_same_in_any_order() -> None:
    rng = random.Random(15)
    items = [_item(n, rng) for n in range(500)]
    reordered = list(items)
    random.Random(2).shuffle(reordered)
    for by in (None, "service", "labels"):
        first, second = portfolio(items, by), portfolio(reordered, by)
        assert [r.as_dict() for r in first[0]] == [r.as_dict() for r in second[0]]
        assert first[1].as_dict() == second[1].as_dict()


def test_the_incremental_portfolio_counts_what_the_contract_says() -> None:
    tally = Portfolio("labels", min_sample=3)
    rng = random.Random(3)
    items = [_item(n, rng) for n in range(9)]
    for e in items:
        tally.add(e)
    rows, total = tally.result()
    assert [r.group for r in rows] == ["(none)", "a", "b"]
    assert {r.group: r.items for r in rows} == {"(none)": 3, "a": 6, "b": 3}
    ratings = [e.kpis.values["csat.rating"] for e in items]
    top2 = sum(1 for r in ratings if r >= 4)
    assert total.csat_top2_pct == 100.0 * top2 / 9
    assert total.csat_top2_ci == wilson(top2, 9)
    assert total.csat_mean == math.fsum(ratings) / 9
    clocks = [flag for e in items for flag in e.kpis.facts["sla_completed"]]
    assert total.sla_cycles == len(clocks)
    assert total.sla_items == sum(1 for e in items if e.kpis.facts["sla_completed"])
    services = [e.kpis.values for e in items if e.decision.work_type == "service"]
    assert total.tco_total == math.fsum(v["tco.total"] for v in services)
    assert total.tco_labour == math.fsum(v["tco.labour_cost"] for v in services)
    assert total.spi == math.fsum(e.kpis.values["evm.ev"] for e in items) / math.fsum(
        e.kpis.values["evm.pv"] for e in items
    )
    assert (total.spi_items, total.cpi_items) == (9, 9)


@given(st.lists(st.lists(finite, max_size=20), max_size=6))
def test_merged_sums_are_math_fsum_of_every_part(parts: list[list[float]]) -> None:
    """What --jobs workers add up separately merges into the exact sum of everything."""
    merged = ExactSum()
    for part in parts:
        total = ExactSum()
        for value in part:
            total.add(value)
        merged.merge(total)
    everything = [value for part in parts for value in part]
    assert merged.value == math.fsum(everything)
    assert merged.count == len(everything)


def test_merging_an_infinite_sum_gives_an_infinite_sum() -> None:
    finite_part, infinite_part = ExactSum(), ExactSum()
    finite_part.add(2.0)
    for value in (1.7e308, 1.7e308):
        infinite_part.add(value)
    finite_part.merge(infinite_part)
    assert finite_part.value == math.inf
    assert finite_part.count == 3


def test_report_tallies_merged_from_files_in_other_processes_equal_one_tally() -> None:
    """Each worker adds up its files and the tallies travel pickled (the group-key
    function, a closure, is made again): the figures equal one tally of every item."""
    import pickle

    from bridge.kpi.portfolio import ReportTally

    rng = random.Random(21)
    items = [_item(n, rng) for n in range(300)]
    for group_by in (None, "labels", "service"):
        one = ReportTally(group_by, min_sample=5)
        for e in items:
            one.add(e)
        merged = ReportTally(group_by, min_sample=5)
        for start in range(0, 300, 70):
            part = ReportTally(group_by)
            for e in items[start : start + 70]:
                part.add(e)
            merged.merge(pickle.loads(pickle.dumps(part)))  # noqa: S301 - our own bytes
        assert merged.items == one.items == 300
        assert merged.everything.result()[1] == one.everything.result()[1]
        for name, (section, _) in one.sections.items():
            assert merged.sections[name][0].result() == section.result()


def test_figures_grouped_differently_do_not_merge() -> None:
    import pytest

    with pytest.raises(ValueError, match="cannot merge figures by labels"):
        Portfolio("service").merge(Portfolio("labels"))
