"""bridge.yaml: located problems, connector settings schemas, secrets from env or files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bridge.config import load_config, secret
from bridge.errors import ConfigError, ConfigInvalidError

DATA = Path(__file__).parent / "data" / "config"


def test_valid_config() -> None:
    config = load_config(DATA / "valid.yaml")
    assert config.rules == (DATA / "../rules/valid",)
    assert config.store == "sqlite://:memory:"
    assert [(s.name, s.connector) for s in config.sources] == [("export", "files")]
    assert config.source("export").settings["path"] == "../servicenow"


def test_every_problem_is_located() -> None:
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(DATA / "invalid.yaml")
    assert [f"{d.line}:{d.col}: {d.message}" for d in caught.value.diagnostics] == [
        "4:16: unknown connector 'file'; did you mean 'files'? (installed: files, jira, "
        "servicenow)",
        "6:11: source name 'export' is used twice",
        "8:11: text must not be empty",
        "9:5: unknown key 'token' (allowed: name, connector, path)",
        "10:5: missing required key 'name'",
    ]


def test_unknown_source_name() -> None:
    config = load_config(DATA / "valid.yaml")
    with pytest.raises(ConfigError, match=r"no source named 'exprot'.*did you mean 'export'"):
        config.source("exprot")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "bridge.yaml")


def test_secret_from_environment_or_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "from-env")
    assert secret({"token_env": "BRIDGE_TEST_TOKEN"}, "token", source="jira") == "from-env"
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert secret({"token_file": str(path)}, "token", source="jira") == "from-file"
    monkeypatch.delenv("BRIDGE_TEST_TOKEN")
    assert (
        secret({"token_env": "BRIDGE_TEST_TOKEN", "token_file": str(path)}, "token", source="jira")
        == "from-file"
    )


def test_missing_secrets_name_what_to_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"NOPE_TOKEN .token_env. is not set or empty"):
        secret({"token_env": "NOPE_TOKEN"}, "token", source="jira")
    with pytest.raises(ConfigError, match=r"give token_env .* or token_file"):
        secret({}, "token", source="jira")
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        secret({"token_file": str(empty)}, "token", source="jira")
    assert secret({}, "token", source="jira", required=False) is None


def test_worker_settings_default_and_as_written(tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("sources:\n  - {name: export, connector: files, path: x}\n")
    defaults = load_config(plain).worker
    assert defaults.backoff.max_attempts == 10
    assert defaults.retention.deliveries == timedelta(days=7)

    tuned = tmp_path / "tuned.yaml"
    tuned.write_text(
        "sources:\n  - {name: export, connector: files, path: x}\n"
        "worker:\n"
        "  retry: {max_attempts: 4, first: 30s, cap: 1h30m}\n"
        "  sync_lease: 20m\n"
        "  retention: {deliveries: 2d, audit: 2w, given_up: 45d}\n"
    )
    worker = load_config(tuned).worker
    assert (worker.backoff.max_attempts, worker.backoff.first, worker.backoff.cap) == (
        4,
        timedelta(seconds=30),
        timedelta(hours=1, minutes=30),
    )
    assert worker.sync_lease == timedelta(minutes=20)
    assert worker.retention.audit == timedelta(weeks=2)


def test_worker_durations_are_checked_where_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n  - {name: export, connector: files, path: x}\n"
        "worker:\n"
        "  sync_lease: soon\n"
        "  retention: {audit: 999999999999w}\n"
    )
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(bad)
    assert sorted((d.line, d.col) for d in caught.value.diagnostics) == [(4, 15), (5, 22)]
