"""What bridge writes onto a Jira issue, and in which JSON: pure, no I/O.

A writeback target is a Jira field with a *kind* read from its ``GET /field`` schema; the kind
decides how a bridge value is encoded for ``PUT /issue`` and how the value the issue holds
now is read back for comparison. Comparison is on a canonical form, so a value Jira stores
differently from how it was sent (a select comes back as ``{"self", "value", "id"}``, a
number as ``1.0``, a date-time in another offset) does not count as a change, and a re-sync
of unchanged issues plans nothing.

The comment bridge keeps on an issue is found through the issue property
``bridge.comment`` (``{"id", "digest", "version"}``), which the search returns with each
issue (``properties=bridge.comment``): no extra request per issue to know whether the
comment needs writing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Literal

from bridge.errors import WritebackError
from bridge.kpi.result import KpiResult
from bridge.model import Classification, WorkItem
from bridge.timefmt import parse_date_or_instant
from bridge.writeback.plan import SetFields, UpsertSummary, WriteOp, desired_values, diff_fields
from bridge.writeback.render import build_summary, to_adf, to_wiki
from bridge.writeback.values import mapped_value

__all__ = [
    "COMMENT_PROPERTY",
    "FieldInfo",
    "FieldKind",
    "WriteSpec",
    "adf_document",
    "adf_plain_text",
    "comment_body",
    "comment_state",
    "current_value",
    "edit_body",
    "encode_value",
    "field_info",
    "field_kind",
    "plan_writes",
    "property_value",
    "same_value",
]

COMMENT_PROPERTY = "bridge.comment"
PROPERTY_VERSION = 1

FieldKind = Literal["number", "string", "text", "option", "date", "datetime"]
"""``text`` is multi-line rich text (a ``textarea`` custom field, ``description``): ADF in
REST v3, a wiki-markup string in v2. ``string`` is a single-line text field (plain string in
both versions)."""

_RICH_SYSTEM = frozenset(("description", "environment"))
_KIND_WORDS: Mapping[str, str] = {
    "number": "number",
    "string": "single-line text",
    "text": "multi-line text",
    "option": "single select",
    "date": "date",
    "datetime": "date-time",
}


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """A Jira field as ``GET /field`` describes it; ``kind`` None: bridge cannot write it."""

    id: str
    name: str
    kind: FieldKind | None
    schema_type: str | None = None

    @property
    def label(self) -> str:
        """``'SPI' (customfield_10050)``, the way messages name a field."""
        return f"{self.name!r} ({self.id})" if self.name and self.name != self.id else self.id

    @property
    def kind_words(self) -> str:
        return _KIND_WORDS.get(self.kind or "", self.schema_type or "unknown")


def field_kind(entry: Mapping[str, Any]) -> FieldKind | None:
    """The kind of a ``FieldDetails`` entry, None for types bridge does not write (users,
    multi-selects, labels, SLA fields...)."""
    schema = entry.get("schema")
    if not isinstance(schema, Mapping):
        return None
    type_ = schema.get("type")
    custom = str(schema.get("custom") or "")
    system = str(schema.get("system") or "")
    if type_ == "number":
        return "number"
    if type_ == "string":
        if custom.endswith(":textarea") or system in _RICH_SYSTEM:
            return "text"
        return "string"
    if type_ == "option" and not custom.endswith(":cascadingselect"):
        return "option"
    if type_ == "date":
        return "date"
    if type_ == "datetime":
        return "datetime"
    return None


def field_info(entry: Mapping[str, Any]) -> FieldInfo:
    schema = entry.get("schema")
    schema = schema if isinstance(schema, Mapping) else {}
    type_ = schema.get("type")
    return FieldInfo(
        id=str(entry.get("id")),
        name=str(entry.get("name") or entry.get("id")),
        kind=field_kind(entry),
        schema_type=type_ if isinstance(type_, str) else None,
    )


# --------------------------------------------------------------------------------------------
# Values: bridge's terms → canonical → Jira JSON, and Jira JSON → canonical
# --------------------------------------------------------------------------------------------


def _number_text(value: float) -> str:
    rounded = round(value, 6)
    if rounded == int(rounded) and abs(rounded) < 1e15:
        return str(int(rounded))
    return repr(rounded)


def _as_text(value: Any) -> str | None:
    """How a bridge value reads in a text or select field."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return _number_text(float(value))
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _fail(key: str, target: FieldInfo, value: Any, expected: str) -> WritebackError:
    return WritebackError(
        f"writeback: {key} → field {target.label} is a {target.kind_words} field, but the value "
        f"{value!r} is not {expected}; map {key} to a field of another type in "
        "writeback.fields, or remove it"
    )


def _canonical_desired(target: FieldInfo, value: Any, tz: tzinfo, key: str) -> Any:
    """The comparable form of a value bridge wants in ``target``; WritebackError if it
    cannot go there."""
    if value is None:
        return None
    kind = target.kind
    if kind == "number":
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, int | float):
            number = float(value)
        else:
            try:
                number = float(str(value))
            except ValueError:
                raise _fail(key, target, value, "a number") from None
        if not math.isfinite(number):
            return None
        return round(number, 6)
    if kind in ("string", "text", "option"):
        return _as_text(value)
    if kind in ("date", "datetime"):
        moment: date | datetime
        if isinstance(value, date):
            moment = value
        elif isinstance(value, str):
            try:
                moment = parse_date_or_instant(value)
            except ValueError:
                raise _fail(key, target, value, "a date or a date-time") from None
        else:
            raise _fail(key, target, value, "a date or a date-time")
        if kind == "date":
            if isinstance(moment, datetime):
                return moment.astimezone(tz).date().isoformat()
            return moment.isoformat()
        if not isinstance(moment, datetime):
            moment = datetime(moment.year, moment.month, moment.day, tzinfo=tz)
        return _minute(moment)
    raise WritebackError(f"writeback: field {target.label} is not a type bridge can write")


def _minute(moment: datetime) -> datetime:
    """Date-time fields are compared and written to the minute: Jira's picker is minute
    grained, and a value that Jira truncated must not look changed on every sync."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def adf_plain_text(doc: Any) -> str:
    """The text of an ADF document, one line per block (paragraph, heading, list item)."""
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, Mapping):
        return ""
    kind = doc.get("type")
    if kind == "text":
        return str(doc.get("text") or "")
    if kind == "hardBreak":
        return "\n"
    children = [adf_plain_text(c) for c in doc.get("content") or [] if isinstance(c, Mapping)]
    joiner = "\n" if kind in ("doc", "bulletList", "orderedList", "listItem", "table") else ""
    return joiner.join(children)


def adf_document(text: str) -> dict[str, Any]:
    """Plain text as an ADF document, one paragraph per line (what ``adf_plain_text`` reads
    back as the same text)."""
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
            for line in text.split("\n")
        ],
    }


def _canonical_current(target: FieldInfo, raw: Any) -> Any:
    """The comparable form of what the issue holds now (REST v2 or v3 JSON)."""
    if raw is None:
        return None
    kind = target.kind
    if kind == "number":
        if isinstance(raw, bool):
            return None
        if isinstance(raw, int | float):
            return round(float(raw), 6)
        try:
            return round(float(str(raw)), 6)
        except ValueError:
            return raw
    if kind == "option":
        if isinstance(raw, Mapping):
            raw = raw.get("value")
        return _as_text(raw)
    if kind == "text":
        text = adf_plain_text(raw).strip()
        return text or None
    if kind == "string":
        return _as_text(raw)
    if kind == "date":
        return str(raw)[:10] if isinstance(raw, str) and raw else None
    if kind == "datetime":
        if not isinstance(raw, str):
            return raw
        try:
            moment = parse_date_or_instant(raw)
        except ValueError:
            return raw
        if not isinstance(moment, datetime):
            return raw
        return _minute(moment)
    return raw


def current_value(target: FieldInfo, issue: Mapping[str, Any]) -> Any:
    """The comparable value ``target`` holds on ``issue`` (None when absent or empty)."""
    fields = issue.get("fields")
    raw = fields.get(target.id) if isinstance(fields, Mapping) else None
    return _canonical_current(target, raw)


def same_value(target: FieldInfo, current_raw: Any, desired: Any, tz: tzinfo, key: str) -> bool:
    """Whether the issue's JSON value already shows ``desired``."""
    now = _canonical_current(target, current_raw)
    return bool(now == _canonical_desired(target, desired, tz, key))


def encode_value(target: FieldInfo, value: Any, *, adf: bool, tz: tzinfo, key: str = "") -> Any:
    """The JSON ``PUT /issue`` takes for ``value`` in ``target``; None clears the field."""
    canonical = _canonical_desired(target, value, tz, key or target.id)
    if canonical is None:
        return None
    kind = target.kind
    if kind == "number":
        number = float(canonical)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string":
        return str(canonical)
    if kind == "text":
        return adf_document(str(canonical)) if adf else str(canonical)
    if kind == "option":
        return {"value": str(canonical)}
    if kind == "date":
        return str(canonical)
    if kind == "datetime":
        moment: datetime = canonical
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    raise WritebackError(f"writeback: field {target.label} is not a type bridge can write")


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriteSpec:
    """Everything planning needs to know about one Jira source, resolved once.

    ``targets`` maps a writeback key (``evm.spi``, ``work_type``) to its field; ``adf`` is
    True on Cloud (REST v3); ``tz`` is the API user's time zone, in which an instant written
    into a date field is read.

    The lookups by field id are derived from ``targets`` here, once, rather than by every
    plan, edit and webhook that needs them; ``targets`` must not change afterwards.
    """

    targets: Mapping[str, FieldInfo]
    adf: bool = True
    tz: tzinfo = UTC
    comment: bool = True
    # writeback key → (casefolded bridge value → the site's option), see writeback.values.
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    field_ids: frozenset[str] = field(init=False, repr=False, compare=False)
    field_names: frozenset[str] = field(init=False, repr=False, compare=False)
    ids_by_key: Mapping[str, str] = field(init=False, repr=False, compare=False)
    keys_by_id: Mapping[str, str] = field(init=False, repr=False, compare=False)
    targets_by_id: Mapping[str, FieldInfo] = field(init=False, repr=False, compare=False)
    values_by_id: Mapping[str, Mapping[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: the derived lookups are set the way dataclasses set frozen fields.
        targets = self.targets
        object.__setattr__(self, "field_ids", frozenset(t.id for t in targets.values()))
        object.__setattr__(self, "field_names", frozenset(t.name for t in targets.values()))
        object.__setattr__(self, "ids_by_key", {key: t.id for key, t in targets.items()})
        object.__setattr__(self, "keys_by_id", {t.id: key for key, t in targets.items()})
        object.__setattr__(self, "targets_by_id", {t.id: t for t in targets.values()})
        object.__setattr__(
            self,
            "values_by_id",
            {targets[k].id: v for k, v in self.values.items() if k in targets and v},
        )


def comment_state(issue: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(comment id, digest) from the issue's ``bridge.comment`` property, as the search
    returned it (``properties=bridge.comment``); (None, None) when it has none."""
    props = issue.get("properties")
    value = props.get(COMMENT_PROPERTY) if isinstance(props, Mapping) else None
    if not isinstance(value, Mapping):
        return None, None
    comment_id = value.get("id")
    digest = value.get("digest")
    return (
        str(comment_id) if isinstance(comment_id, str | int) and comment_id != "" else None,
        digest if isinstance(digest, str) else None,
    )


def plan_writes(
    item: WorkItem,
    decision: Classification,
    kpis: KpiResult,
    spec: WriteSpec,
    *,
    currency: str | None = None,
) -> list[WriteOp]:
    """The writes that make ``item`` show ``decision`` and ``kpis``: one :class:`SetFields`
    with only the changed fields (field id → bridge value), and an :class:`UpsertSummary`
    (rendered for the API version) when the summary's digest differs from the one the
    issue's property records."""
    desired = desired_values(decision, kpis.values, spec.ids_by_key)
    for field_id, mapping in spec.values_by_id.items():
        desired[field_id] = mapped_value(desired[field_id], mapping)
    fields = item.raw.get("fields")
    current = dict(fields) if isinstance(fields, Mapping) else {}

    def same(field_id: str, now: Any, want: Any) -> bool:
        key, target = spec.keys_by_id[field_id], spec.targets_by_id[field_id]
        return same_value(target, now, want, spec.tz, key)

    ops: list[WriteOp] = []
    changed = diff_fields(desired, current, same)
    if changed:
        ops.append(SetFields(changed))
    if spec.comment:
        summary = build_summary(item.key, decision, kpis.values, kpis.missing, currency=currency)
        _, digest = comment_state(item.raw)
        if digest != summary.digest:
            text: Any = to_adf(summary) if spec.adf else to_wiki(summary)
            ops.append(UpsertSummary(text, summary.digest))
    return ops


# --------------------------------------------------------------------------------------------
# Request bodies
# --------------------------------------------------------------------------------------------


def edit_body(
    values: Mapping[str, Any], spec: WriteSpec, *, keys: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``{"fields": {...}}`` for ``PUT /issue/{key}`` from a :class:`SetFields`' values."""
    key_of = keys or spec.keys_by_id
    encoded: dict[str, Any] = {}
    for field_id, value in values.items():
        target = spec.targets_by_id.get(field_id)
        if target is None:
            raise WritebackError(f"writeback: {field_id} is not a field in writeback.fields")
        encoded[field_id] = encode_value(
            target, value, adf=spec.adf, tz=spec.tz, key=key_of.get(field_id, field_id)
        )
    return {"fields": encoded}


def comment_body(text: Any) -> dict[str, Any]:
    """The body of ``POST``/``PUT`` comment: ``{"body": <ADF doc or wiki string>}``."""
    return {"body": text}


def property_value(comment_id: str, digest: str) -> dict[str, Any]:
    """The value of the ``bridge.comment`` issue property."""
    return {"id": comment_id, "digest": digest, "version": PROPERTY_VERSION}
