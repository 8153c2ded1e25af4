"""The HTTP layer every live connector shares: rate limiting, retries, error translation.

Connectors describe their system (how an error body reads, which header carries the wait);
this module decides *when* to send and whether to try again:

- a client-side token bucket per direction (reads, writes) keeps bursts under the system's
  limits before it has to say 429;
- 429 waits exactly what the system asked (``Retry-After`` in seconds or as an HTTP date,
  else ``X-RateLimit-Reset`` as ISO 8601 or epoch seconds), then tries again;
- 5xx, timeouts and dropped connections back off exponentially with jitter (0.7–1.3×),
  capped, for idempotent requests only — a POST is never repeated blindly;
- a success status that the caller's ``accept`` check refuses (ServiceNow's empty 202) says,
  like a 429, that the request was dropped unapplied: it backs off and is sent again, for any
  method, within the same attempts and budget;
- a total retry budget bounds how long one request may keep trying; exhausting it raises
  an error that says how many attempts were made and why.

Credentials never reach a log line: only method, path and status are logged.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests

from bridge.errors import (
    ConnectorError,
    ConnectorTransportError,
    RateLimitedError,
)

__all__ = ["HttpClient", "RateLimiter", "RetryPolicy", "retry_after_seconds"]

log = logging.getLogger("bridge.http")

IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"))


class RateLimiter:
    """A thread-safe token bucket: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("a rate limit must be above 0 requests per second")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens, sleeping until they are there; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= cost:
                    self._tokens -= cost
                    return waited
                wait = (cost - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts, backoff shape, and the total time one request may take."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    budget: float = 300.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential (1, 2, 4, 8 ... s, capped) with a 0.7–1.3 jitter multiplier."""
        delay: float = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay * rng.uniform(0.7, 1.3)


def retry_after_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    """The wait a 429 (or 503) asks for, from ``Retry-After`` or ``X-RateLimit-Reset``."""
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        reset = reset.strip()
        try:
            number = float(reset)
        except ValueError:
            try:
                at = datetime.fromisoformat(reset.replace("Z", "+00:00"))
            except ValueError:
                return None
            return max(0.0, (at.astimezone(UTC) - now).total_seconds())
        # Epoch seconds (ServiceNow) or, if small, a number of seconds to wait.
        return max(0.0, number - now.timestamp()) if number > 1e9 else max(0.0, number)
    return None


ErrorFactory = Callable[[requests.Response], ConnectorError]


class HttpClient:
    """One ``requests.Session`` per connector, wrapped in limits, retries and error mapping."""

    def __init__(
        self,
        *,
        connector: str,
        base_url: str,
        auth: requests.auth.AuthBase | None,
        error_from_response: ErrorFactory,
        read_limiter: RateLimiter | None = None,
        write_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        persist_cookies: bool = True,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        pool_size: int = 16,
    ) -> None:
        self.connector = connector
        self.base_url = base_url.rstrip("/")
        self.error_from_response = error_from_response
        self.read_limiter = read_limiter
        self.write_limiter = write_limiter
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.session = requests.Session()
        self.session.auth = auth
        self.session.verify = verify
        self.session.headers.update({"Accept": "application/json", "User-Agent": "bridge-kpi/0.1"})
        self.session.headers.update(headers or {})
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        if not persist_cookies:
            # ServiceNow serialises every request of one session cookie; never send one back.
            self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.calls = 0
        self.retries = 0

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
        idempotent: bool | None = None,
        accept: Callable[[requests.Response], bool] | None = None,
    ) -> requests.Response:
        """Send one request, retrying what is safe to retry; raise a ConnectorError otherwise.

        :param ok: statuses that count as success.
        :param idempotent: whether repeating the request is harmless (default: by method).
        :param accept: an extra check of a successful response. False means the system
            dropped the request without applying it (ServiceNow's 202 from an overloaded
            session), so it is sent again whatever the method, like after a 429.
        """
        method = method.upper()
        safe = method in IDEMPOTENT if idempotent is None else idempotent
        limiter = self.read_limiter if method in ("GET", "HEAD") else self.write_limiter
        started = time.monotonic()
        attempt = 0
        last_reason = ""
        while True:
            attempt += 1
            if limiter is not None:
                limiter.acquire()
            self.calls += 1
            try:
                response = self.session.request(
                    method,
                    self.url(path),
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
                last_reason = f"the connection {kind}"
                error: ConnectorError = ConnectorTransportError(
                    f"{self.connector}: {method} {path}: {last_reason} ({type(exc).__name__})",
                    connector=self.connector,
                    method=method,
                    url=path,
                )
                wait = self.retry.backoff(attempt, self._rng) if safe else None
            else:
                log.debug("%s %s %s -> %s", self.connector, method, path, response.status_code)
                if response.status_code in ok and (accept is None or accept(response)):
                    return response
                if response.status_code in ok:  # accepted by status, refused by `accept`
                    last_reason = f"HTTP {response.status_code} without a result"
                    error = ConnectorTransportError(
                        f"{self.connector}: {method} {path}: {last_reason}",
                        connector=self.connector,
                        status=response.status_code,
                        method=method,
                        url=path,
                    )
                    # Dropped, not applied: repeating it is safe for any method.
                    wait = self.retry.backoff(attempt, self._rng)
                else:
                    error = self.error_from_response(response)
                    error.method, error.url = method, path
                    last_reason = f"HTTP {response.status_code}"
                    wait = self._wait_for(response, error, attempt, safe)
            if wait is None or attempt >= self.retry.max_attempts:
                if attempt > 1:
                    raise error.restated(f"{error} — gave up after {attempt} attempts") from error
                raise error
            if time.monotonic() - started + wait > self.retry.budget:
                raise error.restated(
                    f"{error} — gave up: waiting {wait:.0f}s more would pass the "
                    f"{self.retry.budget:.0f}s retry budget after {attempt} attempts"
                ) from error
            self.retries += 1
            log.warning(
                "%s: %s %s: %s; retrying in %.1fs (attempt %d of %d)%s",
                self.connector,
                method,
                path,
                last_reason,
                wait,
                attempt + 1,
                self.retry.max_attempts,
                f" [{error.reason}]" if error.reason else "",
            )
            self._sleep(wait)

    def _wait_for(
        self, response: requests.Response, error: ConnectorError, attempt: int, safe: bool
    ) -> float | None:
        status = response.status_code
        if status == 429 or isinstance(error, RateLimitedError):
            # The request was refused, not executed: repeating it is safe for any method.
            asked = retry_after_seconds(response.headers, datetime.now(UTC))
            error.retry_after = asked
            return asked if asked is not None else self.retry.backoff(attempt, self._rng)
        if status >= 500 and safe:
            asked = (
                retry_after_seconds(response.headers, datetime.now(UTC))
                if (status == 503)
                else None
            )
            return asked if asked is not None else self.retry.backoff(attempt, self._rng)
        if error.retryable and safe:
            return self.retry.backoff(attempt, self._rng)
        return None
