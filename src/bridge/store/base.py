"""The store interface both backends implement, and the behaviour tests they share."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

__all__ = ["Store"]


class Store(Protocol):
    """Durable state for syncs and webhooks. Every method is one short transaction."""

    def get_cursor(self, source: str) -> datetime | None:
        """The ``updated`` instant up to which ``source`` has been synced."""
        ...

    def set_cursor(self, source: str, cursor: datetime) -> None: ...

    def first_delivery(self, source: str, delivery_id: str, at: datetime) -> bool:
        """Record a webhook delivery; False when it was seen before (a retry or duplicate)."""
        ...

    def forget_deliveries(self, before: datetime) -> int:
        """Drop delivery records older than ``before``; returns how many."""
        ...

    def get_memo(self, source: str, key: str) -> str | None:
        """A small value remembered per item (e.g. the digest of the last journal entry)."""
        ...

    def set_memo(self, source: str, key: str, value: str) -> None: ...

    def audit(self, source: str, item: str, action: str, detail: str, at: datetime) -> None:
        """Append one line to the audit log."""
        ...

    def audit_log(
        self, source: str | None = None, limit: int = 100
    ) -> list[tuple[datetime, str, str, str, str]]:
        """The newest audit lines: (at, source, item, action, detail)."""
        ...

    def close(self) -> None: ...
