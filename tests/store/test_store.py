"""Both stores pass the same behaviour tests; PostgreSQL runs against the real server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.store import Store, open_store
from bridge.store.records import Backoff

POSTGRES_URL = os.environ.get(
    "BRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
CLAIM_TIMERS = timedelta(minutes=5)


def _postgres() -> Store:
    try:
        import psycopg

        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except Exception as exc:  # pragma: no cover - reported as a skip with the reason
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    return open_store(POSTGRES_URL)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path: Path, monkeypatch) -> Iterator[Store]:
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    made = open_store(f"sqlite://{tmp_path / 'b.db'}") if request.param == "sqlite" else _postgres()
    yield made
    made.close()


@pytest.fixture
def source() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"  # keeps runs against a shared database apart


def test_cursor_round_trip(store: Store, source: str) -> None:
    assert store.get_cursor(source) is None
    store.set_cursor(source, T0)
    store.set_cursor(source, T0 + timedelta(minutes=5))
    assert store.get_cursor(source) == T0 + timedelta(minutes=5)


def test_deliveries_are_seen_once(store: Store, source: str) -> None:
    assert store.first_delivery(source, "abc", T0) is True
    assert store.first_delivery(source, "abc", T0 + timedelta(seconds=30)) is False
    assert store.first_delivery(source, "def", T0) is True
    assert store.forget_deliveries(T0 + timedelta(days=1)) >= 2
    assert store.first_delivery(source, "abc", T0 + timedelta(days=2)) is True


def test_memos(store: Store, source: str) -> None:
    assert store.get_memo(source, "INC1") is None
    store.set_memo(source, "INC1", "digest-1")
    store.set_memo(source, "INC1", "digest-2")
    assert store.get_memo(source, "INC1") == "digest-2"


def test_audit_log_newest_first(store: Store, source: str) -> None:
    store.audit(source, "OPS-1", "write", "fields: SPI", T0)
    store.audit(source, "OPS-2", "skip", "404", T0 + timedelta(seconds=1))
    log = store.audit_log(source)
    assert [(item, action) for _, _, item, action, _ in log] == [
        ("OPS-2", "skip"),
        ("OPS-1", "write"),
    ]
    assert log[0][0] == T0 + timedelta(seconds=1)


def test_environment_url_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BRIDGE_DATABASE_URL", f"sqlite://{tmp_path / 'env.db'}")
    open_store("sqlite:///nonexistent/never.db").close()
    assert (tmp_path / "env.db").exists()


def test_unknown_url_is_a_config_error(monkeypatch) -> None:
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="unknown store URL 'mysql'"):
        open_store("mysql://x")


# -- pending work, leases, pruning ----------------------------------------------------------

BACKOFF = Backoff(max_attempts=3, first=timedelta(minutes=1), cap=timedelta(minutes=10))


def test_a_delivery_and_its_pending_row_are_recorded_together(store: Store, source: str) -> None:
    assert store.add_pending(source, "OPS-1", "webhook", T0, delivery_id="d1") is True
    assert store.add_pending(source, "OPS-1", "webhook", T0, delivery_id="d1") is False
    row = store.get_pending(source, "OPS-1")
    assert row is not None
    assert (row.reason, row.attempts, row.seq, row.given_up) == ("webhook", 0, 1, False)
    assert row.next_try == T0
    # The job could not be queued: the delivery is unseen again, the row stays.
    store.forget_delivery(source, "d1")
    assert store.add_pending(source, "OPS-1", "webhook", T0, delivery_id="d1") is True
    assert store.get_pending(source, "OPS-1").seq == 2  # type: ignore[union-attr]


def test_claims_move_due_rows_out_of_reach_until_the_lease_ends(store: Store, source: str) -> None:
    store.add_pending(source, "A", "webhook", T0)
    store.add_pending(source, "B", "webhook", T0, due=T0 + timedelta(minutes=5))
    until = T0 + timedelta(minutes=10)

    claimed = store.claim_pending(T0, until, source=source)

    assert [p.key for p in claimed] == ["A"]
    assert store.claim_pending(T0 + timedelta(minutes=1), until, source=source) == []
    # A worker that died holding A: it is due again when the claim ends, with B.
    again = store.claim_pending(until, until + timedelta(minutes=10), source=source)
    assert sorted(p.key for p in again) == ["A", "B"]


def test_a_newer_change_keeps_the_row_a_finished_job_would_drop(store: Store, source: str) -> None:
    store.add_pending(source, "A", "webhook", T0)
    seq = store.get_pending(source, "A").seq  # type: ignore[union-attr]
    store.add_pending(source, "A", "webhook", T0 + timedelta(seconds=1))  # while it ran

    assert store.finish_pending(source, "A", seq) is False
    assert store.get_pending(source, "A") is not None
    assert store.finish_pending(source, "A", seq + 1) is True
    assert store.get_pending(source, "A") is None


def test_failures_back_off_then_give_up_and_a_new_change_revives(store: Store, source: str) -> None:
    first = store.fail_pending(source, "A", "HTTP 503", T0, BACKOFF)  # no row yet: added
    assert (first.attempts, first.given_up, first.last_error) == (1, False, "HTTP 503")
    assert first.next_try == T0 + timedelta(minutes=1)
    second = store.fail_pending(source, "A", "HTTP 503", T0, BACKOFF)
    assert second.next_try == T0 + timedelta(minutes=2)
    third = store.fail_pending(source, "A", "HTTP 400: refused", T0, BACKOFF)
    assert (third.attempts, third.given_up) == (3, True)
    assert store.claim_pending(T0 + timedelta(days=1), T0 + timedelta(days=2), source=source) == []
    assert [p.key for p in store.list_pending(source, given_up=True)] == ["A"]
    assert store.count_pending().get((source, True)) == 1

    store.add_pending(source, "A", "webhook", T0 + timedelta(hours=1))

    revived = store.get_pending(source, "A")
    assert revived is not None
    assert (revived.attempts, revived.given_up) == (0, False)
    assert revived.next_try == T0 + timedelta(hours=1)


def test_leases_expire_and_say_who_holds_them(store: Store, source: str) -> None:
    name = f"{source}:sync"
    ttl = timedelta(minutes=30)
    mine = store.acquire_lease(name, "worker-1", T0, ttl)
    assert mine.acquired
    theirs = store.acquire_lease(name, "worker-2", T0 + timedelta(minutes=5), ttl)
    assert (theirs.acquired, theirs.holder, theirs.since) == (False, "worker-1", T0)
    renewed = store.acquire_lease(name, "worker-1", T0 + timedelta(minutes=20), ttl)
    assert (renewed.acquired, renewed.since) == (True, T0)
    # worker-1 was killed: its lease runs out and worker-2 takes over.
    later = T0 + timedelta(minutes=51)
    taken = store.acquire_lease(name, "worker-2", later, ttl)
    assert (taken.acquired, taken.expired_holder) == (True, "worker-1")
    assert store.acquire_lease(name, "worker-2", later, ttl).expired_holder is None
    store.release_lease(name, "worker-1")  # not the holder: no effect
    assert not store.acquire_lease(name, "worker-3", later, ttl).acquired
    store.release_lease(name, "worker-2")
    assert store.acquire_lease(name, "worker-3", later, ttl).acquired


def test_a_lease_released_after_a_ticket_was_read_says_it_was_held_since(
    store: Store, source: str
) -> None:
    """What a sync relies on: an item lease released by another job after the sync read
    the ticket (before its pull) tells it its copy of the item may be stale."""
    ttl = timedelta(minutes=5)
    held, idle, killed = (f"item:{source}:{k}" for k in ("HELD", "IDLE", "KILLED"))
    for name in (held, idle):
        store.acquire_lease(name, "job-1", T0, ttl)
    store.release_lease(idle, "job-1")
    before_pull = store.lease_ticket()
    store.release_lease(held, "job-1")  # the job wrote the item while the sync pulled
    store.release_lease(held, "job-1")  # released already: no new ticket
    after = store.lease_ticket()
    assert after > before_pull
    store.acquire_lease(killed, "job-2", T0, ttl)  # killed holding it: never released

    fresh = store.acquire_lease(idle, "sync", T0, ttl)
    stale = store.acquire_lease(held, "sync", T0, ttl)
    taken = store.acquire_lease(killed, "sync", T0 + ttl, ttl)

    assert fresh.acquired
    assert not fresh.held_since(before_pull)
    assert stale.acquired
    assert stale.held_since(before_pull)
    assert stale.released == after
    assert taken.acquired
    assert taken.held_since(after)
    never = store.acquire_lease(f"item:{source}:NEW", "sync", T0, ttl)
    assert never.released is None
    assert not never.held_since(0)


def test_prune_drops_old_deliveries_audit_and_given_up_rows(store: Store, source: str) -> None:
    store.first_delivery(source, "old", T0)
    store.first_delivery(source, "new", T0 + timedelta(days=10))
    store.audit(source, "A", "written", "1 field(s)", T0)
    store.fail_pending(source, "gone", "refused", T0, Backoff(max_attempts=1))
    store.fail_pending(source, "waiting", "HTTP 503", T0, BACKOFF)
    cut = T0 + timedelta(days=1)

    counts = store.prune(deliveries=cut, audit=cut, given_up=cut)

    assert counts["deliveries"] >= 1
    assert counts["audit"] >= 1
    assert counts["given_up"] >= 1
    assert store.first_delivery(source, "old", cut) is True
    assert store.first_delivery(source, "new", cut) is False
    assert store.get_pending(source, "gone") is None
    assert store.get_pending(source, "waiting") is not None


def test_timers_are_replaced_claimed_when_due_and_dropped(store: Store, source: str) -> None:
    store.set_timer(source, "BREACH", T0 + timedelta(minutes=3))
    store.set_timer(source, "LATER", T0 + timedelta(hours=2))
    store.set_timer(source, "DONE", T0 + timedelta(minutes=1))
    store.set_timer(source, "DONE", None)  # resolved: nothing left to change by the clock
    store.set_timer(source, "LATER", T0 + timedelta(days=1))  # replaced by a re-evaluation

    assert store.claim_timers(T0, T0 + CLAIM_TIMERS) == []
    at = T0 + timedelta(minutes=4)
    due = [t for t in store.claim_timers(at, at + CLAIM_TIMERS) if t.source == source]
    assert [(t.key, t.due) for t in due] == [("BREACH", T0 + timedelta(minutes=3))]
    # Claimed: out of another tick's reach until the claim runs out, then due again.
    assert [t for t in store.claim_timers(at, at + CLAIM_TIMERS) if t.source == source] == []
    again = at + CLAIM_TIMERS
    assert [t.key for t in store.claim_timers(again, again) if t.source == source] == ["BREACH"]
    assert store.count_timers()[source] == 2
    assert [t.key for t in store.next_timers(100) if t.source == source] == ["BREACH", "LATER"]


def test_evaluations_keep_the_latest_per_item_and_read_in_batches(
    store: Store, source: str
) -> None:
    for n in range(7):
        store.put_evaluation(source, f"K-{n}", f'{{"n": {n}}}', T0)
    store.put_evaluation(source, "K-3", '{"n": 33}', T0 + timedelta(minutes=5))  # re-evaluated
    store.drop_evaluation(source, "K-5")  # gone from the system
    other = f"{source}-other"
    store.put_evaluation(other, "K-0", '{"n": 0}', T0)

    rows = list(store.evaluations(source, batch=2))  # several pages, none twice
    assert [key for _, key, _, _ in rows] == ["K-0", "K-1", "K-2", "K-3", "K-4", "K-6"]
    assert rows[3][2:] == (T0 + timedelta(minutes=5), '{"n": 33}')
    assert {s for s, _, _, _ in rows} == {source}
    everyone = [(s, k) for s, k, _, _ in store.evaluations(batch=3) if s in (source, other)]
    assert len(everyone) == 7
    assert store.count_evaluations()[source] == 6
