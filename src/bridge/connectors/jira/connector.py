"""The Jira live connector: discovery, pull, fetch, plan, apply and webhooks.

Its settings (schema, validation, credentials) are in :mod:`bridge.connectors.jira.settings`;
the names callers know are importable from here too.

One instance serves one ``sources:`` entry. It discovers the site once (``GET /myself`` for
bridge's account and time zone, ``GET /field`` to turn field names into ids), then asks each
search for exactly the fields the mapping, the rules, the KPIs and the writeback targets read,
plus the ``bridge.comment`` issue property, so planning needs no further request per issue.

Writes per issue are at most: one ``PUT /issue`` with every changed field; the comment
(``PUT`` in place, or ``POST`` when there is none or a person deleted it); and one ``PUT`` of
the property that remembers the comment's id and digest. An unchanged issue gets none.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, tzinfo
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.connectors import read_secret
from bridge.connectors.base import ConnectorContext, Memos, WebhookEvent
from bridge.connectors.jira.client import Deployment, JiraClient
from bridge.connectors.jira.mapping import (
    ResolvedFields,
    item_from_issue,
    resolve_field_ids,
)
from bridge.connectors.jira.settings import (
    OAUTH_GATEWAY,
    SETTINGS_SCHEMA,
    TEXT_KEYS,
    WRITEBACK_KEY,
    AuthKind,
    JiraSettings,
    parse_settings,
    resolve_auth,
)
from bridge.connectors.jira.webhooks import (
    account_ids,
    authenticate,
    parse_payload,
    require_issue_ref,
)
from bridge.connectors.jira.writes import (
    COMMENT_PROPERTY,
    FieldInfo,
    WriteSpec,
    adf_plain_text,
    comment_body,
    comment_state,
    edit_body,
    field_info,
    plan_writes,
    property_value,
)
from bridge.errors import (
    ConfigError,
    ConnectorError,
    ConnectorTransportError,
    Diagnostic,
    InputError,
    ItemNotFoundError,
    RemoteValidationError,
)
from bridge.kpi.result import KpiResult
from bridge.model import Classification, WorkItem
from bridge.rules.ast import RuleSet
from bridge.rules.compile import did_you_mean
from bridge.timefmt import parse_jira_instant
from bridge.writeback.plan import Applied, SetFields, UpsertSummary, WriteOp
from bridge.writeback.values import check_value_maps

__all__ = [
    "OAUTH_GATEWAY",
    "SETTINGS_SCHEMA",
    "AuthKind",
    "JiraConnector",
    "JiraSettings",
    "make_connector",
    "parse_settings",
    "resolve_auth",
]

log = logging.getLogger("bridge.jira")

FETCH_BATCH = 100  # keys per search when a timer tick re-reads its due issues
COMMENT_MEMO = "jira-comment:"  # + issue key: a comment written whose property was not
STATE_MEMO = "jira-comment-state:"  # + issue key: the property's value (Data Center only)
UNKNOWN_COMMENT = "?"  # the POST may or may not have created the comment
RECENT_COMMENTS = 50_000  # comments this process wrote, kept in case an item is seen again

# What the mapping reads besides the site-specific custom fields.
BASE_FIELDS: tuple[str, ...] = (
    "summary",
    "issuetype",
    "status",
    "resolution",
    "priority",
    "project",
    "labels",
    "components",
    "assignee",
    "reporter",
    "created",
    "updated",
    "resolutiondate",
    "duedate",
    "timeoriginalestimate",
    "timeestimate",
    "timespent",
    "parent",
)
SLA_FIELD_TYPE = "com.atlassian.servicedesk:sd-sla-field"
# Jira Cloud's per-issue write limits (NOTES §6.1), kept on bridge's side as well.
PER_ISSUE_WRITES: tuple[tuple[int, float], ...] = ((20, 2.0), (100, 30.0))


def make_connector(settings: Mapping[str, Any], context: ConnectorContext) -> JiraConnector:
    """The ``ConnectorSpec`` factory: validate, read the credentials, build the client and,
    when the source does not say ``deployment``, ask the site which it is, once, before
    discovery depends on it. The webhook secret is read only when the first delivery is
    verified: a sync needs none, so its variable may be unset where only syncs run."""
    parsed = parse_settings(settings, context.base_dir)
    kind, auth, api_url = resolve_auth(settings, parsed, context.base_dir, locate=context.locate)
    webhook_secret = partial(
        read_secret,
        settings,
        "webhook_secret",
        source=parsed.name,
        required=False,
        base_dir=context.base_dir,
        locate=context.locate,
    )
    client = JiraClient(
        base_url=api_url,
        deployment=parsed.deployment,
        auth=auth,
        reads_per_second=parsed.reads_per_second,
        writes_per_second=parsed.writes_per_second,
        concurrency=parsed.concurrency,
        timeout=parsed.timeout,
        verify=parsed.ca_bundle or True,
    )
    if kind != "oauth" and "deployment" not in settings:
        parsed = replace(parsed, deployment=_site_deployment(client, parsed, kind))
    return JiraConnector(
        parsed,
        client,
        store=context.store,
        webhook_secret=webhook_secret,
        locate=context.locate,
    )


def _site_deployment(client: JiraClient, parsed: JiraSettings, kind: AuthKind) -> Deployment:
    """What the site says it is (OAuth 2.0 never asks: it is Cloud by construction). A PAT
    on a site that says Cloud is a ConfigError, as Cloud accepts no personal access token."""
    try:
        deployment = client.detect_deployment()
        if kind == "pat" and deployment == "cloud":
            raise ConfigError(
                f"source {parsed.name!r}: {parsed.url} says it is Jira Cloud, and a personal "
                "access token (pat_env/pat_file) is for Data Center: Jira Cloud takes email "
                "+ token_env (an API token)"
            )
    except BaseException:
        client.close()
        raise
    log.info("%s: the site is Jira %s (asked, as the source does not say)", parsed.name, deployment)
    return deployment


# --------------------------------------------------------------------------------------------
# What to ask Jira for
# --------------------------------------------------------------------------------------------


def raw_paths(rule_set: RuleSet) -> list[tuple[str, ...]]:
    """Every ``raw.<path>`` the rules, SLAs and KPI settings read, as path segments."""
    out: list[tuple[str, ...]] = []
    for ref in rule_set.field_refs():
        if ref.is_raw and ref.raw_path not in out:
            out.append(ref.raw_path)
    return out


@dataclass(frozen=True, slots=True)
class RequestShape:
    """What every search and fetch asks for."""

    fields: tuple[str, ...]
    expand: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()

    @property
    def changelog(self) -> bool:
        return "changelog" in self.expand


# --------------------------------------------------------------------------------------------
# Per-issue write pacing
# --------------------------------------------------------------------------------------------


class IssueWritePacer:
    """Keeps bridge's writes to one issue under Jira's per-issue limits (20 per 2 s, 100 per
    30 s) by waiting before a write that would exceed them; other issues are not slowed.

    A write counts from when its answer arrived (:meth:`release`), and windows are widened by
    ``margin``, so the server — which counts on arrival — never sees more than the limit.
    """

    def __init__(
        self,
        limits: Sequence[tuple[int, float]] = PER_ISSUE_WRITES,
        *,
        margin: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = tuple((n, w * (1 + margin)) for n, w in limits)
        self.horizon = max((w for _, w in self.limits), default=0.0)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._log: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> None:
        """Wait until one more write to ``key`` fits, and count it."""
        while True:
            with self._lock:
                now = self._clock()
                log = self._log.setdefault(key, deque())
                while log and log[0] <= now - self.horizon:
                    log.popleft()
                wait = 0.0
                for limit, window in self.limits:
                    recent = [t for t in log if t > now - window]
                    if len(recent) >= limit:
                        wait = max(wait, recent[-limit] + window - now)
                if wait <= 0:
                    log.append(now)
                    if len(self._log) > 4096:
                        self._forget(now)
                    return
            self._sleep(wait)

    def release(self, key: str) -> None:
        """The write has been answered: count it from now."""
        with self._lock:
            log = self._log.get(key)
            if log:
                log[-1] = max(log[-1], self._clock())

    def _forget(self, now: float) -> None:
        for key in [k for k, log in self._log.items() if not log or log[-1] <= now - self.horizon]:
            del self._log[key]


# --------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CommentWrite:
    """A comment bridge just wrote, and what its issue property must now record."""

    id: str
    digest: str
    new: bool
    memo: bool


class JiraConnector:
    """:class:`~bridge.connectors.base.LiveConnector` for Jira Cloud and Data Center."""

    def __init__(
        self,
        settings: JiraSettings,
        client: JiraClient,
        *,
        store: Memos | None = None,
        webhook_secret: str | Callable[[], str | None] | None = None,
        pacer: IssueWritePacer | None = None,
        locate: Callable[[tuple[str | int, ...]], Diagnostic] | None = None,
    ) -> None:
        self.settings = settings
        self._locate = locate
        self.name = settings.name
        self.client = client
        self.store = store
        self.concurrency = settings.concurrency
        self._webhook_secret = webhook_secret
        self._pacer = pacer or IssueWritePacer()
        self._lock = threading.RLock()
        self._discovered = False
        self.account_ids: frozenset[str] = frozenset()
        self.time_zone: tzinfo = UTC
        self.fields_by_id: dict[str, FieldInfo] = {}
        self._sla_fields: tuple[str, ...] = ()
        self._resolved = ResolvedFields()
        self._spec = WriteSpec({})
        # A select target's options, read once (None: the site would not say).
        self._options: dict[str, list[str] | None] = {}
        self._edit_screen: tuple[str, dict[str, Any]] | None = None
        self._shape: RequestShape | None = None
        self._shape_digest: str | None = None
        self.skipped: list[tuple[str, str]] = []
        self._written: OrderedDict[str, tuple[str, str]] = OrderedDict()

    # -- discovery ----------------------------------------------------------------------------

    def discover(self) -> None:
        """Once per connector: who bridge is, the time zone JQL dates are read in, and the
        site's fields (ids, names, types) — the writeback targets are resolved here."""
        with self._lock:
            if self._discovered:
                return
            me = self.client.myself()
            self.account_ids = frozenset(account_ids(me))
            zone = me.get("timeZone")
            try:
                self.time_zone = ZoneInfo(zone) if isinstance(zone, str) and zone else UTC
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("%s: unknown time zone %r of the API user; using UTC", self.name, zone)
                self.time_zone = UTC
            entries = self.client.fields()
            self.fields_by_id = {str(e["id"]): field_info(e) for e in entries}
            self._sla_fields = tuple(
                str(e["id"])
                for e in entries
                if isinstance(e.get("schema"), Mapping)
                and e["schema"].get("custom") == SLA_FIELD_TYPE
            )
            names = {fid: info.name for fid, info in self.fields_by_id.items()}
            self._resolved = resolve_field_ids(self.settings.custom_fields, names)
            targets = self._resolve_targets()
            self._options = {
                key: self._read_options(info)
                for key, info in targets.items()
                if info.kind == "option"
            }
            self._spec = WriteSpec(
                targets,
                adf=self.settings.deployment == "cloud",
                tz=self.time_zone,
                comment=self.settings.comment,
                values=self._value_maps(targets, ()),
            )
            self._discovered = True

    def _read_options(self, info: FieldInfo) -> list[str] | None:
        """The options of a select target: from its contexts (admin rights), else from the
        edit screen of one issue in scope; None when neither answers."""
        if self.settings.deployment == "cloud":  # Data Center has no context resource
            try:
                return self.client.field_options(info.id)
            except ConnectorError as exc:
                if exc.status not in (400, 403, 404):
                    raise
        key, screen = self._edit_screen_of_one_issue()
        if not key:
            log.warning(
                "%s: cannot read the options of field %s (no permission to its contexts, and "
                "no issue in scope to read them from); bridge's values are written as mapped",
                self.name,
                info.label,
            )
            return None
        meta = screen.get(info.id)
        allowed = meta.get("allowedValues") if isinstance(meta, Mapping) else None
        if not isinstance(allowed, list):
            log.warning(
                "%s: field %s is not on the edit screen of %s, so bridge cannot write it there",
                self.name,
                info.label,
                key,
            )
            return None
        return [
            str(o["value"])
            for o in allowed
            if isinstance(o, Mapping) and isinstance(o.get("value"), str) and not o.get("disabled")
        ]

    def _edit_screen_of_one_issue(self) -> tuple[str, dict[str, Any]]:
        """(key, editmeta fields) of the first issue in scope, read once for every select;
        ("", {}) when the scope is empty."""
        if self._edit_screen is None:
            found = next(iter(self.client.search(self.jql(None), fields=("key",), page_size=1)), {})
            key = found.get("key")
            self._edit_screen = (
                (key, self.client.edit_meta(key)) if isinstance(key, str) else ("", {})
            )
        return self._edit_screen

    def _value_maps(
        self, targets: Mapping[str, FieldInfo], rule_ids: Sequence[str]
    ) -> dict[str, dict[str, str]]:
        """bridge's values → the site's, per writeback key (see ``writeback.values``)."""
        options = {
            key: (
                info.label,
                [(o, o) for o in found]
                if info.kind == "option" and (found := self._options.get(key)) is not None
                else None,
            )
            for key, info in targets.items()
        }
        return check_value_maps(
            self.name, options, self.settings.writeback_values, rule_ids, self._locate
        )

    def _resolve_targets(self) -> dict[str, FieldInfo]:
        by_name: dict[str, list[FieldInfo]] = {}
        for entry in self.fields_by_id.values():
            by_name.setdefault(entry.name.casefold(), []).append(entry)
        targets: dict[str, FieldInfo] = {}
        used: dict[str, str] = {}
        where = f"source {self.name!r}: writeback.fields"
        for key, ref in self.settings.writeback_fields.items():
            info = self.fields_by_id.get(ref)
            if info is None:
                found = by_name.get(ref.casefold(), [])
                if len(found) > 1:
                    ids = ", ".join(f.id for f in found)
                    raise ConfigError(
                        f"{where}.{key}: {ref!r} names {len(found)} fields ({ids}); write the "
                        "id of the one bridge should set"
                    )
                if not found:
                    writable = sorted(
                        f.name for f in self.fields_by_id.values() if f.kind and f.id != f.name
                    )
                    options = [f.name for f in self.fields_by_id.values()] + list(self.fields_by_id)
                    raise ConfigError(
                        f"{where}.{key}: Jira has no field {ref!r}{did_you_mean(ref, options)} "
                        f"(fields bridge can write: {', '.join(writable[:30])})"
                    )
                info = found[0]
            if info.kind is None:
                raise ConfigError(
                    f"{where}.{key}: field {info.label} is of type {info.schema_type!r}; bridge "
                    "writes number, text, single-select, date and date-time fields"
                )
            if TEXT_KEYS.match(key) and info.kind in ("number", "date", "datetime"):
                raise ConfigError(
                    f"{where}.{key}: {key} is text, but field {info.label} is a "
                    f"{info.kind_words} field; use a text or select field"
                )
            if info.id in used:
                raise ConfigError(
                    f"{where}: {used[info.id]} and {key} both write field {info.label}"
                )
            used[info.id] = key
            targets[key] = info
        return targets

    @property
    def write_spec(self) -> WriteSpec:
        self.discover()
        return self._spec

    # -- LiveConnector ------------------------------------------------------------------------

    def prepare(self, rule_set: RuleSet) -> None:
        """Discover the site (once) and decide what every search and fetch asks for; cheap
        to call again with the same rule set (per webhook item, say)."""
        self.discover()
        with self._lock:
            if self._shape is not None and self._shape_digest == rule_set.digest:
                return
            self._check_writeback_keys(rule_set)
            if "rule" in self._options:
                maps = self._value_maps(self._spec.targets, sorted({r.id for r in rule_set.rules}))
                self._spec = replace(self._spec, values=maps)
            self._shape = self._request_shape(rule_set)
            self._shape_digest = rule_set.digest

    def _check_writeback_keys(self, rule_set: RuleSet) -> None:
        used = rule_set.kpi_groups()
        for key in self.settings.writeback_fields:
            match = WRITEBACK_KEY.match(key)
            sla = match.group("sla") if match else None
            if sla is not None and sla not in rule_set.slas:
                raise ConfigError(
                    f"source {self.name!r}: writeback.fields: {key!r} names SLA {sla!r}, which "
                    f"the rules do not define{did_you_mean(sla, list(rule_set.slas))}"
                )
            group = f"sla.{sla}" if sla is not None else (match.group("group") if match else None)
            if group is not None and group not in used:
                log.warning(
                    "%s: writeback.fields.%s: no rule computes the %s KPIs, so the field will "
                    "only ever be cleared",
                    self.name,
                    key,
                    group,
                )

    def _request_shape(self, rule_set: RuleSet | None) -> RequestShape:
        wanted: list[str] = list(BASE_FIELDS)
        resolved = self._resolved
        for slot in dataclass_fields(resolved):
            wanted.extend(getattr(resolved, slot.name))
        wanted.extend(t.id for t in self._spec.targets.values())
        changelog = False
        if rule_set is not None:
            groups = rule_set.kpi_groups()
            slas = [
                rule_set.slas[g[4:]]
                for g in groups
                if g.startswith("sla.") and g[4:] in rule_set.slas
            ]
            changelog = any(s.source in ("computed", "auto") for s in slas)
            if any(s.source in ("native", "auto") for s in slas):
                wanted.extend(self._sla_fields)
            names = {info.name.casefold(): fid for fid, info in self.fields_by_id.items()}
            for path in raw_paths(rule_set):
                if path[0] == "changelog":
                    changelog = True
                elif path[0] == "fields" and len(path) > 1:
                    wanted.append(path[1])
                    if path[1] not in self.fields_by_id and path[1] not in BASE_FIELDS:
                        known = names.get(path[1].casefold())
                        hint = (
                            f"; {path[1]!r} is the name of {known}, write raw.fields.{known}"
                            if known
                            else did_you_mean(path[1], list(self.fields_by_id))
                        )
                        log.warning(
                            "%s: the rules read raw.fields.%s, but Jira has no field with that "
                            "id%s",
                            self.name,
                            path[1],
                            hint,
                        )
        fields = tuple(dict.fromkeys(wanted))
        return RequestShape(
            fields=fields,
            expand=("changelog",) if changelog else (),
            properties=(COMMENT_PROPERTY,) if self.settings.comment else (),
        )

    @property
    def shape(self) -> RequestShape:
        """What is asked for. Before :meth:`prepare`, the rules' needs are unknown, so
        everything is: all fields and the changelog (correct, if heavier)."""
        if self._shape is None:
            self.discover()
            log.warning(
                "%s: issues read before prepare(rule_set): asking for all fields and the "
                "changelog; call prepare with the rules in force to ask only for what they read",
                self.name,
            )
            with self._lock:
                self._shape = RequestShape(
                    fields=("*all",),
                    expand=("changelog",),
                    properties=(COMMENT_PROPERTY,) if self.settings.comment else (),
                )
        return self._shape

    def jql(self, since: datetime | None = None, *, created_from: datetime | None = None) -> str:
        """The search: the scope, changes since ``since`` (minute precision, in the API user's
        time zone, rounded down so nothing is missed), in creation order.

        Ordered by ``created``, not ``updated``: bridge writes while it pages, and every write
        moves the issue to the end of an ``updated`` order, so offset-based paging (Data
        Center's ``startAt``, and a token that encodes a position) would skip issues that
        slide back over the page boundary and return written ones a second time. Writes never
        change ``created``. The cursor does not need the order: the sync takes the newest
        ``updated`` it saw. Data Center pages by this order, ``created_from`` being the
        creation minute reached (:meth:`_issues_dc`).
        """
        where = f"({self.settings.jql})"
        if since is not None:
            where += f' AND updated >= "{self._jql_time(since)}"'
        if created_from is not None:
            where += f' AND created >= "{self._jql_time(created_from)}"'
        return f"{where} ORDER BY created ASC, key ASC"

    def _jql_time(self, instant: datetime) -> str:
        return instant.astimezone(self.time_zone).strftime("%Y-%m-%d %H:%M")

    def pull(self, *, since: datetime | None = None) -> Iterator[WorkItem]:
        """Every issue in scope updated at or after ``since``, streamed page by page; one
        that cannot be mapped is logged and listed in ``skipped``."""
        self.skipped = []
        shape = self.shape
        for issue in self._issues(since, shape):
            item = self._item(issue, shape)
            if item is not None:
                yield item

    def _issues(self, since: datetime | None, shape: RequestShape) -> Iterator[dict[str, Any]]:
        if self.client.deployment != "cloud":
            yield from self._issues_dc(since, shape)
            return
        # Cloud's nextPageToken is opaque and its documentation promises nothing either way
        # about issues that leave the results between pages; it is followed as given.
        yield from self.client.search(
            self.jql(since),
            fields=shape.fields,
            expand=shape.expand,
            properties=shape.properties,
            page_size=self.settings.page_size,
        )

    def _issues_dc(self, since: datetime | None, shape: RequestShape) -> Iterator[dict[str, Any]]:
        """Data Center: paged by key, so an issue that leaves the results cannot hide another.

        ``startAt`` is a position: an issue deleted, moved or no longer matching while a
        sync pages through the results moves every later one back a place, and the one that
        crosses the page boundary is never read (nor by later incremental syncs: its
        ``updated`` is older than the cursor). So each page is its own query, bounded below
        by the creation minute of the last issue handed out (``created >= M``; JQL dates
        have minute resolution), and starts at that issue's position *within the minute*:
        it is read again as the page's first issue, the anchor. Positions before it are
        issues of minute ``M`` already handed out, so a change anywhere earlier cannot move
        anything; a change among those few moves the anchor, which the page shows (it is
        missing, or not first). Then the minute is read again from ``startAt=0``, skipping
        the ids already handed out (ids survive a move; keys do not). Issues that join the
        results (new ones, created last) come at the end, or, with an older ``created``,
        before the page: they are read only if the page still holds them, as with any
        cursor.

        The anchor costs one place per page, not a request: ``ceil(N / page size)`` search
        calls become ``1 + ceil((N - size) / (size - 1))``, the same or one more, and one
        more for each page whose anchor moved. Every ``startAt`` is a position within one
        creation minute, so Data Center's result window (``startAt + maxResults`` ≤ 10,000)
        is reached only by that many issues created in one minute.
        """
        size = max(2, self.settings.page_size)  # the anchor needs a second place
        minute: datetime | None = None  # the lower bound: created >= minute
        start = 0  # where the anchor is among the issues created since ``minute``
        anchor: str | None = None  # the id of the last issue handed out
        seen: set[str] = set()  # the ids handed out that were created in ``minute``
        while True:
            page = self.client.search_page(
                self.jql(since, created_from=minute),
                start_at=start,
                fields=shape.fields,
                expand=shape.expand,
                properties=shape.properties,
                page_size=size,
            )
            ids = [_ident(issue) for issue in page.issues]
            if anchor is not None and start > 0 and anchor not in ids:
                log.info(
                    "%s: the search results changed while paging; reading the issues created "
                    "since %s again",
                    self.name,
                    minute,
                )
                start, anchor = 0, None
                continue
            for issue, ident in zip(page.issues, ids, strict=True):
                if ident not in seen:
                    yield issue
            if not page.issues:
                return
            end = page.start_at + len(page.issues)
            if page.total is not None and end >= page.total:
                return
            if ids[-1] == anchor:  # nothing after the anchor
                if len(ids) > 1:
                    start = end - 1  # issues joined before it: it moved, go on from there
                    seen.update(ids)
                    continue
                if page.total is None:
                    return
                # A page of one (a server capping pages at 1): no room for the anchor.
                start, anchor = end, None
                continue
            last = _minute_of(page.issues[-1], "created")
            if last is None:
                raise ConnectorError(
                    f"jira: GET /search returned {page.issues[-1].get('key')} without a "
                    "readable created date; the search cannot be paged by it",
                    connector="jira",
                )
            if last == minute:
                start = end - 1
                seen.update(ids)
            else:
                # The page ends with the first issues of minute ``last`` (created is the
                # first sort key): the anchor is the last of them.
                fresh = [
                    i
                    for i, x in zip(ids, page.issues, strict=True)
                    if _minute_of(x, "created") == last
                ]
                minute, start, seen = last, len(fresh) - 1, set(fresh)
            anchor = ids[-1]
            if start + (page.max_results or size) > self.client.result_window:
                raise ConnectorError(
                    f"jira: more than {self.client.result_window:,} issues in scope were "
                    "created within one minute, more than Data Center lets one search page "
                    "through; narrow scope.jql",
                    connector="jira",
                )

    def _complete_changelog(self, issue: dict[str, Any], shape: RequestShape) -> None:
        if not shape.changelog:
            return
        changelog = issue.get("changelog")
        if not isinstance(changelog, Mapping):
            return
        histories = changelog.get("histories")
        total = changelog.get("total")
        have = len(histories) if isinstance(histories, list) else 0
        if isinstance(total, int) and total > have:
            full = self.client.changelog(str(issue.get("key") or issue.get("id")))
            issue["changelog"] = {
                "startAt": 0,
                "maxResults": len(full),
                "total": len(full),
                "histories": full,
            }

    def _known_comment(self, issue: dict[str, Any]) -> None:
        """Data Center's search cannot return issue properties (JRASERVER-62898), so the
        ``bridge.comment`` property comes from the store's copy of what bridge last wrote;
        without one, :meth:`apply` reads the property itself before writing."""
        if self.settings.deployment == "cloud" or not self.settings.comment or not self.store:
            return
        props = issue.get("properties")
        if isinstance(props, Mapping) and COMMENT_PROPERTY in props:
            return
        text = self.store.get_memo(self.name, STATE_MEMO + str(issue.get("key")))
        if not text:
            return
        try:
            value = json.loads(text)
        except ValueError:
            return
        issue["properties"] = {
            **(props if isinstance(props, Mapping) else {}),
            COMMENT_PROPERTY: value,
        }

    def _item(self, issue: dict[str, Any], shape: RequestShape) -> WorkItem | None:
        key = str(issue.get("key") or issue.get("id") or "?")
        try:
            self._known_comment(issue)
            self._complete_changelog(issue, shape)
            return item_from_issue(issue, site_url=self.settings.url, resolved=self._resolved)
        except InputError as exc:
            # One malformed issue must not stop every sync of the source; it is logged and
            # counted, and read again the next time it changes.
            log.error("%s: %s cannot be read and is skipped: %s", self.name, key, exc)
            self.skipped.append((key, str(exc)))
            return None

    def fetch_many(self, keys: Sequence[str]) -> Iterator[WorkItem]:
        """The issues among ``keys`` that still exist and are in scope, as they are now: one
        search per 100 keys (a timer tick re-reads its due items in batches, not one by
        one). Keys not answered are gone, hidden or out of scope. Jira refuses a whole
        ``key in (...)`` search naming a key that no longer exists; that batch is then read
        issue by issue."""
        self.skipped = []
        shape = self.shape
        refs = [require_issue_ref(k) for k in keys]
        for start in range(0, len(refs), FETCH_BATCH):
            batch = refs[start : start + FETCH_BATCH]
            jql = f"({self.settings.jql}) AND key in ({', '.join(batch)}) ORDER BY key ASC"
            try:
                if self.client.deployment == "cloud":
                    issues = list(
                        self.client.search(
                            jql,
                            fields=shape.fields,
                            expand=shape.expand,
                            properties=shape.properties,
                            page_size=FETCH_BATCH,
                        )
                    )
                else:
                    issues = list(
                        self.client.search_page(
                            jql,
                            start_at=0,
                            fields=shape.fields,
                            expand=shape.expand,
                            properties=shape.properties,
                            page_size=FETCH_BATCH,
                        ).issues
                    )
            except RemoteValidationError:
                for key in batch:
                    try:
                        yield self.fetch(key)
                    except ItemNotFoundError:
                        continue
                continue
            for issue in issues:
                item = self._item(issue, shape)
                if item is not None:
                    yield item

    def fetch(self, key: str) -> WorkItem:
        """The issue as it is now; ItemNotFoundError when it is gone or hidden."""
        # Not an issue key or id (``..``, NUL, ...): refused before any request is made.
        key = require_issue_ref(key)
        shape = self.shape
        issue = self.client.issue(
            key, fields=shape.fields, expand=shape.expand, properties=shape.properties
        )
        self._known_comment(issue)
        self._complete_changelog(issue, shape)
        return item_from_issue(issue, site_url=self.settings.url, resolved=self._resolved)

    def plan(
        self,
        item: WorkItem,
        decision: Classification,
        kpis: KpiResult,
        *,
        currency: str | None = None,
    ) -> list[WriteOp]:
        """Only what changes: the differing fields and, when its digest changed, the comment."""
        return plan_writes(item, decision, kpis, self.write_spec, currency=currency)

    def apply(self, item: WorkItem, ops: list[WriteOp]) -> Applied:
        """At most two writes: the comment (edited in place, or added), then one
        ``PUT /issue`` carrying the changed fields *and* the ``bridge.comment`` property that
        finds the comment again. A refused field does not lose the comment: the property is
        then written on its own and the field error raised. A 404 on the issue stops at once
        (ItemNotFoundError: the sync records it as skipped)."""
        key = item.key
        fields = next((op.values for op in ops if isinstance(op, SetFields) and op.values), None)
        summary = next((op for op in ops if isinstance(op, UpsertSummary)), None)
        first_error: ConnectorError | None = None
        comment: _CommentWrite | None = None
        if summary is not None:
            try:
                comment = self._write_comment(item, summary)
            except ItemNotFoundError:
                raise
            except ConnectorError as exc:
                first_error = exc
        body: dict[str, Any] = edit_body(fields, self.write_spec) if fields else {}
        if comment is not None:
            body["properties"] = [
                {"key": COMMENT_PROPERTY, "value": property_value(comment.id, comment.digest)}
            ]
        posted = Applied(0, 1 if comment is not None else 0)
        if not body:
            if first_error is not None:
                raise first_error
            return posted
        try:
            self._edit(key, body)
        except ItemNotFoundError as exc:
            exc.applied = posted
            raise
        except ConnectorError as exc:
            exc.applied = posted
            if comment is not None and fields and isinstance(exc, RemoteValidationError):
                # The fields were refused; still record the comment so it is never duplicated.
                try:
                    self._edit(key, {"properties": body["properties"]})
                except ConnectorError:
                    self._comment_unrecorded(key, comment)
                else:
                    self._comment_recorded(key, comment)
            elif comment is not None:
                self._comment_unrecorded(key, comment)
            if first_error is not None:
                log.error("%s: %s: the comment failed too: %s", self.name, key, first_error)
            raise exc from None
        if comment is not None:
            self._comment_recorded(key, comment)
        written = Applied(len(fields or {}), posted.summaries)
        if first_error is not None:
            first_error.applied = written
            raise first_error
        return written

    def _edit(self, key: str, body: Mapping[str, Any]) -> None:
        self._write(
            key, partial(self.client.edit_issue, key, body, notify_users=self.settings.notify_users)
        )

    def _write(self, key: str, send: Callable[[], Any]) -> Any:
        self._pacer.acquire(key)
        try:
            return send()
        finally:
            self._pacer.release(key)

    def _write_comment(self, item: WorkItem, op: UpsertSummary) -> _CommentWrite | None:
        """Edit bridge's comment in place, or add it; what the property must then say (None
        when this process already wrote and recorded exactly this).

        Where the comment is, newest knowledge first: what this process wrote since the item
        was read; the issue's property; a memo left by a write whose outcome is unknown (the
        POST's answer was lost: look for the comment before adding another).
        """
        key = item.key
        recent = self._recent(key)
        if recent is not None and recent == (recent[0], op.digest) and recent[0] != UNKNOWN_COMMENT:
            return None  # this process wrote exactly this moments ago; the item data is older
        comment_id, _ = comment_state(item.raw)
        if recent is not None and recent[0] != UNKNOWN_COMMENT:
            comment_id = recent[0]
        memo: str | None = None
        if comment_id is None:
            memo = self._memo(key) or (recent[0] if recent is not None else None)
            if memo:
                comment_id = self._find_own_comment(key) if memo == UNKNOWN_COMMENT else memo
        if comment_id is None and recent is None and self.settings.deployment != "cloud":
            # Data Center: the search had no property and the store no copy of it; read it.
            current = self.client.get_property(key, COMMENT_PROPERTY)
            known_id, known_digest = comment_state({"properties": {COMMENT_PROPERTY: current}})
            if known_id is not None and known_digest == op.digest:
                self._written_ok(key, known_id, op.digest)
                return None
            comment_id = known_id
        body = comment_body(op.text)
        if comment_id is not None:
            try:
                self._write(
                    key,
                    lambda: self.client.update_comment(
                        key, str(comment_id), body, notify_users=self.settings.notify_users
                    ),
                )
                return _CommentWrite(str(comment_id), op.digest, new=False, memo=bool(memo))
            except ItemNotFoundError:
                log.info(
                    "%s: %s: bridge's comment %s is gone; adding it again",
                    self.name,
                    key,
                    comment_id,
                )
        # Write-ahead intent: until the property records the new comment, the store says a
        # comment may exist, so a process killed between the POST and the property (or a
        # POST whose answer was lost) makes the next run look for it instead of adding one.
        self._set_memo(key, UNKNOWN_COMMENT)
        try:
            created = self._write(key, lambda: self.client.add_comment(key, body))
        except ConnectorTransportError:
            # Jira may have created it before the connection failed: the intent stays.
            self._remember(key, UNKNOWN_COMMENT, "")
            raise
        except ConnectorError:
            self._set_memo(key, memo or "")  # refused: nothing was created
            raise
        comment = str(created["id"])
        self._set_memo(key, comment)  # it exists, here: edit it if the property never lands
        return _CommentWrite(comment, op.digest, new=True, memo=True)

    def _comment_recorded(self, key: str, comment: _CommentWrite) -> None:
        self._written_ok(key, comment.id, comment.digest)
        if comment.memo:
            self._set_memo(key, "")

    def _comment_unrecorded(self, key: str, comment: _CommentWrite) -> None:
        """The comment was written but its property was not: remember where it is."""
        if comment.new or comment.memo:
            self._set_memo(key, comment.id)
        self._remember(key, comment.id, "")

    def _written_ok(self, key: str, comment_id: str, digest: str) -> None:
        self._remember(key, comment_id, digest)
        if self.settings.deployment != "cloud" and self.store is not None:
            state = json.dumps(property_value(comment_id, digest), sort_keys=True)
            self.store.set_memo(self.name, STATE_MEMO + key, state)

    def _recent(self, key: str) -> tuple[str, str] | None:
        with self._lock:
            return self._written.get(key)

    def _remember(self, key: str, comment_id: str, digest: str) -> None:
        with self._lock:
            self._written[key] = (comment_id, digest)
            self._written.move_to_end(key)
            while len(self._written) > RECENT_COMMENTS:
                self._written.popitem(last=False)

    def _memo(self, key: str) -> str | None:
        return self.store.get_memo(self.name, COMMENT_MEMO + key) if self.store else None

    def _set_memo(self, key: str, value: str) -> None:
        if self.store is not None:
            self.store.set_memo(self.name, COMMENT_MEMO + key, value)

    def _find_own_comment(self, key: str) -> str | None:
        """bridge's comment on an issue whose property was never written (the POST's answer
        was lost): bridge's account, and the summary's marker line."""
        for comment in self.client.comments(key):
            ids = account_ids(comment.get("author"))
            if ids & self.account_ids and "bridge summary " in adf_plain_text(comment.get("body")):
                return str(comment.get("id"))
        return None

    def _read_webhook_secret(self) -> str | None:
        """The webhook secret, read on first use and then kept (``webhook_secret`` may be a
        reader, so that building the connector for a sync never needs it).

        :raises ConfigError: webhook_secret_env names an unset variable, or the file cannot
            be read; the message names the setting, never the secret.
        """
        source = self._webhook_secret
        if callable(source):
            source = source()
            self._webhook_secret = source
        return source

    def webhook_ready(self) -> bool:
        """For ``bridge serve`` before it starts: True when deliveries can be verified (or
        unsigned ones are allowed), False when no webhook secret is configured (every
        delivery would be refused).

        :raises ConfigError: the configured secret cannot be read.
        """
        return self._read_webhook_secret() is not None or self.settings.webhook_unsigned

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify, then parse. The signature is checked before anything else; the first
        delivery reads the webhook secret (a ConfigError naming its variable when unset,
        which the receiver answers with 500 and logs), and the first verified one may
        trigger the one-time discovery (bridge's account id and the writeback fields, which
        loop prevention needs)."""
        authenticate(
            headers,
            body,
            secret=self._read_webhook_secret(),
            allow_unsigned=self.settings.webhook_unsigned,
        )
        self.discover()
        spec = self._spec
        return parse_payload(
            headers,
            body,
            bridge_account_id=self.account_ids,
            bridge_field_ids=spec.field_ids,
            bridge_field_names=spec.field_names,
        )

    def close(self) -> None:
        self.client.close()


def _ident(issue: Mapping[str, Any]) -> str:
    """What identifies an issue across pages: its id, which a move to another project (a
    new key) keeps."""
    return str(issue.get("id") or issue.get("key"))


def _minute_of(issue: Mapping[str, Any], name: str) -> datetime | None:
    fields = issue.get("fields")
    value = fields.get(name) if isinstance(fields, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        return parse_jira_instant(value).replace(second=0, microsecond=0)
    except ValueError:
        return None
