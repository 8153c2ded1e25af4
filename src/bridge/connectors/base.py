"""What a connector and an export format are, as far as the rest of bridge is concerned.

A connector is two halves: a pure ``mapping`` (system JSON ⇄ :class:`~bridge.model.WorkItem`)
and an HTTP ``client``. The core only sees the :class:`Connector` protocol below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bridge.model import WorkItem

__all__ = ["Connector", "ConnectorSpec", "ExportFormat"]


class Connector(Protocol):
    """A source of work items (and, for live systems, a target of write-back)."""

    name: str

    def pull(self, *, since: datetime | None = None) -> Iterator[WorkItem]:
        """Yield the items in scope, updated at or after ``since`` when it is given."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """A registered connector: its name in ``bridge.yaml`` and how to build one."""

    name: str
    factory: Callable[[Mapping[str, Any]], Connector]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """A JSON document shape the file connector recognises.

    ``sniff`` must be cheap and must not raise; ``read`` turns the whole document into items
    and raises :class:`bridge.errors.InputError` for records it cannot map. ``source`` is the
    file name, which some formats use as a hint (a ServiceNow export named ``incident.json``).
    """

    name: str
    system: str
    shape: str
    sniff: Callable[[Any], bool]
    read: Callable[[Any, str], Iterable[WorkItem]]
