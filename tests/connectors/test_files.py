"""The file connector: every unreadable export gives its expected, located message."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from bridge.connectors import SkippedRecord, skip_record
from bridge.connectors.base import ConnectorContext
from bridge.connectors.files import (
    MAX_NESTING,
    REFUSED,
    FileConnector,
    LazyArray,
    _load_streaming,
    _partial_decoders,
    read_export,
)
from bridge.errors import ConfigError, InputError

DATA = Path(__file__).parent.parent / "data"
INVALID = DATA / "exports" / "invalid"


@pytest.mark.parametrize("path", sorted(INVALID.glob("*.json")), ids=lambda p: p.stem)
def test_bad_exports_give_their_message(path: Path) -> None:
    expected = path.with_suffix(".expected.txt").read_text("utf-8").strip()
    with pytest.raises(InputError) as caught:
        list(read_export(path))
    assert str(caught.value).replace(str(path), path.name) == expected


def test_a_folder_reads_every_export_in_name_order() -> None:
    items = list(read_export(DATA / "exports" / "valid"))
    assert [(item.system, item.key) for item in items] == [
        ("servicenow", "INC0000046"),
        ("jira", "TEST-1"),
        ("jira", "TEST-2"),
        ("jira", "TEST-3"),
    ]


def test_empty_folder_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no"):
        list(read_export(tmp_path))
    with pytest.raises(InputError, match="no such file or folder"):
        list(read_export(tmp_path / "missing.json"))


def test_connector_filters_by_updated(tmp_path: Path) -> None:
    connector = FileConnector(
        {"name": "x", "path": "exports/valid"}, ConnectorContext(base_dir=str(DATA))
    )
    everything = list(connector.pull())
    newest = max(i.updated for i in everything if i.updated is not None)
    assert {i.updated for i in connector.pull(since=newest)} == {newest}
    with pytest.raises(ConfigError, match="needs `path:`"):
        FileConnector({"name": "x"})


HOSTILE = DATA / "hostile" / "exports"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "nested-arrays-1e6.json",
            "nested more than 100 levels deep; an export is a few levels deep "
            "(is this file an export?)",
        ),
        ("nested-objects-100k.json", "nested more than 100 levels deep"),
        ("nested-field-120-levels.json", "nested more than 100 levels deep"),
        (
            "integer-5000-digits.json",
            "a number has more than 4300 digits; no ticket field holds one: is this file an "
            "export?",
        ),
    ],
)
def test_a_file_built_to_exhaust_the_reader_is_refused_by_name(name: str, message: str) -> None:
    path = HOSTILE / name

    with pytest.raises(InputError) as caught:
        list(read_export(path))

    assert str(caught.value).startswith(f"{path}: {message}")


def test_nesting_up_to_the_limit_is_read() -> None:
    items = list(read_export(HOSTILE / "nested-field-100-levels.json"))

    assert [item.key for item in items] == ["HX-1", "HX-2"]


def test_a_record_that_cannot_be_mapped_is_listed_and_left_out_when_asked() -> None:
    export = DATA / "hostile" / "values" / "estimate-1e999.json"
    skipped: list[SkippedRecord] = []

    items = list(read_export(export, skipped=skipped))

    assert [item.key for item in items] == ["HX-GOOD"]
    assert skipped == [
        SkippedRecord(
            "estimate-1e999.json: issues[0] (HX-1)",
            "fields.timeoriginalestimate: expected a finite number of seconds, found inf",
            "HX-1",
        )
    ]
    with pytest.raises(InputError, match=r"issues\[0\] \(HX-1\): fields.timeoriginalestimate"):
        list(read_export(export))  # not asked: the record stops the file, as before


def test_records_are_collected_only_while_the_format_reads(tmp_path: Path) -> None:
    seen_between_items: list[bool] = []
    skipped: list[SkippedRecord] = []
    for _item in read_export(DATA / "exports" / "valid", skipped=skipped):
        # Code run between two items (the caller's) must not find its records collected.
        seen_between_items.append(skip_record("caller.json: x", "not a record of the export"))

    assert seen_between_items == [False, False, False, False]
    assert skipped == []


class _Named(msgspec.Struct):
    name: str | None = None


def _lazy(tmp_path: Path, array: bytes) -> LazyArray:
    path = tmp_path / "page.json"
    path.write_bytes(b'{"issues": ' + array + b"}")
    return LazyArray(msgspec.Raw(array), path, MAX_NESTING - 2)


def test_a_partial_read_decodes_the_array_whole_without_splitting_it(tmp_path: Path) -> None:
    """One pass of msgspec over the array: the elements are not split out (the status pass
    spent half its time doing that)."""
    array = _lazy(tmp_path, b'[{"name": "Open", "rest": [1, 2]}, {"other": {}}]')
    assert [p.name for p in array.partial(_Named)] == ["Open", None]
    assert array._raws is None  # not split
    assert [len(element) for element in array] == [2, 1]  # walked whole when asked
    assert array._raws is not None


def test_a_partial_read_refuses_only_the_elements_that_do_not_fit(tmp_path: Path) -> None:
    array = _lazy(tmp_path, b'[{"name": "Open"}, {"name": 5}, "text", {"name": "Done"}]')
    parts = list(array.partial(_Named))
    assert [p if p is REFUSED else p.name for p in parts] == ["Open", REFUSED, REFUSED, "Done"]
    assert array[1] == {"name": 5}  # the caller reads a refused element whole


def test_the_same_decoders_serve_every_partial_read_of_a_shape() -> None:
    assert _partial_decoders(_Named) is _partial_decoders(_Named)


def test_a_top_level_array_is_still_read_as_its_records(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"a": 1}, {"b": [2]}]), "utf-8")
    doc = _load_streaming(path)
    assert isinstance(doc, LazyArray)
    assert list(doc) == [{"a": 1}, {"b": [2]}]
    assert len(doc) == 2


def test_the_bracket_count_counts_both_opening_brackets_and_nothing_else() -> None:
    from bridge.connectors.files import _few_brackets

    exactly = msgspec.Raw(b'{"a": ' + b"[" * 49 + b'"}]{x"' + b"]" * 49 + b"}")
    assert _few_brackets(exactly, 51)  # 1 + 49 + 1 opening ones; closing ones not counted
    assert not _few_brackets(exactly, 50)


@pytest.mark.parametrize("arrays_whole", [False, True])
def test_both_ways_of_splitting_a_page_read_the_same_document(
    tmp_path: Path, arrays_whole: bool
) -> None:
    """The item pass splits the page and its arrays in one msgspec pass, the status pass
    keeps the arrays whole: the same values, the same limit on nesting."""
    path = tmp_path / "page.json"
    nested: object = "end"
    for _ in range(99):  # with the page, 100 levels: the deepest allowed
        nested = {"n": nested}
    page = {"issues": [{"a": [1, {"b": None}]}, {}], "names": nested, "total": 2, "ok": True}
    path.write_text(json.dumps(page), "utf-8")
    doc = _load_streaming(path, arrays_whole=arrays_whole)
    assert isinstance(doc["issues"], LazyArray)
    assert dict(doc, issues=list(doc["issues"])) == page
    path.write_text(json.dumps(dict(page, names={"deeper": nested})), "utf-8")
    with pytest.raises(InputError, match="nested more than 100 levels deep"):
        _load_streaming(path, arrays_whole=arrays_whole)


def test_a_value_msgspec_refuses_beside_the_arrays_leaves_them_streaming(tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_bytes(b'{"total": 1e999, "issues": [{"a": 1}, {"b": 2}]}')
    doc = _load_streaming(path)
    assert isinstance(doc["issues"], LazyArray)
    assert list(doc["issues"]) == [{"a": 1}, {"b": 2}]
    assert doc["total"] == float("inf")
