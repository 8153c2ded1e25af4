"""SQLite store: the default for one machine; WAL mode so readers never block the writer."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from bridge.errors import ConfigError

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
"""


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

    def close(self) -> None:
        with self._lock:
            self._db.close()
