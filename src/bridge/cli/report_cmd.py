"""``bridge report``: portfolio KPIs across an export — work mix, SLA attainment, CSAT, TCO by
service, SPI and CPI by project.

Group names come from the data and are printed as text, never as markup; a figure the items
make too large to add up is null with a reason, and items left out are listed (stderr, and
``skipped`` in the JSON), so the report says what it does not cover.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from datetime import datetime
from typing import Any

import click
from rich.table import Table

from bridge.cli import csv_cell, fail, handle_errors, json_text, plain, stdout
from bridge.cli.options import (
    INPUT_OPTION,
    NOW_OPTION,
    RULES_OPTION,
    evaluate_export,
    format_option,
    instant_option,
    now_from,
    paths_or_bundled,
    warn_skipped,
)
from bridge.kpi.portfolio import GroupFigures, portfolio
from bridge.kpi.result import iso
from bridge.model import FIELD_TYPES, WORK_TYPES, WorkItem

__all__ = ["report"]


def _check_group(by: str | None) -> None:
    if by is None or by.startswith("raw.") or by in FIELD_TYPES:
        return
    raise fail(
        f"--group-by: unknown field {by!r}; use project, service, a field "
        f"({', '.join(FIELD_TYPES)}) or raw.<path>"
    )


@click.command()
@RULES_OPTION
@INPUT_OPTION
@NOW_OPTION
@click.option(
    "--group-by",
    "-g",
    "group_by",
    metavar="project|service|FIELD",
    help="One table with every figure per value of this field.",
)
@click.option("--since", metavar="ISO", help="Only items created at or after this instant.")
@click.option("--until", metavar="ISO", help="Only items created before this instant.")
@format_option("table", "json", "csv")
@handle_errors
def report(
    rules: tuple[str, ...],
    inputs: tuple[str, ...],
    now_text: str | None,
    group_by: str | None,
    since: str | None,
    until: str | None,
    output_format: str,
) -> None:
    """Portfolio KPIs: the work mix, SLA attainment, CSAT and TCO by service, SPI and CPI by
    project (KPIS.md, "Portfolio"). Ratios are ratios of sums."""
    _check_group(group_by)
    rule_paths, input_paths = paths_or_bundled(rules, inputs)
    now = now_from(now_text)
    start = instant_option("--since", since)
    end = instant_option("--until", until)

    def in_period(item: WorkItem) -> bool:
        created = item.created
        return (start is None or (created is not None and created >= start)) and (
            end is None or (created is not None and created < end)
        )

    rule_set, evaluated, skipped = evaluate_export(rule_paths, input_paths, now, in_period)
    warn_skipped(skipped)
    min_sample = rule_set.kpi.csat_min_sample
    currency = rule_set.kpi.currency or ""
    if group_by is not None:
        sections = {group_by: portfolio(evaluated, group_by, min_sample=min_sample)}
    else:
        sections = {
            "service": portfolio(
                [e for e in evaluated if e.decision.work_type == "service"],
                "service",
                min_sample=min_sample,
            ),
            "project": portfolio(
                [e for e in evaluated if e.decision.work_type == "project"],
                "project",
                min_sample=min_sample,
            ),
        }
    overall = portfolio(evaluated, None, min_sample=min_sample)[1]
    if output_format == "json":
        document = {
            "now": iso(now),
            "rule_set": rule_set.digest,
            "currency": rule_set.kpi.currency,
            "total": overall.as_dict(),
            "groups": {
                name: [row.as_dict() for row in rows] for name, (rows, _) in sections.items()
            },
            "missing": _not_finite(sections, overall),
            "skipped": [{"key": s.key, "where": s.where, "problem": s.problem} for s in skipped],
        }
        sys.stdout.write(json_text(document))
    elif output_format == "csv":
        sys.stdout.write(_csv(sections, overall))
    else:
        _print(sections, overall, now, rule_set.digest, currency, group_by is not None)


_COLUMNS = (
    "items",
    "project",
    "service",
    "unclassified",
    "sla_attainment_pct",
    "sla_cycles",
    "csat_top2_pct",
    "csat_mean",
    "csat_n",
    "tco_total",
    "spi",
    "cpi",
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


def _csat(row: GroupFigures) -> str:
    if row.csat_n == 0:
        return "—"
    text = f"{_pct(row.csat_top2_pct)} · {row.csat_mean:.2f} (n={row.csat_n})"
    return text + " [yellow]low n[/]" if row.low_sample else text


def _print(
    sections: dict[str, tuple[list[GroupFigures], GroupFigures]],
    overall: GroupFigures,
    now: datetime,
    digest: str,
    currency: str,
    single: bool,
) -> None:
    mix = Table(
        title=f"bridge report — work mix at {iso(now)}",
        caption=f"rule set {digest}",
        header_style="bold",
    )
    for column in ("work type", "items", "share"):
        mix.add_column(column, justify="right" if column != "work type" else "left")
    for work_type in WORK_TYPES:
        cell = overall.work_mix[work_type]
        mix.add_row(work_type, str(cell["count"]), f"{100 * cell['share']:.1f}%")
    mix.add_row("[bold]total[/]", str(overall.items), "")
    stdout.print(mix)
    money = f"TCO ({currency})" if currency else "TCO"
    for name, (rows, total) in sections.items():
        table = Table(title=f"by {plain(name)}", header_style="bold")
        table.add_column(plain(name))
        table.add_column("items", justify="right")
        show_service = single or name == "service"
        show_project = single or name == "project"
        if single:
            table.add_column("project / service / unclassified", justify="right")
        if show_service:
            table.add_column("SLA attainment", justify="right")
            table.add_column("CSAT top-2 · mean", justify="right")
            table.add_column(money, justify="right")
        if show_project:
            table.add_column("SPI", justify="right")
            table.add_column("CPI", justify="right")
        for row in [*rows, total]:
            label = "[bold]total[/]" if row is total else plain(row.group)
            cells = [label, str(row.items)]
            if single:
                cells.append(" / ".join(str(row.work_mix[w]["count"]) for w in WORK_TYPES))
            if show_service:
                attainment = _pct(row.sla_attainment_pct)
                if row.sla_cycles:
                    attainment += f" of {row.sla_cycles}"
                cells += [attainment, _csat(row), _num(row.tco_total)]
            if show_project:
                cells += [_num(row.spi), _num(row.cpi)]
            table.add_row(*cells)
        stdout.print(table)
