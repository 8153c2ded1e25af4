"""The file connector: every unreadable export gives its expected, located message."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.connectors.base import ConnectorContext
from bridge.connectors.files import FileConnector, read_export
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
