"""``bridge report``: figures that say what they count, from an export or from the store."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.cli.options import evaluate_export
from bridge.evaluations import encode
from bridge.store import open_store
from bridge.timefmt import parse_instant

REPO = Path(__file__).resolve().parents[2]
RULES = str(REPO / "rules")
EXPORT = str(REPO / "examples" / "export")
NOW = "2026-11-02T00:00:00Z"


@pytest.fixture
def run():  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def _json(run, *args: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    result = run("report", "-r", RULES, "-i", EXPORT, "--now", NOW, "-f", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_attainment_says_it_counts_clocks_and_how_many_items_have_them(run) -> None:  # type: ignore[no-untyped-def]
    result = run("report", "-r", RULES, "-i", EXPORT, "--now", NOW)
    assert result.exit_code == 0, result.output
    document = _json(run)
    workplace = next(g for g in document["groups"]["service"] if g["group"] == "Workplace")
    clocks, items = workplace["sla_cycles"], workplace["sla_items"]
    assert 0 < items < clocks <= 2 * workplace["items"]
    assert f"of {clocks} clocks ({items} items)" in result.stdout
    assert "It counts clocks, not items" in result.stdout  # the legend
    for word in ("SPI = schedule performance index", "CPI = cost performance index", "TCO ="):
        assert word in result.stdout


def test_csat_has_a_wilson_interval_instead_of_a_fixed_low_n_flag(run) -> None:  # type: ignore[no-untyped-def]
    document = _json(run)
    total = document["total"]
    low, high = total["csat_top2_ci"]
    assert low < total["csat_top2_pct"] < high
    result = run("report", "-r", RULES, "-i", EXPORT, "--now", NOW)
    assert "low n" not in result.stdout
    assert f"({low:.0f}–{high:.0f}%)" in result.stdout


def test_labels_are_grouped_one_label_at_a_time(run) -> None:  # type: ignore[no-untyped-def]
    groups = _json(run, "-g", "labels")["groups"]["labels"]
    names = [g["group"] for g in groups]
    assert names
    assert all("," not in name for name in names)
    # An item with two labels counts in both groups.
    assert sum(g["items"] for g in groups) >= _json(run)["total"]["items"]


def test_csv_is_rounded_for_people_and_says_true_and_false(run) -> None:  # type: ignore[no-untyped-def]
    result = run("report", "-r", RULES, "-i", EXPORT, "--now", NOW, "-f", "csv", "-g", "team")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    for row in rows:
        for name in ("sla_attainment_pct", "csat_top2_pct", "spi", "cpi", "tco_total"):
            if row[name]:
                assert len(row[name].partition(".")[2]) <= 2, (name, row[name])
    assert {"true", "false"} >= {r["low_sample"] for r in rows}
    # ServiceNow groups by name (the export's dot-walks), not by sys_id.
    assert "Service Desk" in {r["group"] for r in rows} or all(len(r["group"]) != 32 for r in rows)


def test_a_misspelled_group_gets_a_did_you_mean(run) -> None:  # type: ignore[no-untyped-def]
    result = run("report", "-g", "assigne")
    assert result.exit_code == 2
    assert "did you mean 'assignee'?" in result.output


def test_output_goes_to_the_file_named_by_o(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "report.json"
    result = run("report", "-r", RULES, "-i", EXPORT, "--now", NOW, "-f", "json", "-o", str(target))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert json.loads(target.read_text())["total"] == _json(run)["total"]
    table = tmp_path / "report.txt"
    assert run("report", "-r", RULES, "-i", EXPORT, "--now", NOW, "-o", str(table)).exit_code == 0
    text = table.read_text()
    assert "by service" in text
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 120


def test_from_the_store_the_figures_equal_those_from_the_export(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    database = tmp_path / "bridge.db"
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"rules: {RULES}\nstore: sqlite://{database}\nsources:\n"
        "  - {name: jira, connector: files, path: " + EXPORT + "}\n"
    )
    _, evaluated, _ = evaluate_export([RULES], [EXPORT], parse_instant(NOW))
    store = open_store(f"sqlite://{database}")
    try:
        for e in evaluated:
            store.put_evaluation("jira", e.item.key, encode(e), parse_instant(NOW))
    finally:
        store.close()

    result = run("report", "-c", str(config), "--now", NOW, "-f", "json")
    assert result.exit_code == 0, result.output
    from_store = json.loads(result.stdout)
    from_export = _json(run)
    assert from_store["from"] == "store"
    assert from_store["evaluated"] == {"first": NOW, "last": NOW}
    assert from_store["total"] == from_export["total"]
    assert from_store["groups"] == from_export["groups"]


def test_a_store_not_made_yet_is_explained(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"rules: {RULES}\nstore: sqlite://{tmp_path / 'none.db'}\nsources:\n"
        "  - {name: x, connector: files, path: " + EXPORT + "}\n"
    )
    result = run("report", "-c", str(config))
    assert result.exit_code == 2
    assert "run bridge sync" in result.output
    assert not (tmp_path / "none.db").exists()
    mixed = run("report", "-c", str(config), "-i", EXPORT)
    assert mixed.exit_code == 2
    assert "leave out --rules and --input" in mixed.output


def test_html_is_one_page_with_the_same_figures(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "portfolio.html"
    result = run("report", "-r", RULES, "-i", EXPORT, "--now", NOW, "-f", "html", "-o", str(target))
    assert result.exit_code == 0, result.output
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page.split('id="bridge-data"')[0].replace("http://www.w3.org", "")
    marker = '<script type="application/json" id="bridge-data">'
    data = json.loads(
        page[page.index(marker) + len(marker) : page.index("</script>", page.index(marker))]
    )
    assert len(data["items"]) == _json(run)["total"]["items"]


def test_an_item_left_out_fails_the_report_unless_keep_going(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = json.loads((REPO / "examples/export/jira/ops-page-1.json").read_text("utf-8"))
    page["issues"][2]["fields"]["created"] = "last tuesday"
    export = tmp_path / "ops.json"
    export.write_text(json.dumps(page), "utf-8")

    strict = run("report", "-r", RULES, "-i", str(export), "--now", NOW, "-f", "json")
    assert strict.exit_code == 2
    assert "1 item left out" in strict.stderr
    document = json.loads(strict.stdout)  # the report is still whole
    assert document["total"]["items"] == len(page["issues"]) - 1
    assert [s["key"] for s in document["skipped"]] == [page["issues"][2]["key"]]
    lenient = run(
        "report", "-r", RULES, "-i", str(export), "--now", NOW, "-f", "json", "--keep-going"
    )
    assert lenient.exit_code == 0
    assert lenient.stdout == strict.stdout


def test_two_processes_give_the_same_report_as_one(run) -> None:  # type: ignore[no-untyped-def]
    since = ("--since", "2026-06-01T00:00:00Z")
    one = run("report", "-r", RULES, "-i", EXPORT, "--now", NOW, "-f", "json", "-j", "1", *since)
    two = run("report", "-r", RULES, "-i", EXPORT, "--now", NOW, "-f", "json", "-j", "2", *since)
    assert one.exit_code == two.exit_code == 0
    assert json.loads(two.stdout) == json.loads(one.stdout)
    assert json.loads(one.stdout)["total"]["items"] < 406  # the period filter reached the workers


def test_a_live_sync_leaves_the_figures_report_c_shows(run, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """End to end on the Jira double: ``bridge sync`` writes each item's evaluation to the
    store; ``bridge report -c`` then gives the figures an export of the same issues gives."""
    from bridge.testing.jira import JiraDouble
    from tests.preview.test_plan import TOKEN_ENV, _config, _save_export, _seed

    monkeypatch.setenv(TOKEN_ENV, "token")
    monkeypatch.delenv("BRIDGE_DATABASE_URL", raising=False)
    with JiraDouble() as site:
        _seed(site)
        _save_export(site, tmp_path / "export")
        config = _config(tmp_path, site.url)
        config.write_text(config.read_text() + f"store: sqlite://{tmp_path / 'bridge.db'}\n")
        synced = run("sync", "-c", str(config), "-s", "jira", "--now", NOW)
        assert synced.exit_code == 0, synced.output

    stored = run("report", "-c", str(config), "-s", "jira", "--now", NOW, "-f", "json")
    assert stored.exit_code == 0, stored.output
    exported = run(
        "report", "-r", RULES, "-i", str(tmp_path / "export"), "--now", NOW, "-f", "json"
    )
    from_store, from_export = json.loads(stored.stdout), json.loads(exported.stdout)
    assert from_store["total"]["items"] == 24
    assert from_store["total"] == from_export["total"]
    assert from_store["groups"] == from_export["groups"]


def test_the_rule_sets_warnings_are_said_at_their_place(run) -> None:  # type: ignore[no-untyped-def]
    warned = REPO / "tests" / "data" / "rules" / "warnings"
    result = run("report", "-r", str(warned), "-i", EXPORT, "--now", NOW, "-f", "json")
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr
    assert f"{warned}" in result.stderr
    assert "ignore_case" in result.stderr


def test_a_file_written_with_o_gets_the_usual_mode_and_keeps_an_existing_ones(
    run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import os

    def report_into(path: Path) -> int:
        args = ["-r", RULES, "-i", EXPORT, "--now", NOW, "-f", "csv", "-o", str(path)]
        return int(run("report", *args).exit_code)

    mask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.csv"
        assert report_into(fresh) == 0
        assert fresh.stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.csv"
        kept.write_text("old")
        kept.chmod(0o640)
        assert report_into(kept) == 0
        assert kept.stat().st_mode & 0o777 == 0o640
        assert kept.read_text().startswith("grouped_by,")
    finally:
        os.umask(mask)


def test_without_a_period_no_item_is_tested_and_the_figures_are_those_of_an_open_one(  # type: ignore[no-untyped-def]
    run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test on every item made the pass that learns status categories map every item
    (a fifth of a report's time on 100,000 items); with no --since/--until there is none."""
    from bridge.cli import report_cmd

    seen: list[object] = []
    real = report_cmd.evaluate_stream

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["keep"])
        return real(*args, **kwargs)

    monkeypatch.setattr(report_cmd, "evaluate_stream", spy)
    plain = _json(run)
    everything = _json(run, "--since", "1970-01-01T00:00:00Z")
    assert seen[0] is None
    assert seen[1] is not None
    assert plain["total"] == everything["total"]
    assert plain["groups"] == everything["groups"]


@pytest.mark.parametrize(
    ("output_format", "group"),
    [("json", ()), ("csv", ()), ("table", ()), ("json", ("-g", "labels")), ("csv", ("-g", "team"))],
)
def test_two_processes_adding_up_their_files_give_the_bytes_one_gives(  # type: ignore[no-untyped-def]
    run, output_format: str, group: tuple[str, ...]
) -> None:
    """With --jobs each worker adds its files' items up and the report merges the tallies:
    the same figures to the last digit, whatever the form and the grouping."""
    common = ("report", "-r", RULES, "-i", EXPORT, "--now", NOW, "-f", output_format, *group)
    one, two = run(*common, "-j", "1"), run(*common, "-j", "2")
    assert one.exit_code == two.exit_code == 0
    assert two.stdout == one.stdout


def test_with_two_processes_the_items_left_out_are_named_in_order(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("ops-page-1.json", "ops-page-2.json"):
        page = json.loads((REPO / "examples/export/jira" / name).read_text("utf-8"))
        for index in (3, 1):
            page["issues"][index]["fields"]["created"] = "last tuesday"
        (tmp_path / name).write_text(json.dumps(page), "utf-8")
    common = ("report", "-r", RULES, "-i", str(tmp_path), "--now", NOW, "-f", "json")
    one, two = run(*common, "-j", "1"), run(*common, "-j", "2")
    assert one.exit_code == two.exit_code == 2
    assert two.stdout == one.stdout
    assert len(json.loads(two.stdout)["skipped"]) == 4
