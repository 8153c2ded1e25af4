"""The Jira REST client: authentication, the requests bridge sends, and Jira's errors turned
into bridge's error tree. HTTP only: what to ask for and what it means is the connector's.

Cloud speaks REST v3 (``/rest/api/3``; search through ``/search/jql`` with ``nextPageToken``,
rich text as ADF); Data Center speaks v2 (``/rest/api/2``; ``/search`` with ``startAt``,
paged by the ``maxResults`` the server echoes because it may cap what was asked). Rate
limits, retries and ``Retry-After`` are :class:`~bridge.connectors.http.HttpClient`'s.

Credentials never appear in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, unquote, urlsplit

import requests

from bridge.connectors.http import HttpClient, RateLimiter, RetryPolicy
from bridge.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorTransportError,
    ItemNotFoundError,
    RateLimitedError,
    RemoteValidationError,
    WriteConflictError,
)

__all__ = [
    "BasicAuth",
    "BearerAuth",
    "Deployment",
    "JiraClient",
    "SearchPage",
    "deployment_of",
    "error_from_response",
    "permission_for",
]

log = logging.getLogger("bridge.jira")

Deployment = Literal["cloud", "datacenter"]

# Data Center (OpenSearch/Lucene) refuses startAt + maxResults beyond this window.
DC_RESULT_WINDOW = 10_000
CHANGELOG_PAGE = 100
# v2, the one version both Cloud and Data Center serve; readable anonymously on both.
SERVER_INFO = "/rest/api/2/serverInfo"


def deployment_of(info: Mapping[str, Any]) -> Deployment | None:
    """A ``GET /serverInfo`` answer read as bridge's deployment: ``deploymentType`` "Cloud"
    is Cloud; anything else ("Server", "DataCenter": self-managed Jira says either) is Data
    Center, as is a Server old enough to lack the field but naming its version. None when the
    answer is not a serverInfo at all (a proxy's page, a wrong url)."""
    kind = info.get("deploymentType")
    if isinstance(kind, str) and kind.strip():
        return "cloud" if kind.strip().lower() == "cloud" else "datacenter"
    version = info.get("version")
    return "datacenter" if isinstance(version, str) and version else None


class BasicAuth(requests.auth.HTTPBasicAuth):
    """Cloud ``email:api_token``; its ``repr`` never shows the token."""

    def __repr__(self) -> str:
        return f"BasicAuth({self.username!r}, '***')"


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer`` for a Data Center PAT or an OAuth 2.0 (3LO) access token.

    ``token`` is a callable so a token file rotated by another process (an OAuth refresher)
    can be read again after a 401 (see :meth:`JiraClient.request`).
    """

    def __init__(self, token: Callable[[], str]) -> None:
        self._source = token
        self._token = token()

    def refresh(self) -> bool:
        """Read the token again; True when it changed."""
        fresh = self._source()
        changed = fresh != self._token
        self._token = fresh
        return changed

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "BearerAuth('***')"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

_ISSUE_PATH = re.compile(r"/rest/api/(?:2|3|latest)/issue/(?P<key>[^/]+)(?P<rest>/.*)?$")
_NOT_ON_SCREEN = re.compile(r"not on the appropriate screen|cannot be set", re.IGNORECASE)

_PERMISSIONS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"/search(/jql)?$"), "Browse projects"),
    ("POST", re.compile(r"/search(/jql)?$"), "Browse projects"),
    ("PUT", re.compile(r"/issue/[^/]+/comment/[^/]+$"), "Edit own comments (or Edit all comments)"),
    ("POST", re.compile(r"/issue/[^/]+/comment$"), "Add comments"),
    ("GET", re.compile(r"/issue/[^/]+/comment"), "Browse projects"),
    ("PUT", re.compile(r"/issue/[^/]+/properties/"), "Edit issues"),
    ("DELETE", re.compile(r"/issue/[^/]+/properties/"), "Edit issues"),
    ("PUT", re.compile(r"/issue/[^/]+$"), "Edit issues"),
    ("GET", re.compile(r"/issue/"), "Browse projects"),
)


def permission_for(method: str, path: str) -> str:
    """The Jira project permission an endpoint needs, for a 403's message."""
    for verb, pattern, permission in _PERMISSIONS:
        if verb == method.upper() and pattern.search(path):
            return permission
    return "Browse projects"


def _body_of(response: requests.Response) -> tuple[list[str], dict[str, str]]:
    """``errorMessages`` and ``errors`` of a Jira ``ErrorCollection`` (empty if not one)."""
    try:
        doc = response.json()
    except ValueError:
        return [], {}
    if not isinstance(doc, Mapping):
        return [], {}
    messages = doc.get("errorMessages")
    errors = doc.get("errors")
    return (
        [str(m) for m in messages if m] if isinstance(messages, list) else [],
        {str(k): str(v) for k, v in errors.items()} if isinstance(errors, Mapping) else {},
    )


def _field_message(field_id: str, message: str, names: Mapping[str, str]) -> str:
    name = names.get(field_id)
    label = f"field {name!r} ({field_id})" if name and name != field_id else f"field {field_id!r}"
    if _NOT_ON_SCREEN.search(message):
        return (
            f"{label} cannot be set: it is not on the edit screen — add it to the screen or "
            "remove it from writeback.fields"
        )
    return f"{label}: {message}"


def error_from_response(
    response: requests.Response,
    *,
    field_names: Mapping[str, str] | None = None,
    connector: str = "jira",
) -> ConnectorError:
    """The bridge error for a failed Jira response; the message names the cause and a fix.

    :param field_names: field id → display name, so a 400 names fields as people see them.
    """
    names = field_names or {}
    status = response.status_code
    method = (response.request.method or "GET") if response.request is not None else "GET"
    url = (response.request.url or "") if response.request is not None else response.url
    path = urlsplit(url).path
    messages, errors = _body_of(response)
    detail = "; ".join(messages + [f"{k}: {v}" for k, v in errors.items()])
    said = f" (Jira said: {detail})" if detail else ""
    where = f"{connector}: {method} {path}"
    match = _ISSUE_PATH.search(path)
    issue_key = unquote(match.group("key")) if match else None
    context: dict[str, Any] = {
        "connector": connector,
        "status": status,
        "method": method,
        "url": path,
    }

    if status == 401:
        return ConnectorAuthError(
            f"{where}: HTTP 401 — Jira did not accept the credentials; check the email and API "
            "token (Cloud) / PAT (Data Center), or that the OAuth access token has not "
            f"expired{said}",
            **context,
        )
    if status == 403:
        permission = permission_for(method, path)
        hint = ""
        if "notif" in detail.lower():
            hint = (
                "; turning notifications off needs Administer Jira or Administer projects: "
                "set writeback.notify_users: true or give bridge's account that permission"
            )
        return ConnectorAuthError(
            f"{where}: HTTP 403 — bridge's Jira account lacks the {permission!r} permission "
            f"this needs{hint}{said}",
            item_key=issue_key,
            **context,
        )
    if status == 404:
        rest = match.group("rest") if match else None
        if match and rest and rest.startswith("/comment/"):
            what = f"comment {rest.split('/')[2]} on issue {issue_key}"
        elif match:
            what = f"issue {issue_key}"
        else:
            what = "the resource"
        return ItemNotFoundError(
            f"{where}: HTTP 404 — {what} does not exist or bridge's account cannot see it "
            f"(Browse projects){said}",
            item_key=issue_key,
            **context,
        )
    if status == 409:
        return WriteConflictError(
            f"{where}: HTTP 409 — a conflicting update to {issue_key or 'the issue'} won; "
            f"bridge will read it again and re-plan{said}",
            item_key=issue_key,
            **context,
        )
    if status == 410:
        return ConnectorError(
            f"{where}: HTTP 410 — Atlassian has removed this endpoint (CHANGE-2046: Jira Cloud "
            "search moved to /rest/api/3/search/jql); bridge uses the new endpoint when the "
            f"source says deployment: cloud — check the deployment setting{said}",
            **context,
        )
    if status == 413:
        return ConnectorError(
            f"{where}: HTTP 413 — {issue_key or 'the issue'} has reached Jira's limit of "
            f"comments or attachments per issue{said}",
            item_key=issue_key,
            **context,
        )
    if status == 429:
        # Not logged here: HttpClient logs each retry with the wait and this reason.
        reason = response.headers.get("RateLimit-Reason")
        return RateLimitedError(
            f"{where}: HTTP 429 — Jira's rate limit ({reason or 'no reason given'}){said}",
            reason=reason,
            item_key=issue_key,
            **context,
        )
    if status >= 500:
        return ConnectorTransportError(
            f"{where}: HTTP {status} — Jira failed to answer; this is usually temporary{said}",
            **context,
        )
    if status in (400, 422):
        if errors:
            parts = [_field_message(fid, msg, names) for fid, msg in errors.items()]
            parts.extend(messages)
            return RemoteValidationError(
                f"{where}: HTTP {status} — " + "; ".join(parts),
                field_errors=errors,
                item_key=issue_key,
                **context,
            )
        hint = ""
        if "/search" in path:
            hint = " — check scope.jql in this source's settings"
        return RemoteValidationError(
            f"{where}: HTTP {status} — Jira refused the request{hint}{said}",
            item_key=issue_key,
            **context,
        )
    return ConnectorError(f"{where}: HTTP {status}{said}", item_key=issue_key, **context)


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


_ISSUE_SEGMENT = re.compile(r"/issue/[^/]+")
_COMMENT_SEGMENT = re.compile(r"/comment/[^/]+")


def _endpoint(path: str) -> str:
    """``/rest/api/3/issue/OPS-1/comment/7`` → ``/rest/api/3/issue/{key}/comment/{id}``."""
    return _COMMENT_SEGMENT.sub("/comment/{id}", _ISSUE_SEGMENT.sub("/issue/{key}", path))


def _csv(values: Sequence[str]) -> str:
    return ",".join(values)


def _shape_params(
    fields: Sequence[str], expand: Sequence[str], properties: Sequence[str]
) -> dict[str, str]:
    """``fields`` and, when asked for, ``expand`` and ``properties``: the same for a search
    and for one issue, so both return issues of the same shape."""
    params = {"fields": _csv(fields)}
    if expand:
        params["expand"] = _csv(expand)
    if properties:
        params["properties"] = _csv(properties)
    return params


def _issues_of(doc: Any, what: str) -> list[Any]:
    """The ``issues`` of a search page. A body without the list is not a search answer (a
    proxy's page, a changed API): read as empty, it would end the sweep early, unnoticed."""
    issues = doc.get("issues") if isinstance(doc, Mapping) else None
    if not isinstance(issues, list):
        raise ConnectorError(f'jira: {what}: expected {{"issues": [...]}}', connector="jira")
    return issues


class SearchPage(NamedTuple):
    """One Data Center search page: its issues, and the ``startAt``, ``maxResults`` (as the
    server echoed them; it may cap the page) and ``total`` it answered with."""

    issues: list[dict[str, Any]]
    start_at: int
    max_results: int | None
    total: int | None


class JiraClient:
    """Jira's REST API as bridge uses it: discovery, search, one issue, and the writes.

    Thread-safe: the sync's writer threads share one instance (one ``requests`` session,
    one rate limiter per direction). ``calls`` counts logical requests by kind (``search``,
    ``read``, ``write``), not retries.
    """

    def __init__(
        self,
        *,
        base_url: str,
        deployment: Deployment = "cloud",
        auth: requests.auth.AuthBase | None,
        reads_per_second: float = 100.0,
        writes_per_second: float = 50.0,
        concurrency: int = 8,
        timeout: float = 30.0,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        result_window: int = DC_RESULT_WINDOW,
    ) -> None:
        self.deployment = deployment
        self.field_names: dict[str, str] = {}
        self.result_window = result_window
        self._auth = auth
        self.http = HttpClient(
            connector="jira",
            base_url=base_url,
            auth=auth,
            error_from_response=self._error,
            read_limiter=RateLimiter(reads_per_second, clock=clock, sleep=sleep),
            write_limiter=None,  # per endpoint, in request()
            retry=retry,
            timeout=(min(10.0, timeout), timeout),
            verify=verify,
            sleep=sleep,
            pool_size=max(4, concurrency + 2),
        )
        self.calls: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        # Jira's burst limits are per endpoint and method, so each write endpoint (edit issue,
        # add comment, edit comment, set property) gets its own bucket of writes_per_second.
        self._write_rate = writes_per_second
        self._write_limiters: dict[str, RateLimiter] = {}
        self._clock = clock
        self._sleep = sleep
        self._verify = verify

    @property
    def deployment(self) -> Deployment:
        return self._deployment

    @deployment.setter
    def deployment(self, value: Deployment) -> None:
        """The API paths follow the deployment (Cloud: v3, Data Center: v2), which may be
        learnt from the site after the client is built (:meth:`detect_deployment`)."""
        self._deployment = value
        self.api = "/rest/api/3" if value == "cloud" else "/rest/api/2"

    def _error(self, response: requests.Response) -> ConnectorError:
        return error_from_response(response, field_names=self.field_names)

    def close(self) -> None:
        self.http.close()

    # -- plumbing ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> requests.Response:
        """One logical request; a 401 with a bearer token read from a file that has since
        changed (an OAuth refresher rotated it) is tried once more with the new token."""
        with self._count_lock:
            self.calls[kind] += 1
            limiter = None
            if method.upper() not in ("GET", "HEAD"):
                endpoint = f"{method.upper()} {_endpoint(path)}"
                limiter = self._write_limiters.get(endpoint)
                if limiter is None:
                    limiter = self._write_limiters[endpoint] = RateLimiter(
                        self._write_rate, clock=self._clock, sleep=self._sleep
                    )
        if limiter is not None:
            limiter.acquire()
        try:
            return self.http.request(method, path, params=params, json=json, ok=ok)
        except ConnectorAuthError as exc:
            if exc.status == 401 and isinstance(self._auth, BearerAuth) and self._auth.refresh():
                log.info("jira: the access token changed on disk; retrying once with it")
                return self.http.request(method, path, params=params, json=json, ok=ok)
            raise

    def _json(self, response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ConnectorTransportError(
                f"jira: {what}: the answer is not JSON (HTTP {response.status_code}, "
                f"{response.headers.get('Content-Type', 'no content type')}); is url the "
                "site's base URL?",
                connector="jira",
                status=response.status_code,
            ) from None

    def _issue_path(self, key: str, rest: str = "") -> str:
        # quote() leaves "." and ".." as they are, and requests (urllib3) resolves them as dot
        # segments: issue/.. would be GET /rest/api/3/ with bridge's credentials.
        if key.strip(".") == "":
            raise ItemNotFoundError(
                f"jira: {key!r} is not an issue key or id", connector="jira", item_key=key
            )
        return f"{self.api}/issue/{quote(key, safe='')}{rest}"

    # -- discovery -----------------------------------------------------------------------------

    def myself(self) -> dict[str, Any]:
        """``GET /myself``: bridge's own account (id for loop prevention, time zone for JQL)."""
        doc = self._json(self.request("GET", f"{self.api}/myself", kind="read"), "GET /myself")
        if not isinstance(doc, dict):
            raise ConnectorError("jira: GET /myself: expected a user object", connector="jira")
        return doc

    def server_info(self) -> dict[str, Any]:
        """``GET /rest/api/2/serverInfo``: which Jira the site is (``deploymentType``).

        Sent with the credentials; after a 401 or 403, once more without them (both Cloud
        and Data Center answer it anonymously), because Cloud refuses a Data Center PAT
        outright and the site must still be able to say that it is Cloud. When the
        anonymous request fails too, the first refusal is raised.
        """
        try:
            response = self.request("GET", SERVER_INFO, kind="read")
        except ConnectorAuthError as refused:
            try:
                response = self._anonymous_get(SERVER_INFO)
            except ConnectorError:
                raise refused from None
        doc = self._json(response, "GET /serverInfo")
        if not isinstance(doc, dict):
            raise ConnectorError("jira: GET /serverInfo: expected an object", connector="jira")
        return doc

    def _anonymous_get(self, path: str) -> requests.Response:
        """``GET path`` without credentials, through a session of its own (the shared one
        always sends them), with the same TLS settings, retries and limits."""
        anonymous = HttpClient(
            connector="jira",
            base_url=self.http.base_url,
            auth=None,
            error_from_response=self._error,
            read_limiter=self.http.read_limiter,
            retry=self.http.retry,
            timeout=self.http.timeout,
            verify=self._verify,
            sleep=self._sleep,
            pool_size=1,
        )
        with self._count_lock:
            self.calls["read"] += 1
        try:
            return anonymous.request("GET", path)
        finally:
            anonymous.close()

    def detect_deployment(self) -> Deployment:
        """Ask the site whether it is Cloud or Data Center, and speak its API from now on:
        for a source whose settings do not say ``deployment``. One request (two when the
        credentials are refused); call it before any other.

        :raises ConnectorError: the site cannot be asked, or does not answer like Jira; the
            message says how to skip the question.
        """
        skip = "set deployment: cloud or deployment: datacenter in the source to skip it"
        try:
            info = self.server_info()
        except ConnectorError as exc:
            if exc.status == 404:  # not "an item is gone": nothing Jira-like answers there
                raise ConnectorError(
                    f"jira: GET {SERVER_INFO}: HTTP 404 — no Jira answers at this url; is it "
                    f"the site's base URL (with its context path, if it has one)? Or {skip}",
                    connector="jira",
                    status=404,
                    method="GET",
                    url=SERVER_INFO,
                ) from exc
            raise exc.restated(
                f"{exc} — bridge asked the site whether it is Jira Cloud or Data Center, as "
                f"the source does not say; {skip}"
            ) from exc
        deployment = deployment_of(info)
        if deployment is None:
            raise ConnectorError(
                f"jira: GET {SERVER_INFO}: the answer names no deploymentType or version, so "
                f"it does not come from Jira; is url the site's base URL? Or {skip}",
                connector="jira",
                method="GET",
                url=SERVER_INFO,
            )
        self.deployment = deployment
        return deployment

    def fields(self) -> list[dict[str, Any]]:
        """``GET /field``: every field bridge's account can see (ids, names, schemas)."""
        doc = self._json(self.request("GET", f"{self.api}/field", kind="read"), "GET /field")
        if not isinstance(doc, list):
            raise ConnectorError("jira: GET /field: expected a list of fields", connector="jira")
        entries = [f for f in doc if isinstance(f, dict) and isinstance(f.get("id"), str)]
        self.field_names = {f["id"]: str(f.get("name") or f["id"]) for f in entries}
        return entries

    # -- reads ---------------------------------------------------------------------------------

    def search(
        self,
        jql: str,
        *,
        fields: Sequence[str],
        expand: Sequence[str] = (),
        properties: Sequence[str] = (),
        page_size: int = 100,
    ) -> Generator[dict[str, Any], None, bool]:
        """Every issue ``jql`` selects, page by page (memory holds one page).

        Returns (as the generator's value) True when a Data Center search stopped at the
        result window (``startAt + maxResults`` > 10,000) and must be continued with a
        narrower query.

        Data Center pages by ``startAt``, a position: an issue that leaves the results
        between two pages makes the next page skip one. Fine for a look-up; a sync pages
        with :meth:`search_page` by key instead (:meth:`JiraConnector.pull`).
        """
        if self.deployment == "cloud":
            yield from self._search_cloud(jql, fields, expand, properties, page_size)
            return False
        return (yield from self._search_dc(jql, fields, expand, properties, page_size))

    def _search_cloud(
        self,
        jql: str,
        fields: Sequence[str],
        expand: Sequence[str],
        properties: Sequence[str],
        page_size: int,
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "jql": jql,
            "maxResults": page_size,
            **_shape_params(fields, expand, properties),
        }
        seen_tokens: set[str] = set()
        while True:
            doc = self._json(
                self.request("GET", f"{self.api}/search/jql", kind="search", params=params),
                "GET /search/jql",
            )
            issues = _issues_of(doc, "GET /search/jql")
            yield from (i for i in issues if isinstance(i, dict))
            token = doc.get("nextPageToken")
            if not isinstance(token, str) or not token or doc.get("isLast") is True:
                return
            if token in seen_tokens:
                raise ConnectorError(
                    "jira: GET /search/jql returned a page token it had already given; "
                    "stopping rather than looping",
                    connector="jira",
                )
            seen_tokens.add(token)
            params["nextPageToken"] = token

    def _search_dc(
        self,
        jql: str,
        fields: Sequence[str],
        expand: Sequence[str],
        properties: Sequence[str],
        page_size: int,
    ) -> Generator[dict[str, Any], None, bool]:
        start = 0
        while True:
            page = self.search_page(
                jql,
                start_at=start,
                fields=fields,
                expand=expand,
                properties=properties,
                page_size=page_size,
            )
            yield from page.issues
            if not page.issues:
                return False
            step = page.max_results or len(page.issues)
            start = page.start_at + step
            if page.total is not None and start >= page.total:
                return False
            if start + step > self.result_window:
                return True

    def search_page(
        self,
        jql: str,
        *,
        start_at: int,
        fields: Sequence[str],
        expand: Sequence[str] = (),
        properties: Sequence[str] = (),
        page_size: int = 100,
    ) -> SearchPage:
        """One Data Center ``GET /search`` page, ``startAt`` = ``start_at``.

        :meth:`search` pages by position, so an issue that leaves the results between two
        pages shifts the later ones back and one is never read. The connector's pull pages
        by key instead and calls this (:meth:`JiraConnector._issues_dc`).
        """
        params: dict[str, Any] = {
            "jql": jql,
            "startAt": start_at,
            "maxResults": page_size,
            **_shape_params(fields, expand, properties),
        }
        doc = self._json(
            self.request("GET", f"{self.api}/search", kind="search", params=params),
            "GET /search",
        )
        issues = [i for i in _issues_of(doc, "GET /search") if isinstance(i, dict)]
        echoed, began, total = (doc.get(k) for k in ("maxResults", "startAt", "total"))
        return SearchPage(
            issues=issues,
            start_at=began if isinstance(began, int) else start_at,
            max_results=echoed if isinstance(echoed, int) and echoed > 0 else None,
            total=total if isinstance(total, int) else None,
        )

    def issue(
        self,
        key: str,
        *,
        fields: Sequence[str],
        expand: Sequence[str] = (),
        properties: Sequence[str] = (),
    ) -> dict[str, Any]:
        """``GET /issue/{key}``; ItemNotFoundError when it is gone or hidden."""
        params = _shape_params(fields, expand, properties)
        doc = self._json(
            self.request("GET", self._issue_path(key), kind="read", params=params),
            f"GET issue {key}",
        )
        if not isinstance(doc, dict):
            raise ConnectorError(f"jira: GET issue {key}: expected an issue", connector="jira")
        return doc

    def changelog(self, key: str) -> list[dict[str, Any]]:
        """Every history of an issue, oldest first (the search embeds at most 20)."""
        if self.deployment != "cloud":
            doc = self.issue(key, fields=["created"], expand=["changelog"])
            changelog = doc.get("changelog")
            histories = changelog.get("histories") if isinstance(changelog, Mapping) else None
            return [h for h in histories or [] if isinstance(h, dict)]
        out: list[dict[str, Any]] = []
        start = 0
        while True:
            doc = self._json(
                self.request(
                    "GET",
                    self._issue_path(key, "/changelog"),
                    kind="read",
                    params={"startAt": start, "maxResults": CHANGELOG_PAGE},
                ),
                f"GET changelog of {key}",
            )
            values = doc.get("values") if isinstance(doc, Mapping) else None
            if not isinstance(values, list):
                raise ConnectorError(
                    f"jira: GET changelog of {key}: expected a page of histories",
                    connector="jira",
                )
            out.extend(v for v in values if isinstance(v, dict))
            total = doc.get("total")
            if (
                not values
                or doc.get("isLast") is True
                or (isinstance(total, int) and len(out) >= total)
            ):
                return out
            start += len(values)

    def comments(self, key: str) -> Iterator[dict[str, Any]]:
        """The issue's comments, newest first (to find bridge's own after a lost write)."""
        start = 0
        while True:
            doc = self._json(
                self.request(
                    "GET",
                    self._issue_path(key, "/comment"),
                    kind="read",
                    params={"startAt": start, "maxResults": 100, "orderBy": "-created"},
                ),
                f"GET comments of {key}",
            )
            values = doc.get("comments") if isinstance(doc, Mapping) else None
            if not isinstance(values, list) or not values:
                return
            yield from (c for c in values if isinstance(c, dict))
            start += len(values)
            total = doc.get("total")
            if isinstance(total, int) and start >= total:
                return

    def _pages(self, path: str, what: str) -> Iterator[dict[str, Any]]:
        """The ``values`` of a ``PageBean`` resource, page by page (``startAt``/``isLast``)."""
        start = 0
        while True:
            doc = self._json(
                self.request(
                    "GET", path, kind="read", params={"startAt": start, "maxResults": 100}
                ),
                what,
            )
            values = doc.get("values") if isinstance(doc, Mapping) else None
            if not isinstance(values, list):
                raise ConnectorError(f"jira: {what}: expected a page of values", connector="jira")
            yield from (v for v in values if isinstance(v, dict))
            start += len(values)
            total = doc.get("total")
            if (
                not values
                or doc.get("isLast") is True
                or (isinstance(total, int) and start >= total)
            ):
                return

    def field_options(self, field_id: str) -> list[str]:
        """Every enabled option of a select field, over all its contexts (Cloud; needs the
        Administer Jira permission — a 403 or 404 says to ask :meth:`edit_meta` instead)."""
        base = f"{self.api}/field/{quote(field_id, safe='')}/context"
        options: dict[str, None] = {}
        for context in self._pages(base, f"GET contexts of {field_id}"):
            cid = quote(str(context.get("id")), safe="")
            for option in self._pages(f"{base}/{cid}/option", f"GET options of {field_id}"):
                value = option.get("value")
                if (
                    isinstance(value, str)
                    and not option.get("disabled")
                    and not option.get("optionId")
                ):
                    options.setdefault(value)
        return list(options)

    def edit_meta(self, key: str) -> dict[str, Any]:
        """``GET /issue/{key}/editmeta``: the fields the caller may edit on that issue, with
        the options of each select (``allowedValues``) — readable without admin rights."""
        doc = self._json(
            self.request("GET", self._issue_path(key, "/editmeta"), kind="read"),
            f"GET editmeta of {key}",
        )
        fields = doc.get("fields") if isinstance(doc, Mapping) else None
        return fields if isinstance(fields, dict) else {}

    # -- writes --------------------------------------------------------------------------------

    def edit_issue(self, key: str, body: Mapping[str, Any], *, notify_users: bool) -> None:
        """``PUT /issue/{key}`` (204)."""
        params = None if notify_users else {"notifyUsers": "false"}
        self.request(
            "PUT", self._issue_path(key), kind="write", params=params, json=body, ok=(200, 204)
        )

    def add_comment(self, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /issue/{key}/comment`` (201); returns the comment (its ``id``)."""
        response = self.request(
            "POST", self._issue_path(key, "/comment"), kind="write", json=body, ok=(200, 201)
        )
        doc = self._json(response, f"POST comment on {key}")
        if not isinstance(doc, dict) or doc.get("id") in (None, ""):
            raise ConnectorError(
                f"jira: POST comment on {key}: the answer has no comment id", connector="jira"
            )
        return doc

    def update_comment(
        self, key: str, comment_id: str, body: Mapping[str, Any], *, notify_users: bool
    ) -> None:
        """``PUT /issue/{key}/comment/{id}`` (200)."""
        params = None if notify_users else {"notifyUsers": "false"}
        self.request(
            "PUT",
            self._issue_path(key, f"/comment/{quote(comment_id, safe='')}"),
            kind="write",
            params=params,
            json=body,
            ok=(200, 204),
        )

    def get_property(self, key: str, prop: str) -> Any | None:
        """``GET /issue/{key}/properties/{prop}``: its value, None when it is not set."""
        try:
            response = self.request(
                "GET", self._issue_path(key, f"/properties/{quote(prop, safe='')}"), kind="read"
            )
        except ItemNotFoundError:
            return None
        doc = self._json(response, f"GET property {prop} of {key}")
        return doc.get("value") if isinstance(doc, Mapping) else None

    def set_property(self, key: str, prop: str, value: Any) -> None:
        """``PUT /issue/{key}/properties/{prop}`` (200 updated, 201 created)."""
        self.request(
            "PUT",
            self._issue_path(key, f"/properties/{quote(prop, safe='')}"),
            kind="write",
            json=value,
            ok=(200, 201, 204),
        )
