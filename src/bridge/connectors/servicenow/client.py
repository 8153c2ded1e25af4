"""The ServiceNow Table API over HTTP: authentication, paging, errors people can act on.

Built on :class:`bridge.connectors.http.HttpClient` (rate limits, retries, ``Retry-After``),
with what is particular to ServiceNow:

- **No session cookie is ever sent back.** ServiceNow runs the requests of one session one at
  a time, and drops them with an empty HTTP 202 once too many queue up; without the cookie,
  concurrent requests are independent.
- **A 202 is not a success**, on a read or a write: the request was dropped unapplied, so it is
  sent again like after a 429, even a PATCH that adds a journal entry (``accept`` hook), and
  like a 429 it is no attempt. A 200 with an HTML page (a hibernating developer instance, a
  login page, a proxy) is an error that says so, not a JSON parse failure.
- **Rate-limit rules** (``sys_rate_limit_rules``, requests per hour) answer with
  ``X-RateLimit-Limit``, ``X-RateLimit-Reset`` (epoch seconds) and ``X-RateLimit-Rule`` but
  never with what is left: bridge counts that itself, per rule and hour, so the shared
  limiter spreads the end of the hour's budget instead of running into 429s
  (:class:`RuleBudgets`).
- **OAuth tokens** (``/oauth_token.do``, password or client-credentials grant) are renewed
  before they expire (refresh token first, the grant again if that is refused), and once more
  when a request gets a 401 anyway; the request is then repeated once.
- **Error bodies** (``{"error": {"message", "detail"}, "status": "failure"}``) become errors
  that name the table, the record and, for a refused write, the fields.
- **Changed records** are read in pages by *keyset*, not offset: each page asks for the
  records after the last one seen, in ``(sys_updated_on, sys_id)`` order, up to an upper bound
  fixed when the sweep starts. Offset paging over records ordered by ``sys_updated_on``
  skips one record at a page boundary for every record that is updated meanwhile (it moves to
  the end and everything after it shifts up) — and a sync updates the records it has just
  read. The ``Link`` header still says whether another page exists (a page can come back
  short because ``sysparm_limit`` is applied before ACLs); a page emptied by ACLs is stepped
  over with the offsets it gives. Datetimes in queries are plain UTC literals: never
  ``javascript:gs.dateGenerate()``, which reads them in the API user's time zone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import requests

from bridge.connectors.http import (
    HttpClient,
    RateLimiter,
    RateLimitInfo,
    RetryPolicy,
    rate_limit_info,
)
from bridge.errors import (
    ConnectorAuthError,
    ConnectorError,
    ItemNotFoundError,
    RateLimitedError,
    RemoteValidationError,
    WriteConflictError,
)
from bridge.timefmt import format_servicenow_instant

__all__ = [
    "OAuthGrant",
    "OAuthTokens",
    "Page",
    "RuleBudgets",
    "ServiceNowClient",
    "changed_query",
    "error_factory",
    "link_offset",
]

log = logging.getLogger("bridge.servicenow")

TOKEN_PATH = "/oauth_token.do"  # noqa: S105 - a URL path, not a secret
_TABLE_PATH = re.compile(r"/api/now/(?:v\d+/)?table/(?P<table>[^/?]+)(?:/(?P<sys_id>[^/?]+))?")
_LINK = re.compile(r"<(?P<url>[^>]*)>\s*;\s*rel=\"?(?P<rel>[A-Za-z]+)\"?")

Record = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Queries and paging (pure)
# --------------------------------------------------------------------------------------------


def _alternatives(filter_text: str) -> list[str]:
    """The ``^NQ`` alternatives of an admin's filter, without ``ORDERBY`` terms (bridge orders
    the sweep itself) and without a trailing ``^EQ``."""
    groups = []
    for chunk in filter_text.split("^NQ"):
        terms = [t for t in chunk.split("^") if t and t != "EQ" and not t.startswith("ORDERBY")]
        groups.append("^".join(terms))
    return groups or [""]


def changed_query(
    filter_text: str,
    *,
    since: datetime | None,
    until: datetime | None,
    after: tuple[str, str] | None = None,
) -> str:
    """The encoded query for one page of a sweep of records changed in ``[since, until]``.

    ``after`` = (``sys_updated_on``, ``sys_id``) of the last record read: the page starts
    right after it. Every ``^NQ`` alternative of the filter gets the window, so a filter with
    alternatives stays correct.
    """
    bound = [f"sys_updated_on<={format_servicenow_instant(until)}"] if until is not None else []
    if after is None:
        tails = [
            [f"sys_updated_on>={format_servicenow_instant(since)}"] if since is not None else []
        ]
    else:
        stamp, sys_id = after
        tails = [[f"sys_updated_on={stamp}", f"sys_id>{sys_id}"], [f"sys_updated_on>{stamp}"]]
    parts = [
        "^".join(t for t in (group, *tail, *bound) if t)
        for group in _alternatives(filter_text)
        for tail in tails
    ]
    return "^NQ".join(parts) + "^ORDERBYsys_updated_on^ORDERBYsys_id"


def link_offset(header: str, rel: str = "next") -> int | None:
    """``sysparm_offset`` of the ``Link`` URL with relation ``rel``; None when there is none."""
    for match in _LINK.finditer(header):
        if match["rel"].lower() != rel:
            continue
        values = parse_qs(urlsplit(match["url"]).query).get("sysparm_offset")
        if values:
            try:
                return int(values[0])
            except ValueError:
                return None
    return None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its records, ``X-Total-Count`` (for this query) and the offset of
    the next page (None on the last one)."""

    records: list[Record]
    total: int | None
    next_offset: int | None


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _envelope(response: requests.Response) -> tuple[str, str | None] | None:
    """(message, detail) of ServiceNow's error body, or None when the body is not one."""
    try:
        doc = response.json()
    except ValueError:
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "").strip()
        detail = error.get("detail")
        return message, (str(detail).strip() or None) if detail is not None else None
    if isinstance(error, str):  # the OAuth endpoint: {"error", "error_description"}
        return error, str(doc.get("error_description") or "").strip() or None
    return None


def _is_html(response: requests.Response) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


def _request_fields(request: requests.PreparedRequest | None) -> list[str]:
    body = request.body if request is not None else None
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body.startswith("{"):
        return []
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    return sorted(doc) if isinstance(doc, dict) else []


def error_factory(connector: str, who: str) -> Callable[[requests.Response], ConnectorError]:
    """Turn a ServiceNow error response into an error that says what to do about it.

    :param who: how to name the credentials in a 401 message ("user bridge.integration").
    """

    def make(response: requests.Response) -> ConnectorError:
        status = response.status_code
        request = response.request
        method = (request.method or "GET").upper() if request is not None else "GET"
        path = urlsplit(request.url or "").path if request is not None else ""
        match = _TABLE_PATH.search(path)
        table = match["table"] if match else None
        sys_id = match["sys_id"] if match else None
        what = table or path or "the API"
        envelope = _envelope(response)
        if envelope is None:
            reason = "an HTML page" if _is_html(response) else "no error details"
        else:
            message, detail = envelope
            reason = f"{message}: {detail}" if detail and detail != message else message
        common: dict[str, Any] = {"connector": connector, "status": status, "reason": reason}
        if envelope is None and _is_html(response):
            return ConnectorError(
                f"ServiceNow answered HTTP {status} to {method} {path} with an HTML page, not "
                "the REST API: check the url (a login page or proxy), or wake the instance "
                "(developer instances hibernate)",
                **common,
            )
        if status == 401:
            mfa = (
                "; the instance asks for a multi-factor token (X-MFA_TOKEN: invalid)"
                if "X-MFA_TOKEN" in response.headers
                else ""
            )
            return ConnectorAuthError(
                f"ServiceNow did not accept the credentials of {who} (HTTP 401: {reason}); "
                f"check the source's auth settings and that the account is active{mfa}",
                **common,
            )
        if status == 403:
            plain = envelope[1] or envelope[0] if envelope else reason
            if method in ("PATCH", "PUT", "POST", "DELETE"):
                fields = _request_fields(request)
                targets = ", ".join(f"{what}.{f}" for f in fields) or what
                return ConnectorAuthError(
                    f"ServiceNow refused to update {targets}: {plain} — grant the integration "
                    f"user write access to the field{'s' if len(fields) > 1 else ''} (a write "
                    f"ACL on {what}), or check the business rules and data policies of {what}",
                    **common,
                )
            return ConnectorAuthError(
                f"ServiceNow refused to read {what}: {plain} — grant the integration user "
                f"read access to {what} (a role such as itil, or a read ACL)",
                **common,
            )
        if status == 404:
            key = f"{table}:{sys_id}" if table and sys_id else None
            subject = f"{table} record {sys_id}" if key else f"records in {what}"
            return ItemNotFoundError(
                f"ServiceNow has no {subject}, or an ACL hides it from the integration user "
                f"({reason})",
                item_key=key,
                **common,
            )
        if status == 409:
            return WriteConflictError(
                f"ServiceNow reported a conflict updating {what}: {reason}", **common
            )
        if status == 429:
            rule = response.headers.get("X-RateLimit-Rule")
            return RateLimitedError(
                f"ServiceNow's rate limit stopped {method} {what}: {reason}"
                + (f" (rule {rule} in sys_rate_limit_rules)" if rule else ""),
                **common,
            )
        if status == 400:
            if envelope and envelope[0].lower().startswith("invalid table"):
                return RemoteValidationError(
                    f"ServiceNow has no table {table}: {reason}; check scope.tables", **common
                )
            return RemoteValidationError(f"ServiceNow rejected {method} {what}: {reason}", **common)
        return ConnectorError(
            f"ServiceNow answered HTTP {status} to {method} {what}: {reason}", **common
        )

    return make


def _oauth_error_factory(
    connector: str, grant: str, client_id: str
) -> Callable[[requests.Response], ConnectorError]:
    def make(response: requests.Response) -> ConnectorError:
        envelope = _envelope(response)
        reason = (
            f"{envelope[1] or envelope[0]} ({envelope[0]})"
            if envelope
            else ("an HTML page" if _is_html(response) else f"HTTP {response.status_code}")
        )
        common: dict[str, Any] = {
            "connector": connector,
            "status": response.status_code,
            "reason": reason,
        }
        if response.status_code in (400, 401, 403):
            hint = (
                "; client credentials also need the system property "
                "glide.oauth.inbound.client.credential.grant_type.enabled=true"
                if grant == "client_credentials"
                else "; check the user and password too"
            )
            return ConnectorAuthError(
                f"ServiceNow refused the OAuth {grant} grant for client {client_id}: {reason}"
                f" — check client_id and client_secret (System OAuth → Application Registry)"
                f"{hint}",
                **common,
            )
        if response.status_code == 429:
            return RateLimitedError(f"ServiceNow rate-limited {TOKEN_PATH}: {reason}", **common)
        return ConnectorError(
            f"ServiceNow answered HTTP {response.status_code} to {TOKEN_PATH}: {reason}", **common
        )

    return make


# --------------------------------------------------------------------------------------------
# OAuth
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OAuthGrant:
    """How to ask ``/oauth_token.do`` for a token (ServiceNow's Application Registry entry)."""

    grant: Literal["password", "client_credentials"]
    client_id: str
    client_secret: str
    user: str | None = None
    password: str | None = None

    def form(self) -> dict[str, str]:
        form = {
            "grant_type": self.grant,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.grant == "password":
            form["username"] = self.user or ""
            form["password"] = self.password or ""
        return form


class OAuthTokens(requests.auth.AuthBase):
    """Bearer tokens for every request; renewed ``margin`` before they expire.

    Thread-safe: one thread renews while the others wait for the new token. ``generation``
    counts renewals, so a 401 only forces a renewal if nobody renewed since the request left.
    """

    def __init__(
        self,
        http: HttpClient,
        grant: OAuthGrant,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_margin: float = 60.0,
    ) -> None:
        self.http = http
        self.grant = grant
        self.clock = clock
        self.max_margin = max_margin
        self.generation = 0
        self.grants = 0  # token requests made (for tests and the benchmark)
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._renew_at = 0.0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def token(self) -> str:
        with self._lock:
            if self._access is None or self.clock() >= self._renew_at:
                self._renew()
            assert self._access is not None  # noqa: S101 - set by _renew or it raised
            return self._access

    def invalidate(self, generation: int) -> None:
        """Forget the token a refused request used (unless it was renewed meanwhile)."""
        with self._lock:
            if generation == self.generation:
                self._renew_at = 0.0

    def _post(self, form: Mapping[str, str]) -> dict[str, Any]:
        self.grants += 1
        response = self.http.request(
            "POST", TOKEN_PATH, data=dict(form), ok=(200,), idempotent=True
        )
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str):
            raise ConnectorAuthError(
                f"ServiceNow's {TOKEN_PATH} answered without an access_token "
                f"(Content-Type {response.headers.get('Content-Type')!r}); check the url",
                connector=self.http.connector,
                status=response.status_code,
            )
        return doc

    def _renew(self) -> None:
        doc = None
        if self._refresh is not None:
            try:
                doc = self._post(
                    {
                        "grant_type": "refresh_token",
                        "client_id": self.grant.client_id,
                        "client_secret": self.grant.client_secret,
                        "refresh_token": self._refresh,
                    }
                )
            except ConnectorAuthError:
                log.info(
                    "%s: the refresh token was refused; asking for a new token", self.http.connector
                )
        if doc is None:
            doc = self._post(self.grant.form())
        self._access = str(doc["access_token"])
        refresh = doc.get("refresh_token")
        self._refresh = refresh if isinstance(refresh, str) and refresh else self._refresh
        try:
            lifetime = float(doc.get("expires_in", 1800))
        except (TypeError, ValueError):
            lifetime = 1800.0
        margin = min(self.max_margin, lifetime * 0.1)
        self._renew_at = self.clock() + max(0.0, lifetime - margin)
        self.generation += 1


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class RuleBudgets:
    """What is left of each rate-limit rule's hour, counted from the answers.

    A response that a rule in ``sys_rate_limit_rules`` matched says the rule
    (``X-RateLimit-Rule``), its requests per hour (``X-RateLimit-Limit``) and when its hour
    ends (``X-RateLimit-Reset``, epoch seconds), but not how many are left (ServiceNow sends
    no ``X-RateLimit-Remaining``). This reads them like :func:`rate_limit_info` and adds the
    remaining count: the limit less the answers naming the same rule and hour (a 429: none
    left). Others using the same rule make the count optimistic, and a 429 then still says
    stop. Thread-safe; one per client.
    """

    def __init__(self, keep: int = 64) -> None:
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], float] = {}
        self._keep = keep

    def __call__(self, response: requests.Response, now: datetime) -> RateLimitInfo | None:
        info = rate_limit_info(response.headers, now)
        rule = response.headers.get("X-RateLimit-Rule")
        if info is None or not rule or info.remaining is not None or info.limit is None:
            return info
        key = (rule, response.headers.get("X-RateLimit-Reset", "").strip())
        with self._lock:
            used = info.limit if response.status_code == 429 else self._used.get(key, 0.0) + 1
            self._used[key] = used
            while len(self._used) > self._keep:
                del self._used[next(iter(self._used))]
        return dataclasses.replace(info, remaining=max(0.0, info.limit - used))


def _answered(response: requests.Response) -> bool:
    """A 202 from the Table API is a dropped request (overloaded session), never a result."""
    return response.status_code != 202


class ServiceNowClient:
    """Table API calls for one instance. Thread-safe (writes run from a pool)."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None = None,
        oauth: OAuthGrant | None = None,
        who: str = "the integration user",
        name: str = "servicenow",
        read_limiter: RateLimiter | None = None,
        write_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pool_size: int = 8,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.oauth: OAuthTokens | None = None
        if oauth is not None:
            token_http = HttpClient(
                connector=name,
                base_url=self.base_url,
                auth=None,
                error_from_response=_oauth_error_factory(name, oauth.grant, oauth.client_id),
                retry=self.retry,
                timeout=timeout,
                persist_cookies=False,
                verify=verify,
                sleep=sleep,
                rng=self._rng,
                pool_size=2,
            )
            self.oauth = OAuthTokens(token_http, oauth, clock=clock)
            auth = self.oauth
            who = f"OAuth client {oauth.client_id}" + (
                f" (user {oauth.user})" if oauth.user else ""
            )
        self.http = HttpClient(
            connector=name,
            base_url=self.base_url,
            auth=auth,
            error_from_response=error_factory(name, who),
            read_limiter=read_limiter,
            write_limiter=write_limiter,
            retry=self.retry,
            timeout=timeout,
            persist_cookies=False,
            verify=verify,
            sleep=sleep,
            rng=self._rng,
            pool_size=pool_size,
            rate_limit_info=RuleBudgets(),
        )

    def close(self) -> None:
        self.http.close()
        if self.oauth is not None:
            self.oauth.http.close()

    @property
    def calls(self) -> int:
        """Requests sent to the Table API (retries included, token requests not)."""
        return self.http.calls

    # ---- one request -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200, 202),
        accept: Callable[[requests.Response], bool] | None = _answered,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """One Table API request; with OAuth, a 401 renews the token and repeats it once."""
        generation = self.oauth.generation if self.oauth is not None else 0
        try:
            response = self.http.request(
                method, path, params=params, json=json, ok=ok, accept=accept, idempotent=idempotent
            )
        except ConnectorAuthError as exc:
            if exc.status != 401 or self.oauth is None:
                raise
            log.info("%s: %s %s got 401; renewing the OAuth token", self.name, method, path)
            self.oauth.invalidate(generation)
            response = self.http.request(
                method, path, params=params, json=json, ok=ok, accept=accept, idempotent=idempotent
            )
        return response

    def _result(self, response: requests.Response, method: str, path: str) -> Any:
        if _is_html(response) or "json" not in response.headers.get("Content-Type", "json"):
            raise ConnectorError(
                f"ServiceNow answered {method} {path} with HTTP {response.status_code} and "
                f"{'an HTML page' if _is_html(response) else 'no JSON'} instead of a result: "
                "the instance is probably hibernating (wake a developer instance at "
                "developer.servicenow.com) or the url points at a login page or proxy",
                connector=self.name,
                status=response.status_code,
                method=method,
                url=path,
            )
        try:
            doc = response.json()
        except ValueError:
            raise ConnectorError(
                f"ServiceNow answered {method} {path} with a body that is not JSON",
                connector=self.name,
                status=response.status_code,
                method=method,
                url=path,
            ) from None
        if not isinstance(doc, dict) or "result" not in doc:
            raise ConnectorError(
                f'ServiceNow answered {method} {path} without {{"result": ...}}',
                connector=self.name,
                status=response.status_code,
                method=method,
                url=path,
            )
        return doc["result"]

    # ---- lists -------------------------------------------------------------------------

    def page(self, table: str, params: Mapping[str, str], *, offset: int = 0) -> Page:
        """One page of ``GET /api/now/table/{table}`` (``sysparm_limit`` must be in params)."""
        path = f"/api/now/table/{table}"
        query = dict(params)
        if offset:
            query["sysparm_offset"] = str(offset)
        try:
            response = self.request("GET", path, params=query)
        except ItemNotFoundError:  # v1 answers "nothing matched" with 404
            return Page([], 0, None)
        result = self._result(response, "GET", path)
        if not isinstance(result, list):
            raise ConnectorError(
                f"ServiceNow answered GET {path} with one record where a list was expected",
                connector=self.name,
            )
        records = [r for r in result if isinstance(r, dict)]
        total_text = response.headers.get("X-Total-Count")
        total = int(total_text) if total_text and total_text.strip().isdigit() else None
        limit = int(query.get("sysparm_limit", "10000"))
        link = response.headers.get("Link")
        if link is not None:
            next_offset = link_offset(link, "next")
        elif total is not None:
            next_offset = offset + limit if offset + limit < total else None
        else:  # no headers at all: a short page may be ACL-filtered, so only empty ends
            next_offset = offset + limit if records else None
        if next_offset is not None and next_offset <= offset:
            next_offset = None
        return Page(records, total, next_offset)

    def list_pages(
        self, table: str, *, query: str, fields: Sequence[str], page_size: int
    ) -> Iterator[Page]:
        """Every page a query matches, following ``Link: rel="next"`` (offset paging: for
        short, stable lists such as the task_sla rows of one page of tasks)."""
        params = _list_params(query, fields, page_size)
        offset = 0
        while True:
            page = self.page(table, params, offset=offset)
            yield page
            if page.next_offset is None:
                return
            offset = page.next_offset

    def list_records(
        self, table: str, *, query: str, fields: Sequence[str], page_size: int
    ) -> Iterator[Record]:
        """Every record a query matches (see :meth:`list_pages`)."""
        for page in self.list_pages(table, query=query, fields=fields, page_size=page_size):
            yield from page.records

    def changed_records(
        self,
        table: str,
        *,
        filter_text: str,
        since: datetime | None,
        until: datetime | None,
        fields: Sequence[str],
        page_size: int,
    ) -> Iterator[Page]:
        """Pages of the records of ``table`` matching the filter and changed in
        ``[since, until]``, oldest first, by keyset (see the module docstring)."""
        after: tuple[str, str] | None = None
        while True:
            query = changed_query(filter_text, since=since, until=until, after=after)
            params = _list_params(query, fields, page_size)
            page = self.page(table, params)
            while not page.records and page.next_offset is not None:
                # sysparm_limit applies before ACLs: step over pages the user cannot see.
                page = self.page(table, params, offset=page.next_offset)
            yield page
            if not page.records or page.next_offset is None:
                return
            last = page.records[-1]
            stamp, sys_id = plain_value(last.get("sys_updated_on")), plain_value(last.get("sys_id"))
            if not stamp or not sys_id:
                raise ConnectorError(
                    f"ServiceNow returned {table} records without sys_updated_on or sys_id; "
                    "bridge pages by them",
                    connector=self.name,
                )
            after = (stamp, sys_id)

    # ---- records -----------------------------------------------------------------------

    def get_record(self, table: str, sys_id: str, *, fields: Sequence[str]) -> Record:
        """One record; ItemNotFoundError (``item_key`` ``table:sys_id``) when gone or hidden."""
        path = f"/api/now/table/{table}/{sys_id}"
        response = self.request(
            "GET",
            path,
            params={
                "sysparm_fields": ",".join(fields),
                "sysparm_exclude_reference_link": "true",
            },
        )
        result = self._result(response, "GET", path)
        if not isinstance(result, dict):
            raise ConnectorError(
                f"ServiceNow answered GET {path} without a record", connector=self.name
            )
        return result

    def find_one(self, table: str, query: str, *, fields: Sequence[str]) -> Record | None:
        page = self.page(table, _list_params(query, fields, 1))
        return page.records[0] if page.records else None

    def patch_record(
        self,
        table: str,
        sys_id: str,
        body: Mapping[str, str],
        *,
        fields: Sequence[str],
        adds_journal: bool,
    ) -> Record:
        """PATCH one record; returns the record as stored (``fields`` of it).

        A PATCH that adds a journal entry is not repeated after a timeout or a 5xx (it may
        have been applied, and a second entry cannot be removed); only after a 429 or a 202,
        which say it was not — :class:`HttpClient` repeats those for any method, within the
        one retry policy.
        """
        path = f"/api/now/table/{table}/{sys_id}"
        params = {"sysparm_fields": ",".join(fields)} if fields else None
        response = self.request(
            "PATCH", path, params=params, json=dict(body), idempotent=not adds_journal
        )
        if response.status_code == 204 or not response.content:
            return {}
        result = self._result(response, "PATCH", path)
        return result if isinstance(result, dict) else {}

    def journal_has(self, table: str, sys_id: str, element: str, marker: str) -> bool | None:
        """Whether the record's journal holds an entry containing ``marker``; None when the
        integration user may not read ``sys_journal_field`` (often the case)."""
        query = f"name={table}^element_id={sys_id}^element={element}^valueLIKE{marker}"
        try:
            return self.find_one("sys_journal_field", query, fields=("sys_id",)) is not None
        except ConnectorAuthError:
            return None


def _list_params(query: str, fields: Sequence[str], limit: int) -> dict[str, str]:
    return {
        "sysparm_query": query,
        "sysparm_fields": ",".join(fields),
        "sysparm_exclude_reference_link": "true",
        "sysparm_limit": str(limit),
    }


def plain_value(value: Any) -> str:
    """A field as stripped text, ``{"value": ...}`` unwrapped, anything else ``""``: how
    keys (sys_id, sys_updated_on, sys_mod_count) are compared, whatever the display mode."""
    if isinstance(value, Mapping):
        value = value.get("value")
    return value.strip() if isinstance(value, str) else ""
