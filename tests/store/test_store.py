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

POSTGRES_URL = os.environ.get(
    "BRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


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
