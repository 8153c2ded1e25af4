"""SQLite store: the default for one machine; WAL mode so readers never block the writer."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.errors import ConfigError
from bridge.store.records import Backoff, Lease, Pending, Timer

__all__ = ["SqliteStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, cursor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    source TEXT NOT NULL, delivery_id TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (source, delivery_id));
CREATE INDEX IF NOT EXISTS deliveries_at ON deliveries (at);
CREATE TABLE IF NOT EXISTS memos (
    source TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (source, key));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, source TEXT NOT NULL,
    item TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE TABLE IF NOT EXISTS pending (
    source TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_try TEXT NOT NULL, last_error TEXT,
    given_up INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 1, since TEXT NOT NULL,
    failed_at TEXT, PRIMARY KEY (source, key));
CREATE INDEX IF NOT EXISTS pending_due ON pending (given_up, next_try);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, since TEXT NOT NULL, expires TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS timers (
    source TEXT NOT NULL, key TEXT NOT NULL, due TEXT NOT NULL, next_try TEXT NOT NULL,
    PRIMARY KEY (source, key));
CREATE INDEX IF NOT EXISTS timers_next ON timers (next_try);
CREATE TABLE IF NOT EXISTS lease_releases (
    ticket INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    source TEXT NOT NULL, key TEXT NOT NULL, at TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (source, key));
"""

_PENDING = "source, key, reason, attempts, next_try, last_error, given_up, seq, since"
_SELECT_ONE = (
    "SELECT source, key, reason, attempts, next_try, last_error, given_up, seq, since"
    " FROM pending WHERE source = ? AND key = ?"
)


def _stamp(at: datetime) -> str:
    """A fixed-width UTC text, so that instants compare as text in SQL."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _timer(row: Sequence[Any]) -> Timer:
    return Timer(str(row[0]), str(row[1]), datetime.fromisoformat(str(row[2])))


def _pending(row: Sequence[Any]) -> Pending:
    return Pending(
        source=str(row[0]),
        key=str(row[1]),
        reason=str(row[2]),
        attempts=int(row[3]),
        next_try=datetime.fromisoformat(str(row[4])),
        last_error=None if row[5] is None else str(row[5]),
        given_up=bool(row[6]),
        seq=int(row[7]),
        since=datetime.fromisoformat(str(row[8])),
    )


def _text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


class SqliteStore:
    """Thread-safe: one connection guarded by a lock (writes are tiny)."""

    def __init__(self, path: str) -> None:
        if path not in ("", ":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                path or ":memory:", check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the SQLite store {path!r}: {exc}") from None
        self._lock = threading.Lock()

    def _one(self, sql: str, *args: object) -> tuple[object, ...] | None:
        with self._lock:
            row: tuple[object, ...] | None = self._db.execute(sql, args).fetchone()
            return row

    def _run(self, sql: str, *args: object) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def get_cursor(self, source: str) -> datetime | None:
        row = self._one("SELECT cursor FROM cursors WHERE source = ?", source)
        return datetime.fromisoformat(str(row[0])) if row else None

    def set_cursor(self, source: str, cursor: datetime) -> None:
        self._run(
            "INSERT INTO cursors (source, cursor) VALUES (?, ?) "
            "ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor",
            source,
            _text(cursor),
        )

    def first_delivery(self, source: str, delivery_id: str, at: datetime) -> bool:
        return (
            self._run(
                "INSERT OR IGNORE INTO deliveries (source, delivery_id, at) VALUES (?, ?, ?)",
                source,
                delivery_id,
                _text(at),
            )
            == 1
        )

    def forget_deliveries(self, before: datetime) -> int:
        return self._run("DELETE FROM deliveries WHERE at < ?", _text(before))

    def get_memo(self, source: str, key: str) -> str | None:
        row = self._one("SELECT value FROM memos WHERE source = ? AND key = ?", source, key)
        return str(row[0]) if row else None

    def set_memo(self, source: str, key: str, value: str) -> None:
        self._run(
            "INSERT INTO memos (source, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (source, key) DO UPDATE SET value = excluded.value",
            source,
            key,
            value,
        )

    def audit(self, source: str, item: str, action: str, detail: str, at: datetime) -> None:
        self._run(
            "INSERT INTO audit (at, source, item, action, detail) VALUES (?, ?, ?, ?, ?)",
            _text(at),
            source,
            item,
            action,
            detail,
        )

    def audit_log(
        self, source: str | None = None, limit: int = 100
    ) -> list[tuple[datetime, str, str, str, str]]:
        sql = "SELECT at, source, item, action, detail FROM audit"
        args: tuple[object, ...] = ()
        if source is not None:
            sql += " WHERE source = ?"
            args = (source,)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [(datetime.fromisoformat(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (other processes on the file wait).

        Never left open, wherever an exception lands: Ctrl-C raises KeyboardInterrupt in the
        main thread on the instruction after the C call it arrived in, ``BEGIN`` included.
        A transaction left open would swallow every later autocommitted write of the other
        threads, to be rolled back at exit (the sync's work-note memos were lost that way).
        """
        with self._lock:
            committed = False
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
                committed = True
            finally:
                if not committed and self._db.in_transaction:
                    self._db.execute("ROLLBACK")

    # -- pending work --------------------------------------------------------------------

    def add_pending(
        self,
        source: str,
        key: str,
        reason: str,
        at: datetime,
        *,
        delivery_id: str | None = None,
        due: datetime | None = None,
    ) -> bool:
        when = _stamp(due or at)
        with self._transaction() as db:
            if delivery_id is not None:
                seen = db.execute(
                    "INSERT OR IGNORE INTO deliveries (source, delivery_id, at) VALUES (?, ?, ?)",
                    (source, delivery_id, _text(at)),
                )
                if seen.rowcount != 1:
                    return False
            db.execute(
                "INSERT INTO pending (source, key, reason, next_try, since) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (source, key) DO UPDATE SET reason = excluded.reason,"
                " seq = pending.seq + 1,"
                " attempts = CASE WHEN pending.given_up THEN 0 ELSE pending.attempts END,"
                " next_try = CASE WHEN pending.given_up OR excluded.next_try < pending.next_try"
                " THEN excluded.next_try ELSE pending.next_try END,"
                " given_up = 0",
                (source, key, reason, when, _stamp(at)),
            )
        return True

    def forget_delivery(self, source: str, delivery_id: str) -> None:
        self._run(
            "DELETE FROM deliveries WHERE source = ? AND delivery_id = ?", source, delivery_id
        )

    def get_pending(self, source: str, key: str) -> Pending | None:
        row = self._one(_SELECT_ONE, source, key)
        return _pending(row) if row else None

    def claim_pending(
        self, now: datetime, until: datetime, *, limit: int = 100, source: str | None = None
    ) -> list[Pending]:
        where = "given_up = 0 AND next_try <= ?" + (" AND source = ?" if source else "")
        args: tuple[object, ...] = (_stamp(now), source) if source else (_stamp(now),)
        with self._transaction() as db:
            sql = (
                "UPDATE pending SET next_try = ? WHERE rowid IN (SELECT rowid FROM pending"  # noqa: S608 - constants only
                " WHERE " + where + " ORDER BY next_try LIMIT ?) RETURNING " + _PENDING
            )
            rows = db.execute(
                sql,
                (_stamp(until), *args, limit),
            ).fetchall()
        return sorted((_pending(r) for r in rows), key=lambda p: (p.since, p.key))

    def finish_pending(self, source: str, key: str, seq: int | None) -> bool:
        return (
            self._run(
                "DELETE FROM pending WHERE source = ? AND key = ? AND (? IS NULL OR seq = ?)",
                source,
                key,
                seq,
                seq,
            )
            == 1
        )

    def fail_pending(
        self,
        source: str,
        key: str,
        error: str,
        at: datetime,
        backoff: Backoff,
        *,
        reason: str = "failed",
    ) -> Pending:
        with self._transaction() as db:
            row = db.execute(
                "SELECT attempts FROM pending WHERE source = ? AND key = ?", (source, key)
            ).fetchone()
            attempts = (int(row[0]) if row else 0) + 1
            retry = backoff.next_try(attempts, at)
            db.execute(
                "INSERT INTO pending (source, key, reason, attempts, next_try, last_error,"
                " given_up, since, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (source, key) DO UPDATE SET attempts = excluded.attempts,"
                " next_try = excluded.next_try, last_error = excluded.last_error,"
                " given_up = excluded.given_up, failed_at = excluded.failed_at",
                (
                    source,
                    key,
                    reason,
                    attempts,
                    _stamp(retry or at),
                    error,
                    int(retry is None),
                    _stamp(at),
                    _stamp(at),
                ),
            )
            done = db.execute(_SELECT_ONE, (source, key)).fetchone()
        return _pending(done)

    def list_pending(
        self, source: str | None = None, *, given_up: bool | None = None, limit: int = 100
    ) -> list[Pending]:
        where: list[str] = []
        args: list[object] = []
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if given_up is not None:
            where.append("given_up = ?")
            args.append(int(given_up))
        sql = "SELECT " + _PENDING + " FROM pending"  # noqa: S608 - constants only
        sql += (" WHERE " + " AND ".join(where)) if where else ""
        sql += " ORDER BY COALESCE(failed_at, since) DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [_pending(r) for r in rows]

    def count_pending(self) -> dict[tuple[str, bool], int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT source, given_up, COUNT(*) FROM pending GROUP BY source, given_up"
            ).fetchall()
        return {(str(r[0]), bool(r[1])): int(r[2]) for r in rows}

    # -- leases ----------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> Lease:
        with self._transaction() as db:
            row = db.execute(
                "SELECT holder, since, expires FROM leases WHERE name = ?", (name,)
            ).fetchone()
            released = db.execute(
                "SELECT ticket FROM lease_releases WHERE name = ?", (name,)
            ).fetchone()
            if row and row[0] != holder and str(row[2]) > _stamp(now):
                return Lease(
                    name,
                    str(row[0]),
                    datetime.fromisoformat(str(row[1])),
                    datetime.fromisoformat(str(row[2])),
                    acquired=False,
                )
            since = datetime.fromisoformat(str(row[1])) if row and row[0] == holder else now
            expires = now + ttl
            db.execute(
                "INSERT INTO leases (name, holder, since, expires) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " since = excluded.since, expires = excluded.expires",
                (name, holder, _stamp(since), _stamp(expires)),
            )
        expired = str(row[0]) if row and row[0] != holder else None
        return Lease(
            name,
            holder,
            since,
            expires,
            acquired=True,
            expired_holder=expired,
            released=int(released[0]) if released else None,
        )

    def release_lease(self, name: str, holder: str) -> None:
        with self._transaction() as db:
            gone = db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
            if gone.rowcount == 1:
                # REPLACE deletes the old row; AUTOINCREMENT never hands out a ticket twice.
                db.execute(
                    "INSERT OR REPLACE INTO lease_releases (name, at) VALUES (?, ?)",
                    (name, _stamp(datetime.now(UTC))),
                )

    def lease_ticket(self) -> int:
        row = self._one("SELECT seq FROM sqlite_sequence WHERE name = 'lease_releases'")
        return int(str(row[0])) if row else 0

    # -- timers ----------------------------------------------------------------------------

    def set_timer(self, source: str, key: str, due: datetime | None) -> None:
        if due is None:
            self._run("DELETE FROM timers WHERE source = ? AND key = ?", source, key)
            return
        self._run(
            "INSERT INTO timers (source, key, due, next_try) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (source, key) DO UPDATE SET due = excluded.due,"
            " next_try = excluded.next_try",
            source,
            key,
            _stamp(due),
            _stamp(due),
        )

    def claim_timers(self, now: datetime, until: datetime, *, limit: int = 1000) -> list[Timer]:
        with self._transaction() as db:
            rows = db.execute(
                "UPDATE timers SET next_try = ? WHERE rowid IN (SELECT rowid FROM timers"
                " WHERE next_try <= ? ORDER BY next_try LIMIT ?) RETURNING source, key, due",
                (_stamp(until), _stamp(now), limit),
            ).fetchall()
        return sorted((_timer(r) for r in rows), key=lambda t: (t.due, t.source, t.key))

    def next_timers(self, limit: int = 10) -> list[Timer]:
        with self._lock:
            rows = self._db.execute(
                "SELECT source, key, due FROM timers ORDER BY due LIMIT ?", (limit,)
            ).fetchall()
        return [_timer(r) for r in rows]

    def count_timers(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT source, COUNT(*) FROM timers GROUP BY source")
            return {str(r[0]): int(r[1]) for r in rows.fetchall()}

    # -- latest evaluations ----------------------------------------------------------------

    def put_evaluation(self, source: str, key: str, record: str, at: datetime) -> None:
        self._run(
            "INSERT INTO evaluations (source, key, at, record) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (source, key) DO UPDATE SET at = excluded.at, record = excluded.record",
            source,
            key,
            _stamp(at),
            record,
        )

    def drop_evaluation(self, source: str, key: str) -> None:
        self._run("DELETE FROM evaluations WHERE source = ? AND key = ?", source, key)

    def evaluations(
        self, source: str | None = None, *, batch: int = 1000
    ) -> Iterator[tuple[str, str, datetime, str]]:
        after = ("", "")
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT source, key, at, record FROM evaluations"
                    " WHERE (source, key) > (?, ?) AND (? IS NULL OR source = ?)"
                    " ORDER BY source, key LIMIT ?",
                    (*after, source, source, batch),
                ).fetchall()
            for row in rows:
                yield str(row[0]), str(row[1]), datetime.fromisoformat(str(row[2])), str(row[3])
            if len(rows) < batch:
                return
            after = (str(rows[-1][0]), str(rows[-1][1]))

    def count_evaluations(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT source, COUNT(*) FROM evaluations GROUP BY source")
            return {str(r[0]): int(r[1]) for r in rows.fetchall()}

    def prune(self, *, deliveries: datetime, audit: datetime, given_up: datetime) -> dict[str, int]:
        return {
            "deliveries": self._run("DELETE FROM deliveries WHERE at < ?", _text(deliveries)),
            "audit": self._run("DELETE FROM audit WHERE at < ?", _text(audit)),
            "releases": self._run("DELETE FROM lease_releases WHERE at < ?", _stamp(deliveries)),
            "given_up": self._run(
                "DELETE FROM pending WHERE given_up = 1 AND failed_at < ?", _stamp(given_up)
            ),
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
