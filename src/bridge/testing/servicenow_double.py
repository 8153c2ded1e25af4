"""A fake ServiceNow instance that speaks real HTTP, for connector, sync and load tests.

Canned responses (``responses``) cannot show what makes a sync against ServiceNow hard: records
that change between pages, tokens that expire mid-sweep, 429s with ``Retry-After``, session
cookies that serialise a client until requests are dropped with a 202. Those are properties of
a stateful server, so this is one: a ``ThreadingHTTPServer`` on 127.0.0.1 holding tables of
records in the Table API's default shape (every value a string, references by sys_id).

What it does follows the project's ServiceNow notes (``NOTES.md``, every fact with a source);
where the platform's behaviour is unverified the double takes the documented or most common
reading and the docstring of the piece concerned says so. What it does not support
(XML, ``javascript:`` queries, relative date operators) is refused with a 400 or 406 that names
the double, so a test never passes on a silently wrong answer.

Only the standard library runs on the server side, so the double ships in the package and can
be used by plugin authors' tests too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import itertools
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Protocol, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

__all__ = [
    "DEFAULT_REFERENCE_TABLES",
    "NUMBER_PREFIXES",
    "EncodedQuery",
    "QueryNotSupportedError",
    "RecordedRequest",
    "RequestValidator",
    "ServiceNowDouble",
    "parse_encoded_query",
]

Record = dict[str, str]

# Table → number prefix; these are also the tables that extend ``task`` in the double.
NUMBER_PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "incident": "INC",
        "sc_request": "REQ",
        "sc_req_item": "RITM",
        "sc_task": "SCTASK",
        "problem": "PRB",
        "problem_task": "PTASK",
        "change_request": "CHG",
        "change_task": "CTASK",
        "pm_project": "PRJ",
        "pm_project_task": "PRJTASK",
        "task": "TASK",
    }
)
_TASK_TABLES = tuple(NUMBER_PREFIXES)

# A read of a parent table sees its children's rows, as on the platform.
_FAMILIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "task": _TASK_TABLES,
        "planned_task": ("planned_task", "pm_project", "pm_project_task"),
    }
)

# Field (or ``table.field``, which wins) → the table its sys_id points into.
DEFAULT_REFERENCE_TABLES: Mapping[str, str] = MappingProxyType(
    {
        "assigned_to": "sys_user",
        "assignment_group": "sys_user_group",
        "caller_id": "sys_user",
        "opened_by": "sys_user",
        "closed_by": "sys_user",
        "resolved_by": "sys_user",
        "requested_for": "sys_user",
        "requested_by": "sys_user",
        "manager": "sys_user",
        "business_service": "cmdb_ci_service",
        "cmdb_ci": "cmdb_ci",
        "company": "core_company",
        "location": "cmn_location",
        "top_task": "pm_project",
        "project": "pm_project",
        "parent": "task",
        "task": "task",
        "sla": "contract_sla",
        "schedule": "cmn_schedule",
        "problem_id": "problem",
        "rfc": "change_request",
        "caused_by": "change_request",
        "request": "sc_request",
        "request_item": "sc_req_item",
    }
)

# Tables that exist before anything is added; any other table name is "Invalid table".
_BASE_TABLES = (
    *_TASK_TABLES,
    "planned_task",
    "task_sla",
    "contract_sla",
    "sys_journal_field",
    "sys_user",
    "sys_user_group",
    "sys_choice",
    "cmdb_ci",
    "cmdb_ci_service",
    "core_company",
    "cmn_location",
    "cmn_schedule",
    "time_card",
    "asmt_assessment_instance",
    "asmt_metric_result",
)

_JOURNAL_FIELDS = ("work_notes", "comments")
_JOURNAL_LABELS = {"work_notes": "Work notes", "comments": "Additional comments"}
_JOURNAL_READ_FIELDS = (*_JOURNAL_FIELDS, "comments_and_work_notes")

_TASK_STATE_LABELS = {
    "-5": "Pending",
    "1": "Open",
    "2": "Work in Progress",
    "3": "Closed Complete",
    "4": "Closed Incomplete",
    "7": "Closed Skipped",
}
# ``table.field`` or ``*.field`` → value → label, for display values (NOTES.md §2).
_CHOICE_LABELS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "incident.state": {
            "1": "New",
            "2": "In Progress",
            "3": "On Hold",
            "6": "Resolved",
            "7": "Closed",
            "8": "Canceled",
        },
        "change_request.state": {
            "-5": "New",
            "-4": "Assess",
            "-3": "Authorize",
            "-2": "Scheduled",
            "-1": "Implement",
            "0": "Review",
            "3": "Closed",
            "4": "Canceled",
        },
        "problem.state": {
            "101": "New",
            "102": "Assess",
            "103": "Root Cause Analysis",
            "104": "Fix in Progress",
            "106": "Resolved",
            "107": "Closed",
        },
        "pm_project.state": _TASK_STATE_LABELS,
        "pm_project_task.state": _TASK_STATE_LABELS,
        "sc_req_item.state": _TASK_STATE_LABELS,
        "sc_task.state": _TASK_STATE_LABELS,
        "task.state": _TASK_STATE_LABELS,
        "task_sla.stage": {
            "in_progress": "In progress",
            "paused": "Paused",
            "completed": "Completed",
            "cancelled": "Cancelled",
            "breached": "Breached",
        },
        "*.priority": {
            "1": "1 - Critical",
            "2": "2 - High",
            "3": "3 - Moderate",
            "4": "4 - Low",
            "5": "5 - Planning",
        },
    }
)

_JSON = "application/json;charset=UTF-8"
_DATETIME = "%Y-%m-%d %H:%M:%S"
_RATE_LIMIT_RULE = "d2f5f0a1db1c1010a4c5f3a3f39619e0"
_INJECTED = "injected by ServiceNowDouble"

_TABLE_PATH = re.compile(
    r"/api/now/(?:(?P<version>v[12])/)?table/(?P<table>[^/]+)(?:/(?P<sys_id>[^/]+))?/?"
)
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


def _error(message: str, detail: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


_NOT_AUTHENTICATED = _error("User Not Authenticated", "Required to provide Auth information")
_NO_RECORD = _error("No Record found", "Record doesn't exist or ACL restricts the record retrieval")
_READ_DENIED = _error("Insufficient rights", "Insufficient rights to query records")
_WRITE_DENIED = _error(
    "Operation Failed", "ACL Exception Update Failed due to security constraints"
)
# fixtures/servicenow_docs/error_429_rate_limit_exceeded.json
_RATE_LIMITED = _error(
    "Rate limit exceeded", "Rate limit of 100 requests per hour for Table API exceeded"
)


class RequestValidator(Protocol):
    """What the double needs of an OpenAPI spec (``bridge.testing.openapi.OpenApiSpec``)."""

    def validate_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: Any | None,
        *,
        content_type: str | None = None,
    ) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the double saw it; ``headers`` keys are lower-case, ``query`` is last-wins.

    ``status`` is 0 when no response was sent (an injected timeout that drops the request).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# --------------------------------------------------------------------------------------------
# Encoded queries (pure)
# --------------------------------------------------------------------------------------------


class QueryNotSupportedError(ValueError):
    """A query the real platform may accept but the double cannot answer faithfully."""


@dataclass(frozen=True, slots=True)
class _Condition:
    field: str
    op: str
    value: str


@dataclass(frozen=True, slots=True)
class EncodedQuery:
    """``groups`` are ``^NQ`` alternatives; each is AND-ed terms of ``^OR`` alternatives."""

    groups: tuple[tuple[tuple[_Condition, ...], ...], ...]
    order: tuple[tuple[str, bool], ...]  # (field, descending)

    @property
    def fields(self) -> set[str]:
        return {c.field for group in self.groups for term in group for c in term}


_SUPPORTED_OPS = (
    "ISNOTEMPTY",
    "ISEMPTY",
    "NOT IN",
    "IN",
    "NOT LIKE",
    "LIKE",
    "STARTSWITH",
    "ENDSWITH",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)
_CONDITION = re.compile(
    r"(?P<field>[a-z0-9_.]+?)(?P<op>"
    + "|".join(re.escape(op) for op in _SUPPORTED_OPS)
    + r")(?P<value>.*)",
    re.DOTALL,
)


def parse_encoded_query(text: str) -> EncodedQuery:
    """The subset of encoded queries the double evaluates.

    ``a=1^b>=2^ORc!=3^NQd=4^ORDERBYe^ORDERBYDESCf``: ``^`` is AND, ``^OR`` binds tighter
    (``a^b^ORc`` is a AND (b OR c)), ``^NQ`` starts an alternative query. A trailing ``^EQ``
    (pasted from a list filter) is ignored.

    :raises QueryNotSupportedError: an operator or value the double does not evaluate
        (``BETWEEN``, ``RELATIVEGT``, ``javascript:`` ...), named in the message.
    """
    groups: list[tuple[tuple[_Condition, ...], ...]] = []
    order: list[tuple[str, bool]] = []
    for chunk in text.split("^NQ"):
        terms: list[list[_Condition]] = []
        for token in chunk.split("^"):
            if token in ("", "EQ"):
                continue
            if token.startswith("ORDERBYDESC"):
                order.append((token.removeprefix("ORDERBYDESC"), True))
                continue
            if token.startswith("ORDERBY"):
                order.append((token.removeprefix("ORDERBY"), False))
                continue
            is_or = token.startswith("OR") and bool(terms)
            condition = _parse_condition(token[2:] if is_or else token)
            if is_or:
                terms[-1].append(condition)
            else:
                terms.append([condition])
        groups.append(tuple(tuple(term) for term in terms))
    return EncodedQuery(groups=tuple(groups), order=tuple(order))


def _parse_condition(token: str) -> _Condition:
    match = _CONDITION.fullmatch(token)
    if match is None:
        raise QueryNotSupportedError(
            f"query term {token!r} is not supported by ServiceNowDouble "
            f"(operators: {', '.join(_SUPPORTED_OPS)})"
        )
    value = match["value"]
    if value.startswith("javascript:"):
        raise QueryNotSupportedError(
            f"query term {token!r}: javascript: values are not supported by ServiceNowDouble"
        )
    op = match["op"]
    if op in ("ISEMPTY", "ISNOTEMPTY") and value:
        raise QueryNotSupportedError(f"query term {token!r}: {op} takes no value")
    return _Condition(match["field"], op, value)


@functools.lru_cache(maxsize=1 << 16)
def _number(text: str) -> float | None:
    return float(text) if _NUMBER.fullmatch(text) else None


def _compare(left: str, right: str) -> int | None:
    """Numbers numerically, anything else (UTC datetime literals) as text; empty never orders."""
    if not left:
        return None
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    return (left > right) - (left < right)


def _matches(condition: _Condition, actual: str) -> bool:
    op, want = condition.op, condition.value
    if op == "=":
        return actual == want
    if op == "!=":
        return actual != want  # the platform's != also matches empty values
    if op == "ISEMPTY":
        return not actual
    if op == "ISNOTEMPTY":
        return bool(actual)
    if op == "IN":
        return actual in want.split(",")
    if op == "NOT IN":
        return actual not in want.split(",")
    if op in ("LIKE", "NOT LIKE", "STARTSWITH", "ENDSWITH"):
        a, w = actual.casefold(), want.casefold()
        if op == "STARTSWITH":
            return a.startswith(w)
        if op == "ENDSWITH":
            return a.endswith(w)
        return (w in a) == (op == "LIKE")
    cmp = _compare(actual, want)
    if cmp is None:
        return False
    return {">": cmp > 0, ">=": cmp >= 0, "<": cmp < 0, "<=": cmp <= 0}[op]


def _sort_key(value: str) -> tuple[int, float, str]:
    """Empty first, then numbers numerically, then text."""
    if not value:
        return (0, 0.0, "")
    number = _number(value)
    return (1, number, "") if number is not None else (2, 0.0, value)


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    user: str = ""

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)


@dataclass(slots=True)
class _Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(status: int, doc: Any, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return _Response(status, body, [("Content-Type", _JSON), *headers])


@dataclass(slots=True)
class _Fault:
    kind: Literal["status", "timeout", "overloaded"]
    remaining: int | None  # None: until clear_faults()
    method: str | None
    path: re.Pattern[str] | None
    status: int = 0
    retry_after: float | None = None
    delay: float | None = None
    apply: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is None:
            return path.startswith("/api/")
        return self.path.search(path) is not None


@dataclass(slots=True)
class _Session:
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: int = 0


@dataclass(slots=True)
class _Token:
    user: str
    expires: float


@dataclass(frozen=True, slots=True)
class _ReadOptions:
    fields: tuple[str, ...] | None
    display: Literal["false", "true", "all"]
    exclude_links: bool


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # many concurrent clients in the benchmark

    def __init__(self, double: ServiceNowDouble) -> None:
        self.double = double
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and went away is part of the tests, not an error.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections give up their thread

    def version_string(self) -> str:
        return "ServiceNow"

    def _double(self) -> ServiceNowDouble:
        assert isinstance(self.server, _Server)  # noqa: S101 - set up in ServiceNowDouble.start
        return self.server.double

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every keep-alive request and swamp any benchmark.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._double()._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._double()._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest output stays readable."""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = _Request(
            method=self.command,
            path=split.path,
            query=parse_qsl(split.query, keep_blank_values=True),
            headers=headers,
            body=self._read_body(headers),
        )
        response = self._double()._handle(request)
        if response is None:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


# --------------------------------------------------------------------------------------------
# The double
# --------------------------------------------------------------------------------------------


class ServiceNowDouble:
    """A stateful fake ServiceNow instance on an ephemeral 127.0.0.1 port.

    State is plain Python (``add_record``, ``update_as_user``, ``journal``...), so a test can
    arrange data and change it between two pages of a sync; the HTTP side serves the Table API
    (``/api/now[/v1|/v2]/table/...``) and ``/oauth_token.do``. Faults are queued with
    ``inject``, ``inject_timeout`` and ``inject_overloaded`` and consumed in order.

    :param latency: seconds every request waits before it is handled.
    :param max_limit: a ceiling on ``sysparm_limit`` (pages come back shorter than asked).
    :param spec: when set, every ``/api/now`` request is checked against it; a request the
        spec does not allow gets a 400 naming the problems.
    :param session_queue_limit: requests that send back a ``JSESSIONID`` run one at a time per
        session, as on the platform; once this many are queued behind the running one, further
        requests are dropped with an empty 202 (see ``inject_overloaded``).
    :param clock: the instance's "now" for ``sys_created_on`` / ``sys_updated_on`` (UTC).
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        user: str = "bridge.integration",
        password: str = "secret",  # noqa: S107 - a test double's default credentials
        client_id: str = "cid",
        client_secret: str = "csecret",  # noqa: S107
        token_ttl: float = 1800.0,
        spec: RequestValidator | None = None,
        max_limit: int | None = None,
        reference_tables: Mapping[str, str] | None = None,
        session_queue_limit: int = 10,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.latency = latency
        self.user = user
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.spec = spec
        self.max_limit = max_limit
        self.session_queue_limit = session_queue_limit
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.reference_tables: dict[str, str] = {
            **DEFAULT_REFERENCE_TABLES,
            **(reference_tables or {}),
        }
        self.choice_labels: dict[str, dict[str, str]] = {
            key: dict(labels) for key, labels in _CHOICE_LABELS.items()
        }

        # Observations for tests.
        self.requests: list[RecordedRequest] = []
        self.cookie_requests = 0
        self.ignored_query_fields: list[tuple[str, str]] = []
        self.ignored_fields: list[tuple[str, str]] = []
        self.spec_problems: list[str] = []

        self._lock = threading.RLock()
        self._tables: dict[str, dict[str, Record]] = {name: {} for name in _BASE_TABLES}
        self._columns: dict[str, set[str]] = {name: set() for name in _BASE_TABLES}
        self._tombstones: dict[tuple[str, str], Record] = {}
        self._counters: dict[str, int] = {}
        self._journal_index: dict[str, list[str]] = {}  # parent sys_id → journal row sys_ids
        self._acl: dict[tuple[str, str | None], tuple[bool, bool]] = {}
        self._users: dict[str, str] = {user: password}
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {}  # refresh token → user
        self._faults: list[_Fault] = []
        self._issued_sessions: set[str] = set()
        self._sessions: dict[str, _Session] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> str:
        """Start serving; returns the base URL (``http://127.0.0.1:<port>``)."""
        if self._server is not None:
            raise RuntimeError("ServiceNowDouble is already started")
        self._stopping.clear()
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self._url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="servicenow-double",
            daemon=True,
        )
        self._thread.start()
        return self._url

    def stop(self) -> None:
        """Stop serving and close open connections; sleeping requests are woken and dropped."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
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
        """The base URL; also the host of every reference ``link``."""
        if self._url is None:
            raise RuntimeError("ServiceNowDouble is not started: call start() first")
        return self._url

    def _connection_opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    # ---- state ---------------------------------------------------------------------------

    def now(self) -> str:
        """The instance's current time as a ``glide_date_time`` value (UTC)."""
        return self.clock().astimezone(UTC).strftime(_DATETIME)

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
        if table in _TASK_TABLES:
            for name in _JOURNAL_READ_FIELDS:
                record[name] = ""
        self._tables[table][new_id] = record
        self._columns[table].update(record)
        return new_id

    def record(self, table: str, sys_id: str) -> Record:
        """A copy of the stored record (reference fields hold sys_ids); KeyError if none."""
        with self._lock:
            found = self._find(table, sys_id)
            if found is None:
                raise KeyError(f"no {table} record with sys_id {sys_id}")
            return dict(found[1])

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
            found = self._find(table, sys_id)
            if found is None:
                raise KeyError(f"no {table} record with sys_id {sys_id}")
            real_table, record = found
            for name, value in fields.items():
                if name in _JOURNAL_FIELDS:
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
            found = self._find(table, sys_id)
            if found is None:
                raise KeyError(f"no {table} record with sys_id {sys_id}")
            real_table, record = found
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
            found = self._find(table, sys_id)
            if found is None:
                raise KeyError(f"no {table} record with sys_id {sys_id}")
            return self._add_journal(found[0], sys_id, element, value, user, created_on)

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
            found = self._find("task", task_sys_id)
            if found is None:
                raise KeyError(f"no task record with sys_id {task_sys_id}")
            task = found[1]
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
                        "collection": found[0],
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
        return tuple(t for t in _FAMILIES.get(table, (table,)) if t in self._tables)

    def _find(self, table: str, sys_id: str) -> tuple[str, Record] | None:
        for name in self._family(table):
            record = self._tables[name].get(sys_id)
            if record is not None:
                return name, record
        return None

    def _bump(self, record: Record, user: str) -> None:
        record["sys_mod_count"] = str(int(record.get("sys_mod_count") or 0) + 1)
        record["sys_updated_on"] = self.now()
        record["sys_updated_by"] = user

    def _ref_table(self, table: str, field_name: str) -> str | None:
        return self.reference_tables.get(f"{table}.{field_name}") or self.reference_tables.get(
            field_name
        )

    # ---- auth ----------------------------------------------------------------------------

    def expire_tokens(self, *, refresh: bool = False) -> None:
        """Expire every access token (and, with ``refresh``, every refresh token)."""
        with self._lock:
            for token in self._tokens.values():
                token.expires = 0.0
            if refresh:
                self._refresh_tokens.clear()

    def _issue_token(self, user: str, refresh: str | None) -> dict[str, Any]:
        access = secrets.token_urlsafe(64)
        refresh = refresh or secrets.token_urlsafe(64)
        with self._lock:
            self._tokens[access] = _Token(user, time.monotonic() + self.token_ttl)
            self._refresh_tokens[refresh] = user
        # 1800 s lifespan shows as 1799 (fixtures/servicenow_docs/oauth_token_...json).
        return {
            "access_token": access,
            "refresh_token": refresh,
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": max(0, math.ceil(self.token_ttl) - 1),
        }

    def _oauth(self, request: _Request) -> _Response:
        if request.method != "POST":
            return _json(405, {"error": "invalid_request", "error_description": "POST only"})
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _json(
                400,
                {"error": "invalid_request", "error_description": "form-encoded body required"},
            )
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if client_id is None:  # client authentication by HTTP Basic is allowed by OAuth 2
            basic = self._basic(request.headers.get("authorization", ""))
            if basic:
                client_id, client_secret = basic
        # The platform's answer to any bad credential (from memory of real instances).
        denied = _json(401, {"error_description": "access_denied", "error": "server_error"})
        if client_id != self.client_id or client_secret != self.client_secret:
            return denied
        grant = form.get("grant_type")
        if grant == "password":
            user = form.get("username", "")
            if self._users.get(user) != form.get("password"):
                return denied
            return _json(200, self._issue_token(user, None))
        if grant == "client_credentials":
            return _json(200, self._issue_token(self.user, None))
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            with self._lock:
                owner = self._refresh_tokens.get(refresh)
            if owner is None:
                return denied
            return _json(200, self._issue_token(owner, refresh))
        return _json(
            400,
            {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r}"},
        )

    @staticmethod
    def _basic(header: str) -> tuple[str, str] | None:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = (
                base64.b64decode(credentials, validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None

    def _authenticate(self, request: _Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            with self._lock:
                token = self._tokens.get(credentials.strip())
            if token is None or token.expires <= time.monotonic():
                return None
            return token.user
        basic = self._basic(header)
        if basic and self._users.get(basic[0]) == basic[1]:
            return basic[0]
        return None

    # ---- faults --------------------------------------------------------------------------

    def inject(
        self,
        status: int,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests (None: all, until ``clear_faults``)
        with ``status``; the request is not applied.

        429 carries the platform's rate-limit body, ``Retry-After`` (default 1) and
        ``X-RateLimit-Limit/Reset/Rule``; other codes the error envelope (401 the
        not-authenticated body). ``path`` is a regex searched in the URL path; without it only
        ``/api/`` requests match, so an OAuth token request is not hit by accident.
        ``delay`` sleeps before answering.
        """
        self._add_fault(_Fault("status", times, method, _pattern(path), status, retry_after, delay))

    def inject_timeout(
        self,
        seconds: float,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        apply: bool = False,
    ) -> None:
        """Hold the next matching requests for ``seconds``; then drop them unanswered
        (``apply=False``: the request never reached the database), or process and answer
        them (``apply=True``: the write happened even if the client has given up)."""
        self._add_fault(
            _Fault("timeout", times, method, _pattern(path), delay=seconds, apply=apply)
        )

    def inject_overloaded(
        self, times: int | None = 1, *, method: str | None = None, path: str | None = None
    ) -> None:
        """Drop the next matching requests with an empty HTTP 202, the platform's answer when
        too many requests queue on one session (bridge's reference notes, "session
        synchronization"): the request is not applied and nothing says so but the code."""
        self._add_fault(_Fault("overloaded", times, method, _pattern(path)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, fault: _Fault) -> _Response:
        status = fault.status
        headers: list[tuple[str, str]] = []
        retry_after = fault.retry_after
        if status == 429:
            retry_after = 1 if retry_after is None else retry_after
            headers += [
                ("X-RateLimit-Limit", "100"),
                ("X-RateLimit-Reset", str(int(time.time() + retry_after))),
                ("X-RateLimit-Rule", _RATE_LIMIT_RULE),
            ]
        if retry_after is not None:
            headers.append(("Retry-After", f"{retry_after:g}"))
        if status == 429:
            doc = _RATE_LIMITED
        elif status == 401:
            doc = _NOT_AUTHENTICATED
        elif status == 403:
            doc = _READ_DENIED
        elif status == 404:
            doc = _NO_RECORD
        else:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            doc = _error(phrase, _INJECTED)
        return _json(status, doc, headers)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the double stops first; True when it did stop."""
        return seconds > 0 and self._stopping.wait(seconds)

    # ---- observations --------------------------------------------------------------------

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        """Recorded requests with this method and a path matching the regex (searched)."""
        pattern = _pattern(path_regex)
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (pattern is None or pattern.search(r.path))
            )

    def reset_counters(self) -> None:
        """Forget recorded requests, cookie counts and ignored fields (state is kept)."""
        with self._lock:
            self.requests.clear()
            self.cookie_requests = 0
            self.ignored_query_fields.clear()
            self.ignored_fields.clear()
            self.spec_problems.clear()

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

    # ---- request handling ----------------------------------------------------------------

    def _handle(self, request: _Request) -> _Response | None:
        session_id = self._session_cookie(request)
        session = self._sessions.get(session_id) if session_id else None
        if session is not None:
            with self._lock:
                if session.pending > self.session_queue_limit:
                    response: _Response | None = _Response(
                        202, b"", [("Content-Type", "text/html;charset=UTF-8")]
                    )
                    return self._finish(request, response, session_id)
                session.pending += 1
            try:
                with session.lock:
                    response = self._process(request)
            finally:
                with self._lock:
                    session.pending -= 1
        else:
            response = self._process(request)
        return self._finish(request, response, session_id)

    def _session_cookie(self, request: _Request) -> str | None:
        raw = request.headers.get("cookie")
        if not raw:
            return None
        try:
            morsel = SimpleCookie(raw).get("JSESSIONID")
        except CookieError:
            return None
        if morsel is None:
            return None
        with self._lock:
            if morsel.value not in self._issued_sessions:
                return None
            self.cookie_requests += 1
            self._sessions.setdefault(morsel.value, _Session())
            return morsel.value

    def _finish(
        self, request: _Request, response: _Response | None, session_id: str | None
    ) -> _Response | None:
        if response is not None:
            if session_id is None:
                session_id = secrets.token_hex(16).upper()
                with self._lock:
                    self._issued_sessions.add(session_id)
            response.headers.append(("Set-Cookie", f"JSESSIONID={session_id}; Path=/; HttpOnly"))
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.params,
            headers=request.headers,
            body=request.body,
            status=response.status if response is not None else 0,
        )
        with self._lock:
            self.requests.append(recorded)
        return response

    def _process(self, request: _Request) -> _Response | None:
        override = request.headers.get("x-http-method-override")
        if override and request.method == "POST":
            request.method = override.upper()
        if self._sleep(self.latency):
            return None
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            if fault.kind == "timeout":
                if self._sleep(fault.delay or 0.0) or not fault.apply:
                    return None
            elif fault.kind == "overloaded":
                return _Response(202, b"", [("Content-Type", "text/html;charset=UTF-8")])
            else:
                if self._sleep(fault.delay or 0.0):
                    return None
                return self._fault_response(fault)
        try:
            return self._route(request)
        except Exception as exc:
            return _json(500, _error("ServiceNowDouble internal error", repr(exc)))

    def _route(self, request: _Request) -> _Response:
        if request.path == "/oauth_token.do":
            return self._oauth(request)
        if not request.path.startswith("/api/"):
            return _Response(
                404, b"<html><body>Not found</body></html>", [("Content-Type", "text/html")]
            )
        problem = self._check_headers(request)
        if problem is not None:
            return problem
        user = self._authenticate(request)
        if user is None:
            return _json(401, _NOT_AUTHENTICATED)
        request.user = user
        if self.spec is not None:
            problems = self._validate(request)
            if problems:
                return _json(
                    400, _error("Request does not match the OpenAPI spec", "; ".join(problems))
                )
        match = _TABLE_PATH.fullmatch(request.path)
        if match is None:
            return _json(400, _error("Requested URI does not represent any resource", None))
        table, sys_id, version = match["table"], match["sys_id"], match["version"]
        with self._lock:
            known = table in self._tables
        if not known:  # NOTES.md §1.5, UNVERIFIED on the platform
            return _json(400, _error(f"Invalid table {table}", f"Table {table} does not exist"))
        method = request.method
        if sys_id is None:
            if method in ("GET", "HEAD"):
                return self._get_list(request, table, version)
            if method == "POST":
                return self._post(request, table)
        elif method in ("GET", "HEAD"):
            return self._get_one(request, table, sys_id)
        elif method in ("PATCH", "PUT"):
            return self._patch(request, table, sys_id)
        elif method == "DELETE":
            return self._delete(request, table, sys_id)
        return _json(405, _error("Method not Supported", f"{method} is not allowed here"))

    def _check_headers(self, request: _Request) -> _Response | None:
        """``Accept`` on every request and ``Content-Type`` with a body, else 400 (NOTES §1.1)."""
        accept = request.headers.get("accept")
        if not accept:
            return _json(
                400, _error("Missing Accept header", "Accept: application/json is required")
            )
        if not any(
            part.split(";")[0].strip() in ("application/json", "application/*", "*/*")
            for part in accept.split(",")
        ):
            return _json(
                406,
                _error(
                    "Not Acceptable",
                    f"Accept {accept!r}: ServiceNowDouble only answers application/json",
                ),
            )
        if request.body:
            content_type = request.headers.get("content-type")
            if not content_type:
                return _json(
                    400, _error("Missing Content-Type header", "a request body needs Content-Type")
                )
            if content_type.split(";")[0].strip() != "application/json":
                return _json(
                    415,
                    _error(
                        "Unsupported Media Type",
                        f"Content-Type {content_type!r}: ServiceNowDouble only reads JSON",
                    ),
                )
        return None

    def _validate(self, request: _Request) -> list[str]:
        assert self.spec is not None  # noqa: S101 - checked by the caller
        body: Any = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = request.body
        # The spec lists the unversioned Table API paths only, and HEAD goes where GET does.
        path = re.sub(r"^/api/now/v[12]/", "/api/now/", request.path)
        query: dict[str, list[str]] = {}
        for name, value in request.query:
            query.setdefault(name, []).append(value)
        problems = self.spec.validate_request(
            "GET" if request.method == "HEAD" else request.method,
            path,
            query,
            body,
            content_type=request.headers.get("content-type"),
        )
        if problems:
            with self._lock:
                self.spec_problems.extend(problems)
        return problems

    # ---- Table API -----------------------------------------------------------------------

    def _read_options(self, params: Mapping[str, str]) -> _ReadOptions:
        display = params.get("sysparm_display_value", "false").lower()
        fields = params.get("sysparm_fields")
        return _ReadOptions(
            fields=tuple(f.strip() for f in fields.split(",") if f.strip()) if fields else None,
            display="true" if display == "true" else "all" if display == "all" else "false",
            exclude_links=params.get("sysparm_exclude_reference_link", "").lower() == "true",
        )

    def _get_list(self, request: _Request, table: str, version: str | None) -> _Response:
        params = request.params
        with self._lock:
            readable = [t for t in self._family(table) if self._can(t, None, "read")]
        if not readable:
            return _json(403, _READ_DENIED)
        try:
            limit = _int_param(params, "sysparm_limit", 10000)
            offset = _int_param(params, "sysparm_offset", 0)
            query = self._query_of(params)
        except (ValueError, QueryNotSupportedError) as exc:
            return _json(400, _error("Invalid query", str(exc)))
        if self.max_limit is not None:
            limit = min(limit, self.max_limit)
        options = self._read_options(params)
        with self._lock:
            total, rows = self._select(table, readable, query, offset, limit)
            page = [self._render(t, r, options) for t, r in rows]
        if version == "v1" and not page:  # NOTES.md §1.1: v1 answers an empty result with 404
            return _json(404, _NO_RECORD)
        headers: list[tuple[str, str]] = []
        no_count = params.get("sysparm_no_count", "").lower() == "true"
        if not no_count:
            headers.append(("X-Total-Count", str(total)))
        if params.get("sysparm_suppress_pagination_header", "").lower() != "true":
            headers.append(
                ("Link", self._link(request, limit, offset, None if no_count else total, len(page)))
            )
        return _json(200, {"result": page}, headers)

    def _query_of(self, params: Mapping[str, str]) -> EncodedQuery:
        text = params.get("sysparm_query")
        if text is None:  # name=value pairs, mutually exclusive with sysparm_query
            text = "^".join(
                f"{name}={value}"
                for name, value in params.items()
                if not name.startswith("sysparm_")
            )
        return parse_encoded_query(text)

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
            [_any_of([self._check(c) for c in term if c.field not in unknown]) for term in group]
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
            predicate = _first_group_matching(filters)
            rows = [(t, r) for t, r in everything if predicate(t, r)]
        for get, descending in reversed(order):
            rows.sort(key=_row_key(get), reverse=descending)
        return len(rows), rows[offset : offset + limit]

    def _check(self, condition: _Condition) -> Callable[[str, Record], bool]:
        get = self._getter(condition.field)
        op, want = condition.op, condition.value
        if op == "=":
            return lambda t, r: get(t, r) == want
        if op == "!=":
            return lambda t, r: get(t, r) != want
        return lambda t, r: _matches(condition, get(t, r))

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

    def _link(
        self, request: _Request, limit: int, offset: int, total: int | None, size: int
    ) -> str:
        """``Link`` as the platform writes it: first, prev (negative at offset 0), next, last.

        ``next`` is left out on the last page and ``last`` without a count (both UNVERIFIED,
        NOTES.md §9); ``last`` is ``total - limit`` (matches both the docs and the gist).
        """
        base = [(k, v) for k, v in request.query if k not in ("sysparm_offset", "sysparm_limit")]
        base.append(("sysparm_limit", str(limit)))

        def url(at: int) -> str:
            query = urlencode([*base, ("sysparm_offset", str(at))], quote_via=quote, safe=",")
            return f"{self.url}{request.path}?{query}"

        links = [(url(0), "first"), (url(offset - limit), "prev")]
        more = offset + limit < total if total is not None else size >= limit > 0
        if more:
            links.append((url(offset + limit), "next"))
        if total is not None:
            links.append((url(max(total - limit, 0)), "last"))
        return ",".join(f'<{u}>;rel="{rel}"' for u, rel in links)

    def _render(self, table: str, record: Record, options: _ReadOptions) -> dict[str, Any]:
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

    def _present(self, table: str, field_name: str, record: Record, options: _ReadOptions) -> Any:
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
        if field_name in _JOURNAL_READ_FIELDS and table in _TASK_TABLES:
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
        elements = _JOURNAL_FIELDS if field_name == "comments_and_work_notes" else (field_name,)
        rows = [r for r in self._journal_rows(sys_id) if r["element"] in elements]
        rows.sort(key=lambda r: r["sys_created_on"], reverse=True)
        names = {u.get("user_name"): u.get("name") for u in self._tables["sys_user"].values()}
        return "".join(
            f"{r['sys_created_on']} - {names.get(r['sys_created_by']) or r['sys_created_by']} "
            f"({_JOURNAL_LABELS[r['element']]})\n{r['value']}\n\n"
            for r in rows
        )

    def _get_one(self, request: _Request, table: str, sys_id: str) -> _Response:
        options = self._read_options(request.params)
        with self._lock:
            found = self._find(table, sys_id)
            if found is None or not self._can(found[0], None, "read"):
                return _json(404, _NO_RECORD)
            return _json(200, {"result": self._render(found[0], found[1], options)})

    def _body(self, request: _Request) -> dict[str, str] | _Response:
        try:
            doc = json.loads(request.body or b"{}")
        except ValueError as exc:
            return _json(400, _error("Exception while reading request", f"Invalid JSON: {exc}"))
        if isinstance(doc, list):  # only the first record of several is processed (§1.1)
            doc = doc[0] if doc else {}
        if not isinstance(doc, dict):
            return _json(400, _error("Exception while reading request", "expected a JSON object"))
        values: dict[str, str] = {}
        for name, given in doc.items():
            value = given["value"] if isinstance(given, dict) and "value" in given else given
            if value is None:
                values[name] = ""
            elif isinstance(value, bool):
                values[name] = "true" if value else "false"
            elif isinstance(value, (str, int, float)):
                values[name] = str(value)
            else:
                return _json(
                    400, _error("Exception while reading request", f"{name}: not a scalar value")
                )
        return values

    def _patch(self, request: _Request, table: str, sys_id: str) -> _Response:
        values = self._body(request)
        if isinstance(values, _Response):
            return values
        options = self._read_options(request.params)
        with self._lock:
            found = self._find(table, sys_id)
            if found is None or not self._can(found[0], None, "read"):
                return _json(404, _NO_RECORD)
            real_table, record = found
            if not self._can(real_table, None, "write") or any(
                not self._can(real_table, name, "write") for name in values
            ):
                return _json(403, _WRITE_DENIED)
            changed = False
            for name, value in values.items():
                if name in _JOURNAL_FIELDS and name in self._columns[real_table]:
                    if value:
                        self._add_journal(real_table, sys_id, name, value, request.user, None)
                        changed = True
                elif (
                    name.startswith("sys_")
                    or name not in self._columns[real_table]
                    or name == "comments_and_work_notes"
                ):
                    self.ignored_fields.append((real_table, name))
                elif record.get(name) != value:
                    record[name] = value
                    changed = True
            # An update that changes nothing is not written: no new sys_mod_count.
            if changed:
                self._bump(record, request.user)
            result = self._render(real_table, record, options)
        if request.headers.get("x-no-response-body", "").lower() == "true":
            return _Response(204)
        return _json(200, {"result": result})

    def _post(self, request: _Request, table: str) -> _Response:
        values = self._body(request)
        if isinstance(values, _Response):
            return values
        options = self._read_options(request.params)
        with self._lock:
            if not self._can(table, None, "write") or any(
                not self._can(table, name, "write") for name in values
            ):
                return _json(403, _WRITE_DENIED)
            journal = {k: values.pop(k) for k in _JOURNAL_FIELDS if k in values}
            for name in [n for n in values if n.startswith("sys_")]:
                self.ignored_fields.append((table, name))
                del values[name]
            new_id = self._insert(table, values, None, user=request.user)
            for name, text in journal.items():
                if text:
                    self._add_journal(table, new_id, name, text, request.user, None)
            result = self._render(table, self._tables[table][new_id], options)
        if request.headers.get("x-no-response-body", "").lower() == "true":
            return _Response(201)
        location = f"{self.url}/api/now/table/{table}/{new_id}"
        return _json(201, {"result": result}, [("Location", location)])

    def _delete(self, request: _Request, table: str, sys_id: str) -> _Response:
        with self._lock:
            found = self._find(table, sys_id)
            if found is None:
                return _json(404, _NO_RECORD)
            if not self._can(found[0], None, "write"):
                return _json(403, _WRITE_DENIED)
            self.delete(found[0], sys_id)
        return _Response(204)


def _any_of(
    checks: list[Callable[[str, Record], bool]],
) -> Callable[[str, Record], bool] | None:
    """One ``^OR`` term; None when all its conditions were ignored."""
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda t, r: any(check(t, r) for check in checks)


def _first_group_matching(
    groups: list[list[Callable[[str, Record], bool]]],
) -> Callable[[str, Record], bool]:
    def predicate(table: str, record: Record) -> bool:
        for terms in groups:
            for term in terms:
                if not term(table, record):
                    break
            else:
                return True
        return False

    return predicate


def _row_key(
    get: Callable[[str, Record], str],
) -> Callable[[tuple[str, Record]], tuple[int, float, str]]:
    def key(row: tuple[str, Record]) -> tuple[int, float, str]:
        return _sort_key(get(*row))

    return key


def _pattern(regex: str | None) -> re.Pattern[str] | None:
    return re.compile(regex) if regex is not None else None


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name, "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a whole number") from None
    if value < 0:
        raise ValueError(f"{name}={text!r} must not be negative")
    return value
