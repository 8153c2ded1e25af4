"""The webhook receiver: verify, deduplicate, queue — and answer fast.

Jira retries deliveries that are slow or fail (and may send one twice, up to ~30 minutes
late), so the receiver does no ticket work itself: it checks the signature in constant time
on the raw body, drops deliveries it has seen (by the system's delivery id, kept in the
store so every node agrees) and bodies it has seen (the signature covers only the body, so
a captured body re-sent under a new delivery id is a replay, not news), drops echoes of
bridge's own writes, and queues the item for a worker, which fetches it fresh. Errors map
to statuses a sender understands: 401 for a bad signature, 400 for a body it cannot read,
404 for an unknown source, 413 for an oversized body; a queue that is down gives 503 so the
system retries later. A source whose webhook secret cannot be read (its variable unset)
answers 500 and logs why; ``bridge serve`` checks every source's secret before it starts
(:func:`check_webhook_sources`), so that is rare.

The body cap holds for chunked bodies too: at most cap + 1 bytes are read, and a body over
the cap is answered 413 before its signature is checked (werkzeug would cut it at the cap
and the cut body would fail its signature: a 401 sends the sender looking at its secret).

Each connector checks the form of the item keys and the delivery id it parses; whatever the
connector, a key or id that could not be used safely (empty, overlong, control characters, a
``.``/``..`` path segment) is refused with 400 before it is recorded or queued: the key
becomes a URL the worker requests, the id a row in the store.

Strangers learn only what a load balancer needs. ``/healthz`` and ``/status`` without
credentials say ``ok`` or ``degraded`` (200/503) and nothing else; the version, the rule
digest, rule errors (with file:line, i.e. the layout of the rules), the sources and the
pending items need ``Authorization: Bearer <status token>``, and so does ``/metrics`` when a
token is configured (its labels name the sources). Presenting credentials asks for the
detail, so a wrong token is a 401 with ``WWW-Authenticate``, not a quiet "ok" that would
leave an operator guessing. ``/dashboard`` (the portfolio page: it names services, projects
and tickets) always needs the token, and only past it says 404 when the runtime has no
``dashboard`` (a :class:`~bridge.dashboard.DashboardSource`). An unknown source is a bare
404: listing the configured ones would map the deployment for anyone who guesses at URLs.

Under ``bridge serve`` every gunicorn worker counts in its own process; with
``PROMETHEUS_MULTIPROC_DIR`` set (``bridge serve`` sets it before forking) ``/metrics`` sums
the files of all of them, so a scrape sees the whole receiver, not the worker it reached.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from requests.structures import CaseInsensitiveDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from bridge import __version__
from bridge.config import Config
from bridge.connectors.base import ConnectorContext, WebhookEvent
from bridge.dashboard import DashboardSource, content_security_policy, render_dashboard
from bridge.errors import BridgeError, ConfigError, WebhookPayloadError, WebhookSignatureError
from bridge.plugins import Registry, default_registry
from bridge.service.runtime import Runtime
from bridge.store.base import Store
from bridge.store.summary import pending_status, timer_status
from bridge.sync import CLAIM

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ID_CHARS",
    "MIN_STATUS_TOKEN_CHARS",
    "STATUS_TOKEN_ENV",
    "Enqueue",
    "check_webhook_sources",
    "create_app",
    "read_status_token",
]

log = logging.getLogger("bridge.service")

MAX_BODY_BYTES = 1024 * 1024
# Longer than any item key or delivery id a connector makes (a Jira key, a ServiceNow
# table:sys_id, a UUID), far shorter than what would burden the queue or the store.
MAX_ID_CHARS = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# The status token when bridge.yaml's service: section names none.
STATUS_TOKEN_ENV = "BRIDGE_STATUS_TOKEN"  # noqa: S105 - a variable's name, not a secret
# Long enough that guessing it over HTTP is hopeless; visible ASCII, as a header carries it.
MIN_STATUS_TOKEN_CHARS = 16
_TOKEN_FORM = re.compile(r"[!-~]+")
# Where prometheus-client's multiprocess mode keeps each worker's counters.
_MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# (source, item key, deleted) → queue the work; raises when the queue is unavailable.
Enqueue = Callable[[str, str, bool], None]


def _json(code: int, **body: Any) -> Response:
    return Response(json.dumps(body), status=code, mimetype="application/json")


def _too_large() -> Response:
    return _json(413, error=f"the body is over {MAX_BODY_BYTES // 1024} KB")


def _checked_token(value: str, where: str) -> str:
    if len(value) < MIN_STATUS_TOKEN_CHARS or not _TOKEN_FORM.fullmatch(value):
        raise ConfigError(
            f"the status token in {where} must be at least {MIN_STATUS_TOKEN_CHARS} visible "
            "ASCII characters without spaces (a short one can be guessed); make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value


def read_status_token(config: Config) -> str | None:
    """The bearer token that unlocks the detail of ``/status`` and ``/metrics``: from the
    variable (``status_token_env``) or the file (``status_token_file``) bridge.yaml's
    ``service:`` names — the variable first, the file when it is unset — else from
    ``BRIDGE_STATUS_TOKEN``; None when there is none.

    Read when the app is made: ``bridge serve`` calls this before forking, so that a token
    bridge.yaml names but the environment lacks stops it (exit 2, naming the variable)
    instead of locking the operators out of a running service.

    :raises ConfigError: the named variable is unset or empty (and no file is named), the
        file cannot be read or is empty, or the token is too short to be safe.
    """
    # Messages name the setting, never the variable or the file it names: people paste the
    # token itself where its variable's name goes.
    settings = config.service
    env_name, file = settings.status_token_env, settings.status_token_file
    if env_name:
        value = os.environ.get(env_name, "").strip()
        if value:
            return _checked_token(value, "service.status_token_env")
        if file is None:
            raise ConfigError(
                f"{config.path}: service.status_token_env: the environment variable it names "
                "is not set or empty; export it before starting"
            )
    if file is not None:
        try:
            value = file.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise ConfigError(
                f"{config.path}: service.status_token_file: cannot read the file it names: {why}"
            ) from None
        if not value:
            raise ConfigError(f"{config.path}: service.status_token_file: the file is empty")
        return _checked_token(value, "service.status_token_file")
    value = os.environ.get(STATUS_TOKEN_ENV, "").strip()
    return _checked_token(value, STATUS_TOKEN_ENV) if value else None


def _bearer(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (any case of the scheme, RFC 6750);
    None for another scheme or no token."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _read_body(limit: int) -> bytes | None:
    """The request body, or None when it is longer than ``limit``.

    A chunked body has no Content-Length to refuse up front, and werkzeug's stream stops at
    the app's cap without a word. Reading ``limit + 1`` bytes at most tells a body over the
    cap from one exactly at it, and never holds more than that in memory.
    """
    try:
        stream = get_input_stream(request.environ, max_content_length=limit + 1)
        body = bytearray()
        while len(body) <= limit:
            chunk = stream.read(limit + 1 - len(body))
            if not chunk:
                break
            body += chunk
    except RequestEntityTooLarge:  # its Content-Length says so: nothing was read
        return None
    return None if len(body) > limit else bytes(body)


class _AllWorkers(Collector):
    """The receiver's counters summed over every process that wrote them to
    ``PROMETHEUS_MULTIPROC_DIR`` (each gunicorn worker of this ``bridge serve``, dead ones
    included, so a restarted worker's counts are kept). Only the receiver's own families:
    the job metrics a receiver's :class:`~bridge.service.tasks.Jobs` declares would show up
    as zeros, though ``bridge worker`` is what counts them."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def collect(self) -> Any:
        every = MultiProcessCollector(None)  # type: ignore[no-untyped-call]
        for family in every.collect():  # type: ignore[no-untyped-call]
            if family.name in self.names:
                yield family


def _unsafe(value: object, *, path: bool) -> str | None:
    """Why ``value`` cannot be queued or stored (None: it can)."""
    if not isinstance(value, str) or not value.strip():
        return "is empty"
    if len(value) > MAX_ID_CHARS:
        return f"is {len(value)} characters long (at most {MAX_ID_CHARS})"
    if _CONTROL.search(value):
        return "contains control characters"
    if path and any(unquote(part) in (".", "..") for part in value.split("/")):
        return "has a '.' or '..' path segment"
    return None


def _check_event(event: WebhookEvent) -> None:
    """Refuse a delivery no connector should have let through (defence in depth: each
    connector checks its keys' form; this holds for third-party connectors too).

    :raises WebhookPayloadError: a key or the delivery id is empty, overlong, holds control
        characters, or (a key) a dot segment.
    """
    if event.delivery_id:  # None or "": the delivery is not deduplicated
        why = _unsafe(event.delivery_id, path=False)
        if why:
            raise WebhookPayloadError(f"the delivery id {why}: {event.delivery_id[:60]!r}")
    for key in event.keys:
        why = _unsafe(key, path=True)
        if why:
            raise WebhookPayloadError(f"the item key {why}: {str(key)[:60]!r}")


def check_webhook_sources(config: Config, registry: Registry | None = None) -> dict[str, bool]:
    """Before the receiver starts: for each source whose connector receives webhooks, True
    when its deliveries can be verified, False when it configures no webhook secret (they
    will all be refused with 401).

    A connector reads its webhook secret only when a delivery arrives, so that a sync runs
    without it; this check makes a secret bridge.yaml names but the environment lacks stop
    ``bridge serve`` with a message naming the variable, rather than answer every delivery
    with 500. A source that cannot be built for another reason (its site unreachable) is
    logged and left to its first delivery.

    :raises ConfigError: a source's webhook secret or credentials cannot be read.
    """
    registry = registry or default_registry()
    ready: dict[str, bool] = {}
    for source in config.sources:
        spec = registry.connectors.get(source.connector)
        if spec is None:
            continue  # load_config has reported it
        try:
            connector = spec.factory(
                source.settings, ConnectorContext(base_dir=str(source.base_dir))
            )
        except ConfigError:
            raise
        except BridgeError as exc:
            log.warning("%s: cannot check its webhook secret before starting: %s", source.name, exc)
            continue
        try:
            if not hasattr(connector, "parse_webhook"):
                continue
            check = getattr(connector, "webhook_ready", None)
            ready[source.name] = bool(check()) if callable(check) else True
        finally:
            close = getattr(connector, "close", None)
            if callable(close):
                close()
    return ready


def _first_time(store: Store, source: str, event: WebhookEvent, replay: str, now: datetime) -> bool:
    """Record the delivery as seen — its body digest, its id — and its items as pending in
    the same transaction as the id, before anything is queued: the queue is a fast path;
    the sweeper runs a row whose job is lost. Rows are due after the claim time, so the fast
    path goes first. False: seen before, nothing recorded. A store error unsees the body, so
    the sender's retry is not taken for a replay."""
    if not store.first_delivery(source, replay, now):
        return False
    try:
        if event.ignore_reason or event.deleted or not event.keys:
            return not event.delivery_id or store.first_delivery(source, event.delivery_id, now)
        return all(
            store.add_pending(
                source,
                key,
                "webhook",
                now,
                delivery_id=event.delivery_id if index == 0 else None,
                due=now + CLAIM,
            )
            for index, key in enumerate(event.keys)
        )
    except BaseException:
        store.forget_delivery(source, replay)
        raise


def create_app(
    runtime: Runtime, enqueue: Enqueue, *, metrics: CollectorRegistry | None = None
) -> Flask:
    """The WSGI app of one bridge node.

    :raises ConfigError: the status token bridge.yaml names cannot be read
        (:func:`read_status_token`).
    """
    app = Flask("bridge")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    token = read_status_token(runtime.config)
    registry = metrics or CollectorRegistry()
    deliveries = Counter(
        "bridge_webhook_deliveries",
        "Webhook deliveries by outcome",
        ["source", "outcome"],
        registry=registry,
    )
    queued = Counter(
        "bridge_items_queued", "Items queued for processing", ["source"], registry=registry
    )
    scraped = registry
    if os.environ.get(_MULTIPROCESS_ENV):
        scraped = CollectorRegistry()
        scraped.register(
            _AllWorkers(
                family.name for metric in (deliveries, queued) for family in metric.describe()
            )
        )
    told_no_token = False

    def refusal(authorization: str | None) -> Response | None:
        """None when ``authorization`` carries the status token; else the 401 to answer."""
        nonlocal told_no_token
        given = _bearer(authorization)
        if (
            token is not None
            and given is not None
            and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))
        ):
            return None
        if token is None and not told_no_token:
            told_no_token = True
            log.warning(
                "a request asked for the status detail, but no status token is configured "
                "(service.status_token_env or status_token_file in bridge.yaml, or %s)",
                STATUS_TOKEN_ENV,
            )
        refused = _json(401, error="this needs Authorization: Bearer <the status token>")
        refused.headers["WWW-Authenticate"] = 'Bearer realm="bridge"' + (
            ', error="invalid_token"' if given is not None else ""
        )
        return refused

    # Only sources whose connector receives webhooks: an export (files) source has no
    # deliveries, and answers as an unknown source does.
    webhook_sources = {
        s.name
        for s in runtime.config.sources
        if (spec := runtime.registry.connectors.get(s.connector)) is not None and spec.live
    }

    @app.post("/webhooks/<source>")
    def receive(source: str) -> Response:
        if source not in webhook_sources:
            deliveries.labels(source="unknown", outcome="unknown_source").inc()
            return _json(404, error="no such webhook source")
        body = _read_body(MAX_BODY_BYTES)
        if body is None:  # before the signature: a cut body would fail it, and say so
            deliveries.labels(source=source, outcome="too_large").inc()
            return _too_large()
        headers = CaseInsensitiveDict(request.headers.items())
        try:
            connector = runtime.connector(source)
            event = connector.parse_webhook(headers, body)
            _check_event(event)
        except WebhookSignatureError as exc:
            deliveries.labels(source=source, outcome="bad_signature").inc()
            log.warning("%s: rejected a delivery: %s", source, exc)
            return _json(401, error=str(exc))
        except WebhookPayloadError as exc:
            deliveries.labels(source=source, outcome="bad_payload").inc()
            return _json(400, error=str(exc))
        except ConfigError as exc:
            deliveries.labels(source=source, outcome="misconfigured").inc()
            log.error("%s: %s", source, exc)
            return _json(500, error="bridge is misconfigured for this source; see its log")
        except BridgeError as exc:
            deliveries.labels(source=source, outcome="error").inc()
            log.error("%s: %s", source, exc)
            return _json(503, error="bridge cannot handle deliveries right now; retry later")
        now = datetime.now(UTC)
        store = runtime.store
        # Genuine deliveries differ in their bodies (Jira's timestamp and changelog id,
        # ServiceNow's sys_mod_count); the same signed body twice is a retry or a replay.
        replay = "sha256:" + hashlib.sha256(body).hexdigest()
        if not _first_time(store, source, event, replay, now):
            deliveries.labels(source=source, outcome="duplicate").inc()
            return _json(200, status="duplicate", delivery=event.delivery_id or replay)
        if event.ignore_reason:
            deliveries.labels(source=source, outcome="ignored").inc()
            return _json(200, status="ignored", reason=event.ignore_reason)
        try:
            for key in event.keys:
                enqueue(source, key, event.deleted)
                queued.labels(source=source).inc()
        except Exception as exc:
            log.error("%s: cannot queue %s: %s", source, event.keys, exc)
            deliveries.labels(source=source, outcome="queue_down").inc()
            # Unseen: the sender's retry is processed, not a duplicate.
            store.forget_delivery(source, replay)
            if event.delivery_id:
                store.forget_delivery(source, event.delivery_id)
            return _json(503, error="the job queue is unavailable; retry later")
        deliveries.labels(source=source, outcome="queued").inc()
        return _json(202, status="queued", keys=list(event.keys))

    @app.get("/healthz")
    def health() -> Response:
        return _json(200, status="ok")

    @app.get("/status")
    def status() -> Response:
        rules = runtime.refresh_rules()
        code, state = (200, "ok") if rules.healthy else (503, "degraded")
        authorization = request.headers.get("Authorization")
        if authorization is None:  # a load balancer or a stranger
            return _json(code, status=state)
        refused = refusal(authorization)
        if refused is not None:
            return refused
        return _json(
            code,
            status=state,
            version=__version__,
            rules={
                "digest": rules.digest,
                "loaded_at": rules.loaded_at.isoformat() if rules.loaded_at else None,
                "last_attempt_at": (
                    rules.last_attempt_at.isoformat() if rules.last_attempt_at else None
                ),
                "error": rules.last_error,
                "in_force": "last good"
                if rules.digest and rules.last_error
                else ("current" if rules.digest else "none"),
            },
            sources=[s.name for s in runtime.config.sources],
            pending=pending_status(runtime.store),
            timers=timer_status(runtime.store),
        )

    @app.get("/dashboard")
    def dashboard() -> Response:
        # The portfolio names services, projects and tickets: the status detail's token,
        # asked for before anything is said, so a stranger cannot even learn whether the
        # deployment has a dashboard.
        refused = refusal(request.headers.get("Authorization"))
        if refused is not None:
            return refused
        source = getattr(runtime, "dashboard", None)
        if not isinstance(source, DashboardSource):
            return _json(404, error="this service has no dashboard: nothing keeps evaluations")
        try:
            snapshot = source.evaluations()
        except BridgeError as exc:
            log.error("dashboard: cannot read the evaluations: %s", exc)
            return _json(503, error="the evaluations cannot be read right now; retry later")
        page = render_dashboard(
            snapshot.evaluated,
            now=snapshot.now,
            rule_set=snapshot.rule_set,
            currency=snapshot.currency,
        )
        response = Response(page, mimetype="text/html")
        response.headers["Content-Security-Policy"] = content_security_policy()
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        # Its labels name the sources: with a token configured, Prometheus sends it
        # (authorization: {credentials_file: ...} in the scrape config).
        refused = refusal(request.headers.get("Authorization")) if token is not None else None
        if refused is not None:
            return refused
        return Response(generate_latest(scraped), mimetype=CONTENT_TYPE_LATEST)

    @app.errorhandler(413)
    def too_large(_: Exception) -> Response:
        return _too_large()

    return app
