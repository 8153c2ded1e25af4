"""``bridge explain`` after the rule trace: the item's KPIs and how each SLA clock ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import cli

REPO = Path(__file__).parent.parent.parent
BUNDLED = ("-r", str(REPO / "rules"), "-i", str(REPO / "examples" / "export"))
NOW = ("--now", "2026-11-02T00:00:00Z")


def explain(key: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["explain", *BUNDLED, *NOW, *args, key])
    assert result.exit_code == 0, result.output
    return result.stdout


def text(key: str) -> str:
    """The text output with its table layout flattened: one space between words."""
    return " ".join(explain(key).split())


def as_json(key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(explain(key, "-f", "json"))
    return document


@pytest.fixture(scope="module")
def classified() -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["classify", *BUNDLED, *NOW, "-f", "json"])
    assert result.exit_code == 0, result.output
    return {row["key"]: row for row in json.loads(result.stdout)["items"]}


def test_a_cancelled_jira_incident_says_the_rule_sets_cancel_overrode_the_native_met() -> None:
    out = text("OPS-7")
    assert "SLA time-to-resolution: cancelled (source: native)" in out
    assert (
        "the SLA says source: auto, which prefers the system's own SLA where the item carries "
        "one: Jira Service Management SLA 'Time to resolution' (customfield_10030)"
    ) in out
    assert "pauses not in the system's data" in out
    assert "stop Thu 2026-02-05 12:24:23 CET (the system stopped the clock)" in out
    assert "goal 45 h (the system's own goal)" in out
    assert (
        "state cancelled: the system's SLA says met, but the rule set's cancel condition "
        '(status in ["Cancelled", "Canceled"]) held when the cycle ended'
    ) in out
    # the computed first-response clock, cancelled by the same condition
    assert "SLA time-to-first-response: cancelled (source: computed)" in out
    assert (
        "cancelled Thu 2026-02-05 12:24:23 CET: the cancel condition held (status Cancelled)"
    ) in out


def test_a_servicenow_incident_shows_its_goal_breach_and_business_vs_wall_time() -> None:
    out = text("INC0010001")
    assert "SLA time-to-resolution: breached (source: computed)" in out
    assert "the record carries no status history" in out
    assert "start Tue 2026-01-06 09:48:41 CET" in out
    assert "stop Wed 2026-01-14 11:06:22 CET: the stop condition held (status Closed)" in out
    assert (
        'goal 24 h: goal 3, priority in ["Medium", "3 - Moderate"] held at the cycle\'s end '
        '(priority was "3 - Moderate")'
    ) in out
    assert "elapsed 55 h 17 min business time · 193 h 17 min wall clock" in out
    assert "remaining none: 31 h 17 min past the goal" in out
    assert "breach the goal was reached at Thu 2026-01-08 15:48:41 CET" in out
    assert "state breached: counted in SLA attainment" in out


def test_kpis_are_grouped_formatted_and_missing_ones_say_why() -> None:
    out = text("INC0010001")
    assert "KPIs (sla.time-to-resolution, csat, tco)" in out
    assert "SLA time-to-resolution state breached goal_seconds 24 h" in out
    assert "customer satisfaction (CSAT) rating — no satisfaction rating" in out
    assert "total cost of ownership (TCO) labour_hours 3.8 h labour_cost 318.75 EUR" in out


def test_a_running_clock_predicts_its_breach() -> None:
    data = as_json("INC0010053")
    (sla,) = data["slas"]
    (cycle,) = sla["cycles"]
    assert (cycle["state"], cycle["stop"], cycle["ended_by"]) == ("running", None, None)
    assert cycle["breach_time"] == data["kpis"]["sla.time-to-resolution.breach_time"]
    assert cycle["breach_time"] is not None
    assert "if nothing pauses the clock" in text("INC0010053")


def test_an_on_hold_clock_is_paused_until_now() -> None:
    out = text("INC0010044")
    assert "SLA time-to-resolution: paused" in out
    assert "still paused (now)" in out
    (cycle,) = as_json("INC0010044")["slas"][0]["cycles"]
    assert cycle["pauses"][-1]["to"] is None


@pytest.mark.parametrize("key", ["OPS-7", "OPS-63", "INC0010001", "INC0010047", "INC0010044"])
def test_the_json_kpis_and_clocks_are_those_classify_reports(
    key: str, classified: dict[str, dict[str, Any]]
) -> None:
    data = as_json(key)
    row = classified[key]
    assert data["kpis"] == row["kpis"]
    assert data["missing"] == row["missing"]
    for sla in data["slas"]:
        last = sla["cycles"][-1]
        prefix = f"sla.{sla['name']}."
        assert last["state"] == row["kpis"][prefix + "state"]
        assert last["elapsed_seconds"] == row["kpis"][prefix + "elapsed_seconds"]
        assert last["elapsed_wall_seconds"] == row["kpis"][prefix + "elapsed_wall_seconds"]
        assert last["breach_time"] == row["kpis"][prefix + "breach_time"]
        assert sla["source"] == row["kpis"][prefix + "source"]


def test_the_json_names_the_native_sla_and_the_cancel_that_overrode_it() -> None:
    ttr = next(s for s in as_json("OPS-63")["slas"] if s["name"] == "time-to-resolution")
    assert ttr["native"] == {"name": "Time to resolution", "field": "customfield_10030"}
    (cycle,) = ttr["cycles"]
    # the system had it breached; cancelled comes before breached
    assert (cycle["system_state"], cycle["state"]) == ("breached", "cancelled")
    assert cycle["cancelled_by_rules"] is True
    assert cycle["pauses"] is None  # JSM does not say when its clock was paused


def test_an_item_without_kpis_says_so() -> None:
    args = [
        "explain",
        "-r",
        str(REPO / "tests" / "data" / "rules" / "valid"),
        "-i",
        str(REPO / "tests" / "data" / "jira" / "jira-cli" / "search.json"),
        *NOW,
        "TEST-1",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "decision: unclassified" in result.stdout
    assert "KPIs: none (the decision asks for no KPIs)" in result.stdout
    data = json.loads(CliRunner().invoke(cli, [*args, "-f", "json"]).stdout)
    assert (data["kpis"], data["slas"], data["kpi_groups"]) == (None, [], [])


def test_project_kpis_read_as_money_ratios_and_days() -> None:
    out = text("PMO-2")
    assert "earned value (EVM) bac 32,500.00 EUR" in out
    assert "spi 0.97 cpi 1.20" in out
    assert "schedule slip_days +33 days slip_business_days +23 working days" in out
    assert "at_days 124.1 days sv_days -35.6 days" in out


def test_data_in_the_clock_timeline_is_text_not_markup(tmp_path: Path) -> None:
    issue = json.loads((REPO / "tests" / "data" / "jira" / "jsm-sla-issue.json").read_text())
    issue["fields"]["status"] = {"name": "[bold]Done[/bold]", "statusCategory": {"key": "done"}}
    export = tmp_path / "issues.json"
    export.write_text(json.dumps({"issues": [issue]}))
    args = ["explain", "-r", str(REPO / "rules"), "-i", str(export), *NOW, "OPS-7"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "the stop condition held (status [bold]Done[/bold])" in result.stdout
    assert "SLA time-to-first-response: met (source: computed)" in result.stdout
