"""ServiceNow Table API record → WorkItem, checked against real responses in tests/data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.connectors.servicenow.mapping import (
    STATES,
    TABLE_LABELS,
    item_from_record,
    table_from_file_name,
)
from bridge.errors import InputError
from bridge.model import WorkItem

DATA = Path(__file__).parents[2] / "data" / "servicenow"


def record(name: str, index: int = 0) -> dict[str, Any]:
    result = json.loads((DATA / name).read_text(encoding="utf-8"))["result"]
    return result[index] if isinstance(result, list) else result  # type: ignore[no-any-return]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Real Table API responses (display values off)
# --------------------------------------------------------------------------------------------


def test_incident_get_by_sys_id() -> None:
    item = item_from_record(record("table_get_incident_by_sys_id.json"))

    assert item == WorkItem(
        key="INC0000046",
        system="servicenow",
        type="Incident",
        status="New",
        status_category="todo",
        summary="Can't access SFA software",
        url="https://instance.servicenow.com/nav_to.do?uri=incident.do?sys_id=a9e30c7dc61122760116894de7bcc7bd",
        priority="3 - Moderate",
        reporter="46c6f9efa9fe198101ddf5eed9adf6e7",
        team="8a4dde73c6112278017a6a4baf547aa7",
        # opened_at, not sys_created_on (2015-11-01 22:05:30); the docs' demo record was opened
        # a day after its last update.
        created=utc(2015, 11, 2, 22, 4, 15),
        updated=utc(2015, 11, 1, 22, 37, 27),
    )
    assert item.raw["sys_class_name"] == "incident"
    assert item.raw["sla_due"] == "2015-11-11 22:04:15"


def test_incident_patch_response_has_an_assignee_and_critical_priority() -> None:
    item = item_from_record(record("table_patch_incident_response.json"))

    assert (item.key, item.status, item.status_category) == (
        "INC0000050",
        "In Progress",
        "in_progress",
    )
    assert item.priority == "1 - Critical"
    assert item.assignee == "681b365ec0a80164000fb0b05854a0cd"
    assert item.reporter == "5b7c200d0a640069006b3845b5d0fa7c"
    assert item.created == utc(2015, 11, 2, 21, 58, 24)
    assert item.updated == utc(2016, 1, 22, 14, 12, 37)
    assert item.resolved is None
    assert item.project is None


def test_incident_post_response_without_caller_reports_the_opener() -> None:
    item = item_from_record(record("table_post_incident_response.json"))

    assert item.key == "INC0010002"
    assert item.reporter == "6816f79cc0a8016401c5a33be04be441"  # caller_id is ""
    assert item.assignee is None
    assert item.created == item.updated == utc(2016, 1, 22, 14, 28, 24)
    assert item.url == (
        "https://instance.servicenow.com/nav_to.do?uri=incident.do?sys_id=c537bae64f411200adf9f8e18110c76e"
    )


def test_problem_from_the_docs_uses_a_legacy_state_code() -> None:
    # The docs' sample problem is state 4 (Closed/Resolved in the pre-Madrid state model),
    # which the current model (101..107) does not know: it stays visible as "4", uncategorised,
    # and closed_at is not taken as the resolution because the state is not a known done state.
    item = item_from_record(record("table_get_problem_list_limit1.json"))

    assert item == WorkItem(
        key="PRB0000050",
        system="servicenow",
        type="Problem",
        status="4",
        status_category=None,
        summary="Switch occasionally drops connections",
        url="https://instance.servicenow.com/nav_to.do?uri=problem.do?sys_id=04ce72c9c0a8016600b5b7f75ac67b5b",
        priority="4 - Low",
        reporter="glide.maint",
        created=utc(2016, 1, 19, 4, 49, 47),
        updated=utc(2016, 1, 19, 4, 52, 4),
    )
    assert item.raw["closed_at"] == "2016-01-19 04:52:04"


def test_change_from_fivetran_task_row_is_canceled_and_resolved_at_close() -> None:
    item = item_from_record(record("fivetran_task_change_request.json"))

    assert item == WorkItem(
        key="CHG0000002",
        system="servicenow",
        type="Change Request",
        status="Canceled",
        status_category="done",
        summary="Shorter description",
        url=None,  # the seed's links are placeholder text, not URLs
        priority="4 - Low",
        assignee="681b365ec0a80164000fb0b05854a0cd",
        reporter="5136503cc611227c0183e96598c4f706",
        created=utc(2021, 4, 28, 22, 40, 25),
        updated=utc(2023, 6, 19, 9, 46, 18),
        resolved=utc(2023, 6, 19, 9, 46, 18),
    )


# --------------------------------------------------------------------------------------------
# display_value=all shape (Change Management API response)
# --------------------------------------------------------------------------------------------


def test_change_with_display_values_reads_utc_values_and_display_names() -> None:
    change = record("create_change_request.json")

    item = item_from_record(change)

    assert item == WorkItem(
        key="CHG0030003",
        system="servicenow",
        type="Change Request",
        status="New",  # "value": -5.0, typed
        status_category="todo",
        summary="Reboot server on scheduled interval",
        url=None,  # no reference carries a link
        priority="4 - Low",  # "value": 4.0
        reporter="Jane Doe",  # the display value, not the sys_id
        # the stored value is UTC; the display value (09:54:57) is the user's time zone
        created=utc(2020, 11, 11, 17, 54, 57),
        updated=utc(2020, 11, 11, 17, 54, 57),
    )
    # sys_class_name was there (as a pair): raw is left as it came
    assert item.raw["sys_class_name"] == {
        "display_value": "Change Request",
        "value": "change_request",
    }


def test_change_with_display_values_gets_a_url_from_the_instance_argument() -> None:
    item = item_from_record(
        record("create_change_request.json"), instance_url="https://dev12345.service-now.com/"
    )

    assert item.url == (
        "https://dev12345.service-now.com/nav_to.do?uri=change_request.do"
        "?sys_id=25a42de31b582010593876a61a4bcbc8"
    )


def test_display_value_true_record_reads_labels_and_display_names() -> None:
    # sysparm_display_value=true: choices are labels, references {"display_value", "link"} or
    # a plain display string (sysparm_exclude_reference_link=true).
    item = item_from_record(
        {
            "number": "INC0010001",
            "sys_id": "57af7aec73d423002728660c4cf6a71c",
            "sys_class_name": "Incident",
            "state": "Resolved",
            "priority": "2 - High",
            "assigned_to": {
                "display_value": "Beth Anglin",
                "link": "https://dev1.service-now.com/api/now/table/sys_user/46d44a23a9fe19810012d100cca80666",
            },
            "caller_id": "Abel Tuter",
            "business_service": {"display_value": "Email", "link": ""},
        }
    )

    assert (item.type, item.status, item.status_category) == ("Incident", "Resolved", "done")
    assert item.priority == "2 - High"
    assert (item.assignee, item.reporter, item.service) == ("Beth Anglin", "Abel Tuter", "Email")
    assert item.project is None
    assert item.url == (
        "https://dev1.service-now.com/nav_to.do?uri=incident.do?sys_id=57af7aec73d423002728660c4cf6a71c"
    )


# --------------------------------------------------------------------------------------------
# Project work (hand-written planned_task records)
# --------------------------------------------------------------------------------------------


def test_project_durations_costs_and_percent() -> None:
    item = item_from_record(record("pm_project.json"))

    assert item == WorkItem(
        key="PRJ0001234",
        system="servicenow",
        type="Project",
        status="Work in Progress",
        status_category="in_progress",
        summary="Migrate email to Exchange Online",
        url="https://example.service-now.com/nav_to.do?uri=pm_project.do?sys_id=0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        priority="2 - High",
        project="PRJ0001234",  # a project is its own project
        service="27d32778c0a8000b00db970eeaa60f16",  # business_service, by sys_id
        labels=("Q3 roadmap", "Infrastructure"),
        assignee="5137153cc611227c000bbd1bd8cd2005",
        reporter="46d44a23a9fe19810012d100cca80666",
        created=utc(2024, 1, 8, 9, 0, 0),
        updated=utc(2024, 5, 2, 16, 20, 31),
        resolved=None,  # work_end is empty
        planned_start=utc(2024, 1, 15, 8, 0, 0),
        planned_end=utc(2024, 6, 28, 17, 0, 0),
        estimate_hours=488.0,  # 1970-01-21 08:00:00 = 20 d 8 h
        spent_hours=196.5,  # 1970-01-09 04:30:00 = 8 d 4 h 30 min
        remaining_hours=267.5,  # 1970-01-12 03:30:00 = 11 d 3 h 30 min
        budget=25000.0,  # "USD;25000.00"
        actual_cost=11250.5,  # "11,250.50"
        percent_complete=0.455,
    )


def test_project_task_is_resolved_at_work_end_and_belongs_to_its_top_task() -> None:
    item = item_from_record(record("pm_project_task-page-1.json"), table="pm_project_task")

    assert (item.key, item.type) == ("PRJTASK0010001", "Project Task")
    assert (item.status, item.status_category) == ("Closed Complete", "done")
    assert item.resolved == utc(2024, 3, 1, 15, 30, 0)  # work_end, not closed_at (16:00)
    assert item.estimate_hours == 62.55  # 1970-01-03 14:33:00 = 2 d 14 h 33 min
    assert item.spent_hours == 56.0
    assert item.remaining_hours == 0.0  # a zero duration is known, not missing
    assert item.actual_cost == 3200.0
    assert item.budget is None
    assert item.percent_complete == 1.0
    assert item.project == item.parent == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert item.raw["sys_class_name"] == "pm_project_task"


def test_project_task_without_top_task_uses_parent_and_second_durations() -> None:
    item = item_from_record(record("pm_project_task-page-1.json", 1), table="pm_project_task")

    assert (item.key, item.status, item.status_category) == ("PRJTASK0010002", "Pending", "todo")
    assert item.project == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert item.estimate_hours == item.remaining_hours == 40.0  # "144000" seconds
    assert item.spent_hours is None
    assert item.due == utc(2024, 6, 28, 17, 0, 0)
    assert item.resolved is None
    assert item.percent_complete == 0.0


# --------------------------------------------------------------------------------------------
# Tables, states and values
# --------------------------------------------------------------------------------------------

STATE_CASES = [
    ("incident", "1", "New", "todo"),
    ("incident", "2", "In Progress", "in_progress"),
    ("incident", "3", "On Hold", "in_progress"),
    ("incident", "6", "Resolved", "done"),
    ("incident", "7", "Closed", "done"),
    ("incident", "8", "Canceled", "done"),
    ("problem", "101", "New", "todo"),
    ("problem", "102", "Assess", "in_progress"),
    ("problem", "103", "Root Cause Analysis", "in_progress"),
    ("problem", "104", "Fix in Progress", "in_progress"),
    ("problem", "106", "Resolved", "done"),
    ("problem", "107", "Closed", "done"),
    ("change_request", "-5", "New", "todo"),
    ("change_request", "-4", "Assess", "in_progress"),
    ("change_request", "-3", "Authorize", "in_progress"),
    ("change_request", "-2", "Scheduled", "in_progress"),
    ("change_request", "-1", "Implement", "in_progress"),
    ("change_request", "0", "Review", "in_progress"),
    ("change_request", "3", "Closed", "done"),
    ("change_request", "4", "Canceled", "done"),
    *[
        (table, code, label, category)
        for table in ("pm_project", "pm_project_task", "sc_req_item", "sc_task", "task")
        for code, label, category in (
            ("-5", "Pending", "todo"),
            ("1", "Open", "todo"),
            ("2", "Work in Progress", "in_progress"),
            ("3", "Closed Complete", "done"),
            ("4", "Closed Incomplete", "done"),
            ("7", "Closed Skipped", "done"),
        )
    ],
]


@pytest.mark.parametrize(("table", "code", "label", "category"), STATE_CASES)
def test_state_label_and_category_per_table(
    table: str, code: str, label: str, category: str
) -> None:
    item = item_from_record({"number": "X1", "sys_class_name": table, "state": code})

    assert (item.status, item.status_category) == (label, category)


def test_state_cases_cover_every_state_table() -> None:
    assert {(t, c) for t, c, _, _ in STATE_CASES} == {(t, c) for t in STATES for c in STATES[t]}


@pytest.mark.parametrize(
    ("table", "label"),
    [
        ("incident", "Incident"),
        ("sc_req_item", "Requested Item"),
        ("sc_request", "Request"),
        ("sc_task", "Catalog Task"),
        ("problem", "Problem"),
        ("change_request", "Change Request"),
        ("change_task", "Change Task"),
        ("pm_project", "Project"),
        ("pm_project_task", "Project Task"),
        ("task", "Task"),
        ("u_facilities_request", "u_facilities_request"),
    ],
)
def test_type_is_the_table_label(table: str, label: str) -> None:
    assert item_from_record({"number": "X1"}, table=table).type == label


def test_unknown_state_code_stays_visible_uncategorised() -> None:
    item = item_from_record({"number": "INC1", "sys_class_name": "incident", "state": "42"})

    assert (item.status, item.status_category) == ("42", None)


def test_unknown_table_keeps_its_name_and_raw_codes() -> None:
    item = item_from_record(
        {"number": "FAC0001", "sys_class_name": "u_facilities_request", "state": "2"}
    )

    assert (item.type, item.status, item.status_category) == ("u_facilities_request", "2", None)


def test_record_table_wins_over_the_table_argument() -> None:
    item = item_from_record(
        {"number": "PRB1", "sys_class_name": "problem", "state": "107"}, table="incident"
    )

    assert (item.type, item.status) == ("Problem", "Closed")


def test_missing_table_comes_from_the_argument_and_is_added_to_raw() -> None:
    source = {"number": "INC1", "state": "6", "sys_class_name": ""}

    item = item_from_record(source, table="incident")

    assert (item.type, item.status_category) == ("Incident", "done")
    assert item.raw["sys_class_name"] == "incident"
    assert source["sys_class_name"] == ""  # the caller's record is not changed


def test_no_table_at_all_leaves_type_url_and_raw_alone() -> None:
    item = item_from_record(
        {
            "number": "X1",
            "sys_id": "abc",
            "state": "1",
            "opened_by": {
                "link": "https://i.service-now.com/api/now/table/sys_user/1",
                "value": "1",
            },
        }
    )

    assert (item.type, item.status, item.status_category, item.url) == (None, "1", None, None)
    assert "sys_class_name" not in item.raw


def test_resolved_prefers_resolved_at_and_ignores_closed_at_when_not_done() -> None:
    base = {"number": "INC1", "sys_class_name": "incident", "closed_at": "2024-02-02 10:00:00"}

    resolved = item_from_record({**base, "state": "7", "resolved_at": "2024-02-01 09:30:00"})
    closed = item_from_record({**base, "state": "7", "resolved_at": ""})
    on_hold = item_from_record({**base, "state": "3"})

    assert resolved.resolved == utc(2024, 2, 1, 9, 30, 0)
    assert closed.resolved == utc(2024, 2, 2, 10, 0, 0)
    assert on_hold.resolved is None


def test_created_falls_back_to_sys_created_on() -> None:
    item = item_from_record(
        {"number": "INC1", "opened_at": "", "sys_created_on": "2024-03-31 23:59:59"}
    )

    assert item.created == utc(2024, 3, 31, 23, 59, 59)


def test_incident_time_worked_is_spent_hours() -> None:
    item = item_from_record(
        {"number": "INC1", "sys_class_name": "incident", "time_worked": "1970-01-01 01:45:00"}
    )

    assert item.spent_hours == 1.75


@pytest.mark.parametrize(
    ("text", "amount"),
    [("1000", 1000.0), ("1,000.50", 1000.5), ("USD;1000.50", 1000.5), ("EUR;0", 0.0)],
)
def test_currency_values(text: str, amount: float) -> None:
    assert item_from_record({"number": "PRJ1", "budget_cost": text}).budget == amount


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ({"link": "https://x.service-now.com/api/now/table/sys_user/9", "value": "9"}, "9"),
        ({"display_value": "Fred Luddy", "value": "9"}, "Fred Luddy"),
        ({"display_value": "", "value": "9"}, "9"),
        ("Fred Luddy", "Fred Luddy"),
        ("", None),
        ({"display_value": "", "value": ""}, None),
    ],
)
def test_reference_forms(field: Any, expected: str | None) -> None:
    assert item_from_record({"number": "INC1", "assigned_to": field}).assignee == expected


def test_reporter_order_caller_then_requested_for_then_opener() -> None:
    opener = {"number": "RITM1", "opened_by": "Opener"}

    assert item_from_record(opener).reporter == "Opener"
    assert item_from_record({**opener, "requested_for": "Asker"}).reporter == "Asker"
    assert item_from_record({**opener, "requested_for": "A", "caller_id": "C"}).reporter == "C"


def test_empty_values_are_missing_not_zero() -> None:
    item = item_from_record(
        {
            "number": "PRJ1",
            "sys_class_name": "pm_project",
            "short_description": "",
            "priority": "",
            "effort": "",
            "budget_cost": "",
            "percent_complete": "",
            "sys_tags": "",
            "work_end": "",
        }
    )

    assert (item.summary, item.priority, item.estimate_hours, item.budget) == (None,) * 4
    assert (item.percent_complete, item.resolved, item.labels) == (None, None, ())


def test_history_and_components_stay_empty() -> None:
    item = item_from_record(record("table_get_incident_by_sys_id.json"))

    assert (item.history, item.components) == ((), ())


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("incident.json", "incident"),
        ("incident-page-2.json", "incident"),
        ("pm_project_task.json", "pm_project_task"),
        ("pm_project_task-page-1.json", "pm_project_task"),
        ("pm_project.json", "pm_project"),
        ("sc_task_2024.json", "sc_task"),
        ("Change_Request.JSON", "change_request"),
        ("export.json", None),
    ],
)
def test_table_from_file_name(name: str, table: str | None) -> None:
    assert table_from_file_name(name) == table


def test_every_state_table_has_a_label() -> None:
    assert set(STATES) <= set(TABLE_LABELS)


# --------------------------------------------------------------------------------------------
# Bad input: located messages
# --------------------------------------------------------------------------------------------


def test_record_that_is_not_an_object() -> None:
    with pytest.raises(InputError, match="must be a JSON object, found a JSON array"):
        item_from_record(["INC1"])  # type: ignore[arg-type]


def test_record_without_number_names_its_sys_id() -> None:
    with pytest.raises(InputError, match=r"the record with sys_id abc123 has no number"):
        item_from_record({"sys_id": "abc123", "number": "", "short_description": "x"})


def test_record_without_number_or_sys_id() -> None:
    with pytest.raises(InputError, match=r"a record with no sys_id has no number"):
        item_from_record({"short_description": "x"})


def test_unparseable_date_names_the_record_and_field() -> None:
    # what a display_value=true export holds: the user's format and time zone
    with pytest.raises(
        InputError, match=r"^INC0000046: opened_at: '02/11/2015 22:04:15' is not a ServiceNow"
    ):
        item_from_record(
            {**record("table_get_incident_by_sys_id.json"), "opened_at": "02/11/2015 22:04:15"}
        )


def test_unparseable_duration_names_the_record_and_field() -> None:
    with pytest.raises(InputError, match=r"^PRJ1: effort: '2 Days 3 Hours' is not a ServiceNow"):
        item_from_record({"number": "PRJ1", "effort": "2 Days 3 Hours"})


def test_unparseable_amount_names_the_record_and_field() -> None:
    with pytest.raises(InputError, match=r"^PRJ1: work_cost: 'n/a' is not an amount"):
        item_from_record({"number": "PRJ1", "work_cost": "n/a"})


def test_unparseable_percent_names_the_record_and_field() -> None:
    with pytest.raises(InputError, match=r"^PRJ1: percent_complete: 'nan' is not a number"):
        item_from_record({"number": "PRJ1", "percent_complete": "nan"})


def test_field_of_the_wrong_json_type() -> None:
    with pytest.raises(InputError, match=r"^INC1: state: expected a string, found a JSON array"):
        item_from_record({"number": "INC1", "state": ["1"]})


def test_unknown_table_label_gives_a_type_but_no_url() -> None:
    item = item_from_record(
        {"number": "FAC1", "sys_id": "abc", "sys_class_name": "Facilities Request"},
        instance_url="https://dev1.service-now.com",
    )

    assert (item.type, item.url) == ("Facilities Request", None)


def test_project_task_groups_under_the_dot_walked_project_number() -> None:
    task = dict(record("pm_project_task-page-1.json"))
    task["top_task.number"] = "PRJ0001234"
    item = item_from_record(task, table="pm_project_task")
    assert item.project == "PRJ0001234"


def test_dot_walked_service_name_wins_over_the_reference() -> None:
    incident = dict(record("table_get_incident_by_sys_id.json"))
    incident["business_service.name"] = "Email"
    assert item_from_record(incident).service == "Email"


# --------------------------------------------------------------------------------------------
# Hostile values: numbers with no finite value, dates outside the years bridge computes with
# --------------------------------------------------------------------------------------------

_DIGITS = "9" * 400  # text ServiceNow stores happily; float() makes it infinity


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "effort",
            _DIGITS,
            f"PRJ1: effort: {_DIGITS[:56]!r}... (400 characters) is not a finite number of seconds",
        ),
        (
            "time_worked",
            _DIGITS,
            f"PRJ1: time_worked: {_DIGITS[:56]!r}... (400 characters) is not a finite number "
            "of seconds",
        ),
        (
            "percent_complete",
            _DIGITS,
            f"PRJ1: percent_complete: {_DIGITS[:56]!r}... (400 characters) is not a finite number",
        ),
        (
            "budget_cost",
            "USD;" + _DIGITS,
            f"PRJ1: budget_cost: {('USD;' + _DIGITS)[:56]!r}... (404 characters) is not a finite "
            "amount",
        ),
        (
            "opened_at",
            "0001-01-01 00:00:00",
            "PRJ1: opened_at: '0001-01-01 00:00:00' is not in the years 1900 to 2999",
        ),
        (
            "end_date",
            "9999-12-31 23:59:59",
            "PRJ1: end_date: '9999-12-31 23:59:59' is not in the years 1900 to 2999",
        ),
        (
            "work_effort",
            1e999,  # a typed JSON number (sysparm_display_value=all)
            "PRJ1: work_effort: expected a finite number",
        ),
    ],
)
def test_a_value_with_no_usable_number_or_date_is_refused_by_name(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        item_from_record({"number": "PRJ1", "sys_class_name": "pm_project", field: value})

    assert str(caught.value) == message


def test_the_first_and_last_instants_of_the_range_are_read() -> None:
    item = item_from_record(
        {
            "number": "PRJ1",
            "sys_class_name": "pm_project",
            "start_date": "1900-01-01 00:00:00",
            "end_date": "2999-12-31 23:59:59",
        }
    )

    assert (item.planned_start, item.planned_end) == (
        utc(1900, 1, 1),
        utc(2999, 12, 31, 23, 59, 59),
    )
