"""What waits to be written, in one shape for ``/status`` and ``bridge status``."""

from __future__ import annotations

from typing import Any

from bridge.store.base import Store

__all__ = ["pending_status"]


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
