"""bridge.yaml: located problems, connector settings schemas, secrets from env or files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.config import load_config, secret
from bridge.connectors.files import read_export
from bridge.errors import ConfigError, ConfigInvalidError
from bridge.kpi.compute import KpiEngine
from bridge.plugins import default_registry
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules
from bridge.writeback.values import KPI_FIGURES, SLA_FIGURES, writeback_key_problem

DATA = Path(__file__).parent / "data" / "config"
REPO = Path(__file__).parent.parent


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


def test_missing_secrets_name_the_setting_never_its_value(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"token_env: the environment variable it names") as e:
        secret({"token_env": "NOPE_TOKEN"}, "token", source="jira")
    assert "NOPE_TOKEN" not in str(e.value)  # what is written there may be the secret itself
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


HOSTILE = DATA.parent / "hostile" / "config" / "cases"


def test_an_unknown_writeback_kpi_is_located_with_a_did_you_mean() -> None:
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(HOSTILE / "writeback-unknown-kpi.yaml")
    assert [f"{d.line}:{d.col}: {d.message}" for d in caught.value.diagnostics] == [
        "12:9: unknown KPI 'effort.spent_hours' (bridge computes no such value, so the field "
        "would only be cleared); did you mean 'effort.actual_hours'? (effort KPIs: "
        "planned_hours, actual_hours, forecast_hours, variance_pct)"
    ]


@pytest.mark.parametrize(
    "key", ["work_type", "phase", "rule", "evm.spi", "schedule.slip_days", "sla.any-name.state"]
)
def test_every_key_bridge_writes_is_accepted(key: str) -> None:
    assert writeback_key_problem(key) is None


def test_the_writeback_catalogue_is_what_the_kpi_engine_computes() -> None:
    """The bundled rules and export exercise every KPI: a KPI added to the engine and not
    to the catalogue (or removed from it) fails here, not in a customer's bridge.yaml."""
    now = datetime(2026, 11, 2, 9, tzinfo=UTC)
    rule_set = load_rules([REPO / "rules"])
    formats = list(default_registry().formats.values())
    items = list(read_export(REPO / "examples" / "export", formats))
    engine, kpis = Engine(rule_set), KpiEngine.for_items(rule_set, items)
    computed: set[str] = set()
    for item in items:
        computed.update(kpis.compute(item, engine.classify(item, now), now).values)
    slas = {key for key in computed if key.startswith("sla.")}
    assert computed - slas == {f"{g}.{f}" for g, figures in KPI_FIGURES.items() for f in figures}
    assert {key.rsplit(".", 1)[1] for key in slas} == set(SLA_FIGURES)


def test_a_worker_duration_past_100_years_is_located_not_overflowed() -> None:
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(HOSTILE / "worker-retention-overflow.yaml")
    assert [f"{d.line}:{d.col}: {d.message}" for d in caught.value.diagnostics] == [
        "6:22: '999999w' is longer than 100 years, the longest duration bridge accepts; "
        "write at most 36500d"
    ]


def test_round_and_refresh_are_taken_and_a_moving_figure_without_refresh_is_warned() -> None:
    path = DATA / "writeback-options.yaml"
    config = load_config(path)
    assert config.warnings == (
        f"{path}:16:9: writeback.fields.evm.pv moves with the clock and has no refresh: every "
        "sync rewrites it; add refresh: 1d (and round: 2), e.g. {field: Planned value, "
        "refresh: 1d, round: 2}",
        f"{path}:24:9: writeback.fields.sla.resolution.elapsed_seconds moves with the clock and "
        "has no refresh: every sync rewrites it; add refresh: 1h",
    )
    assert load_config(DATA / "valid.yaml").warnings == ()


def test_every_round_and_refresh_mistake_is_located_as_itself() -> None:
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(DATA / "writeback-options-invalid.yaml")
    still = (
        "does not move with the clock: it changes only when the item does or at an instant "
        "bridge evaluates it at anyway (a breach, a due date), so between evaluations it never "
        "changes and a refresh would rewrite the same value; remove refresh"
    )
    assert [f"{d.line}:{d.col}: {d.message}" for d in caught.value.diagnostics] == [
        "12:38: round: 2 rounds numbers, and phase is text; remove round",
        f"13:52: schedule.slip_days {still}",
        "14:40: refresh: 30s is shorter than a minute, the shortest refresh (each one is a "
        "write per item); write at least 1m",
        "15:38: '999999w' is longer than 100 years, the longest duration bridge accepts; write "
        "at most 36500d",
        "16:36: 7 is out of range (maximum 6)",
        "17:38: 'soon' is not a duration; write e.g. 4h, 1h30m, 5d or 2w",
        "18:29: unknown key 'rounding'; did you mean 'round'?",
        "19:60: round: 0 rounds numbers, and sla.resolution.breach_time is a date-time; remove "
        "round",
        f"26:61: sla.resolution.state {still}",
        "27:53: round: 0 rounds numbers, and csat.satisfied is a yes/no flag; remove round",
    ]


def test_the_commands_that_load_bridge_yaml_print_its_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bridge.cli.options import config_from

    config_from(str(DATA / "writeback-options.yaml"))
    printed = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[0] for line in printed] == ["warning", "warning"]
    assert "writeback.fields.evm.pv moves with the clock" in printed[0]
    config_from(str(DATA / "valid.yaml"))
    assert capsys.readouterr().err == ""


def test_a_schedule_on_a_source_that_only_reads_exports_is_refused_at_its_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        "sources:\n  - {name: export, connector: files, path: x}\n"
        "schedules:\n  - {source: export, cron: '*/10 * * * *'}\n"
    )
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(path)
    assert "bridge.yaml:4:" in str(caught.value)
    assert "only reads exports" in str(caught.value)


def test_a_yaml_indentation_mistake_in_bridge_yaml_is_explained_at_its_line(
    tmp_path: Path,
) -> None:
    """bridge.yaml is read by the rules' YAML reader, so it gets the same words."""
    path = tmp_path / "bridge.yaml"
    path.write_text(
        "rules: rules/\nsources:\n  - name: export\n    connector: files\n      path: exports/\n"
    )
    with pytest.raises(ConfigInvalidError) as caught:
        load_config(path)
    assert [f"{d.line}:{d.col}: {d.message}" for d in caught.value.diagnostics] == [
        "5:7: YAML syntax: this line is indented more than `connector:` on line 4, which "
        "already has its value on its line; line it up with `connector:` (column 5), or "
        "remove the value after `connector:` to nest this line under it"
    ]
