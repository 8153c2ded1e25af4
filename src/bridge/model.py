"""The normalized vocabulary every part of bridge speaks.

Connectors turn a system's JSON into :class:`WorkItem`; rules and KPIs read only these fields
(or ``raw.<path>`` for anything else), so a rule written for Jira reads the same way for
ServiceNow. All instants are timezone-aware UTC datetimes; date-only fields (a Jira due date)
stay :class:`datetime.date` because their meaning depends on the calendar's time zone, which
only the KPI code knows.

Every date and instant lies in the years :data:`FIRST_DATE` to :data:`LAST_DATE`: connectors
refuse a record with one outside (:func:`in_date_range`), because calendars and SLA clocks walk
the span between two dates (year 1 to today takes them minutes per item) and a date at either
end of Python's range overflows once shifted into a time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

__all__ = [
    "DATE_RANGE_TEXT",
    "FIELD_TYPES",
    "FIRST_DATE",
    "LAST_DATE",
    "PHASES",
    "STATUS_CATEGORIES",
    "WORK_TYPES",
    "Classification",
    "FieldChange",
    "FieldType",
    "NativeSla",
    "NativeSlaCycle",
    "Phase",
    "StatusCategory",
    "WorkItem",
    "WorkType",
    "in_date_range",
]

WorkType = Literal["project", "service", "unclassified"]
Phase = Literal["initiation", "planning", "execution", "monitoring", "closing"]
StatusCategory = Literal["todo", "in_progress", "done"]

WORK_TYPES: tuple[str, ...] = get_args(WorkType)
PHASES: tuple[str, ...] = get_args(Phase)
STATUS_CATEGORIES: tuple[str, ...] = get_args(StatusCategory)

EMPTY_RAW: Mapping[str, Any] = MappingProxyType({})

FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(2999, 12, 31)
DATE_RANGE_TEXT = f"the years {FIRST_DATE.year} to {LAST_DATE.year}"


def in_date_range(value: date) -> bool:
    """Whether a date, or an instant (its UTC date), lies in the years bridge computes with."""
    day = value.date() if isinstance(value, datetime) else value
    return FIRST_DATE <= day <= LAST_DATE


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field change from an item's history (Jira changelog item, or derived).

    ``field`` is the normalized field name when one exists (``status``, ``assignee``,
    ``priority``...), otherwise the system's own field name.
    """

    at: datetime
    field: str
    from_value: str | None
    to_value: str | None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class NativeSlaCycle:
    """One cycle of an SLA as the ticketing system itself computed it.

    Durations are business seconds as the system counts them; ``stop`` is None while the
    cycle is still running.
    """

    start: datetime | None
    stop: datetime | None
    breach_time: datetime | None
    goal_seconds: float | None
    elapsed_seconds: float | None
    remaining_seconds: float | None
    breached: bool
    paused: bool = False
    cancelled: bool = False
    elapsed_wall_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class NativeSla:
    """An SLA the system tracks itself (a Jira Service Management SLA field, a ServiceNow
    ``task_sla`` row), kept so rules can prefer it over bridge's own computation."""

    name: str
    field: str | None
    cycles: tuple[NativeSlaCycle, ...]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A ticket from any system, in bridge's normalized shape.

    Missing values are ``None`` (never 0 or ""), so KPIs can report them as missing.
    Hours are floats; ``percent_complete`` is a fraction 0..1; ``satisfaction`` is 1..5.
    """

    key: str
    system: str
    type: str | None = None
    status: str | None = None
    status_category: StatusCategory | None = None
    summary: str | None = None
    url: str | None = None
    priority: str | None = None
    project: str | None = None
    service: str | None = None
    labels: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    assignee: str | None = None
    #: The group that works the item (ServiceNow's assignment group); None where the system
    #: has no such field (Jira).
    team: str | None = None
    reporter: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    resolved: datetime | None = None
    due: date | None = None
    planned_start: date | None = None
    planned_end: date | None = None
    estimate_hours: float | None = None
    spent_hours: float | None = None
    remaining_hours: float | None = None
    story_points: float | None = None
    budget: float | None = None
    actual_cost: float | None = None
    percent_complete: float | None = None
    parent: str | None = None
    satisfaction: float | None = None
    history: tuple[FieldChange, ...] = ()
    native_slas: tuple[NativeSla, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=lambda: EMPTY_RAW, compare=False, repr=False)
    #: The system gave the item's whole change history (a Jira issue read with its changelog),
    #: so a state with no recorded change has held since creation. False (ServiceNow's Table
    #: API, an export without changelogs): when it began is unknown, and SLA clocks have to
    #: guess it from ``updated`` — which bridge's own write-back moves.
    history_complete: bool = False

    def status_changes(self) -> tuple[FieldChange, ...]:
        """The status transitions only, oldest first."""
        return tuple(c for c in self.history if c.field == "status")


FieldType = Literal["string", "category", "list", "number", "instant", "date"]

# The normalized fields a rule may name, and their types. ``instant`` fields hold datetimes;
# ``date`` fields hold a date or a datetime (systems differ). ``category`` is a closed set.
FIELD_TYPES: Mapping[str, FieldType] = MappingProxyType(
    {
        "key": "string",
        "system": "string",
        "type": "string",
        "status": "string",
        "status_category": "category",
        "summary": "string",
        "url": "string",
        "priority": "string",
        "project": "string",
        "service": "string",
        "labels": "list",
        "components": "list",
        "assignee": "string",
        "team": "string",
        "reporter": "string",
        "created": "instant",
        "updated": "instant",
        "resolved": "instant",
        "due": "date",
        "planned_start": "date",
        "planned_end": "date",
        "estimate_hours": "number",
        "spent_hours": "number",
        "remaining_hours": "number",
        "story_points": "number",
        "budget": "number",
        "actual_cost": "number",
        "percent_complete": "number",
        "parent": "string",
        "satisfaction": "number",
    }
)

CATEGORY_VALUES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"status_category": STATUS_CATEGORIES}
)


@dataclass(frozen=True, slots=True)
class Classification:
    """What the rules decided for one item, and which rule decided it (None: the default)."""

    work_type: WorkType
    phase: Phase | None
    rule: str | None
    kpis: tuple[str, ...] = ()
