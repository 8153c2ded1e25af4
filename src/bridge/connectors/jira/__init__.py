"""The jira plugin (built in, registered like any third-party plugin): the ``jira-search``
export format and the ``jira`` live connector (Cloud REST v3, Data Center REST v2)."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator
from itertools import repeat
from typing import Any

import msgspec

from bridge import hookimpl
from bridge.connectors.base import ConnectorSpec, ExportFormat
from bridge.connectors.files import REFUSED, LazyArray
from bridge.connectors.jira.connector import SETTINGS_SCHEMA, JiraConnector, make_connector
from bridge.connectors.jira.mapping import (
    SYSTEM,
    is_search_response,
    item_from_issue,
    items_from_search,
    resolve_field_ids,
)
from bridge.errors import InputError
from bridge.model import WorkItem

__all__ = [
    "CONNECTOR",
    "SEARCH_FORMAT",
    "JiraConnector",
    "bridge_register_connectors",
    "bridge_register_formats",
    "search_statuses",
]


def _read_search(doc: Any, source: str) -> Iterator[WorkItem]:
    return items_from_search(doc, source)


class _StatusFields(msgspec.Struct):
    status: Any = None


class _StatusIssue(msgspec.Struct):
    fields: _StatusFields | None = None


def _status_name(issue: Any) -> str | bool | None:
    """The status name the mapping gives a decoded ``_StatusIssue`` (as ``ctx.name``
    reads it), or False when only the whole record can tell."""
    if issue is REFUSED:
        return False
    status = issue.fields.status if issue.fields is not None else None
    if isinstance(status, dict):
        status = status.get("name")
    if status is None or isinstance(status, str):
        return status or None
    return False


def search_statuses(doc: Any, source: str, known: Container[str]) -> Iterator[tuple[str, str]]:
    """The status reader of search responses (see
    :data:`bridge.connectors.files.StatusReader`): an issue whose status name is absent or
    known is not mapped; any other is mapped whole, and one that cannot be is left out, as
    the export reader does."""
    issues = doc.get("issues") if isinstance(doc, dict) else None
    if not isinstance(issues, list):
        next(iter(items_from_search(doc, source)), None)  # raises: the envelope is wrong
        return
    # The envelope's checks, as items_from_search makes them.
    next(iter(items_from_search(dict(doc, issues=[]), source)), None)
    resolved = resolve_field_ids(None, doc.get("names"))
    # A document the streaming reader could not split (the standard library read it) is a
    # plain list: each issue is mapped whole.
    partials: Iterable[Any] = (
        issues.partial(_StatusIssue)
        if isinstance(issues, LazyArray)
        else repeat(REFUSED, len(issues))
    )
    for index, partial in enumerate(partials):
        name = _status_name(partial)
        if name is None or (name is not False and name in known):
            continue
        try:
            item = item_from_issue(issues[index], resolved=resolved, where=f"issues[{index}]")
        except InputError:
            continue  # the reader leaves it out
        if item.status is not None and item.status_category is not None:
            yield item.status, item.status_category


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
