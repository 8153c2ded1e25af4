"""Where ``GET /dashboard`` gets its items: whatever holds the latest evaluation of each item
(the store, in ``bridge serve``) offers it through :class:`DashboardSource`.

A protocol rather than a store method, so the route depends on nothing but "give me the
evaluated items and what they were evaluated with", and a test can hand it a list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from bridge.kpi.portfolio import Evaluated

__all__ = ["DashboardSnapshot", "DashboardSource"]


@dataclass(frozen=True, slots=True)
class DashboardSnapshot:
    """The items to show and the context their figures were computed in."""

    evaluated: Sequence[Evaluated]
    #: When the KPIs were evaluated (the page says "as of"; SLA states are relative to it).
    now: datetime
    #: The digest of the rule set the items were evaluated with.
    rule_set: str
    #: The rule set's currency for the TCO figures; None when it names none.
    currency: str | None


@runtime_checkable
class DashboardSource(Protocol):
    """Gives the dashboard its items. Called once per page request, on the request's thread:
    it may read the store, and should raise :class:`~bridge.errors.BridgeError` (the route
    answers 503) rather than return a partial list."""

    def evaluations(self) -> DashboardSnapshot: ...
