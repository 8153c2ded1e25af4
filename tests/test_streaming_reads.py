"""What the streaming reader and the parallel pipeline promise beyond "the same results as the
in-memory path": the status pass (``read_export_statuses``) learns what mapping every item
would, records are decoded as they are reached, and rendering or splitting the work across
processes changes no byte of the output."""

from __future__ import annotations

import copy
import json
import os
import pickle
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.cli.classify_cmd import _csv_renderer, _json_row
from bridge.connectors.base import ExportFormat
from bridge.connectors.files import (
    _status_reader,
    builtin_formats,
    read_export_file,
    read_export_statuses,
)
from bridge.connectors.jira import SEARCH_FORMAT, search_statuses
from bridge.connectors.servicenow import TABLE_EXPORT, table_statuses
from bridge.errors import InputError
from bridge.pipeline import Rendered, evaluate_stream

ROOT = Path(__file__).resolve().parents[1]
RULES = [str(ROOT / "rules")]
EXPORT = ROOT / "examples" / "export"
NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)
FILES = sorted(EXPORT.rglob("*.json"))


def _first_pairs(pairs: Any) -> dict[str, str]:
    table: dict[str, str] = {}
    for status, category in pairs:
        table.setdefault(status, category)
    return table


def _item_pairs(path: Path, formats: list[ExportFormat]) -> list[tuple[str, str]]:
    return [
        (item.status, item.status_category)
        for item in read_export_file(path, formats, skipped=[])
        if item.status is not None and item.status_category is not None
    ]


# -- the status pass ------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_status_pass_learns_what_mapping_every_item_teaches(path: Path) -> None:
    formats = builtin_formats()
    expected = _first_pairs(_item_pairs(path, formats))
    assert expected  # every bundled file has items with a status and a category
    found = list(read_export_statuses(path, formats, set()))
    assert _first_pairs(found) == expected
    # Pairs come in the items' order, and known statuses are left out.
    assert list(_first_pairs(found)) == list(expected)
    assert list(read_export_statuses(path, formats, set(expected))) == []


def test_the_built_in_formats_have_their_own_status_readers_in_a_worker_too() -> None:
    # A worker gets the formats pickled: copies, whose functions are the same objects.
    for fmt, reader in ((SEARCH_FORMAT, search_statuses), (TABLE_EXPORT, table_statuses)):
        assert _status_reader(fmt) is reader
        assert _status_reader(pickle.loads(pickle.dumps(fmt))) is reader  # noqa: S301 - ours


def _copy_of_search(doc: Any, source: str) -> Any:
    return SEARCH_FORMAT.read(doc, source)


def test_another_format_maps_every_item_for_its_statuses() -> None:
    plugin = replace(SEARCH_FORMAT, name="plugin-search", read=_copy_of_search)
    assert _status_reader(plugin) is None
    path = EXPORT / "jira" / "ops-page-1.json"
    pairs = _item_pairs(path, [plugin])
    assert list(read_export_statuses(path, [plugin], set())) == pairs
    # Every item's pair: known statuses are not left out by a mapping reader.
    assert list(read_export_statuses(path, [plugin], {s for s, _ in pairs})) == pairs


def _write_with_nan(path: Path, page: dict[str, Any], field: str) -> None:
    """The page with a NaN literal in the first issue's ``field``: msgspec refuses the file,
    so the standard library reads it whole (no LazyArray), as a Jira export may hold."""
    page = copy.deepcopy(page)
    page["issues"][0]["fields"][field] = "@NAN@"
    path.write_text(json.dumps(page).replace('"@NAN@"', "NaN"), "utf-8")


def test_a_file_read_whole_leaves_out_the_record_it_cannot_map(tmp_path: Path) -> None:
    page = json.loads((EXPORT / "jira" / "ops-page-1.json").read_text("utf-8"))
    path = tmp_path / "ops-nan.json"
    _write_with_nan(path, page, "timespent")
    formats = builtin_formats()
    pairs = _item_pairs(path, formats)
    assert len(pairs) == len(page["issues"]) - 1
    assert _first_pairs(read_export_statuses(path, formats, set())) == _first_pairs(pairs)


def test_a_bad_envelope_fails_the_status_pass_as_it_fails_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "bad-names.json"
    path.write_text(json.dumps({"issues": [], "names": ["not", "a", "map"]}), "utf-8")
    with pytest.raises(InputError, match='"names"'):
        list(read_export_file(path, builtin_formats()))
    with pytest.raises(InputError, match='"names"'):
        list(read_export_statuses(path, builtin_formats(), set()))


# -- records decoded as they are reached ------------------------------------------------------


def _nested(levels: int) -> Any:
    value: Any = "deep"
    for _ in range(levels):
        value = {"x": value}
    return value


def test_a_table_export_is_read_record_by_record(tmp_path: Path) -> None:
    """The third record nests too deep: the first two are read (and handed out) before the
    reader reaches it, so a page's records are never all decoded at once."""
    records = json.loads((EXPORT / "servicenow" / "incident.json").read_text("utf-8"))["result"]
    page = {"result": [records[0], records[1], dict(records[2], u_blob=_nested(120))]}
    path = tmp_path / "incident-page-1.json"
    path.write_text(json.dumps(page), "utf-8")
    items = read_export_file(path, builtin_formats(), skipped=[])
    assert next(items).key == records[0]["number"]
    assert next(items).key == records[1]["number"]
    with pytest.raises(InputError, match="nested more than 100 levels deep"):
        next(items)


def test_a_record_with_many_brackets_but_shallow_is_read(tmp_path: Path) -> None:
    """More opening brackets than the nesting limit (here in a string and in a wide array)
    is not depth: the reader walks such a record and finds it shallow."""
    records = json.loads((EXPORT / "servicenow" / "incident.json").read_text("utf-8"))["result"]
    wide = dict(records[0], u_wide=[[] for _ in range(150)], u_text="[" * 300)
    path = tmp_path / "incident-page-1.json"
    path.write_text(json.dumps({"result": [wide]}), "utf-8")
    [item] = read_export_file(path, builtin_formats())
    assert item.raw["u_text"] == "[" * 300


# -- rendering and splitting across processes -------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_rendering_where_items_are_evaluated_gives_the_parents_text(jobs: int) -> None:
    plain = evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats(), keep_raw=False)
    expected = [_json_row(e) for e in plain.evaluated()]
    rendered = evaluate_stream(
        RULES, [str(EXPORT)], NOW, builtin_formats(), jobs=jobs, keep_raw=False, render=_json_row
    )
    results = list(rendered.results)
    assert all(type(r) is Rendered for r in results)
    assert [r.text for r in results if isinstance(r, Rendered)] == expected


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_renderer_is_built_from_the_rules_where_items_are_evaluated(jobs: int) -> None:
    plain = evaluate_stream(RULES, [str(EXPORT)], NOW, builtin_formats())
    csv_line = _csv_renderer(NOW, plain.rule_set)
    expected = [csv_line(e) for e in plain.evaluated()]
    rendered = evaluate_stream(
        RULES,
        [str(EXPORT)],
        NOW,
        builtin_formats(),
        jobs=jobs,
        renderer=partial(_csv_renderer, NOW),
    )
    assert [r.text for r in rendered.results if isinstance(r, Rendered)] == expected


def _split_export(folder: Path, *, conflicting: bool) -> None:
    """The bundled export as one file per ten records (many more files than workers). With
    ``conflicting``, the first Jira file's issues in "Waiting for customer" say it is done,
    the others that it is in progress: the first file must win whichever worker reads it."""
    index = 0
    for path in FILES:
        doc = json.loads(path.read_text("utf-8"))
        key = "issues" if "issues" in doc else "result"
        records = doc[key]
        for start in range(0, len(records), 10):
            part = dict(doc, **{key: records[start : start + 10]})
            name = f"{index:03d}-{path.name}"
            if conflicting and key == "issues":
                for issue in part["issues"]:
                    status = issue["fields"]["status"]
                    status["name"] = "Waiting for customer"
                    status["statusCategory"]["key"] = "done" if index == 0 else "indeterminate"
            (folder / name).write_text(json.dumps(part), "utf-8")
            index += 1


@pytest.mark.parametrize("conflicting", [False, True])
def test_many_files_over_two_workers_give_what_one_process_gives(
    tmp_path: Path, conflicting: bool
) -> None:
    _split_export(tmp_path, conflicting=conflicting)

    def evaluated(jobs: int) -> list[tuple[object, ...]]:
        evaluation = evaluate_stream(
            RULES, [str(tmp_path)], NOW, builtin_formats(), jobs=jobs, keep_raw=False
        )
        return [(e.item, e.decision, e.kpis.values, e.kpis.missing) for e in evaluation.evaluated()]

    one = evaluated(1)
    assert len(one) == 406
    assert evaluated(2) == one
    if conflicting:
        waiting = [values for item, _, values, _ in one if item.status == "Waiting for customer"]
        assert waiting


@pytest.mark.parametrize("output_format", ["json", "csv", "table"])
def test_classify_writes_the_same_bytes_on_one_core_and_two(
    tmp_path: Path, output_format: str
) -> None:
    _split_export(tmp_path, conflicting=True)
    runner = CliRunner()
    outputs = []
    for jobs in ("1", "2"):
        args = ["classify", "-i", str(tmp_path), "--now", "2026-02-01T12:00:00Z"]
        result = runner.invoke(cli, [*args, "-f", output_format, "-j", jobs])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("OPS-") > 10


@pytest.mark.parametrize("output_format", ["json", "csv"])
def test_spooled_rows_reach_a_pipe_and_a_file_as_one_core_writes_them(
    tmp_path: Path, output_format: str
) -> None:
    """With --jobs the workers spool each file's rows and the kernel copies them into the
    output (a pipe here, and -o's file): the same bytes as one core writes, and no spool
    left behind."""
    import subprocess
    import sys

    export = tmp_path / "export"
    export.mkdir()
    _split_export(export, conflicting=True)
    spools = tmp_path / "tmp"
    spools.mkdir()
    env = dict(os.environ, TMPDIR=str(spools))
    args = ["classify", "-i", str(export), "--now", "2026-02-01T12:00:00Z", "-f", output_format]
    command = [sys.executable, "-m", "bridge", *args]
    piped = [
        subprocess.run(  # noqa: S603 - our own interpreter and bridge
            [*command, "-j", jobs], capture_output=True, check=True, env=env
        ).stdout
        for jobs in ("1", "2")
    ]
    assert piped[0] == piped[1]
    written = tmp_path / f"out.{output_format}"
    subprocess.run(  # noqa: S603
        [*command, "-j", "2", "-o", str(written)], capture_output=True, check=True, env=env
    )
    assert written.read_bytes() == piped[0]
    assert list(spools.iterdir()) == []
