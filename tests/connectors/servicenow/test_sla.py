"""task_sla rows → NativeSla: stages, goals, cycles, and use by the KPI engine's native path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.connectors.servicenow.sla import cycle_from_row, native_slas, slas_by_task
from bridge.errors import InputError
from bridge.kpi.result import Missing
from bridge.kpi.sla import find_native, native_outcome
from bridge.model import WorkItem
from bridge.rules.ast import SlaDef

from .conftest import fixture

DEF_ID = "d1524982d732220035ae23c7ce61035d"
TASK = "9d41c061c611228700edc88b231ec47c"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def row(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sys_id": "a" * 32,
        "task": TASK,
        "sla": DEF_ID,
        "sla.name": "Priority 1 resolution (4 hour)",
        "sla.duration": "",
        "stage": "in_progress",
        "has_breached": "false",
        "start_time": "2026-06-01 09:00:00",
        "end_time": "",
        "planned_end_time": "2026-06-01 13:00:00",
        "duration": "1970-01-01 01:30:00",
        "business_duration": "1970-01-01 01:00:00",
        "business_time_left": "1970-01-01 03:00:00",
        "business_percentage": "25",
        "sys_created_on": "2026-06-01 09:00:01",
        "sys_updated_on": "2026-06-01 10:30:00",
    }
    base.update(fields)
    return base


def test_the_fivetran_row_in_table_api_shape() -> None:
    """A real row (cancelled, with references as {link, value}) from fivetran's seed data."""
    [record] = fixture("task_sla_fivetran_row.json")["result"]

    [sla] = native_slas([record])

    assert sla.name == DEF_ID  # no sla.name dot-walk in the row: the definition's sys_id
    assert sla.field == DEF_ID
    [cycle] = sla.cycles
    assert cycle.cancelled
    assert not cycle.paused
    assert not cycle.breached
    assert cycle.start == utc(2016, 12, 12, 15, 19, 57)
    assert cycle.stop == utc(2016, 12, 12, 17, 57)
    assert cycle.breach_time == utc(2016, 12, 15, 8, 30)
    assert cycle.elapsed_seconds == 0
    assert cycle.elapsed_wall_seconds == 2 * 3600 + 37 * 60 + 3
    # not breached: goal = elapsed + left (1 day of business time)
    assert cycle.goal_seconds == 86400
    assert cycle.remaining_seconds == 86400
    assert slas_by_task([record]) == {TASK: [record]}


def test_running_sla() -> None:
    cycle = cycle_from_row(row())

    assert cycle.stop is None
    assert (cycle.elapsed_seconds, cycle.remaining_seconds, cycle.goal_seconds) == (
        3600,
        3 * 3600,
        4 * 3600,
    )
    assert cycle.elapsed_wall_seconds == 5400
    assert cycle.breach_time == utc(2026, 6, 1, 13)
    assert not (cycle.paused)
    assert not (cycle.cancelled)
    assert not (cycle.breached)


@pytest.mark.parametrize(
    ("stage", "stopped", "paused", "cancelled"),
    [
        ("paused", False, True, False),
        ("completed", True, False, False),
        ("cancelled", True, False, True),
        ("breached", True, False, False),
    ],
)
def test_stages(stage: str, stopped: bool, paused: bool, cancelled: bool) -> None:
    cycle = cycle_from_row(row(stage=stage, end_time="2026-06-01 11:00:00"))

    assert (cycle.stop is not None, cycle.paused, cycle.cancelled) == (stopped, paused, cancelled)
    assert cycle.breached is (stage == "breached")


def test_a_breached_stage_without_a_stop_time_is_still_running() -> None:
    cycle = cycle_from_row(row(stage="breached", has_breached="true"))

    assert cycle.stop is None
    assert cycle.breached
    outcome = native_outcome(native_slas([row(stage="breached")])[0])
    assert not isinstance(outcome, Missing)
    assert outcome.state == "breaching"


def test_a_completed_row_without_end_time_stops_at_its_last_update() -> None:
    assert cycle_from_row(row(stage="completed")).stop == utc(2026, 6, 1, 10, 30)


def test_goal_prefers_the_definition_then_percentage_after_a_breach() -> None:
    defined = cycle_from_row(row(**{"sla.duration": "1970-01-01 04:00:00"}))
    assert defined.goal_seconds == 4 * 3600

    # Breached: business_time_left is no longer elapsed's complement; the percentage is.
    breached = cycle_from_row(
        row(
            has_breached="true",
            business_duration="1970-01-01 05:00:00",
            business_time_left="1970-01-01 00:00:00",
            business_percentage="125",
        )
    )
    assert breached.goal_seconds == 4 * 3600
    assert breached.remaining_seconds == -3600

    unknown = cycle_from_row(
        row(has_breached="true", business_percentage="", business_time_left="")
    )
    assert unknown.goal_seconds is None


def test_durations_in_whole_seconds_are_accepted() -> None:
    assert cycle_from_row(row(business_duration="3600")).elapsed_seconds == 3600


def test_a_bad_value_names_the_row_and_field() -> None:
    with pytest.raises(InputError, match=r"task_sla a{32}: business_duration: '2 hours'"):
        cycle_from_row(row(business_duration="2 hours"))
    with pytest.raises(InputError, match="start_time"):
        cycle_from_row(row(start_time="01/06/2026 09:00"))


def test_rows_of_one_definition_are_cycles_oldest_first() -> None:
    first = row(sys_id="1" * 32, stage="cancelled", start_time="2026-06-01 08:00:00")
    second = row(sys_id="2" * 32)
    other = row(
        sys_id="3" * 32,
        sla="e" * 32,
        **{"sla.name": "Response"},
        start_time="2026-06-01 07:00:00",
    )

    slas = native_slas([second, other, first])

    assert [s.name for s in slas] == ["Response", "Priority 1 resolution (4 hour)"]
    resolution = slas[1]
    assert [c.cancelled for c in resolution.cycles] == [True, False]


def test_the_kpi_engine_finds_it_by_name_and_by_sys_id() -> None:
    item = WorkItem(key="INC1", system="servicenow", native_slas=native_slas([row()]))
    by_name = SlaDef(
        name="resolution",
        goals=(),
        where="",
        native={"servicenow_sla": "priority 1 resolution (4 hour)"},
    )
    by_id = SlaDef(name="resolution", goals=(), where="", native={"servicenow_sla": DEF_ID})

    assert find_native(item, by_name) is item.native_slas[0]
    assert find_native(item, by_id) is item.native_slas[0]
    outcome = native_outcome(item.native_slas[0])
    assert not isinstance(outcome, Missing)
    assert (outcome.state, outcome.source, outcome.remaining_seconds) == (
        "running",
        "native",
        10800,
    )
