"""Jira REST issue JSON → :class:`~bridge.model.WorkItem`, and Jira search responses → items.

Pure: no I/O, no clock. The same mapping serves the live client (``/rest/api/3/search/jql``,
``/rest/api/2/search`` on Data Center) and exports saved from either, so a rule tried against
an export behaves the same against the live site.

Custom field ids (``customfield_10016``) differ per site, so the fields bridge needs beyond
Jira's system fields are named in :class:`JiraFieldSettings` by display name or id and
resolved once per response through its ``names`` map (``expand=names``) by
:func:`resolve_field_ids`; mapping an issue then only looks ids up.

Values are checked, not trusted: a number must be finite (``1e999`` parses as infinity, and an
infinite estimate would make every KPI built on it infinite: invalid JSON), a date must lie in
:data:`~bridge.model.DATE_RANGE_TEXT`. Anything else makes the record an InputError naming the
record and the field; in an export, that record is skipped and listed, the rest is read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from operator import attrgetter
from typing import Any, NoReturn, TypeGuard, TypeVar
from urllib.parse import urlsplit

from bridge.connectors import skip_record
from bridge.errors import InputError
from bridge.model import (
    DATE_RANGE_TEXT,
    FIRST_DATE,
    LAST_DATE,
    FieldChange,
    NativeSla,
    NativeSlaCycle,
    StatusCategory,
    WorkItem,
    in_date_range,
)
from bridge.timefmt import parse_date_or_instant, parse_jira_instant

__all__ = [
    "SYSTEM",
    "JiraFieldSettings",
    "ResolvedFields",
    "is_search_response",
    "item_from_issue",
    "items_from_search",
    "resolve_field_ids",
    "site_from_self",
]

SYSTEM = "jira"

_STATUS_CATEGORIES: Mapping[str, StatusCategory] = {
    "new": "todo",
    "indeterminate": "in_progress",
    "done": "done",
}

# Changelog field keys (``fieldId``, or ``field`` in older payloads without one) that have a
# normalized name; every other change keeps Jira's own id so rules can still name it.
_HISTORY_FIELDS: Mapping[str, str] = {
    "status": "status",
    "assignee": "assignee",
    "priority": "priority",
    "labels": "labels",
    "resolution": "resolution",
    "issuetype": "type",
    "components": "components",
    "Component": "components",
    "duedate": "due",
}

_CUSTOM_ID = re.compile(r"customfield_\d+")
# Jira's system field ids are lower-case words (duedate, timeoriginalestimate); display names
# almost never are, so such a candidate is taken as an id when the names map does not know it.
_SYSTEM_ID = re.compile(r"[a-z][a-z0-9]*")

_INSTANT_EXAMPLE = "a Jira date-time like 2023-03-01T11:34:49.730+0200"
_INSTANT_IN_RANGE = f"a date-time in {DATE_RANGE_TEXT}"
_DATE_IN_RANGE = f"a date in {DATE_RANGE_TEXT}"

_T = TypeVar("_T")

# Instant text → its UTC instant, for the good (in-range) ones only. The same text recurs
# within an issue (its resolution date is its last transition's, ``updated`` its last
# change's) and across issues, and a dict lookup costs a tenth of parsing it. Datetimes are
# immutable, so items may share one; the cache is emptied when full, to stay bounded.
_INSTANTS_KEPT = 8192
_instants: dict[str, datetime] = {}

_CHANGE_AT = attrgetter("at")


# JSON decodes objects to dict: a type check finds them at a tenth of the cost of
# ``isinstance(value, Mapping)`` (an ABC check), which ran over a million times per 10,000
# records. Other Mappings (a caller's own) still count; the plain JSON types never do.
_NOT_MAPPINGS = frozenset({type(None), str, int, float, bool, list})


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    kind = type(value)
    return kind is dict or (kind not in _NOT_MAPPINGS and isinstance(value, Mapping))


# --------------------------------------------------------------------------------------------
# Custom field settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JiraFieldSettings:
    """Where each site-specific value lives: candidate field ids or display names, in order.

    The first candidate whose value is set on an issue wins, so a site with both a
    team-managed "Story point estimate" and a company-managed "Story Points" maps both.
    """

    story_points: tuple[str, ...] = ("Story point estimate", "Story Points")
    planned_start: tuple[str, ...] = ("Start date", "Target start")
    planned_end: tuple[str, ...] = ("Target end",)
    budget: tuple[str, ...] = ("Budget",)
    actual_cost: tuple[str, ...] = ("Actual cost",)
    percent_complete: tuple[str, ...] = ("Percent complete", "% Complete")
    satisfaction: tuple[str, ...] = ("Satisfaction",)


@dataclass(frozen=True, slots=True)
class ResolvedFields:
    """:class:`JiraFieldSettings` with every candidate turned into field ids for one site."""

    story_points: tuple[str, ...] = ()
    planned_start: tuple[str, ...] = ()
    planned_end: tuple[str, ...] = ()
    budget: tuple[str, ...] = ()
    actual_cost: tuple[str, ...] = ()
    percent_complete: tuple[str, ...] = ()
    satisfaction: tuple[str, ...] = ()


def resolve_field_ids(
    settings: JiraFieldSettings | None = None, names: Mapping[str, Any] | None = None
) -> ResolvedFields:
    """Turn display names into field ids through ``names`` (id → display name).

    A candidate that is already an id (``customfield_10016``, a key of ``names``, or a
    lower-case system id like ``duedate``) is kept as is. Names match case-insensitively and
    may match several fields (Jira allows duplicate names); those ids are all tried, in the
    order of ``names``. A name with no ``names`` map to look it up in resolves to nothing.
    """
    settings = settings or JiraFieldSettings()
    by_name: dict[str, list[str]] = {}
    for field_id, name in (names or {}).items():
        if isinstance(field_id, str) and isinstance(name, str):
            by_name.setdefault(name.casefold(), []).append(field_id)
    ids_of = {
        f.name: _resolve(getattr(settings, f.name), names or {}, by_name) for f in fields(settings)
    }
    return ResolvedFields(**ids_of)


def _resolve(
    candidates: Sequence[str], names: Mapping[str, Any], by_name: Mapping[str, list[str]]
) -> tuple[str, ...]:
    ids: list[str] = []
    for candidate in candidates:
        if _CUSTOM_ID.fullmatch(candidate) or candidate in names:
            found = [candidate]
        else:
            found = by_name.get(candidate.casefold(), [])
            if not found and _SYSTEM_ID.fullmatch(candidate):
                found = [candidate]
        ids.extend(i for i in found if i not in ids)
    return tuple(ids)


# --------------------------------------------------------------------------------------------
# Search responses (the "jira-search" export format)
# --------------------------------------------------------------------------------------------


def is_search_response(doc: Any) -> bool:
    """Cloud ``/search/jql``, legacy/DC ``/search``, or a bare ``{"issues": [...]}``.

    Only the envelope is checked, so a malformed record gets a located error from the reader
    rather than a vague "unknown format".
    """
    return isinstance(doc, dict) and isinstance(doc.get("issues"), list)


def items_from_search(
    doc: Mapping[str, Any],
    source: str | None = None,
    *,
    settings: JiraFieldSettings | None = None,
    site_url: str | None = None,
) -> Iterator[WorkItem]:
    """The items of one search response, custom fields resolved once through its ``names``.

    Errors name ``source`` (the file) and the record's index, since a record without a key can
    be found no other way. A record that cannot be mapped stops the file, unless the reader
    collects such records (:func:`bridge.connectors.skip_record`): then it is listed there
    and the next one is read.
    """
    names = doc.get("names")
    if names is not None and not _is_mapping(names):
        raise InputError(
            f'"names": expected an object mapping field ids to names, found {_kind(names)}',
            path=source,
        )
    issues = doc.get("issues")
    if not isinstance(issues, list):
        raise InputError(
            f'"issues": expected an array of issues, found {_kind(issues)}', path=source
        )
    resolved = resolve_field_ids(settings, names)
    for index, issue in enumerate(issues):
        where = f"issues[{index}]"
        try:
            item = item_from_issue(issue, site_url=site_url, resolved=resolved, where=where)
        except InputError as exc:
            key = issue.get("key") if _is_mapping(issue) else None
            key = key if isinstance(key, str) and key else None
            place = f"{where} ({key})" if key else where
            message = str(exc)
            problem = message.removeprefix(f"{place}: ")
            if skip_record(f"{source}: {place}" if source else place, problem, key):
                continue
            raise InputError(message, path=source) from None
        yield item


# --------------------------------------------------------------------------------------------
# One issue
# --------------------------------------------------------------------------------------------


def item_from_issue(
    issue: Mapping[str, Any],
    *,
    names: Mapping[str, str] | None = None,
    site_url: str | None = None,
    settings: JiraFieldSettings | None = None,
    resolved: ResolvedFields | None = None,
    where: str | None = None,
) -> WorkItem:
    """Map one issue (REST v2 or v3 ``IssueBean``) to a work item; ``raw`` is ``issue`` itself.

    :param names: field id → display name (``expand=names``); defaults to the issue's own
        ``names`` when it has one. Ignored when ``resolved`` is given.
    :param site_url: the site's base URL for browse links; otherwise derived from ``self``.
    :param settings: where custom values live; the defaults name the usual display names.
    :param resolved: the settings already resolved by :func:`resolve_field_ids`; pass it when
        mapping many issues of one site so names are not resolved per issue.
    :param where: how error messages locate the record (``issues[3]``).
    :raises InputError: the record is not an object, has no key, or holds a value of the
        wrong shape; the message names the record, the field and what was expected.
    """
    if not _is_mapping(issue):
        raise InputError(f"{where or 'issue'}: expected an issue object, found {_kind(issue)}")
    key = issue.get("key")
    if not isinstance(key, str) or not key:
        raise InputError(f"{where or 'issue'}: {_missing_key_message(issue)}")
    ctx = _Context(f"{where} ({key})" if where else f"issue {key}")

    raw_fields = issue.get("fields")
    if raw_fields is None:
        raw_fields = {}
    if not _is_mapping(raw_fields):
        ctx.fail("fields", "an object of issue fields", raw_fields)
    f: Mapping[str, Any] = raw_fields

    if resolved is None:
        if names is None:
            own = issue.get("names")
            names = own if _is_mapping(own) else None
        resolved = resolve_field_ids(settings, names)

    status_value = f.get("status")
    resolution = f.get("resolution")
    # Service desks commonly model the affected service as a component.
    components = ctx.components(f)
    resolved_at = ctx.instant(f, "resolutiondate")
    return WorkItem(
        key=key,
        system=SYSTEM,
        type=ctx.name(f, "issuetype"),
        status=ctx.name(f, "status"),
        status_category=_status_category(status_value, resolution, resolved_at),
        summary=ctx.text(f, "summary"),
        url=_browse_url(key, site_url, issue.get("self")),
        priority=ctx.name(f, "priority"),
        project=ctx.name(f, "project", attr="key"),
        service=next(iter(components), None),
        labels=ctx.labels(f),
        components=components,
        assignee=ctx.user(f, "assignee"),
        reporter=ctx.user(f, "reporter"),
        created=ctx.instant(f, "created"),
        updated=ctx.instant(f, "updated"),
        resolved=resolved_at,
        due=ctx.due(f),
        planned_start=ctx.first(f, resolved.planned_start, ctx.date_value),
        planned_end=ctx.first(f, resolved.planned_end, ctx.date_value),
        estimate_hours=ctx.hours(f, "timeoriginalestimate", "originalEstimateSeconds"),
        remaining_hours=ctx.hours(f, "timeestimate", "remainingEstimateSeconds"),
        spent_hours=ctx.hours(f, "timespent", "timeSpentSeconds"),
        story_points=ctx.first(f, resolved.story_points, ctx.number),
        budget=ctx.first(f, resolved.budget, ctx.number),
        actual_cost=ctx.first(f, resolved.actual_cost, ctx.number),
        percent_complete=ctx.first(f, resolved.percent_complete, ctx.percent),
        parent=ctx.name(f, "parent", attr="key"),
        satisfaction=ctx.first(f, resolved.satisfaction, ctx.satisfaction),
        history=ctx.history(issue.get("changelog")),
        history_complete=_history_complete(issue.get("changelog")),
        native_slas=ctx.native_slas(f),
        raw=issue,
    )


def _missing_key_message(issue: Mapping[str, Any]) -> str:
    issue_id = issue.get("id")
    if issue_id is not None and "fields" not in issue:
        return (
            f'expected "key" (like PROJ-123), found only "id": {issue_id!r}; Jira Cloud '
            "/rest/api/3/search/jql returns ids only unless asked for fields, so export "
            "again with fields=*navigable (or *all)"
        )
    return 'expected "key" (like PROJ-123), found none'


def _status_category(
    status: Any, resolution: Any, resolved_at: datetime | None
) -> StatusCategory | None:
    if _is_mapping(status):
        category = status.get("statusCategory")
        if _is_mapping(category):
            mapped = _STATUS_CATEGORIES.get(str(category.get("key")))
            if mapped is not None:
                return mapped
    if resolution or resolved_at is not None:
        return "done"
    return None


def _browse_url(key: str, site_url: str | None, self_url: Any) -> str | None:
    site = site_url.rstrip("/") if site_url else None
    if site is None and isinstance(self_url, str):
        site = site_from_self(self_url)
    return f"{site}/browse/{key}" if site else None


def site_from_self(self_url: str) -> str | None:
    """The site base URL from a REST ``self`` link, keeping a Data Center context path.

    ``https://jira.example.com/jira/rest/api/2/issue/1`` → ``https://jira.example.com/jira``.
    An OAuth gateway link (``https://api.atlassian.com/ex/jira/<cloud id>/rest/...``) gives
    None: the gateway serves no browse pages, and the site's own URL is not in the link.
    """
    cut = self_url.find("/rest/")
    return _site_from_prefix(self_url[:cut]) if cut > 0 else None


@lru_cache(maxsize=64)
def _site_from_prefix(prefix: str) -> str | None:
    parts = urlsplit(prefix)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        return None
    if parts.hostname == "api.atlassian.com":
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    for cls, label in names.items():
        if isinstance(value, cls):
            return label
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_YEAR = re.compile(r"\s*(\d{4})-\d\d-\d\d")


def _year_out_of_range(text: str) -> bool:
    """Whether text the parser refused starts with a date whose year bridge does not take
    (``0001-01-01T00:00+01:00`` is refused for its year, not its form): the message then
    says the range rather than show the form again."""
    match = _YEAR.match(text)
    return match is not None and not FIRST_DATE.year <= int(match.group(1)) <= LAST_DATE.year


def _finite(value: float) -> float | None:
    """``value`` as a float, None when it is infinite, NaN, or an int too large for a float
    (Python parses ``1e999`` as infinity, and JSON allows ``NaN`` and 4000-digit numbers)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class _Context:
    """Reads typed values out of one issue's fields, failing with the issue's location."""

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, expected: str, found: Any) -> NoReturn:
        raise InputError(f"{self.where}: {field}: expected {expected}, found {_shown(found)}")

    # -- plain values ---------------------------------------------------------------------

    def text(self, f: Mapping[str, Any], field: str) -> str | None:
        value = f.get(field)
        if value is None or isinstance(value, str):
            return value or None
        return self.fail(f"fields.{field}", "a string", value)

    def name(self, f: Mapping[str, Any], field: str, *, attr: str = "name") -> str | None:
        value = f.get(field)
        if value is None:
            return None
        if type(value) is dict or _is_mapping(value):
            inner = value.get(attr)
            if inner is None or isinstance(inner, str):
                return inner or None
        elif isinstance(value, str):
            return value or None
        return self.fail(f"fields.{field}", f'an object with a "{attr}" string', value)

    def user(self, f: Mapping[str, Any], field: str) -> str | None:
        value = f.get(field)
        if value is None:
            return None
        if isinstance(value, str):
            return value or None
        if type(value) is dict or _is_mapping(value):
            return _author(value)
        return self.fail(f"fields.{field}", "a user object with a displayName", value)

    def labels(self, f: Mapping[str, Any]) -> tuple[str, ...]:
        value = f.get("labels")
        if value is None:
            return ()
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        return self.fail("fields.labels", "an array of strings", value)

    def components(self, f: Mapping[str, Any]) -> tuple[str, ...]:
        value = f.get("components")
        if value is None:
            return ()
        if isinstance(value, list):
            out: list[str] = []
            for entry in value:
                name = entry.get("name") if type(entry) is dict or _is_mapping(entry) else entry
                if not isinstance(name, str):
                    break
                out.append(name)
            else:
                return tuple(out)
        return self.fail("fields.components", 'an array of objects with a "name"', value)

    # -- dates ----------------------------------------------------------------------------

    def instant(self, f: Mapping[str, Any], field: str) -> datetime | None:
        value = f.get(field)
        if value is None:
            return None
        # The place in a message is built only when the value is wrong.
        instant = _good_instant(value)
        if instant is not None:
            return instant
        return self._instant(value, f"fields.{field}")

    def _instant(self, value: Any, field: str) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                instant = parse_jira_instant(value)
            except (ValueError, OverflowError):  # year 1 east of UTC, 9999 west of it
                if _year_out_of_range(value):
                    return self.fail(field, _INSTANT_IN_RANGE, value)
            else:
                if in_date_range(instant):
                    return instant
                return self.fail(field, _INSTANT_IN_RANGE, value)
        return self.fail(field, _INSTANT_EXAMPLE, value)

    def due(self, f: Mapping[str, Any]) -> date | None:
        value = f.get("duedate")
        if value is None:
            return None
        if isinstance(value, str):
            try:
                day = date.fromisoformat(value)
            except ValueError:
                pass
            else:
                if in_date_range(day):
                    return day
                return self.fail("fields.duedate", _DATE_IN_RANGE, value)
        return self.fail("fields.duedate", "a date like 2024-12-30", value)

    # -- time tracking --------------------------------------------------------------------

    def hours(self, f: Mapping[str, Any], field: str, tracking_attr: str) -> float | None:
        seconds = self._seconds(f.get(field), "fields", field)
        if seconds is None:
            tracking = f.get("timetracking")
            if tracking is not None and (type(tracking) is dict or _is_mapping(tracking)):
                seconds = self._seconds(
                    tracking.get(tracking_attr), "fields.timetracking", tracking_attr
                )
        return None if seconds is None else seconds / 3600

    def _seconds(self, value: Any, under: str, field: str) -> float | None:
        """``value`` in seconds; ``under`` and ``field`` name its place in a message (joined
        only then: three of these are read per issue, nearly always good)."""
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = _finite(value)
            if seconds is None:
                return self.fail(f"{under}.{field}", "a finite number of seconds", value)
            return seconds
        return self.fail(f"{under}.{field}", "a number of seconds", value)

    # -- custom fields --------------------------------------------------------------------

    def first(
        self, f: Mapping[str, Any], ids: tuple[str, ...], convert: Callable[[Any, str], _T | None]
    ) -> _T | None:
        """The first candidate field that holds a value, converted."""
        for field_id in ids:
            value = f.get(field_id)
            if value is None or _is_error_object(value):
                continue
            converted = convert(value, f"fields.{field_id}")
            if converted is not None:
                return converted
        return None

    def number(self, value: Any, field: str) -> float | None:
        if _is_mapping(value) and "value" in value:  # a select option {"value": "5"}
            value = value["value"]
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = _finite(value)
        elif isinstance(value, str):
            if not value.strip():
                return None
            try:
                number = _finite(float(value))  # also takes "inf", "nan", "1e999"
            except ValueError:
                return self.fail(field, "a number", value)
        else:
            return self.fail(field, "a number", value)
        if number is None:
            return self.fail(field, "a finite number", value)
        return number

    def percent(self, value: Any, field: str) -> float | None:
        if isinstance(value, str) and value.strip().endswith("%"):
            number = self.number(value.strip()[:-1], field)
            return None if number is None else number / 100
        number = self.number(value, field)
        if number is None:
            return None
        return number / 100 if number > 1 else number

    def satisfaction(self, value: Any, field: str) -> float | None:
        if _is_mapping(value):
            if "rating" not in value:
                return self.fail(
                    field, 'a satisfaction object like {"rating": 4} or a number', value
                )
            value = value["rating"]
            if value is None:
                return None
        return self.number(value, field)

    def date_value(self, value: Any, field: str) -> date | None:
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                day = parse_date_or_instant(value)
            except (ValueError, OverflowError):
                if _year_out_of_range(value):
                    return self.fail(field, _DATE_IN_RANGE, value)
            else:
                if in_date_range(day):
                    return day
                return self.fail(field, _DATE_IN_RANGE, value)
        return self.fail(field, "a date like 2024-03-01 or a Jira date-time", value)

    def native_slas(self, f: Mapping[str, Any]) -> tuple[NativeSla, ...]:
        try:
            return native_slas(f)
        except InputError as exc:
            raise InputError(f"{self.where}: {exc}") from None

    # -- changelog ------------------------------------------------------------------------

    def history(self, changelog: Any) -> tuple[FieldChange, ...]:
        if changelog is None:
            return ()
        if not _is_mapping(changelog):
            return self.fail(
                "changelog", 'an object with "histories" (expand=changelog)', changelog
            )
        histories = changelog.get("histories")
        if histories is None:
            return ()
        if not isinstance(histories, list):
            return self.fail("changelog.histories", "an array of histories", histories)
        changes: list[FieldChange] = []
        append = changes.append
        # Jira lists histories oldest first, so the changes nearly always arrive in order:
        # noting whether they did while reading them is cheaper than sorting them again.
        in_order = True
        last: datetime | None = None
        # The places in messages are built only when a value is wrong: formatting them
        # for every change cost more than reading it.
        for h_index, history in enumerate(histories):
            if type(history) is not dict and not _is_mapping(history):
                self.fail(f"changelog.histories[{h_index}]", "a history object", history)
            created = history.get("created")
            at = _good_instant(created)
            if at is None:
                at = self._instant(created, f"changelog.histories[{h_index}].created")
            if at is None:
                self.fail(f"changelog.histories[{h_index}].created", _INSTANT_EXAMPLE, None)
            if last is not None and at < last:
                in_order = False
            last = at
            user = history.get("author")
            author = user.get("displayName") if type(user) is dict else None
            if type(author) is not str or not author:  # _author for all but the usual case
                author = _author(user)
            items = history.get("items") or []
            if not isinstance(items, list):
                self.fail(
                    f"changelog.histories[{h_index}].items", "an array of changed fields", items
                )
            for i_index, item in enumerate(items):
                if type(item) is dict:
                    field_id = item.get("fieldId")
                    if type(field_id) is str and field_id:
                        field = _HISTORY_FIELDS.get(field_id, field_id)
                    else:
                        field = _history_field(item, self, _item_place(h_index, i_index))
                else:
                    if not _is_mapping(item):
                        self.fail(_item_place(h_index, i_index), "a changed-field object", item)
                    field = _history_field(item, self, _item_place(h_index, i_index))
                # _change_text only for what is neither null nor a non-empty string.
                before = item.get("fromString")
                if before is not None and (type(before) is not str or not before):
                    before = _change_text(before)
                after = item.get("toString")
                if after is not None and (type(after) is not str or not after):
                    after = _change_text(after)
                append(FieldChange(at, field, before, after, author))
        if not in_order:
            changes.sort(key=_CHANGE_AT)  # stable: same-instant changes keep their order
        return tuple(changes)


def _good_instant(value: Any) -> datetime | None:
    """``value`` as :meth:`_Context._instant` reads it when it is a good instant, else None
    (then ``_instant`` reads it again, to say what is wrong with it)."""
    if type(value) is not str:
        return None
    instant = _instants.get(value)
    if instant is not None:
        return instant
    try:
        instant = parse_jira_instant(value)
    except (ValueError, OverflowError):
        return None
    if not in_date_range(instant):
        return None
    if len(_instants) >= _INSTANTS_KEPT:
        _instants.clear()  # bounded, and cheaper than tracking which text was used last
    _instants[value] = instant
    return instant


def _item_place(h_index: int, i_index: int) -> str:
    return f"changelog.histories[{h_index}].items[{i_index}]"


def _history_complete(changelog: Any) -> bool:
    """Whether the changelog is the issue's whole history, so a field it never changes has held
    its value since creation. An issue read without ``expand=changelog`` has none; a page cut
    short (``total`` above the histories it holds: Jira returns at most one page, and an
    export may keep just that) is not whole either, nor is a webhook's one-change
    ``changelog`` (``items``, no ``histories``)."""
    if not _is_mapping(changelog):
        return False
    histories = changelog.get("histories")
    if not isinstance(histories, list):
        return False
    total = changelog.get("total")
    return not (isinstance(total, int) and total > len(histories))


def _author(value: Any) -> str | None:
    """How a user object is named: the name people see, else the most readable id it has,
    so a user without a display name is still named (None only when it carries nothing)."""
    if type(value) is dict or _is_mapping(value):
        for attr in ("displayName", "accountId", "name", "emailAddress"):
            inner = value.get(attr)
            if isinstance(inner, str) and inner:
                return inner
    return None


def _history_field(item: Mapping[str, Any], ctx: _Context, place: str) -> str:
    field_id = item.get("fieldId")
    if isinstance(field_id, str) and field_id:
        return _HISTORY_FIELDS.get(field_id, field_id)
    field = item.get("field")
    if isinstance(field, str) and field:
        return _HISTORY_FIELDS.get(field, field)
    return ctx.fail(f"{place}.field", "a field name", field)


def _change_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _is_error_object(value: Any) -> bool:
    """JSM fields on issues outside a service project hold an error object, not null."""
    return _is_mapping(value) and "errorMessage" in value


# -- Jira Service Management SLA fields -----------------------------------------------------------


_FIRST_MILLIS = datetime.combine(FIRST_DATE, time(), UTC).timestamp() * 1000
_AFTER_LAST_MILLIS = datetime.combine(LAST_DATE + timedelta(days=1), time(), UTC).timestamp() * 1000


# Integers up to this size convert to floats exactly, so ``millis / 1000`` is then the same
# number as ``float(millis) / 1000``, without the checks a float or a huge integer needs.
_EXACT_INT = 2**53


def _cycle_place(field_id: Any, index: int | None) -> str:
    """Where an SLA cycle is in an issue: ``index`` in ``completedCycles``, or (None) the
    ``ongoingCycle``. Built only for a message: most cycles are fine."""
    if index is None:
        return f"fields.{field_id}.ongoingCycle"
    return f"fields.{field_id}.completedCycles[{index}]"


def _sla_instant(value: Any, field_id: Any, index: int | None, attr: str) -> datetime | None:
    """A JSM ``DateDTO`` (``epochMillis`` is exact; the strings are for display).
    ``field_id``, ``index`` and ``attr`` locate it in a message (see :func:`_cycle_place`)."""
    if type(value) is not dict and not _is_mapping(value):
        return None
    millis = value.get("epochMillis")
    if type(millis) is int and _FIRST_MILLIS <= millis < _AFTER_LAST_MILLIS:
        # The usual case, checked. UTC is passed by position: parsing ``tz=`` as a keyword
        # took as long as the conversion itself.
        return datetime.fromtimestamp(millis / 1000, UTC)
    if isinstance(millis, bool) or not isinstance(millis, int | float):
        return None
    number = _finite(millis)
    if number is None or not _FIRST_MILLIS <= number < _AFTER_LAST_MILLIS:
        raise InputError(
            f"{_cycle_place(field_id, index)}.{attr}.epochMillis: expected an instant in "
            f"{DATE_RANGE_TEXT} (milliseconds since 1970), found {_shown(millis)}"
        )
    return datetime.fromtimestamp(number / 1000, UTC)


def _sla_seconds(value: Any, field_id: Any, index: int | None, attr: str) -> float | None:
    """A JSM ``DurationDTO``; ``millis`` is negative once a goal is breached."""
    if type(value) is not dict and not _is_mapping(value):
        return None
    millis = value.get("millis")
    if type(millis) is int and -_EXACT_INT <= millis <= _EXACT_INT:
        return millis / 1000  # the usual case: finite, and exact as a float
    if isinstance(millis, bool) or not isinstance(millis, int | float):
        return None
    number = _finite(millis)
    if number is None:
        raise InputError(
            f"{_cycle_place(field_id, index)}.{attr}.millis: expected a finite number of "
            f"milliseconds, found {_shown(millis)}"
        )
    return number / 1000


def _sla_cycle(cycle: Mapping[str, Any], field_id: Any, index: int | None) -> NativeSlaCycle:
    """One cycle of an SLA field: completed cycle ``index``, or (None) the ongoing one."""
    get = cycle.get
    ongoing = index is None
    return NativeSlaCycle(
        start=_sla_instant(get("startTime"), field_id, index, "startTime"),
        stop=None if ongoing else _sla_instant(get("stopTime"), field_id, index, "stopTime"),
        breach_time=_sla_instant(get("breachTime"), field_id, index, "breachTime"),
        goal_seconds=_sla_seconds(get("goalDuration"), field_id, index, "goalDuration"),
        elapsed_seconds=_sla_seconds(get("elapsedTime"), field_id, index, "elapsedTime"),
        remaining_seconds=_sla_seconds(get("remainingTime"), field_id, index, "remainingTime"),
        breached=get("breached") is True,
        paused=ongoing and get("paused") is True,
    )


def native_slas(fields: Mapping[str, Any]) -> tuple[NativeSla, ...]:
    """Every JSM SLA field of an issue, recognised by its shape rather than its id (ids differ
    per site; the value carries the SLA's own name). Error objects JSM puts in place of an SLA
    on issues outside a service project are skipped.

    :raises InputError: an instant or a duration is not a finite number, or an instant is
        outside :data:`~bridge.model.DATE_RANGE_TEXT` (the message names the field's place).
    """
    found: list[NativeSla] = []
    for field_id, value in fields.items():
        # Most fields are strings, numbers, nulls or arrays: one type lookup passes them.
        # Most objects (a status, a user) have no cycles: two key lookups pass them.
        kind = type(value)
        if kind is dict:
            if "completedCycles" not in value and "ongoingCycle" not in value:
                continue
        elif kind in _NOT_MAPPINGS or not isinstance(value, Mapping):
            continue
        if not isinstance(value.get("name"), str):
            continue
        completed = value.get("completedCycles")
        ongoing = value.get("ongoingCycle")
        if not isinstance(completed, list) and not _is_mapping(ongoing):
            continue
        cycles = [
            _sla_cycle(c, field_id, i)
            for i, c in enumerate(completed or [])
            if type(c) is dict or _is_mapping(c)
        ]
        if _is_mapping(ongoing):
            cycles.append(_sla_cycle(ongoing, field_id, None))
        found.append(NativeSla(name=value["name"], field=str(field_id), cycles=tuple(cycles)))
    return tuple(found)
