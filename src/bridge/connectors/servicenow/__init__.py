"""The servicenow plugin (built in, registered like any third-party plugin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from bridge import hookimpl
from bridge.connectors import skip_record
from bridge.connectors.base import ConnectorSpec, ExportFormat
from bridge.connectors.servicenow.connector import (
    SETTINGS_SCHEMA,
    ServiceNowConnector,
    create_connector,
)
from bridge.connectors.servicenow.mapping import item_from_record, table_from_file_name
from bridge.errors import InputError
from bridge.model import WorkItem

__all__ = [
    "CONNECTOR",
    "TABLE_EXPORT",
    "ServiceNowConnector",
    "bridge_register_connectors",
    "bridge_register_formats",
    "read_table_export",
    "sniff_table_export",
]


def sniff_table_export(doc: Any) -> bool:
    """A Table API response: ``{"result": [...]}`` (a page) or ``{"result": {...}}`` (a record).

    Only the first record is looked at, so a bad record further down is reported by ``read``
    with its index instead of the whole file being "not an export bridge knows". An empty page
    is accepted: it is a valid export with nothing in it.
    """
    if not isinstance(doc, dict):
        return False
    result = doc.get("result")
    if isinstance(result, dict):
        return True
    return isinstance(result, list) and (not result or isinstance(result[0], dict))


def read_table_export(doc: Any, source: str) -> Iterator[WorkItem]:
    """The items of a saved Table API response.

    Records saved with ``sysparm_fields`` may lack ``sys_class_name``; then the file name says
    the table (``incident-page-2.json``), which the state labels and the item URL depend on.
    """
    result = doc.get("result") if isinstance(doc, dict) else None
    if isinstance(result, dict):
        records: list[tuple[str, Any]] = [("result", result)]
    elif isinstance(result, list):
        records = [(f"result[{index}]", record) for index, record in enumerate(result)]
    else:
        raise InputError(
            'not a ServiceNow Table API response: expected {"result": [...]} or {"result": {...}}',
            path=source,
        )
    table = table_from_file_name(source)
    for where, record in records:
        try:
            item = item_from_record(record, table=table)
        except InputError as exc:
            number = record.get("number") if isinstance(record, dict) else None
            key = number.strip() if isinstance(number, str) and number.strip() else None
            if skip_record(f"{source}: {where}", str(exc), key):
                continue  # listed with why; the export's other records go on
            raise InputError(f"{where}: {exc}", path=source) from None
        yield item


TABLE_EXPORT = ExportFormat(
    name="servicenow-table",
    system="servicenow",
    shape='ServiceNow Table API response {"result": [...]}',
    sniff=sniff_table_export,
    read=read_table_export,
)


@hookimpl
def bridge_register_formats(register: Callable[[ExportFormat], None]) -> None:
    register(TABLE_EXPORT)


CONNECTOR = ConnectorSpec(
    name="servicenow",
    factory=create_connector,
    description=(
        "ServiceNow Table API: pulls changed records (and their task_sla rows), writes KPIs "
        "to u_ fields and a work note; webhooks from a Business Rule"
    ),
    settings_schema=SETTINGS_SCHEMA,
)


@hookimpl
def bridge_register_connectors(register: Callable[[ConnectorSpec], None]) -> None:
    register(CONNECTOR)
