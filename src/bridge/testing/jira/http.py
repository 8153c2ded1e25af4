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
import copy
import hmac
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, cast
from urllib.parse import unquote

from bridge.testing._server import Fault, Request, Response
from bridge.testing.jira.edits import EditRules
from bridge.testing.jira.jql import JqlError
from bridge.testing.jira.model import Deployment, Field, Issue, Selection
from bridge.testing.jira.site import (
    EMBEDDED_CHANGELOG_CAP,
    JiraSite,
)
from bridge.testing.jira.values import adf_text, is_adf, jira_time
from bridge.testing.jira.wire import (
    Ctx,
    JiraRequest,
    RecordedRequest,
    Reject,
    decode_token,
    encode_token,
    errors,
    expand_set,
    int_param,
    offset_page,
    reply,
)
from bridge.testing.openapi import OpenApiSpec

_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
_SERVER_INFO = re.compile(r"/rest/api/(?:2|3|latest)/serverInfo/?")
_UNAUTHENTICATED = "Client must be authenticated to access this resource."
_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)


class JiraDouble(JiraSite):
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

    server_software: ClassVar[str] = "JiraDouble/1.0"
    thread_name: ClassVar[str] = "jira-double"

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
        admin: bool = True,
    ) -> None:
        super().__init__(
            deployment=deployment,
            latency=latency,
            email=email,
            account_id=account_id,
            time_zone=time_zone,
            clock=clock,
        )
        self.max_page = max_page
        self.spec = spec
        self.api_token = api_token
        self.pat = pat
        self.oauth_token = oauth_token
        self.not_editable: set[str] = {self._field_ref(f) for f in not_editable}
        self.write_limits = tuple(write_limits)
        self.max_comments = max_comments
        # Whether bridge's account has "Administer Jira" (custom field contexts need it).
        self.admin = admin
        self._writes: dict[str, deque[float]] = {}
        # Called with each search request's number (1, 2, ...; both search endpoints, counted
        # from start or reset_counters) before it is answered: a test changes the site
        # between two pages of one sweep here, as people do while a sync pages.
        self.before_search: Callable[[int], None] | None = None
        self.searches = 0

    # -- requests and faults ------------------------------------------------------------------

    def reset_counters(self) -> None:
        """Forget recorded requests and the per-issue write history."""
        with self._lock:
            super().reset_counters()
            self._writes.clear()
            self.searches = 0

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
        self._add_fault(
            "status",
            times,
            method,
            path,
            status=status,
            retry_after=retry_after,
            reason=reason,
            delay=delay,
        )

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
        self._add_fault("timeout", times, method, path, delay=seconds, apply=True)

    # -- HTTP handling ------------------------------------------------------------------------

    def _respond(self, request: Request) -> Response:
        call = JiraRequest.read(request)
        if not call.json_ok and call.method in ("POST", "PUT") and "/properties/" not in call.path:
            response = reply(400, errors("Unexpected character in the request body."))
        else:
            try:
                response = self._handle(call)
            except Exception as exc:  # a bug in the double must not hang the client
                response = reply(500, errors(f"JiraDouble error: {exc!r}"))
        self._remember(
            RecordedRequest(
                method=call.method,
                path=call.path,
                query=call.query,
                headers=request.sent_headers,
                body=call.body,
                status=response.status,
            )
        )
        return response

    def _handle(self, request: JiraRequest) -> Response:
        """Everything between the socket and the endpoint: faults, auth, spec, limits."""
        self._sleep(self.latency)  # a request woken by stop() is answered, then dropped
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            self._sleep(fault.delay)
            if fault.kind == "status":
                return self._fault_response(fault)
        try:
            if _SERVER_INFO.fullmatch(request.path) and not request.headers.get("authorization"):
                caller = ""  # "This operation can be accessed anonymously" (Cloud and DC)
            else:
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
                    return reply(400, errors(*problems))
            return self._route(request, caller, version)
        except Reject as rejected:
            return rejected.response

    def _fault_response(self, fault: Fault) -> Response:
        status = fault.status
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
            return reply(429, errors("Rate limit exceeded."), headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(fault.retry_after))
        if status in (502, 504):
            text = f"<html><body><h1>{status} Gateway error</h1></body></html>".encode()
            return Response(status, text, [("Content-Type", "text/html"), *headers.items()])
        messages = {503: "Service Unavailable", 500: "Internal server error"}
        return reply(status, errors(messages.get(status, f"Injected {status}")), headers)

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
            raise Reject(401, errors(_UNAUTHENTICATED))
        if scheme == "bearer" and hmac.compare_digest(credentials, self.pat):
            return self.account_id
        raise Reject(
            401,
            errors("You are not authenticated. Authentication required to perform this operation."),
            {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"},
        )

    def _no_such_uri(self, path: str) -> Reject:
        """Jira answers a path it does not serve with Jersey's text, not its own messages."""
        return Reject(404, errors(f"null for uri: {self.url}{path}"))

    def _version_of(self, path: str) -> int:
        m = re.match(r"/rest/api/(2|3|latest)/", path)
        if m is None:
            raise self._no_such_uri(path)
        version = 2 if m.group(1) in ("2", "latest") else 3
        if version == 3 and self.deployment == "datacenter":
            raise self._no_such_uri(path)
        return version

    _ROUTES: Sequence[tuple[str, re.Pattern[str]]] = [
        (name, re.compile(r"/rest/api/(?:2|3|latest)" + pattern + r"/?"))
        for name, pattern in (
            ("myself", "/myself"),
            ("server_info", "/serverInfo"),
            ("fields", "/field"),
            ("field_contexts", r"/field/(?P<fid>[^/]+)/context"),
            ("context_options", r"/field/(?P<fid>[^/]+)/context/(?P<cid>[^/]+)/option"),
            ("editmeta", r"/issue/(?P<key>[^/]+)/editmeta"),
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

    def _route(self, request: JiraRequest, caller: str, version: int) -> Response:
        for name, pattern in self._ROUTES:
            m = pattern.fullmatch(request.path)
            if m is None:
                continue
            handler = getattr(self, f"_ep_{name}")
            ctx = Ctx(request, caller, version, {k: unquote(v) for k, v in m.groupdict().items()})
            return cast(Response, handler(ctx))
        raise self._no_such_uri(request.path)

    # -- endpoints ----------------------------------------------------------------------------

    def _find(self, key_or_id: str) -> Issue:
        """The issue for a request, or a 404 answer."""
        key = unquote(key_or_id)
        issue = self._issues.get(key.upper()) or self._issues.get(self._by_id.get(key, ""))
        if issue is None:
            raise Reject(404, errors(_NOT_FOUND))
        return issue

    def _ep_myself(self, ctx: Ctx) -> Response:
        ctx.allow("GET")
        user = self._user_json(ctx.caller, version=ctx.version)
        user["emailAddress"] = self.email
        return reply(200, user)

    def _ep_server_info(self, ctx: Ctx) -> Response:
        """Shaped like ``ServerInformation`` and the captured answers (jira-cli's
        ``serverinfo.json`` for Cloud); self-managed Jira says ``deploymentType: Server``."""
        ctx.allow("GET")
        cloud = self.deployment == "cloud"
        version = (1001, 0, 0) if cloud else (9, 12, 0)
        return reply(
            200,
            {
                "baseUrl": self.url,
                "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.0",
                "versionNumbers": list(version),
                "deploymentType": "Cloud" if cloud else "Server",
                "buildNumber": 100204 if cloud else 9120000,
                "buildDate": "2022-08-12T12:59:12.000+0200",
                "serverTime": jira_time(self.now()),
                "scmInfo": "948b370c557f4bbf768b92203f3aca5d86ee9758",
                "serverTitle": "Jira",
                "defaultLocale": {"locale": "en_US"},
            },
        )

    def _ep_fields(self, ctx: Ctx) -> Response:
        ctx.allow("GET")
        with self._lock:
            return reply(200, [f.details() for f in self._fields.values()])

    def _select_field(self, ctx: Ctx) -> Field:
        """The custom field a context request names; Cloud only, and for admins only."""
        if self.deployment != "cloud":
            raise self._no_such_uri(ctx.request.path)
        if not self.admin:
            raise Reject(
                403, errors("You don't have permission to access this resource. Contact admin.")
            )
        with self._lock:
            f = self._fields.get(ctx.args["fid"])
        if f is None or not f.custom:
            raise Reject(404, errors("The custom field was not found."))
        return f

    def _ep_field_contexts(self, ctx: Ctx) -> Response:
        ctx.allow("GET")
        f = self._select_field(ctx)
        context = {
            "id": str(10000 + int(f.id.rsplit("_", 1)[1])),
            "name": f"Default Configuration Scheme for {f.name}",
            "description": "",
            "isGlobalContext": True,
            "isAnyIssueType": True,
        }
        return reply(200, _page([context], ctx))

    def _ep_context_options(self, ctx: Ctx) -> Response:
        ctx.allow("GET")
        f = self._select_field(ctx)
        if ctx.args["cid"] != str(10000 + int(f.id.rsplit("_", 1)[1])):
            raise Reject(404, errors("The context was not found."))
        if f.kind not in ("option", "options"):
            raise Reject(400, errors("The custom field doesn't support options."))
        options = [{"id": o["id"], "value": o["value"], "disabled": False} for o in f.options]
        return reply(200, _page(options, ctx))

    def _ep_editmeta(self, ctx: Ctx) -> Response:
        ctx.allow("GET")
        with self._lock:
            self._find(ctx.args["key"])
            fields: dict[str, Any] = {}
            for f in self._fields.values():
                if f.kind in ("readonly",) or f.id in self.not_editable:
                    continue
                entry: dict[str, Any] = {
                    "required": f.id == "summary",
                    "schema": dict(f.schema),
                    "name": f.name,
                    "key": f.id,
                    "operations": ["set"],
                }
                if f.kind in ("option", "options"):
                    entry["allowedValues"] = [
                        {"self": f"{self.url}/rest/api/{ctx.version}/customFieldOption/{o['id']}",
                         "value": o["value"], "id": o["id"]}
                        for o in f.options
                    ]  # fmt: skip
                fields[f.id] = entry
        return reply(200, {"fields": fields})

    def _ep_search(self, ctx: Ctx) -> Response:
        ctx.allow("GET", "POST")
        if self.deployment == "cloud":
            return reply(410, errors(_REMOVED))
        params = ctx.params(("jql", "startAt", "maxResults", "fields", "expand", "validateQuery"))
        self._before_search()
        start, page = offset_page(params, default=50, cap=self.max_page)
        selection = Selection.parse(params.get("fields"), default="*navigable")
        expand = expand_set(params.get("expand"))
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
        return reply(200, body)

    def _ep_search_jql(self, ctx: Ctx) -> Response:
        ctx.allow("GET", "POST")
        if self.deployment != "cloud":
            raise self._no_such_uri(ctx.request.path)
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
            raise Reject(400, errors("'expand' must be a comma-delimited string."))
        jql = str(params.get("jql") or "")
        wanted = int_param(params.get("maxResults"), "maxResults", 50)
        page = max(1, min(wanted, self.max_page))
        selection = Selection.parse(params.get("fields"), default="id")
        expand = expand_set(params.get("expand"))
        token = params.get("nextPageToken")
        offset = decode_token(str(token), jql) if token else 0
        self._before_search()
        with self._lock:
            found = self._run(jql, ctx.caller, bounded=True)
            chunk = found[offset : offset + page]
            issues = [
                self._render(
                    i,
                    version=ctx.version,
                    selection=selection,
                    expand=expand,
                    changelog_cap=EMBEDDED_CHANGELOG_CAP["search"],
                    properties=params.get("properties"),
                )
                for i in chunk
            ]
            body: dict[str, Any] = {"issues": issues}
            end = offset + len(chunk)
            if end < len(found):
                body["nextPageToken"] = encode_token(end, jql)
            body["isLast"] = end >= len(found)
            self._add_meta(body, issues, expand)
        return reply(200, body)

    def _before_search(self) -> None:
        with self._lock:
            self.searches += 1
            number = self.searches
        if self.before_search is not None:
            self.before_search(number)

    def _ep_approximate_count(self, ctx: Ctx) -> Response:
        ctx.allow("POST")
        if self.deployment != "cloud":
            raise self._no_such_uri(ctx.request.path)
        jql = str(ctx.params(("jql",)).get("jql") or "")
        with self._lock:
            return reply(200, {"count": len(self._run(jql, ctx.caller, bounded=True))})

    def _run(self, jql: str, caller: str, *, bounded: bool) -> list[Issue]:
        try:
            return self._search(jql, caller, bounded)
        except JqlError as exc:
            raise Reject(400, {**errors(str(exc)), "warningMessages": []}) from None

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

    def _ep_issue(self, ctx: Ctx) -> Response:
        ctx.allow("GET", "PUT")
        if ctx.request.method == "GET":
            params = ctx.params(
                ("fields", "expand", "properties", "fieldsByKeys", "updateHistory", "failFast")
            )
            selection = Selection.parse(params.get("fields"), default="*all")
            expand = expand_set(params.get("expand"))
            with self._lock:
                issue = self._find(ctx.args["key"])
                out = self._render(
                    issue,
                    version=ctx.version,
                    selection=selection,
                    expand=expand,
                    properties=params.get("properties"),
                )
                self._add_meta(out, [out], expand)
            return reply(200, out)
        return self._edit_issue(ctx)

    def _edit_issue(self, ctx: Ctx) -> Response:
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
            raise Reject(400, errors("No content to map due to end-of-input"))
        with self._lock:
            issue = self._find(ctx.args["key"])
            self._count_write(issue)
            rules = EditRules(self._fields, self.not_editable, self._users, self.deployment)
            values = rules.validate(issue, body, ctx.version)
            self._apply(issue, values, ctx.caller, body.get("historyMetadata"))
            for prop in body.get("properties") or []:
                if isinstance(prop, Mapping) and "key" in prop:
                    issue.properties[str(prop["key"])] = copy.deepcopy(prop.get("value"))
            self._changed()
            if str(params.get("returnIssue", "false")).lower() == "true":
                expand = expand_set(params.get("expand"))
                out = self._render(
                    issue, version=ctx.version, selection=Selection.all(), expand=expand
                )
                return reply(200, out)
        return reply(204)

    def _count_write(self, issue: Issue) -> None:
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
                raise Reject(
                    429,
                    errors("Rate limit exceeded."),
                    {
                        "Retry-After": str(max(1, math.ceil(wait))),
                        "X-RateLimit-Limit": str(limit),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "RateLimit-Reason": "jira-per-issue-on-write",
                    },
                )
        log.append(now)

    def _ep_changelog(self, ctx: Ctx) -> Response:
        ctx.allow("GET")
        params = ctx.params(("startAt", "maxResults"))
        start, page = offset_page(params, default=100, cap=100)
        with self._lock:
            issue = self._find(ctx.args["key"])
            chunk = issue.histories[start : start + page]
            total = len(issue.histories)
            base = f"{self.url}/rest/api/{ctx.version}/issue/{issue.key}/changelog"
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
        return reply(200, body)

    def _ep_comments(self, ctx: Ctx) -> Response:
        ctx.allow("GET", "POST")
        if ctx.request.method == "GET":
            params = ctx.params(("startAt", "maxResults", "orderBy", "expand"))
            start, page = offset_page(params, default=100, cap=100)
            with self._lock:
                issue = self._find(ctx.args["key"])
                ordered = list(issue.comments)
                if str(params.get("orderBy", "")).startswith("-"):
                    ordered.reverse()
                chunk = ordered[start : start + page]
                return reply(
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
                raise Reject(
                    413,
                    errors(f"This issue has reached the limit of {self.max_comments} comments."),
                )
            self._count_write(issue)
            comment = self._new_comment(issue, doc, ctx.caller)
            self._changed()
            return reply(201, self._comment_json(issue, comment, ctx.version))

    def _comment_body(self, ctx: Ctx) -> dict[str, Any]:
        body = ctx.request.body
        if not isinstance(body, Mapping) or body.get("body") in (None, ""):
            raise Reject(400, errors(errors={"comment": "Comment body can not be empty!"}))
        value = body["body"]
        if ctx.version == 3:
            if not is_adf(value):
                raise Reject(400, errors("Comment body is not valid!"))
            return copy.deepcopy(dict(value))
        if not isinstance(value, str):
            raise Reject(400, errors("Comment body is not valid!"))
        return adf_text(value)

    def _ep_comment(self, ctx: Ctx) -> Response:
        ctx.allow("GET", "PUT")
        ctx.params(("expand", "notifyUsers", "overrideEditableFlag"))
        with self._lock:
            issue = self._find(ctx.args["key"])
            try:
                comment = self._comment(issue, ctx.args["cid"])
            except KeyError:
                raise Reject(
                    404, errors(f"Can not find a comment for the id: {ctx.args['cid']}.")
                ) from None
            if ctx.request.method == "PUT":
                doc = self._comment_body(ctx)
                if comment.author != ctx.caller:
                    raise Reject(
                        403, errors("You do not have the permission to edit this comment.")
                    )
                self._count_write(issue)
                comment.body = doc
                comment.updated = self.now()
                comment.update_author = ctx.caller
                issue.updated = max(comment.updated, issue.updated)
                self._changed()
            return reply(200, self._comment_json(issue, comment, ctx.version))

    def _ep_issue_props(self, ctx: Ctx) -> Response:
        ctx.allow("GET")
        with self._lock:
            issue = self._find(ctx.args["key"])
            base = f"{self.url}/rest/api/{ctx.version}/issue/{issue.id}/properties"
            keys = [{"self": f"{base}/{k}", "key": k} for k in issue.properties]
            return reply(200, {"keys": keys})

    def _ep_issue_prop(self, ctx: Ctx) -> Response:
        ctx.allow("GET", "PUT", "DELETE")
        with self._lock:
            issue = self._find(ctx.args["key"])
            return self._property(ctx, issue, issue.properties, write_counts=True)

    def _ep_comment_prop(self, ctx: Ctx) -> Response:
        ctx.allow("GET", "PUT", "DELETE")
        with self._lock:
            for issue in self._issues.values():
                for comment in issue.comments:
                    if comment.id == ctx.args["cid"]:
                        return self._property(ctx, issue, comment.properties, write_counts=False)
        raise Reject(404, errors(f"Can not find a comment for the id: {ctx.args['cid']}."))

    def _property(
        self, ctx: Ctx, issue: Issue, store: dict[str, Any], *, write_counts: bool
    ) -> Response:
        key = ctx.args["prop"]
        method = ctx.request.method
        if method == "GET":
            if key not in store:
                raise Reject(404, errors(f"The property with key '{key}' does not exist."))
            return reply(200, {"key": key, "value": copy.deepcopy(store[key])})
        if method == "DELETE":
            if key not in store:
                raise Reject(404, errors(f"The property with key '{key}' does not exist."))
            if write_counts:
                self._count_write(issue)
            del store[key]
            self._changed()
            return reply(204)
        if len(key) > 255:
            raise Reject(400, errors("The property key cannot be longer than 255 characters."))
        if ctx.request.raw is None or not ctx.request.raw.strip():
            raise Reject(400, errors("The property value cannot be empty."))
        if len(ctx.request.raw) > 32768:
            raise Reject(400, errors("The property value cannot be longer than 32768 bytes."))
        if not ctx.request.json_ok:
            raise Reject(400, errors("The property value must be a valid JSON."))
        if write_counts:
            self._count_write(issue)
        created = key not in store
        store[key] = copy.deepcopy(ctx.request.body)
        self._changed()
        return reply(201 if created else 200)


def _page(values: list[dict[str, Any]], ctx: Ctx) -> dict[str, Any]:
    """A ``PageBean`` of ``values`` for the request's ``startAt``/``maxResults``."""
    start, size = offset_page(ctx.params(("startAt", "maxResults")), default=50, cap=100)
    chunk = values[start : start + size]
    return {
        "isLast": start + len(chunk) >= len(values),
        "maxResults": size,
        "startAt": start,
        "total": len(values),
        "values": chunk,
    }
