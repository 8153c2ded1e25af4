"""``round`` and ``refresh`` of Jira write-back fields: parsed onto the settings, and refused
(naming the setting) when parsed without bridge.yaml."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.connectors.jira.settings import parse_settings
from bridge.errors import ConfigError
from bridge.writeback.values import WritebackOptions

CONFIG_DATA = Path(__file__).parent.parent.parent / "data" / "config"


def jira_source(name: str) -> dict[str, Any]:
    """The Jira source of a bridge.yaml under tests/data/config, as written."""
    document = yaml.safe_load((CONFIG_DATA / name).read_text("utf-8"))
    [source] = [s for s in document["sources"] if s["connector"] == "jira"]
    return dict(source)


def test_round_and_refresh_are_parsed_onto_the_settings() -> None:
    parsed = parse_settings(jira_source("writeback-options.yaml"))
    assert dict(parsed.writeback_options) == {
        "evm.spi": WritebackOptions(round=2, refresh=timedelta(days=1)),
        "sla.time-to-resolution.remaining_seconds": WritebackOptions(refresh=timedelta(hours=1)),
        "evm.cpi": WritebackOptions(round=2),
    }
    # The existing forms read as before.
    assert dict(parsed.writeback_fields) == {
        "evm.spi": "SPI",
        "sla.time-to-resolution.remaining_seconds": "Remaining",
        "evm.cpi": "CPI",
        "phase": "Phase",
        "evm.pv": "Planned value",
    }
    assert dict(parsed.writeback_values) == {
        "evm.spi": {},
        "sla.time-to-resolution.remaining_seconds": {},
        "evm.cpi": {},
        "phase": {"execution": "Executing"},
    }


def test_every_problem_is_named_with_its_setting_without_bridge_yaml() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(jira_source("writeback-options-invalid.yaml"))
    text = str(caught.value)
    # The schema's problems come first and alone, as every other schema problem does.
    assert text.startswith("source 'jira': writeback.fields.evm.ac.round: 7 is greater than")
    assert "writeback.fields.evm.cv: unknown key 'rounding'; did you mean 'round'?" in text
    assert "writeback.fields.evm.sv.refresh: is not in the expected form" in text


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"phase": {"field": "Phase", "round": 2}},
            "writeback.fields.phase.round: round: 2 rounds numbers, and phase is text",
        ),
        (
            {"schedule.slip_days": {"field": "Slip", "refresh": "1d"}},
            "writeback.fields.schedule.slip_days.refresh: schedule.slip_days does not move with "
            "the clock",
        ),
        (
            {"evm.spi": {"field": "SPI", "refresh": "30s"}},
            "writeback.fields.evm.spi.refresh: refresh: 30s is shorter than a minute",
        ),
    ],
)
def test_a_figure_that_cannot_take_its_option_is_refused(
    entry: dict[str, Any], message: str
) -> None:
    source = {**jira_source("writeback-options.yaml"), "writeback": {"fields": entry}}
    with pytest.raises(ConfigError) as caught:
        parse_settings(source)
    assert str(caught.value).startswith(f"source 'jira': {message}")
