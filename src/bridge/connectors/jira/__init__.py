"""The jira plugin (built in, registered like any third-party plugin): the ``jira-search``
export format and the ``jira`` live connector (Cloud REST v3, Data Center REST v2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from bridge import hookimpl
from bridge.connectors.base import ConnectorSpec, ExportFormat
from bridge.connectors.jira.connector import SETTINGS_SCHEMA, JiraConnector, make_connector
from bridge.connectors.jira.mapping import SYSTEM, is_search_response, items_from_search
from bridge.model import WorkItem

__all__ = [
    "CONNECTOR",
    "SEARCH_FORMAT",
    "JiraConnector",
    "bridge_register_connectors",
    "bridge_register_formats",
]


def _read_search(doc: Any, source: str) -> Iterator[WorkItem]:
    return items_from_search(doc, source)


SEARCH_FORMAT = ExportFormat(
    name="jira-search",
    system=SYSTEM,
    shape='Jira search response {"issues": [...]}',
    sniff=is_search_response,
    read=_read_search,
)

CONNECTOR = ConnectorSpec(
    name="jira",
    factory=make_connector,
    description=(
        "Jira Cloud (REST v3) or Data Center (REST v2): pulls issues by JQL, writes KPI "
        "fields and one kept-up-to-date comment back, verifies signed webhooks"
    ),
    settings_schema=SETTINGS_SCHEMA,
)


@hookimpl
def bridge_register_connectors(register: Callable[[ConnectorSpec], None]) -> None:
    register(CONNECTOR)


@hookimpl
def bridge_register_formats(register: Callable[[ExportFormat], None]) -> None:
    register(SEARCH_FORMAT)
