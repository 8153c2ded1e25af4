"""``bridge status``: what waits to be written and what was given up, read from the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.store import open_store
from bridge.store.records import Backoff

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    (tmp_path / "bridge.yaml").write_text(
        f"store: sqlite://{tmp_path / 'state.db'}\n"
        "sources:\n  - {name: export, connector: files, path: export}\n"
    )
    return tmp_path / "bridge.yaml"


def test_nothing_pending(config: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "-c", str(config)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "nothing pending" in result.output


def test_given_up_items_are_listed_with_their_error_escaped(config: Path) -> None:
    store = open_store(f"sqlite://{config.parent / 'state.db'}")
    store.add_pending("jira", "OPS-1", "webhook", T0)
    hostile = "HTTP 400: status [/] is \x1b[31mred\x1b[0m [link=http://x]here[/link]"
    store.fail_pending("jira", "OPS-2", hostile, T0, Backoff(max_attempts=1))
    store.close()

    result = CliRunner().invoke(
        cli, ["status", "-c", str(config)], catch_exceptions=False, env={"COLUMNS": "200"}
    )

    assert result.exit_code == 1  # something was given up: monitoring notices
    assert "\x1b" not in result.output
    assert "[/]" in result.output  # shown as written, not taken for markup
    assert "[link=http://x]here[/link]" in result.output
    assert "OPS-2" in result.output
    lines = [line for line in result.output.splitlines() if "jira" in line]
    assert any("1" in line for line in lines)

    as_json = CliRunner().invoke(
        cli, ["status", "-c", str(config), "-f", "json"], catch_exceptions=False
    )
    doc = json.loads(as_json.output)
    assert doc["by_source"] == {"jira": {"waiting": 1, "given_up": 1}}
    assert doc["given_up"][0]["key"] == "OPS-2"
    assert doc["given_up"][0]["attempts"] == 1


def test_timers_are_counted_with_the_next_due_and_how_late_the_earliest_is(config: Path) -> None:
    store = open_store(f"sqlite://{config.parent / 'state.db'}")
    store.set_timer("jira", "OPS-7", datetime(2020, 1, 1, tzinfo=UTC))  # long overdue
    store.set_timer("jira", "OPS-8", datetime(2999, 1, 1, tzinfo=UTC))
    store.close()

    shown = CliRunner().invoke(cli, ["status", "-c", str(config)], catch_exceptions=False)
    as_json = CliRunner().invoke(
        cli, ["status", "-c", str(config), "-f", "json"], catch_exceptions=False
    )

    assert "2 item(s) with a timer" in shown.output
    assert "overdue" in shown.output  # the worker is not keeping up: it says so
    timers = json.loads(as_json.output)["timers"]
    assert timers["by_source"] == {"jira": 2}
    assert [t["key"] for t in timers["next"]] == ["OPS-7", "OPS-8"]
    assert timers["lag_seconds"] > 0
