"""What bridge writes onto a ServiceNow record, and how it knows a write would change nothing.

Pure: the connector reads the record (with the values of the ``u_`` fields bridge writes) and
the store's memo for it during the pull, puts the memo on the item, and these functions decide
from the item alone.

Two things make a re-sync of unchanged records write nothing:

- **Fields** are compared as ServiceNow holds them: text. A value is encoded the way it will be
  sent (numbers without float noise, instants as UTC ``YYYY-MM-DD HH:MM:SS``, None as ``""``)
  and compared with the record's current text; numerically equal decimals (``1.50`` / ``1.5``)
  are the same. A field can store something other than what was sent (a decimal column
  rounds ``0.8765`` to ``0.88``, an integer column ``3.7`` to ``4``): after each PATCH the
  value ServiceNow answered with is remembered next to the value sent (the *echo*), so the
  next sync recognises its own rounded write instead of sending it again forever.
- **Journal entries** (work notes, comments) cannot be edited or deleted, so one is added only
  when the summary's digest differs from the digest of the last entry bridge added, which the
  memo remembers. The summary holds only material facts (no running clocks), so the digest
  moves only when a reader would care.

Both go in one PATCH when both changed (one ``sys_mod_count`` bump, one audit entry).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from bridge.errors import WritebackError
from bridge.model import Classification, WorkItem
from bridge.timefmt import format_servicenow_instant, parse_instant
from bridge.writeback.plan import SetFields, UpsertSummary, WriteOp, desired_values, diff_fields
from bridge.writeback.render import build_summary, to_text
from bridge.writeback.values import mapped_value

__all__ = [
    "MEMO_RAW_KEY",
    "RecordMemo",
    "encode_value",
    "marker_digest",
    "memo_after_patch",
    "memo_key",
    "patch_body",
    "plan_writes",
    "record_ref",
    "same_value",
    "summary_marker",
    "versioned",
]

# Where the connector puts the record's memo in ``WorkItem.raw``. A colon cannot occur in a
# ServiceNow column name, so this never hides a field, and no ``raw.`` rule path can name it.
MEMO_RAW_KEY = "bridge:memo"

_ISO_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]00:00)")
_TABLE = re.compile(r"[a-z][a-z0-9_]*")
_SYS_ID = re.compile(r"[0-9a-f]{32}")


def memo_key(table: str, sys_id: str) -> str:
    """The store memo key of one record (per source): ``journal:<table>:<sys_id>``."""
    return f"journal:{table}:{sys_id}"


def summary_marker(digest: str, version: str | None = None) -> str:
    """The last line of every journal entry bridge adds (see ``render.to_text``).

    ``version`` — the record's ``sys_mod_count`` when the entry was sent — makes each
    attempt's marker its own: whether *this* PATCH landed is then a plain lookup, even when
    the same summary was added before (a state that went back and forth)."""
    return f"[bridge summary {digest} @{version}]" if version else f"[bridge summary {digest}]"


def versioned(text: str, digest: str, version: str | None) -> str:
    """``text`` with its marker line naming ``version``."""
    return text.replace(summary_marker(digest), summary_marker(digest, version))


_MARKER = re.compile(r"\[bridge summary ([0-9a-f]{8,64})(?: @[0-9]+)?\]")


def marker_digest(text: str) -> str | None:
    """The digest in a journal entry's marker line; None when it is not bridge's."""
    found = _MARKER.findall(text or "")
    return found[-1] if found else None


@dataclass(frozen=True, slots=True)
class RecordMemo:
    """What bridge remembers about one record between syncs.

    ``journal``: digest of the last journal entry bridge added. ``echo``: field → (text sent,
    text ServiceNow stored) for fields whose column changed the value on the way in.
    ``updated``: the record's last update *not made by bridge* (ServiceNow text, UTC), as
    it was when bridge last wrote: bridge's own PATCH moves ``sys_updated_on``, and the
    KPIs that read the last update (an On Hold pause, a cancel time) must not move with it.
    """

    journal: str | None = None
    echo: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    updated: str | None = None
    # Write-ahead intent: the digest (and `` @version``) of a journal entry whose PATCH was
    # sent but not confirmed (a timeout, a 5xx, a process killed). The next attempt looks for
    # that very marker on the record before writing again: journal entries can be neither
    # edited nor deleted.
    intent: str | None = None
    # When the intent was recorded (UTC, ISO): a PATCH from a process that died may still be
    # on its way to the instance, so an entry not found is waited for a little.
    intent_at: str | None = None

    def to_text(self) -> str:
        doc: dict[str, Any] = {"journal": self.journal}
        if self.updated:
            doc["updated"] = self.updated
        if self.intent:
            doc["intent"] = self.intent
            if self.intent_at:
                doc["intent_at"] = self.intent_at
        if self.echo:
            doc["echo"] = {k: list(v) for k, v in sorted(self.echo.items())}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str | None) -> RecordMemo:
        """Tolerant: an unreadable memo is an empty one (the worst case is one more write)."""
        if not text:
            return cls()
        try:
            doc = json.loads(text)
        except ValueError:
            return cls(journal=text.strip() or None)  # a bare digest
        if not isinstance(doc, dict):
            return cls()
        journal = doc.get("journal")
        updated = doc.get("updated")
        intent = doc.get("intent")
        intent_at = doc.get("intent_at")
        echo: dict[str, tuple[str, str]] = {}
        raw_echo = doc.get("echo")
        if isinstance(raw_echo, dict):
            for name, pair in raw_echo.items():
                if (
                    isinstance(pair, list)
                    and len(pair) == 2
                    and all(isinstance(p, str) for p in pair)
                ):
                    echo[str(name)] = (pair[0], pair[1])
        return cls(
            journal=journal if isinstance(journal, str) else None,
            echo=MappingProxyType(echo),
            updated=updated if isinstance(updated, str) and updated else None,
            intent=intent if isinstance(intent, str) and intent else None,
            intent_at=intent_at if isinstance(intent_at, str) and intent_at else None,
        )


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def encode_value(value: Any) -> str:
    """A value as the Table API takes it (display values off: dates are read as UTC).

    None → ``""`` (clears the field); booleans → ``true``/``false``; floats with at most four
    decimals and no trailing zeros (``0.1 + 0.2`` → ``0.3``, ``2.0`` → ``2``); instants, and
    ISO 8601 UTC strings such as a KPI's ``breach_time``, → ``YYYY-MM-DD HH:MM:SS``.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if isinstance(value, datetime):
        return format_servicenow_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if _ISO_INSTANT.fullmatch(value):
            return format_servicenow_instant(parse_instant(value))
        return value
    return str(value)


def _current_text(value: Any) -> str:
    """A record's field as text: ``{"value": ...}`` unwrapped, missing or null as ``""``."""
    if isinstance(value, Mapping):
        value = value.get("value", value.get("display_value"))
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return encode_value(value)
    return value if isinstance(value, str) else str(value)


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.replace(",", "").strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def same_value(current: Any, desired: Any, echo: tuple[str, str] | None = None) -> bool:
    """Whether writing ``desired`` over the field's ``current`` value would change nothing."""
    want = encode_value(desired)
    have = _current_text(current)
    if have == want or (echo is not None and echo == (want, have)):
        return True
    if not want or not have:
        return False
    a, b = _decimal(have), _decimal(want)
    return a is not None and b is not None and a == b


# --------------------------------------------------------------------------------------------
# Planning and encoding
# --------------------------------------------------------------------------------------------


def memo_of(item: WorkItem) -> RecordMemo:
    memo = item.raw.get(MEMO_RAW_KEY) if isinstance(item.raw, Mapping) else None
    return memo if isinstance(memo, RecordMemo) else RecordMemo()


def plan_writes(
    item: WorkItem,
    decision: Classification,
    kpis: Mapping[str, Any],
    missing: Sequence[Mapping[str, str]] = (),
    *,
    fields: Mapping[str, str],
    journal_field: str | None,
    currency: str | None = None,
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> list[WriteOp]:
    """The writes that would make the record show ``decision`` and ``kpis``; [] if none.

    :param fields: ``writeback.fields``: ``work_type`` / ``phase`` / ``rule`` / a KPI name →
        the record's ``u_`` column.
    :param journal_field: ``work_notes``, ``comments``, or None for no journal entry.
    :param values: column → (casefolded bridge value → the choice's value), for choice
        columns whose values the site names its own way (see ``writeback.values``).
    """
    memo = memo_of(item)
    desired = desired_values(decision, kpis, fields)
    for column, mapping in (values or {}).items():
        if column in desired:
            desired[column] = mapped_value(desired[column], mapping)
    changed = diff_fields(
        desired,
        item.raw,
        lambda target, current, value: same_value(current, value, memo.echo.get(target)),
    )
    ops: list[WriteOp] = []
    if changed:
        ops.append(SetFields(changed))
    if journal_field is not None:
        summary = build_summary(item.key, decision, kpis, missing, currency=currency)
        if summary.digest != memo.journal:
            ops.append(UpsertSummary(text=to_text(summary), digest=summary.digest))
    return ops


def patch_body(ops: Sequence[WriteOp], journal_field: str | None) -> dict[str, str]:
    """One PATCH body for all planned writes: encoded fields plus the journal entry."""
    body: dict[str, str] = {}
    for op in ops:
        if isinstance(op, SetFields):
            body.update({name: encode_value(value) for name, value in op.values.items()})
        elif isinstance(op, UpsertSummary):
            if journal_field is None:
                raise WritebackError("a summary was planned but writeback.journal is none")
            body[journal_field] = str(op.text)
    return body


def memo_after_patch(
    memo: RecordMemo,
    body: Mapping[str, str],
    stored: Mapping[str, Any] | None,
    *,
    journal_field: str | None,
    digest: str | None,
    updated: str | None = None,
) -> RecordMemo:
    """The memo after a successful PATCH: the new journal digest, and the fields whose stored
    text differs from what was sent (``stored`` is the record ServiceNow answered with)."""
    echo = dict(memo.echo)
    for name, sent in body.items():
        if name == journal_field:
            continue
        if stored is None or name not in stored:
            echo.pop(name, None)
            continue
        got = _current_text(stored[name])
        if got == sent:
            echo.pop(name, None)
        else:
            echo[name] = (sent, got)
    return RecordMemo(
        journal=digest if digest is not None else memo.journal,
        echo=MappingProxyType(echo),
        updated=updated or memo.updated,
        intent=None if digest is not None else memo.intent,
        intent_at=None if digest is not None else memo.intent_at,
    )


def record_ref(item: WorkItem) -> tuple[str, str]:
    """(table, sys_id) of the record an item was read from; its own class, not the scope's
    parent table, so fields defined on the child table are written.

    :raises WritebackError: the item did not come from the ServiceNow Table API.
    """
    raw = item.raw if isinstance(item.raw, Mapping) else {}
    table = _current_text(raw.get("sys_class_name"))
    sys_id = _current_text(raw.get("sys_id"))
    if not (_TABLE.fullmatch(table) and _SYS_ID.fullmatch(sys_id)):
        raise WritebackError(
            f"{item.key}: not a ServiceNow record bridge can write to (needs sys_class_name "
            f"and a 32-character sys_id, found {table!r} and {sys_id!r})",
            item_key=item.key,
        )
    return table, sys_id
