"""Progress is shown on stderr to a person at a terminal, and never written into a pipe."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from bridge.cli.options import evaluate_export
from bridge.evaluations import encode
from bridge.store import open_store
from bridge.timefmt import parse_instant

REPO = Path(__file__).resolve().parents[2]
RULES = str(REPO / "rules")
EXPORT = str(REPO / "examples" / "export")
NOW = "2026-11-02T00:00:00Z"


def _config(tmp_path: Path) -> Path:
    database = tmp_path / "bridge.db"
    _, evaluated, _ = evaluate_export([RULES], [EXPORT], parse_instant(NOW))
    store = open_store(f"sqlite://{database}")
    try:
        for e in evaluated:
            store.put_evaluation("jira", e.item.key, encode(e), parse_instant(NOW))
    finally:
        store.close()
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"rules: {RULES}\nstore: sqlite://{database}\nsources:\n"
        "  - {name: jira, connector: files, path: " + EXPORT + "}\n"
    )
    return config


def _bridge(*args: str, stderr: int) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "bridge", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        env={**os.environ, "BRIDGE_DATABASE_URL": "", "COLUMNS": "100"},
        timeout=120,
        check=False,
    )


def test_a_terminal_sees_progress_and_a_pipe_sees_none(tmp_path: Path) -> None:
    config = _config(tmp_path)
    args = ("report", "-c", str(config), "--now", NOW, "-f", "json")

    piped = _bridge(*args, stderr=subprocess.PIPE)
    assert piped.returncode == 0, piped.stderr
    assert b"items read from the store" not in piped.stderr

    controller, terminal = pty.openpty()
    try:
        shown = _bridge(*args, stderr=terminal)
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(controller)
    assert shown.returncode == 0
    assert b"items read from the store" in seen
    assert shown.stdout == piped.stdout  # the document itself is the same
