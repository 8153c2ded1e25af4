"""The jira plugin (built in, registered like any third-party plugin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from bridge import hookimpl
from bridge.connectors.base import ExportFormat
from bridge.connectors.jira.mapping import SYSTEM, is_search_response, items_from_search
from bridge.model import WorkItem

__all__ = ["SEARCH_FORMAT", "bridge_register_formats"]


def _read_search(doc: Any, source: str) -> Iterator[WorkItem]:
    return items_from_search(doc, source)


SEARCH_FORMAT = ExportFormat(
    name="jira-search",
    system=SYSTEM,
    shape='Jira search response {"issues": [...]}',
    sniff=is_search_response,
    read=_read_search,
)


@hookimpl
def bridge_register_formats(register: Callable[[ExportFormat], None]) -> None:
    register(SEARCH_FORMAT)
