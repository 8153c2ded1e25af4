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
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode

from bridge.testing._server import Fault, Request, Response, group_query
from bridge.testing._server import json_response as _json
from bridge.testing.servicenow.encoded_query import (
    EncodedQuery,
    QueryNotSupportedError,
    parse_encoded_query,
)
from bridge.testing.servicenow.instance import ReadOptions, ServiceNowInstance
from bridge.testing.servicenow.tables import JOURNAL_FIELDS
from bridge.testing.servicenow.wire import (
    NO_RECORD,
    NOT_AUTHENTICATED,
    RATE_LIMITED,
    READ_DENIED,
    WRITE_DENIED,
    ApiRequest,
    RecordedRequest,
    RequestValidator,
    error,
    int_param,
)

_RATE_LIMIT_RULE = "d2f5f0a1db1c1010a4c5f3a3f39619e0"
_INJECTED = "injected by ServiceNowDouble"
_OVERLOADED = ("Content-Type", "text/html;charset=UTF-8")

_TABLE_PATH = re.compile(
    r"/api/now/(?:(?P<version>v[12])/)?table/(?P<table>[^/]+)(?:/(?P<sys_id>[^/]+))?/?"
)


@dataclass(slots=True)
class _Session:
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: int = 0


@dataclass(slots=True)
class _Token:
    user: str
    expires: float


class ServiceNowDouble(ServiceNowInstance):
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

    server_software: ClassVar[str] = "ServiceNow"
    thread_name: ClassVar[str] = "servicenow-double"
    fault_scope: ClassVar[str | None] = r"^/api/"  # an OAuth token request is not hit by accident

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
        super().__init__(
            latency=latency,
            user=user,
            password=password,
            reference_tables=reference_tables,
            clock=clock,
        )
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.spec = spec
        self.max_limit = max_limit
        self.session_queue_limit = session_queue_limit
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {}  # refresh token → user
        self._issued_sessions: set[str] = set()
        self._sessions: dict[str, _Session] = {}

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> str:
        """Start serving; returns the base URL (``http://127.0.0.1:<port>``)."""
        if self._server is not None:
            raise RuntimeError("ServiceNowDouble is already started")
        return super().start()

    @property
    def url(self) -> str:
        """The base URL; also the host of every reference ``link``."""
        if not self._url:
            raise RuntimeError("ServiceNowDouble is not started: call start() first")
        return self._url

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

    def _oauth(self, request: ApiRequest) -> Response:
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

    def _authenticate(self, request: ApiRequest) -> str | None:
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
        self._add_fault(
            "status", times, method, path, status=status, retry_after=retry_after, delay=delay
        )

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
        self._add_fault("timeout", times, method, path, delay=seconds, apply=apply)

    def inject_overloaded(
        self, times: int | None = 1, *, method: str | None = None, path: str | None = None
    ) -> None:
        """Drop the next matching requests with an empty HTTP 202, the platform's answer when
        too many requests queue on one session (bridge's reference notes, "session
        synchronization"): the request is not applied and nothing says so but the code."""
        self._add_fault("overloaded", times, method, path)

    def _fault_response(self, fault: Fault) -> Response:
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
            doc = RATE_LIMITED
        elif status == 401:
            doc = NOT_AUTHENTICATED
        elif status == 403:
            doc = READ_DENIED
        elif status == 404:
            doc = NO_RECORD
        else:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            doc = error(phrase, _INJECTED)
        return _json(status, doc, headers)

    # ---- request handling ----------------------------------------------------------------

    def _respond(self, request: Request) -> Response | None:
        return self._handle(
            ApiRequest(request.method, request.path, request.query, request.headers, request.body)
        )

    def _handle(self, request: ApiRequest) -> Response | None:
        session_id = self._session_cookie(request)
        session = self._sessions.get(session_id) if session_id else None
        if session is not None:
            with self._lock:
                if session.pending > self.session_queue_limit:
                    response: Response | None = Response(202, b"", [_OVERLOADED])
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

    def _session_cookie(self, request: ApiRequest) -> str | None:
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
        self, request: ApiRequest, response: Response | None, session_id: str | None
    ) -> Response | None:
        if response is not None:
            if session_id is None:
                session_id = secrets.token_hex(16).upper()
                with self._lock:
                    self._issued_sessions.add(session_id)
            response.headers.append(("Set-Cookie", f"JSESSIONID={session_id}; Path=/; HttpOnly"))
        self._remember(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.params,
                headers=request.headers,
                body=request.body,
                status=response.status if response is not None else 0,
            )
        )
        return response

    def _process(self, request: ApiRequest) -> Response | None:
        override = request.headers.get("x-http-method-override")
        if override and request.method == "POST":
            request.method = override.upper()
        if self._sleep(self.latency):
            return None
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            if fault.kind == "timeout":
                if self._sleep(fault.delay) or not fault.apply:
                    return None
            elif fault.kind == "overloaded":
                return Response(202, b"", [_OVERLOADED])
            else:
                if self._sleep(fault.delay):
                    return None
                return self._fault_response(fault)
        try:
            return self._route(request)
        except Exception as exc:
            return _json(500, error("ServiceNowDouble internal error", repr(exc)))

    def _route(self, request: ApiRequest) -> Response:
        if request.path == "/oauth_token.do":
            return self._oauth(request)
        if not request.path.startswith("/api/"):
            return Response(
                404, b"<html><body>Not found</body></html>", [("Content-Type", "text/html")]
            )
        problem = self._check_headers(request)
        if problem is not None:
            return problem
        user = self._authenticate(request)
        if user is None:
            return _json(401, NOT_AUTHENTICATED)
        request.user = user
        if self.spec is not None:
            problems = self._validate(request)
            if problems:
                return _json(
                    400, error("Request does not match the OpenAPI spec", "; ".join(problems))
                )
        match = _TABLE_PATH.fullmatch(request.path)
        if match is None:
            return _json(400, error("Requested URI does not represent any resource", None))
        table, sys_id, version = match["table"], match["sys_id"], match["version"]
        with self._lock:
            known = table in self._tables
        if not known:  # NOTES.md §1.5, UNVERIFIED on the platform
            return _json(400, error(f"Invalid table {table}", f"Table {table} does not exist"))
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
        return _json(405, error("Method not Supported", f"{method} is not allowed here"))

    def _check_headers(self, request: ApiRequest) -> Response | None:
        """``Accept`` on every request and ``Content-Type`` with a body, else 400 (NOTES §1.1)."""
        accept = request.headers.get("accept")
        if not accept:
            return _json(
                400, error("Missing Accept header", "Accept: application/json is required")
            )
        if not any(
            part.split(";")[0].strip() in ("application/json", "application/*", "*/*")
            for part in accept.split(",")
        ):
            return _json(
                406,
                error(
                    "Not Acceptable",
                    f"Accept {accept!r}: ServiceNowDouble only answers application/json",
                ),
            )
        if request.body:
            content_type = request.headers.get("content-type")
            if not content_type:
                return _json(
                    400, error("Missing Content-Type header", "a request body needs Content-Type")
                )
            if content_type.split(";")[0].strip() != "application/json":
                return _json(
                    415,
                    error(
                        "Unsupported Media Type",
                        f"Content-Type {content_type!r}: ServiceNowDouble only reads JSON",
                    ),
                )
        return None

    def _validate(self, request: ApiRequest) -> list[str]:
        assert self.spec is not None  # noqa: S101 - checked by the caller
        body: Any = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = request.body
        # The spec lists the unversioned Table API paths only, and HEAD goes where GET does.
        path = re.sub(r"^/api/now/v[12]/", "/api/now/", request.path)
        problems = self.spec.validate_request(
            "GET" if request.method == "HEAD" else request.method,
            path,
            group_query(request.query),
            body,
            content_type=request.headers.get("content-type"),
        )
        if problems:
            with self._lock:
                self.spec_problems.extend(problems)
        return problems

    # ---- Table API -----------------------------------------------------------------------

    def _read_options(self, params: Mapping[str, str]) -> ReadOptions:
        display = params.get("sysparm_display_value", "false").lower()
        fields = params.get("sysparm_fields")
        return ReadOptions(
            fields=tuple(f.strip() for f in fields.split(",") if f.strip()) if fields else None,
            display="true" if display == "true" else "all" if display == "all" else "false",
            exclude_links=params.get("sysparm_exclude_reference_link", "").lower() == "true",
        )

    def _get_list(self, request: ApiRequest, table: str, version: str | None) -> Response:
        params = request.params
        with self._lock:
            readable = [t for t in self._family(table) if self._can(t, None, "read")]
        if not readable:
            return _json(403, READ_DENIED)
        try:
            limit = int_param(params, "sysparm_limit", 10000)
            offset = int_param(params, "sysparm_offset", 0)
            query = self._query_of(params)
        except (ValueError, QueryNotSupportedError) as exc:
            return _json(400, error("Invalid query", str(exc)))
        if self.max_limit is not None:
            limit = min(limit, self.max_limit)
        options = self._read_options(params)
        with self._lock:
            total, rows = self._select(table, readable, query, offset, limit)
            page = [self._render(t, r, options) for t, r in rows]
        if version == "v1" and not page:  # NOTES.md §1.1: v1 answers an empty result with 404
            return _json(404, NO_RECORD)
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

    def _link(
        self, request: ApiRequest, limit: int, offset: int, total: int | None, size: int
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

    def _get_one(self, request: ApiRequest, table: str, sys_id: str) -> Response:
        options = self._read_options(request.params)
        with self._lock:
            found = self._find(table, sys_id)
            if found is None or not self._can(found[0], None, "read"):
                return _json(404, NO_RECORD)
            return _json(200, {"result": self._render(found[0], found[1], options)})

    def _body(self, request: ApiRequest) -> dict[str, str] | Response:
        try:
            doc = json.loads(request.body or b"{}")
        except ValueError as exc:
            return _json(400, error("Exception while reading request", f"Invalid JSON: {exc}"))
        if isinstance(doc, list):  # only the first record of several is processed (§1.1)
            doc = doc[0] if doc else {}
        if not isinstance(doc, dict):
            return _json(400, error("Exception while reading request", "expected a JSON object"))
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
                    400, error("Exception while reading request", f"{name}: not a scalar value")
                )
        return values

    def _patch(self, request: ApiRequest, table: str, sys_id: str) -> Response:
        values = self._body(request)
        if isinstance(values, Response):
            return values
        options = self._read_options(request.params)
        with self._lock:
            found = self._find(table, sys_id)
            if found is None or not self._can(found[0], None, "read"):
                return _json(404, NO_RECORD)
            real_table, record = found
            if not self._can(real_table, None, "write") or any(
                not self._can(real_table, name, "write") for name in values
            ):
                return _json(403, WRITE_DENIED)
            changed = False
            for name, value in values.items():
                if name in JOURNAL_FIELDS and name in self._columns[real_table]:
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
            return Response(204)
        return _json(200, {"result": result})

    def _post(self, request: ApiRequest, table: str) -> Response:
        values = self._body(request)
        if isinstance(values, Response):
            return values
        options = self._read_options(request.params)
        with self._lock:
            if not self._can(table, None, "write") or any(
                not self._can(table, name, "write") for name in values
            ):
                return _json(403, WRITE_DENIED)
            journal = {k: values.pop(k) for k in JOURNAL_FIELDS if k in values}
            for name in [n for n in values if n.startswith("sys_")]:
                self.ignored_fields.append((table, name))
                del values[name]
            new_id = self._insert(table, values, None, user=request.user)
            for name, text in journal.items():
                if text:
                    self._add_journal(table, new_id, name, text, request.user, None)
            result = self._render(table, self._tables[table][new_id], options)
        if request.headers.get("x-no-response-body", "").lower() == "true":
            return Response(201)
        location = f"{self.url}/api/now/table/{table}/{new_id}"
        return _json(201, {"result": result}, [("Location", location)])

    def _delete(self, request: ApiRequest, table: str, sys_id: str) -> Response:
        with self._lock:
            found = self._find(table, sys_id)
            if found is None:
                return _json(404, NO_RECORD)
            if not self._can(found[0], None, "write"):
                return _json(403, WRITE_DENIED)
            self.delete(found[0], sys_id)
        return Response(204)
