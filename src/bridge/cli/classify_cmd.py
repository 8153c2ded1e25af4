"""``bridge classify``: run the rules over an export, no live system.

What an export holds is printed as text, never as markup (:func:`bridge.cli.plain`), and the
JSON and CSV stay parseable whatever it holds; an item that cannot be read or evaluated is
left out with a warning that names it and says why.
"""

from __future__ import annotations

import csv
import io
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from bridge.cli import (
    csv_cell,
    fail,
    handle_errors,
    json_text,
    json_value,
    plain,
    printable,
    stdout,
)
from bridge.cli.options import (
    INPUT_OPTION,
    NOW_OPTION,
    RULES_OPTION,
    evaluate_export,
    format_option,
    now_from,
    paths_or_bundled,
    warn_skipped,
)
from bridge.model import WORK_TYPES

if TYPE_CHECKING:
    from bridge.kpi.portfolio import Evaluated

__all__ = ["classify"]


@click.command()
@RULES_OPTION
@INPUT_OPTION
@NOW_OPTION
@format_option("table", "json", "csv")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to this file instead of standard output.",
)
@handle_errors
def classify(
    rules: tuple[str, ...],
    inputs: tuple[str, ...],
    now_text: str | None,
    output_format: str,
    output: str | None,
) -> None:
    """Classify every item of an export as project, service or unclassified work.

    Nothing is written to any ticketing system. With no options, runs the bundled rules
    over the bundled example export.
    """
    rule_paths, input_paths = paths_or_bundled(rules, inputs)
    now = now_from(now_text)
    rule_set, evaluated, skipped = evaluate_export(rule_paths, input_paths, now)
    warn_skipped(skipped)
    rows = [_row(e) for e in evaluated]
    if output_format == "table":
        _print_table(rows, now, rule_set.digest, output)
    elif output_format == "json":
        _write(json_text(rows), output)
    else:
        _write(_csv(rows), output)


def _row(evaluated: Evaluated) -> dict[str, Any]:
    item, decision, kpis = evaluated.item, evaluated.decision, evaluated.kpis
    return {
        "key": item.key,
        "system": item.system,
        "type": item.type,
        "status": item.status,
        "status_category": item.status_category,
        "project": item.project,
        "summary": item.summary,
        "work_type": decision.work_type,
        "phase": decision.phase,
        "rule": decision.rule,
        "kpis": kpis.values,
        "missing": kpis.missing,
    }


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"--output: cannot write {output}: {exc.strerror}") from None


_CSV_COLUMNS = (
    "key",
    "system",
    "type",
    "status",
    "status_category",
    "project",
    "work_type",
    "phase",
    "rule",
)


def _csv(rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    rows = list(rows)
    kpi_columns = sorted({name for row in rows for name in row["kpis"]})
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_CSV_COLUMNS, *(f"kpis.{printable(name)}" for name in kpi_columns)])
    for row in rows:
        writer.writerow(
            [
                *(csv_cell(row[c]) for c in _CSV_COLUMNS),
                *(csv_cell(row["kpis"].get(n)) for n in kpi_columns),
            ]
        )
    return buffer.getvalue()


def _key_figures(kpis: Mapping[str, Any]) -> str:
    """A few KPIs to scan the table by; the full set is in --format json."""
    parts: list[str] = []
    for name, label in (("evm.spi", "SPI"), ("evm.cpi", "CPI")):
        if isinstance(kpis.get(name), float):
            parts.append(f"{label} {kpis[name]:.2f}")
    if isinstance(kpis.get("schedule.slip_days"), int) and kpis["schedule.slip_days"]:
        parts.append(f"slip {kpis['schedule.slip_days']:+d}d")
    for name, value in kpis.items():
        if name.startswith("sla.") and name.endswith(".state") and value:
            style = {"breached": "red", "breaching": "red", "met": "green"}.get(value, "")
            short = plain("".join(word[:1] for word in name[4:-6].split("-")).upper())
            shown = plain(value)
            parts.append(f"{short}: [{style}]{shown}[/]" if style else f"{short}: {shown}")
    if isinstance(kpis.get("csat.rating"), float):
        parts.append(f"CSAT {kpis['csat.rating']:g}")
    return " · ".join(parts)


_WORK_STYLE = {"project": "cyan", "service": "magenta", "unclassified": "yellow"}


def _print_table(
    rows: list[dict[str, Any]], now: datetime, digest: str, output: str | None
) -> None:
    table = Table(
        title=f"bridge classify — {len(rows)} items at {json_value(now)}",
        caption=f"rule set {digest}",
        header_style="bold",
    )
    for column in ("key", "system", "type", "status", "work type", "phase", "rule"):
        table.add_column(column, overflow="fold")
    table.add_column("key figures", overflow="fold", ratio=1)
    for row in rows:
        style = _WORK_STYLE[row["work_type"]]
        table.add_row(
            plain(row["key"]),
            plain(row["system"]),
            plain(row["type"] or ""),
            plain(row["status"] or ""),
            f"[{style}]{row['work_type']}[/]",
            plain(row["phase"] or ""),
            plain(row["rule"]) if row["rule"] else "[dim](default)[/]",
            _key_figures(row["kpis"]),
        )
    counts = Counter(row["work_type"] for row in rows)
    total = len(rows) or 1
    summary = Table(title="summary", header_style="bold")
    summary.add_column("work type")
    summary.add_column("items", justify="right")
    summary.add_column("share", justify="right")
    for work_type in WORK_TYPES:
        summary.add_row(
            f"[{_WORK_STYLE[work_type]}]{work_type}[/]",
            str(counts[work_type]),
            f"{100 * counts[work_type] / total:.1f}%",
        )
    summary.add_row("[bold]total[/]", str(len(rows)), "")
    if output is None:
        stdout.print(table)
        stdout.print(summary)
        return
    from rich.console import Console  # noqa: PLC0415

    try:
        with open(output, "w", encoding="utf-8") as handle:
            console = Console(file=handle, width=160, no_color=True, emoji=False)
            console.print(table)
            console.print(summary)
    except OSError as exc:
        raise fail(f"--output: cannot write {output}: {exc.strerror}") from None
