"""An item's latest evaluation as the store keeps it: enough to report on and draw the
dashboard without asking the ticketing system again.

The store is a cache of what bridge last saw and decided (ARCHITECTURE.md, "evaluations"):
the item's identity and the fields reports group by, the decision, the KPIs with the
reasons for missing ones, and the facts the portfolio adds up. The item's whole record
(``raw``) is not kept — it is the system's, and large — so ``raw.<path>`` grouping needs an
export. A record from an older or newer bridge that cannot be read back is skipped by the
reader with a reason, never guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bridge.kpi.portfolio import Evaluated
from bridge.kpi.result import KpiResult
from bridge.model import PHASES, STATUS_CATEGORIES, WORK_TYPES, Classification, WorkItem
from bridge.timefmt import json_value

if TYPE_CHECKING:
    from bridge.store.base import Store

__all__ = ["FORMAT", "GROUP_FIELDS", "Stored", "decode", "encode", "read_stored"]

#: Bumped when a record's shape changes in a way an older reader would misread.
FORMAT = 1

#: The item fields a record keeps: identity, what reports group and filter by.
GROUP_FIELDS: tuple[str, ...] = (
    "key",
    "system",
    "type",
    "status",
    "status_category",
    "summary",
    "url",
    "priority",
    "project",
    "service",
    "labels",
    "components",
    "assignee",
    "team",
    "reporter",
    "created",
    "updated",
    "resolved",
    "due",
)
_INSTANTS = frozenset({"created", "updated", "resolved"})
_LISTS = frozenset({"labels", "components"})


def encode(evaluated: Evaluated) -> str:
    """The record of one evaluation, as compact JSON (KPI instants as ISO 8601 UTC)."""
    item, decision, kpis = evaluated.item, evaluated.decision, evaluated.kpis
    document = {
        "format": FORMAT,
        "item": {name: json_value(getattr(item, name)) for name in GROUP_FIELDS},
        "decision": {
            "work_type": decision.work_type,
            "phase": decision.phase,
            "rule": decision.rule,
            "kpis": list(decision.kpis),
        },
        "kpis": {name: json_value(value) for name, value in kpis.values.items()},
        "missing": kpis.missing,
        "facts": {"sla_completed": list(kpis.facts.get("sla_completed", ()))},
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _item(fields: Mapping[str, Any]) -> WorkItem:
    values: dict[str, Any] = {}
    for name in GROUP_FIELDS:
        value = fields.get(name)
        if name in _LISTS:
            values[name] = tuple(str(v) for v in value) if isinstance(value, list) else ()
        elif name in _INSTANTS:
            values[name] = datetime.fromisoformat(value) if isinstance(value, str) else None
        elif name == "due":
            values[name] = date.fromisoformat(value[:10]) if isinstance(value, str) else None
        else:
            values[name] = _text(value)
    if values["status_category"] not in STATUS_CATEGORIES:
        values["status_category"] = None
    if not values["key"] or not values["system"]:
        raise ValueError("the record names no key or system")
    return WorkItem(**values)


def decode(record: str, source: str | None = None) -> Evaluated:
    """An evaluation back from its record; ValueError when the record cannot be read (a
    newer format, or damage), so the caller can skip it and say so."""
    document = json.loads(record)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"not a format-{FORMAT} evaluation record")
    decision = document.get("decision") or {}
    work_type = decision.get("work_type")
    phase = decision.get("phase")
    if work_type not in WORK_TYPES or (phase is not None and phase not in PHASES):
        raise ValueError("the record's decision is not one bridge makes")
    kpis = KpiResult(dict(document.get("kpis") or {}))
    kpis.missing = [m for m in document.get("missing") or [] if isinstance(m, dict)]
    completed = (document.get("facts") or {}).get("sla_completed") or []
    if completed:
        kpis.facts["sla_completed"] = [bool(flag) for flag in completed]
    return Evaluated(
        _item(document.get("item") or {}),
        Classification(
            work_type,
            phase,
            _text(decision.get("rule")),
            tuple(str(k) for k in decision.get("kpis") or ()),
        ),
        kpis,
        source,
    )


@dataclass(slots=True)
class Stored:
    """What the store holds for a report: the evaluations, the records it could not read
    (source, key, why), and the span of evaluation times — a report from the store says
    how fresh it is."""

    evaluated: list[Evaluated] = field(default_factory=list)
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None


def read_stored(
    store: Store,
    sources: Iterable[str] = (),
    *,
    keep: Callable[[WorkItem], bool] | None = None,
    advance: Callable[[int], None] | None = None,
) -> Stored:
    """The latest evaluation of every item of ``sources`` (every source when empty) that
    ``keep`` keeps; ``advance`` is told of each record read (a progress bar)."""
    out = Stored()
    chosen: list[str | None] = list(sources) or [None]
    for source in chosen:
        for name, key, at, record in store.evaluations(source):
            if advance is not None:
                advance(1)
            try:
                found = decode(record, name)
            except ValueError as exc:
                out.unreadable.append((name, key, str(exc)))
                continue
            if keep is not None and not keep(found.item):
                continue
            out.evaluated.append(found)
            out.first = at if out.first is None or at < out.first else out.first
            out.last = at if out.last is None or at > out.last else out.last
    return out
