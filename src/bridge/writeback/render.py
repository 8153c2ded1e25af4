"""The one comment bridge keeps on an item: built once as a neutral summary, rendered per
system (ADF for Jira Cloud, wiki markup for Jira Data Center, plain text for ServiceNow).

The summary holds only *material* facts — the classification, SLA states and breach times,
figures rounded the way people read them — and never "as of" times or running clocks, so its
digest changes only when something a reader cares about changes. That is what keeps an
edited-in-place Jira comment quiet and a ServiceNow journal (which cannot be edited) free of
near-duplicate entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.model import Classification

__all__ = ["MARKER", "Summary", "build_summary", "to_adf", "to_text", "to_wiki"]

MARKER = "bridge"  # first word of every summary; a fallback to recognise our own comments

_SECTION_LABELS = {
    "evm": "Earned value",
    "effort": "Effort",
    "schedule": "Schedule",
    "cost": "Cost",
    "csat": "Satisfaction",
    "tco": "Cost of ownership",
    "sla": "SLA",
}


@dataclass(frozen=True, slots=True)
class Summary:
    """Title, a decision line, and sections of (label, value) rows."""

    title: str
    decision: str
    sections: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    digest: str


def _fmt(name: str, value: Any, currency: str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | int):
        short = name.rsplit(".", 1)[-1]
        if short in ("planned_pct", "percent_complete"):  # fractions 0..1
            return f"{value * 100:.0f}%"
        if short.endswith("_pct"):  # already percentages
            return f"{value:.0f}%"
        if short in ("spi", "cpi"):
            return f"{value:.2f}"
        if short.endswith("_seconds"):
            return f"{value / 3600:.1f} h"
        if short.endswith("_hours"):
            return f"{value:.1f} h"
        if short.endswith("_days"):
            return f"{value:+.1f} d" if isinstance(value, float) else f"{value:+d} d"
        if short in (
            "bac",
            "pv",
            "ev",
            "ac",
            "sv",
            "cv",
            "eac",
            "etc",
            "vac",
            "labour_cost",
            "other_cost",
            "total",
        ):
            return f"{value:,.0f} {currency}".strip() if currency else f"{value:,.0f}"
        return f"{value:g}"
    return str(value)


# Values that change on every run without anything happening; they stay out of the summary.
_VOLATILE = (
    "elapsed_seconds",
    "elapsed_wall_seconds",
    "remaining_seconds",
    "planned_pct",
    "pv",
    "sv",
    "spi",
    "at_days",
    "sv_days",
)


def build_summary(
    key: str,
    decision: Classification,
    kpis: Mapping[str, Any],
    missing: Sequence[Mapping[str, str]] = (),
    *,
    currency: str | None = None,
) -> Summary:
    """The material content of an item's bridge comment, with its digest."""
    decision_text = decision.work_type + (f", phase {decision.phase}" if decision.phase else "")
    decision_text += f" (rule {decision.rule})" if decision.rule else " (no rule matched)"
    sections: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for group in decision.kpis:
        prefix = group + "."
        rows: list[tuple[str, str]] = []
        for name, value in kpis.items():
            if not name.startswith(prefix) or name.endswith("percent_complete_source"):
                continue
            short = name[len(prefix) :]
            if short in _VOLATILE and not (
                group.startswith("sla.")
                and short == "elapsed_seconds"
                and kpis.get(prefix + "state") in ("met", "breached")
            ):
                continue
            text = _fmt(name, value, currency)
            if text is not None:
                rows.append((short.replace("_", " "), text))
        gaps = [m["kpi"][len(prefix) :] for m in missing if m["kpi"].startswith(prefix)]
        if gaps:
            rows.append(("not computed", ", ".join(g.replace("_", " ") for g in gaps)))
        label = _SECTION_LABELS.get(group.split(".", 1)[0], group)
        if group.startswith("sla."):
            label = f"SLA {group[4:]}"
        sections.append((label, tuple(rows)))
    body = {"decision": decision_text, "sections": sections}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]
    return Summary(
        f"{MARKER}: {key} is {decision.work_type} work", decision_text, tuple(sections), digest
    )


def to_text(summary: Summary) -> str:
    """Plain text for ServiceNow journals."""
    lines = [summary.title, f"Decision: {summary.decision}"]
    for label, rows in summary.sections:
        lines.append("")
        lines.append(f"{label}:")
        lines.extend(f"  {name}: {value}" for name, value in rows)
    lines.append("")
    lines.append(f"[bridge summary {summary.digest}]")
    return "\n".join(lines)


def to_wiki(summary: Summary) -> str:
    """Jira wiki markup for Data Center and REST v2 comments."""
    lines = [f"*{summary.title}*", f"Decision: {summary.decision}"]
    for label, rows in summary.sections:
        lines.append(f"h4. {label}")
        lines.extend(f"|{name}|{value}|" for name, value in rows)
    lines.append(f"{{color:#999999}}bridge summary {summary.digest}{{color}}")
    return "\n".join(lines)


def _text(text: str, *, strong: bool = False) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if strong:
        node["marks"] = [{"type": "strong"}]
    return node


def _cell(kind: str, text: str) -> dict[str, Any]:
    return {"type": kind, "content": [{"type": "paragraph", "content": [_text(text)]}]}


def to_adf(summary: Summary) -> dict[str, Any]:
    """An Atlassian Document Format doc for Jira Cloud (REST v3)."""
    content: list[dict[str, Any]] = [
        {"type": "paragraph", "content": [_text(summary.title, strong=True)]},
        {"type": "paragraph", "content": [_text(f"Decision: {summary.decision}")]},
    ]
    for label, rows in summary.sections:
        content.append({"type": "heading", "attrs": {"level": 4}, "content": [_text(label)]})
        if rows:
            content.append(
                {
                    "type": "table",
                    "content": [
                        {
                            "type": "tableRow",
                            "content": [_cell("tableCell", name), _cell("tableCell", value)],
                        }
                        for name, value in rows
                    ],
                }
            )
    content.append(
        {
            "type": "paragraph",
            "content": [
                {
                    "type": "text",
                    "text": f"bridge summary {summary.digest}",
                    "marks": [{"type": "em"}],
                }
            ],
        }
    )
    return {"type": "doc", "version": 1, "content": content}
