"""What waits to be written, in one shape for ``/status`` and ``bridge status``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bridge.store.base import Store

__all__ = ["pending_status", "timer_status"]


def pending_status(store: Store, *, limit: int = 20) -> dict[str, Any]:
    """What is still to be written, per source, and the items given up with their last
    error (for ``/status`` and ``bridge status``)."""
    waiting: dict[str, dict[str, int]] = {}
    for (source, given_up), count in sorted(store.count_pending().items()):
        waiting.setdefault(source, {"waiting": 0, "given_up": 0})[
            "given_up" if given_up else "waiting"
        ] = count
    return {
        "by_source": waiting,
        "given_up": [
            {
                "source": row.source,
                "key": row.key,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "since": row.since.isoformat(),
            }
            for row in store.list_pending(given_up=True, limit=limit)
        ],
    }


def timer_status(store: Store, now: datetime | None = None, *, limit: int = 5) -> dict[str, Any]:
    """Items waiting for a written value to change with time, the next ones due, and how
    far behind the earliest due one is (0 when the worker keeps up)."""
    now = now or datetime.now(UTC)
    upcoming = store.next_timers(limit)
    behind = (now - upcoming[0].due).total_seconds() if upcoming else 0.0
    return {
        "by_source": dict(sorted(store.count_timers().items())),
        "next": [{"source": t.source, "key": t.key, "due": t.due.isoformat()} for t in upcoming],
        "lag_seconds": round(max(0.0, behind), 3),
    }
