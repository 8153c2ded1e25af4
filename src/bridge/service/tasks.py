"""Jobs: processing webhook items and scheduled syncs, on huey.

One machine: a SQLite queue file beside the store. Several: Redis (``BRIDGE_REDIS_URL`` or
``queue:`` in bridge.yaml), with any number of ``bridge worker`` processes. Messages are JSON,
never pickle, and a message that is not bridge's is refused, not run
(:mod:`bridge.service.messages`); no task results are stored.

The queue is only the fast path. What must be written lives in the store's pending rows
until it is (:mod:`bridge.store.records`): an item job that fails records its error and
backs off there, and the sweeper — a periodic task on every worker — queues the rows that
are due, including those whose job was lost (a worker killed mid-job, a queue that was
down). A scheduled sync holds a lease in the store, renewed while it runs: never two at once
for one source, and a killed worker delays the next one by at most the lease.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from huey import Huey, crontab
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bridge.config import Config, WorkerSettings
from bridge.connectors.base import LiveConnector
from bridge.errors import BridgeError, ConfigError, WriteDeferredError
from bridge.model import WorkItem
from bridge.service.messages import MemoryQueue, RedisQueue, SqliteQueue
from bridge.service.runtime import Evaluators, Runtime
from bridge.store.leases import holder_id, take_lease
from bridge.store.records import Backoff, Retention, Timer
from bridge.sync import (
    CLAIM,
    ITEM_LEASE,
    ItemOutcome,
    SyncReport,
    evaluate,
    fetch_many,
    forget,
    give_up,
    item_lease,
    process_item,
    settle,
    sync_source,
    tally,
)

__all__ = ["ITEM_LEASE", "SYNC_LEASE", "Jobs", "make_huey", "parse_cron"]

# A scheduled sync's lease (default), renewed every third of it while the sync runs.
SYNC_LEASE = WorkerSettings().sync_lease
PRUNE_EVERY = timedelta(hours=1)
MAX_ROUNDS = 3  # evaluations of one item per job while new changes keep arriving
# Due timers taken per tick; the rest wait for the next one. Herds are common (every slip
# count steps at the calendar's midnight, office-hours clocks breach at opening time), so a
# tick takes many, and writes them concurrently like a sync.
TICK_LIMIT = 10_000

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


class PendingCollector(Collector):
    """Pending and given-up items per source, read from the store when scraped (every
    worker and node sees the same figures)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Any:
        pending = GaugeMetricFamily(
            "bridge_pending_items", "Items still to be written, by source", labels=["source"]
        )
        given_up = GaugeMetricFamily(
            "bridge_given_up_items", "Items given up after their last attempt", labels=["source"]
        )
        for (source, gave_up), count in sorted(self.runtime.store.count_pending().items()):
            (given_up if gave_up else pending).add_metric([source], count)
        yield pending
        yield given_up


class TimerCollector(Collector):
    """Timers per source and how far behind the earliest one is, read from the store when
    scraped (every worker and node sees the same figures)."""

    def __init__(self, runtime: Runtime, clock: Callable[[], datetime]) -> None:
        self.runtime = runtime
        self.clock = clock

    def collect(self) -> Any:
        count = GaugeMetricFamily(
            "bridge_timers", "Items with a timer, by source", labels=["source"]
        )
        for source, n in sorted(self.runtime.store.count_timers().items()):
            count.add_metric([source], n)
        yield count
        behind = GaugeMetricFamily(
            "bridge_timer_behind_seconds",
            "How long the earliest due timer has waited (0: none is due)",
        )
        first = self.runtime.store.next_timers(1)
        late = (self.clock() - first[0].due).total_seconds() if first else 0.0
        behind.add_metric([], max(0.0, late))
        yield behind


class Jobs:
    """The tasks of one bridge deployment, registered on a huey instance."""

    def __init__(
        self,
        runtime: Runtime,
        huey: Huey,
        *,
        backoff: Backoff | None = None,
        sync_lease: timedelta | None = None,
        retention: Retention | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.runtime = runtime
        self.huey = huey
        settings = runtime.config.worker  # bridge.yaml's worker: section, or its defaults
        self.backoff = backoff or settings.backoff
        self.sync_lease = sync_lease or settings.sync_lease
        self.retention = retention or settings.retention
        self.clock = clock
        self._next_prune: datetime | None = None
        # What ``bridge worker --metrics`` serves.
        self.metrics = CollectorRegistry()
        self.metrics.register(PendingCollector(runtime))
        self.items = Counter(
            "bridge_worker_items",
            "Item jobs run, by outcome (written, unchanged, skipped, failed, given_up)",
            ["source", "outcome"],
            registry=self.metrics,
        )
        self.swept = Counter(
            "bridge_worker_swept_items",
            "Pending items the sweeper queued again (backoff over, or their job was lost)",
            registry=self.metrics,
        )
        self.lease_skips = Counter(
            "bridge_worker_sync_skips",
            "Scheduled syncs skipped because another holder's lease was unexpired",
            ["source"],
            registry=self.metrics,
        )
        self.timer_lag = Histogram(
            "bridge_timer_lag_seconds",
            "How late a due timer was taken (its instant to the tick that evaluated it)",
            buckets=(1, 5, 15, 30, 45, 60, 90, 120, 300, 900, 3600),
            registry=self.metrics,
        )
        self.timers_run = Counter(
            "bridge_timer_items",
            "Items re-evaluated because a written value changed with time (their timer)",
            registry=self.metrics,
        )
        self.metrics.register(TimerCollector(runtime, clock))
        self.lease_takeovers = Counter(
            "bridge_worker_lease_takeovers",
            "Sync leases taken over after their holder's lease expired (a killed worker)",
            ["source"],
            registry=self.metrics,
        )

        def process(source: str, key: str) -> None:
            # The outcome is in the audit log; a return value would only pile up unread.
            self._process(source, key)

        # huey is untyped: its task wrapper enqueues when called. No huey retries: a failed
        # item backs off in its pending row, which outlives the queue and the worker.
        self.process: Any = huey.task(retries=0, name="bridge.process_item")(process)
        self.sweeper: Any = huey.periodic_task(crontab(minute="*"), name="bridge.sweep")(self.sweep)
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
        """Fetch, evaluate and write one item, as the only job on it anywhere (a lease in
        the store). Jobs for an item another job holds are coalesced into that job: they
        leave the item pending and return, and the holder, seeing the pending row changed
        while it worked, evaluates it once more — so a burst of deliveries costs at most
        two evaluations and two jobs never write one item at once.

        The hand-off has no gap: a coalescing job marks the item pending, then tries the
        lease once more (the holder may have let go meanwhile); a holder that lets go looks
        for a row added after its last evaluation and queues a job for it."""
        store = self.runtime.store
        name = item_lease(source, key)
        # A holder per job, not per process: the worker's threads exclude each other too.
        holder = holder_id()
        lease = take_lease(store, name, holder, self.clock(), ITEM_LEASE)
        if not lease.acquired:
            if store.get_pending(source, key) is None:
                store.add_pending(source, key, "coalesced", self.clock(), due=lease.expires)
            lease = take_lease(store, name, holder, self.clock(), ITEM_LEASE)
            if not lease.acquired:
                self.items.labels(source, "coalesced").inc()
                return ItemOutcome(key, "coalesced", f"{lease.holder} has it")
        settled = False
        try:
            for _ in range(MAX_ROUNDS):
                outcome, settled = self._process_once(source, key)
                if settled:
                    break
        finally:
            store.release_lease(name, holder)
        if settled and outcome.action != "failed":
            # A row now is a change that came after the last evaluation, from a job or a
            # sync that found the lease taken: run it (a failed item keeps its backoff).
            late = store.get_pending(source, key)
            settled = late is None or late.attempts > 0 or late.given_up
        if not settled:
            # Changed on every round, or since: queued again behind the other work (the
            # row stays, so the sweeper runs it should the queue be down).
            try:
                self.process(source, key)
            except Exception as exc:
                log.warning(
                    "%s: %s: cannot queue it again (%s); the sweeper will", source, key, exc
                )
        return outcome

    def _process_once(self, source: str, key: str) -> tuple[ItemOutcome, bool]:
        """One evaluation; whether the item is settled (no newer change came meanwhile).
        Its pending row goes once it is written (or gone), and keeps the error and the next
        try when it is not."""
        store = self.runtime.store
        now = self.clock()
        row = store.get_pending(source, key)
        seq = row.seq if row is not None else 0  # 0: drop no row a newer change adds
        try:
            evaluators = self.runtime.evaluators()
            connector = self.runtime.connector(source)
            connector.prepare(evaluators.rule_set)  # cheap when the rules are unchanged
            outcome = process_item(
                source, connector, evaluators.engine, evaluators.kpis, store, key, now
            )
        except Exception as exc:
            return self._failed(source, key, exc, now), True
        self.items.labels(source, outcome.action).inc()
        settled = store.finish_pending(source, key, seq) or store.get_pending(source, key) is None
        return outcome, settled

    def start_ticks(self) -> threading.Event:
        """Run :meth:`tick` every ``worker.tick`` on a thread of its own (huey's periodic
        tasks have a one-minute grain; a breach should reach the ticket within one tick);
        set the returned event to stop it."""
        stop = threading.Event()
        every = self.runtime.config.worker.tick.total_seconds()

        def run() -> None:
            while not stop.wait(every):
                try:
                    self.tick()
                except Exception:  # the store is down, say: the next tick tries again
                    log.exception("timers: the tick failed")

        threading.Thread(target=run, name="bridge-timers", daemon=True).start()
        return stop

    def tick(self) -> int:
        """Re-evaluate the items whose timers are due — a breach, a due date passing — and
        write what changed; how many items were evaluated. Due items are read fresh in
        batches (:meth:`fetch_many`: one search per 100 Jira keys, one query per ServiceNow
        table and batch) and each is written under its item lease; one another job holds
        is left to it (that job sets the timer again). Keys not answered are gone or out of
        scope: their timers go."""
        store = self.runtime.store
        now = self.clock()
        due = store.claim_timers(now, now + CLAIM, limit=TICK_LIMIT)
        by_source: dict[str, dict[str, Timer]] = {}
        for timer in due:
            by_source.setdefault(timer.source, {})[timer.key] = timer
            self.timer_lag.observe(max(0.0, (now - timer.due).total_seconds()))
        evaluated = 0
        for source, timers in by_source.items():
            if source not in {c.name for c in self.runtime.config.sources}:
                for key in timers:  # a source no longer configured
                    forget(store, source, key)
                continue
            try:
                evaluators = self.runtime.evaluators()
                connector = self.runtime.connector(source)
                connector.prepare(evaluators.rule_set)
                ticket = store.lease_ticket()  # before the read: who wrote since is known
                found = list(fetch_many(connector, list(timers)))
            except Exception as exc:  # the claim runs out and the timers are due again
                log.warning("%s: cannot read %d due item(s): %s", source, len(timers), exc)
                continue
            for key in timers.keys() - {item.key for item in found}:
                forget(store, source, key)
            workers = max(1, int(getattr(connector, "concurrency", 8)))
            with ThreadPoolExecutor(workers, thread_name_prefix=f"bridge-timers-{source}") as pool:
                for item in found:
                    pool.submit(self._on_timer, source, connector, evaluators, item, now, ticket)
            evaluated += len(found)
        if evaluated:
            self.timers_run.inc(evaluated)
            log.info(
                "timers: evaluated %d item(s) whose written values changed with time", evaluated
            )
        return evaluated

    def _on_timer(
        self,
        source: str,
        connector: LiveConnector,
        evaluators: Evaluators,
        item: WorkItem,
        now: datetime,
        ticket: int,
    ) -> None:
        store = self.runtime.store
        name = item_lease(source, item.key)
        holder = holder_id()
        lease = take_lease(store, name, holder, now, ITEM_LEASE)
        if not lease.acquired:
            return  # its holder evaluates it and sets its timer
        try:
            if lease.held_since(ticket):
                # Another job held it since the batch was read, and may have written: again.
                item = connector.fetch(item.key)
            found = evaluate(item, evaluators.engine, evaluators.kpis, connector, now)
            written = tally(found.ops, connector.apply(item, found.ops)) if found.ops else None
            settle(store, source, item.key, found, now)
            if written:
                store.audit(source, item.key, "written", f"on its timer: {written.detail}", now)
                self.items.labels(source, "written").inc()
        except Exception as exc:
            self._failed(source, item.key, exc, now)
        finally:
            store.release_lease(name, holder)

    def _failed(self, source: str, key: str, exc: Exception, now: datetime) -> ItemOutcome:
        """Record what went wrong with an item's job: a deferral waits (pending, no attempt
        counted); a failure is audited and backs off in its pending row, or is given up."""
        store = self.runtime.store
        if isinstance(exc, WriteDeferredError):
            store.add_pending(source, key, "deferred", now, due=exc.retry_at)
            self.items.labels(source, "deferred").inc()
            return ItemOutcome(key, "deferred", str(exc))
        if isinstance(exc, BridgeError):
            message = str(exc)
        else:
            message = f"internal error: {type(exc).__name__}: {exc}"
            log.error("%s: %s failed unexpectedly", source, key, exc_info=exc)
        store.audit(source, key, "failed", message, now)
        failed = store.fail_pending(source, key, message, now, self.backoff)
        if failed.given_up:
            give_up(store, source, failed, now)
        self.items.labels(source, "given_up" if failed.given_up else "failed").inc()
        return ItemOutcome(key, "failed", message)

    def sweep(self) -> int:
        """Queue the pending items that are due (failed ones whose backoff ran out, and
        those whose job was lost), and prune old state once an hour; how many were queued."""
        store = self.runtime.store
        now = self.clock()
        due = store.claim_pending(now, now + CLAIM, limit=1000)
        for row in due:
            self.process(row.source, row.key)
            self.swept.inc()
        if due:
            log.info("queued %d pending item(s) that were due", len(due))
        if self._next_prune is None or now >= self._next_prune:
            keep = self.retention
            counts = store.prune(
                deliveries=now - keep.deliveries,
                audit=now - keep.audit,
                given_up=now - keep.given_up,
            )
            self._next_prune = now + PRUNE_EVERY
            if any(counts.values()):
                log.info("pruned %s", ", ".join(f"{n} {what}" for what, n in counts.items()))
        return len(due)

    def sync(self, source: str, *, full: bool = False) -> SyncReport | None:
        """One sync of one source, unless another worker holds its lease."""
        store = self.runtime.store
        name = f"sync:{source}"
        holder = holder_id()
        lease = take_lease(store, name, holder, self.clock(), self.sync_lease)
        if not lease.acquired:
            self.lease_skips.labels(source).inc()
            log.warning(
                "%s: a sync is already running (held by %s since %s, until %s unless renewed); "
                "skipped this one",
                source,
                lease.holder,
                lease.since.isoformat(),
                lease.expires.isoformat(),
            )
            return None
        if lease.expired_holder is not None:
            self.lease_takeovers.labels(source).inc()
            log.warning(
                "%s: took over the sync lease of %s, which expired (a worker killed mid-sync?)",
                source,
                lease.expired_holder,
            )
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.sync_lease.total_seconds() / 3):
                store.acquire_lease(name, holder, self.clock(), self.sync_lease)

        heartbeat = threading.Thread(target=renew, name=f"bridge-lease-{source}", daemon=True)
        heartbeat.start()
        try:
            # The runtime's engines, not fresh ones: their caches stay warm across syncs.
            evaluators = self.runtime.evaluators()
            connector = self.runtime.connector(source)
            return sync_source(
                source,
                connector,
                evaluators.rule_set,
                store,
                self.clock(),
                full=full,
                concurrency=getattr(connector, "concurrency", 8),
                engine=evaluators.engine,
                kpis=evaluators.kpis,
                backoff=self.backoff,
                holder=holder,
                clock=self.clock,
                requeue=lambda key: self.process(source, key),
            )
        finally:
            done.set()
            heartbeat.join()
            store.release_lease(name, holder)
