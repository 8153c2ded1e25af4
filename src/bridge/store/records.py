"""What the store keeps about work in progress: pending items and leases, and the retry
policy that decides when a failed item is tried again. Pure: the backends store these.

A *pending* row says "this item must be (re)evaluated and written": a webhook delivery, a
failed write, a timer. It lives until the item is written (or visibly given up), so the
queue is only a fast path: a worker killed mid-job, a queue that was down, a 503 from the
ticketing system all leave the row, and the sweeper runs it again when it is due. ``seq``
counts the row's (re)additions, so a job that started before a newer change arrived does
not delete the row that change needs.

A *lease* is a named claim with an expiry (one scheduled sync per source, one job per item):
a holder that is killed blocks the next one for at most the lease's length. Each release
takes a *ticket*, a number that only grows, store-wide: a sync reads the newest ticket before
it pulls, and an item lease released with a later one was held by another job after the
pull began — the sync's copy of that item may be older than what the job wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Backoff", "Lease", "Pending", "Retention", "Timer"]


@dataclass(frozen=True, slots=True)
class Pending:
    """One item that must still be written."""

    source: str
    key: str
    reason: str
    attempts: int
    next_try: datetime
    last_error: str | None
    given_up: bool
    seq: int
    since: datetime  # when the row was first added (how long the item has waited)


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds ``name`` until when; ``acquired`` says whether the caller now does."""

    name: str
    holder: str
    since: datetime
    expires: datetime
    acquired: bool
    expired_holder: str | None = None  # whose expired lease was taken over (a killed worker)
    released: int | None = None  # the ticket of its last release (None: none on record)

    def held_since(self, ticket: int) -> bool:
        """Whether another holder may have worked under this lease after ``ticket`` was
        read (released later, or killed holding it)."""
        return self.expired_holder is not None or (self.released or 0) > ticket


@dataclass(frozen=True, slots=True)
class Timer:
    """When an item's written values next change by the clock alone (a breach, a due date
    passing, a moving figure's refresh): the worker's tick re-evaluates it then."""

    source: str
    key: str
    due: datetime


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff for failed items: ``first`` doubling up to ``cap``; given up
    after ``max_attempts`` real errors (rate limits are pacing and never counted)."""

    max_attempts: int = 10
    first: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=2)

    def next_try(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after the ``attempts``-th failure; None: give up."""
        if attempts >= self.max_attempts:
            return None
        delay = min(self.first * (1 << min(max(0, attempts - 1), 30)), self.cap)
        return now + delay


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished state is kept before the worker prunes it."""

    deliveries: timedelta = timedelta(days=7)  # Jira retries for about 30 minutes
    audit: timedelta = timedelta(days=90)
    given_up: timedelta = timedelta(days=30)  # visible in status this long
