"""PostgreSQL store: for several bridge nodes sharing cursors, deliveries and memos."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from bridge.errors import ConfigError
from bridge.store.records import Backoff, Lease, Pending, Timer

__all__ = ["PostgresStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS bridge_cursors (source TEXT PRIMARY KEY, cursor TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS bridge_deliveries (
    source TEXT NOT NULL, delivery_id TEXT NOT NULL, at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, delivery_id));
CREATE INDEX IF NOT EXISTS bridge_deliveries_at ON bridge_deliveries (at);
CREATE TABLE IF NOT EXISTS bridge_memos (
    source TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (source, key));
CREATE TABLE IF NOT EXISTS bridge_audit (
    id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ NOT NULL, source TEXT NOT NULL,
    item TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS bridge_audit_at ON bridge_audit (at);
CREATE TABLE IF NOT EXISTS bridge_pending (
    source TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_try TIMESTAMPTZ NOT NULL, last_error TEXT,
    given_up BOOLEAN NOT NULL DEFAULT FALSE, seq INTEGER NOT NULL DEFAULT 1,
    since TIMESTAMPTZ NOT NULL, failed_at TIMESTAMPTZ, PRIMARY KEY (source, key));
CREATE INDEX IF NOT EXISTS bridge_pending_due ON bridge_pending (given_up, next_try);
CREATE TABLE IF NOT EXISTS bridge_leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, since TIMESTAMPTZ NOT NULL,
    expires TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS bridge_timers (
    source TEXT NOT NULL, key TEXT NOT NULL, due TIMESTAMPTZ NOT NULL,
    next_try TIMESTAMPTZ NOT NULL, PRIMARY KEY (source, key));
CREATE INDEX IF NOT EXISTS bridge_timers_next ON bridge_timers (next_try);
CREATE SEQUENCE IF NOT EXISTS bridge_lease_tickets;
CREATE TABLE IF NOT EXISTS bridge_lease_releases (
    name TEXT PRIMARY KEY, ticket BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS bridge_evaluations (
    source TEXT NOT NULL, key TEXT NOT NULL, at TIMESTAMPTZ NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (source, key));
"""

_PENDING = "source, key, reason, attempts, next_try, last_error, given_up, seq, since"
_SELECT_ONE = (
    "SELECT source, key, reason, attempts, next_try, last_error, given_up, seq, since"
    " FROM bridge_pending WHERE source = %s AND key = %s"
)


def _pending(row: tuple[Any, ...]) -> Pending:
    return Pending(
        source=row[0],
        key=row[1],
        reason=row[2],
        attempts=int(row[3]),
        next_try=row[4],
        last_error=row[5],
        given_up=bool(row[6]),
        seq=int(row[7]),
        since=row[8],
    )


class PostgresStore:
    """A small connection pool; every call is one autocommitted statement."""

    def __init__(self, url: str, *, max_size: int = 8) -> None:
        try:
            self._pool = ConnectionPool(
                url, min_size=1, max_size=max_size, open=True, kwargs={"autocommit": True}
            )
            with self._pool.connection() as conn:
                conn.execute(SCHEMA)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot open the PostgreSQL store: {exc}") from None

    def _one(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        with self._pool.connection() as conn:
            return conn.execute(sql, args).fetchone()

    def _run(self, sql: str, *args: Any) -> int:
        with self._pool.connection() as conn:
            return conn.execute(sql, args).rowcount

    def get_cursor(self, source: str) -> datetime | None:
        row = self._one("SELECT cursor FROM bridge_cursors WHERE source = %s", source)
        return row[0] if row else None

    def set_cursor(self, source: str, cursor: datetime) -> None:
        self._run(
            "INSERT INTO bridge_cursors (source, cursor) VALUES (%s, %s) "
            "ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor",
            source,
            cursor,
        )

    def first_delivery(self, source: str, delivery_id: str, at: datetime) -> bool:
        return (
            self._run(
                "INSERT INTO bridge_deliveries (source, delivery_id, at) "
                "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                source,
                delivery_id,
                at,
            )
            == 1
        )

    def forget_deliveries(self, before: datetime) -> int:
        return self._run("DELETE FROM bridge_deliveries WHERE at < %s", before)

    def get_memo(self, source: str, key: str) -> str | None:
        row = self._one(
            "SELECT value FROM bridge_memos WHERE source = %s AND key = %s", source, key
        )
        return str(row[0]) if row else None

    def set_memo(self, source: str, key: str, value: str) -> None:
        self._run(
            "INSERT INTO bridge_memos (source, key, value) VALUES (%s, %s, %s) "
            "ON CONFLICT (source, key) DO UPDATE SET value = excluded.value",
            source,
            key,
            value,
        )

    def audit(self, source: str, item: str, action: str, detail: str, at: datetime) -> None:
        self._run(
            "INSERT INTO bridge_audit (at, source, item, action, detail) "
            "VALUES (%s, %s, %s, %s, %s)",
            at,
            source,
            item,
            action,
            detail,
        )

    def audit_log(
        self, source: str | None = None, limit: int = 100
    ) -> list[tuple[datetime, str, str, str, str]]:
        sql = "SELECT at, source, item, action, detail FROM bridge_audit"
        args: tuple[Any, ...] = ()
        if source is not None:
            sql += " WHERE source = %s"
            args = (source,)
        sql += " ORDER BY id DESC LIMIT %s"
        with self._pool.connection() as conn:
            rows = conn.execute(sql, (*args, limit)).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

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
        with self._pool.connection() as conn, conn.transaction():
            if delivery_id is not None:
                seen = conn.execute(
                    "INSERT INTO bridge_deliveries (source, delivery_id, at) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    (source, delivery_id, at),
                )
                if seen.rowcount != 1:
                    return False
            conn.execute(
                "INSERT INTO bridge_pending AS p (source, key, reason, next_try, since)"
                " VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (source, key) DO UPDATE SET reason = excluded.reason,"
                " seq = p.seq + 1,"
                " attempts = CASE WHEN p.given_up THEN 0 ELSE p.attempts END,"
                " next_try = CASE WHEN p.given_up OR excluded.next_try < p.next_try"
                " THEN excluded.next_try ELSE p.next_try END,"
                " given_up = FALSE",
                (source, key, reason, due or at, at),
            )
        return True

    def forget_delivery(self, source: str, delivery_id: str) -> None:
        self._run(
            "DELETE FROM bridge_deliveries WHERE source = %s AND delivery_id = %s",
            source,
            delivery_id,
        )

    def get_pending(self, source: str, key: str) -> Pending | None:
        row = self._one(_SELECT_ONE, source, key)
        return _pending(row) if row else None

    def claim_pending(
        self, now: datetime, until: datetime, *, limit: int = 100, source: str | None = None
    ) -> list[Pending]:
        # SKIP LOCKED: two sweepers on two nodes claim different rows, neither waits.
        where = "NOT given_up AND next_try <= %s" + (" AND source = %s" if source else "")
        args: tuple[Any, ...] = (now, source) if source else (now,)
        sql = (
            "UPDATE bridge_pending SET next_try = %s WHERE (source, key) IN (SELECT source, key"  # noqa: S608 - constants only
            " FROM bridge_pending WHERE " + where + " ORDER BY next_try LIMIT %s"
            " FOR UPDATE SKIP LOCKED) RETURNING " + _PENDING
        )
        with self._pool.connection() as conn:
            rows = conn.execute(sql, (until, *args, limit)).fetchall()
        return sorted((_pending(r) for r in rows), key=lambda p: (p.since, p.key))

    def finish_pending(self, source: str, key: str, seq: int | None) -> bool:
        return (
            self._run(
                "DELETE FROM bridge_pending WHERE source = %s AND key = %s"
                " AND (%s::integer IS NULL OR seq = %s::integer)",
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
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT attempts FROM bridge_pending WHERE source = %s AND key = %s FOR UPDATE",
                (source, key),
            ).fetchone()
            attempts = (int(row[0]) if row else 0) + 1
            retry = backoff.next_try(attempts, at)
            conn.execute(
                "INSERT INTO bridge_pending (source, key, reason, attempts, next_try, last_error,"
                " given_up, since, failed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (source, key) DO UPDATE SET attempts = excluded.attempts,"
                " next_try = excluded.next_try, last_error = excluded.last_error,"
                " given_up = excluded.given_up, failed_at = excluded.failed_at",
                (source, key, reason, attempts, retry or at, error, retry is None, at, at),
            )
            done = conn.execute(_SELECT_ONE, (source, key)).fetchone()
        if done is None:  # pragma: no cover - written in this very transaction
            raise ConfigError(f"the PostgreSQL store lost the pending row of {key!r}")
        return _pending(done)

    def list_pending(
        self, source: str | None = None, *, given_up: bool | None = None, limit: int = 100
    ) -> list[Pending]:
        where: list[str] = []
        args: list[Any] = []
        if source is not None:
            where.append("source = %s")
            args.append(source)
        if given_up is not None:
            where.append("given_up = %s")
            args.append(given_up)
        sql = "SELECT " + _PENDING + " FROM bridge_pending"  # noqa: S608 - constants only
        sql += (" WHERE " + " AND ".join(where)) if where else ""
        sql += " ORDER BY COALESCE(failed_at, since) DESC LIMIT %s"
        with self._pool.connection() as conn:
            rows = conn.execute(sql, (*args, limit)).fetchall()
        return [_pending(r) for r in rows]

    def count_pending(self) -> dict[tuple[str, bool], int]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT source, given_up, COUNT(*) FROM bridge_pending GROUP BY source, given_up"
            ).fetchall()
        return {(str(r[0]), bool(r[1])): int(r[2]) for r in rows}

    # -- leases ----------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> Lease:
        expires = now + ttl
        with self._pool.connection() as conn:
            # One statement: take it when free, expired or ours; else leave it as it is.
            # The CTE reads the row as it was before the statement: whose lease was replaced.
            row = conn.execute(
                "WITH before AS (SELECT holder FROM bridge_leases WHERE name = %s)"
                " INSERT INTO bridge_leases AS l (name, holder, since, expires)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
                " holder = excluded.holder, expires = excluded.expires,"
                " since = CASE WHEN l.holder = excluded.holder THEN l.since"
                " ELSE excluded.since END"
                " WHERE l.holder = excluded.holder OR l.expires <= %s"
                " RETURNING holder, since, expires, (SELECT holder FROM before),"
                " (SELECT ticket FROM bridge_lease_releases WHERE name = %s)",
                (name, name, holder, now, expires, now, name),
            ).fetchone()
            if row is not None:
                expired = row[3] if row[3] is not None and row[3] != holder else None
                return Lease(
                    name,
                    row[0],
                    row[1],
                    row[2],
                    acquired=True,
                    expired_holder=expired,
                    released=None if row[4] is None else int(row[4]),
                )
            held = conn.execute(
                "SELECT holder, since, expires FROM bridge_leases WHERE name = %s", (name,)
            ).fetchone()
        if held is None:  # released between the two statements: try again
            return self.acquire_lease(name, holder, now, ttl)
        return Lease(name, held[0], held[1], held[2], acquired=False)

    def release_lease(self, name: str, holder: str) -> None:
        # One transaction: the lease is free only once its ticket is on record, and the
        # ticket is drawn after every write made under the lease.
        with self._pool.connection() as conn, conn.transaction():
            gone = conn.execute(
                "DELETE FROM bridge_leases WHERE name = %s AND holder = %s", (name, holder)
            )
            if gone.rowcount == 1:
                conn.execute(
                    "INSERT INTO bridge_lease_releases (name, ticket, at)"
                    " VALUES (%s, nextval('bridge_lease_tickets'), now())"
                    " ON CONFLICT (name) DO UPDATE SET ticket = excluded.ticket, at = excluded.at",
                    (name,),
                )

    def lease_ticket(self) -> int:
        row = self._one(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM bridge_lease_tickets"
        )
        return int(row[0]) if row else 0

    # -- timers ----------------------------------------------------------------------------

    def set_timer(self, source: str, key: str, due: datetime | None) -> None:
        if due is None:
            self._run("DELETE FROM bridge_timers WHERE source = %s AND key = %s", source, key)
            return
        self._run(
            "INSERT INTO bridge_timers (source, key, due, next_try) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (source, key) DO UPDATE SET due = excluded.due,"
            " next_try = excluded.next_try",
            source,
            key,
            due,
            due,
        )

    def claim_timers(self, now: datetime, until: datetime, *, limit: int = 1000) -> list[Timer]:
        # SKIP LOCKED: two ticks on two nodes claim different timers, neither waits.
        with self._pool.connection() as conn:
            rows = conn.execute(
                "UPDATE bridge_timers SET next_try = %s WHERE (source, key) IN (SELECT source,"
                " key FROM bridge_timers WHERE next_try <= %s ORDER BY next_try LIMIT %s"
                " FOR UPDATE SKIP LOCKED) RETURNING source, key, due",
                (until, now, limit),
            ).fetchall()
        return sorted((Timer(*r) for r in rows), key=lambda t: (t.due, t.source, t.key))

    def next_timers(self, limit: int = 10) -> list[Timer]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT source, key, due FROM bridge_timers ORDER BY due LIMIT %s", (limit,)
            ).fetchall()
        return [Timer(*r) for r in rows]

    def count_timers(self) -> dict[str, int]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT source, COUNT(*) FROM bridge_timers GROUP BY source"
            ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    # -- latest evaluations ----------------------------------------------------------------

    def put_evaluation(self, source: str, key: str, record: str, at: datetime) -> None:
        self._run(
            "INSERT INTO bridge_evaluations (source, key, at, record) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (source, key) DO UPDATE SET at = excluded.at, record = excluded.record",
            source,
            key,
            at,
            record,
        )

    def drop_evaluation(self, source: str, key: str) -> None:
        self._run("DELETE FROM bridge_evaluations WHERE source = %s AND key = %s", source, key)

    def evaluations(
        self, source: str | None = None, *, batch: int = 1000
    ) -> Iterator[tuple[str, str, datetime, str]]:
        after = ("", "")
        while True:
            with self._pool.connection() as conn:
                rows = conn.execute(
                    "SELECT source, key, at, record FROM bridge_evaluations"
                    " WHERE (source, key) > (%s, %s) AND (%s::text IS NULL OR source = %s)"
                    " ORDER BY source, key LIMIT %s",
                    (*after, source, source, batch),
                ).fetchall()
            for row in rows:
                yield str(row[0]), str(row[1]), row[2], str(row[3])
            if len(rows) < batch:
                return
            after = (str(rows[-1][0]), str(rows[-1][1]))

    def count_evaluations(self) -> dict[str, int]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT source, COUNT(*) FROM bridge_evaluations GROUP BY source"
            ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def prune(self, *, deliveries: datetime, audit: datetime, given_up: datetime) -> dict[str, int]:
        return {
            "deliveries": self._run("DELETE FROM bridge_deliveries WHERE at < %s", deliveries),
            "audit": self._run("DELETE FROM bridge_audit WHERE at < %s", audit),
            "releases": self._run("DELETE FROM bridge_lease_releases WHERE at < %s", deliveries),
            "given_up": self._run(
                "DELETE FROM bridge_pending WHERE given_up AND failed_at < %s", given_up
            ),
        }

    def close(self) -> None:
        self._pool.close()
