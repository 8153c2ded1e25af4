"""``bridge report``: portfolio KPIs across an export — work mix, SLA attainment, CSAT, TCO by
service, SPI and CPI by project.

Group names come from the data and are printed as text, never as markup; a figure the items
make too large to add up is null with a reason, and items left out are listed (stderr, and
``skipped`` in the JSON), so the report says what it does not cover.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import math
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
from click.exceptions import Exit
from rich.console import Console
from rich.table import Table

from bridge.cli import (
    EXIT_USAGE,
    csv_cell,
    fail,
    handle_errors,
    json_text,
    plain,
    printable,
    stderr,
)
from bridge.cli.options import (
    INPUT_OPTION,
    JOBS_OPTION,
    KEEP_GOING_OPTION,
    NOW_OPTION,
    RULES_OPTION,
    config_from,
    export_formats,
    format_option,
    instant_option,
    now_from,
    paths_or_bundled,
    warn_rules,
    warn_skipped,
)
from bridge.cli.output import OUTPUT_OPTION, console_for, write_output
from bridge.cli.progress import progress
from bridge.connectors import SkippedRecord
from bridge.kpi.portfolio import Evaluated, GroupFigures, ReportTally
from bridge.kpi.result import iso
from bridge.model import FIELD_TYPES, WORK_TYPES, WorkItem
from bridge.pipeline import Result, Tallied, evaluate_stream, without_raw
from bridge.rules.loader import load_rules

if TYPE_CHECKING:
    from bridge.rules.ast import RuleSet

__all__ = ["report"]


_GROUPS = ("project", "service", *FIELD_TYPES)


def _check_group(by: str | None) -> None:
    if by is None or by.startswith("raw.") or by in FIELD_TYPES:
        return
    close = difflib.get_close_matches(by, _GROUPS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise fail(
        f"--group-by: unknown field {by!r}; {hint}use project, service, a field "
        f"({', '.join(FIELD_TYPES)}) or raw.<path>"
    )


@click.command()
@RULES_OPTION
@INPUT_OPTION
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Report from the store of this bridge.yaml (the latest evaluation of every item "
    "synced), instead of an export. Pulls nothing.",
)
@click.option(
    "--source",
    "-s",
    "sources",
    multiple=True,
    help="With --config: only this source (repeatable; default: all).",
)
@NOW_OPTION
@click.option(
    "--group-by",
    "-g",
    "group_by",
    metavar="project|service|FIELD",
    help="One table with every figure per value of this field (labels and components: "
    "one group per label; an item with several counts in each).",
)
@click.option("--since", metavar="ISO", help="Only items created at or after this instant.")
@click.option("--until", metavar="ISO", help="Only items created before this instant.")
@format_option("table", "json", "csv", "html")
@OUTPUT_OPTION
@JOBS_OPTION
@KEEP_GOING_OPTION
@handle_errors
def report(
    rules: tuple[str, ...],
    inputs: tuple[str, ...],
    config_path: str | None,
    sources: tuple[str, ...],
    now_text: str | None,
    group_by: str | None,
    since: str | None,
    until: str | None,
    output_format: str,
    output: str | None,
    jobs: int | None,
    keep_going: bool,
) -> None:
    """Portfolio KPIs: the work mix, SLA attainment, CSAT and TCO by service, SPI and CPI by
    project (KPIS.md, "Portfolio"), from an export or, with --config, from the store.
    Ratios are ratios of sums; every ratio says what it counts."""
    _check_group(group_by)
    if config_path is not None and (rules or inputs):
        raise fail("--config reports from the store; leave out --rules and --input")
    if sources and config_path is None:
        raise fail("--source needs --config (the sources are bridge.yaml's)")
    if config_path is not None and group_by is not None and group_by.startswith("raw."):
        raise fail(
            "--group-by raw.<path>: the store keeps bridge's fields, not the system's whole "
            "record; group by a field, or report from an export (-i)"
        )
    now = now_from(now_text)
    start, end = instant_option("--since", since), instant_option("--until", until)
    # Without a period every item is kept: no test, so the pass that learns status
    # categories reads status fields alone instead of mapping every item to test it.
    keep = None if start is None and end is None else functools.partial(created_between, start, end)
    html = output_format == "html"
    keep_raw = group_by is not None and group_by.startswith("raw.")
    kept: list[Evaluated] = []
    results: Iterable[Result]
    if config_path is not None:
        rule_set, found, skipped, span = _from_store(config_path, sources, keep)
        results = found
    else:
        rule_paths, input_paths = paths_or_bundled(rules, inputs)
        evaluation = evaluate_stream(
            rule_paths,
            input_paths,
            now,
            export_formats(),
            keep=keep,
            jobs=jobs,
            keep_raw=keep_raw,
            # The page shows every item; the other forms only add them up.
            tally=None if html else functools.partial(report_tally, group_by),
        )
        rule_set, results, skipped, span = evaluation.rule_set, evaluation.results, [], None
    warn_rules(rule_set)
    currency = rule_set.kpi.currency or ""
    tally = report_tally(group_by, rule_set)
    # One pass, nothing kept per item but the page's rows: memory stays flat in the export.
    with progress("items evaluated") as advance:
        for result in results:
            if isinstance(result, Evaluated):
                tally.add(result)
                if html:  # the page needs every item; their records would weigh most
                    kept.append(
                        result
                        if keep_raw
                        else Evaluated(without_raw(result.item), result.decision, result.kpis)
                    )
                advance(1)
            elif isinstance(result, Tallied):
                tally.merge(cast(ReportTally, result.tally))
                advance(result.tally.items)
            elif isinstance(result, SkippedRecord):
                skipped.append(result)
    warn_skipped(skipped)
    sections = {name: section.result() for name, (section, _) in tally.sections.items()}
    overall = tally.everything.result()[1]
    if output_format == "html":
        write_output(_html(kept, now, rule_set.digest, rule_set.kpi.currency), output)
    elif output_format == "json":
        document = {
            "now": iso(now),
            "rule_set": rule_set.digest,
            "currency": rule_set.kpi.currency,
            "from": "store" if config_path is not None else "export",
            "evaluated": span,
            "total": overall.as_dict(),
            "groups": {
                name: [row.as_dict() for row in rows] for name, (rows, _) in sections.items()
            },
            "missing": _not_finite(sections, overall),
            "skipped": [{"key": s.key, "where": s.where, "problem": s.problem} for s in skipped],
        }
        write_output(json_text(document), output)
    elif output_format == "csv":
        write_output(_csv(sections, overall), output)
    else:
        with console_for(output) as console:
            _print(console, sections, overall, now, rule_set.digest, currency, group_by, span)
    if skipped:
        count = len(skipped)
        stderr.print(
            f"[yellow]{count} item{'s' if count != 1 else ''} left out[/] (named above); the "
            "figures cover the others" + ("" if keep_going else "; --keep-going exits 0"),
            highlight=False,
        )
        if not keep_going:
            raise Exit(EXIT_USAGE)


def _html(evaluated: list[Evaluated], now: datetime, digest: str, currency: str | None) -> str:
    from bridge.dashboard import render_dashboard  # noqa: PLC0415 - only for -f html

    return render_dashboard(evaluated, now=now, rule_set=digest, currency=currency)


def report_tally(group_by: str | None, rule_set: RuleSet) -> ReportTally:
    """The report's empty running figures (module level: ``--jobs`` workers make their own
    from it)."""
    return ReportTally(group_by, min_sample=rule_set.kpi.csat_min_sample)


def created_between(start: datetime | None, end: datetime | None, item: WorkItem) -> bool:
    """``--since``/``--until``: a module-level function, so the worker processes of
    ``--jobs`` can take it."""
    created = item.created
    return (start is None or (created is not None and created >= start)) and (
        end is None or (created is not None and created < end)
    )


def _from_store(
    config_path: str, sources: tuple[str, ...], keep: Callable[[WorkItem], bool] | None
) -> tuple[RuleSet, list[Evaluated], list[SkippedRecord], dict[str, str | None]]:
    """The latest evaluation of every item the store keeps, with the span of their
    evaluation times: a report from the store says how fresh it is."""
    from bridge.evaluations import read_stored  # noqa: PLC0415
    from bridge.plugins import installed_operators  # noqa: PLC0415
    from bridge.store import open_store, sqlite_path, store_url  # noqa: PLC0415

    config = config_from(config_path)
    for name in sources:
        config.source(name)  # an unknown source is a located error before anything opens
    rule_set = load_rules(config.rules, installed_operators())
    url = store_url(config.store)
    path = sqlite_path(url)
    if path is not None and not Path(path).exists():
        raise fail(
            f"the store {path} does not exist yet: run bridge sync -c {config_path} "
            "(or bridge worker) first, or report from an export with -i"
        )
    store = open_store(url)
    try:
        counts = store.count_evaluations()
        total = sum(n for name, n in counts.items() if not sources or name in sources)
        with progress("items read from the store", total) as advance:
            stored = read_stored(store, sources, keep=keep, advance=advance)
    finally:
        store.close()
    skipped = [
        SkippedRecord(key, f"its stored evaluation: {why}", source)
        for source, key, why in stored.unreadable
    ]
    span = {"first": iso(stored.first), "last": iso(stored.last)}
    return rule_set, stored.evaluated, skipped, span


_COLUMNS = (
    "items",
    "project",
    "service",
    "unclassified",
    "sla_attainment_pct",
    "sla_clocks",
    "sla_items",
    "csat_top2_pct",
    "csat_top2_ci_low",
    "csat_top2_ci_high",
    "csat_mean",
    "csat_n",
    "low_sample",
    "tco_total",
    "tco_labour",
    "tco_other",
    "spi",
    "spi_items",
    "cpi",
    "cpi_items",
)

# Rounded for people in CSV and tables (JSON keeps every digit): percentages to a tenth,
# ratios and means to a hundredth, money to the cent.
_DIGITS = {
    "sla_attainment_pct": 1,
    "csat_top2_pct": 1,
    "csat_top2_ci_low": 1,
    "csat_top2_ci_high": 1,
    "csat_mean": 2,
    "tco_total": 2,
    "tco_labour": 2,
    "tco_other": 2,
    "spi": 2,
    "cpi": 2,
}

LEGEND = (
    "SLA attainment = met ÷ completed SLA clocks. It counts clocks, not items: an item has "
    "one clock per SLA (time to first response, time to resolution...) and cycle.",
    "CSAT = customer satisfaction (ratings 1-5); top-2 = share of ratings 4 or 5, with its "
    "95 % confidence interval (Wilson); n = ratings; mean = mean rating.",
    "TCO = total cost of ownership of service work = labour (hours × rate) + other costs.",
    "SPI = schedule performance index = Σ EV ÷ Σ PV; CPI = cost performance index = Σ EV ÷ "
    "Σ AC (EV earned value, PV planned value, AC actual cost), over the project items that "
    "have both; above 1 is ahead of schedule / under budget.",
    "— = no item of the group has the inputs (no completed clock, no rating, no cost, no "
    "earned value); the JSON says so per item under 'missing'.",
)


def _not_finite(
    sections: dict[str, tuple[list[GroupFigures], GroupFigures]], overall: GroupFigures
) -> list[dict[str, str]]:
    """The figures that are not finite numbers (sums of items' figures near 1e308 overflow),
    with why: JSON shows them as null, as KPIS.md has a KPI that cannot be computed."""
    missing = []
    labelled = [
        (name, row.group if row is not total else "total", row)
        for name, (rows, total) in sections.items()
        for row in [*rows, total]
    ]
    for grouped_by, group, row in [*labelled, ("", "all items", overall)]:
        for figure, value in row.as_dict().items():
            if isinstance(value, float) and not math.isfinite(value):
                missing.append(
                    {
                        "grouped_by": grouped_by,
                        "group": group,
                        "figure": figure,
                        "reason": f"not a finite number ({value}): the items' figures are "
                        "too large to add up",
                    }
                )
    return missing


def _flat(row: GroupFigures) -> dict[str, Any]:
    data = row.as_dict()
    for work_type in WORK_TYPES:
        data[work_type] = row.work_mix[work_type]["count"]
    data["sla_clocks"] = row.sla_cycles
    low, high = row.csat_top2_ci or (None, None)
    data["csat_top2_ci_low"], data["csat_top2_ci_high"] = low, high
    for name, digits in _DIGITS.items():
        value = data[name]
        if isinstance(value, float) and math.isfinite(value):
            data[name] = round(value, digits)
    return data


def _csv(
    sections: dict[str, tuple[list[GroupFigures], GroupFigures]], overall: GroupFigures
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["grouped_by", "group", *_COLUMNS])
    for name, (rows, _) in sections.items():
        for row in rows:
            data = _flat(row)
            writer.writerow(
                [csv_cell(name), csv_cell(row.group), *(csv_cell(data[c]) for c in _COLUMNS)]
            )
    data = _flat(overall)
    writer.writerow(["", "all items", *(csv_cell(data[c]) for c in _COLUMNS)])
    return buffer.getvalue()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _attainment(row: GroupFigures) -> str:
    if not row.sla_cycles:
        return "—"
    items = f"{row.sla_items} item{'s' if row.sla_items != 1 else ''}"
    return f"{_pct(row.sla_attainment_pct)} of {row.sla_cycles} clocks ({items})"


def _csat(row: GroupFigures) -> str:
    if row.csat_n == 0 or row.csat_mean is None:
        return "—"
    text = f"{_pct(row.csat_top2_pct)}"
    if row.csat_top2_ci is not None:
        low, high = row.csat_top2_ci
        text += f" [dim]({low:.0f}–{high:.0f}%)[/]"
    return f"{text} · {row.csat_mean:.2f} (n={row.csat_n})"


def _tco(row: GroupFigures) -> str:
    if row.tco_total is None:
        return "—"
    parts = _num(row.tco_total, 0)
    if row.tco_labour is not None or row.tco_other is not None:
        parts += f" [dim]({_num(row.tco_labour, 0)} + {_num(row.tco_other, 0)})[/]"
    return parts


def _index(value: float | None, items: int) -> str:
    return "—" if value is None else f"{value:.2f} [dim]({items})[/]"


def _print(
    console: Console,
    sections: dict[str, tuple[list[GroupFigures], GroupFigures]],
    overall: GroupFigures,
    now: datetime,
    digest: str,
    currency: str,
    group_by: str | None,
    span: dict[str, str | None] | None,
) -> None:
    caption = f"rule set {digest}"
    if span is not None:
        caption += f" · from the store, evaluated {span['first'] or '—'} to {span['last'] or '—'}"
    mix = Table(
        title=f"bridge report — work mix at {iso(now)}",
        caption=caption,
        header_style="bold",
    )
    for column in ("work type", "items", "share"):
        mix.add_column(column, justify="right" if column != "work type" else "left")
    for work_type in WORK_TYPES:
        cell = overall.work_mix[work_type]
        mix.add_row(work_type, str(cell["count"]), f"{100 * cell['share']:.1f}%")
    mix.add_row("[bold]total[/]", str(overall.items), "")
    console.print(mix)
    money = f"TCO {currency} (labour + other)" if currency else "TCO (labour + other)"
    single = group_by is not None
    for name, (rows, total) in sections.items():
        title = f"by {plain(name)}"
        if name in ("labels", "components"):
            title += " (an item with several counts in each)"
        table = Table(title=title, header_style="bold")
        # The group names are what the reader looks for: they keep their width (up to 60)
        # and the figures' columns wrap instead.
        longest = max((len(printable(row.group)) for row in rows), default=5)
        table.add_column(plain(name), overflow="fold", min_width=min(60, max(5, longest)))
        table.add_column("items", justify="right")
        show_service = single or name == "service"
        show_project = single or name == "project"
        if single:
            table.add_column("project / service / unclassified", justify="right")
        if show_service:
            table.add_column("SLA attainment", justify="right")
            table.add_column("CSAT top-2 (95% CI) · mean", justify="right")
            table.add_column(money, justify="right")
        if show_project:
            table.add_column("SPI (items)", justify="right")
            table.add_column("CPI (items)", justify="right")
        for row in [*rows, total]:
            label = "[bold]total[/]" if row is total else plain(row.group)
            cells = [label, str(row.items)]
            if single:
                cells.append(" / ".join(str(row.work_mix[w]["count"]) for w in WORK_TYPES))
            if show_service:
                cells += [_attainment(row), _csat(row), _tco(row)]
            if show_project:
                cells += [_index(row.spi, row.spi_items), _index(row.cpi, row.cpi_items)]
            table.add_row(*cells)
        console.print(table)
    for line in LEGEND:
        console.print(f"[dim]{line}[/]", highlight=False)
