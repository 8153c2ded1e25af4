from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.connectors import SkippedRecord
from bridge.connectors.files import read_export, read_export_file
from bridge.connectors.jira import SEARCH_FORMAT
from bridge.errors import InputError
from bridge.plugins import load_registry, make_plugin_manager

DATA = Path(__file__).parents[2] / "data" / "jira"
JQL = DATA / "atlassian-openapi-examples" / "cloud-v3-GET-search-jql.response.json"
LEGACY = DATA / "atlassian-openapi-examples" / "cloud-v3-GET-search-legacy-deprecated.response.json"
JIRA_CLI = DATA / "jira-cli" / "search.json"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def without_integer_updated(doc: dict[str, Any]) -> dict[str, Any]:
    """Atlassian's examples put the integer 1 in fields.updated; real responses never do."""
    for issue in doc["issues"]:
        del issue["fields"]["updated"]
    return doc


def test_the_plugin_registers_the_format() -> None:
    registry = load_registry(make_plugin_manager(load_entrypoints=False))

    assert registry.formats["jira-search"] is SEARCH_FORMAT
    assert SEARCH_FORMAT.system == "jira"
    assert SEARCH_FORMAT.shape == 'Jira search response {"issues": [...]}'


@pytest.mark.parametrize("path", [JQL, LEGACY, JIRA_CLI], ids=lambda p: p.name)
def test_sniff_accepts_every_search_envelope(path: Path) -> None:
    assert SEARCH_FORMAT.sniff(load(path)) is True


@pytest.mark.parametrize(
    "doc",
    [
        {"issues": []},
        {"isLast": True, "nextPageToken": "Ch0jU3RyaW5n", "issues": [{"id": "10001"}]},
    ],
)
def test_sniff_accepts_minimal_documents(doc: Any) -> None:
    assert SEARCH_FORMAT.sniff(doc) is True


@pytest.mark.parametrize(
    "doc",
    [
        "atlassian-openapi-examples/cloud-v3-GET-issue.response.json",
        "atlassian-openapi-examples/cloud-v3-GET-issue-changelog.response.json",
    ],
)
def test_sniff_rejects_other_jira_documents(doc: str) -> None:
    assert SEARCH_FORMAT.sniff(load(DATA / doc)) is False


@pytest.mark.parametrize(
    "doc", [None, [], [{"issues": []}], "issues", 3, {"issues": {"a": 1}}, {"result": []}]
)
def test_sniff_rejects_other_shapes_without_raising(doc: Any) -> None:
    assert SEARCH_FORMAT.sniff(doc) is False


def test_reads_the_jira_cli_search_file() -> None:
    items = list(read_export_file(JIRA_CLI, [SEARCH_FORMAT]))

    assert [(i.key, i.type, i.status, i.status_category) for i in items] == [
        ("TEST-1", "Bug", "To Do", None),
        ("TEST-2", "Story", "In Progress", None),
        ("TEST-3", "Task", "Done", "done"),  # no statusCategory; resolution "Done" is set
    ]
    assert [i.labels for i in items] == [(), ("critical", "feature"), ()]
    assert [i.assignee for i in items] == [None, None, "Person A"]
    assert [i.reporter for i in items] == ["Person A", "Person B", "Person C"]
    assert {i.created for i in items} == {datetime(2020, 12, 3, 13, 5, 20, 974000, tzinfo=UTC)}
    assert {i.url for i in items} == {None}  # the trimmed issues have no "self"
    assert all(i.system == "jira" for i in items)


@pytest.mark.parametrize("path", [JQL, LEGACY], ids=lambda p: p.name)
def test_openapi_search_examples_fail_on_their_integer_updated(path: Path) -> None:
    with pytest.raises(InputError) as caught:
        list(read_export_file(path, [SEARCH_FORMAT]))

    assert caught.value.path == path.name
    assert str(caught.value) == (
        f"{path.name}: issues[0] (ED-1): fields.updated: expected a Jira date-time like "
        "2023-03-01T11:34:49.730+0200, found 1"
    )


def test_reads_the_cloud_search_jql_envelope(tmp_path: Path) -> None:
    path = write(tmp_path / "page-1.json", without_integer_updated(load(JQL)))

    (item,) = read_export_file(path, [SEARCH_FORMAT])

    assert item.key == "ED-1"
    assert item.url == "https://your-domain.atlassian.net/browse/ED-1"
    assert item.project == "EX"
    assert (item.estimate_hours, item.remaining_hours, item.spent_hours) == (
        600 / 3600,
        200 / 3600,
        400 / 3600,
    )
    assert item.raw["fields"]["description"] == "Main order flow broken"


def test_reads_the_legacy_envelope_with_names(tmp_path: Path) -> None:
    doc = without_integer_updated(load(LEGACY))
    doc["names"] = {"customfield_10016": "Story point estimate", "customfield_10099": "Budget"}
    doc["issues"][0]["fields"]["customfield_10016"] = 8
    doc["issues"][0]["fields"]["customfield_10099"] = 2500
    path = write(tmp_path / "legacy.json", doc)

    (item,) = read_export_file(path, [SEARCH_FORMAT])

    assert (item.key, item.story_points, item.budget) == ("ED-1", 8.0, 2500.0)
    assert item.raw["fields"]["customfield_10016"] == 8


def test_reads_a_folder_of_pages_through_the_registered_formats(tmp_path: Path) -> None:
    write(tmp_path / "b.json", {"issues": [{"key": "B-1"}], "isLast": True})
    write(tmp_path / "a.json", {"issues": [{"key": "A-1"}, {"key": "A-2"}], "isLast": False})

    keys = [item.key for item in read_export(tmp_path)]

    assert keys == ["A-1", "A-2", "B-1"]


@pytest.mark.parametrize(
    ("issues", "message"),
    [
        ([{"key": "A-1"}, "A-2"], "issues[1]: expected an issue object, found a string"),
        ([{"key": "A-1"}, {"fields": {}}], 'issues[1]: expected "key" (like PROJ-123), found none'),
        (
            [{"key": "A-1", "fields": {"created": "2024-02-30T10:00:00.000+0000"}}],
            "issues[0] (A-1): fields.created: expected a Jira date-time like "
            "2023-03-01T11:34:49.730+0200, found '2024-02-30T10:00:00.000+0000'",
        ),
    ],
)
def test_bad_records_name_the_file_and_index(
    tmp_path: Path, issues: list[Any], message: str
) -> None:
    path = write(tmp_path / "export.json", {"issues": issues})

    with pytest.raises(InputError) as caught:
        list(read_export_file(path, [SEARCH_FORMAT]))

    assert str(caught.value) == f"export.json: {message}"


def test_an_ids_only_search_explains_how_to_export_again(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.json", {"isLast": True, "issues": [{"id": "10001"}]})

    with pytest.raises(
        InputError, match=r"issues\[0\]: .*only \"id\": '10001'.*fields=\*navigable"
    ):
        list(read_export_file(path, [SEARCH_FORMAT]))


def test_a_malformed_names_map_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "x.json", {"names": ["Story Points"], "issues": []})

    with pytest.raises(InputError, match=r'^x\.json: "names": expected an object'):
        list(read_export_file(path, [SEARCH_FORMAT]))


def test_reading_a_document_without_an_issues_array_is_refused() -> None:
    with pytest.raises(InputError, match=r'^y\.json: "issues": expected an array'):
        list(SEARCH_FORMAT.read({"issues": {"A-1": {}}}, "y.json"))


def test_with_a_list_for_them_bad_records_are_named_and_the_rest_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "export.json",
        {
            "issues": [
                {"key": "A-1", "fields": {"timespent": "3h"}},
                "A-2",
                {"key": "A-3", "fields": {"duedate": "0001-01-01"}},
                {"key": "A-4"},
            ]
        },
    )
    skipped: list[SkippedRecord] = []

    items = list(read_export_file(path, [SEARCH_FORMAT], skipped=skipped))

    assert [item.key for item in items] == ["A-4"]
    assert [(record.key, str(record)) for record in skipped] == [
        (
            "A-1",
            "export.json: issues[0] (A-1): fields.timespent: expected a number of seconds, "
            "found '3h'",
        ),
        (None, "export.json: issues[1]: expected an issue object, found a string"),
        (
            "A-3",
            "export.json: issues[2] (A-3): fields.duedate: expected a date in the years 1900 "
            "to 2999, found '0001-01-01'",
        ),
    ]
