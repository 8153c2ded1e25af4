"""PostgreSQL store: for several bridge nodes sharing cursors, deliveries and memos."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from bridge.errors import ConfigError

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
"""


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

    def close(self) -> None:
        self._pool.close()
