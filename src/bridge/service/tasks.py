"""Jobs: processing webhook items and scheduled syncs, on huey.

One machine: a SQLite queue file beside the store. Several: Redis (``BRIDGE_REDIS_URL`` or
``queue:`` in bridge.yaml), with any number of ``bridge worker`` processes. A task that fails
with a retryable connector error is retried with a delay; a sync never runs twice at once
for the same source (a huey lock), so two workers cannot race on one cursor. Messages are
JSON, never pickle, and a message that is not bridge's is refused, not run
(:mod:`bridge.service.messages`); no task results are stored.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from huey import Huey, crontab
from huey.exceptions import TaskLockedException

from bridge.config import Config
from bridge.errors import ConfigError, ConnectorError
from bridge.service.messages import MemoryQueue, RedisQueue, SqliteQueue
from bridge.service.runtime import Runtime
from bridge.sync import ItemOutcome, SyncReport, process_item, sync_source

__all__ = ["Jobs", "make_huey", "parse_cron"]

log = logging.getLogger("bridge.jobs")


def make_huey(config: Config, *, immediate: bool = False, name: str = "bridge") -> Huey:
    """The queue bridge.yaml (or the environment) names: JSON messages, no stored results.

    ``name`` tells queues apart on one Redis database or SQLite file (tests).
    """
    if immediate:
        return MemoryQueue(name, immediate=True)
    url = os.environ.get("BRIDGE_REDIS_URL") or config.queue
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        return RedisQueue(name, url=url)
    if url and url.startswith("sqlite://"):
        path = Path(url[len("sqlite://") :])
    elif url:
        raise ConfigError(
            f"unknown queue URL {url.split(':', 1)[0]!r}: use redis://host:6379/0 "
            "or sqlite:///path/to/queue.db"
        )
    else:
        path = config.path.parent / "bridge-queue.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteQueue(name, filename=str(path))


def parse_cron(expression: str) -> Any:
    """``*/10 * * * *`` (minute hour day month weekday) as a huey crontab (UTC)."""
    parts = expression.split()
    if len(parts) != 5:
        raise ConfigError(f"cron {expression!r} needs 5 fields: minute hour day month weekday")
    minute, hour, day, month, weekday = parts
    try:
        return crontab(
            minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, strict=True
        )
    except ValueError as exc:
        raise ConfigError(f"cron {expression!r}: {exc}") from None


class Jobs:
    """The tasks of one bridge deployment, registered on a huey instance."""

    def __init__(self, runtime: Runtime, huey: Huey) -> None:
        self.runtime = runtime
        self.huey = huey

        def process(source: str, key: str) -> None:
            # The outcome is in the audit log; a return value would only pile up unread.
            self._process(source, key)

        # huey is untyped: its task wrapper enqueues when called.
        self.process: Any = huey.task(retries=5, retry_delay=30, name="bridge.process_item")(
            process
        )
        self.syncs: dict[str, Any] = {}
        for entry in runtime.config.schedules:
            source, full = entry.source, entry.full

            def run(source: str = source, full: bool = full) -> None:
                self.sync(source, full=full)

            self.syncs[f"{source}:{entry.cron}"] = huey.periodic_task(
                parse_cron(entry.cron), name=f"bridge.sync.{source}.{len(self.syncs)}"
            )(run)

    def enqueue(self, source: str, key: str, deleted: bool) -> None:
        """What the receiver calls for each item of a verified, new delivery."""
        if deleted:
            self.runtime.store.audit(
                source, key, "deleted", "deleted in the source system", datetime.now(UTC)
            )
            return
        self.process(source, key)

    def _process(self, source: str, key: str) -> ItemOutcome:
        evaluators = self.runtime.evaluators()
        connector = self.runtime.connector(source)
        connector.prepare(evaluators.rule_set)  # cheap when the rules are unchanged
        now = datetime.now(UTC)
        try:
            return process_item(
                source, connector, evaluators.engine, evaluators.kpis, self.runtime.store, key, now
            )
        except ConnectorError as exc:
            self.runtime.store.audit(source, key, "failed", str(exc), now)
            if exc.retryable:
                raise  # huey retries the task later
            return ItemOutcome(key, "failed", str(exc))

    def sync(self, source: str, *, full: bool = False) -> SyncReport | None:
        """One sync of one source, unless another worker is already syncing it."""
        try:
            with self.huey.lock_task(f"sync:{source}"):
                # The runtime's engines, not fresh ones: their caches stay warm across syncs.
                evaluators = self.runtime.evaluators()
                connector = self.runtime.connector(source)
                return sync_source(
                    source,
                    connector,
                    evaluators.rule_set,
                    self.runtime.store,
                    datetime.now(UTC),
                    full=full,
                    concurrency=getattr(connector, "concurrency", 8),
                    engine=evaluators.engine,
                    kpis=evaluators.kpis,
                )
        except TaskLockedException:
            log.info("%s: a sync is already running; skipped this one", source)
            return None
