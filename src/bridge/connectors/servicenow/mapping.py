"""ServiceNow Table API records → :class:`~bridge.model.WorkItem`, with no I/O.

The same record can arrive in three shapes, depending on ``sysparm_display_value``:

- ``false`` (the default): every value is a string, ``""`` means empty, a reference is
  ``{"link", "value"}``, dates are UTC;
- ``true``: references become ``{"display_value", "link"}`` (or a plain display string), choices
  their labels, dates the user's time zone and format;
- ``all``: every field is ``{"display_value", "value"}`` (references add ``link``); the
  Change Management API even types numbers and booleans (``-5.0``, ``true``).

So codes and dates are read from the stored value (the UTC instant, the state code) and people
and records from the display value when there is one, which is what an admin recognises. The
state and table tables below are the base-system choices; an instance can override them, and
an unknown code stays visible as itself rather than being guessed.

Values are checked, not trusted: a number of 400 digits is text ServiceNow will happily hold,
and would make an infinite estimate (and every KPI built on it infinite: invalid JSON); a date
must lie in :data:`~bridge.model.DATE_RANGE_TEXT`. Either is an InputError naming the record
and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePath
from types import MappingProxyType
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from bridge.errors import InputError
from bridge.model import DATE_RANGE_TEXT, StatusCategory, WorkItem, in_date_range
from bridge.timefmt import parse_servicenow_instant, parse_servicenow_seconds

__all__ = [
    "PRIORITY_LABELS",
    "STATES",
    "SYSTEM",
    "TABLE_LABELS",
    "item_from_record",
    "table_from_file_name",
]

SYSTEM = "servicenow"

# Table name → the label ServiceNow shows for it (the work item's type).
TABLE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "incident": "Incident",
        "sc_req_item": "Requested Item",
        "sc_request": "Request",
        "sc_task": "Catalog Task",
        "problem": "Problem",
        "change_request": "Change Request",
        "change_task": "Change Task",
        "pm_project": "Project",
        "pm_project_task": "Project Task",
        "task": "Task",
    }
)
_TABLES_BY_LABEL: Mapping[str, str] = MappingProxyType({v: k for k, v in TABLE_LABELS.items()})

State = tuple[str, StatusCategory]

# The task (and planned_task) state model, shared by several tables.
_TASK_STATES: Mapping[str, State] = MappingProxyType(
    {
        "-5": ("Pending", "todo"),
        "1": ("Open", "todo"),
        "2": ("Work in Progress", "in_progress"),
        "3": ("Closed Complete", "done"),
        "4": ("Closed Incomplete", "done"),
        "7": ("Closed Skipped", "done"),
    }
)

# Table → state code → (label, status category). NOTES.md §2 gives the sources.
STATES: Mapping[str, Mapping[str, State]] = MappingProxyType(
    {
        "incident": MappingProxyType(
            {
                "1": ("New", "todo"),
                "2": ("In Progress", "in_progress"),
                "3": ("On Hold", "in_progress"),
                "6": ("Resolved", "done"),
                "7": ("Closed", "done"),
                "8": ("Canceled", "done"),
            }
        ),
        "problem": MappingProxyType(
            {
                "101": ("New", "todo"),
                "102": ("Assess", "in_progress"),
                "103": ("Root Cause Analysis", "in_progress"),
                "104": ("Fix in Progress", "in_progress"),
                "106": ("Resolved", "done"),
                "107": ("Closed", "done"),
            }
        ),
        "change_request": MappingProxyType(
            {
                "-5": ("New", "todo"),
                "-4": ("Assess", "in_progress"),
                "-3": ("Authorize", "in_progress"),
                "-2": ("Scheduled", "in_progress"),
                "-1": ("Implement", "in_progress"),
                "0": ("Review", "in_progress"),
                "3": ("Closed", "done"),
                "4": ("Canceled", "done"),
            }
        ),
        "pm_project": _TASK_STATES,
        "pm_project_task": _TASK_STATES,
        "sc_req_item": _TASK_STATES,
        "sc_task": _TASK_STATES,
        "task": _TASK_STATES,
    }
)

PRIORITY_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "1": "1 - Critical",
        "2": "2 - High",
        "3": "3 - Moderate",
        "4": "4 - Low",
        "5": "5 - Planning",
    }
)

# planned_task children: their effort and end date live in planned_task's own fields.
_PLANNED_TASK_TABLES = frozenset({"pm_project", "pm_project_task"})

# Whoever asked for the work, most specific first (incident, catalog, change, any task).
_REPORTER_FIELDS = ("caller_id", "requested_for", "requested_by", "opened_by")

_TABLE_NAME_RE = re.compile(r"[a-z0-9_]+")
_INSTANT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_EPOCH = datetime(1970, 1, 1)
_DECIMAL_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE_HINT = "; export with sysparm_display_value=false (or all) so dates are UTC values"

# Instant text → its UTC instant, for the good (in-range) ones only. A record repeats its
# own instants (``opened_at`` is ``sys_created_on``, ``closed_at`` often ``resolved_at``) and
# records share them, and a dict lookup costs a tenth of parsing one. Datetimes are
# immutable, so items may share one; the cache is emptied when full, to stay bounded.
_CACHE_SIZE = 8192
_instants: dict[str, datetime] = {}
# The same for durations (``time_worked``...), in hours: the few values people log recur.
_durations: dict[str, float] = {}


# JSON decodes objects to dict: a type check finds them at a tenth of the cost of
# ``isinstance(value, Mapping)`` (an ABC check), which ran over a million times per 10,000
# records. Other Mappings (a caller's own) still count; the plain JSON types never do.
_NOT_MAPPINGS = frozenset({type(None), str, int, float, bool, list})


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    kind = type(value)
    return kind is dict or (kind not in _NOT_MAPPINGS and isinstance(value, Mapping))


def table_from_file_name(name: str) -> str | None:
    """The known table a file name starts with (``incident-page-2.json`` → ``incident``).

    The longest name wins, so ``pm_project_task.json`` is not read as ``pm_project``.
    """
    base = PurePath(name).name.lower()
    matches = [table for table in TABLE_LABELS if base.startswith(table)]
    return max(matches, key=len) if matches else None


def item_from_record(
    record: Mapping[str, Any], *, table: str | None = None, instance_url: str | None = None
) -> WorkItem:
    """One Table API record as a work item.

    :param record: a record from ``{"result": ...}``, in any ``sysparm_display_value`` mode.
    :param table: the table the record was read from, used when it has no ``sys_class_name``.
    :param instance_url: ``https://<instance>.service-now.com``, for the item's URL; when it is
        not given, the host of any reference link in the record is used.
    :raises InputError: the record is not an object, has no ``number``, or holds a value that
        does not parse (the message names the record and the field).
    """
    if not _is_mapping(record):
        raise InputError(f"a ServiceNow record must be a JSON object, found {_json_type(record)}")
    sys_id = _loose_text(stored_value(record.get("sys_id")))
    number = record.get("number")
    if type(number) is not str or not number or number.isspace():
        # Anything but the usual non-blank string: read as any field, to say what is wrong.
        number = _Fields(
            record, f"the record with sys_id {sys_id}" if sys_id else "a record"
        ).value("number")
    if number is None:
        who = f"the record with sys_id {sys_id}" if sys_id else "a record with no sys_id"
        raise InputError(
            f"{who} has no number (INC0010001, PRJ0001234...); "
            "include `number` in sysparm_fields when exporting"
        )
    key = number.strip()
    fields = _Fields(record, key)
    table_name = _table_of(record) or table
    states = STATES.get(table_name or "", {})
    status, category = _status(fields.value("state"), states)
    planned = table_name in _PLANNED_TASK_TABLES

    if planned:
        resolved = fields.instant("work_end")
    else:
        resolved = fields.instant("resolved_at") or (
            fields.instant("closed_at") if category == "done" else None
        )
    # A task names its project by sys_id unless the export dot-walks ``top_task.number``
    # (the connector asks for it, and ``parent.number``), which makes tasks group under the
    # project's own number.
    if table_name == "pm_project":
        project: str | None = key
    elif table_name == "pm_project_task":
        project = (
            fields.value("top_task.number")
            or fields.display("top_task")
            or fields.value("parent.number")
            or fields.display("parent")
        )
    else:
        project = None
    service = fields.value("business_service.name") or fields.display("business_service")
    priority = fields.value("priority")
    percent = fields.decimal("percent_complete")
    spent = fields.hours("work_effort")  # planned_task's actual effort
    if spent is None:
        spent = fields.hours("time_worked")  # incidents and other service tasks

    raw = dict(record)
    if table_name and _loose_text(stored_value(record.get("sys_class_name"))) is None:
        raw["sys_class_name"] = table_name

    return WorkItem(
        key=key,
        system=SYSTEM,
        type=TABLE_LABELS.get(table_name, table_name) if table_name else None,
        status=status,
        status_category=category,
        summary=fields.value("short_description"),
        url=_url(record, table_name, sys_id, instance_url),
        priority=PRIORITY_LABELS.get(priority.strip(), priority) if priority else None,
        project=project,
        service=service,
        labels=_labels(fields.display("sys_tags")),
        assignee=fields.person("assigned_to"),
        team=fields.person("assignment_group"),
        reporter=next(filter(None, map(fields.person, _REPORTER_FIELDS)), None),
        created=fields.instant("opened_at") or fields.instant("sys_created_on"),
        updated=fields.instant("sys_updated_on"),
        resolved=resolved,
        due=fields.instant("due_date"),
        planned_start=fields.instant("start_date"),
        planned_end=fields.instant("end_date"),
        estimate_hours=fields.hours("effort"),
        spent_hours=spent,
        remaining_hours=fields.hours("remaining_effort"),
        budget=fields.amount("budget_cost"),
        actual_cost=fields.amount("work_cost"),
        percent_complete=percent / 100 if percent is not None else None,
        parent=fields.value("parent.number") or fields.display("parent"),
        raw=raw,
    )


def record_status(
    record: Any, table: str | None, states: Mapping[str, Mapping[str, State]]
) -> str | bool | None:
    """The status :func:`item_from_record` gives ``record`` (read from its ``state`` and
    ``sys_class_name`` alone), or False when only mapping the whole record can tell."""
    if not _is_mapping(record):
        return False
    try:
        code = _Fields(record, "").value("state")
    except InputError:
        return False
    table_name = _table_of(record) or table
    return _status(code, states.get(table_name or "", {}))[0]


def _table_of(record: Mapping[str, Any]) -> str | None:
    """The record's table from ``sys_class_name``: a name, or a label (display values on)."""
    name = _loose_text(stored_value(record.get("sys_class_name")))
    if name is None:
        return None
    name = name.strip()
    return name if name in TABLE_LABELS else _TABLES_BY_LABEL.get(name, name)


def _status(
    code: str | None, states: Mapping[str, State]
) -> tuple[str | None, StatusCategory | None]:
    """The state's label and category; a label (display values on) is recognised too."""
    if code is None:
        return None, None
    code = code.strip()
    if code in states:
        return states[code]
    for label, category in states.values():
        if label.casefold() == code.casefold():
            return label, category
    return code, None


def _labels(tags: str | None) -> tuple[str, ...]:
    if not tags:
        return ()  # most records have no tags: no need to split anything
    return tuple(tag.strip() for tag in tags.split(",") if tag.strip())


def _instance_from_links(record: Mapping[str, Any]) -> str | None:
    """``scheme://host`` of the first reference link that is a real URL."""
    for field in record.values():
        if type(field) is str:
            continue  # most fields: a reference is an object
        link = field.get("link") if _is_mapping(field) else None
        if not isinstance(link, str):
            continue
        try:
            parts = urlsplit(link)
        except ValueError:
            continue
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


def _url(
    record: Mapping[str, Any], table: str | None, sys_id: str | None, instance_url: str | None
) -> str | None:
    instance = instance_url.rstrip("/") if instance_url else _instance_from_links(record)
    # A table label that is not a known name ("Facilities Request") cannot be put in a URL.
    if not (instance and table and sys_id and _TABLE_NAME_RE.fullmatch(table)):
        return None
    return f"{instance}/nav_to.do?uri={table}.do?sys_id={sys_id.strip()}"


# --------------------------------------------------------------------------------------------
# Reading one field in any display-value mode
# --------------------------------------------------------------------------------------------


def stored_value(field: Any) -> Any:
    """The stored value of a field in any display-value mode: ``value`` of a ``{"link",
    "value"}`` or ``{"display_value", "value"}`` pair, the display value when that is all
    there is, else the field itself. Codes and dates are read from it because, unlike the
    display value, it does not follow the API user's language, time zone and formats."""
    if _is_mapping(field):
        return field["value"] if "value" in field else field.get("display_value")
    return field


def _display(field: Any) -> Any:
    """What a person sees: the display value when there is one, else the stored value."""
    if _is_mapping(field):
        shown = field.get("display_value")
        return shown if shown not in (None, "") else field.get("value")
    return field


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return f"a JSON {names.get(type(value), 'number')}"


def _scalar_text(value: Any) -> str | None:
    """A scalar as ServiceNow would have sent it in the default mode; raises TypeError."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError("a finite number")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value.strip() else None
    raise TypeError(f"a string, found {_json_type(value)}")


def _cut(text: str) -> str:
    """Text from a record for a message: quoted, and cut short (a field may hold a
    400-digit number or a megabyte of text)."""
    if len(text) <= 60:
        return repr(text)
    return f"{text[:56]!r}... ({len(text)} characters)"


def _loose_text(value: Any) -> str | None:
    """Like :func:`_scalar_text`, but None for anything odd: only for naming a record."""
    if type(value) is str:  # the usual case, as _scalar_text reads it
        return value if value.strip() else None
    try:
        return _scalar_text(value)
    except TypeError:
        return None


class _Fields:
    """Typed reads of one record's fields; errors name the record (``name``) and the field.

    A plain class, not a frozen dataclass: one or two are made per record, and a frozen
    dataclass sets each attribute through ``object.__setattr__``.
    """

    __slots__ = ("name", "record")

    def __init__(self, record: Mapping[str, Any], name: str) -> None:
        self.record = record
        self.name = name

    def _error(self, field: str, problem: str) -> InputError:
        return InputError(f"{self.name}: {field}: {problem}")

    def _text(self, field: str, value: Any) -> str | None:
        try:
            return _scalar_text(value)
        except TypeError as exc:
            raise self._error(field, f"expected {exc}") from None

    def value(self, field: str) -> str | None:
        # stored_value and _scalar_text inlined for the usual cases (a string, a field the
        # record does not have, a dict holding a string): a record reads some thirty fields
        # this way, and most are text, which needs no Mapping check.
        value: Any = self.record.get(field)
        kind = type(value)
        if kind is dict:
            value = value["value"] if "value" in value else value.get("display_value")
        elif value is None:
            return None
        elif kind is not str and _is_mapping(value):
            value = stored_value(value)
        if type(value) is str:
            return value if value and not value.isspace() else None
        return self._text(field, value)

    def display(self, field: str) -> str | None:
        value = self.record.get(field)
        if value is None:
            return None  # what _display and _scalar_text make of it
        if type(value) is not str:
            value = _display(value)
        if type(value) is str:
            return value if value and not value.isspace() else None
        return self._text(field, value)

    def person(self, field: str) -> str | None:
        """A user's name: the dot-walk ``<field>.name`` when the record has it (the live
        connector asks for it, as display values are off), else the display value."""
        return self.value(f"{field}.name") or self.display(field)

    def instant(self, field: str) -> datetime | None:
        text = self.value(field)
        if text is None:
            return None
        instant = _instants.get(text)
        if instant is not None:
            return instant
        instant = self._parse_instant(field, text)
        if len(_instants) >= _CACHE_SIZE:
            _instants.clear()  # bounded, and cheaper than tracking which text was used last
        _instants[text] = instant
        return instant

    def _parse_instant(self, field: str, text: str) -> datetime:
        """``text`` as an instant in :data:`~bridge.model.DATE_RANGE_TEXT`, else the error."""
        if _INSTANT_RE.fullmatch(text):
            # What parse_servicenow_instant reads, by the C parser: strptime is a Python
            # function of some 300 lines, the largest cost of mapping a record.
            try:
                instant = datetime.fromisoformat(text).replace(tzinfo=UTC)
            except ValueError:
                pass
            else:
                if in_date_range(instant):
                    return instant
        try:
            instant = parse_servicenow_instant(text.strip())
        except ValueError as exc:
            raise self._error(field, f"{exc}{_DATE_HINT}") from None
        if not in_date_range(instant):
            raise self._error(field, f"{_cut(text.strip())} is not in {DATE_RANGE_TEXT}")
        return instant

    def hours(self, field: str) -> float | None:
        """A ``glide_duration`` (epoch offset) or a whole number of seconds, in hours."""
        text = self.value(field)
        if text is None:
            return None
        hours = _durations.get(text)
        if hours is None:
            hours = self._parse_hours(field, text)
            if len(_durations) >= _CACHE_SIZE:
                _durations.clear()
            _durations[text] = hours
        return hours

    def _parse_hours(self, field: str, text: str) -> float:
        """``text`` as a finite number of hours, else the error."""
        text = text.strip()
        if _INSTANT_RE.fullmatch(text):  # a glide_duration, by the C parser (see instant)
            try:
                return (datetime.fromisoformat(text) - _EPOCH).total_seconds() / 3600
            except ValueError:
                pass
        try:
            seconds = parse_servicenow_seconds(text)
        except ValueError:
            raise self._error(
                field,
                f"{_cut(text)} is not a ServiceNow duration like 1970-01-03 14:33:00 "
                "(2 d 14 h 33 min) or a number of seconds",
            ) from None
        if not math.isfinite(seconds):
            raise self._error(field, f"{_cut(text)} is not a finite number of seconds")
        return seconds / 3600

    def decimal(self, field: str) -> float | None:
        text = self.value(field)
        if text is None:
            return None
        if not _DECIMAL_RE.fullmatch(text.strip()):
            raise self._error(field, f"{_cut(text)} is not a number like 45.5")
        number = float(text)
        if not math.isfinite(number):
            raise self._error(field, f"{_cut(text.strip())} is not a finite number")
        return number

    def amount(self, field: str) -> float | None:
        """A currency value: ``1000``, ``1,000.50`` or ``USD;1000.50`` (code;amount)."""
        text = self.value(field)
        if text is None:
            return None
        number = text.rpartition(";")[2].replace(",", "").strip()
        if not _DECIMAL_RE.fullmatch(number):
            raise self._error(
                field, f"{_cut(text)} is not an amount like 1000, 1,000.50 or USD;1000.50"
            )
        amount = float(number)
        if not math.isfinite(amount):
            raise self._error(field, f"{_cut(text)} is not a finite amount")
        return amount
