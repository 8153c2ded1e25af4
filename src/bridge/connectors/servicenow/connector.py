"""The live ServiceNow connector: settings, pull, fetch, plan, apply and webhooks.

The pieces it wires together are elsewhere: HTTP in ``client``, record → item in ``mapping``,
task_sla → native SLAs in ``sla``, what to write in ``writes``, deliveries in ``webhooks``.

What the pull does per table, per page of changed records (one ``GET`` each):

1. drops records already seen in this pull with the same ``sys_mod_count``;
2. reads the task_sla rows of the page's tasks in a few batched ``GET``s (only when a rule
   set SLA may use native data), and turns them into ``WorkItem.native_slas``;
3. reads each record's memo from the store (the digest of the last journal entry bridge
   added, and what rounded writes came back as) and puts it on the item under
   ``raw["bridge:memo"]``.

The memo travels *on the item* (not in a dict held by the connector) because ``plan`` must
be pure and may run later or elsewhere — a webhook worker plans what ``fetch`` returned —
and because a dict keyed by item would grow with every item of a long sync, while the
item's copy is freed with the item. A colon never occurs in a ServiceNow column name, so
the key cannot hide a field, and rules cannot name it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import requests
from jsonschema import Draft202012Validator

from bridge.connectors import read_secret
from bridge.connectors.base import ConnectorContext, Memos, WebhookEvent
from bridge.connectors.http import RateLimiter, RetryPolicy
from bridge.connectors.servicenow.client import OAuthGrant, ServiceNowClient, plain_value
from bridge.connectors.servicenow.mapping import item_from_record
from bridge.connectors.servicenow.sla import TASK_SLA_FIELDS, native_slas, slas_by_task
from bridge.connectors.servicenow.webhooks import (
    SIGNATURE_SETTINGS_SCHEMA,
    SignatureFormat,
    WebhookConfig,
    parse_delivery,
)
from bridge.connectors.servicenow.writes import (
    MEMO_RAW_KEY,
    RecordMemo,
    marker_digest,
    memo_after_patch,
    memo_key,
    patch_body,
    plan_writes,
    record_ref,
    summary_marker,
    versioned,
)
from bridge.errors import (
    ConfigError,
    ConnectorError,
    ConnectorTransportError,
    InputError,
    ItemNotFoundError,
    WritebackError,
    WriteDeferredError,
)
from bridge.kpi.result import KpiResult
from bridge.model import Classification, WorkItem
from bridge.rules.ast import RuleSet
from bridge.timefmt import format_servicenow_instant, parse_servicenow_instant
from bridge.writeback.plan import Applied, UpsertSummary, WriteOp
from bridge.writeback.values import (
    MAPPED_FIELD_SCHEMA,
    WritebackOptions,
    check_value_maps,
    check_writeback_options,
    split_writeback_fields,
)

__all__ = [
    "BASE_FIELDS",
    "DEFAULT_TABLES",
    "SETTINGS_SCHEMA",
    "ServiceNowConnector",
    "ServiceNowSettings",
    "create_connector",
    "fields_for_rules",
    "parse_settings",
]

log = logging.getLogger("bridge.servicenow")

DEFAULT_TABLES: Mapping[str, str] = MappingProxyType(
    dict.fromkeys(
        (
            "incident",
            "sc_req_item",
            "problem",
            "change_request",
            "pm_project",
            "pm_project_task",
        ),
        "",
    )
)

# What mapping.item_from_record reads, with the dot-walks that make items readable without
# display values: people by name, tasks grouped under their project's number.
BASE_FIELDS: tuple[str, ...] = (
    "sys_id",
    "number",
    "sys_class_name",
    "sys_created_on",
    "sys_updated_on",
    "sys_updated_by",
    "sys_mod_count",
    "state",
    "short_description",
    "priority",
    "assigned_to",
    "assigned_to.name",
    "assignment_group",
    "assignment_group.name",
    "caller_id",
    "caller_id.name",
    "requested_for",
    "requested_for.name",
    "requested_by",
    "requested_by.name",
    "opened_by",
    "opened_by.name",
    "sys_tags",
    "opened_at",
    "resolved_at",
    "closed_at",
    "due_date",
    "start_date",
    "end_date",
    "work_end",
    "effort",
    "work_effort",
    "remaining_effort",
    "time_worked",
    "budget_cost",
    "work_cost",
    "percent_complete",
    "parent",
    "parent.number",
    "top_task",
    "top_task.number",
    "business_service",
    "business_service.name",
)

# Number prefixes of the base system (a number alone is enough for fetch()).
_NUMBER_TABLES: tuple[tuple[str, str], ...] = (
    ("PRJTASK", "pm_project_task"),
    ("SCTASK", "sc_task"),
    ("PTASK", "problem_task"),
    ("CTASK", "change_task"),
    ("RITM", "sc_req_item"),
    ("TASK", "task"),
    ("INC", "incident"),
    ("REQ", "sc_request"),
    ("PRB", "problem"),
    ("CHG", "change_request"),
    ("PRJ", "pm_project"),
)

_TABLE = re.compile(r"[a-z][a-z0-9_]*")
_SYS_ID = re.compile(r"[0-9a-f]{32}")
_FIELD_PATH = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
_REF_PARTS = ("value", "display_value", "link")

# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------

_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
# No pattern: a schema error quotes the value, and a secret pasted here by mistake must not
# end up in a message (a pasted password or token fails maxLength, which quotes nothing).
_ENV: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 100,
    "description": "name of an environment variable holding the secret (not the secret)",
}
_COLUMN: dict[str, Any] = {"type": "string", "pattern": "^(u|x)_[a-z0-9_]+$"}
_CREDENTIALS: dict[str, Any] = {
    "user": {**_TEXT, "description": "the integration user's name (not a secret)"},
    "user_env": _ENV,
    "password_env": _ENV,
    "password_file": {**_TEXT, "description": "a file holding the password"},
}

SETTINGS_SCHEMA: Mapping[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ServiceNow source",
    "description": (
        "A ServiceNow instance read through the Table API. Secrets are never written here: "
        "name the environment variable (…_env) or file (…_file) that holds each one."
    ),
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "connector", "url", "auth"],
    "properties": {
        "name": {"type": "string"},
        "connector": {"const": "servicenow"},
        "url": {
            "type": "string",
            "pattern": r"^https?://[^/?#\s]+/?$",
            "description": "https://<instance>.service-now.com",
        },
        "auth": {
            "description": (
                "Basic: user or user_env, plus password_env or password_file. OAuth: "
                "{oauth: {grant, client_id(_env), client_secret_env|_file, ...}}."
            ),
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                **_CREDENTIALS,
                "oauth": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["grant"],
                    "properties": {
                        "grant": {"enum": ["password", "client_credentials"]},
                        "client_id": _TEXT,
                        "client_id_env": _ENV,
                        "client_secret_env": _ENV,
                        "client_secret_file": _TEXT,
                        **_CREDENTIALS,
                    },
                },
            },
        },
        "scope": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "tables": {
                    "description": "table → encoded-query filter ('' for every record)",
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"},
                    "additionalProperties": {"type": "string"},
                }
            },
        },
        "writeback": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "fields": {
                    "description": "work_type | phase | rule | a KPI name → a u_ (or x_) column",
                    "type": "object",
                    "propertyNames": {
                        "pattern": r"^(work_type|phase|rule|[a-z]+\.[A-Za-z0-9_.-]+)$"
                    },
                    "additionalProperties": {
                        # A column, or {field: column, values: {...}}; if/then/else (not
                        # anyOf) so a mistake is reported as itself, at its place.
                        "if": {"type": "string"},
                        "then": _COLUMN,
                        "else": {
                            **MAPPED_FIELD_SCHEMA,
                            "properties": {**MAPPED_FIELD_SCHEMA["properties"], "field": _COLUMN},
                        },
                    },
                },
                "journal": {"enum": ["work_notes", "comments", "none"]},
            },
        },
        "sla": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "read_task_sla": {"type": "boolean"},
                "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
        },
        "webhook_secret_env": _ENV,
        "webhook_secret_file": _TEXT,
        "webhook_token_env": _ENV,
        "webhook_token_file": _TEXT,
        "webhook_signature": SIGNATURE_SETTINGS_SCHEMA,
        "integration_user": {
            **_TEXT,
            "description": "bridge's ServiceNow user, when auth does not name it",
        },
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "reads_per_second": {"type": "number", "exclusiveMinimum": 0},
                "writes_per_second": {"type": "number", "exclusiveMinimum": 0},
                "concurrency": {"type": "integer", "minimum": 1, "maximum": 64},
            },
        },
        "page_size": {"type": "integer", "minimum": 1, "maximum": 10000},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
        "ca_bundle": _TEXT,
    },
}

_SETTINGS_VALIDATOR = Draft202012Validator(dict(SETTINGS_SCHEMA))


@dataclass(frozen=True, slots=True)
class ServiceNowSettings:
    """A ``sources:`` entry, checked, with defaults applied (secrets not yet read)."""

    name: str
    url: str
    auth: Mapping[str, Any]
    tables: Mapping[str, str]
    writeback_fields: Mapping[str, str]
    writeback_values: Mapping[str, Mapping[str, str]]
    # round and refresh of the figures that have them (writeback.fields.<key>: {field, ...})
    writeback_options: Mapping[str, WritebackOptions]
    journal: Literal["work_notes", "comments"] | None
    read_task_sla: bool
    sla_batch_size: int
    page_size: int
    timeout: float
    ca_bundle: str | None
    reads_per_second: float | None
    writes_per_second: float | None
    concurrency: int
    integration_user: str | None
    raw: Mapping[str, Any]


def _one_of(section: Mapping[str, Any], keys: Sequence[str], where: str, source: str) -> None:
    given = [k for k in keys if k in section]
    if len(given) != 1:
        raise ConfigError(
            f"source {source!r}: {where} needs exactly one of {', '.join(keys)}"
            + (f" (found {', '.join(given)})" if given else "")
        )


def parse_settings(settings: Mapping[str, Any]) -> ServiceNowSettings:
    """Check a ``sources:`` entry (the schema, then what a schema says badly) and apply the
    defaults. Reads no secret.

    :raises ConfigError: every schema problem at once, or the first combination problem.
    """
    errors = sorted(_SETTINGS_VALIDATOR.iter_errors(dict(settings)), key=lambda e: e.path)
    name = str(settings.get("name", "servicenow"))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]
        raise ConfigError(f"source {name!r}: invalid settings:\n  " + "\n  ".join(lines))
    auth = settings["auth"]
    if "oauth" in auth:
        if set(auth) != {"oauth"}:
            raise ConfigError(
                f"source {name!r}: auth has oauth and basic credentials; put the password "
                "grant's user and password inside oauth"
            )
        oauth = auth["oauth"]
        _one_of(oauth, ("client_id", "client_id_env"), "auth.oauth", name)
        _one_of(oauth, ("client_secret_env", "client_secret_file"), "auth.oauth", name)
        if oauth["grant"] == "password":
            _one_of(oauth, ("user", "user_env"), "auth.oauth (password grant)", name)
            _one_of(oauth, ("password_env", "password_file"), "auth.oauth (password grant)", name)
    else:
        _one_of(auth, ("user", "user_env"), "auth", name)
        _one_of(auth, ("password_env", "password_file"), "auth", name)
    webhook = settings
    for kind in ("webhook_secret", "webhook_token"):
        if f"{kind}_env" in webhook and f"{kind}_file" in webhook:
            raise ConfigError(f"source {name!r}: give {kind}_env or {kind}_file, not both")
    writeback = settings.get("writeback", {})
    fields, values = split_writeback_fields(writeback.get("fields", {}))
    targets = list(fields.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ConfigError(
            f"source {name!r}: writeback.fields writes {', '.join(twice)} from two keys"
        )
    options = check_writeback_options(name, writeback.get("fields", {}))
    journal = writeback.get("journal", "work_notes")
    scope = settings.get("scope", {})
    limits = settings.get("limits", {})
    sla = settings.get("sla", {})
    timeout = float(settings.get("timeout", 60.0))
    return ServiceNowSettings(
        name=name,
        url=str(settings["url"]).rstrip("/"),
        auth=auth,
        tables=MappingProxyType(dict(scope.get("tables", DEFAULT_TABLES))),
        writeback_fields=MappingProxyType(dict(fields)),
        writeback_values=MappingProxyType(values),
        writeback_options=MappingProxyType(options),
        journal=None if journal == "none" else journal,
        read_task_sla=bool(sla.get("read_task_sla", True)),
        sla_batch_size=int(sla.get("batch_size", 150)),
        page_size=int(settings.get("page_size", 1000)),
        timeout=timeout,
        ca_bundle=settings.get("ca_bundle"),
        reads_per_second=limits.get("reads_per_second"),
        writes_per_second=limits.get("writes_per_second"),
        concurrency=int(limits.get("concurrency", 4)),
        integration_user=settings.get("integration_user"),
        raw=settings,
    )


def _user(section: Mapping[str, Any], source: str) -> str:
    if "user" in section:
        return str(section["user"])
    env = str(section["user_env"])
    value = os.environ.get(env, "").strip()
    if not value:
        raise ConfigError(f"source {source!r}: the environment variable {env} (user_env) is empty")
    return value


# --------------------------------------------------------------------------------------------
# Fields the rules need
# --------------------------------------------------------------------------------------------


def fields_for_rules(rule_set: RuleSet | None, writeback: Iterable[str] = ()) -> tuple[str, ...]:
    """``sysparm_fields``: what the mapping reads, every ``raw.*`` path the rules, SLAs and
    KPI inputs read (``raw.caller_id.location.name`` dot-walks ``caller_id.location.name``;
    a trailing ``.value`` / ``.display_value`` / ``.link`` names the field itself), and the
    columns bridge writes (to compare before writing)."""
    names = dict.fromkeys(BASE_FIELDS)
    if rule_set is not None:
        for ref in rule_set.field_refs():
            if not ref.is_raw or not ref.raw_path:
                continue
            path = list(ref.raw_path)
            if len(path) > 1 and path[-1] in _REF_PARTS:
                path.pop()
            dotted = ".".join(path)
            if _FIELD_PATH.fullmatch(dotted):
                names.setdefault(dotted)
    for field in writeback:
        names.setdefault(field)
    return tuple(names)


# --------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------


class _MemoryMemos:
    """Memos for a connector built without a store (tests, one-off runs): lost at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], str] = {}

    def get_memo(self, source: str, key: str) -> str | None:
        with self._lock:
            return self._values.get((source, key))

    def set_memo(self, source: str, key: str, value: str) -> None:
        with self._lock:
            self._values[(source, key)] = value


class ServiceNowConnector:
    """A ServiceNow instance as a :class:`~bridge.connectors.base.LiveConnector`.

    :param sleep: how retries wait (tests pass a fake).
    :param retry: the retry policy (attempts, backoff, total budget).
    :param clock: monotonic clock for OAuth token expiry.
    :param wall_clock: the UTC "now" that bounds each sweep (records changed after it are
        left to the next sync, so a sweep always ends).
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        context: ConnectorContext | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = parse_settings(settings)
        s = self.settings
        self.name = s.name
        self.concurrency = s.concurrency
        base = Path(context.base_dir) if context is not None else Path()
        self.base_dir = base
        self._memos: Memos = (
            context.store if context is not None and context.store is not None else _MemoryMemos()
        )
        self._wall_clock = wall_clock
        self._memo_lock = threading.Lock()
        self._locate = context.locate if context is not None else None
        # Choice columns bridge writes: column → (value, label) pairs, read once; and the
        # value maps resolved from them for the rules in force.
        self._choices: dict[str, list[tuple[str, str]]] | None = None
        self._values: Mapping[str, Mapping[str, str]] = {}
        self._values_digest: str | None = None
        self._audit_readable = True
        self._journal_readable = True
        auth, oauth, user = self._credentials()
        verify: bool | str = True
        if s.ca_bundle:
            bundle = Path(s.ca_bundle)
            verify = str(bundle if bundle.is_absolute() else base / bundle)
        self.client = ServiceNowClient(
            s.url,
            auth=auth,
            oauth=oauth,
            who=f"user {user}" if user else "the integration user",
            name=s.name,
            read_limiter=RateLimiter(s.reads_per_second, sleep=sleep)
            if s.reads_per_second
            else None,
            write_limiter=RateLimiter(s.writes_per_second, sleep=sleep)
            if s.writes_per_second
            else None,
            retry=retry,
            timeout=(min(10.0, s.timeout), s.timeout),
            verify=verify,
            sleep=sleep,
            clock=clock,
            pool_size=max(4, s.concurrency * 2),
        )
        self.integration_user = s.integration_user or user
        bridge_fields = set(s.writeback_fields.values())
        if s.journal:
            bridge_fields.add(s.journal)
        # The webhook secrets are read when the first delivery is verified (webhook_config):
        # a sync needs neither, and must run where only the receiver's variables are unset.
        self._webhook_base = WebhookConfig(
            tables=frozenset(s.tables),
            integration_user=self.integration_user,
            bridge_fields=frozenset(bridge_fields),
            signature=SignatureFormat.from_settings(s.raw.get("webhook_signature"), source=s.name),
        )
        self._webhook_config: WebhookConfig | None = None
        self.fields = fields_for_rules(None, s.writeback_fields.values())
        self.read_task_sla = s.read_task_sla
        self._seen: set[tuple[str, str]] = set()
        self._seen_lock = threading.Lock()
        # Counters for the report and the benchmark.
        self.sla_requests = 0
        self.journal_requests = 0
        self.duplicates = 0
        self.skipped: list[tuple[str, str]] = []

    def _credentials(
        self,
    ) -> tuple[requests.auth.AuthBase | None, OAuthGrant | None, str | None]:
        s = self.settings
        auth = s.auth

        def secret(where: Mapping[str, Any], key: str, *at: str) -> str:
            # Named by its key and bridge.yaml line, never by the variable or file it names.
            found = read_secret(
                where, key, source=s.name, base_dir=self.base_dir, at=at, locate=self._locate
            )
            return str(found)

        if "oauth" in auth:
            oauth = auth["oauth"]
            client_id = (
                str(oauth["client_id"])
                if "client_id" in oauth
                else secret(oauth, "client_id", "auth", "oauth")
            )
            user = password = None
            if oauth["grant"] == "password":
                user = _user(oauth, s.name)
                password = secret(oauth, "password", "auth", "oauth")
            grant = OAuthGrant(
                grant=oauth["grant"],
                client_id=client_id,
                client_secret=secret(oauth, "client_secret", "auth", "oauth"),
                user=user,
                password=password,
            )
            return None, grant, user
        user = _user(auth, s.name)
        password = secret(auth, "password", "auth")
        return requests.auth.HTTPBasicAuth(user, password), None, user

    # ---- LiveConnector -------------------------------------------------------------------

    def prepare(self, rule_set: RuleSet) -> None:
        """Ask for what these rules read; read task_sla only if an SLA may use native data."""
        self.fields = fields_for_rules(rule_set, self.settings.writeback_fields.values())
        native = any(sla.source in ("native", "auto") for sla in rule_set.slas.values())
        self.read_task_sla = self.settings.read_task_sla and native
        if self._values_digest != rule_set.digest:
            self._values = self._value_maps(sorted({r.id for r in rule_set.rules}))
            self._values_digest = rule_set.digest

    def _value_maps(self, rule_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Column → bridge's values in the choice list's terms; a ConfigError names every
        bridge value a choice column has no choice for, before anything is written."""
        s = self.settings
        if self._choices is None:
            self._choices = self._read_choices(sorted(set(s.writeback_fields.values())))
        targets = {
            key: (column, self._choices.get(column)) for key, column in s.writeback_fields.items()
        }
        by_key = check_value_maps(self.name, targets, s.writeback_values, rule_ids, self._locate)
        return {s.writeback_fields[key]: mapping for key, mapping in by_key.items()}

    def _read_choices(self, columns: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """``sys_choice`` rows of the columns bridge writes, on the tables in scope and
        ``task``; a column without rows is free text. Unreadable (ACL): nothing checked."""
        if not columns:
            return {}
        tables = sorted({*self.settings.tables, "task"})
        query = (
            f"nameIN{','.join(tables)}^elementIN{','.join(columns)}^inactive=false"
            "^ORDERBYelement^ORDERBYsequence"
        )
        choices: dict[str, dict[str, str]] = {}
        try:
            for page in self.client.list_pages(
                "sys_choice",
                query=query,
                fields=("element", "value", "label"),
                page_size=1000,
            ):
                for row in page.records:
                    column, value = plain_value(row.get("element")), plain_value(row.get("value"))
                    if column and value:
                        choices.setdefault(column, {}).setdefault(
                            value, plain_value(row.get("label")) or value
                        )
        except ConnectorError as exc:
            if not _unreadable(exc):
                raise
            log.warning(
                "%s: cannot read sys_choice (%s); the values of choice columns are written "
                "as mapped, unchecked",
                self.name,
                exc,
            )
            return {}
        return {column: list(values.items()) for column, values in choices.items()}

    def pull(self, *, since: datetime | None = None) -> Iterator[WorkItem]:
        """Records of every table in scope changed at or after ``since`` (all when None),
        oldest first per table; a record that cannot be mapped is logged and skipped."""
        s = self.settings
        until = self._wall_clock().astimezone(UTC).replace(microsecond=0)
        with self._seen_lock:
            self._seen = set()
        self.skipped = []
        for table, filter_text in s.tables.items():
            read = 0
            for page in self.client.changed_records(
                table,
                filter_text=filter_text,
                since=since,
                until=until,
                fields=self.fields,
                page_size=s.page_size,
            ):
                if read == 0:
                    log.info(
                        "%s: %s: %s record(s) changed since %s",
                        s.name,
                        table,
                        page.total if page.total is not None else "an unknown number of",
                        since.isoformat() if since else "the beginning",
                    )
                read += len(page.records)
                fresh = self._fresh(page.records)
                log.debug("%s: %s: read %d, %s left", s.name, table, read, page.total or 0)
                yield from self._items(table, fresh, strict=False)

    def cursor_of(self, item: WorkItem) -> datetime | None:
        """Where the next incremental pull may start: the record's ``sys_updated_on`` as
        the instance stamped it, bridge's own writes included (``item.updated`` leaves
        those out, for the KPIs)."""
        stamp = plain_value(item.raw.get("sys_updated_on")) if isinstance(item.raw, Mapping) else ""
        try:
            return parse_servicenow_instant(stamp) if stamp else item.updated
        except ValueError:
            return item.updated

    def version_of(self, item: WorkItem) -> str:
        """``updated`` plus ``sys_mod_count``: two edits within one second differ."""
        count = item.raw.get("sys_mod_count") if isinstance(item.raw, Mapping) else None
        stamp = item.updated.isoformat() if item.updated is not None else ""
        return f"{stamp}#{count if isinstance(count, str) else ''}"

    def fetch_many(self, keys: Sequence[str]) -> Iterator[WorkItem]:
        """The records among ``keys`` that still exist and are in scope, as they are now:
        one ``sys_idIN`` (or ``numberIN``) query per table and page of keys, so a timer tick
        re-reads its due records in batches. Keys not answered are gone, hidden or out of
        scope."""
        self.skipped = []
        wanted: dict[tuple[str, str], list[str]] = {}
        for key in keys:
            table, _, sys_id = key.partition(":")
            if sys_id:
                sys_id = sys_id.lower()
                if _TABLE.fullmatch(table) and _SYS_ID.fullmatch(sys_id):
                    wanted.setdefault((table, "sys_id"), []).append(sys_id)
                continue
            number = key.strip()
            if number and not set(number) & set("^,=@"):
                for table in self._number_tables(number):
                    wanted.setdefault((table, "number"), []).append(number)
        size = self.settings.sla_batch_size
        for (table, column), values in wanted.items():
            scope = self.settings.tables.get(table, "")
            for start in range(0, len(values), size):
                batch = ",".join(values[start : start + size])
                query = f"{scope}^{column}IN{batch}" if scope else f"{column}IN{batch}"
                for page in self.client.list_pages(
                    table, query=query, fields=self.fields, page_size=self.settings.page_size
                ):
                    yield from self._items(table, page.records, strict=False)

    def fetch(self, key: str) -> WorkItem:
        """The record as it is now: ``table:sys_id`` (from a webhook) or a number."""
        table, _, sys_id = key.partition(":")
        if sys_id:
            sys_id = sys_id.lower()
            if not (_TABLE.fullmatch(table) and _SYS_ID.fullmatch(sys_id)):
                raise ItemNotFoundError(
                    f"{key!r} is not a ServiceNow record key (table:<32-character sys_id>)",
                    connector=self.name,
                    item_key=key,
                )
            record = self.client.get_record(table, sys_id, fields=self.fields)
        else:
            found = self._find_number(key.strip())
            if found is None:
                raise ItemNotFoundError(
                    f"ServiceNow has no record numbered {key} in "
                    f"{', '.join(self._number_tables(key.strip()))} (or an ACL hides it)",
                    connector=self.name,
                    item_key=key,
                )
            table, record = found
        return next(self._items(table, [record], strict=True))

    def plan(
        self,
        item: WorkItem,
        decision: Classification,
        kpis: KpiResult,
        *,
        currency: str | None = None,
    ) -> list[WriteOp]:
        return plan_writes(
            item,
            decision,
            kpis.values,
            kpis.missing,
            fields=self.settings.writeback_fields,
            journal_field=self.settings.journal,
            currency=currency,
            values=self._values,
        )

    def apply(self, item: WorkItem, ops: list[WriteOp]) -> Applied:
        """One PATCH with every planned field and the journal entry; then the memo.

        After a timeout or a 5xx on a PATCH that adds a journal entry, the journal is checked
        for the entry (its ``[bridge summary <digest>]`` line) before the error is reported,
        so an entry that did land is remembered and not added again.
        """
        journal = self.settings.journal
        body = patch_body(ops, journal)
        if not body:
            return Applied()
        table, sys_id = record_ref(item)
        digest = next((op.digest for op in ops if isinstance(op, UpsertSummary)), None)
        fields = [name for name in body if name != journal]
        where = memo_key(table, sys_id)
        # The stored memo, not the item's copy: another job may have written since.
        memo = RecordMemo.from_text(self._memos.get_memo(self.name, where))
        if digest is not None and journal:
            if memo.intent is not None:
                # An earlier PATCH's outcome is unknown (a process killed, an answer lost):
                # the record says whether that very entry landed, before anything is written
                # again — the intent is never overwritten unreconciled. A journal bridge may
                # not read counts as landed: a missing note rather than a second one.
                sent, _, at = memo.intent.partition(" @")
                landed = self.client.journal_has(
                    table, sys_id, journal, summary_marker(sent, at or None)
                )
                if landed is False and _recent(memo.intent_at, self._wall_clock()):
                    # The process that sent it may have died with the PATCH still on its
                    # way: sending another now could make two. The item stays pending.
                    raise WriteDeferredError(
                        f"{item.key}: the outcome of bridge's last work-note write is not known "
                        f"yet (sent at {memo.intent_at}); it is looked for again shortly",
                        retry_at=_grace_ends(memo.intent_at),
                        item_key=item.key,
                    )
                memo = self._update_memo(
                    where,
                    lambda m: replace(
                        m,
                        journal=m.journal if landed is False else sent,
                        intent=None,
                        intent_at=None,
                    ),
                )
            if memo.journal == digest:
                # The record already ends with this entry (an earlier PATCH landed after
                # all, or another job wrote it since this item was read): never add it twice.
                log.info("%s: %s: its work note is already there", self.name, item.key)
                body.pop(journal)
                digest = None
                if not body:
                    return Applied()
            else:  # write-ahead: until confirmed, the entry may or may not exist
                version = plain_value(item.raw.get("sys_mod_count")) or None
                body[journal] = versioned(body[journal], digest, version)
                marker = f"{digest} @{version}" if version else digest
                sent_at = self._wall_clock().astimezone(UTC).isoformat()
                self._update_memo(where, lambda m: replace(m, intent=marker, intent_at=sent_at))
        try:
            stored: Mapping[str, Any] | None = self.client.patch_record(
                table,
                sys_id,
                body,
                fields=[*fields, "sys_id", "sys_mod_count"],
                adds_journal=digest is not None,
            )
        except ConnectorError as exc:
            if digest is None or not journal:
                raise
            version = plain_value(item.raw.get("sys_mod_count")) or None
            # A timeout or a gateway's 502/504 may leave the PATCH running behind it: its
            # intent stays, and is waited for. Any other answer is the instance's own.
            pending = isinstance(exc, ConnectorTransportError) or exc.status in (502, 504)
            landed = (
                self.client.journal_has(table, sys_id, journal, summary_marker(digest, version))
                if pending or (exc.status or 0) >= 500
                else False
            )
            if not landed:
                if not pending:  # refused: nothing was added, nothing to wait for
                    self._update_memo(where, lambda m: replace(m, intent=None, intent_at=None))
                raise
            log.warning(
                "%s: %s: the PATCH failed (%s) but its journal entry is there",
                self.name,
                item.key,
                exc,
            )
            stored = None
        if stored:
            mod = plain_value(stored.get("sys_mod_count"))
            if mod:  # our own write moves the record to the end of this pull's sweep
                with self._seen_lock:
                    self._seen.add((sys_id, mod))
        updated = format_servicenow_instant(item.updated) if item.updated else None
        self._update_memo(
            where,
            lambda m: memo_after_patch(
                m, body, stored, journal_field=journal, digest=digest, updated=updated
            ),
        )
        # A journal entry found after a failed PATCH means the whole PATCH landed.
        written = Applied(len(fields), 1 if digest is not None else 0)
        ignored = [f for f in fields if stored and f not in stored]
        if ignored:
            error = WritebackError(
                f"{item.key}: ServiceNow ignored {', '.join(f'{table}.{f}' for f in ignored)}: "
                f"{table} has no such column, or the integration user cannot read it — check "
                "writeback.fields and the field's read ACL",
                item_key=item.key,
            )
            error.applied = Applied(len(fields) - len(ignored), written.summaries)
            raise error
        return written

    @property
    def webhook_config(self) -> WebhookConfig:
        """What deliveries are judged by, with the secrets read on first use (then kept).

        :raises ConfigError: ``webhook_secret_env`` / ``webhook_token_env`` names a variable
            that is unset, or the ``_file`` cannot be read (the message names the setting,
            never the secret).
        """
        config = self._webhook_config
        if config is None:
            s, base = self.settings, self.base_dir
            read = partial(
                read_secret, source=s.name, required=False, base_dir=base, locate=self._locate
            )
            key = read(s.raw, "webhook_secret")
            token = read(s.raw, "webhook_token")
            config = replace(
                self._webhook_base,
                secret=key.encode("utf-8") if key else None,
                token=token.encode("utf-8") if token else None,
            )
            self._webhook_config = config
        return config

    def webhook_ready(self) -> bool:
        """For ``bridge serve`` before it starts: True when deliveries can be verified, False
        when no webhook secret or token is configured (every delivery would be refused).

        :raises ConfigError: a configured secret cannot be read (see :attr:`webhook_config`).
        """
        config = self.webhook_config
        return config.secret is not None or config.token is not None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify, then parse; the first delivery reads the secrets (:attr:`webhook_config`)."""
        return parse_delivery(headers, body, self.webhook_config)

    def close(self) -> None:
        self.client.close()

    # ---- helpers -------------------------------------------------------------------------

    @property
    def calls(self) -> int:
        return self.client.calls

    def _fresh(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Records not seen yet in this pull with this ``sys_mod_count``."""
        fresh = []
        with self._seen_lock:
            for record in records:
                key = (plain_value(record.get("sys_id")), plain_value(record.get("sys_mod_count")))
                if key in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(key)
                fresh.append(record)
        return fresh

    def _number_tables(self, number: str) -> list[str]:
        for prefix, table in _NUMBER_TABLES:
            if number.upper().startswith(prefix) and number[len(prefix) :].isdigit():
                return [table]
        return list(self.settings.tables)

    def _find_number(self, number: str) -> tuple[str, dict[str, Any]] | None:
        if not number or "^" in number or "," in number:
            return None
        for table in self._number_tables(number):
            record = self.client.find_one(table, f"number={number}", fields=self.fields)
            if record is not None:
                return table, record
        return None

    def _update_before_bridge(
        self, item: WorkItem, memo: RecordMemo, table: str, sys_id: str
    ) -> datetime | None:
        """The record's last update not made by bridge (KPIS.md: bridge's write-back never
        moves its own KPIs): as remembered when bridge wrote it; else the newest audit row
        by anyone else, where the audit history is readable; else its creation. What is
        found without the memo is remembered, so the audit is asked once per record, not
        on every sync of a record bridge has nothing more to write to."""
        remembered = _instant(memo.updated)
        if remembered is not None and (item.updated is None or remembered <= item.updated):
            return remembered
        audited: datetime | None = None
        if self._audit_readable and _SYS_ID.fullmatch(sys_id):
            try:
                row = self.client.find_one(
                    "sys_audit",
                    f"documentkey={sys_id}^user!={self.integration_user}^ORDERBYDESCsys_created_on",
                    fields=("sys_created_on",),
                )
            except ConnectorError as exc:
                if not _unreadable(exc):
                    raise
                log.info("%s: sys_audit is not readable (%s); using creation times", self.name, exc)
                self._audit_readable = False
            else:
                audited = _instant(plain_value(row.get("sys_created_on"))) if row else None
        found = item.created
        if audited is not None and (found is None or audited > found):
            found = audited
        if found is not None:
            stamp = format_servicenow_instant(found)
            self._update_memo(memo_key(table, sys_id), lambda m: replace(m, updated=stamp))
        return found

    def _known_journal(
        self, table: str, records: Sequence[dict[str, Any]], memos: dict[str, RecordMemo]
    ) -> None:
        """The ticket, not the store, is the truth: for records whose memo does not know
        bridge's last journal entry (a new, lost or restored store), read it from the
        records' journals — one query per batch of records, bridge's entries only — and
        remember it, so no summary is added again that the ticket already shows."""
        journal = self.settings.journal
        if not journal or not self._journal_readable:
            return
        unknown = [sys_id for sys_id, memo in memos.items() if memo.journal is None]
        if not unknown:
            return
        by = f"^sys_created_by={self.integration_user}" if self.integration_user else ""
        found: dict[str, str] = {}
        size = self.settings.sla_batch_size
        try:
            for start in range(0, len(unknown), size):
                batch = unknown[start : start + size]
                for page in self.client.list_pages(
                    "sys_journal_field",
                    query=(
                        f"element_idIN{','.join(batch)}^element={journal}{by}"
                        "^valueLIKE[bridge summary ^ORDERBYDESCsys_created_on"
                    ),
                    fields=("element_id", "value"),
                    page_size=1000,
                ):
                    self.journal_requests += 1
                    for row in page.records:
                        owner = plain_value(row.get("element_id"))
                        digest = marker_digest(plain_value(row.get("value")))
                        if owner and digest and owner not in found:
                            found[owner] = digest  # newest first
        except ConnectorError as exc:
            if not _unreadable(exc):
                raise
            log.warning(
                "%s: cannot read sys_journal_field (%s); bridge's last work notes are known "
                "from the store only (grant the integration user read access to it)",
                self.name,
                exc,
            )
            self._journal_readable = False
            return
        for record in records:
            sys_id = plain_value(record.get("sys_id"))
            if sys_id in found:
                real = plain_value(record.get("sys_class_name")) or table
                digest = found[sys_id]
                memos[sys_id] = self._update_memo(
                    memo_key(real, sys_id),
                    lambda m, d=digest: m if m.journal is not None else replace(m, journal=d),  # type: ignore[misc]
                )

    def _update_memo(self, where: str, change: Callable[[RecordMemo], RecordMemo]) -> RecordMemo:
        """Read the stored memo, change it, store it — as one step in this process, so that
        the pull (which remembers what it learnt of a record) and a write of the same record
        never overwrite each other's facts with an older copy. Across processes the item
        lease keeps writers apart."""
        with self._memo_lock:
            memo = change(RecordMemo.from_text(self._memos.get_memo(self.name, where)))
            self._memos.set_memo(self.name, where, memo.to_text())
            return memo

    def _reconcile_intents(
        self, table: str, records: Sequence[dict[str, Any]], memos: dict[str, RecordMemo]
    ) -> None:
        """A record whose last work-note write has an unknown outcome (a process killed
        mid-write) is looked up before it is planned: what the record holds decides which
        summary bridge compares with, so that neither a second copy nor a missing note
        follows. One query per such record (they are rare); an intent recent enough that its
        PATCH may still be on its way is left for the write to wait for."""
        journal = self.settings.journal
        if not journal:
            return
        now = self._wall_clock()
        for record in records:
            sys_id = plain_value(record.get("sys_id"))
            memo = memos.get(sys_id)
            if memo is None or memo.intent is None:
                continue
            real = plain_value(record.get("sys_class_name")) or table
            sent, _, at = memo.intent.partition(" @")
            landed = self.client.journal_has(
                real, sys_id, journal, summary_marker(sent, at or None)
            )
            if landed is False and _recent(memo.intent_at, now):
                continue
            intent = memo.intent

            def settle(
                m: RecordMemo, intent: str = intent, landed: bool | None = landed
            ) -> RecordMemo:
                if m.intent != intent:  # another write settled it meanwhile
                    return m
                journal_now = m.journal if landed is False else intent.partition(" @")[0]
                return replace(m, journal=journal_now, intent=None, intent_at=None)

            memos[sys_id] = self._update_memo(memo_key(real, sys_id), settle)

    def _task_slas(self, sys_ids: Sequence[str]) -> dict[str, list[Mapping[str, Any]]]:
        """task_sla rows of these tasks, in batches of ``sla.batch_size`` per request (a few
        thousand characters of URL each: longer URLs are refused by the platform)."""
        rows: dict[str, list[Mapping[str, Any]]] = {}
        size = self.settings.sla_batch_size
        for start in range(0, len(sys_ids), size):
            batch = sys_ids[start : start + size]
            for page in self.client.list_pages(
                "task_sla",
                query=f"taskIN{','.join(batch)}^ORDERBYsys_id",
                fields=TASK_SLA_FIELDS,
                page_size=max(self.settings.page_size, 1000),  # rows are small
            ):
                self.sla_requests += 1
                for task, task_rows in slas_by_task(page.records).items():
                    rows.setdefault(task, []).extend(task_rows)
        return rows

    def _items(
        self, table: str, records: Sequence[dict[str, Any]], *, strict: bool
    ) -> Iterator[WorkItem]:
        if not records:
            return
        ids = [i for r in records if _SYS_ID.fullmatch(i := plain_value(r.get("sys_id")))]
        slas = self._task_slas(ids) if self.read_task_sla and ids else {}
        memos = {
            sys_id: RecordMemo.from_text(self._memos.get_memo(self.name, memo_key(real, sys_id)))
            for r in records
            if (sys_id := plain_value(r.get("sys_id")))
            and (real := plain_value(r.get("sys_class_name")) or table)
        }
        self._known_journal(table, records, memos)
        self._reconcile_intents(table, records, memos)
        for record in records:
            sys_id = plain_value(record.get("sys_id"))
            real = plain_value(record.get("sys_class_name")) or table
            try:
                memo = memos.get(sys_id) or RecordMemo()
                item = item_from_record(
                    {**record, MEMO_RAW_KEY: memo}, table=table, instance_url=self.settings.url
                )
                if sys_id in slas:
                    item = replace(item, native_slas=native_slas(slas[sys_id]))
                if (
                    self.integration_user
                    and plain_value(record.get("sys_updated_by")) == self.integration_user
                ):
                    item = replace(
                        item, updated=self._update_before_bridge(item, memo, real, sys_id)
                    )
            except InputError as exc:
                if strict:
                    raise
                where = f"{table}:{sys_id}" if sys_id else table
                log.error("%s: %s: skipped, cannot be read: %s", self.name, where, exc)
                self.skipped.append((where, str(exc)))
                continue
            yield item


def _unreadable(exc: ConnectorError) -> bool:
    """A table the integration user may not read, or the instance lacks: ServiceNow answers
    403 for an ACL, 400 for a table that does not exist (a plugin not installed), 404 for
    nothing visible. bridge then does without what that table would have told it."""
    return exc.status in (400, 403, 404)


# How long a work-note PATCH whose sender died may still reach the instance: an intent this
# recent whose entry is not there yet is waited for, not sent again.
INTENT_GRACE = timedelta(seconds=60)


def _grace_ends(stamp: str | None) -> datetime:
    """When an intent recorded at ``stamp`` is no longer waited for."""
    try:
        return datetime.fromisoformat(stamp or "") + INTENT_GRACE
    except ValueError:
        return datetime.now(UTC)


def _recent(stamp: str | None, now: datetime) -> bool:
    if not stamp:
        return False
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError:
        return False
    return at.tzinfo is not None and timedelta(0) <= now - at < INTENT_GRACE


def _instant(text: str | None) -> datetime | None:
    try:
        return parse_servicenow_instant(text) if text else None
    except ValueError:
        return None


def create_connector(settings: Mapping[str, Any], context: ConnectorContext) -> ServiceNowConnector:
    """The ConnectorSpec factory."""
    return ServiceNowConnector(settings, context)
