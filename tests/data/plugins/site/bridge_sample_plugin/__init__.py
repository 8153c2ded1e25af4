"""A third-party bridge plugin used by the tests: a connector, an export format and an operator.

It is installed into the test's import path with a real ``.dist-info`` entry point, so the
plugin manager finds it exactly as it would find a pip-installed package.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from bridge import WorkItem, hookimpl
from bridge.connectors.base import ConnectorSpec, ExportFormat
from bridge.rules.operators import OperatorSpec


class CsvishConnector:
    def __init__(self, settings: dict[str, Any], context: Any = None) -> None:
        self.name = settings.get("name", "sample")
        self.rows = settings.get("rows", [])

    def pull(self, *, since: datetime | None = None) -> Iterator[WorkItem]:
        for row in self.rows:
            yield WorkItem(key=row["id"], system="sample", type=row.get("kind"))


def _sniff(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("tickets"), list)


def _read(doc: Any, source: str) -> Iterator[WorkItem]:
    for row in doc["tickets"]:
        yield WorkItem(
            key=row["id"], system="sample", type=row.get("kind"), summary=row.get("title"), raw=row
        )


def _prepare(value: Any, field_type: Any) -> int:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a word count; write a whole number >= 0")
    return value


def _longer_than(actual: Any, expected: int, now: datetime) -> bool:
    return isinstance(actual, str) and len(actual.split()) > expected


@hookimpl
def bridge_register_connectors(register: Any) -> None:
    register(ConnectorSpec("sample", CsvishConnector, "rows given in the settings"))


@hookimpl
def bridge_register_formats(register: Any) -> None:
    register(
        ExportFormat("sample-tickets", "sample", 'sample export {"tickets": [...]}', _sniff, _read)
    )


@hookimpl
def bridge_register_operators(register: Any) -> None:
    register(
        OperatorSpec(
            "longer_than_words",
            frozenset({"string"}),
            {"type": "integer"},
            _prepare,
            _longer_than,
            "text has more than N words",
        )
    )
