"""How a write-back figure is written: ``round`` and ``refresh`` of a ``writeback.fields``
entry, their checks, the warning for a moving figure without a refresh, and the rounding."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bridge.connectors.files import read_export
from bridge.errors import ConfigError
from bridge.kpi.compute import KpiEngine
from bridge.kpi.next_change import MOVING_KPIS, moving
from bridge.plugins import default_registry
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules
from bridge.writeback.values import (
    MAPPED_FIELD_SCHEMA,
    WritebackOptions,
    apply_options,
    cadence_warning,
    check_writeback_options,
    numeric,
    option_problems,
    writeback_options,
)

REPO = Path(__file__).parent.parent.parent

# -- apply_options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "digits", "written"),
    [
        (0.9734, 2, 0.97),
        (0.125, 2, 0.13),  # round() gives 0.12 (half to even)
        (1.005, 2, 1.01),  # round() gives 1.0 (the binary value is just below)
        (-0.125, 2, -0.13),  # half away from zero, either side
        (2.5, 0, 3.0),
        (1234.5678, 6, 1234.5678),
        (3599.999999, 0, 3600.0),
        (1e-7, 6, 0.0),
    ],
)
def test_numbers_are_rounded_as_a_person_rounds_them(
    value: float, digits: int, written: float
) -> None:
    rounded = apply_options({"evm.spi": value}, {"evm.spi": WritebackOptions(round=digits)})
    assert rounded == {"evm.spi": written}
    assert type(rounded["evm.spi"]) is float


def test_a_negative_figure_rounded_to_nothing_is_zero_not_minus_zero() -> None:
    rounded = apply_options({"evm.sv": -0.001}, {"evm.sv": WritebackOptions(round=2)})
    assert math.copysign(1.0, rounded["evm.sv"]) == 1.0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        7,  # whole already: stays an int
        True,  # a yes/no flag is no number
        "running",
        None,
        datetime(2026, 3, 10, 16, tzinfo=UTC),
        math.inf,
        -math.inf,
        2.0**60 + 0.0,  # past 2**53 there is no fraction to round
    ],
)
def test_anything_but_a_finite_float_is_left_as_it_is(value: object) -> None:
    rounded = apply_options({"k": value}, {"k": WritebackOptions(round=0)})
    assert rounded["k"] is value


def test_nan_stays_nan() -> None:
    rounded = apply_options({"evm.cpi": math.nan}, {"evm.cpi": WritebackOptions(round=2)})
    assert math.isnan(rounded["evm.cpi"])  # type: ignore[arg-type]


def test_only_keys_with_a_round_are_rounded_and_nothing_is_added() -> None:
    values = {"evm.spi": 0.9734, "evm.cpi": 1.23456, "phase": "execution"}
    options = {
        "evm.spi": WritebackOptions(round=1),
        "evm.cpi": WritebackOptions(refresh=timedelta(days=1)),  # a refresh alone: no rounding
        "evm.pv": WritebackOptions(round=2),  # not computed for this item: stays absent
    }
    assert apply_options(values, options) == {
        "evm.spi": 1.0,
        "evm.cpi": 1.23456,
        "phase": "execution",
    }
    assert values["evm.spi"] == 0.9734  # the caller's values are not changed


# -- what round and refresh may be written on --------------------------------------------------


def test_numeric_is_what_the_kpi_engine_computes_as_numbers() -> None:
    """The bundled rules and export exercise every KPI (tests/test_config.py): a KPI whose
    values change kind fails here, not as a refused round in a customer's bridge.yaml."""
    now = datetime(2026, 11, 2, 9, tzinfo=UTC)
    rule_set = load_rules([REPO / "rules"])
    formats = list(default_registry().formats.values())
    items = list(read_export(REPO / "examples" / "export", formats))
    engine, kpis = Engine(rule_set), KpiEngine.for_items(rule_set, items)
    kinds: dict[str, set[bool]] = {}
    for item in items:
        for key, value in kpis.compute(item, engine.classify(item, now), now).values.items():
            if value is not None:
                is_number = isinstance(value, int | float) and not isinstance(value, bool)
                kinds.setdefault(key, set()).add(is_number)
    assert len(kinds) > 40
    assert {key: numeric(key) for key in kinds} == {key: kinds[key] == {True} for key in kinds}
    assert not any(numeric(key) for key in ("work_type", "phase", "rule"))


@pytest.mark.parametrize("key", sorted(k.replace("*", "time-to-resolution") for k in MOVING_KPIS))
def test_every_moving_figure_is_a_number_so_the_suggested_round_is_valid(key: str) -> None:
    assert moving(key)
    assert numeric(key)
    assert option_problems(key, {"field": "F", "round": 2, "refresh": "1d"}) == []


@pytest.mark.parametrize(
    ("key", "entry", "where", "fragment"),
    [
        ("phase", {"field": "Phase", "round": 2}, ("round",), "phase is text; remove round"),
        ("work_type", {"field": "T", "round": 0}, ("round",), "work_type is text"),
        ("sla.x.breached", {"field": "B", "round": 0}, ("round",), "is a yes/no flag"),
        ("csat.satisfied", {"field": "S", "round": 1}, ("round",), "is a yes/no flag"),
        ("sla.x.breach_time", {"field": "B", "round": 0}, ("round",), "is a date-time"),
        ("evm.percent_complete_source", {"field": "S", "round": 0}, ("round",), "is text"),
        (
            "schedule.slip_days",
            {"field": "Slip", "refresh": "1d"},
            ("refresh",),
            "does not move with the clock",
        ),
        (
            "sla.x.state",
            {"field": "State", "refresh": "1h"},
            ("refresh",),
            "between evaluations it never changes and a refresh would rewrite the same value; "
            "remove refresh",
        ),
        ("evm.spi", {"field": "SPI", "refresh": "30s"}, ("refresh",), "write at least 1m"),
        ("evm.spi", {"field": "SPI", "refresh": "59.9s"}, ("refresh",), "shorter than a minute"),
        ("evm.pv", {"field": "PV", "refresh": "999999w"}, ("refresh",), "write at most 36500d"),
    ],
)
def test_a_round_or_refresh_the_key_cannot_take_is_a_problem_at_its_place(
    key: str, entry: dict[str, Any], where: tuple[str, ...], fragment: str
) -> None:
    [problem] = option_problems(key, entry)
    assert problem.path == where
    assert fragment in problem.message


@pytest.mark.parametrize(
    ("key", "entry"),
    [
        ("evm.spi", {"field": "SPI", "round": 2, "refresh": "1d"}),
        ("sla.time-to-resolution.remaining_seconds", {"field": "Remaining", "refresh": "1h"}),
        ("evm.spi", {"field": "SPI", "refresh": "1m"}),  # the shortest
        ("evm.cpi", {"field": "CPI", "round": 2}),  # round on a number that does not move
        ("schedule.slip_days", {"field": "Slip", "round": 0}),
        ("phase", {"field": "Phase", "values": {"execution": "Executing"}}),
        ("evm.spi", "SPI"),  # a field name alone: nothing to check
        # The schema's to report, as itself:
        ("evm.spi", {"field": "SPI", "refresh": "soon"}),
        ("evm.spi", {"field": "SPI", "refresh": 5}),
        ("phase", {"field": "Phase", "round": "two"}),
        ("phase", {"field": "Phase", "round": True}),
        # The key's own problem is reported, not its options:
        ("effort.spent_hours", {"field": "Spent", "round": 2, "refresh": "1d"}),
    ],
)
def test_what_is_right_or_not_ours_to_report_has_no_problem(key: str, entry: object) -> None:
    assert option_problems(key, entry) == []


def test_options_are_parsed_for_the_entries_that_have_them() -> None:
    fields = {
        "evm.spi": {"field": "SPI", "round": 2, "refresh": "1d"},
        "sla.resolution.remaining_seconds": {"field": "Remaining", "refresh": "1h30m"},
        "evm.cpi": {"field": "CPI", "round": 2.0},  # YAML's 2.0: the schema's integer 2
        "phase": {"field": "Phase", "values": {"execution": "Executing"}},
        "work_type": "Work type",
    }
    options = writeback_options(fields)
    assert options == {
        "evm.spi": WritebackOptions(round=2, refresh=timedelta(days=1)),
        "sla.resolution.remaining_seconds": WritebackOptions(refresh=timedelta(minutes=90)),
        "evm.cpi": WritebackOptions(round=2),
    }
    assert type(options["evm.cpi"].round) is int
    assert check_writeback_options("jira", fields) == options


def test_every_option_problem_of_a_source_is_named_at_once() -> None:
    fields = {
        "phase": {"field": "Phase", "round": 2},
        "evm.spi": {"field": "SPI", "refresh": "10s"},
    }
    with pytest.raises(ConfigError) as caught:
        check_writeback_options("jira", fields)
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[:2] for line in lines] == [
        ["source 'jira'", "writeback.fields.phase.round"],
        ["source 'jira'", "writeback.fields.evm.spi.refresh"],
    ]


# -- the schema of a mapped field -------------------------------------------------------------

_SCHEMA = Draft202012Validator(dict(MAPPED_FIELD_SCHEMA))


@pytest.mark.parametrize(
    "entry",
    [
        {"field": "SPI", "round": 2, "refresh": "1d"},
        {"field": "Remaining", "refresh": "1h"},
        {"field": "Phase", "values": {"execution": "Executing"}},
        {"field": "SPI", "round": 0, "refresh": "1h30m"},
        {"field": "SPI", "round": 6, "refresh": "15m"},
    ],
)
def test_the_schema_takes_round_and_refresh(entry: dict[str, Any]) -> None:
    assert list(_SCHEMA.iter_errors(entry)) == []


@pytest.mark.parametrize(
    ("entry", "validator"),
    [
        ({"field": "SPI", "round": 7}, "maximum"),
        ({"field": "SPI", "round": -1}, "minimum"),
        ({"field": "SPI", "round": 1.5}, "type"),
        ({"field": "SPI", "round": True}, "type"),
        ({"field": "SPI", "refresh": "soon"}, "pattern"),
        ({"field": "SPI", "refresh": "1d" * 13}, "maxLength"),
        ({"field": "SPI", "refresh": 60}, "type"),
        ({"field": "SPI", "rounding": 2}, "additionalProperties"),
    ],
)
def test_the_schema_reports_a_bad_round_or_refresh_as_itself(
    entry: dict[str, Any], validator: str
) -> None:
    assert [error.validator for error in _SCHEMA.iter_errors(entry)] == [validator]


# -- a moving figure without a refresh --------------------------------------------------------


def test_a_moving_figure_without_refresh_is_warned_with_the_fix() -> None:
    assert cadence_warning("evm.spi", {"field": "SPI"}) == (
        "writeback.fields.evm.spi moves with the clock and has no refresh: every sync rewrites "
        "it; add refresh: 1d (and round: 2)"
    )
    assert cadence_warning("evm.spi", {"field": "SPI", "round": 3}) == (
        "writeback.fields.evm.spi moves with the clock and has no refresh: every sync rewrites "
        "it; add refresh: 1d"
    )
    assert cadence_warning("sla.resolution.remaining_seconds", "Remaining") == (
        "writeback.fields.sla.resolution.remaining_seconds moves with the clock and has no "
        "refresh: every sync rewrites it; add refresh: 1h (and round: 0), e.g. "
        "{field: Remaining, refresh: 1h, round: 0}"
    )


@pytest.mark.parametrize(
    ("key", "entry"),
    [
        ("evm.spi", {"field": "SPI", "refresh": "1d"}),
        ("evm.cpi", "CPI"),  # does not move: written only when it changes
        ("sla.resolution.state", {"field": "State"}),
        ("phase", "Phase"),
    ],
)
def test_no_warning_for_a_refreshed_or_still_figure(key: str, entry: object) -> None:
    assert cadence_warning(key, entry) is None
