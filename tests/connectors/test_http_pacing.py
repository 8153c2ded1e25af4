"""Rate limits are pacing, not failure: HttpClient and RateLimiter against rate-limiting servers.

The servers here are simulations in virtual time: a :class:`VirtualTime` clock that moves only
when every thread of the test sleeps, and a ``requests`` adapter that answers like a server
with a rate limit. 500 writes from 8 threads against 5 writes a second take about 100 virtual
seconds and well under a second of real time, and nothing depends on the machine's speed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import queue
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from bridge.connectors.http import (
    HttpClient,
    RateLimiter,
    RateLimitHold,
    RateLimitInfo,
    RetryPolicy,
    rate_limit_info,
)
from bridge.connectors.jira.client import BasicAuth, JiraClient
from bridge.connectors.servicenow.client import RuleBudgets, ServiceNowClient
from bridge.errors import (
    ConnectorError,
    ConnectorTransportError,
    RateLimitedError,
)

EPOCH = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # wall time at virtual time 0
BASE = "https://api.example.com"


# --------------------------------------------------------------------------------------------
# Virtual time and simulated servers
# --------------------------------------------------------------------------------------------


class VirtualTime:
    """A clock and a ``sleep`` shared by a set of threads: time jumps to the next wake-up
    once every one of them sleeps (or has finished)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._cond = threading.Condition()
        self._active = 0
        self._sleepers: list[tuple[float, int, list[bool]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return EPOCH + timedelta(seconds=self.now)

    def sleep(self, seconds: float) -> None:
        with self._cond:
            woken = [False]
            heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), woken))
            self._active -= 1
            self._advance()
            while not woken[0]:
                self._cond.wait()

    def _advance(self) -> None:
        if self._active > 0 or not self._sleepers:
            return
        self.now = max(self.now, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self.now:
            heapq.heappop(self._sleepers)[2][0] = True
            self._active += 1
        self._cond.notify_all()

    def run(self, workers: Sequence[Callable[[], None]]) -> None:
        """Run each worker in a thread of its own, in virtual time, until all are done."""
        with self._cond:
            self._active = len(workers)

        def wrap(work: Callable[[], None]) -> None:
            try:
                work()
            finally:
                with self._cond:
                    self._active -= 1
                    self._advance()

        threads = [threading.Thread(target=wrap, args=(w,), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), "the simulation hangs"


Answer = tuple[int, dict[str, str]]


class Server(requests.adapters.BaseAdapter):
    """A ``requests`` adapter that answers in virtual time, after ``latency`` seconds.

    ``decide(now, request)`` gives the status and headers of each answer; successes carry
    ``body`` (JSON) when given, every answer a ``Date`` with ``date``. Every request is logged
    with its virtual arrival time.
    """

    def __init__(
        self,
        vt: VirtualTime,
        decide: Callable[[float, requests.PreparedRequest], Answer],
        *,
        latency: float = 0.05,
        body: Callable[[requests.PreparedRequest], Any] | None = None,
        date: bool = False,
    ) -> None:
        super().__init__()
        self.vt = vt
        self.decide = decide
        self.latency = latency
        self.body = body
        self.date = date
        self.lock = threading.Lock()
        self.log: list[tuple[float, str, str, int]] = []  # (time, method, path, status)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        with self.lock:
            status, headers = self.decide(self.vt.now, request)
            if self.date:
                headers = {**headers, "Date": format_datetime(self.vt.wall(), usegmt=True)}
            path = requests.utils.urlparse(request.url or "").path
            self.log.append((self.vt.now, request.method or "", path, status))
        self.vt.sleep(self.latency)
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        if status < 300 and self.body is not None:
            response._content = requests.compat.json.dumps(self.body(request)).encode()
            response.headers["Content-Type"] = "application/json"
        elif status >= 400:
            response._content = b'{"errorMessages": ["refused"], "errors": {}}'
            response.headers["Content-Type"] = "application/json"
        else:
            response._content = b""
        response.request = request
        response.url = request.url or ""
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass

    def times(self, status: int | None = None) -> list[float]:
        return [t for t, _, _, s in self.log if status is None or s == status]

    def refused(self) -> int:
        return sum(1 for *_, s in self.log if s == 429)


def sliding_window(limit: int, window: float = 1.0, status: int = 204) -> Callable[..., Answer]:
    """At most ``limit`` accepted requests in any ``window`` seconds; else 429 with the
    whole seconds until a request leaves the window in ``Retry-After``."""
    accepted: deque[float] = deque()

    def decide(now: float, request: requests.PreparedRequest) -> Answer:
        while accepted and accepted[0] <= now - window:
            accepted.popleft()
        if len(accepted) >= limit:
            wait = accepted[0] + window - now
            return 429, {"Retry-After": str(max(1, math.ceil(wait)))}
        accepted.append(now)
        return status, {}

    return decide


def fixed_windows(
    limit: int,
    window: float,
    headers: Callable[[int, float, float], dict[str, str]],
    status: int = 204,
) -> Callable[..., Answer]:
    """``limit`` requests per fixed window of ``window`` seconds; every answer carries the
    headers ``headers(remaining, seconds to the reset, reset instant)`` gives."""
    state = {"start": 0.0, "count": 0}

    def decide(now: float, request: requests.PreparedRequest) -> Answer:
        if now >= state["start"] + window:
            state["start"] = now - (now - state["start"]) % window
            state["count"] = 0
        reset_at = state["start"] + window
        if state["count"] >= limit:
            answer = dict(headers(0, reset_at - now, reset_at))
            answer["Retry-After"] = str(max(1, math.ceil(reset_at - now)))
            return 429, answer
        state["count"] += 1
        return status, headers(int(limit - state["count"]), reset_at - now, reset_at)

    return decide


def error_factory(response: requests.Response) -> ConnectorError:
    status = response.status_code
    if status == 429:
        return RateLimitedError(
            f"test: HTTP 429 ({response.headers.get('RateLimit-Reason', 'no reason')})",
            connector="test",
            status=status,
            reason=response.headers.get("RateLimit-Reason"),
        )
    if status >= 500:
        return ConnectorTransportError(f"test: HTTP {status}", connector="test", status=status)
    return ConnectorError(f"test: HTTP {status}", connector="test", status=status)


def http_client(vt: VirtualTime, server: Server, **options: Any) -> HttpClient:
    options.setdefault("retry", RetryPolicy())
    client = HttpClient(
        connector="test",
        base_url=BASE,
        auth=None,
        error_from_response=error_factory,
        sleep=vt.sleep,
        clock=vt.clock,
        wall_clock=vt.wall,
        rng=random.Random(7),
        **options,
    )
    client.session.mount("https://", server)
    return client


def run_writes(
    vt: VirtualTime, write: Callable[[int], object], *, items: int = 500, threads: int = 8
) -> list[BaseException]:
    """``write(n)`` for n in range(items), from ``threads`` threads; returns what they raised."""
    todo: queue.Queue[int] = queue.Queue()
    for n in range(items):
        todo.put(n)
    raised: list[BaseException] = []

    def work() -> None:
        while True:
            try:
                n = todo.get_nowait()
            except queue.Empty:
                return
            try:
                write(n)
            except Exception as exc:
                raised.append(exc)

    vt.run([work] * threads)
    return raised


def rate_after_adaptation(accepted: Sequence[float]) -> float:
    """Accepted requests per second over the second half of a run."""
    half = accepted[len(accepted) // 2 :]
    return (len(half) - 1) / (half[-1] - half[0])


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    # Each 429 is logged as a warning; hundreds of them slow the simulation down.
    with caplog.at_level(logging.ERROR, logger="bridge.http"):
        yield


# --------------------------------------------------------------------------------------------
# The issue: a server that allows 5 writes a second
# --------------------------------------------------------------------------------------------


def _plain(vt: VirtualTime, server: Server, limited: bool) -> Callable[[int], object]:
    limiter = RateLimiter(50, clock=vt.clock, sleep=vt.sleep) if limited else None
    client = http_client(vt, server, write_limiter=limiter, retry=RetryPolicy(max_attempts=1))
    return lambda n: client.request("PUT", f"/items/{n}", json={"n": n})


def _jira(vt: VirtualTime, server: Server, limited: bool) -> Callable[[int], object]:
    # Jira's own limiter (50/s per write endpoint) runs first; HttpClient paces each write
    # endpoint by the server's answers with a limiter of its own.
    client = JiraClient(
        base_url=BASE,
        auth=BasicAuth("bot@example.com", "token"),
        writes_per_second=50,
        retry=RetryPolicy(max_attempts=1),
        clock=vt.clock,
        sleep=vt.sleep,
    )
    client.http.session.mount("https://", server)
    return lambda n: client.edit_issue(f"OPS-{n}", {"fields": {}}, notify_users=True)


def _servicenow(vt: VirtualTime, server: Server, limited: bool) -> Callable[[int], object]:
    client = ServiceNowClient(
        BASE,
        auth=requests.auth.HTTPBasicAuth("bridge", "secret"),
        write_limiter=RateLimiter(50, clock=vt.clock, sleep=vt.sleep) if limited else None,
        read_limiter=RateLimiter(100, clock=vt.clock, sleep=vt.sleep),
        retry=RetryPolicy(max_attempts=1),
        sleep=vt.sleep,
        rng=random.Random(7),
    )
    client.http.session.mount("https://", server)
    return lambda n: client.patch_record(
        "incident", f"{n:032x}", {"u_phase": "execution"}, fields=("sys_id",), adds_journal=True
    )


def _record(request: requests.PreparedRequest) -> Any:
    return {"result": {"sys_id": (request.path_url or "").rsplit("/", 1)[-1].split("?")[0]}}


@pytest.mark.parametrize(
    ("make", "limited", "status"),
    [
        pytest.param(_plain, True, 204, id="write-limiter-50/s"),
        pytest.param(_plain, False, 204, id="no-limiter"),
        pytest.param(_jira, True, 204, id="jira-edit-issue"),
        pytest.param(_servicenow, True, 200, id="servicenow-patch"),
    ],
)
def test_500_writes_from_8_threads_against_5_writes_a_second_all_succeed(
    make: Callable[[VirtualTime, Server, bool], Callable[[int], object]],
    limited: bool,
    status: int,
) -> None:
    vt = VirtualTime()
    server = Server(vt, sliding_window(5, status=status), body=_record)
    write = make(vt, server, limited)

    raised = run_writes(vt, write)  # with max_attempts=1: any 429 taken for an attempt fails

    assert raised == []
    accepted = server.times(status)
    assert len(accepted) == 500
    assert server.refused() > 0  # the server did refuse; none of it counted as an attempt
    assert server.refused() <= 30  # ... and the client slowed down instead of hammering it
    # Close to the limit once adapted (never above: the server enforces it).
    assert 4.0 <= rate_after_adaptation(accepted) <= 5.0
    assert len(accepted) / accepted[-1] >= 3.75  # 75 % of the limit including the start


def test_a_request_refused_ten_times_then_accepted_succeeds_with_five_attempts() -> None:
    vt = VirtualTime()
    answers = iter([(429, {"Retry-After": "1"})] * 10 + [(200, {})])
    server = Server(vt, lambda now, request: next(answers))
    client = http_client(vt, server, retry=RetryPolicy(max_attempts=5))

    vt.run([lambda: client.request("GET", "/myself")])

    assert [status for *_, status in server.log] == [429] * 10 + [200]
    assert client.rate_limited == 10
    assert client.retries == 10
    assert server.times(200)[0] >= 10.0  # each Retry-After waited out


def test_a_429_without_retry_after_backs_off_capped() -> None:
    sleeps: list[float] = []
    answers = iter([(429, {})] * 8 + [(204, {})])
    server = Server(VirtualTime(), lambda now, request: next(answers), latency=0)
    client = HttpClient(
        connector="test",
        base_url=BASE,
        auth=None,
        error_from_response=error_factory,
        retry=RetryPolicy(max_attempts=2, base_delay=1.0, max_delay=10.0),
        sleep=sleeps.append,
        rng=random.Random(1),
    )
    client.session.mount("https://", server)

    client.request("PUT", "/items/1", json={})

    assert len(sleeps) == 8
    assert all(0.7 * min(10, 2**i) <= s <= 1.3 * min(10, 2**i) for i, s in enumerate(sleeps))


def test_real_errors_still_count_attempts() -> None:
    vt = VirtualTime()
    answers = iter([(503, {})] * 5)
    server = Server(vt, lambda now, request: next(answers))
    client = http_client(vt, server, retry=RetryPolicy(max_attempts=5, base_delay=0.5))
    raised: list[BaseException] = []

    def call() -> None:
        try:
            client.request("GET", "/myself")
        except ConnectorError as exc:
            raised.append(exc)

    vt.run([call])

    assert [type(e) for e in raised] == [ConnectorTransportError]
    assert "gave up after 5 attempts" in str(raised[0])
    assert len(server.log) == 5


def test_attempts_count_only_the_real_errors_among_429s() -> None:
    vt = VirtualTime()
    answers = iter([(429, {"Retry-After": "1"}), (503, {})] * 3)
    server = Server(vt, lambda now, request: next(answers))
    client = http_client(vt, server, retry=RetryPolicy(max_attempts=3, base_delay=0.5))
    raised: list[BaseException] = []

    def call() -> None:
        try:
            client.request("GET", "/myself")
        except ConnectorError as exc:
            raised.append(exc)

    vt.run([call])

    assert len(server.log) == 6
    assert str(raised[0]) == (
        "test: HTTP 503 — gave up after 3 attempts (and 3 rate-limited answers, not counted)"
    )


def test_the_retry_budget_does_not_count_rate_limit_waits() -> None:
    vt = VirtualTime()
    answers = iter([(429, {"Retry-After": "100"})] * 4 + [(503, {}), (204, {})])
    server = Server(vt, lambda now, request: next(answers))
    client = http_client(vt, server, retry=RetryPolicy(budget=60, base_delay=1))

    vt.run([lambda: client.request("PUT", "/items/1", json={})])

    assert [status for *_, status in server.log][-1] == 204
    assert vt.now > 400  # waited 400 s on rate limits, and still retried the 503


def test_the_rate_limit_budget_ends_with_a_clear_retryable_error() -> None:
    vt = VirtualTime()
    server = Server(vt, lambda now, request: (429, {"Retry-After": "60"}))
    client = http_client(vt, server, retry=RetryPolicy(rate_limit_budget=300))
    raised: list[BaseException] = []

    def call() -> None:
        try:
            client.request("PUT", "/items/1", json={})
        except ConnectorError as exc:
            raised.append(exc)

    vt.run([call])

    [error] = raised
    assert isinstance(error, RateLimitedError)
    assert error.retryable
    assert error.retry_after == 60
    assert str(error) == (
        "test: HTTP 429 (no reason) — gave up after waiting 300s on rate limits (6 answers "
        "asking to slow down, not counted as attempts): waiting 60s more would pass the 300s "
        "rate-limit budget"
    )
    assert len(server.log) == 6


def test_a_pause_longer_than_the_budget_fails_the_other_threads_fast() -> None:
    vt = VirtualTime()
    quota = {"Retry-After": "1847", "RateLimit-Reason": "jira-quota-global-based"}
    server = Server(vt, lambda now, request: (429, quota) if "quota" in request.url else (204, {}))
    client = http_client(vt, server, retry=RetryPolicy(rate_limit_budget=900))
    raised: list[BaseException] = []

    def call(path: str, method: str = "PUT", delay: float = 0.0) -> Callable[[], None]:
        def run() -> None:
            vt.sleep(delay)
            try:
                client.request(method, path, json={})
            except ConnectorError as exc:
                raised.append(exc)

        return run

    vt.run([call("/quota"), call("/other", delay=1.0), call("/search", "GET", delay=1.0)])

    assert len(server.log) == 1  # the others never reached the server
    assert len(raised) == 3
    assert all(isinstance(e, RateLimitedError) and e.retryable for e in raised)
    first, *others = raised  # in the order they gave up
    assert str(first) == (
        "test: HTTP 429 (jira-quota-global-based) — gave up after waiting 0s on rate limits "
        "(1 answer asking to slow down, not counted as attempts): waiting 1847s more would "
        "pass the 900s rate-limit budget"
    )
    assert sorted(str(e) for e in others) == [
        "test: GET /search: the server's rate limit holds every request for 1846s more — "
        "gave up after waiting 0s, as that would pass the 900s rate-limit budget",
        "test: PUT /other: the server's rate limit holds every request for 1846s more — "
        "gave up after waiting 0s, as that would pass the 900s rate-limit budget",
    ]


# --------------------------------------------------------------------------------------------
# Who a 429 holds back
# --------------------------------------------------------------------------------------------


def test_a_429_holds_every_thread_of_the_limiter_until_retry_after() -> None:
    vt = VirtualTime()

    def decide(now: float, request: requests.PreparedRequest) -> Answer:
        if now < 1 and request.url == f"{BASE}/items/1":
            return 429, {"Retry-After": "5"}
        return 204, {}

    server = Server(vt, decide, latency=0.05)
    limiter = RateLimiter(50, clock=vt.clock, sleep=vt.sleep)
    client = http_client(vt, server, write_limiter=limiter)

    def later(n: int, delay: float) -> Callable[[], None]:
        def run() -> None:
            vt.sleep(delay)
            client.request("PUT", f"/items/{n}", json={})

        return run

    vt.run([later(1, 0.0), later(2, 0.5), later(3, 2.0)])

    arrivals = {path: t for t, _, path, status in server.log if status == 204}
    assert arrivals["/items/2"] >= 5.05  # held until the Retry-After instant
    assert arrivals["/items/3"] >= 5.05
    assert arrivals["/items/1"] >= 5.05
    assert limiter.current_rate < 50  # and the pace was lowered


def test_a_per_issue_429_holds_only_its_own_request() -> None:
    vt = VirtualTime()
    per_issue = {"Retry-After": "2", "RateLimit-Reason": "jira-per-issue-on-write"}

    def decide(now: float, request: requests.PreparedRequest) -> Answer:
        if now < 1 and (request.url or "").endswith("/OPS-1"):
            return 429, {**per_issue, "X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "20"}
        return 204, {}

    server = Server(vt, decide)
    limiter = RateLimiter(50, clock=vt.clock, sleep=vt.sleep)
    client = http_client(vt, server, write_limiter=limiter)

    def later(key: str, delay: float) -> Callable[[], None]:
        def run() -> None:
            vt.sleep(delay)
            client.request("PUT", f"/rest/api/3/issue/{key}", json={})

        return run

    vt.run([later("OPS-1", 0.0), later("OPS-2", 0.5)])

    arrivals = {path: t for t, _, path, status in server.log if status == 204}
    assert arrivals["/rest/api/3/issue/OPS-2"] == pytest.approx(0.5)
    assert arrivals["/rest/api/3/issue/OPS-1"] >= 2.05
    assert limiter.current_rate == 50
    assert limiter.pauses == 0


def test_a_quota_429_holds_every_limiter_of_the_client() -> None:
    vt = VirtualTime()
    quota = {"Retry-After": "30", "RateLimit-Reason": "jira-quota-tenant-based"}

    def decide(now: float, request: requests.PreparedRequest) -> Answer:
        return (429, quota) if now < 1 else (200, {})

    server = Server(vt, decide)
    client = http_client(vt, server)

    def later(method: str, path: str, delay: float) -> Callable[[], None]:
        def run() -> None:
            vt.sleep(delay)
            client.request(method, path, json={})

        return run

    vt.run([later("PUT", "/rest/api/3/issue/OPS-1", 0), later("GET", "/rest/api/3/myself", 2)])

    arrivals = {path: t for t, _, path, status in server.log if status == 200}
    assert arrivals["/rest/api/3/myself"] >= 30.05  # another endpoint, another direction


# --------------------------------------------------------------------------------------------
# Pacing by the rate-limit headers
# --------------------------------------------------------------------------------------------


def _remaining_headers(style: str, limit: int) -> Callable[[int, float, float], dict[str, str]]:
    def headers(remaining: int, seconds: float, reset_at: float) -> dict[str, str]:
        at = EPOCH + timedelta(seconds=reset_at)
        if style == "RateLimit-* seconds":
            return {
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": f"{seconds:.3f}",
            }
        if style == "RateLimit structured":
            return {"RateLimit": f'"default";r={remaining};t={seconds:.3f}'}
        reset = {
            "X-RateLimit-* ISO 8601": at.isoformat().replace("+00:00", "Z"),
            "X-RateLimit-* epoch": f"{at.timestamp():.3f}",
            "X-RateLimit-* HTTP date": format_datetime(at, usegmt=True),
        }[style]
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": reset,
        }

    return headers


@pytest.mark.parametrize(
    "style",
    [
        "RateLimit-* seconds",
        "RateLimit structured",
        "X-RateLimit-* ISO 8601",
        "X-RateLimit-* epoch",
        "X-RateLimit-* HTTP date",
    ],
)
def test_the_remaining_budget_is_paced_until_the_reset(style: str) -> None:
    vt = VirtualTime()
    server = Server(vt, fixed_windows(50, 10.0, _remaining_headers(style, 50)))
    limiter = RateLimiter(50, clock=vt.clock, sleep=vt.sleep)
    client = http_client(vt, server, write_limiter=limiter, retry=RetryPolicy(max_attempts=1))

    raised = run_writes(vt, lambda n: client.request("PUT", f"/items/{n}", json={}))

    assert raised == []
    assert server.refused() <= 2  # the budget is known: hardly ever overspent
    accepted = server.times(204)
    assert len(accepted) == 500
    assert len(accepted) / accepted[-1] >= 4.5  # 50 per 10 s: all of it is used
    # Once the budget runs low, what is left is spread until the reset, not sent at once.
    for start in (10.0, 50.0, 90.0):
        window = [t for t in accepted if start <= t < start + 10.0]
        assert len(window) >= 48
        assert window[-1] >= start + 5.0


def test_servicenow_rules_are_counted_and_paced_without_a_remaining_header() -> None:
    vt = VirtualTime()

    def headers(remaining: int, seconds: float, reset_at: float) -> dict[str, str]:
        # ServiceNow: the rule's limit and when its hour ends (epoch), never what is left.
        at = EPOCH + timedelta(seconds=reset_at)
        return {
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Reset": str(int(at.timestamp())),
            "X-RateLimit-Rule": "d2f5f0a1db1c1010a4c5f3a3f39619e0",
        }

    # The answers' Date says the server's time: the epoch resets are read against it.
    server = Server(vt, fixed_windows(100, 20.0, headers, status=200), body=_record, date=True)
    write = _servicenow(vt, server, limited=True)

    raised = run_writes(vt, write)

    assert raised == []
    assert server.refused() <= 2
    accepted = server.times(200)
    assert len(accepted) == 500
    assert len(accepted) / accepted[-1] >= 4.5  # 100 per 20 s


# --------------------------------------------------------------------------------------------
# RateLimiter on its own
# --------------------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.naps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += seconds


def test_a_token_bucket_with_bursts() -> None:
    t = FakeTime()
    limiter = RateLimiter(2, clock=t.clock, sleep=t.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 0.5]
    t.now += 10
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 0.5]


def test_slow_down_once_per_burst_of_429s_then_recover() -> None:
    t = FakeTime()
    limiter = RateLimiter(10, clock=t.clock, sleep=t.sleep)
    tickets = [limiter.reserve() for _ in range(40)]  # 10/s for 3 s
    for ticket in tickets[:35]:
        limiter.succeeded(ticket)
    assert limiter.slow_down(tickets[35])
    lowered = limiter.current_rate
    assert lowered <= 0.7 * 10
    assert not limiter.slow_down(tickets[36])  # on its way before the first 429: no effect
    assert limiter.current_rate == lowered
    for _ in range(400):
        limiter.succeeded(limiter.reserve())
    assert limiter.current_rate == 10  # grew back to the configured rate, step by step


def test_a_pause_holds_acquire_and_max_wait_bounds_the_wait() -> None:
    t = FakeTime()
    limiter = RateLimiter(100, clock=t.clock, sleep=t.sleep)
    limiter.pause(3.0)
    assert limiter.acquire() == pytest.approx(3.0)
    assert t.now == pytest.approx(3.0)
    limiter.pause(60.0)
    with pytest.raises(RateLimitHold) as held:
        limiter.acquire(max_wait=10.0)
    assert held.value.wait == pytest.approx(60.0)
    assert t.now == pytest.approx(3.0)  # refused at once, nothing slept


def test_a_fake_sleep_with_the_real_clock_waits_each_pause_once() -> None:
    naps: list[float] = []
    limiter = RateLimiter(math.inf, 1.0, sleep=naps.append)  # time.monotonic
    limiter.pause(7.0)
    limiter.wait(7.0)  # the refused request sleeps what it was asked
    limiter.acquire()
    limiter.acquire()
    assert naps == [7.0]


# --------------------------------------------------------------------------------------------
# Reading the headers
# --------------------------------------------------------------------------------------------

NOW = datetime(2025, 10, 8, 14, 29, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (  # Jira Cloud, a 429
            {
                "Retry-After": "1847",
                "X-RateLimit-Limit": "100000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "2025-10-08T15:00:00Z",
            },
            RateLimitInfo(remaining=0, limit=100000, reset=1860),
        ),
        (  # Jira Cloud, a success: a count, no reset
            {"X-RateLimit-Limit": "350", "X-RateLimit-Remaining": "60"},
            RateLimitInfo(remaining=60, limit=350),
        ),
        (  # Jira Cloud, near the limit
            {"X-RateLimit-Remaining": "10", "X-RateLimit-NearLimit": "true"},
            RateLimitInfo(remaining=10, near_limit=True),
        ),
        (  # Jira Data Center's token bucket
            {
                "X-RateLimit-Limit": "20",
                "X-RateLimit-Remaining": "5",
                "X-RateLimit-FillRate": "10",
                "X-RateLimit-Interval-Seconds": "2",
            },
            RateLimitInfo(remaining=5, limit=20, fill_rate=5.0),
        ),
        (  # ServiceNow: epoch seconds, no remaining count
            {"X-RateLimit-Limit": "100", "X-RateLimit-Reset": str(int(NOW.timestamp()) + 600)},
            RateLimitInfo(limit=100, reset=600),
        ),
        (
            {"RateLimit-Limit": "100", "RateLimit-Remaining": "5", "RateLimit-Reset": "30"},
            RateLimitInfo(remaining=5, limit=100, reset=30),
        ),
        (
            {"RateLimit": "limit=100, remaining=5, reset=30"},
            RateLimitInfo(remaining=5, limit=100, reset=30),
        ),
        (
            {
                "RateLimit": '"burst";r=50;t=1, "quota";r=7;t=1800',
                "RateLimit-Policy": '"burst";q=100;w=1, "quota";q=65000;w=3600',
            },
            RateLimitInfo(remaining=7, limit=65000, reset=1800),
        ),
        (
            {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "Wed, 08 Oct 2025 14:30:00 GMT"},
            RateLimitInfo(remaining=3, reset=60),
        ),
        # Not enforced: ignored
        ({"Beta-RateLimit": '"global-app-quota";r=0;t=30', "Beta-Retry-After": "30"}, None),
        ({"Content-Type": "application/json"}, None),
    ],
)
def test_rate_limit_info(headers: Mapping[str, str], expected: RateLimitInfo | None) -> None:
    assert rate_limit_info(CaseInsensitiveDict(headers), NOW) == expected


def _response(status: int, headers: Mapping[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers)
    return response


def test_rule_budgets_count_what_servicenow_does_not_say() -> None:
    count = RuleBudgets()
    reset = str(int(NOW.timestamp()) + 600)
    rule = {"X-RateLimit-Limit": "100", "X-RateLimit-Reset": reset, "X-RateLimit-Rule": "r1"}
    other = {**rule, "X-RateLimit-Rule": "r2"}
    later = {**rule, "X-RateLimit-Reset": str(int(NOW.timestamp()) + 4200)}

    assert [count(_response(200, rule), NOW).remaining for _ in range(3)] == [99, 98, 97]
    assert count(_response(200, other), NOW).remaining == 99  # another rule
    assert count(_response(429, rule), NOW).remaining == 0  # the server says none left
    assert count(_response(200, later), NOW).remaining == 99  # the next hour
    assert count(_response(200, {}), NOW) is None  # no rule matched: nothing to pace by


def test_time_spent_paused_does_not_count_against_what_the_server_accepts() -> None:
    """Scattered 429s with Retry-After (one item's per-resource limit, a site busy for a
    moment) used to drive the rate towards its floor: the pauses counted as time in which
    the server accepted nothing, so each slow-down started from an ever lower 'goodput'.
    The server sustains 10/s whenever bridge is not waiting; a 429 now halves nothing more
    than that."""
    t = FakeTime()
    limiter = RateLimiter(10, clock=t.clock, sleep=t.sleep)
    for _ in range(40):
        limiter.succeeded(limiter.reserve())
    for _ in range(3):  # three Retry-After holds, 2 s each, between steady sends
        limiter.pause(2.0)
        for _ in range(10):
            limiter.succeeded(limiter.reserve())

    assert limiter.slow_down(limiter.reserve())
    assert limiter.current_rate >= 0.7 * 9  # not 0.7 × (what got through / wall time)
