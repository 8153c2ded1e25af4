"""ServiceNow ``task_sla`` rows → :class:`~bridge.model.NativeSla`, with no I/O.

A task_sla row is one run of one SLA definition (``contract_sla``) on one task; a definition
that was reset or re-attached leaves several rows, which become the cycles of one
:class:`NativeSla`, oldest first. Rules name it by the definition's name
(``native: {servicenow_sla: "Priority 1 resolution (4 hour)"}``) or by its sys_id, which is
kept as the SLA's ``field``.

Figures are the SLA engine's own, as of the last time it recalculated the row (the
"SLA timer" job, or the last update of the task): ``business_duration`` is the elapsed
business time, ``duration`` the wall-clock time, ``business_time_left`` what is left. The
goal is not on the row; it is read, in this order, from the definition's ``duration``
(dot-walked as ``sla.duration``), from elapsed + left while the SLA has not breached, or from
``business_percentage`` (elapsed as a share of the goal). Durations are ``glide_duration``
values, offsets from the epoch (``1970-01-03 14:33:00`` = 2 d 14 h 33 min).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bridge.connectors.servicenow.mapping import stored_value
from bridge.errors import InputError
from bridge.model import NativeSla, NativeSlaCycle
from bridge.timefmt import parse_servicenow_instant, parse_servicenow_seconds

__all__ = [
    "TASK_SLA_FIELDS",
    "cycle_from_row",
    "native_slas",
    "slas_by_task",
]

# What the connector asks task_sla for (``sla.name`` and ``sla.duration`` are dot-walks into
# the contract_sla definition).
TASK_SLA_FIELDS: tuple[str, ...] = (
    "sys_id",
    "task",
    "sla",
    "sla.name",
    "sla.duration",
    "stage",
    "has_breached",
    "start_time",
    "end_time",
    "planned_end_time",
    "duration",
    "business_duration",
    "business_time_left",
    "business_percentage",
    "sys_created_on",
    "sys_updated_on",
)

_STOPPED = frozenset(("completed", "breached", "cancelled"))


def _text(row: Mapping[str, Any], name: str) -> str | None:
    value = stored_value(row.get(name))
    if value is None or isinstance(value, Mapping | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


class _Row:
    """Typed reads of one task_sla row; errors name the row and the field."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.row = row
        self.name = f"task_sla {_text(row, 'sys_id') or '(no sys_id)'}"

    def text(self, field: str) -> str | None:
        return _text(self.row, field)

    def instant(self, field: str) -> datetime | None:
        text = self.text(field)
        if text is None:
            return None
        try:
            return parse_servicenow_instant(text)
        except ValueError as exc:
            raise InputError(f"{self.name}: {field}: {exc}") from None

    def seconds(self, field: str) -> float | None:
        text = self.text(field)
        if text is None:
            return None
        try:
            return parse_servicenow_seconds(text)
        except ValueError:
            raise InputError(
                f"{self.name}: {field}: {text!r} is not a ServiceNow duration like "
                "1970-01-01 02:37:03"
            ) from None

    def number(self, field: str) -> float | None:
        text = self.text(field)
        if text is None:
            return None
        try:
            return float(text.replace(",", ""))
        except ValueError:
            raise InputError(f"{self.name}: {field}: {text!r} is not a number") from None

    def flag(self, field: str) -> bool:
        return (self.text(field) or "").lower() == "true"


def _goal(row: _Row, elapsed: float | None, left: float | None, breached: bool) -> float | None:
    defined = row.seconds("sla.duration")
    if defined:
        return defined
    if elapsed is not None and left is not None and not breached:
        return elapsed + left
    percentage = row.number("business_percentage")
    if elapsed is not None and percentage:
        return elapsed * 100 / percentage
    return None


def cycle_from_row(row: Mapping[str, Any]) -> NativeSlaCycle:
    """One task_sla row as one SLA cycle.

    Stages map as: ``cancelled`` → cancelled, ``paused`` → paused, ``completed`` and
    ``breached`` (the 2010 engine) → stopped at ``end_time``. A ``breached`` row without an
    ``end_time`` is still running past its goal, and stays running (it reads as breaching).

    :raises InputError: a date, duration or number does not parse (names the row and field).
    """
    r = _Row(row)
    stage = (r.text("stage") or "").lower()
    breached = r.flag("has_breached") or stage == "breached"
    elapsed = r.seconds("business_duration")
    left = r.seconds("business_time_left")
    goal = _goal(r, elapsed, left, breached)
    stop = None
    if stage in _STOPPED:
        stop = r.instant("end_time")
        if stop is None and stage != "breached":
            stop = r.instant("sys_updated_on")  # stopped, but the engine left no stop time
    remaining = goal - elapsed if goal is not None and elapsed is not None else left
    return NativeSlaCycle(
        start=r.instant("start_time"),
        stop=stop,
        breach_time=r.instant("planned_end_time"),
        goal_seconds=goal,
        elapsed_seconds=elapsed,
        remaining_seconds=remaining,
        breached=breached,
        paused=stage == "paused",
        cancelled=stage == "cancelled",
        elapsed_wall_seconds=r.seconds("duration"),
    )


def _order(row: Mapping[str, Any]) -> tuple[str, str]:
    return (_text(row, "start_time") or "9999", _text(row, "sys_created_on") or "")


def native_slas(rows: Iterable[Mapping[str, Any]]) -> tuple[NativeSla, ...]:
    """The SLAs of one task: rows grouped by definition, cycles oldest first.

    The SLA's name is the definition's name (``sla.name``), or its sys_id when the name was
    not readable; ``field`` is the definition's sys_id. SLAs come in the order they started
    (then by name).

    :raises InputError: a row holds a value that does not parse.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        definition = _text(row, "sla") or _text(row, "sla.name") or "(unknown SLA)"
        groups.setdefault(definition, []).append(row)
    slas = []
    for definition, members in groups.items():
        members.sort(key=_order)
        name = next((n for m in members if (n := _text(m, "sla.name"))), definition)
        cycles = tuple(cycle_from_row(m) for m in members)
        slas.append(((*_order(members[0]), name), NativeSla(name, definition, cycles)))
    slas.sort(key=lambda pair: pair[0])
    return tuple(sla for _, sla in slas)


def slas_by_task(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """task_sla rows grouped by the task's sys_id (the ``task`` reference)."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        task = _text(row, "task")
        if task:
            out.setdefault(task, []).append(row)
    return out
