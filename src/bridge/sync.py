"""One sync of one source: pull → classify → KPIs → plan → apply, each item on its own.

An item that fails (gone, refused, malformed) is recorded and skipped; the rest of the sync
goes on. The cursor advances only when the pull itself completed, to the newest ``updated``
seen (never to the local clock, so clock skew cannot lose changes), and the next incremental
pull starts ``overlap`` earlier; items already handled in that overlap at the same
``updated`` are dropped instead of re-evaluated.

Writes run concurrently (bounded) because a live system's latency, not CPU, bounds a sync;
the connector's rate limiter keeps them under the system's limits. Memory stays flat: items
stream from the connector and at most ``2 × concurrency`` writes are in flight.

One job per item at a time, the sync included: an item with something to write is written
under its lease in the store (the one webhook jobs take). An item another job holds is left
to that job (its pending row is bumped, so the holder evaluates it once more); an item
another job held after this sync's pull began is fetched again before it is written, since
the pulled copy may be older than what that job wrote.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bridge.connectors.base import LiveConnector
from bridge.errors import BridgeError, ItemNotFoundError, WriteDeferredError
from bridge.evaluations import encode
from bridge.kpi.compute import KpiEngine
from bridge.kpi.next_change import next_change
from bridge.kpi.portfolio import Evaluated
from bridge.kpi.result import KpiResult, iso
from bridge.model import Classification, WorkItem
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.store.base import Store
from bridge.store.leases import holder_id, take_lease
from bridge.store.records import Backoff, Lease, Pending
from bridge.writeback.plan import Applied, SetFields, UpsertSummary, WriteOp
from bridge.writeback.values import WritebackOptions, apply_options

__all__ = [
    "CLAIM",
    "ITEM_LEASE",
    "Evaluation",
    "ItemOutcome",
    "SyncReport",
    "evaluate",
    "evaluate_item",
    "fetch_many",
    "item_lease",
    "process_item",
    "sync_source",
    "tally",
]

log = logging.getLogger("bridge.sync")

OVERLAP_MEMO = "sync:overlap"
DEFAULT_BACKOFF = Backoff()
# How long a claimed pending row stays out of other workers' reach: longer than any item
# takes; a worker killed holding it leaves it due again after this.
CLAIM = timedelta(minutes=15)
# The classification itself, which every summary shows.
SUMMARY_KEYS = frozenset({"work_type", "phase", "rule"})
# One job per item at a time: the lease outlasts any one evaluation and write; a job killed
# holding it blocks the item for at most this long (at once, on the same host).
ITEM_LEASE = timedelta(minutes=5)
#: How often a sync with no queue looks again at items that changed while it held them.
LATE_ROUNDS = 3


def item_lease(source: str, key: str) -> str:
    """The name of an item's lease, shared by sync and webhook jobs."""
    return f"item:{source}:{key}"


def give_up(store: Store, source: str, row: Pending, now: datetime) -> None:
    """Make a given-up item visible: the audit log and a warning say why."""
    message = f"given up after {row.attempts} attempt(s); last error: {row.last_error}"
    store.audit(source, row.key, "given up", message, now)
    log.warning("%s: %s: %s", source, row.key, message)


@dataclass
class SyncReport:
    """What one sync did, for the CLI, the logs and the audit trail."""

    source: str
    dry_run: bool
    since: datetime | None = None
    cursor: datetime | None = None
    pulled: int = 0
    duplicates: int = 0
    unchanged: int = 0
    retried: int = 0  # pending items fetched because the pull did not meet them
    coalesced: int = 0  # left to the job that held them (it evaluates them once more)
    deferred: int = 0  # waiting, pending, for an earlier write's outcome (not failures)
    refetched: int = 0  # fetched again: another job held them after the pull began
    items_written: int = 0
    field_writes: int = 0
    comment_writes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    planned: dict[str, list[WriteOp]] = field(default_factory=dict)
    # Asked to stop (Ctrl-C, SIGTERM): the writes under way were finished, the cursor was
    # left where it was, so the next sync pulls again what this one did not reach.
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted


def written_keys(connector: LiveConnector, values: Iterable[str]) -> frozenset[str]:
    """What reaches the ticket: the write-back fields and, where the summary is written
    (Jira's comment, ServiceNow's work note), every value it shows."""
    settings = getattr(connector, "settings", None)
    fields = frozenset(getattr(settings, "writeback_fields", None) or ())
    summary = getattr(settings, "comment", False) or getattr(settings, "journal", None)
    return fields | SUMMARY_KEYS | frozenset(values) if summary else fields


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The writes one item needs now, and when its written values next change by the clock
    alone (None: never; the item's timer is dropped)."""

    ops: list[WriteOp]
    next_change: datetime | None
    #: The item's evaluation as the store keeps it (bridge.evaluations): true values at
    #: ``now``, before any write-back rounding or refresh cadence.
    record: str | None = None


def settle(store: Store, source: str, key: str, found: Evaluation, now: datetime) -> None:
    """After an item is written (or found up to date): its timer, and its evaluation for
    reports and the dashboard."""
    store.set_timer(source, key, found.next_change)
    if found.record is not None:
        store.put_evaluation(source, key, found.record, now)


def forget(store: Store, source: str, key: str) -> None:
    """The item is gone or out of scope: no timer, and no figures in reports."""
    store.set_timer(source, key, None)
    store.drop_evaluation(source, key)


def evaluate(
    item: WorkItem, engine: Engine, kpis: KpiEngine, connector: LiveConnector, now: datetime
) -> Evaluation:
    """Classify, compute the KPIs, let the connector diff them — and find the next instant
    a written value changes if nobody touches the item (a breach, a due date passing)."""
    decision, result = _decide(item, engine, kpis, now)
    record = encode(Evaluated(item, decision, result))
    options = getattr(getattr(connector, "settings", None), "writeback_options", None) or {}
    due = next_change(item, decision, kpis, written_keys(connector, result.values), now)
    if options:
        due = _on_cadence(item, decision, kpis, result, options, now, due)
    ops = connector.plan(item, decision, result, currency=kpis.config.currency)
    return Evaluation(ops, due, record)


def evaluate_item(
    item: WorkItem, engine: Engine, kpis: KpiEngine, connector: LiveConnector, now: datetime
) -> list[WriteOp]:
    """The writes one item needs: classify, compute its KPIs, let the connector diff them."""
    decision, result = _decide(item, engine, kpis, now)
    return connector.plan(item, decision, result, currency=kpis.config.currency)


def _decide(
    item: WorkItem, engine: Engine, kpis: KpiEngine, now: datetime
) -> tuple[Classification, KpiResult]:
    decision = engine.classify(item, now)
    # No Infinity or NaN is ever written back: an overflowing figure is null with its reason.
    return decision, kpis.compute(item, decision, now).finite()


def refresh_slot(now: datetime, every: timedelta) -> datetime:
    """The start of the refresh period ``now`` falls in: whole periods since the Unix epoch
    (UTC), so every process and every item agree on when a figure is refreshed."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + every * ((now - epoch) // every)


def _on_cadence(
    item: WorkItem,
    decision: Classification,
    kpis: KpiEngine,
    result: KpiResult,
    options: Mapping[str, WritebackOptions],
    now: datetime,
    due: datetime | None,
) -> datetime | None:
    """Figures with a ``refresh`` take their value at the start of the current refresh
    period (so it holds until the next one) and ``round`` rounds them; the item's timer is
    then the earlier of its next step and the next refresh of a figure it shows."""
    periods = {o.refresh for key, o in options.items() if o.refresh and key in result.values}
    for every in sorted(periods):
        start = refresh_slot(now, every)
        if start < now:
            earlier = kpis.compute(item, decision, start).finite().values
            for key, option in options.items():
                if option.refresh == every and key in result.values:
                    result.values[key] = earlier.get(key)
        following = start + every
        due = following if due is None or following < due else due
    rounded = apply_options(result.values, options)
    for key in options:
        if key in result.values:
            result.values[key] = rounded[key]
    return due


def tally(ops: Sequence[WriteOp], applied: Applied | None) -> Applied:
    """What was written: as the connector says (a comment found up to date was not
    written), else as planned. The report and the audit trail of both the sync and the
    webhook path must tell the same story, and that story is what the system saw."""
    if applied is not None:
        return applied
    return Applied(
        sum(len(op.values) for op in ops if isinstance(op, SetFields)),
        sum(1 for op in ops if isinstance(op, UpsertSummary)),
    )


def fetch_many(connector: LiveConnector, keys: Sequence[str]) -> Iterator[WorkItem]:
    """The items among ``keys`` that still exist and are in scope, read in batches where the
    connector can (``fetch_many``), else one by one."""
    batched: Callable[[Sequence[str]], Iterator[WorkItem]] | None = getattr(
        connector, "fetch_many", None
    )
    if batched is not None:
        yield from batched(keys)
        return
    for key in keys:
        try:
            yield connector.fetch(key)
        except ItemNotFoundError:
            continue


def _partly_written(exc: BaseException) -> Applied | None:
    applied = getattr(exc, "applied", None)
    return applied if isinstance(applied, Applied) and applied else None


def _load_overlap(store: Store, source: str) -> dict[str, str]:
    text = store.get_memo(source, OVERLAP_MEMO)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def sync_source(
    source: str,
    connector: LiveConnector,
    rule_set: RuleSet,
    store: Store,
    now: datetime,
    *,
    full: bool = False,
    dry_run: bool = False,
    overlap: timedelta = timedelta(minutes=5),
    concurrency: int = 8,
    on_item: Callable[[WorkItem], None] | None = None,
    engine: Engine | None = None,
    kpis: KpiEngine | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    claim: timedelta = CLAIM,
    holder: str | None = None,
    lease: timedelta = ITEM_LEASE,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    requeue: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> SyncReport:
    """Sync one source once. Raises only when the pull itself fails (nothing is lost: the
    cursor stays where it was); per-item problems are in the report.

    Nothing is lost between syncs either: an item that fails is kept in the store's pending
    rows with its error and retried by every later sync (and the worker's sweeper) until it
    is written or, after ``backoff``'s attempts, visibly given up. A sync takes every
    pending row of its source, whatever its backoff — it is the natural time to try again
    — and fetches those its pull did not meet.

    ``engine`` and ``kpis`` let a long-running process pass the engines it keeps for
    ``rule_set``, so their warm caches (generated matchers, calendars) outlive one sync;
    they must have been built from ``rule_set``. A one-off sync builds its own.

    ``holder`` names this sync in the item leases it takes (one is made when omitted), for
    ``lease``, on ``clock``'s time (the worker's, so that its jobs and its syncs agree).
    ``requeue`` (the worker's queue) takes an item found pending when the sync lets go of
    it: a job that found the sync holding it left it so.

    ``stop``, once set, ends the sync between two items: no new item is taken, the writes
    under way finish, and the cursor stays where it was (``report.interrupted``). Why not
    KeyboardInterrupt: raised in the middle of a lock's ``__enter__`` it leaves the lock
    held, and the writer threads then wait for it forever (a sync hung on Ctrl-C).
    """
    if engine is None:
        engine = Engine(rule_set)
    if kpis is None:
        kpis = KpiEngine(rule_set)
    connector.prepare(rule_set)
    cursor = None if full else store.get_cursor(source)
    since = cursor - overlap if cursor is not None else None
    report = SyncReport(source, dry_run, since=since, cursor=cursor)
    already = {} if full else _load_overlap(store, source)
    newest = cursor
    handled: dict[str, str] = {}
    updated_at: dict[str, datetime] = {}
    # A connector may name a finer version than ``updated`` (ServiceNow's timestamps have
    # one-second resolution; sys_mod_count tells two edits within a second apart).
    version: Callable[[WorkItem], str] | None = getattr(connector, "version_of", None)
    # And a cursor other than ``updated``: ServiceNow's ``updated`` leaves bridge's own
    # writes out (for the KPIs), while the next pull must start after them.
    cursor_of: Callable[[WorkItem], datetime | None] = getattr(
        connector, "cursor_of", lambda item: item.updated
    )
    holder = holder or holder_id()
    # Read before the pull: an item lease released after this was held while we pulled.
    ticket = 0 if dry_run else store.lease_ticket()
    lock = threading.Lock()
    in_flight: list[Future[None]] = []
    limit = threading.BoundedSemaphore(max(1, concurrency) * 2)
    retry: dict[str, Pending] = (
        {}
        if dry_run
        else {
            p.key: p
            for p in store.claim_pending(
                now + timedelta(days=36_500), now + claim, source=source, limit=100_000
            )
        }
    )

    # Rows this sync added for items it took over from another job (see ``take``).
    mine: dict[str, int] = {}
    # Items changed while this sync held them (a webhook job found the lease taken and left
    # the item pending), when there is no queue to hand them to: the sync takes them again.
    again: dict[str, int] = {}

    def succeeded(key: str) -> None:
        row = retry.get(key)
        if row is not None:
            store.finish_pending(source, key, row.seq)
        with lock:
            seq = mine.pop(key, None)
        if seq is not None:
            store.finish_pending(source, key, seq)

    def take(key: str) -> Lease | None:
        """The item's lease, or None when another job has it. That job must look at the
        item once more: its pending row is bumped, then the lease tried again, so that a
        holder letting go in between (and so missing the bump) hands the item to us."""
        name = item_lease(source, key)
        held = take_lease(store, name, holder, clock(), lease)
        if held.acquired:
            return held
        store.add_pending(source, key, "coalesced", clock(), due=held.expires)
        held = take_lease(store, name, holder, clock(), lease)
        if not held.acquired:
            return None
        row = store.get_pending(source, key)
        if row is not None:
            with lock:
                mine[key] = row.seq
        return held

    def record_failure(key: str, exc: BaseException) -> None:
        if isinstance(exc, WriteDeferredError):
            # Not a failure, no attempt counted: the item waits, pending, until it may go.
            with lock:
                report.deferred += 1
            if not dry_run:
                store.add_pending(source, key, "deferred", now, due=exc.retry_at)
            return
        skipped = isinstance(exc, ItemNotFoundError)
        message = (
            str(exc)
            if isinstance(exc, BridgeError)
            else (f"internal error: {type(exc).__name__}: {exc}")
        )
        partly = _partly_written(exc)
        with lock:
            (report.skipped if skipped else report.failed).append((key, message))
            if partly is not None:
                report.field_writes += partly.fields
                report.comment_writes += partly.summaries
        if partly is not None:
            message += f" (written before it failed: {partly.detail})"
        store.audit(source, key, "skipped" if skipped else "failed", message, now)
        if dry_run:
            return
        if skipped:  # gone from the system or out of scope: nothing left to write
            store.finish_pending(source, key, None)
            forget(store, source, key)
            return
        row = store.fail_pending(source, key, message, now, backoff)
        if row.given_up:
            give_up(store, source, row, now)
        if not isinstance(exc, BridgeError):
            log.error("%s: %s failed unexpectedly", source, key, exc_info=exc)

    def write(item: WorkItem, found: Evaluation, stale: bool) -> None:
        name = item_lease(source, item.key)
        done = False
        try:
            if stale:
                with lock:
                    report.refetched += 1
                item = connector.fetch(item.key)
                found = evaluate(item, engine, kpis, connector, now)
            ops = found.ops
            written = tally(ops, connector.apply(item, ops)) if ops else Applied(0, 0)
            settle(store, source, item.key, found, now)
        except Exception as exc:
            record_failure(item.key, exc)
        else:
            with lock:
                if written:
                    report.items_written += 1
                    report.field_writes += written.fields
                    report.comment_writes += written.summaries
                else:
                    report.unchanged += 1
            if written:
                store.audit(source, item.key, "written", written.detail, now)
            succeeded(item.key)
            done = True
        finally:
            store.release_lease(name, holder)
            limit.release()
        if done:
            late = store.get_pending(source, item.key)
            if late is not None and late.attempts == 0 and not late.given_up:
                if requeue is not None:
                    requeue(item.key)
                else:  # no queue (a sync from the command line): looked at again below
                    with lock:
                        again[item.key] = late.seq

    def stopping() -> bool:
        """Asked to stop: no further item is taken (see ``stop``)."""
        report.interrupted = report.interrupted or (stop is not None and stop.is_set())
        return report.interrupted

    def evaluate_and_write(
        item: WorkItem, in_flight: list[Future[None]], pool: ThreadPoolExecutor
    ) -> list[Future[None]]:
        try:
            found = evaluate(item, engine, kpis, connector, now)
        except Exception as exc:
            record_failure(item.key, exc)
            return in_flight
        ops = found.ops
        if dry_run:
            if ops:
                report.planned[item.key] = ops
            else:
                report.unchanged += 1
            return in_flight
        if not ops:
            report.unchanged += 1
            settle(store, source, item.key, found, now)
            succeeded(item.key)
            return in_flight
        held = take(item.key)
        if held is None:  # another job has it, fetches it fresh, and looks once more
            with lock:
                report.coalesced += 1
            return in_flight
        limit.acquire()
        in_flight.append(pool.submit(write, item, found, held.held_since(ticket)))
        if len(in_flight) > 4 * concurrency:
            # Finished writes are dropped; one that raised past its handler is kept to re-raise.
            in_flight = [f for f in in_flight if not f.done() or f.exception() is not None]
        return in_flight

    with ThreadPoolExecutor(
        max_workers=max(1, concurrency), thread_name_prefix=f"bridge-{source}"
    ) as pool:
        for item in connector.pull(since=since):
            if stopping():
                break
            if item.key in handled:
                # Seen already in this sync: paging by `updated` can meet an item again after
                # bridge's own write moved it. Its newer `updated` does not move the cursor, so
                # a person's change in the meantime is still picked up by the next sync.
                report.duplicates += 1
                continue
            report.pulled += 1
            stamp = (version(item) if version is not None else iso(item.updated)) or ""
            if already.get(item.key) == stamp and stamp:
                report.duplicates += 1
                continue
            moment = cursor_of(item)
            if moment is not None and (newest is None or moment > newest):
                newest = moment
            handled[item.key] = stamp
            if moment is not None:
                updated_at[item.key] = moment
            if on_item is not None:
                on_item(item)
            in_flight = evaluate_and_write(item, in_flight, pool)
        # Pending items the pull did not meet (their change is older than the cursor, or a
        # write failed in an earlier sync): fetched one by one.
        for key in sorted(retry.keys() - handled.keys()):
            if stopping():
                break
            handled[key] = ""
            report.retried += 1
            try:
                item = connector.fetch(key)
            except Exception as exc:
                record_failure(key, exc)
                continue
            in_flight = evaluate_and_write(item, in_flight, pool)
    for future in in_flight:
        future.result()
    for _ in range(LATE_ROUNDS):
        if not again or report.interrupted:
            break
        late_rows, again = dict(again), {}
        for key, seq in sorted(late_rows.items()):
            if take(key) is None:  # another job has it now, and the row with it
                continue
            with lock:
                mine.setdefault(key, seq)
            try:
                item = connector.fetch(key)
                found = evaluate(item, engine, kpis, connector, now)
            except Exception as exc:
                store.release_lease(item_lease(source, key), holder)
                record_failure(key, exc)
                continue
            limit.acquire()
            write(item, found, False)
    for key in again:  # still changing: the sweeper's next round takes it
        store.add_pending(source, key, "changed during the sync", clock(), due=clock())
    # Records the connector could not map were skipped during this pull; report them too
    # (read only now: a connector empties its list when the pull starts).
    for key, reason in getattr(connector, "skipped", ()):
        report.skipped.append((key, reason))
        store.audit(source, key, "skipped", reason, now)
    if newest is not None and not dry_run and not report.interrupted:
        store.set_cursor(source, newest)
        window = newest - overlap
        keep = {k: v for k, v in handled.items() if v and updated_at.get(k, newest) >= window}
        store.set_memo(source, OVERLAP_MEMO, json.dumps(keep, sort_keys=True))
    report.cursor = cursor if report.interrupted else newest
    if report.failed:
        log.warning("%s: %d item(s) failed; see the audit log", source, len(report.failed))
    return report


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """What processing one item (a webhook's item) did."""

    key: str
    action: str  # "written", "unchanged", "skipped"
    detail: str = ""


def process_item(
    source: str,
    connector: LiveConnector,
    engine: Engine,
    kpis: KpiEngine,
    store: Store,
    key: str,
    now: datetime,
) -> ItemOutcome:
    """Fetch one item fresh, evaluate it and write what changed (the webhook path).

    A vanished item is recorded and skipped; other connector errors propagate so the job
    runner can retry the task.
    """
    try:
        item = connector.fetch(key)
    except ItemNotFoundError as exc:
        store.audit(source, key, "skipped", str(exc), now)
        forget(store, source, key)  # gone: nothing left to change by the clock
        return ItemOutcome(key, "skipped", str(exc))
    found = evaluate(item, engine, kpis, connector, now)
    ops = found.ops
    if not ops:
        settle(store, source, item.key, found, now)
        return ItemOutcome(item.key, "unchanged")
    try:
        written = tally(ops, connector.apply(item, ops))
    except BridgeError as exc:
        partly = _partly_written(exc)
        if partly is not None:
            store.audit(source, item.key, "written", f"{partly.detail}, then: {exc}", now)
        raise
    settle(store, source, item.key, found, now)
    if not written:
        return ItemOutcome(item.key, "unchanged")
    store.audit(source, item.key, "written", written.detail, now)
    return ItemOutcome(item.key, "written", written.detail)
