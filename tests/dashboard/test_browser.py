"""The dashboard as a reader meets it: in headless Chromium, served over HTTP.

The page must load clean (no console error, no request beyond itself), draw every chart,
say what ``bridge report -f json`` says, recompute every figure when filtered, and show a
hostile ticket's text as text. Figures are read from the ``data-value`` each one carries
(its exact value as JSON), so the comparison with the report is exact, not to the digits
shown.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry
from werkzeug.serving import make_server

from bridge.cli import cli
from bridge.config import load_config
from bridge.dashboard import DashboardSnapshot, render_dashboard
from bridge.kpi.portfolio import Evaluated, GroupFigures, group_key, portfolio
from bridge.plugins import load_registry, make_plugin_manager
from bridge.service.app import STATUS_TOKEN_ENV, create_app
from bridge.service.runtime import Runtime
from bridge.store import open_store
from tests.dashboard.conftest import EXPORT, HOSTILE, NOW, RULES, Evaluation
from tests.service.fake import Plugin

CHARTS = (
    "mix-project",
    "mix-team",
    "mix-service",
    "sla",
    "csat",
    "csat-ratings",
    "tco",
    "evm",
    "slip",
    "trend-items",
    "trend-sla",
)
# The headline figures every page must carry, named as in the report's JSON.
REQUIRED = {
    "items",
    "sla_attainment_pct",
    "sla_cycles",
    "csat_top2_pct",
    "csat_mean",
    "csat_n",
    "tco_total",
    "spi",
    "cpi",
}
DEADLINE_MS = 30_000


@dataclass
class Opened:
    page: Any
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def renders(self) -> int:
        return int(self.page.evaluate("document.body.dataset.renders || '0'"))

    def change(self, action: Callable[[], None]) -> None:
        """Do ``action`` and wait until the page has redrawn for it."""
        before = self.renders()
        action()
        # A function, not an expression: Playwright evals expressions, which the page's
        # Content-Security-Policy forbids.
        self.page.wait_for_function(
            "n => Number(document.body.dataset.renders) > n", arg=before, timeout=DEADLINE_MS
        )

    def figures(self, scope: str = "#headline") -> dict[str, Any]:
        return {
            name: json.loads(value)
            for name, value in self.page.eval_on_selector_all(
                f"{scope} [data-figure][data-value]",
                "els => els.map(e => [e.dataset.figure, e.dataset.value])",
            )
        }

    def table(self, section: str) -> dict[str, dict[str, Any]]:
        """The figures of each row of a section's table(s), by group ("" for the total)."""
        rows = self.page.eval_on_selector_all(
            f'[data-body="{section}"] tr[data-group]',
            """rows => rows.map(r => [r.dataset.group, Object.fromEntries(
                [...r.querySelectorAll('[data-figure]')].map(
                    c => [c.dataset.figure, JSON.parse(c.dataset.value)]))])""",
        )
        return dict(rows)


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Opened]]:
    contexts: list[Any] = []

    def open_(url: str, **options: Any) -> Opened:
        context = browser.new_context(viewport={"width": 1366, "height": 900}, **options)
        contexts.append(context)
        opened = Opened(context.new_page())
        page = opened.page
        page.on(
            "console",
            lambda m: (
                opened.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        page.on("pageerror", lambda exc: opened.problems.append(f"page error: {exc}"))
        page.on("dialog", lambda d: (opened.problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("request", lambda r: opened.requests.append(r.url))
        page.goto(url)
        page.wait_for_function("() => document.body.dataset.renders === '1'", timeout=DEADLINE_MS)
        return opened

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def page_url(evaluation: Evaluation, static_server: Callable[[str], str]) -> str:
    rule_set = evaluation.rule_set
    return static_server(
        render_dashboard(
            evaluation.evaluated, now=NOW, rule_set=rule_set.digest, currency=rule_set.kpi.currency
        )
    )


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """``bridge report -f json`` of the bundled export (the hostile edits change no figure)."""
    args = ["report", "-f", "json", "--now", "2026-11-02T00:00:00Z"]
    args += ["-r", str(RULES), "-i", str(EXPORT)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def expected(figures: dict[str, Any]) -> dict[str, Any]:
    """A report row's figures under the names the page uses."""
    flat = {k: v for k, v in figures.items() if k not in ("group", "work_mix", "low_sample")}
    for work_type, cell in figures["work_mix"].items():
        flat[work_type] = cell["count"]
    return flat


def assert_same(page: dict[str, Any], report_row: dict[str, Any]) -> None:
    """Every figure both have is equal — exactly: the page sums as the report does."""
    want = expected(report_row)
    shared = page.keys() & want.keys()
    assert shared >= REQUIRED, f"the page lacks {REQUIRED - shared}"
    mismatched = {k: (page[k], want[k]) for k in shared if page[k] != want[k]}
    assert not mismatched, f"page vs report: {mismatched}"


def test_the_page_loads_clean_and_draws_every_chart(
    open_page: Callable[..., Opened], page_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    opened = open_page(page_url)
    page = opened.page

    assert opened.problems == []
    assert opened.requests == [page_url], "the page fetched something: it must be self-contained"
    marks = {
        name: page.locator(f'[data-chart="{name}"] svg.chart .mark').count() for name in CHARTS
    }
    assert all(marks.values()), f"charts without marks: {marks}"
    # Each chart has its numbers beside it.
    for section in ("mix", "sla", "csat", "tco", "evm", "slip"):
        assert page.locator(f'[data-body="{section}"] table tbody tr').count() > 0, section
    # A legend explains every abbreviation the page uses.
    legend = page.locator("#glossary").inner_text()
    for term in ("SLA", "SPI", "CPI", "TCO", "CSAT", "CI"):
        assert f"{term}\t" in legend or f"{term}\n" in legend, term

    shots = tmp_path_factory.mktemp("dashboard-screenshots")
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
    assert (shots / "dashboard.png").stat().st_size > 10_000


def test_unfiltered_figures_are_the_reports(
    open_page: Callable[..., Opened], page_url: str, report: dict[str, Any]
) -> None:
    opened = open_page(page_url)

    assert_same(opened.figures(), report["total"])
    # Per service and per project, the tables say what the report's sections say.
    by_service = {row["group"]: row for row in report["groups"]["service"]}
    by_project = {row["group"]: row for row in report["groups"]["project"]}
    sla, tco = opened.table("sla"), opened.table("tco")
    csat, evm = opened.table("csat"), opened.table("evm")
    for name, row in by_service.items():
        assert sla[name]["sla_attainment_pct"] == row["sla_attainment_pct"], name
        assert sla[name]["sla_cycles"] == row["sla_cycles"], name
        if row["tco_total"] is not None:
            assert tco[name]["tco_total"] == row["tco_total"], name
        if row["csat_n"]:
            assert csat[name]["csat_top2_pct"] == row["csat_top2_pct"], name
            assert csat[name]["csat_mean"] == row["csat_mean"], name
            assert csat[name]["csat_n"] == row["csat_n"], name
    for name, row in by_project.items():
        assert (evm[name]["spi"], evm[name]["cpi"]) == (row["spi"], row["cpi"]), name
    assert len([p for p in by_project.values() if p["spi"] is not None]) == (
        opened.page.locator('[data-chart="evm"] .mark').count()
    )


def _pick(evaluated: list[Evaluated], by: str, want: Callable[[GroupFigures], bool]) -> str:
    rows, _ = portfolio(evaluated, by)
    return next(row.group for row in rows if want(row))


def test_filters_recompute_every_figure(
    open_page: Callable[..., Opened], page_url: str, evaluation: Evaluation
) -> None:
    evaluated = evaluation.evaluated
    opened = open_page(page_url)
    page = opened.page
    everything = opened.figures()

    # A project with SLA clocks, then one with SPI and CPI: the page's figures are its
    # `bridge report -g project` row.
    by_project = {row.group: row for row in portfolio(evaluated, "project")[0]}
    for project in (
        _pick(evaluated, "project", lambda r: r.sla_cycles > 0 and r.csat_n > 0),
        _pick(evaluated, "project", lambda r: r.spi is not None and r.cpi is not None),
    ):
        opened.change(lambda p=project: page.select_option('[data-filter="project"]', p))
        figures = opened.figures()
        assert figures != everything
        assert_same(figures, by_project[project].as_dict())
        assert "project = " + project in page.locator('[data-figure="filter-state"]').inner_text()

    # Source, service and period together: the report of the same items.
    service = _pick(evaluated, "service", lambda r: r.sla_cycles > 0)
    source = next(e.item.system for e in evaluated if group_key("service")(e.item) == service)
    start, end = "2026-03-01", "2026-08-31"

    def kept(e: Evaluated) -> bool:
        created = e.item.created
        return (
            e.item.system == source
            and group_key("service")(e.item) == service
            and created is not None
            and datetime(2026, 3, 1, tzinfo=UTC) <= created < datetime(2026, 9, 1, tzinfo=UTC)
        )

    opened.change(lambda: page.select_option('[data-filter="project"]', ""))
    opened.change(lambda: page.select_option('[data-filter="source"]', source))
    opened.change(lambda: page.select_option('[data-filter="service"]', service))
    opened.change(lambda: page.fill('[data-filter="from"]', start))
    opened.change(lambda: page.fill('[data-filter="to"]', end))
    subset = [e for e in evaluated if kept(e)]
    assert 0 < len(subset) < len(evaluated)
    assert_same(opened.figures(), portfolio(subset, None)[1].as_dict())
    assert page.locator('[data-body="items"] tbody tr').count() == len(subset)

    # "Show all" brings every figure back.
    opened.change(lambda: page.click('[data-filter="reset"]'))
    assert opened.figures() == everything
    assert opened.problems == []


def test_ticket_text_shows_as_text_and_only_web_links_link(
    open_page: Callable[..., Opened], page_url: str, evaluation: Evaluation
) -> None:
    opened = open_page(page_url)
    page = opened.page
    page.click("#items summary")  # the item table is folded away

    row = page.locator(f'[data-body="items"] tr[data-key="{evaluation.hostile_key}"]')
    assert row.locator("td.summary").text_content() == HOSTILE
    listed = page.locator(f'[data-body="sla"] li[data-key="{evaluation.hostile_key}"]')
    assert HOSTILE[:20] in listed.inner_text()
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 2  # the data and the page's own code
    assert opened.problems == []  # no alert() dialog, no CSP refusal

    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
    assert hrefs
    assert all(h.startswith(("https://", "http://")) for h in hrefs)
    bad = page.locator(f'[data-body="items"] tr[data-key="{evaluation.bad_link_key}"]')
    assert bad.locator("a").count() == 0
    assert bad.locator("td").first.inner_text() == evaluation.bad_link_key


def test_printing_hides_the_controls_and_keeps_the_charts(
    open_page: Callable[..., Opened], page_url: str
) -> None:
    opened = open_page(page_url)
    page = opened.page

    page.emulate_media(media="print")
    assert not page.locator("#filters").is_visible()
    assert page.locator('[data-figure="filter-state"]').inner_text() == "Showing every item"
    assert page.locator('[data-chart="sla"] svg.chart').is_visible()
    assert len(page.pdf(format="A4")) > 10_000


@pytest.mark.parametrize("size", [0, 1], ids=["no-items", "one-item"])
def test_a_portfolio_with_almost_nothing_in_it_loads_clean(
    open_page: Callable[..., Opened],
    static_server: Callable[[str], str],
    evaluation: Evaluation,
    size: int,
) -> None:
    opened = open_page(
        static_server(
            render_dashboard(evaluation.evaluated[:size], now=NOW, rule_set="d", currency=None)
        )
    )

    assert opened.problems == []
    assert_same(opened.figures(), portfolio(evaluation.evaluated[:size], None)[1].as_dict())
    if size == 0:
        assert opened.page.locator("svg.chart .mark").count() == 0
        assert opened.page.locator("svg.chart .empty").count() == len(CHARTS)


def test_the_service_serves_the_same_page_under_its_policy(
    open_page: Callable[..., Opened],
    evaluation: Evaluation,
    report: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``bridge serve``'s ``/dashboard`` over real HTTP, with the status token, under the
    Content-Security-Policy header: the page's own script still runs, and says the same."""
    token = "dashboard-token-0123456789abcdef"
    monkeypatch.setenv(STATUS_TOKEN_ENV, token)
    (tmp_path / "bridge.yaml").write_text(
        f"rules: {RULES}\nsources:\n  - {{name: desk, connector: fake}}\n"
    )
    registry = load_registry(make_plugin_manager(load_entrypoints=False, extra_plugins=[Plugin()]))

    class Source:
        def evaluations(self) -> DashboardSnapshot:
            rule_set = evaluation.rule_set
            return DashboardSnapshot(
                evaluation.evaluated, NOW, rule_set.digest, rule_set.kpi.currency
            )

    runtime = Runtime(
        load_config(tmp_path / "bridge.yaml", registry),
        store=open_store(f"sqlite://{tmp_path / 's.db'}"),
        registry=registry,
    )
    runtime.dashboard = Source()  # type: ignore[attr-defined]
    http = make_server(
        "127.0.0.1", 0, create_app(runtime, lambda *job: None, metrics=CollectorRegistry())
    )
    thread = threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{http.server_port}/dashboard"
        opened = open_page(url, extra_http_headers={"Authorization": f"Bearer {token}"})
        assert opened.problems == []
        assert_same(opened.figures(), report["total"])
    finally:
        http.shutdown()
        thread.join()
        runtime.close()
