"""The portfolio dashboard: a self-contained HTML page of the portfolio figures with charts,
from ``bridge report -f html`` and ``GET /dashboard`` (issue 13).

:func:`render_dashboard` makes the page from evaluated items; :class:`DashboardSource` is what
the service asks for them.
"""

from __future__ import annotations

from bridge.dashboard.page import DEFAULT_TITLE, content_security_policy, render_dashboard
from bridge.dashboard.rows import item_row, item_rows, safe_url, script_json
from bridge.dashboard.source import DashboardSnapshot, DashboardSource

__all__ = [
    "DEFAULT_TITLE",
    "DashboardSnapshot",
    "DashboardSource",
    "content_security_policy",
    "item_row",
    "item_rows",
    "render_dashboard",
    "safe_url",
    "script_json",
]
