"""The SQLite store under interruption: Ctrl-C (SIGINT) raises KeyboardInterrupt in the main
thread at whatever instruction it is on, while other threads keep writing. No write that
returned may be lost because of where that exception landed.

Found by the chaos harness: a SIGINT landing just after ``BEGIN IMMEDIATE`` left the
connection inside a transaction; every later write of the sync's writer threads (work-note
intents and memos) went into it and was rolled back at exit, so the next sync added the
same work note again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.store.records import Backoff
from bridge.store.sqlite import SqliteStore

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


class _InterruptAfter:
    """The store's connection, raising KeyboardInterrupt right after ``statement`` ran: where
    a signal that arrived during that C call is delivered."""

    def __init__(self, db: sqlite3.Connection, statement: str) -> None:
        self._db = db
        self._statement = statement
        self.fired = False

    def execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        cursor = self._db.execute(sql, args)
        if sql.startswith(self._statement) and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@pytest.mark.parametrize("statement", ["BEGIN IMMEDIATE", "INSERT", "SELECT", "COMMIT"])
def test_an_interrupted_transaction_leaves_no_transaction_open(
    tmp_path: Path, statement: str
) -> None:
    path = tmp_path / "b.db"
    store = SqliteStore(str(path))
    real = store._db
    store._db = _InterruptAfter(real, statement)  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        store.fail_pending("src", "OPS-1", "timed out", T0, Backoff())
    assert store._db.fired  # type: ignore[attr-defined]
    assert not real.in_transaction
    store._db = real
    # Another thread of the process goes on writing; another process must see it.
    store.set_memo("src", "journal:incident:1", "written")
    other = SqliteStore(str(path))
    try:
        assert other.get_memo("src", "journal:incident:1") == "written"
        landed = other.get_pending("src", "OPS-1")
        # Interrupted at COMMIT's return: committed. Anywhere before: nothing of it.
        assert (landed is not None) == (statement == "COMMIT")
    finally:
        other.close()
        store.close()


_CHILD = """
import sys, threading
from datetime import UTC, datetime
from bridge.store.sqlite import SqliteStore

store = SqliteStore(sys.argv[1])
at = datetime.now(UTC)

def writer() -> None:  # a sync's writer thread: its memo writes go on after Ctrl-C
    for i in range(400):
        store.set_memo("src", f"memo-{i}", "x")
        print(i, flush=True)

thread = threading.Thread(target=writer)
thread.start()
try:
    i = 0
    while True:  # the main thread: one transaction after another, as a sync's take() does
        store.add_pending("src", f"item-{i % 50}", "changed", at)
        i += 1
except KeyboardInterrupt:
    thread.join()
"""


def test_memos_written_after_a_real_ctrl_c_are_kept(tmp_path: Path) -> None:
    """Real SIGINTs at random moments of a busy main thread (the bug needed one to land in
    a window of a few instructions, so it is tried many times)."""
    for attempt in range(12):
        path = tmp_path / f"s{attempt}.db"
        SqliteStore(str(path)).close()  # the schema, before the child races on it
        child = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-c", _CHILD, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # the writer has begun
        assert first.strip() == b"0"
        deadline = time.monotonic() + 30
        while child.stdout.readline().strip() != str(5 + attempt).encode():
            assert time.monotonic() < deadline, "the child stopped writing"
        child.send_signal(signal.SIGINT)
        printed = [first, *child.stdout.read().splitlines()]
        child.stdout.close()
        child.wait(timeout=60)
        returned = {f"memo-{int(line)}" for line in printed if line.strip()}
        db = sqlite3.connect(path)
        try:
            kept = {row[0] for row in db.execute("SELECT key FROM memos")}
        finally:
            db.close()
        assert returned <= kept, f"attempt {attempt}: lost {sorted(returned - kept)[:5]}"
