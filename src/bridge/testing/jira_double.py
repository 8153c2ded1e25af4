"""A stateful fake Jira (Cloud v3/v2 or Data Center v2) served over real HTTP on 127.0.0.1.

Connector, sync and benchmark code talks to it exactly as to a site: ``requests`` against a
base URL, with auth, paging, validation errors, rate limits and faults. What it does and
refuses follows the project's Jira notes (``search/jql`` paging without totals, 410 on the
removed ``/search``, per-field-type PUT validation, ADF in v3, per-issue write limits), so a
client that passes here has met the behaviours that break clients in production.

With ``spec`` set, every ``/rest/api/3`` request is first checked against Atlassian's OpenAPI
document and refused with 400 when the document does not allow it.

Out of scope: transitions, issue creation over REST, worklogs, attachments, permissions
beyond "the comment's author may edit it", and JQL beyond the subset described in
:class:`JiraDouble`.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import math
import re
import socket
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from bridge.testing.openapi import OpenApiSpec

__all__ = [
    "HUMAN_ACCOUNT_ID",
    "JiraDouble",
    "JqlError",
    "RecordedRequest",
    "adf_text",
    "adf_to_text",
]

Deployment = Literal["cloud", "datacenter"]

HUMAN_ACCOUNT_ID = "human-account"
"""The account behind :meth:`JiraDouble.touch`, seeded comments and webhooks by default."""

_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
_NOT_ON_SCREEN = "Field '{0}' cannot be set. It is not on the appropriate screen, or unknown."
_UNAUTHENTICATED = "Client must be authenticated to access this resource."
_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)
_ADF_REQUIRED = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
_EMBEDDED_CHANGELOG_CAP = {"search": 20, "issue": 100}
_OPT = "com.atlassian.jira.plugin.system.customfieldtypes:"
_TOO_LONG = "The entered text is too long. It exceeds the allowed limit of 255 characters."


# ==========================================================================================
# Small value helpers
# ==========================================================================================


def jira_time(at: datetime) -> str:
    """Jira's REST form ``2023-03-01T11:34:49.730+0000`` (UTC, milliseconds, no colon)."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def _parse_jira_time(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, fmt).astimezone(UTC)
        except ValueError:
            continue
    return None


def adf_text(text: str) -> dict[str, Any]:
    """A minimal ADF document holding ``text`` as paragraphs (one per line)."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_to_text(doc: Any) -> str:
    """The plain text of an ADF document, blocks on separate lines (what v2 shows)."""
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, Mapping):
        return ""
    if doc.get("type") == "text":
        return str(doc.get("text", ""))
    if doc.get("type") == "hardBreak":
        return "\n"
    parts = [adf_to_text(child) for child in doc.get("content") or []]
    block = doc.get("type") in ("doc", "bulletList", "orderedList", "listItem")
    return ("\n" if block else "").join(parts)


def _is_adf(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and value.get("type") == "doc"
        and value.get("version") == 1
        and isinstance(value.get("content"), list)
    )


def _errors(*messages: str, errors: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"errorMessages": list(messages), "errors": dict(errors or {})}


# ==========================================================================================
# Records and faults
# ==========================================================================================


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the double answered, as the client sent it, and the status it got."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: Any | None
    status: int


@dataclass(slots=True)
class _Fault:
    status: int | None
    times: int
    method: str | None
    path: re.Pattern[str] | None
    retry_after: float | None
    reason: str | None
    delay: float | None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass(slots=True)
class _Response:
    status: int
    body: Any = None  # JSON value, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"


class _Reject(Exception):
    """Ends a handler with an error response."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = _Response(status, body, dict(headers or {}))


# ==========================================================================================
# Fields
# ==========================================================================================

# What a PUT may send for a field, by the kind of value it holds.
_Kind = Literal[
    "number", "string", "richtext", "option", "options", "labels", "date", "datetime",
    "user", "named", "components", "readonly",
]  # fmt: skip


@dataclass(slots=True)
class _Field:
    id: str
    name: str
    schema: dict[str, Any]
    kind: _Kind
    custom: bool = False
    navigable: bool = True
    options: list[dict[str, str]] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        """``FieldDetails`` as ``GET /field`` returns it."""
        clause = [self.id] if not self.custom else [f"cf[{self.id.rsplit('_', 1)[1]}]"]
        if self.custom:
            clause.append(self.name)
        return {
            "id": self.id,
            "key": self.id,
            "name": self.name,
            "untranslatedName": self.name,
            "custom": self.custom,
            "orderable": self.kind != "readonly",
            "navigable": self.navigable,
            "searchable": True,
            "clauseNames": clause,
            "schema": dict(self.schema),
        }


def _system(fid: str, name: str, type_: str, kind: _Kind, **extra: Any) -> _Field:
    schema: dict[str, Any] = {"type": type_, "system": fid}
    items = extra.pop("items", None)
    if items:
        schema["items"] = items
    return _Field(fid, name, schema, kind, **extra)


def _custom(num: int, name: str, type_: str, custom: str, kind: _Kind, **extra: Any) -> _Field:
    schema: dict[str, Any] = {"type": type_, "custom": custom, "customId": num}
    items = extra.pop("items", None)
    if items:
        schema["items"] = items
    return _Field(f"customfield_{num}", name, schema, kind, custom=True, **extra)


def _default_fields() -> list[_Field]:
    phases = ["Initiation", "Planning", "Execution", "Monitoring", "Closing"]
    services = ["Email", "Network", "Payroll"]
    return [
        _system("summary", "Summary", "string", "string"),
        _system("description", "Description", "string", "richtext"),
        _system("environment", "Environment", "string", "richtext"),
        _system("status", "Status", "status", "readonly"),
        _system("issuetype", "Issue Type", "issuetype", "named"),
        _system("project", "Project", "project", "readonly"),
        _system("priority", "Priority", "priority", "named"),
        _system("assignee", "Assignee", "user", "user"),
        _system("reporter", "Reporter", "user", "user"),
        _system("created", "Created", "datetime", "readonly"),
        _system("updated", "Updated", "datetime", "readonly"),
        _system("resolutiondate", "Resolved", "datetime", "readonly"),
        _system("resolution", "Resolution", "resolution", "readonly"),
        _system("duedate", "Due date", "date", "date"),
        _system("labels", "Labels", "array", "labels", items="string"),
        _system("components", "Components", "array", "components", items="component"),
        _system("timeoriginalestimate", "Original estimate", "number", "readonly"),
        _system("timeestimate", "Remaining Estimate", "number", "readonly"),
        _system("timespent", "Time Spent", "number", "readonly"),
        _system("parent", "Parent", "issuelink", "readonly"),
        _system("comment", "Comment", "comments-page", "readonly", navigable=False),
        _custom(10010, "SPI", "number", _OPT + "float", "number"),
        _custom(10011, "Work type", "string", _OPT + "textfield", "string"),
        _custom(
            10012,
            "Phase",
            "option",
            _OPT + "select",
            "option",
            options=[{"id": str(10100 + i), "value": v} for i, v in enumerate(phases)],
        ),
        _custom(10013, "Next breach", "datetime", _OPT + "datetime", "datetime"),
        _custom(10014, "KPI notes", "string", _OPT + "textarea", "richtext"),
        _custom(10015, "Story point estimate", "number", _OPT + "float", "number"),
        _custom(10016, "Start date", "date", _OPT + "datepicker", "date"),
        _custom(10017, "Target end", "date", _OPT + "datepicker", "date"),
        _custom(
            10018,
            "Affected services",
            "array",
            _OPT + "multiselect",
            "options",
            items="option",
            options=[{"id": str(10200 + i), "value": v} for i, v in enumerate(services)],
        ),
        _custom(
            10020,
            "Time to resolution",
            "sd-servicelevelagreement",
            "com.atlassian.servicedesk:sd-sla-field",
            "readonly",
        ),
        _custom(
            10021,
            "Satisfaction",
            "sd-feedback",
            "com.atlassian.servicedesk:sd-request-feedback",
            "readonly",
        ),
        _custom(
            10022,
            "Request Type",
            "sd-customerrequesttype",
            "com.atlassian.servicedesk:vp-origin",
            "readonly",
        ),
    ]


_STATUS_CATEGORY = {
    "to do": "new",
    "open": "new",
    "backlog": "new",
    "in progress": "indeterminate",
    "in review": "indeterminate",
    "waiting for support": "indeterminate",
    "done": "done",
    "closed": "done",
    "resolved": "done",
}
_CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
_CATEGORY_IDS = {"new": 2, "indeterminate": 4, "done": 3}


# ==========================================================================================
# Issues
# ==========================================================================================


@dataclass(slots=True)
class _Comment:
    id: str
    author: str
    body: dict[str, Any]  # ADF
    created: datetime
    updated: datetime
    update_author: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Issue:
    id: str
    key: str
    project: str
    number: int
    fields: dict[str, Any]
    created: datetime
    updated: datetime
    histories: list[dict[str, Any]] = field(default_factory=list)
    comments: list[_Comment] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)


# ==========================================================================================
# JQL
# ==========================================================================================


class JqlError(ValueError):
    """A JQL query the double cannot run; the message is what Jira would answer with."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~)
      | (?P<punct>[(),])
      | (?P<word>[^\s"'(),=!<>~]+)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
_RELATIVE = re.compile(r"([+-]?)(\d+)([wdhm])")
_JQL_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # string | op | punct | word | end
    text: str
    pos: int

    @property
    def keyword(self) -> str | None:
        low = self.text.lower()
        return low if self.kind == "word" and low in _KEYWORDS else None


def _tokenize(jql: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(jql):
        if not jql[pos:].strip():
            break
        m = _TOKEN.match(jql, pos)
        if m is None or m.end() == pos:
            raise JqlError(
                f"Error in the JQL Query: The character '{jql[pos:].lstrip()[:1]}' is a "
                f"reserved JQL character. (line 1, character {pos + 1})"
            )
        kind = m.lastgroup or "word"
        text = m.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Tok(kind, text, m.start(kind) + 1))
        pos = m.end()
    tokens.append(_Tok("end", "", len(jql) + 1))
    return tokens


@dataclass(frozen=True, slots=True)
class _Value:
    text: str
    function: bool = False


_Predicate = Callable[[_Issue], bool]


@dataclass(frozen=True, slots=True)
class _Query:
    where: _Predicate | None
    order: tuple[tuple[str, bool], ...]  # (field, descending)


class _Parser:
    """Recursive descent over the JQL subset; builds a predicate as it goes."""

    def __init__(self, jql: str, double: JiraDouble) -> None:
        self.tokens = _tokenize(jql)
        self.i = 0
        self.double = double

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def fail(self, expecting: str) -> JqlError:
        tok = self.tok
        got = "the end of the query" if tok.kind == "end" else f"'{tok.text}'"
        return JqlError(
            f"Error in the JQL Query: Expecting {expecting} but got {got}. "
            f"(line 1, character {tok.pos})"
        )

    def take_keyword(self, word: str) -> bool:
        if self.tok.keyword == word:
            self.i += 1
            return True
        return False

    def parse(self) -> _Query:
        where: _Predicate | None = None
        if self.tok.kind != "end" and self.tok.keyword != "order":
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.take_keyword("order"):
            if not self.take_keyword("by"):
                raise self.fail("'by'")
            while True:
                name = self.field_name()
                desc = False
                if self.take_keyword("desc"):
                    desc = True
                else:
                    self.take_keyword("asc")
                order.append((self.double._sort_field(name), desc))
                if self.tok.text != ",":
                    break
                self.i += 1
            if len(order) > 7:
                raise JqlError("The ORDER BY clause may have at most 7 fields.")
        if self.tok.kind != "end":
            raise self.fail("either 'OR' or 'AND'" if where else "a field name")
        return _Query(where, tuple(order))

    def or_expr(self) -> _Predicate:
        parts = [self.and_expr()]
        while self.take_keyword("or"):
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda issue: any(p(issue) for p in parts)

    def and_expr(self) -> _Predicate:
        parts = [self.unary()]
        while self.take_keyword("and"):
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda issue: all(p(issue) for p in parts)

    def unary(self) -> _Predicate:
        if self.take_keyword("not"):
            inner = self.unary()
            return lambda issue: not inner(issue)
        if self.tok.text == "(" and self.tok.kind == "punct":
            self.i += 1
            inner = self.or_expr()
            if self.tok.text != ")":
                raise self.fail("')'")
            self.i += 1
            return inner
        return self.clause()

    def field_name(self) -> str:
        tok = self.tok
        if tok.kind not in ("word", "string") or tok.keyword:
            raise self.fail("a field name")
        self.i += 1
        return tok.text

    def clause(self) -> _Predicate:
        name = self.field_name()
        tok = self.tok
        if tok.kind == "op":
            self.i += 1
            return self.double._jql_compare(name, tok.text, self.value())
        if self.take_keyword("in"):
            return self.double._jql_in(name, self.values(), negate=False)
        if self.take_keyword("not"):
            if self.take_keyword("in"):
                return self.double._jql_in(name, self.values(), negate=True)
            raise self.fail("'IN'")
        if self.take_keyword("is"):
            negate = self.take_keyword("not")
            if not (self.take_keyword("empty") or self.take_keyword("null")):
                raise self.fail("'EMPTY'")
            return self.double._jql_empty(name, negate=negate)
        raise self.fail("operator")

    def value(self) -> _Value:
        tok = self.tok
        if tok.keyword in ("empty", "null"):
            self.i += 1
            return _Value("", function=False)
        if tok.kind == "string":
            self.i += 1
            return _Value(tok.text)
        if tok.kind != "word" or tok.keyword:
            raise self.fail("either a value, 'EMPTY' or a function")
        self.i += 1
        if self.tok.text == "(":
            self.i += 1
            while self.tok.text != ")":
                if self.tok.kind == "end":
                    raise self.fail("')'")
                self.i += 1
            self.i += 1
            return _Value(tok.text.lower(), function=True)
        return _Value(tok.text)

    def values(self) -> list[_Value]:
        if self.tok.text != "(":
            raise self.fail("'('")
        self.i += 1
        out = [self.value()]
        while self.tok.text == ",":
            self.i += 1
            out.append(self.value())
        if self.tok.text != ")":
            raise self.fail("')'")
        self.i += 1
        return out


# ==========================================================================================
# The double
# ==========================================================================================


class JiraDouble:
    """A fake Jira site. Start it, point a client at :attr:`url`, inspect what happened.

    State (issues, fields, comments, properties) lives in memory; helpers seed and change it
    as a human would. Every answered request is kept in :attr:`requests`.

    Search (``/search/jql`` on Cloud, ``/rest/api/2/search`` on Data Center) understands this
    JQL: clauses ``field OP value`` with ``= != > >= < <= ~ !~``, ``IN (...)``, ``NOT IN``,
    ``IS [NOT] EMPTY``, joined by ``AND``/``OR``/``NOT`` and parentheses, then
    ``ORDER BY field [ASC|DESC], ...`` (at most 7). Fields: ``project``, ``key``/``issuekey``,
    ``id``, ``status``, ``statusCategory``, ``issuetype``/``type``, ``priority``,
    ``resolution``, ``assignee``, ``reporter``, ``labels``, ``summary``, ``text``,
    ``created``, ``updated``, ``resolved``, ``due``, and any field by id, ``cf[n]`` or name.
    Dates are ``"YYYY-MM-DD HH:mm"``, ``"YYYY/MM/DD"``, relative ``-15m``/``-2h``/``-1d``/
    ``-1w``, ``now()`` or ``startOfDay()``, in the site's ``time_zone``. ``currentUser()``
    is the caller. Without ``ORDER BY`` results come in creation (id) order. On Cloud a
    query without a restriction is refused, as Jira refuses unbounded JQL.
    """

    def __init__(
        self,
        *,
        deployment: Deployment = "cloud",
        latency: float = 0.0,
        max_page: int = 100,
        spec: OpenApiSpec | None = None,
        email: str = "bot@example.com",
        api_token: str = "token",  # noqa: S107 - the double's own test credential
        pat: str = "pat",
        oauth_token: str | None = None,
        account_id: str = "bridge-bot-account",
        not_editable: Iterable[str] = (),
        write_limits: Sequence[tuple[int, float]] = ((20, 2.0), (100, 30.0)),
        max_comments: int = 5000,
        time_zone: str = "UTC",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if deployment not in ("cloud", "datacenter"):
            raise ValueError(f"deployment must be 'cloud' or 'datacenter', not {deployment!r}")
        self.deployment: Deployment = deployment
        self.latency = latency
        self.max_page = max_page
        self.spec = spec
        self.email = email
        self.api_token = api_token
        self.pat = pat
        self.oauth_token = oauth_token
        self.account_id = account_id
        self.write_limits = tuple(write_limits)
        self.max_comments = max_comments
        self.time_zone = ZoneInfo(time_zone)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base = ""
        self._fields: dict[str, _Field] = {f.id: f for f in _default_fields()}
        self.not_editable: set[str] = {self._field_ref(f) for f in not_editable}
        self._users: dict[str, str] = {
            account_id: "Bridge Bot",
            HUMAN_ACCOUNT_ID: "Pat Human",
        }
        self._issues: dict[str, _Issue] = {}
        self._by_id: dict[str, str] = {}
        self._deleted: dict[str, _Issue] = {}
        self._next_id = 10000
        self._next_number: dict[str, int] = {}
        self._next_history = 100000
        self._next_comment = 20000
        self._version = 0
        self._search_cache: dict[tuple[str, str, int], list[_Issue]] = {}
        self._caller = account_id  # currentUser() while a query compiles
        self._writes: dict[str, deque[float]] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> str:
        """Serve on an ephemeral port of 127.0.0.1; returns the base URL."""
        if self._server is not None:
            return self._base
        handler = type("_BoundHandler", (_Handler,), {"double": self})
        server = _Server(("127.0.0.1", 0), handler)
        self._server = server
        self._stopping.clear()
        self._base = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self._base

    def stop(self) -> None:
        """Stop serving; requests still sleeping (latency, timeouts) are woken and dropped."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.cut_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> JiraDouble:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:<port>``); empty until :meth:`start`."""
        return self._base

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # -- fields -------------------------------------------------------------------------------

    def field_id(self, name_or_id: str) -> str:
        """The id of a field named (case-insensitively) or identified by ``name_or_id``."""
        ref = self._field_ref(name_or_id)
        if ref not in self._fields:
            raise KeyError(f"no field {name_or_id!r}")
        return ref

    def _field_ref(self, name_or_id: str) -> str:
        if name_or_id in self._fields:
            return name_or_id
        m = re.fullmatch(r"cf\[(\d+)\]", name_or_id)
        if m:
            return f"customfield_{m.group(1)}"
        folded = name_or_id.casefold()
        for f in self._fields.values():
            if f.name.casefold() == folded:
                return f.id
        return name_or_id

    def add_field(
        self,
        name: str,
        kind: Literal["number", "string", "textarea", "select", "multiselect", "date", "datetime"],
        *,
        options: Sequence[str] = (),
    ) -> str:
        """Add a custom field (``GET /field`` lists it); returns its id."""
        with self._lock:
            num = max(int(f.id.rsplit("_", 1)[1]) for f in self._fields.values() if f.custom) + 1
            opts = [{"id": str(num * 100 + i), "value": v} for i, v in enumerate(options)]
            table: dict[str, tuple[str, str, _Kind, str | None]] = {
                "number": ("number", "float", "number", None),
                "string": ("string", "textfield", "string", None),
                "textarea": ("string", "textarea", "richtext", None),
                "select": ("option", "select", "option", None),
                "multiselect": ("array", "multiselect", "options", "option"),
                "date": ("date", "datepicker", "date", None),
                "datetime": ("datetime", "datetime", "datetime", None),
            }
            type_, custom, field_kind, items = table[kind]
            f = _custom(num, name, type_, _OPT + custom, field_kind, items=items, options=opts)
            self._fields[f.id] = f
            return f.id

    def add_user(self, account_id: str, display_name: str) -> None:
        with self._lock:
            self._users[account_id] = display_name

    # -- seeding and inspecting ---------------------------------------------------------------

    def add_issue(
        self,
        fields: Mapping[str, Any] | None = None,
        key: str | None = None,
        project: str = "OPS",
        changelog: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Create an issue; returns its key.

        ``fields`` are REST-shaped values by field id or name. Shorthands are expanded:
        ``status``, ``issuetype``, ``priority``, ``resolution`` as names; users as account
        ids; a select as its option value; rich text as a plain string; ``created`` and
        ``updated`` as datetimes. ``changelog`` is a list of histories
        (``{"created", "items", "author"?}``), oldest first.
        """
        with self._lock:
            issue = self._new_issue(dict(fields or {}), key, project)
            for history in changelog or ():
                self._append_history(issue, dict(history))
            self._changed()
            return issue.key

    def bulk_add(
        self,
        n: int,
        *,
        project: str = "OPS",
        fields: Mapping[str, Any] | Callable[[int], Mapping[str, Any]] | None = None,
    ) -> list[str]:
        """Create ``n`` issues at once (thousands in well under a second)."""
        keys: list[str] = []
        with self._lock:
            for i in range(n):
                values = fields(i) if callable(fields) else fields
                keys.append(self._new_issue(dict(values or {}), None, project).key)
            self._changed()
        return keys

    def issue(self, key: str) -> dict[str, Any]:
        """A copy of the issue as Cloud ``GET /rest/api/3/issue/{key}`` shows it (all fields)."""
        with self._lock:
            found = self._get(key)
            return self._render(found, version=3, selection=_Selection.all(), expand=set())

    @property
    def issues(self) -> dict[str, dict[str, Any]]:
        """Every issue by key, as :meth:`issue` shows it."""
        with self._lock:
            return {k: self.issue(k) for k in self._issues}

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._issues)

    def changelog(self, key: str) -> list[dict[str, Any]]:
        """The issue's histories, oldest first."""
        with self._lock:
            return copy.deepcopy(self._get(key).histories)

    def comments(self, key: str) -> list[dict[str, Any]]:
        """The issue's comments as v3 shows them (ADF bodies), oldest first."""
        with self._lock:
            return [self._comment_json(self._get(key), c, 3) for c in self._get(key).comments]

    def add_comment(
        self, key: str, body: str | Mapping[str, Any], *, author: str = HUMAN_ACCOUNT_ID
    ) -> str:
        """Add a comment as someone else; returns its id."""
        with self._lock:
            issue = self._get(key)
            doc = adf_text(body) if isinstance(body, str) else dict(body)
            comment = self._new_comment(issue, doc, author)
            self._changed()
            return comment.id

    def properties(self, key: str) -> dict[str, Any]:
        """The issue's properties, key → value."""
        with self._lock:
            return copy.deepcopy(self._get(key).properties)

    def comment_properties(self, key: str, comment_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._comment(self._get(key), comment_id).properties)

    def delete_issue(self, key: str) -> None:
        with self._lock:
            issue = self._get(key)
            del self._issues[issue.key]
            del self._by_id[issue.id]
            self._deleted[issue.key] = issue
            self._changed()

    def touch(self, key: str, author: str = HUMAN_ACCOUNT_ID, **fields: Any) -> None:
        """Change fields as a person would: values (shorthands as in :meth:`add_issue`) are
        set, ``updated`` is bumped and a changelog history by ``author`` is recorded."""
        with self._lock:
            issue = self._get(key)
            values = {self._field_ref(k): v for k, v in fields.items()}
            self._apply(issue, self._expand_values(issue, values), author, metadata=None)
            self._changed()

    # -- requests and faults ------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered since the last :meth:`reset_counters`, in order."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        """How many recorded requests used ``method`` and had a path matching the regex."""
        pattern = re.compile(path_regex) if path_regex else None
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (method is None or r.method == method.upper())
                and (pattern is None or pattern.search(r.path))
            )

    def reset_counters(self) -> None:
        """Forget recorded requests and the per-issue write history."""
        with self._lock:
            self._requests.clear()
            self._writes.clear()

    def inject(
        self,
        status: int,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
        delay: float | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` instead.

        Faults queue in order; a request takes the first that matches ``method`` and the
        ``path`` regex. A 429 carries ``Retry-After`` (``retry_after``, default 1 s),
        ``X-RateLimit-Reset`` and ``RateLimit-Reason`` (``reason``, default
        ``jira-burst-based``); other statuses carry ``Retry-After`` only when given.
        ``delay`` sleeps before answering.
        """
        self._add_fault(status, times, method, path, retry_after, reason, delay)

    def inject_timeout(
        self,
        seconds: float,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Sleep ``seconds`` before answering the next ``times`` matching requests normally,
        so a client with a shorter read timeout gives up."""
        self._add_fault(None, times, method, path, None, None, seconds)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(
        self,
        status: int | None,
        times: int,
        method: str | None,
        path: str | None,
        retry_after: float | None,
        reason: str | None,
        delay: float | None,
    ) -> None:
        fault = _Fault(
            status=status,
            times=times,
            method=method.upper() if method else None,
            path=re.compile(path) if path else None,
            retry_after=retry_after,
            reason=reason,
            delay=delay,
        )
        with self._lock:
            self._faults.append(fault)

    # -- webhooks -----------------------------------------------------------------------------

    def webhook(
        self,
        event: str,
        key: str,
        *,
        user_account_id: str | None = None,
        changelog_items: list[dict[str, Any]] | None = None,
        secret: str | None = None,
        identifier: str | None = None,
        retry: int | None = None,
        comment_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook delivery for ``event`` on ``key``: the raw body and its headers.

        The payload is v2-shaped as Cloud sends it (``self`` under ``/rest/api/2/``, comment
        bodies as text). ``jira:issue_updated`` carries ``changelog_items`` or else the items
        of the issue's latest history; comment events carry ``comment_id`` or the latest
        comment. The identifier is the same across retries, so pass it again with ``retry``.
        """
        with self._lock:
            issue = self._issues.get(key) or self._deleted.get(key)
            if issue is None:
                issue = self._get(key)
            actor = user_account_id or HUMAN_ACCOUNT_ID
            payload: dict[str, Any] = {
                "timestamp": int(self.now().timestamp() * 1000),
                "webhookEvent": event,
            }
            rendered = self._render(issue, version=2, selection=_Selection.all(), expand=set())
            rendered["fields"].pop("comment", None)
            if event.startswith("comment_"):
                comment = (
                    self._comment(issue, comment_id)
                    if comment_id
                    else (issue.comments[-1] if issue.comments else None)
                )
                if comment is None:
                    raise KeyError(f"{key} has no comment for a {event} event")
                payload["comment"] = self._comment_json(issue, comment, 2)
                reduced = ("summary", "status", "issuetype", "priority", "assignee", "reporter")
                rendered["fields"] = {k: rendered["fields"].get(k) for k in reduced}
                payload["issue"] = rendered
            else:
                payload["issue_event_type_name"] = {
                    "jira:issue_created": "issue_created",
                    "jira:issue_updated": "issue_generic",
                    "jira:issue_deleted": "issue_deleted",
                }.get(event, "issue_generic")
                payload["user"] = self._user_json(actor, version=2)
                payload["issue"] = rendered
                if event == "jira:issue_updated":
                    items = changelog_items
                    history_id = str(self._next_history)
                    if items is None and issue.histories:
                        items = issue.histories[-1]["items"]
                        history_id = issue.histories[-1]["id"]
                    payload["changelog"] = {"id": history_id, "items": copy.deepcopy(items or [])}
            body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": identifier or uuid.uuid4().hex,
            "X-Atlassian-Webhook-Flow": "Primary",
        }
        if retry is not None:
            headers["X-Atlassian-Webhook-Retry"] = str(retry)
        if secret is not None:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature"] = f"sha256={digest}"
        return body, headers

    # ======================================================================================
    # Internals: state
    # ======================================================================================

    def _changed(self) -> None:
        self._version += 1
        self._search_cache.clear()

    def _get(self, key: str) -> _Issue:
        issue = self._issues.get(key) or self._issues.get(self._by_id.get(key, ""))
        if issue is None:
            raise KeyError(f"no issue {key!r}")
        return issue

    def _find(self, key_or_id: str) -> _Issue:
        """The issue for a request, or a 404 answer."""
        key = unquote(key_or_id)
        issue = self._issues.get(key.upper()) or self._issues.get(self._by_id.get(key, ""))
        if issue is None:
            raise _Reject(404, _errors(_NOT_FOUND))
        return issue

    def _new_issue(self, values: dict[str, Any], key: str | None, project: str) -> _Issue:
        if key is not None:
            project, _, number_text = key.rpartition("-")
            if not project or not number_text.isdigit():
                raise ValueError(f"issue key {key!r} is not like PROJ-123")
            number = int(number_text)
            if key in self._issues:
                raise ValueError(f"issue {key} exists")
            self._next_number[project] = max(self._next_number.get(project, 1), number + 1)
        else:
            number = self._next_number.get(project, 1)
            self._next_number[project] = number + 1
            key = f"{project}-{number}"
        issue_id = str(self._next_id)
        self._next_id += 1
        now = self.now()
        values = {self._field_ref(k): v for k, v in values.items()}
        created = _as_datetime(values.pop("created", None)) or now
        updated = _as_datetime(values.pop("updated", None)) or created
        issue = _Issue(issue_id, key, project, number, {}, created, updated)
        defaults: dict[str, Any] = {
            "summary": f"Issue {key}",
            "status": "To Do",
            "issuetype": "Task",
            "priority": "Medium",
            "reporter": HUMAN_ACCOUNT_ID,
            "labels": [],
        }
        for fid, value in defaults.items():
            values.setdefault(fid, value)
        issue.fields = self._expand_values(issue, values)
        issue.fields["project"] = {
            "self": f"{{base}}/rest/api/{{v}}/project/{project}",
            "id": str(10000 + sum(ord(c) for c in project)),
            "key": project,
            "name": project.title(),
            "projectTypeKey": "software",
        }
        issue.fields.setdefault("resolution", None)
        issue.fields.setdefault("resolutiondate", None)
        if issue.fields["resolutiondate"] is None and _category(issue) == "done":
            issue.fields["resolutiondate"] = jira_time(updated)
        self._issues[key] = issue
        self._by_id[issue_id] = key
        return issue

    def _expand_values(self, issue: _Issue, values: Mapping[str, Any]) -> dict[str, Any]:
        """Shorthand seed values → stored (v3) values."""
        out: dict[str, Any] = {}
        for fid, value in values.items():
            f = self._fields.get(fid)
            if value is None or f is None:
                out[fid] = value
            elif fid == "status" and isinstance(value, str):
                out[fid] = _status_json(value)
            elif fid == "resolution" and isinstance(value, str):
                out[fid] = {"id": "10000", "name": value, "description": value}
            elif f.kind == "named" and isinstance(value, str):
                out[fid] = {"id": _stable_id(value), "name": value}
            elif f.kind == "user" and isinstance(value, str):
                out[fid] = {"accountId": value}
            elif f.kind == "option" and isinstance(value, str):
                out[fid] = self._option(f, {"value": value}) or {"value": value}
            elif f.kind == "options" and isinstance(value, list):
                out[fid] = [
                    self._option(f, {"value": v}) or {"value": v} if isinstance(v, str) else v
                    for v in value
                ]
            elif f.kind == "richtext" and isinstance(value, str):
                out[fid] = adf_text(value)
            elif f.kind in ("datetime", "readonly") and isinstance(value, datetime):
                out[fid] = jira_time(value)
            elif isinstance(value, date) and not isinstance(value, datetime):
                out[fid] = value.isoformat()
            elif f.kind == "components" and isinstance(value, list):
                out[fid] = [{"name": v} if isinstance(v, str) else v for v in value]
            else:
                out[fid] = value
        return out

    def _option(self, f: _Field, ref: Mapping[str, Any]) -> dict[str, str] | None:
        for opt in f.options:
            if ("id" in ref and str(ref["id"]) == opt["id"]) or (
                "value" in ref and ref["value"] == opt["value"]
            ):
                return {
                    "self": f"{{base}}/rest/api/{{v}}/customFieldOption/{opt['id']}",
                    "value": opt["value"],
                    "id": opt["id"],
                }
        return None

    def _append_history(self, issue: _Issue, history: dict[str, Any]) -> None:
        history.setdefault("id", str(self._next_history))
        self._next_history += 1
        created = history.get("created")
        if isinstance(created, datetime):
            history["created"] = jira_time(created)
        elif created is None:
            history["created"] = jira_time(self.now())
        author = history.get("author")
        if author is None or isinstance(author, str):
            history["author"] = {"accountId": author or HUMAN_ACCOUNT_ID}
        history.setdefault("items", [])
        issue.histories.append(history)

    def _apply(
        self,
        issue: _Issue,
        values: Mapping[str, Any],
        author: str,
        metadata: Mapping[str, Any] | None,
    ) -> None:
        """Set stored values; bump ``updated``; record one history of what changed."""
        items: list[dict[str, Any]] = []
        for fid, new in values.items():
            old = issue.fields.get(fid)
            if old == new:
                continue
            issue.fields[fid] = new
            f = self._fields.get(fid)
            items.append(
                {
                    "field": f.name if f and f.custom else fid,
                    "fieldtype": "custom" if f and f.custom else "jira",
                    "fieldId": fid,
                    "from": _change_id(old),
                    "fromString": _change_string(old),
                    "to": _change_id(new),
                    "toString": _change_string(new),
                }
            )
            if fid == "status" and isinstance(new, Mapping) and "resolution" not in values:
                # A workflow sets the resolution with a done status and clears it on reopen.
                done = _category(issue) == "done"
                issue.fields["resolutiondate"] = jira_time(self.now()) if done else None
                issue.fields["resolution"] = (
                    {"id": "10000", "name": "Done", "description": "Done"} if done else None
                )
        if not items:
            return
        now = self.now()
        issue.updated = max(now, issue.updated)
        history: dict[str, Any] = {
            "author": author,
            "created": issue.updated,
            "items": items,
        }
        if metadata:
            history["historyMetadata"] = dict(metadata)
        self._append_history(issue, history)

    def _new_comment(self, issue: _Issue, body: dict[str, Any], author: str) -> _Comment:
        now = self.now()
        comment = _Comment(str(self._next_comment), author, body, now, now, author)
        self._next_comment += 1
        issue.comments.append(comment)
        issue.updated = max(now, issue.updated)
        return comment

    def _comment(self, issue: _Issue, comment_id: str) -> _Comment:
        for comment in issue.comments:
            if comment.id == comment_id:
                return comment
        raise KeyError(f"{issue.key} has no comment {comment_id}")

    # ======================================================================================
    # Internals: rendering
    # ======================================================================================

    def _user_json(self, account_id: str, *, version: int) -> dict[str, Any]:
        name = self._users.get(account_id, account_id)
        if self.deployment == "datacenter":
            return {
                "self": f"{self._base}/rest/api/2/user?username={account_id}",
                "name": account_id,
                "key": account_id,
                "emailAddress": self.email if account_id == self.account_id else None,
                "displayName": name,
                "active": True,
                "timeZone": "UTC",
            }
        return {
            "self": f"{self._base}/rest/api/{version}/user?accountId={account_id}",
            "accountId": account_id,
            "displayName": name,
            "active": True,
            "timeZone": "UTC",
            "accountType": "app" if account_id == self.account_id else "atlassian",
        }

    def _comment_json(self, issue: _Issue, comment: _Comment, version: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "self": f"{self._base}/rest/api/{version}/issue/{issue.id}/comment/{comment.id}",
            "id": comment.id,
            "author": self._user_json(comment.author, version=version),
            "body": copy.deepcopy(comment.body) if version == 3 else adf_to_text(comment.body),
            "updateAuthor": self._user_json(comment.update_author, version=version),
            "created": jira_time(comment.created),
            "updated": jira_time(comment.updated),
        }
        if self.deployment == "cloud":
            out["jsdPublic"] = True
        return out

    def _value_json(self, issue: _Issue, fid: str, version: int) -> Any:
        if fid == "created":
            return jira_time(issue.created)
        if fid == "updated":
            return jira_time(issue.updated)
        if fid == "comment":
            comments = [self._comment_json(issue, c, version) for c in issue.comments]
            return {
                "comments": comments,
                "self": f"{self._base}/rest/api/{version}/issue/{issue.id}/comment",
                "maxResults": len(comments),
                "total": len(comments),
                "startAt": 0,
            }
        value = issue.fields.get(fid)
        if value is None:
            return None
        f = self._fields.get(fid)
        if f is not None and f.kind == "user" and isinstance(value, Mapping):
            return self._user_json(str(value.get("accountId")), version=version)
        if f is not None and f.kind == "richtext" and version == 2:
            return adf_to_text(value)
        return _with_base(value, self._base, version)

    def _render(
        self,
        issue: _Issue,
        *,
        version: int,
        selection: _Selection,
        expand: set[str],
        changelog_cap: int = _EMBEDDED_CHANGELOG_CAP["issue"],
        properties: Any = None,
    ) -> dict[str, Any]:
        if selection.id_only:
            return {"id": issue.id}
        chosen = selection.choose(self._fields.values(), issue.fields)
        fields = {fid: self._value_json(issue, fid, version) for fid in chosen}
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
            "versionedRepresentations",
            "id": issue.id,
            "self": f"{self._base}/rest/api/{version}/issue/{issue.id}",
            "key": issue.key,
            "fields": fields,
        }
        if "changelog" in expand:
            histories = issue.histories[-changelog_cap:] if changelog_cap else []
            out["changelog"] = {
                "startAt": len(issue.histories) - len(histories),
                "maxResults": len(histories),
                "total": len(issue.histories),
                "histories": [self._history_json(h, version) for h in histories],
            }
        wanted = _expand_set(properties)
        if wanted:
            every = "*all" in wanted
            out["properties"] = {
                k: copy.deepcopy(v)
                for k, v in issue.properties.items()
                if (every or k in wanted) and f"-{k}" not in wanted
            }
        return out

    def _history_json(self, history: Mapping[str, Any], version: int) -> dict[str, Any]:
        out = copy.deepcopy(dict(history))
        author = history.get("author")
        if isinstance(author, Mapping) and "accountId" in author:
            out["author"] = self._user_json(str(author["accountId"]), version=version)
        return out

    def _names(self, fids: Iterable[str]) -> dict[str, str]:
        return {fid: self._fields[fid].name for fid in fids if fid in self._fields}

    def _schemas(self, fids: Iterable[str]) -> dict[str, Any]:
        return {fid: dict(self._fields[fid].schema) for fid in fids if fid in self._fields}

    # ======================================================================================
    # Internals: JQL
    # ======================================================================================

    def run_jql(self, jql: str, *, caller: str | None = None, bounded: bool = False) -> list[str]:
        """The keys a JQL query selects, in its order (what search would page through)."""
        with self._lock:
            return [i.key for i in self._search(jql, caller or self.account_id, bounded)]

    def _search(self, jql: str, caller: str, bounded: bool) -> list[_Issue]:
        cache_key = (jql, caller, self._version)
        cached = self._search_cache.get(cache_key)
        if cached is not None:
            return cached
        self._caller = caller
        query = _Parser(jql, self).parse()
        if bounded and query.where is None:
            raise JqlError(
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query."
            )
        where = query.where
        found = [i for i in self._issues.values() if where is None or where(i)]
        found.sort(key=lambda i: int(i.id))
        for name, desc in reversed(query.order):
            key_fn = self._sort_key(name)
            present = [i for i in found if key_fn(i) is not None]
            missing = [i for i in found if key_fn(i) is None]
            present.sort(key=lambda i: cast(Any, key_fn(i)), reverse=desc)
            found = present + missing if not desc else missing + present
        if len(self._search_cache) > 64:
            self._search_cache.clear()
        self._search_cache[cache_key] = found
        return found

    _SORT_ALIASES: Mapping[str, str] = {
        "issuekey": "key",
        "resolved": "resolutiondate",
        "due": "duedate",
        "type": "issuetype",
    }

    def _sort_field(self, name: str) -> str:
        low = name.lower()
        low = self._SORT_ALIASES.get(low, low)
        if low in ("key", "id", "project", "created", "updated", "status", "priority"):
            return low
        ref = self._field_ref(name)
        if ref not in self._fields:
            raise JqlError(f"Not able to sort using field '{name}'.")
        return ref

    def _sort_key(self, name: str) -> Callable[[_Issue], Any]:
        if name in ("key", "id"):
            return lambda i: (i.project, i.number) if name == "key" else int(i.id)
        if name == "project":
            return lambda i: i.project
        if name == "created":
            return lambda i: i.created
        if name == "updated":
            return lambda i: i.updated
        f = self._fields[name]
        return lambda i: _sortable(self._plain(i, f))

    def _plain(self, issue: _Issue, f: _Field) -> Any:
        """A field's value as JQL compares it: text, number, datetime or list of text."""
        if f.id == "created":
            return issue.created
        if f.id == "updated":
            return issue.updated
        value = issue.fields.get(f.id)
        if value is None:
            return None
        if f.kind == "richtext":
            return adf_to_text(value)
        if f.schema.get("type") in ("datetime",):
            return _parse_jira_time(str(value))
        if f.schema.get("type") == "date":
            try:
                return datetime.combine(date.fromisoformat(str(value)), datetime.min.time(), UTC)
            except ValueError:
                return None
        if isinstance(value, list):
            return [_text_of(v) for v in value]
        if isinstance(value, Mapping):
            return _text_of(value)
        return value

    def _jql_field(self, name: str) -> tuple[str, Callable[[_Issue], Any]]:
        low = name.lower()
        if low in ("project",):
            return "project", lambda i: [i.project, i.fields["project"]["name"]]
        if low in ("key", "issuekey", "id"):
            return "key", lambda i: [i.key, i.id]
        if low == "statuscategory":
            return "text", lambda i: [_category(i) or "", _CATEGORY_NAMES.get(_category(i), "")]
        if low == "text":
            return "text", lambda i: " ".join(
                str(self._plain(i, self._fields[f]) or "")
                for f in ("summary", "description", "environment")
            )
        aliases = {"type": "issuetype", "resolved": "resolutiondate", "due": "duedate"}
        ref = self._field_ref(aliases.get(low, name))
        f = self._fields.get(ref)
        if f is None:
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        type_ = f.schema.get("type")
        kind = {"number": "number", "datetime": "time", "date": "time"}.get(str(type_), "text")
        if f.kind == "user":
            return "user", lambda i: _text_of(i.fields.get(f.id))
        return kind, lambda i: self._plain(i, f)

    def _jql_value(self, kind: str, value: _Value) -> Any:
        if value.function:
            if value.text == "currentuser":
                return self._caller
            if value.text == "now":
                return self.now()
            if value.text == "startofday":
                local = self.now().astimezone(self.time_zone)
                return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
            raise JqlError(f"Unable to find JQL function '{value.text}()'.")
        if kind == "number":
            try:
                return float(value.text)
            except ValueError:
                raise JqlError(f"The value '{value.text}' is not a valid number.") from None
        if kind == "time":
            return self._jql_time(value.text)
        return value.text

    def _jql_time(self, text: str) -> datetime:
        rel = _RELATIVE.fullmatch(text.strip())
        if rel:
            sign = -1 if rel.group(1) == "-" else 1
            unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[rel.group(3)]
            return self.now() + sign * timedelta(**{unit: int(rel.group(2))})
        m = _JQL_DATE.fullmatch(text.strip())
        if m is None:
            raise JqlError(
                f"Date value '{text}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
                "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. "
                "'-5d', '4w 2d'."
            )
        y, mo, d, h, mi = (int(g) if g else 0 for g in m.groups())
        return datetime(y, mo, d, h, mi, tzinfo=self.time_zone).astimezone(UTC)

    def _jql_compare(self, name: str, op: str, value: _Value) -> _Predicate:
        kind, get = self._jql_field(name)
        if value.text == "" and not value.function:
            if op not in ("=", "!="):
                raise JqlError(f"The operator '{op}' is not supported by EMPTY.")
            return self._jql_empty(name, negate=op == "!=")
        if op in ("~", "!~"):
            needle = value.text.lower().strip("*")

            def contains(issue: _Issue) -> bool:
                found = get(issue)
                text = " ".join(found) if isinstance(found, list) else str(found or "")
                return needle in text.lower()

            return contains if op == "~" else (lambda i: not contains(i))
        if op in ("=", "!="):
            return self._jql_in(name, [value], negate=op == "!=")
        if kind not in ("number", "time"):
            raise JqlError(f"The operator '{op}' is not supported by the '{name}' field.")
        target = self._jql_value(kind, value)
        compare: Callable[[Any, Any], bool] = {
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }[op]

        def ordered(issue: _Issue) -> bool:
            found = get(issue)
            return found is not None and compare(found, target)

        return ordered

    def _jql_in(self, name: str, values: Sequence[_Value], *, negate: bool) -> _Predicate:
        kind, get = self._jql_field(name)
        if kind in ("number", "time"):
            targets = {self._jql_value(kind, v) for v in values}

            def member(issue: _Issue) -> bool:
                return get(issue) in targets

        else:
            wanted = {str(self._jql_value(kind, v)).casefold() for v in values}
            if kind == "key":
                wanted = {w.upper().casefold() for w in wanted}

            def member(issue: _Issue) -> bool:
                found = get(issue)
                items = found if isinstance(found, list) else [found]
                return any(str(x).casefold() in wanted for x in items if x is not None)

        if negate:
            return lambda i: not member(i) and get(i) not in (None, [])
        return member

    def _jql_empty(self, name: str, *, negate: bool) -> _Predicate:
        _, get = self._jql_field(name)
        if name.lower() == "resolution":

            def empty(issue: _Issue) -> bool:
                return issue.fields.get("resolution") is None
        else:

            def empty(issue: _Issue) -> bool:
                return get(issue) in (None, [], "")

        return (lambda i: not empty(i)) if negate else empty

    # ======================================================================================
    # Internals: HTTP handling
    # ======================================================================================

    def _handle(self, request: _Request) -> _Response:
        """Everything between the socket and the endpoint: faults, auth, spec, limits."""
        if self.latency:
            self._stopping.wait(self.latency)
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            if fault.delay:
                self._stopping.wait(fault.delay)
            if fault.status is not None:
                return self._fault_response(fault)
        try:
            caller = self._authenticate(request.headers)
            version = self._version_of(request.path)
            if self.spec is not None and version == 3 and request.path.startswith("/rest/api/3/"):
                problems = self.spec.validate_request(
                    request.method,
                    request.path,
                    request.query,
                    request.body,
                    content_type=request.headers.get("content-type"),
                )
                if problems:
                    return _Response(400, _errors(*problems))
            return self._route(request, caller, version)
        except _Reject as rejected:
            return rejected.response

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, fault: _Fault) -> _Response:
        status = cast(int, fault.status)
        headers: dict[str, str] = {}
        if status == 429:
            wait = fault.retry_after if fault.retry_after is not None else 1
            reset = self.now() + timedelta(seconds=wait)
            headers = {
                "Retry-After": str(math.ceil(wait)),
                "X-RateLimit-Limit": "350",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "RateLimit-Reason": fault.reason or "jira-burst-based",
            }
            return _Response(429, _errors("Rate limit exceeded."), headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(fault.retry_after))
        if status in (502, 504):
            text = f"<html><body><h1>{status} Gateway error</h1></body></html>".encode()
            return _Response(status, text, headers, content_type="text/html")
        messages = {503: "Service Unavailable", 500: "Internal server error"}
        return _Response(status, _errors(messages.get(status, f"Injected {status}")), headers)

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        auth = headers.get("authorization", "")
        scheme, _, credentials = auth.partition(" ")
        scheme = scheme.lower()
        if self.deployment == "cloud":
            if scheme == "basic":
                try:
                    decoded = base64.b64decode(credentials, validate=True).decode()
                except ValueError:
                    decoded = ""
                if hmac.compare_digest(decoded, f"{self.email}:{self.api_token}"):
                    return self.account_id
            elif (
                scheme == "bearer"
                and self.oauth_token is not None
                and hmac.compare_digest(credentials, self.oauth_token)
            ):
                return self.account_id
            raise _Reject(401, _errors(_UNAUTHENTICATED))
        if scheme == "bearer" and hmac.compare_digest(credentials, self.pat):
            return self.account_id
        raise _Reject(
            401,
            _errors(
                "You are not authenticated. Authentication required to perform this operation."
            ),
            {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"},
        )

    def _version_of(self, path: str) -> int:
        m = re.match(r"/rest/api/(2|3|latest)/", path)
        if m is None:
            raise _Reject(404, _errors(f"null for uri: {self._base}{path}"))
        version = 2 if m.group(1) in ("2", "latest") else 3
        if version == 3 and self.deployment == "datacenter":
            raise _Reject(404, _errors(f"null for uri: {self._base}{path}"))
        return version

    _ROUTES: Sequence[tuple[str, re.Pattern[str]]] = [
        (name, re.compile(r"/rest/api/(?:2|3|latest)" + pattern + r"/?"))
        for name, pattern in (
            ("myself", "/myself"),
            ("server_info", "/serverInfo"),
            ("fields", "/field"),
            ("search_jql", "/search/jql"),
            ("approximate_count", "/search/approximate-count"),
            ("search", "/search"),
            ("issue", r"/issue/(?P<key>[^/]+)"),
            ("changelog", r"/issue/(?P<key>[^/]+)/changelog"),
            ("comments", r"/issue/(?P<key>[^/]+)/comment"),
            ("comment", r"/issue/(?P<key>[^/]+)/comment/(?P<cid>[^/]+)"),
            ("issue_props", r"/issue/(?P<key>[^/]+)/properties"),
            ("issue_prop", r"/issue/(?P<key>[^/]+)/properties/(?P<prop>[^/]+)"),
            ("comment_prop", r"/comment/(?P<cid>[^/]+)/properties/(?P<prop>[^/]+)"),
        )
    ]

    def _route(self, request: _Request, caller: str, version: int) -> _Response:
        for name, pattern in self._ROUTES:
            m = pattern.fullmatch(request.path)
            if m is None:
                continue
            handler = getattr(self, f"_ep_{name}")
            ctx = _Ctx(request, caller, version, {k: unquote(v) for k, v in m.groupdict().items()})
            return cast(_Response, handler(ctx))
        raise _Reject(404, _errors(f"null for uri: {self._base}{request.path}"))

    # -- endpoints ----------------------------------------------------------------------------

    def _ep_myself(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET")
        user = self._user_json(ctx.caller, version=ctx.version)
        user["emailAddress"] = self.email
        return _Response(200, user)

    def _ep_server_info(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET")
        cloud = self.deployment == "cloud"
        return _Response(
            200,
            {
                "baseUrl": self._base,
                "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.0",
                "deploymentType": "Cloud" if cloud else "Server",
                "serverTitle": "Jira",
            },
        )

    def _ep_fields(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET")
        with self._lock:
            return _Response(200, [f.details() for f in self._fields.values()])

    def _ep_search(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET", "POST")
        if self.deployment == "cloud":
            return _Response(410, _errors(_REMOVED))
        params = ctx.params(("jql", "startAt", "maxResults", "fields", "expand", "validateQuery"))
        start = _int_param(params.get("startAt"), "startAt", 0)
        wanted = _int_param(params.get("maxResults"), "maxResults", 50)
        page = max(0, min(wanted, self.max_page))
        selection = _Selection.parse(params.get("fields"), default="*navigable")
        expand = _expand_set(params.get("expand"))
        with self._lock:
            found = self._run(str(params.get("jql") or ""), ctx.caller, bounded=False)
            chunk = found[start : start + page]
            issues = [self._render(i, version=2, selection=selection, expand=expand) for i in chunk]
            body: dict[str, Any] = {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": page,
                "total": len(found),
                "issues": issues,
            }
            self._add_meta(body, issues, expand)
        return _Response(200, body)

    def _ep_search_jql(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET", "POST")
        if self.deployment != "cloud":
            raise _Reject(404, _errors(f"null for uri: {self._base}{ctx.request.path}"))
        params = ctx.params(
            (
                "jql",
                "nextPageToken",
                "maxResults",
                "fields",
                "expand",
                "properties",
                "fieldsByKeys",
                "failFast",
                "reconcileIssues",
            )
        )
        if ctx.request.method == "POST" and not isinstance(params.get("expand", ""), str):
            raise _Reject(400, _errors("'expand' must be a comma-delimited string."))
        jql = str(params.get("jql") or "")
        wanted = _int_param(params.get("maxResults"), "maxResults", 50)
        page = max(1, min(wanted, self.max_page))
        selection = _Selection.parse(params.get("fields"), default="id")
        expand = _expand_set(params.get("expand"))
        token = params.get("nextPageToken")
        offset = _decode_token(str(token), jql) if token else 0
        with self._lock:
            found = self._run(jql, ctx.caller, bounded=True)
            chunk = found[offset : offset + page]
            issues = [
                self._render(
                    i,
                    version=ctx.version,
                    selection=selection,
                    expand=expand,
                    changelog_cap=_EMBEDDED_CHANGELOG_CAP["search"],
                    properties=params.get("properties"),
                )
                for i in chunk
            ]
            body: dict[str, Any] = {"issues": issues}
            end = offset + len(chunk)
            if end < len(found):
                body["nextPageToken"] = _encode_token(end, jql)
            body["isLast"] = end >= len(found)
            self._add_meta(body, issues, expand)
        return _Response(200, body)

    def _ep_approximate_count(self, ctx: _Ctx) -> _Response:
        ctx.allow("POST")
        if self.deployment != "cloud":
            raise _Reject(404, _errors(f"null for uri: {self._base}{ctx.request.path}"))
        jql = str(ctx.params(("jql",)).get("jql") or "")
        with self._lock:
            return _Response(200, {"count": len(self._run(jql, ctx.caller, bounded=True))})

    def _run(self, jql: str, caller: str, *, bounded: bool) -> list[_Issue]:
        try:
            return self._search(jql, caller, bounded)
        except JqlError as exc:
            raise _Reject(400, {**_errors(str(exc)), "warningMessages": []}) from None

    def _add_meta(
        self, body: dict[str, Any], issues: list[dict[str, Any]], expand: set[str]
    ) -> None:
        fids: dict[str, None] = {}
        for issue in issues:
            fids.update(dict.fromkeys(issue.get("fields", {})))
        if "names" in expand:
            body["names"] = self._names(fids)
        if "schema" in expand:
            body["schema"] = self._schemas(fids)

    def _ep_issue(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET", "PUT")
        if ctx.request.method == "GET":
            params = ctx.params(
                ("fields", "expand", "properties", "fieldsByKeys", "updateHistory", "failFast")
            )
            selection = _Selection.parse(params.get("fields"), default="*all")
            expand = _expand_set(params.get("expand"))
            with self._lock:
                issue = self._find(ctx.args["key"])
                out = self._render(
                    issue,
                    version=ctx.version,
                    selection=selection,
                    expand=expand,
                    properties=params.get("properties"),
                )
                fids = list(out.get("fields", {}))
                if "names" in expand:
                    out["names"] = self._names(fids)
                if "schema" in expand:
                    out["schema"] = self._schemas(fids)
            return _Response(200, out)
        return self._edit_issue(ctx)

    def _edit_issue(self, ctx: _Ctx) -> _Response:
        params = ctx.params(
            (
                "notifyUsers",
                "overrideScreenSecurity",
                "overrideEditableFlag",
                "returnIssue",
                "expand",
            )
        )
        body = ctx.request.body
        if not isinstance(body, Mapping):
            raise _Reject(400, _errors("No content to map due to end-of-input"))
        with self._lock:
            issue = self._find(ctx.args["key"])
            self._count_write(issue)
            values = self._validate_edit(issue, body, ctx.version)
            self._apply(issue, values, ctx.caller, body.get("historyMetadata"))
            for prop in body.get("properties") or []:
                if isinstance(prop, Mapping) and "key" in prop:
                    issue.properties[str(prop["key"])] = copy.deepcopy(prop.get("value"))
            self._changed()
            if str(params.get("returnIssue", "false")).lower() == "true":
                expand = _expand_set(params.get("expand"))
                out = self._render(
                    issue, version=ctx.version, selection=_Selection.all(), expand=expand
                )
                return _Response(200, out)
        return _Response(204)

    def _validate_edit(
        self, issue: _Issue, body: Mapping[str, Any], version: int
    ) -> dict[str, Any]:
        """The new stored values a PUT body asks for, or 400 with Jira's per-field errors."""
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(fields, Mapping) or not isinstance(update, Mapping):
            raise _Reject(400, _errors("Can not deserialize the request body."))
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        for fid in set(fields) & set(update):
            errors[fid] = f"Field '{fid}' cannot appear in both 'fields' and 'update'."
        requested: list[tuple[str, str, Any]] = [("set", k, v) for k, v in fields.items()]
        for fid, ops in update.items():
            if not isinstance(ops, list):
                errors[fid] = "Operations must be a list."
                continue
            for op in ops:
                if not isinstance(op, Mapping) or len(op) != 1:
                    errors[fid] = "Each operation must be an object with one verb."
                    continue
                verb, value = next(iter(op.items()))
                requested.append((str(verb), fid, value))
        for verb, fid, value in requested:
            if fid in errors:
                continue
            f = self._fields.get(fid)
            if f is None or f.kind == "readonly" or fid in self.not_editable:
                errors[fid] = _NOT_ON_SCREEN.format(fid)
                continue
            if verb == "set":
                problem, stored = self._coerce(f, value, version)
            elif verb in ("add", "remove") and f.kind in ("labels", "options", "components"):
                problem, item = self._coerce(f, [value], version)
                current = list(values.get(fid, issue.fields.get(fid) or []))
                stored = current
                if problem is None and item:
                    if verb == "add" and item[0] not in current:
                        stored = [*current, item[0]]
                    elif verb == "remove":
                        stored = [x for x in current if _text_of(x) != _text_of(item[0])]
            else:
                problem, stored = f"Operation '{verb}' is not supported for field '{fid}'.", None
            if problem is not None:
                errors[fid] = problem
            else:
                values[fid] = stored
        if errors:
            raise _Reject(400, _errors(errors=errors))
        return values

    def _coerce(self, f: _Field, value: Any, version: int) -> tuple[str | None, Any]:
        """(problem, stored value) for one field value of a PUT."""
        if value is None:
            return None, None
        kind = f.kind
        if kind == "number":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return None, value
            return "Operation value must be a number", None
        if kind == "string":
            if isinstance(value, str):
                if len(value) > 255:
                    return _TOO_LONG, None
                return None, value
            return "Operation value must be a string", None
        if kind == "richtext":
            if version == 3:
                return (None, copy.deepcopy(value)) if _is_adf(value) else (_ADF_REQUIRED, None)
            if isinstance(value, str):
                return None, adf_text(value)
            return "Operation value must be a string", None
        if kind == "option":
            if not isinstance(value, Mapping) or not ({"id", "value"} & set(value)):
                return f"Specify a valid 'id' or 'name' for {f.name}", None
            option = self._option(f, value)
            if option is None:
                shown = f"id '{value['id']}'" if "id" in value else f"value '{value['value']}'"
                return f"Option {shown} is not valid", None
            return None, option
        if kind in ("options", "components"):
            if not isinstance(value, list):
                return f"Specify the value for {f.name} in an array", None
            out: list[Any] = []
            for entry in value:
                if kind == "components":
                    if not isinstance(entry, Mapping) or not ({"id", "name"} & set(entry)):
                        return "Component name or id is required", None
                    out.append(dict(entry))
                    continue
                problem, option = self._coerce(
                    _Field(f.id, f.name, f.schema, "option", options=f.options), entry, version
                )
                if problem:
                    return problem, None
                out.append(option)
            return None, out
        if kind == "labels":
            if isinstance(value, list) and all(isinstance(v, str) and " " not in v for v in value):
                return None, list(value)
            return "The label must be a string without spaces.", None
        if kind == "date":
            if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                try:
                    return None, date.fromisoformat(value).isoformat()
                except ValueError:
                    pass
            return f"Error parsing date string: {value}", None
        if kind == "datetime":
            if isinstance(value, str) and re.fullmatch(
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?[+-]\d{4}", value
            ):
                parsed = _parse_jira_time(value)
                if parsed is not None:
                    return None, jira_time(parsed)
            return f"Error parsing date/time string: {value}", None
        if kind == "user":
            attr = "accountId" if self.deployment == "cloud" else "name"
            if isinstance(value, Mapping) and isinstance(value.get(attr), str):
                if value[attr] in self._users:
                    return None, {"accountId": value[attr]}
                return f"User '{value[attr]}' does not exist.", None
            return f"Specify a valid '{attr}' for {f.name}", None
        if kind == "named":
            if isinstance(value, Mapping) and ({"id", "name"} & set(value)):
                return None, {k: str(v) for k, v in value.items() if k in ("id", "name")}
            return f"Specify a valid 'id' or 'name' for {f.name}", None
        return _NOT_ON_SCREEN.format(f.id), None

    def _count_write(self, issue: _Issue) -> None:
        """Jira Cloud's per-issue write limit: 429 once a window is full."""
        if not self.write_limits:
            return
        now = time.monotonic()
        log = self._writes.setdefault(issue.id, deque())
        horizon = max(window for _, window in self.write_limits)
        while log and log[0] <= now - horizon:
            log.popleft()
        for limit, window in self.write_limits:
            recent = [t for t in log if t > now - window]
            if len(recent) >= limit:
                wait = recent[-limit] + window - now
                reset = self.now() + timedelta(seconds=wait)
                raise _Reject(
                    429,
                    _errors("Rate limit exceeded."),
                    {
                        "Retry-After": str(max(1, math.ceil(wait))),
                        "X-RateLimit-Limit": str(limit),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "RateLimit-Reason": "jira-per-issue-on-write",
                    },
                )
        log.append(now)

    def _ep_changelog(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET")
        params = ctx.params(("startAt", "maxResults"))
        start = _int_param(params.get("startAt"), "startAt", 0)
        page = max(0, min(_int_param(params.get("maxResults"), "maxResults", 100), 100))
        with self._lock:
            issue = self._find(ctx.args["key"])
            chunk = issue.histories[start : start + page]
            total = len(issue.histories)
            base = f"{self._base}/rest/api/{ctx.version}/issue/{issue.key}/changelog"
            body: dict[str, Any] = {
                "self": f"{base}?maxResults={page}&startAt={start}",
                "maxResults": page,
                "startAt": start,
                "total": total,
                "isLast": start + len(chunk) >= total,
                "values": [self._history_json(h, ctx.version) for h in chunk],
            }
            if start + len(chunk) < total:
                body["nextPage"] = f"{base}?maxResults={page}&startAt={start + len(chunk)}"
        return _Response(200, body)

    def _ep_comments(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET", "POST")
        if ctx.request.method == "GET":
            params = ctx.params(("startAt", "maxResults", "orderBy", "expand"))
            start = _int_param(params.get("startAt"), "startAt", 0)
            page = max(0, min(_int_param(params.get("maxResults"), "maxResults", 100), 100))
            with self._lock:
                issue = self._find(ctx.args["key"])
                ordered = list(issue.comments)
                if str(params.get("orderBy", "")).startswith("-"):
                    ordered.reverse()
                chunk = ordered[start : start + page]
                return _Response(
                    200,
                    {
                        "startAt": start,
                        "maxResults": page,
                        "total": len(ordered),
                        "comments": [self._comment_json(issue, c, ctx.version) for c in chunk],
                    },
                )
        ctx.params(("expand",))
        with self._lock:
            issue = self._find(ctx.args["key"])
            doc = self._comment_body(ctx)
            if len(issue.comments) >= self.max_comments:
                raise _Reject(
                    413,
                    _errors(f"This issue has reached the limit of {self.max_comments} comments."),
                )
            self._count_write(issue)
            comment = self._new_comment(issue, doc, ctx.caller)
            self._changed()
            return _Response(201, self._comment_json(issue, comment, ctx.version))

    def _comment_body(self, ctx: _Ctx) -> dict[str, Any]:
        body = ctx.request.body
        if not isinstance(body, Mapping) or body.get("body") in (None, ""):
            raise _Reject(400, _errors(errors={"comment": "Comment body can not be empty!"}))
        value = body["body"]
        if ctx.version == 3:
            if not _is_adf(value):
                raise _Reject(400, _errors("Comment body is not valid!"))
            return copy.deepcopy(dict(value))
        if not isinstance(value, str):
            raise _Reject(400, _errors("Comment body is not valid!"))
        return adf_text(value)

    def _ep_comment(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET", "PUT")
        ctx.params(("expand", "notifyUsers", "overrideEditableFlag"))
        with self._lock:
            issue = self._find(ctx.args["key"])
            try:
                comment = self._comment(issue, ctx.args["cid"])
            except KeyError:
                raise _Reject(
                    404, _errors(f"Can not find a comment for the id: {ctx.args['cid']}.")
                ) from None
            if ctx.request.method == "PUT":
                doc = self._comment_body(ctx)
                if comment.author != ctx.caller:
                    raise _Reject(
                        403, _errors("You do not have the permission to edit this comment.")
                    )
                self._count_write(issue)
                comment.body = doc
                comment.updated = self.now()
                comment.update_author = ctx.caller
                issue.updated = max(comment.updated, issue.updated)
                self._changed()
            return _Response(200, self._comment_json(issue, comment, ctx.version))

    def _ep_issue_props(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET")
        with self._lock:
            issue = self._find(ctx.args["key"])
            base = f"{self._base}/rest/api/{ctx.version}/issue/{issue.id}/properties"
            keys = [{"self": f"{base}/{k}", "key": k} for k in issue.properties]
            return _Response(200, {"keys": keys})

    def _ep_issue_prop(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET", "PUT", "DELETE")
        with self._lock:
            issue = self._find(ctx.args["key"])
            return self._property(ctx, issue, issue.properties, write_counts=True)

    def _ep_comment_prop(self, ctx: _Ctx) -> _Response:
        ctx.allow("GET", "PUT", "DELETE")
        with self._lock:
            for issue in self._issues.values():
                for comment in issue.comments:
                    if comment.id == ctx.args["cid"]:
                        return self._property(ctx, issue, comment.properties, write_counts=False)
        raise _Reject(404, _errors(f"Can not find a comment for the id: {ctx.args['cid']}."))

    def _property(
        self, ctx: _Ctx, issue: _Issue, store: dict[str, Any], *, write_counts: bool
    ) -> _Response:
        key = ctx.args["prop"]
        method = ctx.request.method
        if method == "GET":
            if key not in store:
                raise _Reject(404, _errors(f"The property with key '{key}' does not exist."))
            return _Response(200, {"key": key, "value": copy.deepcopy(store[key])})
        if method == "DELETE":
            if key not in store:
                raise _Reject(404, _errors(f"The property with key '{key}' does not exist."))
            if write_counts:
                self._count_write(issue)
            del store[key]
            self._changed()
            return _Response(204)
        if len(key) > 255:
            raise _Reject(400, _errors("The property key cannot be longer than 255 characters."))
        if ctx.request.raw is None or not ctx.request.raw.strip():
            raise _Reject(400, _errors("The property value cannot be empty."))
        if len(ctx.request.raw) > 32768:
            raise _Reject(400, _errors("The property value cannot be longer than 32768 bytes."))
        if not ctx.request.json_ok:
            raise _Reject(400, _errors("The property value must be a valid JSON."))
        if write_counts:
            self._count_write(issue)
        created = key not in store
        store[key] = copy.deepcopy(ctx.request.body)
        self._changed()
        return _Response(201 if created else 200)


# ==========================================================================================
# Request plumbing
# ==========================================================================================


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    raw: bytes | None
    body: Any | None
    json_ok: bool


@dataclass(slots=True)
class _Ctx:
    request: _Request
    caller: str
    version: int
    args: dict[str, str]

    def allow(self, *methods: str) -> None:
        if self.request.method not in methods:
            raise _Reject(405, _errors(f"Method {self.request.method} is not allowed here."))

    def params(self, known: Sequence[str]) -> dict[str, Any]:
        """Query parameters (GET) or the JSON body (POST search), by name."""
        out: dict[str, Any] = {}
        if self.request.method == "POST" and isinstance(self.request.body, Mapping):
            for name in known:
                if name in self.request.body:
                    out[name] = self.request.body[name]
            return out
        for name in known:
            values = self.request.query.get(name)
            if values:
                out[name] = values if name in ("fields", "properties") else values[-1]
        return out


def _int_param(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _Reject(400, _errors(f"The value '{value}' is not valid for '{name}'.")) from None


def _expand_set(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return {part.strip() for part in str(value).split(",") if part.strip()}


def _encode_token(offset: int, jql: str) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:12]
    raw = json.dumps({"o": offset, "q": digest}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, jql: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        offset = int(data["o"])
        same = data["q"] == hashlib.sha256(jql.encode()).hexdigest()[:12]
    except (ValueError, KeyError, TypeError):
        raise _Reject(400, _errors("The provided next page token is invalid.")) from None
    if not same:
        raise _Reject(400, _errors("The provided next page token does not match the query."))
    return offset


@dataclass(frozen=True, slots=True)
class _Selection:
    """Which fields to return, from ``fields`` (``*all``, ``*navigable``, ids, ``-id``)."""

    everything: bool = False
    navigable: bool = False
    ids: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    id_only: bool = False

    @staticmethod
    def all() -> _Selection:
        return _Selection(everything=True)

    @staticmethod
    def parse(value: Any, *, default: str) -> _Selection:
        if value is None or value in ([], ""):
            value = [default]
        if isinstance(value, str):
            value = [value]
        parts = [p.strip() for v in value for p in str(v).split(",") if p.strip()]
        if parts == ["id"]:
            return _Selection(id_only=True)
        return _Selection(
            everything="*all" in parts,
            navigable="*navigable" in parts,
            ids=frozenset(p for p in parts if not p.startswith(("*", "-")) and p != "id"),
            excluded=frozenset(p[1:] for p in parts if p.startswith("-")),
        )

    def choose(self, catalog: Iterable[_Field], stored: Mapping[str, Any]) -> list[str]:
        chosen: list[str] = []
        for f in catalog:
            if f.id in self.excluded:
                continue
            if self.everything or (self.navigable and f.navigable) or f.id in self.ids:
                chosen.append(f.id)
        if self.everything:
            known = set(chosen) | self.excluded
            chosen.extend(k for k in stored if k not in known)
        return chosen


# ==========================================================================================
# Value helpers used by the double
# ==========================================================================================


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return _parse_jira_time(value)
    return None


def _stable_id(name: str) -> str:
    """The same id for the same name in every run (``hash`` is salted per process)."""
    return str(10000 + zlib.crc32(name.casefold().encode()) % 90000)


def _status_json(name: str) -> dict[str, Any]:
    category = _STATUS_CATEGORY.get(name.casefold(), "indeterminate")
    return {
        "self": "{base}/rest/api/{v}/status/" + name.replace(" ", "%20"),
        "name": name,
        "id": _stable_id(name),
        "statusCategory": {
            "id": _CATEGORY_IDS[category],
            "key": category,
            "name": _CATEGORY_NAMES[category],
            "colorName": {"new": "blue-gray", "indeterminate": "yellow", "done": "green"}[category],
        },
    }


def _category(issue: _Issue) -> str:
    status = issue.fields.get("status")
    if isinstance(status, Mapping):
        cat = status.get("statusCategory")
        if isinstance(cat, Mapping):
            return str(cat.get("key"))
    return ""


def _with_base(value: Any, base: str, version: int) -> Any:
    """Stored values carry ``{base}``/``{v}`` placeholders in links; fill them in."""
    if isinstance(value, str):
        if "{base}" in value:
            return value.replace("{base}", base).replace("{v}", str(version))
        return value
    if isinstance(value, Mapping):
        return {k: _with_base(v, base, version) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_base(v, base, version) for v in value]
    return value


def _text_of(value: Any) -> Any:
    if isinstance(value, Mapping):
        for attr in ("value", "name", "key", "accountId", "displayName"):
            if attr in value:
                return value[attr]
        return None
    return value


def _sortable(value: Any) -> Any:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or None
    if isinstance(value, str):
        return value.casefold()
    return value


def _change_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        for attr in ("id", "accountId"):
            if attr in value:
                return str(value[attr])
        return None
    if isinstance(value, list):
        return None
    return str(value)


def _change_string(value: Any) -> str | None:
    if value is None:
        return None
    if _is_adf(value):
        return adf_to_text(value)
    if isinstance(value, Mapping):
        text = _text_of(value)
        return None if text is None else str(text)
    if isinstance(value, list):
        return " ".join(str(_text_of(v)) for v in value)
    return str(value)


# ==========================================================================================
# Server
# ==========================================================================================


class _Server(ThreadingHTTPServer):
    """Threads per connection; remembers open connections so stopping can cut them (a
    keep-alive connection would otherwise hold its thread until the client goes away)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hang up (timeouts, tests ending): that is not the double's error."""


class _Handler(BaseHTTPRequestHandler):
    double: JiraDouble
    protocol_version = "HTTP/1.1"
    server_version = "JiraDouble/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`JiraDouble.requests` instead."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else None
        body: Any | None = None
        json_ok = True
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                json_ok = False
                body = raw.decode("utf-8", "replace")
        request = _Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw,
            body=body,
            json_ok=json_ok,
        )
        double = self.double
        if not json_ok and request.method in ("POST", "PUT") and "/properties/" not in parts.path:
            response = _Response(400, _errors("Unexpected character in the request body."))
        else:
            try:
                response = double._handle(request)
            except Exception as exc:  # a bug in the double must not hang the client
                response = _Response(500, _errors(f"JiraDouble error: {exc!r}"))
        with double._lock:
            double._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query,
                    headers=dict(self.headers.items()),
                    body=body,
                    status=response.status,
                )
            )
        if double._stopping.is_set():
            self.close_connection = True
            return
        if isinstance(response.body, bytes):
            payload = response.body
        elif response.body is None:
            payload = b""
        else:
            payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        if payload or response.status not in (204,):
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)
