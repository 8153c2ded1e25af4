"""The "servicenow-table" export format, read through the file connector's own entry point."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.connectors.files import read_export, read_export_file
from bridge.connectors.servicenow import TABLE_EXPORT, read_table_export, sniff_table_export
from bridge.errors import InputError
from bridge.plugins import load_registry, make_plugin_manager

DATA = Path(__file__).parents[2] / "data" / "servicenow"


def write(folder: Path, name: str, doc: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_the_plugin_registers_the_format() -> None:
    registry = load_registry(make_plugin_manager(load_entrypoints=False))

    fmt = registry.formats["servicenow-table"]
    assert fmt is TABLE_EXPORT
    assert (fmt.system, fmt.shape) == (
        "servicenow",
        'ServiceNow Table API response {"result": [...]}',
    )


@pytest.mark.parametrize(
    "doc",
    [
        {"result": [{"number": "INC1"}]},
        {"result": {"number": "INC1"}},
        {"result": []},
        {"result": [{"number": "INC1"}, "a bad record read() will locate"]},
    ],
)
def test_sniff_accepts_table_api_responses(doc: Any) -> None:
    assert sniff_table_export(doc) is True


@pytest.mark.parametrize(
    "doc",
    [
        [{"number": "INC1"}],
        {"issues": [{"key": "ABC-1"}]},
        {"result": "INC1"},
        {"result": [1, 2]},
        {"result": None},
        {"error": {"message": "User Not Authenticated", "detail": None}, "status": "failure"},
        None,
        "result",
        42,
    ],
)
def test_sniff_rejects_other_documents(doc: Any) -> None:
    assert sniff_table_export(doc) is False


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("table_get_incident_by_sys_id.json", ["INC0000046"]),
        ("table_get_problem_list_limit1.json", ["PRB0000050"]),
        ("table_patch_incident_response.json", ["INC0000050"]),
        ("table_post_incident_response.json", ["INC0010002"]),
        ("create_change_request.json", ["CHG0030003"]),
        ("fivetran_task_change_request.json", ["CHG0000002"]),
        ("pm_project.json", ["PRJ0001234"]),
        ("pm_project_task-page-1.json", ["PRJTASK0010001", "PRJTASK0010002"]),
    ],
)
def test_every_fixture_reads_through_the_file_connector(name: str, keys: list[str]) -> None:
    items = list(read_export_file(DATA / name, [TABLE_EXPORT]))

    assert [item.key for item in items] == keys
    assert {item.system for item in items} == {"servicenow"}


def test_file_name_names_the_table_when_records_do_not() -> None:
    items = list(read_export_file(DATA / "pm_project_task-page-1.json", [TABLE_EXPORT]))

    assert [(i.type, i.status, i.status_category) for i in items] == [
        ("Project Task", "Closed Complete", "done"),
        ("Project Task", "Pending", "todo"),
    ]
    assert [i.raw["sys_class_name"] for i in items] == ["pm_project_task"] * 2
    assert items[0].estimate_hours == 62.55
    assert items[0].resolved == datetime(2024, 3, 1, 15, 30, tzinfo=UTC)
    assert items[0].url == (
        "https://example.service-now.com/nav_to.do?uri=pm_project_task.do"
        "?sys_id=1b2c3d4e5f60718293a4b5c6d7e8f90a"
    )


def test_paged_incident_export_without_sys_class_name(tmp_path: Path) -> None:
    original = json.loads((DATA / "table_get_incident_by_sys_id.json").read_text("utf-8"))
    del original["result"]["sys_class_name"]
    page = write(tmp_path, "incident-page-2.json", {"result": [original["result"]]})

    (item,) = read_export_file(page, [TABLE_EXPORT])

    assert (item.key, item.type, item.status) == ("INC0000046", "Incident", "New")
    assert item.raw["sys_class_name"] == "incident"


def test_record_class_wins_over_the_file_name(tmp_path: Path) -> None:
    page = write(
        tmp_path, "incident.json", {"result": [{"number": "PRB1", "sys_class_name": "problem"}]}
    )

    (item,) = read_export_file(page, [TABLE_EXPORT])

    assert item.type == "Problem"


def test_a_folder_of_exports_reads_in_name_order(tmp_path: Path) -> None:
    for name in ("table_post_incident_response.json", "pm_project.json"):
        shutil.copy(DATA / name, tmp_path / name)

    keys = [item.key for item in read_export(tmp_path, [TABLE_EXPORT])]

    assert keys == ["PRJ0001234", "INC0010002"]


def test_empty_page_has_no_items(tmp_path: Path) -> None:
    assert (
        list(read_export_file(write(tmp_path, "incident.json", {"result": []}), [TABLE_EXPORT]))
        == []
    )


# --------------------------------------------------------------------------------------------
# Bad input: the message names the file, the record's index and the problem
# --------------------------------------------------------------------------------------------


def test_record_without_number_is_located_by_index(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "incident.json",
        {"result": [{"number": "INC1"}, {"sys_id": "46d44a23", "short_description": "x"}]},
    )

    with pytest.raises(InputError) as caught:
        list(read_export_file(path, [TABLE_EXPORT]))

    assert str(caught.value) == (
        f"{path.name}: result[1]: the record with sys_id 46d44a23 has no number "
        "(INC0010001, PRJ0001234...); include `number` in sysparm_fields when exporting"
    )
    assert caught.value.path == path.name


def test_unparseable_date_is_located_by_index_number_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "incident.json",
        {"result": [{"number": "INC1", "sys_updated_on": "2024-05-01T13:45:00Z"}]},
    )

    with pytest.raises(
        InputError,
        match=r"^incident\.json: result\[0\]: INC1: sys_updated_on: '2024-05-01T13:45:00Z' is not",
    ):
        list(read_export_file(path, [TABLE_EXPORT]))


def test_single_record_error_is_located_as_result(tmp_path: Path) -> None:
    path = write(tmp_path, "one.json", {"result": {"sys_id": "abc"}})

    with pytest.raises(InputError, match=r"^one\.json: result: the record with sys_id abc"):
        list(read_export_file(path, [TABLE_EXPORT]))


def test_record_that_is_not_an_object_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "incident.json", {"result": [{"number": "INC1"}, ["INC2"]]})

    with pytest.raises(
        InputError,
        match=r"^incident\.json: result\[1\]: a ServiceNow record must be a JSON object, "
        r"found a JSON array",
    ):
        list(read_export_file(path, [TABLE_EXPORT]))


def test_non_record_result_is_not_a_known_export(tmp_path: Path) -> None:
    path = write(tmp_path, "incident.json", {"result": ["INC1"]})

    with pytest.raises(InputError, match=r"incident\.json: not an export bridge knows"):
        list(read_export_file(path, [TABLE_EXPORT]))


@pytest.mark.parametrize("doc", [{"result": "INC1"}, ["INC1"], {"records": []}])
def test_read_refuses_a_document_without_result_records(doc: Any) -> None:
    with pytest.raises(InputError, match=r"^x\.json: not a ServiceNow Table API response"):
        list(read_table_export(doc, "x.json"))
