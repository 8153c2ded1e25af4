"""What a connector and an export format are, as far as the rest of bridge is concerned.

A connector is two halves: a pure ``mapping`` (system JSON ⇄ :class:`~bridge.model.WorkItem`)
and an HTTP ``client``. The core only sees the :class:`Connector` protocol below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bridge.errors import Diagnostic
from bridge.kpi.result import KpiResult
from bridge.model import Classification, WorkItem
from bridge.rules.ast import RuleSet
from bridge.writeback.plan import Applied, WriteOp

__all__ = [
    "Connector",
    "ConnectorContext",
    "ConnectorSpec",
    "ExportFormat",
    "LiveConnector",
    "Memos",
    "WebhookEvent",
]


class Connector(Protocol):
    """A source of work items."""

    name: str

    def pull(self, *, since: datetime | None = None) -> Iterator[WorkItem]:
        """Yield the items in scope, updated at or after ``since`` when it is given."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified, parsed webhook delivery.

    ``keys`` are what ``fetch`` takes (a Jira issue key; ``table:sys_id`` for ServiceNow).
    ``ignore_reason`` is set when processing it would only echo bridge's own writes (the
    actor is bridge's account, or only fields bridge writes changed).
    """

    delivery_id: str | None
    kind: str
    keys: tuple[str, ...]
    deleted: bool = False
    ignore_reason: str | None = None


class LiveConnector(Connector, Protocol):
    """A ticketing system bridge reads from and writes KPIs back to.

    A connector that skips records it cannot map during ``pull`` lists them, as
    ``(key, reason)``, in a ``skipped`` attribute it empties when a pull starts; the sync
    reports and audits them once the pull is done.
    """

    def prepare(self, rule_set: RuleSet) -> None:
        """Called before a pull with the rules in force, so the connector can ask the system
        for exactly the fields the rules and KPIs read (``raw.*`` paths included)."""
        ...

    def fetch(self, key: str) -> WorkItem:
        """The item as it is now (webhooks act on fresh data); ItemNotFoundError if gone."""
        ...

    def plan(
        self,
        item: WorkItem,
        decision: Classification,
        kpis: KpiResult,
        *,
        currency: str | None = None,
    ) -> list[WriteOp]:
        """The writes that would make the item show ``decision`` and ``kpis`` — only those
        that change something. Pure: reads what the item holds, does no I/O."""
        ...

    def apply(self, item: WorkItem, ops: list[WriteOp]) -> Applied | None:
        """Perform planned writes and say what was really written (None: as planned);
        raises a ConnectorError naming what failed, with ``applied`` set when part of the
        plan was written before it failed."""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify (constant time) and parse one delivery; raises WebhookSignatureError or
        WebhookPayloadError. Pure: no I/O."""
        ...

    def close(self) -> None: ...


class Memos(Protocol):
    """Small texts a connector keeps between runs, per source and key (what bridge last
    wrote to a record). The state store is one; a connector needs only these two methods,
    so it depends on them, not on the store and its other tables."""

    def get_memo(self, source: str, key: str) -> str | None:
        """The text last set for ``key``, or None."""
        ...

    def set_memo(self, source: str, key: str, value: str) -> None:
        """Keep ``value`` for ``key``, replacing any earlier one."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What bridge hands a connector besides its settings.

    ``store`` is where the connector keeps its memos (the state store, in a sync or the
    service); None: a connector built for one run keeps them in memory, or not at all.
    """

    store: Memos | None = None
    base_dir: str = "."
    # Where a path inside the source's ``sources:`` entry was written in bridge.yaml (an
    # empty Diagnostic to fill in); None when the settings did not come from a file.
    locate: Callable[[tuple[str | int, ...]], Diagnostic] | None = None


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """A registered connector: its name in ``bridge.yaml``, how to build one, and the JSON
    Schema of its ``sources:`` entry (validated with positions like the rules)."""

    name: str
    factory: Callable[[Mapping[str, Any], ConnectorContext], Connector]
    description: str = ""
    settings_schema: Mapping[str, Any] | None = None
    # Whether it talks to a live system (fetch, write back, webhooks); False for one that
    # only reads exports: it cannot be synced on a schedule nor receive deliveries.
    live: bool = True


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
