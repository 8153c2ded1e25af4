"""The state store: sync cursors, webhook deliveries seen, small per-item memos, an audit log.

SQLite by default (one machine), PostgreSQL when several nodes share the work
(``BRIDGE_DATABASE_URL``). Both implement :class:`~bridge.store.base.Store`.
"""

from __future__ import annotations

import os

from bridge.errors import ConfigError
from bridge.store.base import Store

__all__ = ["Store", "open_store", "sqlite_path", "store_url"]


def store_url(url: str | None) -> str:
    """The URL a store is opened at: ``BRIDGE_DATABASE_URL``, else the configured one, else
    ``bridge.db`` beside where bridge runs."""
    return os.environ.get("BRIDGE_DATABASE_URL") or url or "sqlite:///bridge.db"


def sqlite_path(url: str) -> str | None:
    """The file a ``sqlite://`` URL names (None for other stores and in-memory ones)."""
    if not url.startswith("sqlite://"):
        return None
    path = url[len("sqlite://") :]
    return None if path in (":memory:", "/:memory:") else path


def open_store(url: str | None) -> Store:
    """The store a URL names (``sqlite:///abs/path``, ``sqlite://rel/path``,
    ``sqlite://:memory:``, ``postgresql://...``);
    ``BRIDGE_DATABASE_URL`` wins over the argument."""
    url = store_url(url)
    if url.startswith("sqlite://"):
        from bridge.store.sqlite import SqliteStore  # noqa: PLC0415

        # sqlite:///var/lib/bridge.db is an absolute path, sqlite://bridge.db a relative one.
        path = url[len("sqlite://") :]
        return SqliteStore(":memory:" if path in (":memory:", "/:memory:") else path)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from bridge.store.postgres import PostgresStore  # noqa: PLC0415
        except ImportError:
            raise ConfigError(
                "a PostgreSQL store needs psycopg: pip install 'bridge-kpi[postgres]'"
            ) from None
        return PostgresStore(url)
    raise ConfigError(
        f"unknown store URL {url.split(':', 1)[0]!r}: use sqlite:///path/to/"
        "bridge.db or postgresql://user@host/db"
    )
