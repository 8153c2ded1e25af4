"""The HTTP layer every live connector shares: pacing, retries, error translation.

Connectors describe their system (how an error body reads, which header carries the wait);
this module decides *when* to send and whether to try again:

- **Rate limits are pacing, not failure.** A 429 never counts as an attempt: the request
  waits what the system asked (``Retry-After`` in seconds or as an HTTP date, else
  ``X-RateLimit-Reset``; without either, a capped exponential backoff) and is sent again.
  A success status that the caller's ``accept`` check refuses (ServiceNow's empty 202: the
  request was dropped unapplied) is sent again the same way, for any method. What bounds
  these waits is a separate, much larger budget (``RetryPolicy.rate_limit_budget``, 15
  minutes per request by default); past it the request fails with a retryable
  :class:`~bridge.errors.RateLimitedError` that says how long it waited.
- **The client paces itself from the server's answers.** Every request goes through a
  :class:`RateLimiter` shared by all threads of the client: the one the connector gave for
  the direction (reads, writes), else one per endpoint (method and path, ids left out). A
  429 holds *every* thread of that limiter until the ``Retry-After`` instant, and lowers its
  rate (once per burst of 429s: to 70 % of what the server accepted, to half when it
  refuses again right after), which then grows back with the successes. The standard
  rate-limit headers — ``X-RateLimit-Remaining/-Limit/-Reset``,
  ``RateLimit-Remaining/-Limit/-Reset`` or the structured ``RateLimit``, Data Center's
  ``X-RateLimit-FillRate`` — keep the limiter within what remains of the budget, spread
  until its reset once it runs low (:func:`rate_limit_info`, :meth:`RateLimiter.observe`).
- **Only real errors are attempts.** 5xx, timeouts and dropped connections back off
  exponentially with jitter (0.7–1.3×), capped, for idempotent requests only — a POST is
  never repeated blindly; ``max_attempts`` and the retry ``budget`` (time spent on them,
  rate-limit waits excluded) bound them, and exhausting either raises an error that says how
  many attempts were made and why.

Jira's ``RateLimit-Reason`` says how far a 429 reaches: ``jira-per-issue-on-write`` holds
only the request that got it, the hourly ``jira-quota-*`` every limiter of the client, the
rest (``jira-burst-based``) the limiter of the request. ``Beta-RateLimit*`` and
``Beta-Retry-After`` are ignored: they announce a limit that is not enforced.

Credentials never reach a log line: only method, path and status are logged.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any, ClassVar, Literal, NamedTuple
from urllib.parse import urlsplit

import requests

from bridge.errors import (
    ConnectorError,
    ConnectorTransportError,
    RateLimitedError,
)

__all__ = [
    "HttpClient",
    "RateLimitHold",
    "RateLimitInfo",
    "RateLimiter",
    "RetryPolicy",
    "rate_limit_info",
    "retry_after_seconds",
]

log = logging.getLogger("bridge.http")

IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"))


# --------------------------------------------------------------------------------------------
# What the server says about its limits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What one response says about the budget it was counted against.

    ``reset`` is in seconds from the response, whatever form the header had. ``fill_rate``
    is the requests per second a token bucket refills (Jira Data Center).
    """

    remaining: float | None = None
    limit: float | None = None
    reset: float | None = None
    fill_rate: float | None = None
    near_limit: bool = False


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _instant(value: str, now: datetime) -> float | None:
    """Seconds from ``now`` until ``value``: a number of seconds, epoch seconds (anything
    above 1e9: ServiceNow), an ISO 8601 instant (Jira) or an HTTP date."""
    value = value.strip()
    number = _number(value)
    if number is not None:
        return max(0.0, number - now.timestamp()) if number > 1e9 else max(0.0, number)
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            at = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - now).total_seconds())


def retry_after_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    """The wait a 429 (or 503) asks for, from ``Retry-After`` or ``X-RateLimit-Reset``."""
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        number = _number(value)
        if number is not None:
            return max(0.0, number)
        try:
            return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
        except (TypeError, ValueError, IndexError):
            pass
    reset = headers.get("X-RateLimit-Reset")
    return _instant(reset, now) if reset else None


_PARAM = re.compile(r"(?P<key>[A-Za-z][\w-]*)\s*=\s*(?P<value>\"[^\"]*\"|[^,;\s]+)")


def _items(value: str) -> list[tuple[str, dict[str, str]]]:
    """The items of a structured header list: (name, parameters) each."""
    found = []
    for item in value.split(","):
        name = item.split(";", 1)[0].strip().strip('"')
        params = {m["key"].lower(): m["value"].strip('"') for m in _PARAM.finditer(item)}
        found.append((name if "=" not in name else "", params))
    return found


def _structured(value: str, policy: str | None) -> tuple[float | None, float | None, float | None]:
    """(remaining, limit, reset) of an IETF ``RateLimit`` header, in either draft's form:
    ``limit=100, remaining=5, reset=30``, or ``"name";r=5;t=30`` with one item per policy
    (then the policy with the least remaining, its limit the ``q`` of the same name in
    ``RateLimit-Policy``)."""
    quotas = {
        name: _number(params.get("q")) for name, params in _items(policy or "") if "q" in params
    }
    policies: list[tuple[float | None, float | None, float | None]] = []
    merged: dict[str, str] = {}
    for name, params in _items(value):
        if "r" in params or "t" in params:
            policies.append((_number(params.get("r")), quotas.get(name), _number(params.get("t"))))
        else:
            merged.update(params)
    if policies:
        return min(policies, key=lambda p: math.inf if p[0] is None else p[0])
    return (
        _number(merged.get("remaining")),
        _number(merged.get("limit")),
        _number(merged.get("reset")),
    )


def rate_limit_info(headers: Mapping[str, str], now: datetime) -> RateLimitInfo | None:
    """The rate-limit budget a response reports, from the standard headers; None if none.

    - ``X-RateLimit-Remaining``, ``X-RateLimit-Limit``, ``X-RateLimit-Reset`` (Jira Cloud:
      reset as ISO 8601 on a 429 only; ServiceNow: limit per hour and reset as epoch seconds,
      never a remaining count), ``X-RateLimit-NearLimit: true`` (Jira: under 20 % left);
    - ``RateLimit-Remaining``, ``RateLimit-Limit``, ``RateLimit-Reset`` (seconds), and the
      structured ``RateLimit`` header;
    - ``X-RateLimit-FillRate`` per ``X-RateLimit-Interval-Seconds`` (Jira Data Center).

    A reset is read as seconds, epoch seconds, an ISO 8601 instant or an HTTP date.
    """
    remaining = _number(headers.get("X-RateLimit-Remaining") or headers.get("RateLimit-Remaining"))
    limit = _number(headers.get("X-RateLimit-Limit") or headers.get("RateLimit-Limit"))
    reset_text = headers.get("X-RateLimit-Reset") or headers.get("RateLimit-Reset")
    reset = _instant(reset_text, now) if reset_text else None
    structured = headers.get("RateLimit")
    if structured:
        s_remaining, s_limit, s_reset = _structured(structured, headers.get("RateLimit-Policy"))
        remaining = remaining if remaining is not None else s_remaining
        limit = limit if limit is not None else s_limit
        reset = reset if reset is not None else s_reset
    fill = _number(headers.get("X-RateLimit-FillRate"))
    interval = _number(headers.get("X-RateLimit-Interval-Seconds"))
    fill_rate = fill / interval if fill and interval and fill > 0 and interval > 0 else None
    near = headers.get("X-RateLimit-NearLimit", "").strip().lower() == "true"
    if remaining is None and reset is None and fill_rate is None and not near:
        return None
    return RateLimitInfo(
        remaining=remaining, limit=limit, reset=reset, fill_rate=fill_rate, near_limit=near
    )


# --------------------------------------------------------------------------------------------
# Pacing
# --------------------------------------------------------------------------------------------


class RateLimitHold(Exception):
    """The limiter would hold a request longer than the caller may wait (``wait`` seconds)."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"held for {wait:.1f}s")
        self.wait = wait


class Ticket(NamedTuple):
    """One request let through: when, after how long a wait, in which rate epoch."""

    at: float
    waited: float
    epoch: int
    tracked: bool = False


class RateLimiter:
    """A thread-safe pacer that adapts to the server: ``rate`` requests per second at most
    (``math.inf``: no limit of its own), bursts up to ``burst``.

    Requests get slots in order (GCRA, the token bucket's equivalent), so the threads that
    share a limiter are paced together and fairly. On top of the configured rate:

    - :meth:`pause` holds every thread until an instant (a 429's ``Retry-After``);
    - :meth:`slow_down` lowers the rate after a 429, once per rate epoch (the requests already
      on their way when the first 429 came do not lower it again): to ×``decrease`` of what
      the server accepted over the last ``window`` seconds, ×``steep`` if it refuses again
      within ``again_within`` seconds. :meth:`succeeded` raises it step by step: quickly back
      to what the server accepted, then slowly (over ``probe_time`` seconds) towards the
      rate it refused, then faster again (the limit may have risen), up to ``rate``. While
      slowed down, there are no bursts;
    - :meth:`observe` reads a response's rate-limit headers: the remaining budget (minus the
      requests in flight) is never overspent before the reset; once it is low (``low_share``
      of the limit, or the server says it is near the limit) it is spread evenly until the
      reset. A server that reports its budget this way paces the limiter; its 429s (in-flight
      requests racing the count) then pause without slowing down.

    ``clock`` and ``sleep`` can be fakes: the limiter's time never runs behind the end of a
    wait it made, so a fake ``sleep`` with the real clock paces like a simulation.
    """

    decrease: ClassVar[float] = 0.7
    steep: ClassVar[float] = 0.5
    again_within: ClassVar[float] = 3.0
    recovery: ClassVar[float] = 0.25
    probe: ClassVar[float] = 0.002
    probe_time: ClassVar[float] = 30.0
    beyond: ClassVar[float] = 0.02
    low_share: ClassVar[float] = 0.2
    window: ClassVar[float] = 10.0
    step: ClassVar[float] = 1.0
    reset_margin: ClassVar[float] = 0.1

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        min_rate: float = 0.05,
    ) -> None:
        if not rate > 0:
            raise ValueError("a rate limit must be above 0 requests per second")
        self.rate = float(rate)
        self.burst = burst if burst is not None else max(1.0, self.rate)
        self.min_rate = min(min_rate, self.rate)
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._floor = now  # the end of the latest wait made here (see the class doc)
        self._tat = now  # GCRA's theoretical arrival time
        self._generation = 0  # bumped when slots already given are void (pause, slow-down)
        self._not_before = -math.inf
        # AIMD
        self._current = self.rate  # the adapted rate, at most self.rate
        self._took = self.rate  # what the server accepted when it last refused
        self._refused_at = self.rate  # the rate it refused
        self._slowed_at = -math.inf
        self._epoch = 0  # bumped by every slow_down
        self._first_send = math.inf
        self._last_sent = -math.inf
        self._sends: deque[float] = deque(maxlen=64)
        self._successes: deque[float] = deque()
        self._holds: deque[tuple[float, float]] = deque(maxlen=64)  # pauses: (from, until)
        # What the server's headers say
        self._informed = False  # it reports a remaining budget and when it resets
        # The server's window: the least `remaining` it said (answers overtake each other:
        # an older one says more), the slot of the request that got that answer, and when
        # the window ends. Provisional: a new window no answer has spoken for yet.
        self._remaining = math.inf
        self._remaining_at = -math.inf
        self._budget_until = -math.inf
        self._provisional = True
        self._window_id = 0
        self._limit: float | None = None  # a window's budget, when the server says
        self._queued = 0  # slots given in this window to threads still waiting for them
        self._cap = math.inf  # a rate that spreads a low budget, until _cap_until
        self._cap_until = -math.inf
        self._near_until = -math.inf  # "near the limit": no growth until then
        self._in_flight: list[float] = []  # the slots of tracked requests without an answer
        self.pauses = 0
        self.slowdowns = 0

    # -- reading -----------------------------------------------------------------------------

    def now(self) -> float:
        with self._lock:
            return self._now()

    def _now(self) -> float:
        return max(self.clock(), self._floor)

    @property
    def current_rate(self) -> float:
        """Requests per second allowed now: the adapted rate, under any header cap."""
        with self._lock:
            return self._rate(self._now())

    @property
    def informed(self) -> bool:
        """Whether the server reports its remaining budget and reset (then it paces us)."""
        with self._lock:
            return self._informed

    def _rate(self, now: float) -> float:
        if now >= self._cap_until and not math.isinf(self._cap):
            self._set_cap(math.inf, -math.inf, now)
        return min(self._current, self._cap)

    def _set_cap(self, cap: float, until: float, now: float) -> None:
        """Cap the rate (inf: lift the cap); a real change re-paces the threads in the queue,
        whose slots were given at the old pace."""
        before = self._cap
        self._cap, self._cap_until = cap, until
        if not (0.8 * before <= cap <= 1.25 * before):
            self._repace(now)

    def _repace(self, now: float) -> None:
        """Void the slots given so far: the queue gets them again at the pace now in force,
        the first one step after the last request sent."""
        rate = min(self._current, self._cap)
        step = 0.0 if math.isinf(rate) else 1.0 / rate
        self._tat = min(self._tat, max(now, self._last_sent + step))
        self._generation += 1

    def _tau(self, rate: float) -> float:
        """GCRA's burst tolerance at ``rate``: none once the server has made us slow down
        (a burst is what a sliding-window limit refuses first), else ``burst``."""
        if rate < self.rate:
            return 0.0
        return (max(1.0, self.burst) - 1.0) / rate

    # -- waiting -----------------------------------------------------------------------------

    def acquire(self, cost: float = 1.0, *, max_wait: float | None = None) -> float:
        """Wait for a slot; returns the seconds waited.

        :raises RateLimitHold: the slot is more than ``max_wait`` seconds away (nothing is
            taken then).
        """
        return self.reserve(cost, max_wait=max_wait).waited

    def reserve(
        self, cost: float = 1.0, *, max_wait: float | None = None, track: bool = False
    ) -> Ticket:
        """:meth:`acquire`, returning the ticket :meth:`succeeded` and :meth:`slow_down`
        take. ``track``: count the request as in flight until :meth:`answered`."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._now()
                if self._informed and now >= self._budget_until:
                    # A new window: until an answer from it says, it holds at most the limit
                    # (for a second; then again).
                    known = self._limit is not None
                    self._remaining = self._limit if self._limit is not None else math.inf
                    self._remaining_at, self._provisional = now, True
                    self._budget_until = now + 1.0 if known else -math.inf
                    self._window_id += 1
                    self._queued = 0
                rate = self._rate(now)
                start = max(now, self._not_before)
                if self._budget() < cost:
                    start = max(start, self._budget_until)  # nothing left until the reset
                slot = start if math.isinf(rate) else max(start, self._tat - self._tau(rate))
                paced = not math.isinf(rate)
                if slot >= self._cap_until > now:
                    # Past the header's cap, whose pace after it nobody knows yet: wait for its
                    # end (when the queue is paced again), without a place in it.
                    slot, paced = max(start, self._cap_until), False
                wait = slot - now
                if max_wait is not None and wait > max_wait - waited + 1e-9:
                    raise RateLimitHold(waited + wait)
                if paced:
                    self._tat = max(self._tat, slot) + cost / rate
                charged = self._window_id if slot < self._budget_until else None
                if charged is not None:
                    self._queued += 1
                generation = self._generation
                epoch = self._epoch
            # Long waits in steps, so a thread whose slot was voided meanwhile (the pace
            # changed, a pause came) queues again without sleeping out its old slot.
            while wait > 0:
                step = min(wait, self.step)
                self.sleep(step)
                waited += step
                wait -= step
                with self._lock:
                    self._floor = max(self._floor, slot - wait)
                    self._rate(self._now())  # a cap that ran out re-paces the queue
                    if self._generation != generation:
                        break
            with self._lock:
                if charged == self._window_id:
                    self._queued -= 1  # sent now (in flight), or void
                if self._generation == generation:
                    self._last_sent = max(self._last_sent, slot)
                    self._first_send = min(self._first_send, slot)
                    self._sends.append(slot)
                    if track:
                        self._in_flight.append(slot)
                    return Ticket(slot, waited, epoch, track)
            # A pause or a slow-down came while this thread slept: its slot was given at the
            # old pace, or falls in the pause. Queue again.

    def _budget(self) -> float:
        """Requests the server's window has left for new ones: the least ``remaining`` it
        said, less what that answer could not count yet (the requests sent after its own,
        or with it, still in flight; and those waiting for their slot)."""
        after = sum(1 for at in self._in_flight if at >= self._remaining_at)
        return self._remaining - after - self._queued

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (a wait the server asked of one request), on this limiter's time."""
        if seconds <= 0:
            return
        start = self.now()
        self.sleep(seconds)
        with self._lock:
            self._floor = max(self._floor, start + seconds)

    def answered(self, ticket: Ticket) -> None:
        """The request of a tracked ticket has its answer (or failed): no longer in flight."""
        if ticket.tracked:
            with self._lock, contextlib.suppress(ValueError):
                self._in_flight.remove(ticket.at)

    # -- adapting ----------------------------------------------------------------------------

    def pause(self, seconds: float) -> float:
        """Let no request through for ``seconds`` from now; returns the instant it ends."""
        with self._lock:
            return self._pause(self._now() + max(0.0, seconds))

    def _pause(self, until: float) -> float:
        if until > self._not_before:
            start = max(self._now(), self._not_before)
            if until > start:
                self._holds.append((start, until))
            self._not_before = until
            self._generation += 1
            self.pauses += 1
            # No burst when the pause ends: the server's budget has only just come back.
            rate = self._rate(self._now())
            if not math.isinf(rate):
                self._tat = max(self._tat, until + self._tau(rate))
        return self._not_before

    def slow_down(self, ticket: Ticket | None = None) -> bool:
        """Lower the rate after a 429 to the request of ``ticket`` (see the class doc).
        Returns whether it was lowered."""
        with self._lock:
            if ticket is not None and ticket.epoch != self._epoch:
                return False
            now = self._now()
            took = min(self._goodput(now), self._rate(now))
            if math.isinf(took):
                return False  # no rate, and nothing got through to tell one by: pause only
            refused_at = min(self._rate(now), self._sending(now), 2 * took)
            took = min(took, refused_at)
            again = now - self._slowed_at < self.again_within  # still far too fast
            self._took, self._refused_at, self._slowed_at = took, refused_at, now
            self._current = max(self.min_rate, took * (self.steep if again else self.decrease))
            self._repace(now)
            self._epoch += 1
            self.slowdowns += 1
            return True

    def _sending(self, now: float) -> float:
        """Requests per second sent since the last pause (two seconds at most); inf when
        that cannot be told."""
        since = max(now - 2.0, self._not_before)
        recent = [t for t in self._sends if t >= since]
        if len(recent) < 2 or now <= recent[0]:
            return math.inf
        return len(recent) / (now - recent[0])

    def _goodput(self, now: float) -> float:
        """Requests per second the server accepted over the last ``window`` seconds, not
        counting time held by pauses: what it sustains, or less when there was less to send;
        inf before any."""
        since = max(now - self.window, self._first_send)
        while self._successes and self._successes[0] < now - self.window:
            self._successes.popleft()
        # Time spent holding for a Retry-After is not time in which the server refused to
        # take more: counted, scattered 429s would drive the rate to its floor.
        held = sum(max(0.0, min(end, now) - max(start, since)) for start, end in self._holds)
        active = now - since - held
        if not self._successes or active <= 0:
            return math.inf
        return len(self._successes) / active

    def succeeded(self, ticket: Ticket) -> None:
        """A request got through: recover some of the rate lost to the last slow-down."""
        with self._lock:
            now = self._now()
            self._successes.append(now)
            while self._successes[0] < now - self.window:
                self._successes.popleft()
            current, took = self._current, self._took
            if ticket.epoch != self._epoch or current >= self.rate or now < self._near_until:
                return
            if current < took:  # back to what the server took, quickly
                per_second = self.recovery * took
            elif current < self._refused_at:  # then towards what it refused, slowly
                per_second = max(self.probe * took, (self._refused_at - took) / self.probe_time)
            else:  # past it: the limit may have risen; faster and faster
                per_second = self.beyond * current
            # About `current` successes a second: the rate grows by `per_second` a second.
            self._current = min(self.rate, current + per_second / current)

    def observe(self, info: RateLimitInfo, ticket: Ticket | None = None) -> None:
        """Pace by what the answer to ``ticket``'s request says is left of the server's
        budget (call :meth:`answered` first)."""
        with self._lock:
            now = self._now()
            if info.near_limit:
                self._near_until = now + 1.0
            remaining = info.remaining
            if remaining is None:
                return
            if info.reset is None and not info.fill_rate:
                return  # a count without a time (Jira Cloud's successes) says too little
            self._informed = True
            self._limit = info.limit
            sent = ticket.at if ticket is not None else now
            if info.reset is not None and info.reset > 0:
                until = now + info.reset + self.reset_margin  # clocks and rounding differ
                if self._provisional or until > self._budget_until + 1.0:  # a new window
                    self._remaining, self._remaining_at = remaining, sent
                    self._budget_until, self._provisional = until, False
                elif remaining < self._remaining:
                    self._remaining, self._remaining_at = remaining, sent
                    self._budget_until = until
                if self._budget() < 0:  # the slots given meanwhile would overspend it
                    self._repace(now)
                # What is left to spread: the queued slots are part of the spreading.
                left = max(0.0, self._budget() + self._queued)
            else:
                left = max(0.0, remaining - sum(1 for at in self._in_flight if at > sent))
                if left < 1 and info.fill_rate:
                    self._pause(now + 1.0 / info.fill_rate)
            low = info.near_limit or info.limit is None or remaining <= self.low_share * info.limit
            if not low:
                self._set_cap(math.inf, -math.inf, now)
            elif info.reset:  # `left` evenly over the time to the reset, the last before it
                self._set_cap((left + 1.0) / info.reset, self._budget_until, now)
            elif info.fill_rate:
                self._set_cap(info.fill_rate, now + max(left, 1.0) / info.fill_rate, now)


# --------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts and backoff for real errors, and how long rate limits may
    hold one request.

    :param max_attempts: sends that end in a real error (5xx, timeout, dropped connection),
        the first one included. 429s and dropped-unapplied answers are not attempts.
    :param budget: seconds one request may spend on real errors (rate-limit waits excluded).
    :param rate_limit_budget: seconds one request may wait on rate limits, all told: the
        server's ``Retry-After``\\ s, the backoffs after a 429 without one or after a dropped
        request, and the limiter's pacing.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    budget: float = 300.0
    rate_limit_budget: float = 900.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential (1, 2, 4, 8 ... s, capped) with a 0.7–1.3 jitter multiplier."""
        delay: float = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay * rng.uniform(0.7, 1.3)


ErrorFactory = Callable[[requests.Response], ConnectorError]
RateLimitReader = Callable[[requests.Response, datetime], RateLimitInfo | None]
Scope = Literal["request", "limiter", "client"]

_ID_SEGMENT = re.compile(r"/[^/]*\d[^/]*")


def _endpoint(method: str, path: str) -> str:
    """``PUT /rest/api/3/issue/OPS-1`` → ``PUT /rest/api/{id}/issue/{id}``: one limiter per
    endpoint, not per item (any path segment with a digit in it is taken for an id)."""
    return f"{method} {_ID_SEGMENT.sub('/{id}', urlsplit(path).path)}"


def _scope(reason: str | None) -> Scope:
    """How far a 429 reaches, from Jira's ``RateLimit-Reason``."""
    reason = (reason or "").lower()
    if "per-issue" in reason:
        return "request"
    if "quota" in reason:
        return "client"
    return "limiter"


def _reader(response: requests.Response, now: datetime) -> RateLimitInfo | None:
    return rate_limit_info(response.headers, now)


class HttpClient:
    """One ``requests.Session`` per connector, wrapped in pacing, retries and error mapping.

    :param read_limiter: paces GET and HEAD; None: a limiter per endpoint, with no rate
        until the server asks for one.
    :param write_limiter: paces every other method; None: a limiter per endpoint.
    :param clock: the limiters' and budgets' clock (default: the given limiters', else
        ``time.monotonic``).
    :param wall_clock: the time against which dates in headers are read when the response
        has no ``Date``.
    :param rate_limit_info: reads a response's rate-limit headers (default
        :func:`rate_limit_info`); a connector whose system says less can count for it.
    """

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
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], datetime] | None = None,
        rate_limit_info: RateLimitReader | None = None,
    ) -> None:
        self.connector = connector
        self.base_url = base_url.rstrip("/")
        self.error_from_response = error_from_response
        self.read_limiter = read_limiter
        self.write_limiter = write_limiter
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._sleep = sleep
        given = read_limiter or write_limiter
        self._clock = clock or (given.clock if given is not None else time.monotonic)
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._read_rate_limit = rate_limit_info or _reader
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._limiters: dict[str, RateLimiter] = {}
        self._limiters_lock = threading.Lock()
        self._held_until = -math.inf  # a 429 said to hold every request until then
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
        self._count_lock = threading.Lock()
        self.calls = 0  # requests sent, every repetition included
        self.retries = 0  # requests sent again, after an error or a rate limit
        self.rate_limited = 0  # 429 answers (and dropped-unapplied ones): never attempts

    def _count(self, *, calls: int = 0, retries: int = 0, rate_limited: int = 0) -> None:
        with self._count_lock:
            self.calls += calls
            self.retries += retries
            self.rate_limited += rate_limited

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def limiter_for(self, method: str, path: str) -> RateLimiter:
        """The limiter a request goes through, shared by every thread of this client."""
        method = method.upper()
        given = self.read_limiter if method in ("GET", "HEAD") else self.write_limiter
        if given is not None:
            return given
        key = _endpoint(method, path)
        with self._limiters_lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = self._limiters[key] = RateLimiter(
                    math.inf, 1.0, clock=self._clock, sleep=self._sleep
                )
                held = self._held_until - self._clock()
                if held > 0:  # a hold on the whole client covers new endpoints too
                    limiter.pause(held)
            return limiter

    def _hold_all(self, seconds: float) -> None:
        """Pause every limiter of this client, and the ones it has yet to make."""
        with self._limiters_lock:
            self._held_until = max(self._held_until, self._clock() + seconds)
            found = list(self._limiters.values())
        found += [x for x in (self.read_limiter, self.write_limiter) if x is not None]
        for limiter in found:
            limiter.pause(seconds)

    def _server_now(self, response: requests.Response) -> datetime:
        """The server's time, against which it wrote the dates in its headers."""
        stamp = response.headers.get("Date")
        if stamp:
            try:
                at = parsedate_to_datetime(stamp)
            except (TypeError, ValueError, IndexError):
                pass
            else:
                return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return self._wall_clock()

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
        """Send one request, paced, retrying what is safe to retry; raise a ConnectorError
        otherwise.

        :param ok: statuses that count as success.
        :param idempotent: whether repeating the request is harmless (default: by method).
        :param accept: an extra check of a successful response. False means the system
            dropped the request without applying it (ServiceNow's 202 from an overloaded
            session), so it is sent again whatever the method, like after a 429.
        """
        method = method.upper()
        safe = method in IDEMPOTENT if idempotent is None else idempotent
        limiter = self.limiter_for(method, path)
        policy = self.retry
        started = self._clock()
        failures = 0  # attempts that ended in a real error
        refusals = 0  # 429s and dropped answers: not attempts
        held = 0.0  # seconds this request waited on rate limits
        while True:
            try:
                ticket = limiter.reserve(max_wait=policy.rate_limit_budget - held, track=True)
            except RateLimitHold as hold:
                raise RateLimitedError(
                    f"{self.connector}: {method} {path}: the server's rate limit holds every "
                    f"request for {hold.wait:.0f}s more — gave up after waiting {held:.0f}s, "
                    f"as that would pass the {policy.rate_limit_budget:.0f}s rate-limit budget",
                    connector=self.connector,
                    status=429,
                    method=method,
                    url=path,
                    retry_after=hold.wait,
                ) from None
            held += ticket.waited
            self._count(calls=1)
            refused: float | None = None  # the wait a 429 or a dropped answer calls for
            scope: Scope = "limiter"
            try:
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
                finally:
                    limiter.answered(ticket)
            except (requests.ConnectionError, requests.Timeout) as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
                last_reason = f"the connection {kind}"
                error: ConnectorError = ConnectorTransportError(
                    f"{self.connector}: {method} {path}: {last_reason} ({type(exc).__name__})",
                    connector=self.connector,
                    method=method,
                    url=path,
                )
                failures += 1
                wait = self.retry.backoff(failures, self._rng) if safe else None
            else:
                log.debug("%s %s %s -> %s", self.connector, method, path, response.status_code)
                now = self._server_now(response)
                info = self._read_rate_limit(response, now)
                status = response.status_code
                if info is not None and status != 429:
                    limiter.observe(info, ticket)
                if status in ok and (accept is None or accept(response)):
                    limiter.succeeded(ticket)
                    return response
                if status in ok:  # accepted by status, refused by `accept`
                    # Dropped, not applied: repeating it is safe for any method, and it is no
                    # attempt. It says a queue overflowed, not a rate: nobody else is held.
                    last_reason = f"HTTP {status} without a result"
                    error = ConnectorTransportError(
                        f"{self.connector}: {method} {path}: {last_reason}",
                        connector=self.connector,
                        status=status,
                        method=method,
                        url=path,
                    )
                    refusals += 1
                    scope = "request"
                    refused = wait = self.retry.backoff(refusals, self._rng)
                else:
                    error = self.error_from_response(response)
                    error.method, error.url = method, path
                    last_reason = f"HTTP {status}"
                    if status == 429 or isinstance(error, RateLimitedError):
                        # Refused, not executed: repeating it is safe for any method.
                        asked = retry_after_seconds(response.headers, now)
                        error.retry_after = asked
                        refusals += 1
                        scope = _scope(response.headers.get("RateLimit-Reason"))
                        refused = wait = (
                            asked if asked is not None else self.retry.backoff(refusals, self._rng)
                        )
                    else:
                        failures += 1
                        wait = self._wait_for(response, error, failures, safe)
            if refused is not None:
                wait = refused
                self._count(rate_limited=1)
                # Hold the others first, even if this request gives up: they would be
                # refused too.
                if scope == "client":
                    self._hold_all(wait)
                elif scope == "limiter":
                    if not limiter.informed:  # else its headers pace it; this one raced them
                        limiter.slow_down(ticket)
                    limiter.pause(wait)
                if held + wait > policy.rate_limit_budget:
                    raise error.restated(
                        f"{error} — gave up after waiting {held:.0f}s on rate limits "
                        f"({refusals} answer{'s' if refusals != 1 else ''} asking to slow down, "
                        f"not counted as attempts): waiting {wait:.0f}s more would pass the "
                        f"{policy.rate_limit_budget:.0f}s rate-limit budget"
                    ) from error
                self._count(retries=1)
                log.warning(
                    "%s: %s %s: %s; sending it again in %.1fs (rate limit, not an attempt; "
                    "%.0fs of the %.0fs rate-limit budget used)%s",
                    self.connector,
                    method,
                    path,
                    last_reason,
                    wait,
                    held,
                    policy.rate_limit_budget,
                    f" [{error.reason}]" if error.reason else "",
                )
                limiter.wait(wait)
                held += wait
                continue
            if wait is None or failures >= policy.max_attempts:
                if failures > 1:
                    raise error.restated(
                        f"{error} — gave up after {failures} attempts{_also(refusals)}"
                    ) from error
                raise error
            spent = max(0.0, self._clock() - started - held)
            if spent + wait > policy.budget:
                raise error.restated(
                    f"{error} — gave up: waiting {wait:.0f}s more would pass the "
                    f"{policy.budget:.0f}s retry budget after {failures} attempts"
                    f"{_also(refusals)}"
                ) from error
            self._count(retries=1)
            log.warning(
                "%s: %s %s: %s; retrying in %.1fs (attempt %d of %d)%s",
                self.connector,
                method,
                path,
                last_reason,
                wait,
                failures + 1,
                policy.max_attempts,
                f" [{error.reason}]" if error.reason else "",
            )
            self._sleep(wait)

    def _wait_for(
        self, response: requests.Response, error: ConnectorError, attempt: int, safe: bool
    ) -> float | None:
        """The wait before repeating a request that failed with a real error; None: don't."""
        status = response.status_code
        if status >= 500 and safe:
            asked = (
                retry_after_seconds(response.headers, self._server_now(response))
                if status == 503
                else None
            )
            return asked if asked is not None else self.retry.backoff(attempt, self._rng)
        if error.retryable and safe:
            return self.retry.backoff(attempt, self._rng)
        return None


def _also(refusals: int) -> str:
    if not refusals:
        return ""
    return f" (and {refusals} rate-limited answer{'s' if refusals != 1 else ''}, not counted)"
