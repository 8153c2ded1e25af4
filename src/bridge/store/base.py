"""The store interface both backends implement, and the behaviour tests they share."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Protocol

from bridge.store.records import Backoff, Lease, Pending, Timer

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

    # -- pending work (see bridge.store.records) -----------------------------------------

    def add_pending(
        self,
        source: str,
        key: str,
        reason: str,
        at: datetime,
        *,
        delivery_id: str | None = None,
        due: datetime | None = None,
    ) -> bool:
        """Record that an item must be (re)evaluated, due at ``due`` (default ``at``).

        With ``delivery_id``, in the same transaction as the delivery is recorded as seen:
        False, and nothing added, when it was seen before. A new change revives a given-up
        item (its attempts start again) and bumps ``seq``; an earlier due time wins.
        """
        ...

    def forget_delivery(self, source: str, delivery_id: str) -> None:
        """Unsee one delivery (its job could not be queued: the sender's retry must count)."""
        ...

    def get_pending(self, source: str, key: str) -> Pending | None: ...

    def claim_pending(
        self, now: datetime, until: datetime, *, limit: int = 100, source: str | None = None
    ) -> list[Pending]:
        """Due rows (not given up, ``next_try <= now``), oldest due first, with their
        ``next_try`` moved to ``until`` so no other sweeper claims them meanwhile; a worker
        that dies holding one leaves it due again at ``until``."""
        ...

    def finish_pending(self, source: str, key: str, seq: int | None) -> bool:
        """The item is written: drop its row, unless a newer change re-added it since
        ``seq`` was read (None: drop whatever is there). True when a row was dropped."""
        ...

    def fail_pending(
        self,
        source: str,
        key: str,
        error: str,
        at: datetime,
        backoff: Backoff,
        *,
        reason: str = "failed",
    ) -> Pending:
        """Count a real failure (attempts + 1, the error kept) and set the next try by
        ``backoff``, or give the item up when it has none left (visible in status until
        pruned). Adds the row if the item had none (a failed write found by a sync)."""
        ...

    def list_pending(
        self, source: str | None = None, *, given_up: bool | None = None, limit: int = 100
    ) -> list[Pending]:
        """Rows for status: given up, waiting, or both; most recently failed first."""
        ...

    def count_pending(self) -> dict[tuple[str, bool], int]:
        """(source, given up) → rows."""
        ...

    # -- leases ----------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> Lease:
        """Take or renew ``name`` for ``ttl`` unless another holder's lease is unexpired;
        the answer says who holds it and since when."""
        ...

    def release_lease(self, name: str, holder: str) -> None:
        """Let go of ``name`` if ``holder`` has it; the release takes the next ticket."""
        ...

    def lease_ticket(self) -> int:
        """The newest release ticket (0 before any): read it before pulling items, and an
        item lease whose ``released`` is larger was held by someone else since."""
        ...

    # -- timers ----------------------------------------------------------------------------

    def set_timer(self, source: str, key: str, due: datetime | None) -> None:
        """Replace the item's timer (None: drop it — the item is done or out of scope)."""
        ...

    def claim_timers(self, now: datetime, until: datetime, *, limit: int = 1000) -> list[Timer]:
        """Timers due by ``now``, earliest first, kept out of other ticks' reach until
        ``until`` (a worker killed holding them leaves them due again then); each keeps its
        ``due`` so the lag can be measured."""
        ...

    def next_timers(self, limit: int = 10) -> list[Timer]:
        """The earliest timers, for status."""
        ...

    def count_timers(self) -> dict[str, int]:
        """source → timers."""
        ...

    # -- latest evaluations (bridge.evaluations) ------------------------------------------

    def put_evaluation(self, source: str, key: str, record: str, at: datetime) -> None:
        """Keep the item's latest evaluation (a JSON record), replacing the one before."""
        ...

    def drop_evaluation(self, source: str, key: str) -> None:
        """Forget an item that is gone from the system or out of scope."""
        ...

    def evaluations(
        self, source: str | None = None, *, batch: int = 1000
    ) -> Iterator[tuple[str, str, datetime, str]]:
        """Every kept evaluation as (source, key, evaluated at, record), by source and key,
        read ``batch`` rows at a time so a large portfolio is never held at once."""
        ...

    def count_evaluations(self) -> dict[str, int]:
        """source → items with a kept evaluation."""
        ...

    # -- bounded state ---------------------------------------------------------------------

    def prune(self, *, deliveries: datetime, audit: datetime, given_up: datetime) -> dict[str, int]:
        """Drop delivery records, audit lines and given-up rows older than these (and
        release records as old as deliveries: they outlive any pull); counts."""
        ...

    def close(self) -> None: ...
