from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.connectors.jira import mapping
from bridge.connectors.jira.mapping import (
    JiraFieldSettings,
    ResolvedFields,
    item_from_issue,
    items_from_search,
    resolve_field_ids,
    site_from_self,
)
from bridge.errors import InputError
from bridge.model import FieldChange, WorkItem

DATA = Path(__file__).parents[2] / "data" / "jira"


def load(relative: str) -> Any:
    return json.loads((DATA / relative).read_text(encoding="utf-8"))


def utc(text: str) -> datetime:
    """A UTC instant written as ``2024-03-01 12:00:00.123``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def issue_with(fields: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "key": "K-1",
        "self": "https://x.atlassian.net/rest/api/3/issue/1",
        **top,
        "fields": fields,
    }


# --------------------------------------------------------------------------------------------
# Whole issues from real fixtures
# --------------------------------------------------------------------------------------------


def test_v2_server_issue_with_many_custom_fields() -> None:
    issue = load("jira-to-matrix/jira-api-requests__issue.json")

    item = item_from_issue(issue)

    assert item == WorkItem(
        key="BBCOM-1398",
        system="jira",
        type="Tarea",
        status="К выполнению",
        status_category="todo",
        summary="Prueba de creación de tareas en un proyecto público",
        url="https://jira.test-example.ru/browse/BBCOM-1398",
        priority="Highest",
        project="BBCOM",
        labels=(),
        components=(),
        assignee="Сидоров Егор Ильич",
        reporter="Иванов Иван Иванович",
        created=utc("2018-12-05 11:32:11.571"),
        updated=utc("2018-12-19 09:36:15.507"),
    )
    # timetracking is {} and every time field null: nothing invented, never 0.
    assert (item.estimate_hours, item.remaining_hours, item.spent_hours) == (None, None, None)
    assert item.raw is issue
    assert item.created is not None
    assert item.created.tzinfo is UTC


def test_v2_cloud_issue_time_spent_and_status_category() -> None:
    issue = load("atlassian-python-api/rest__api__2__issue__FOO-123__GET.json")

    item = item_from_issue(issue)

    assert item == WorkItem(
        key="FOO-123",
        system="jira",
        type="Epic",
        status="Backlog",
        status_category="todo",
        summary="Sample",
        url="https://sample.atlassian.net/browse/FOO-123",
        priority="Normal",
        project="FOO",
        labels=("sample",),
        reporter="ABC",
        created=utc("2021-12-16 10:44:40.825"),
        updated=utc("2022-07-11 10:25:48.416"),
        spent_hours=30411840 / 3600,
    )
    assert item.spent_hours == pytest.approx(8447.7333, abs=1e-4)


def test_v3_issue_time_tracking_seconds_and_names_from_the_issue() -> None:
    issue = load(
        "demisto-content/EXCERPT__JiraV3__get_issue_test__raw_response__selected_fields.json"
    )

    item = item_from_issue(issue)

    assert item.key == "COMPANYSA-35"
    assert item.created == utc("2023-03-01 09:34:49.730")
    assert item.updated == utc("2023-04-19 21:51:21.562")
    assert item.resolved is None
    assert item.due == date(2024, 12, 30)
    assert type(item.due) is date
    assert item.estimate_hours == pytest.approx(616.1)
    assert item.remaining_hours == pytest.approx(616.1)
    assert item.spent_hours is None  # "timespent": null, and no timeSpentSeconds
    # The issue's own "names" (expand=names) maps "Story Points" to customfield_10028.
    assert item.story_points == 1.0
    # self is the OAuth gateway (api.atlassian.com/ex/jira/<cloud id>): no browse link.
    assert item.url is None
    assert item.status_category is None


def test_v3_issue_sla_error_object_counts_as_missing() -> None:
    issue = load(
        "demisto-content/EXCERPT__JiraV3__get_issue_test__raw_response__selected_fields.json"
    )
    settings = JiraFieldSettings(
        satisfaction=("Time to resolution",), budget=("customfield_10072",)
    )

    item = item_from_issue(issue, settings=settings, site_url="https://acme.atlassian.net/")

    assert item.satisfaction is None
    assert item.budget is None
    assert item.url == "https://acme.atlassian.net/browse/COMPANYSA-35"


def test_openapi_issue_example_has_an_integer_updated_which_is_refused() -> None:
    issue = load("atlassian-openapi-examples/cloud-v3-GET-issue.response.json")

    with pytest.raises(InputError) as caught:
        item_from_issue(issue)

    message = str(caught.value)
    assert message.startswith("issue ED-1: fields.updated: expected a Jira date-time like ")
    assert message.endswith("found 1")


def test_openapi_issue_example_falls_back_to_timetracking_seconds() -> None:
    issue = load("atlassian-openapi-examples/cloud-v3-GET-issue.response.json")
    del issue["fields"]["updated"]

    item = item_from_issue(issue)

    assert item.key == "ED-1"
    assert item.url == "https://your-domain.atlassian.net/browse/ED-1"
    assert item.project == "EX"
    assert item.estimate_hours == 600 / 3600
    assert item.remaining_hours == 200 / 3600
    assert item.spent_hours == 400 / 3600
    assert (item.type, item.status, item.status_category, item.summary) == (None,) * 4
    assert (item.created, item.updated) == (None, None)


def test_time_fields_prefer_the_top_level_seconds_and_keep_zero() -> None:
    fields = {
        "timeoriginalestimate": 7200,
        "timeestimate": 0,
        "timespent": None,
        "timetracking": {"originalEstimateSeconds": 1, "timeSpentSeconds": 5400},
    }

    item = item_from_issue(issue_with(fields))

    assert (item.estimate_hours, item.remaining_hours, item.spent_hours) == (2.0, 0.0, 1.5)


# --------------------------------------------------------------------------------------------
# Status category, people, links
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": {"name": "Open", "statusCategory": {"key": "new"}}}, "todo"),
        ({"status": {"name": "Doing", "statusCategory": {"key": "indeterminate"}}}, "in_progress"),
        ({"status": {"name": "Closed", "statusCategory": {"key": "done"}}}, "done"),
        ({"status": {"name": "Closed"}, "resolution": {"name": "Fixed"}}, "done"),
        ({"status": {"name": "X"}, "resolutiondate": "2024-01-02T03:04:05.000+0000"}, "done"),
        ({"status": {"name": "Open"}, "resolution": None, "resolutiondate": None}, None),
        ({"status": {"name": "Odd", "statusCategory": {"key": "undefined"}}}, None),
        ({}, None),
    ],
)
def test_status_category(fields: dict[str, Any], expected: str | None) -> None:
    assert item_from_issue(issue_with(fields)).status_category == expected


def test_resolved_components_parent_and_user_fallbacks() -> None:
    fields = {
        "resolutiondate": "2024-02-29T23:30:00.000-0130",
        "components": [{"id": "1", "name": "API"}, {"id": "2", "name": "Billing"}],
        "parent": {"id": "10", "key": "K-0", "fields": {"summary": "Epic"}},
        "assignee": {"accountId": "5b10a2844c20165700ede21g", "displayName": ""},
        "reporter": {"name": "jsmith", "emailAddress": "j@example.com"},
    }

    item = item_from_issue(issue_with(fields))

    assert item.resolved == utc("2024-03-01 01:00:00")
    assert item.components == ("API", "Billing")
    assert item.parent == "K-0"
    assert item.assignee == "5b10a2844c20165700ede21g"
    assert item.reporter == "jsmith"


def test_missing_fields_map_to_none() -> None:
    item = item_from_issue({"key": "A-1"})

    assert item == WorkItem(key="A-1", system="jira")


@pytest.mark.parametrize(
    ("self_url", "site"),
    [
        ("https://acme.atlassian.net/rest/api/3/issue/10002", "https://acme.atlassian.net"),
        (
            "https://jira.example.com:8443/jira/rest/api/2/issue/1",
            "https://jira.example.com:8443/jira",
        ),
        ("https://api.atlassian.com/ex/jira/abc-123/rest/api/3/issue/1", None),
        ("not a url", None),
        ("https://acme.atlassian.net/browse/K-1", None),
    ],
)
def test_site_from_self(self_url: str, site: str | None) -> None:
    assert site_from_self(self_url) == site


def test_site_url_argument_wins_over_self() -> None:
    item = item_from_issue(issue_with({}), site_url="https://jira.example.com/jira/")

    assert item.url == "https://jira.example.com/jira/browse/K-1"


# --------------------------------------------------------------------------------------------
# Custom fields
# --------------------------------------------------------------------------------------------


def test_resolve_field_ids_by_name_id_and_system_id() -> None:
    names = {
        "customfield_10016": "Story point estimate",
        "customfield_10028": "Story Points",
        "customfield_10030": "story points",  # a duplicate name, differently cased
        "customfield_10015": "Start date",
        "customfield_10040": "Budget",
    }
    settings = JiraFieldSettings(planned_end=("duedate",), actual_cost=("customfield_99999",))

    resolved = resolve_field_ids(settings, names)

    assert resolved == ResolvedFields(
        story_points=("customfield_10016", "customfield_10028", "customfield_10030"),
        planned_start=("customfield_10015",),
        planned_end=("duedate",),
        budget=("customfield_10040",),
        actual_cost=("customfield_99999",),
    )


def test_display_names_resolve_to_nothing_without_a_names_map() -> None:
    assert resolve_field_ids() == ResolvedFields()


def test_custom_field_values() -> None:
    names = {
        "customfield_10016": "Story point estimate",
        "customfield_10028": "Story Points",
        "customfield_10015": "Start date",
        "customfield_10022": "Target end",
        "customfield_10040": "Budget",
        "customfield_10041": "Actual cost",
        "customfield_10042": "% Complete",
        "customfield_10043": "Satisfaction",
    }
    fields = {
        "customfield_10016": None,  # team-managed field empty: the next candidate is used
        "customfield_10028": 5,
        "customfield_10015": "2024-03-01",
        "customfield_10022": "2024-06-30T17:00:00.000+0200",
        "customfield_10040": "1200.50",
        "customfield_10041": {"value": "900"},
        "customfield_10042": 45,
        "customfield_10043": {"rating": 4},
    }

    item = item_from_issue(issue_with(fields), names=names)

    assert item.story_points == 5.0
    assert item.planned_start == date(2024, 3, 1)
    assert type(item.planned_start) is date
    assert item.planned_end == utc("2024-06-30 15:00:00")
    assert item.budget == 1200.5
    assert item.actual_cost == 900.0
    assert item.percent_complete == 0.45
    assert item.satisfaction == 4.0


@pytest.mark.parametrize(
    ("value", "expected"), [(0.3, 0.3), (1, 1.0), (80, 0.8), ("80%", 0.8), ("0.5%", 0.005)]
)
def test_percent_complete(value: Any, expected: float) -> None:
    settings = JiraFieldSettings(percent_complete=("customfield_1",))

    item = item_from_issue(issue_with({"customfield_1": value}), settings=settings)

    assert item.percent_complete == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "expected"), [(5, 5.0), ({"rating": 2}, 2.0), ({"rating": None}, None)]
)
def test_satisfaction_object_or_number(value: Any, expected: float | None) -> None:
    settings = JiraFieldSettings(satisfaction=("customfield_1",))

    item = item_from_issue(issue_with({"customfield_1": value}), settings=settings)

    assert item.satisfaction == expected


def test_a_custom_field_of_the_wrong_type_is_located() -> None:
    # Real data: customfield_10019 holds the Lexorank string "0|i006km:", not a number.
    issue = load("jira-to-matrix/jira-api-requests__issue.json")

    with pytest.raises(InputError) as caught:
        item_from_issue(issue, names={"customfield_10019": "Story Points"})

    assert str(caught.value) == (
        "issue BBCOM-1398: fields.customfield_10019: expected a number, found '0|i006km:'"
    )


def test_resolved_fields_are_used_as_given() -> None:
    resolved = ResolvedFields(story_points=("customfield_7",))

    item = item_from_issue(
        issue_with({"customfield_7": 3, "customfield_8": 9}),
        names={"customfield_8": "Story Points"},  # ignored: resolved wins
        resolved=resolved,
    )

    assert item.story_points == 3.0


def test_a_search_response_resolves_names_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = mapping.resolve_field_ids

    def counting(*args: Any) -> ResolvedFields:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(mapping, "resolve_field_ids", counting)
    doc = {
        "names": {"customfield_10016": "Story point estimate"},
        "issues": [{"key": f"K-{n}", "fields": {"customfield_10016": n}} for n in range(5)],
    }

    points = [item.story_points for item in items_from_search(doc, "page1.json")]

    assert points == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert len(calls) == 1


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------


def test_history_from_the_openapi_changelog_example_sorted_by_time() -> None:
    page = load("atlassian-openapi-examples/cloud-v3-GET-issue-changelog.response.json")
    # An issue fetched with expand=changelog carries the same history objects under
    # changelog.histories; feed them newest first to show they are sorted.
    issue = {"key": "TT-1", "fields": {}, "changelog": {"histories": page["values"][::-1]}}

    item = item_from_issue(issue)

    assert item.history == (
        FieldChange(
            at=utc("1970-01-18 06:27:50.429"),
            field="fieldId",
            from_value=None,
            to_value="label-1",
            author="Mia Krystof",
        ),
        FieldChange(
            at=utc("1970-01-18 06:27:51.429"),
            field="fieldId",
            from_value="label-1",
            to_value="label-1 label-2",
            author="Mia Krystof",
        ),
    )


def test_history_field_names_are_normalized_and_order_is_stable() -> None:
    def item(field: str, to: str, field_id: str | None = None) -> dict[str, Any]:
        entry = {"field": field, "fieldtype": "jira", "fromString": None, "toString": to}
        if field_id is not None:
            entry["fieldId"] = field_id
        return entry

    histories = [
        {
            "created": "2024-01-01T09:00:00.000+0000",
            "author": {"displayName": "Ann"},
            "items": [
                item("status", "In Progress", "status"),
                item("Component", "API", "components"),
                item("Epic Link", "K-0"),  # old payloads have no fieldId
            ],
        },
        {
            "created": "2024-01-01T10:00:00.000+0200",  # 08:00 UTC: earlier than the first
            "author": {"accountId": "abc"},
            "items": [
                item("issuetype", "Bug", "issuetype"),
                item("duedate", "2024-02-01", "duedate"),
            ],
        },
        {
            "created": "2024-01-01T09:00:00.000Z",  # same instant as the first: kept after it
            "items": [item("Sprint", "Sprint 3", "customfield_10020"), item("assignee", "Bo")],
        },
    ]

    history = item_from_issue({"key": "K-1", "changelog": {"histories": histories}}).history

    assert [(c.at.hour, c.field, c.to_value, c.author) for c in history] == [
        (8, "type", "Bug", "abc"),
        (8, "due", "2024-02-01", "abc"),
        (9, "status", "In Progress", "Ann"),
        (9, "components", "API", "Ann"),
        (9, "Epic Link", "K-0", "Ann"),
        (9, "customfield_10020", "Sprint 3", None),
        (9, "assignee", "Bo", None),
    ]
    status_only = item_from_issue({"key": "K-1", "changelog": {"histories": histories}})
    assert [c.to_value for c in status_only.status_changes()] == ["In Progress"]


def page(total: int | None, held: int) -> dict[str, Any]:
    """A changelog of ``held`` histories, saying it is ``total`` long (None: no paging)."""
    histories = [{"created": "2024-01-01T09:00:00.000+0000", "items": []}] * held
    paging = {} if total is None else {"startAt": 0, "maxResults": held, "total": total}
    return {**paging, "histories": histories}


@pytest.mark.parametrize(
    ("changelog", "complete"),
    [
        (page(0, 0), True),
        (page(None, 0), True),  # no paging figures: taken as given
        (page(100, 100), True),
        (page(140, 100), False),  # one page only (Jira's cap; an export may keep just that)
        ({"id": "10001", "items": []}, False),  # a webhook's changelog: the one change
        (None, False),  # read without expand=changelog
    ],
)
def test_history_is_complete_only_with_the_whole_changelog(
    changelog: dict[str, Any] | None, complete: bool
) -> None:
    issue: dict[str, Any] = {"key": "K-1", "fields": {}}
    if changelog is not None:
        issue["changelog"] = changelog

    assert item_from_issue(issue).history_complete is complete


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issue", "message"),
    [
        ({"fields": {"summary": "x"}}, 'issue: expected "key" (like PROJ-123), found none'),
        ("ED-1", "issue: expected an issue object, found a string"),
        (
            {"key": "K-9", "fields": {"created": "yesterday"}},
            "issue K-9: fields.created: expected a Jira date-time like "
            "2023-03-01T11:34:49.730+0200, found 'yesterday'",
        ),
        (
            {"key": "K-9", "fields": {"duedate": "30/Dec/24"}},
            "issue K-9: fields.duedate: expected a date like 2024-12-30, found '30/Dec/24'",
        ),
        (
            {"key": "K-9", "fields": {"labels": "a b"}},
            "issue K-9: fields.labels: expected an array of strings, found 'a b'",
        ),
        (
            {"key": "K-9", "fields": {"timespent": "3h"}},
            "issue K-9: fields.timespent: expected a number of seconds, found '3h'",
        ),
        (
            {"key": "K-9", "fields": ["summary"]},
            "issue K-9: fields: expected an object of issue fields, found ['summary']",
        ),
        (
            {"key": "K-9", "changelog": {"histories": [{"created": "2024-13-01", "items": []}]}},
            "issue K-9: changelog.histories[0].created: expected a Jira date-time like "
            "2023-03-01T11:34:49.730+0200, found '2024-13-01'",
        ),
        # Hostile numbers: JSON's 1e999 is infinity to Python, NaN is accepted, and an int of
        # 400 digits has no float; each would make every KPI built on it infinite.
        (
            {"key": "K-9", "fields": {"timeoriginalestimate": float("inf")}},
            "issue K-9: fields.timeoriginalestimate: expected a finite number of seconds, "
            "found inf",
        ),
        (
            {"key": "K-9", "fields": {"timespent": float("nan")}},
            "issue K-9: fields.timespent: expected a finite number of seconds, found nan",
        ),
        (
            {"key": "K-9", "fields": {"timeestimate": -(10**400)}},
            "issue K-9: fields.timeestimate: expected a finite number of seconds, found "
            "-10000000000000000000000000000000000000000000000000000000...",
        ),
        (
            {"key": "K-9", "fields": {"timetracking": {"timeSpentSeconds": float("-inf")}}},
            "issue K-9: fields.timetracking.timeSpentSeconds: expected a finite number of "
            "seconds, found -inf",
        ),
        # Hostile dates: outside the years bridge computes with (calendars walk the span,
        # and year 1 or 9999 overflows once shifted into a time zone).
        (
            {"key": "K-9", "fields": {"duedate": "0001-01-01"}},
            "issue K-9: fields.duedate: expected a date in the years 1900 to 2999, "
            "found '0001-01-01'",
        ),
        (
            {"key": "K-9", "fields": {"created": "0001-01-01T00:30:00.000+0100"}},
            "issue K-9: fields.created: expected a date-time in the years 1900 to 2999, "
            "found '0001-01-01T00:30:00.000+0100'",
        ),
        (
            {"key": "K-9", "fields": {"resolutiondate": "3000-01-01T00:00:00.000+0000"}},
            "issue K-9: fields.resolutiondate: expected a date-time in the years 1900 to 2999, "
            "found '3000-01-01T00:00:00.000+0000'",
        ),
        (
            {"key": "K-9", "fields": {"updated": "1899-12-31T23:59:59.000+0000"}},
            "issue K-9: fields.updated: expected a date-time in the years 1900 to 2999, "
            "found '1899-12-31T23:59:59.000+0000'",
        ),
        (
            {
                "key": "K-9",
                "fields": {
                    "customfield_1": {
                        "name": "Time to resolution",
                        "completedCycles": [{"stopTime": {"epochMillis": float("inf")}}],
                    }
                },
            },
            "issue K-9: fields.customfield_1.completedCycles[0].stopTime.epochMillis: expected "
            "an instant in the years 1900 to 2999 (milliseconds since 1970), found inf",
        ),
        (
            {
                "key": "K-9",
                "fields": {
                    "customfield_1": {
                        "name": "Time to resolution",
                        "ongoingCycle": {"elapsedTime": {"millis": float("nan")}},
                    }
                },
            },
            "issue K-9: fields.customfield_1.ongoingCycle.elapsedTime.millis: expected a finite "
            "number of milliseconds, found nan",
        ),
    ],
)
def test_bad_records_raise_a_located_input_error(issue: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        item_from_issue(issue)

    assert str(caught.value) == message


def test_the_where_label_locates_records_without_a_key() -> None:
    with pytest.raises(InputError, match=r"^issues\[7\]: expected \"key\""):
        item_from_issue({"id": "1", "fields": {}}, where="issues[7]")


@pytest.mark.parametrize("value", ["inf", "-Infinity", "nan", "1e999", 1e999, {"value": "NaN"}])
def test_a_custom_number_that_is_not_finite_is_refused(value: Any) -> None:
    settings = JiraFieldSettings(budget=("customfield_1",))

    with pytest.raises(InputError) as caught:
        item_from_issue(issue_with({"customfield_1": value}), settings=settings)

    assert str(caught.value).startswith("issue K-1: fields.customfield_1: expected a finite number")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duedate", "1900-01-01"),
        ("duedate", "2999-12-31"),
        ("created", "1900-01-01T00:00:00.000+0000"),
        ("created", "2999-12-31T23:59:59.999+0000"),
    ],
)
def test_the_first_and_last_day_of_the_range_are_read(field: str, value: str) -> None:
    item = item_from_issue(issue_with({field: value}))

    read = item.due if field == "duedate" else item.created
    assert read is not None
    assert read.isoformat().startswith(value[:10])
