"""The ServiceNow double's instance: tables of records in the Table API's default shape,
journals, ACLs and SLAs, the helpers a test arranges and changes them with, and how a record
reads back (dot-walks, display values, reference links).

Everything here works without a socket; :mod:`bridge.testing.servicenow.http` serves it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bridge.testing._server import HttpDouble
from bridge.testing.servicenow.encoded_query import (
    Condition,
    EncodedQuery,
    RowCheck,
    any_of,
    first_group_matching,
    matches,
    row_key,
)
from bridge.testing.servicenow.tables import (
    BASE_TABLES,
    CHOICE_LABELS,
    DATETIME,
    DEFAULT_REFERENCE_TABLES,
    FAMILIES,
    JOURNAL_FIELDS,
    JOURNAL_LABELS,
    JOURNAL_READ_FIELDS,
    NUMBER_PREFIXES,
    TASK_TABLES,
    Record,
)
from bridge.testing.servicenow.wire import RecordedRequest


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How a read shows records (``sysparm_fields``, ``sysparm_display_value``,
    ``sysparm_exclude_reference_link``)."""

    fields: tuple[str, ...] | None
    display: Literal["false", "true", "all"]
    exclude_links: bool


class ServiceNowInstance(HttpDouble[RecordedRequest]):
    """The state of a fake ServiceNow instance, and what tests observe of its traffic. All
    access goes through ``self._lock``, as HTTP requests run in threads."""

    def __init__(
        self,
        *,
        latency: float,
        user: str,
        password: str,
        reference_tables: Mapping[str, str] | None,
        clock: Callable[[], datetime] | None,
    ) -> None:
        super().__init__(latency=latency)
        self.user = user
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.reference_tables: dict[str, str] = {
            **DEFAULT_REFERENCE_TABLES,
            **(reference_tables or {}),
        }
        self.choice_labels: dict[str, dict[str, str]] = {
            key: dict(labels) for key, labels in CHOICE_LABELS.items()
        }

        # Observations for tests (besides the recorded requests).
        self.cookie_requests = 0
        self.ignored_query_fields: list[tuple[str, str]] = []
        self.ignored_fields: list[tuple[str, str]] = []
        self.spec_problems: list[str] = []

        self._tables: dict[str, dict[str, Record]] = {name: {} for name in BASE_TABLES}
        self._columns: dict[str, set[str]] = {name: set() for name in BASE_TABLES}
        self._tombstones: dict[tuple[str, str], Record] = {}
        self._counters: dict[str, int] = {}
        self._journal_index: dict[str, list[str]] = {}  # parent sys_id → journal row sys_ids
        self._acl: dict[tuple[str, str | None], tuple[bool, bool]] = {}
        self._users: dict[str, str] = {user: password}

    def reset_counters(self) -> None:
        """Forget recorded requests, cookie counts and ignored fields (state is kept)."""
        with self._lock:
            super().reset_counters()
            self.cookie_requests = 0
            self.ignored_query_fields.clear()
            self.ignored_fields.clear()
            self.spec_problems.clear()

    # ---- state ---------------------------------------------------------------------------

    def now(self) -> str:
        """The instance's current time as a ``glide_date_time`` value (UTC)."""
        return self.clock().astimezone(UTC).strftime(DATETIME)

    def add_table(self, table: str, columns: Iterable[str] = ()) -> None:
        """Declare a table (and columns no record has yet); other names are "Invalid table"."""
        with self._lock:
            self._tables.setdefault(table, {})
            self._columns.setdefault(table, set()).update(columns)

    def add_user(self, user: str, password: str) -> None:
        """Another integration user for Basic auth and the password grant."""
        self._users[user] = password

    def add_record(self, table: str, fields: Mapping[str, str], sys_id: str | None = None) -> str:
        """Insert a record; returns its sys_id.

        Values are stored as given (strings, as the Table API sends them with display values
        off; a reference is the referenced sys_id). Missing system fields are filled:
        ``sys_id``, ``number`` (tables in ``NUMBER_PREFIXES``), ``sys_created_on``/``_by``,
        ``sys_updated_on``/``_by``, ``sys_mod_count`` ``"0"``, ``sys_class_name``; task tables
        also get the journal fields, which always read back as ``""``.
        """
        bad = {
            name: type(value).__name__
            for name, value in fields.items()
            if not isinstance(value, str)
        }
        if bad:
            raise TypeError(f"record values must be strings as in the Table API, got {bad}")
        with self._lock:
            self._tables.setdefault(table, {})
            self._columns.setdefault(table, set())
            return self._insert(table, dict(fields), sys_id, user="admin")

    def bulk_add(
        self,
        table: str,
        n: int,
        fields: Mapping[str, str] | Callable[[int], Mapping[str, str]] | None = None,
    ) -> list[str]:
        """Insert ``n`` records: the same fields, or ``fields(i)`` for the i-th (0-based)."""
        ids = []
        with self._lock:
            for index in range(n):
                values = fields(index) if callable(fields) else (fields or {})
                ids.append(self.add_record(table, values))
        return ids

    def _insert(self, table: str, fields: Record, sys_id: str | None, *, user: str) -> str:
        now = self.now()
        new_id = sys_id or fields.get("sys_id") or uuid.uuid4().hex
        if new_id in self._tables[table]:
            raise ValueError(f"{table} already has a record with sys_id {new_id}")
        record: Record = {"sys_id": new_id}
        prefix = NUMBER_PREFIXES.get(table)
        if prefix is not None and "number" not in fields:
            count = self._counters.get(table, 10000) + 1
            self._counters[table] = count
            record["number"] = f"{prefix}{count:07d}"
        record.update(fields)
        record["sys_id"] = new_id
        created = record.setdefault("sys_created_on", now)
        record.setdefault("sys_created_by", user)
        record.setdefault("sys_updated_on", created)
        record.setdefault("sys_updated_by", record["sys_created_by"])
        record.setdefault("sys_mod_count", "0")
        record.setdefault("sys_class_name", table)
        if table in TASK_TABLES:
            for name in JOURNAL_READ_FIELDS:
                record[name] = ""
        self._tables[table][new_id] = record
        self._columns[table].update(record)
        return new_id

    def record(self, table: str, sys_id: str) -> Record:
        """A copy of the stored record (reference fields hold sys_ids); KeyError if none."""
        with self._lock:
            return dict(self._require(table, sys_id)[1])

    def records(self, table: str) -> list[Record]:
        """Copies of every record of a table (and of its child tables for task/planned_task)."""
        with self._lock:
            return [dict(r) for t in self._family(table) for r in self._tables[t].values()]

    def update_as_user(self, table: str, sys_id: str, /, **fields: str) -> Record:
        """A human edit: sets the fields, appends journal entries, and always bumps
        ``sys_mod_count`` and ``sys_updated_on`` (as a form save does). The editor is
        ``sys_updated_by`` when given, else ``admin``. Returns a copy of the record."""
        user = fields.pop("sys_updated_by", "admin")
        with self._lock:
            real_table, record = self._require(table, sys_id)
            for name, value in fields.items():
                if name in JOURNAL_FIELDS:
                    if value:
                        self._add_journal(real_table, sys_id, name, value, user, None)
                else:
                    record[name] = value
                    self._columns[real_table].add(name)
            self._bump(record, user)
            return dict(record)

    def delete(self, table: str, sys_id: str) -> None:
        """Remove a record (its last state is kept for ``webhook(..., "delete")``)."""
        with self._lock:
            real_table, record = self._require(table, sys_id)
            del self._tables[real_table][sys_id]
            self._tombstones[(real_table, sys_id)] = record

    def set_acl(
        self, table: str, field: str | None = None, *, read: bool = True, write: bool = True
    ) -> None:
        """Deny reading or writing a table (or one field) to the integration user.

        Table read denied: list GETs get 403 "Insufficient rights", single GETs the 404 that
        also covers ACLs. Field read denied: the field is left out of responses. Write
        denied (table, or a field in the body): PATCH/PUT/POST/DELETE get 403 "Operation
        Failed".
        """
        with self._lock:
            self._acl[(table, field)] = (read, write)

    def _can(self, table: str, field: str | None, mode: Literal["read", "write"]) -> bool:
        read, write = self._acl.get((table, field), (True, True))
        return read if mode == "read" else write

    def add_journal(
        self,
        table: str,
        sys_id: str,
        element: Literal["work_notes", "comments"],
        value: str,
        *,
        user: str = "admin",
        created_on: str | None = None,
    ) -> str:
        """Seed a past journal entry without touching the record (history before the test)."""
        with self._lock:
            real_table = self._require(table, sys_id)[0]
            return self._add_journal(real_table, sys_id, element, value, user, created_on)

    def _add_journal(
        self, table: str, sys_id: str, element: str, value: str, user: str, created_on: str | None
    ) -> str:
        row: Record = {
            "sys_id": uuid.uuid4().hex,
            "sys_created_on": created_on or self.now(),
            "name": table,
            "element_id": sys_id,
            "sys_tags": "",
            "value": value,
            "sys_created_by": user,
            "element": element,
        }
        self._tables["sys_journal_field"][row["sys_id"]] = row
        self._columns["sys_journal_field"].update(row)
        self._journal_index.setdefault(sys_id, []).append(row["sys_id"])
        return row["sys_id"]

    def journal(self, table: str, sys_id: str, element: str | None = None) -> list[Record]:
        """The record's ``sys_journal_field`` rows, oldest first, optionally one element."""
        with self._lock:
            rows = self._journal_rows(sys_id)
            found = self._find(table, sys_id)
            name = found[0] if found else table
            return [
                dict(r)
                for r in rows
                if r["name"] == name and (element is None or r["element"] == element)
            ]

    def _journal_rows(self, sys_id: str) -> list[Record]:
        journal = self._tables["sys_journal_field"]
        return [journal[j] for j in self._journal_index.get(sys_id, ()) if j in journal]

    def add_task_sla(
        self,
        task_sys_id: str,
        /,
        *,
        sla: str | None = None,
        sla_name: str = "Priority 1 resolution (4 hour)",
        stage: str = "in_progress",
        has_breached: bool = False,
        start_time: str | None = None,
        end_time: str = "",
        planned_end_time: str = "",
        sys_id: str | None = None,
        **fields: str,
    ) -> str:
        """Attach a ``task_sla`` row to a task; ``sla`` is a contract_sla sys_id, else one
        named ``sla_name`` is found or created. Other columns (``business_duration``,
        ``business_time_left``, ``duration``, ``percentage``, ``business_percentage``,
        ``time_left``, ``schedule``, ...) default to the shapes in NOTES.md §4.1."""
        with self._lock:
            task_table, task = self._require("task", task_sys_id)
            if sla is None:
                sla = next(
                    (
                        s
                        for s, r in self._tables["contract_sla"].items()
                        if r.get("name") == sla_name
                    ),
                    None,
                ) or self.add_record(
                    "contract_sla",
                    {
                        "name": sla_name,
                        "type": "SLA",
                        "target": "resolution",
                        "collection": task_table,
                    },
                )
            zero = "1970-01-01 00:00:00"
            values: Record = {
                "task": task_sys_id,
                "sla": sla,
                "schedule": "",
                "timezone": "GMT",
                "stage": stage,
                "active": "true" if stage in ("in_progress", "paused") else "false",
                "has_breached": "true" if has_breached else "false",
                "start_time": start_time or task.get("opened_at") or task["sys_created_on"],
                "end_time": end_time,
                "planned_end_time": planned_end_time,
                "original_breach_time": planned_end_time,
                "duration": zero,
                "business_duration": zero,
                "percentage": "0",
                "business_percentage": "0",
                "time_left": zero,
                "business_time_left": zero,
                "pause_duration": "",
                "business_pause_duration": "",
                "pause_time": "",
            }
            values.update(fields)
            return self.add_record("task_sla", values, sys_id)

    def _family(self, table: str) -> tuple[str, ...]:
        return tuple(t for t in FAMILIES.get(table, (table,)) if t in self._tables)

    def _find(self, table: str, sys_id: str) -> tuple[str, Record] | None:
        for name in self._family(table):
            record = self._tables[name].get(sys_id)
            if record is not None:
                return name, record
        return None

    def _require(self, table: str, sys_id: str) -> tuple[str, Record]:
        """Seeding and inspection helpers fail loudly on a missing record, unlike the Table
        API, whose 404 answers are built by the HTTP side from :meth:`_find`."""
        found = self._find(table, sys_id)
        if found is None:
            raise KeyError(f"no {table} record with sys_id {sys_id}")
        return found

    def _bump(self, record: Record, user: str) -> None:
        record["sys_mod_count"] = str(int(record.get("sys_mod_count") or 0) + 1)
        record["sys_updated_on"] = self.now()
        record["sys_updated_by"] = user

    def _ref_table(self, table: str, field_name: str) -> str | None:
        return self.reference_tables.get(f"{table}.{field_name}") or self.reference_tables.get(
            field_name
        )

    # ---- webhooks ------------------------------------------------------------------------

    def webhook(
        self,
        table: str,
        sys_id: str,
        operation: str = "update",
        *,
        secret: str | None = None,
        shared_secret_header: bool = False,
    ) -> tuple[bytes, dict[str, str]]:
        """The request an after/async Business Rule would send to bridge for this record.

        ServiceNow has no outbound webhook and signs nothing (NOTES.md §6.5), so bridge's
        receiver expects what its Business Rule script sends: the small JSON
        ``{"table","sys_id","sys_updated_on","sys_mod_count","operation"}`` (the receiver
        re-reads the record through the Table API), signed with
        ``X-Bridge-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, or, where the script
        cannot compute an HMAC, the secret itself in ``X-Bridge-Token``. A deleted record's
        last state is used for ``operation="delete"``.
        """
        if operation not in ("insert", "update", "delete"):
            raise ValueError(f"operation must be insert, update or delete, not {operation!r}")
        with self._lock:
            found = self._find(table, sys_id)
            if found is None:
                found = next(
                    (
                        (t, r)
                        for (t, s), r in self._tombstones.items()
                        if s == sys_id and t in self._family(table)
                    ),
                    None,
                )
            if found is None:
                raise KeyError(f"no {table} record with sys_id {sys_id}")
            real_table, record = found
            payload = {
                "table": real_table,
                "sys_id": sys_id,
                "sys_updated_on": record.get("sys_updated_on", ""),
                "sys_mod_count": record.get("sys_mod_count", ""),
                "operation": operation,
            }
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "ServiceNow/1.0"}
        if secret is not None:
            if shared_secret_header:
                headers["X-Bridge-Token"] = secret
            else:
                digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                headers["X-Bridge-Signature"] = f"sha256={digest}"
        return body, headers

    # ---- reading -------------------------------------------------------------------------

    def _select(
        self, table: str, readable: Sequence[str], query: EncodedQuery, offset: int, limit: int
    ) -> tuple[int, list[tuple[str, Record]]]:
        """The match count and the page of (table, record) rows; call with the lock held."""
        columns = set().union(*(self._columns[t] for t in self._family(table)))
        unknown = {
            f for f in query.fields | {f for f, _ in query.order} if f.split(".")[0] not in columns
        }
        for name in sorted(unknown):  # NOTES.md §1.2: ignored, the rest of the query still runs
            self.ignored_query_fields.append((table, name))
        groups = [
            [any_of([self._check(c) for c in term if c.field not in unknown]) for term in group]
            for group in query.groups
        ]
        filters = [[term for term in group if term is not None] for group in groups]
        order = [(self._getter(f), desc) for f, desc in query.order if f not in unknown]
        everything = ((t, r) for t in readable for r in self._tables[t].values())
        if not any(filters):
            if not order:  # a plain sweep: no need to look at every row
                total = sum(len(self._tables[t]) for t in readable)
                return total, list(itertools.islice(everything, offset, offset + limit))
            rows = list(everything)
        else:
            predicate = first_group_matching(filters)
            rows = [(t, r) for t, r in everything if predicate(t, r)]
        for get, descending in reversed(order):
            rows.sort(key=row_key(get), reverse=descending)
        return len(rows), rows[offset : offset + limit]

    def _check(self, condition: Condition) -> RowCheck:
        get = self._getter(condition.field)
        op, want = condition.op, condition.value
        if op == "=":
            return lambda t, r: get(t, r) == want
        if op == "!=":
            return lambda t, r: get(t, r) != want
        return lambda t, r: matches(condition, get(t, r))

    def _getter(self, name: str) -> Callable[[str, Record], str]:
        if "." in name:

            def walked(table: str, record: Record) -> str:
                return self._value(table, record, name)

            return walked

        def plain(_table: str, record: Record) -> str:
            return record.get(name, "")

        return plain

    def _walk(self, table: str, record: Record, path: str) -> tuple[str, str, Record] | None:
        """(table, field, record holding it) at the end of a dot-walk; None if it breaks."""
        *hops, last = path.split(".")
        for hop in hops:
            ref = self._ref_table(table, hop)
            target = record.get(hop, "")
            found = self._find(ref, target) if ref and target else None
            if found is None:
                return None
            table, record = found
        return table, last, record

    def _value(self, table: str, record: Record, path: str) -> str:
        end = self._walk(table, record, path)
        return end[2].get(end[1], "") if end else ""

    def _render(self, table: str, record: Record, options: ReadOptions) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in options.fields if options.fields is not None else tuple(record):
            if "." in name:
                if name.split(".")[0] not in record:
                    continue  # invalid fields in sysparm_fields are ignored
                end = self._walk(table, record, name)
                at_table, at_field, holder = end if end else (table, name, {})
            elif name in record:
                at_table, at_field, holder = table, name, record
            else:
                continue
            if not self._can(table, name.split(".")[0], "read"):
                continue
            out[name] = self._present(at_table, at_field, holder, options)
        return out

    def _present(self, table: str, field_name: str, record: Record, options: ReadOptions) -> Any:
        value = record.get(field_name, "")
        ref = self._ref_table(table, field_name)
        link = f"{self.url}/api/now/table/{ref}/{value}" if ref and value else None
        if options.display == "false":
            if link is None or options.exclude_links:
                return value
            return {"link": link, "value": value}
        shown = self._display(table, field_name, record, ref)
        if options.display == "true":
            if link is None or options.exclude_links:
                return shown
            return {"display_value": shown, "link": link}
        if link is None or options.exclude_links:
            return {"display_value": shown, "value": value}
        return {"display_value": shown, "link": link, "value": value}

    def _display(self, table: str, field_name: str, record: Record, ref: str | None) -> str:
        """Display values with the user's time zone taken as UTC (dates are unchanged)."""
        value = record.get(field_name, "")
        if field_name in JOURNAL_READ_FIELDS and table in TASK_TABLES:
            return self._journal_text(record.get("sys_id", ""), field_name)
        if ref and value:
            found = self._find(ref, value)
            if found is None:
                return ""
            target = found[1]
            return target.get("name") or target.get("number") or target.get("user_name") or ""
        labels = self.choice_labels.get(f"{table}.{field_name}") or self.choice_labels.get(
            f"*.{field_name}", {}
        )
        return labels.get(value, value)

    def _journal_text(self, sys_id: str, field_name: str) -> str:
        """NOTES.md §3: newest first, ``<when> - <full name> (Work notes)\\n<text>\\n\\n``."""
        elements = JOURNAL_FIELDS if field_name == "comments_and_work_notes" else (field_name,)
        rows = [r for r in self._journal_rows(sys_id) if r["element"] in elements]
        rows.sort(key=lambda r: r["sys_created_on"], reverse=True)
        names = {u.get("user_name"): u.get("name") for u in self._tables["sys_user"].values()}
        return "".join(
            f"{r['sys_created_on']} - {names.get(r['sys_created_by']) or r['sys_created_by']} "
            f"({JOURNAL_LABELS[r['element']]})\n{r['value']}\n\n"
            for r in rows
        )
