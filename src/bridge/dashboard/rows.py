"""The dashboard's data: one flat row per item, and the JSON that carries the rows into a page.

The page recomputes every figure in the browser when a filter changes, so it needs the items,
not the report's totals; each row holds exactly the inputs :func:`bridge.kpi.portfolio.portfolio`
reads (and only values that function would count: floats, finite), so the page's sums are the
report's sums. Group labels are made here with :func:`~bridge.kpi.portfolio.group_key`, so
``(none)`` means the same on the page as in ``bridge report``.

Everything in a row comes from a ticket and is hostile until shown: the page sets it as text
(never as markup), a link is kept only when it is an ``http``/``https`` URL, and the JSON is
escaped so that no ticket text can end the ``<script>`` element that carries it
(:func:`script_json`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from bridge.kpi.portfolio import Evaluated, group_key
from bridge.kpi.result import iso

__all__ = ["item_row", "item_rows", "safe_url", "script_json"]

_PROJECT = group_key("project")
_SERVICE = group_key("service")
_TEAM = group_key("team")

# What may end or confuse a <script> element's text (<, >, & for "</script>" and "<!--";
# U+2028/2029 for old JavaScript parsers), as JSON escapes that JSON.parse reads back.
_SCRIPT_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def script_json(value: Any) -> str:
    """``value`` as JSON safe to place between ``<script type="application/json">`` tags.

    :raises ValueError: ``value`` holds an infinite or NaN float (JSON has none; a row never
        does, see :func:`item_row`).
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_SCRIPT_ESCAPES)


def safe_url(url: str | None) -> str | None:
    """The item's link when it is an absolute ``http``/``https`` URL; None otherwise, so a
    ``javascript:`` or ``data:`` URL in an export never becomes a clickable link."""
    if not url or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _number(value: Any) -> float | None:
    """A figure the portfolio would count: a finite float (portfolio() skips ints, bools and
    None, so the page must too, or its sums would differ from the report's)."""
    return value if isinstance(value, float) and math.isfinite(value) else None


def _slip(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _clocks(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Each SLA clock of the item: its name, state and whether it is at risk."""
    clocks = []
    for name, state in values.items():
        if not (name.startswith("sla.") and name.endswith(".state")) or not isinstance(state, str):
            continue
        sla = name[len("sla.") : -len(".state")]
        at_risk = values.get(f"sla.{sla}.at_risk")
        clocks.append(
            {
                "name": sla,
                "state": state,
                "at_risk": at_risk if isinstance(at_risk, bool) else None,
                "ever_breached": values.get(f"sla.{sla}.ever_breached") is True,
            }
        )
    return clocks


def item_row(evaluated: Evaluated) -> dict[str, Any]:
    """The page's row of one item: identity, grouping, dates, and the KPI inputs of the
    portfolio figures (SLA clocks completed and whether each was breached, CSAT rating,
    TCO parts, EV/PV/AC, schedule slip)."""
    item, values = evaluated.item, evaluated.kpis.values
    completed = evaluated.kpis.facts.get("sla_completed", [])
    return {
        "key": item.key,
        "url": safe_url(item.url),
        "summary": item.summary or "",
        "source": evaluated.source if evaluated.source is not None else item.system,
        "project": _PROJECT(item),
        "service": _SERVICE(item),
        "team": _TEAM(item),
        "type": item.type,
        "status": item.status,
        "work_type": evaluated.decision.work_type,
        "created": iso(item.created),
        "resolved": iso(item.resolved),
        "sla_completed": [bool(flag) for flag in completed],
        "clocks": _clocks(values),
        "csat": _number(values.get("csat.rating")),
        "tco_total": _number(values.get("tco.total")),
        "tco_labour": _number(values.get("tco.labour_cost")),
        "tco_other": _number(values.get("tco.other_cost")),
        "ev": _number(values.get("evm.ev")),
        "pv": _number(values.get("evm.pv")),
        "ac": _number(values.get("evm.ac")),
        "slip_days": _slip(values.get("schedule.slip_days")),
    }


def item_rows(evaluated: Iterable[Evaluated]) -> list[dict[str, Any]]:
    """The rows of all items, in the order given (the page keeps it: sums in the same order
    as the report's)."""
    return [item_row(e) for e in evaluated]
