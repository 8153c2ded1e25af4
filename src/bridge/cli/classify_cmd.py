"""``bridge classify``: run the rules over an export, no live system.

What an export holds is printed as text, never as markup (:func:`bridge.cli.plain`), and the
JSON and CSV stay parseable whatever it holds; an item that cannot be read or evaluated is
left out with a warning that names it and says why, and the run ends non-zero unless
``--keep-going`` says that is expected.

Output is written as the items are evaluated (:mod:`bridge.pipeline`): the JSON document, the
CSV rows and the table's lines leave as they are made, so a million-item export needs no more
memory than a thousand-item one. A file named by ``-o`` is written beside itself and moved
into place at the end, so it is whole or untouched.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import os
import re
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
import msgspec
from rich.cells import cell_len

from bridge.cli import (
    EXIT_USAGE,
    Exit,
    csv_cell,
    handle_errors,
    json_value,
    printable,
    stderr,
    warn,
)
from bridge.cli.options import (
    INPUT_OPTION,
    JOBS_OPTION,
    KEEP_GOING_OPTION,
    NOW_OPTION,
    RULES_OPTION,
    export_formats,
    format_option,
    now_from,
    paths_or_bundled,
    warn_rules,
)
from bridge.cli.output import OUTPUT_OPTION, Coalesced, TextOut, append_file, destination
from bridge.cli.progress import progress
from bridge.model import WORK_TYPES, Classification, WorkItem

if TYPE_CHECKING:
    from bridge.connectors import SkippedRecord
    from bridge.kpi.portfolio import Evaluated
    from bridge.rules.ast import RuleSet

__all__ = ["classify"]


@click.command()
@RULES_OPTION
@INPUT_OPTION
@NOW_OPTION
@format_option("table", "json", "csv")
@OUTPUT_OPTION
@JOBS_OPTION
@KEEP_GOING_OPTION
@handle_errors
def classify(
    rules: tuple[str, ...],
    inputs: tuple[str, ...],
    now_text: str | None,
    output_format: str,
    output: str | None,
    jobs: int | None,
    keep_going: bool,
) -> None:
    """Classify every item of an export as project, service or unclassified work.

    Nothing is written to any ticketing system. With no options, runs the bundled rules
    over the bundled example export.
    """
    from bridge.connectors import SkippedRecord  # noqa: PLC0415 - `--help` stays light
    from bridge.kpi.portfolio import Evaluated  # noqa: PLC0415
    from bridge.pipeline import Rendered, Spooled, evaluate_stream  # noqa: PLC0415

    rule_paths, input_paths = paths_or_bundled(rules, inputs)
    now = now_from(now_text)
    writer_class = _WRITERS[output_format]
    evaluation = evaluate_stream(
        rule_paths,
        input_paths,
        now,
        export_formats(),
        jobs=jobs,
        keep_raw=False,
        renderer=writer_class.renderer(now, output is None),
        join=writer_class.join,
    )
    warn_rules(evaluation.rule_set)
    skipped: list[SkippedRecord] = []
    # The first result comes after the pass that learns status categories, which reads every
    # file: an export that cannot be read fails here, before a byte of output.
    first = next(evaluation.results, None)
    results = itertools.chain([] if first is None else [first], evaluation.results)
    shown = output is not None or not sys.stdout.isatty()
    with destination(output) as handle:
        # Rows on a terminal show as they come; anywhere else they go in blocks.
        out = Coalesced(handle) if shown else handle
        writer = writer_class(out, evaluation.rule_set, now, output is None)
        try:
            with progress("items", when=shown) as tick:
                for result in results:
                    if isinstance(result, Rendered):
                        writer.text(result.text)
                    elif isinstance(result, Spooled):
                        writer.spooled(result.path, result.count)
                        tick(result.count)
                        continue
                    elif isinstance(result, Evaluated):
                        writer.row(result)
                    elif isinstance(result, SkippedRecord):
                        warn(f"skipped {result}")
                        skipped.append(result)
                    tick()
            writer.close(skipped)
        finally:
            if isinstance(out, Coalesced):
                out.flush()
    if skipped:
        count = len(skipped)
        stderr.print(
            f"[yellow]{count} item{'s' if count != 1 else ''} left out[/] (named above)"
            + ("" if keep_going else "; --keep-going exits 0 all the same"),
            highlight=False,
        )
        if not keep_going:
            raise Exit(EXIT_USAGE)


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


def _skipped_row(record: SkippedRecord) -> dict[str, Any]:
    return {"key": record.key, "where": record.where, "problem": record.problem}


class _Writer:
    #: What the output puts between two items' renderings, when it is nothing else: with
    #: ``--jobs`` the workers then spool each export file's renderings so joined (see
    #: ``join`` of :func:`bridge.pipeline.evaluate_stream`) and :meth:`spooled` copies them.
    join: str | None = None

    @staticmethod
    def renderer(
        now: datetime, terminal: bool
    ) -> Callable[[RuleSet], Callable[[Evaluated], str]] | None:
        """What writes an item's output where it is evaluated (a worker process, with
        ``--jobs``), when the output depends on nothing but the item, the rules and
        ``now``; :meth:`text` then takes it. Picklable: it goes to the workers."""
        return None

    def __init__(self, out: TextOut, rule_set: RuleSet, now: datetime, terminal: bool) -> None:
        self.out = out
        self.rule_set = rule_set
        self.now = now

    def row(self, evaluated: Evaluated) -> None:
        raise NotImplementedError

    def text(self, text: str) -> None:
        raise NotImplementedError

    def spooled(self, path: str, count: int) -> None:
        """``count`` items' renderings, joined by :attr:`join`, in the file at ``path``."""
        raise NotImplementedError

    def close(self, skipped: list[SkippedRecord]) -> None:
        raise NotImplementedError


# -- JSON --------------------------------------------------------------------------------------

# What JSON leaves raw in a string that a terminal would act on (as bridge.cli.json_text has
# it): written as \u escapes so the data stays exact.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ENCODE = msgspec.json.Encoder().encode


def _json(value: Any, indent: str) -> str:
    """``value`` as ``json_text`` writes it (2-space indent, null for a non-finite number,
    terminal controls escaped), nested ``indent`` deep. msgspec encodes in C what
    ``json.dumps(indent=2)`` does in Python, ten times faster per row."""
    text = msgspec.json.format(_ENCODE(value), indent=2).decode("utf-8")
    if not text.isascii():
        text = _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.replace("\n", "\n" + indent)


def _json_row(evaluated: Evaluated) -> str:
    """One item of ``items``, as the JSON writer writes it."""
    return _json(_row(evaluated), "    ")


def _json_renderer(rule_set: RuleSet) -> Callable[[Evaluated], str]:
    """The JSON writer's renderer (module level: it is pickled to the workers)."""
    return _json_row


class _JsonWriter(_Writer):
    """``{"now", "rule_set", "items": [...], "skipped": [...]}``, the envelope ``report -f
    json`` has, written item by item."""

    join = ",\n    "  # before every item but the first

    def __init__(self, out: TextOut, rule_set: RuleSet, now: datetime, terminal: bool) -> None:
        super().__init__(out, rule_set, now, terminal)
        head = {"now": json_value(now), "rule_set": rule_set.digest}
        out.write(_json(head, "")[:-2] + ',\n  "items": [')
        self.first = True

    @staticmethod
    def renderer(
        now: datetime, terminal: bool
    ) -> Callable[[RuleSet], Callable[[Evaluated], str]] | None:
        return _json_renderer

    def row(self, evaluated: Evaluated) -> None:
        self.text(_json_row(evaluated))

    def text(self, text: str) -> None:
        self.out.write(("\n    " if self.first else self.join) + text)
        self.first = False

    def spooled(self, path: str, count: int) -> None:
        if count:
            self.out.write("\n    " if self.first else self.join)
            append_file(self.out, path)
            self.first = False

    def close(self, skipped: list[SkippedRecord]) -> None:
        end = "]" if self.first else "\n  ]"
        rows = _json([_skipped_row(s) for s in skipped], "  ")
        self.out.write(f'{end},\n  "skipped": {rows}\n}}\n')


# -- CSV ---------------------------------------------------------------------------------------

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


def kpi_names(rule_set: RuleSet, now: datetime) -> list[str]:
    """Every KPI the rule set's outcomes can produce, sorted: the CSV's columns, known
    before the first row (each KPI group writes a fixed set of names, values or nulls)."""
    from bridge.kpi.compute import KpiEngine  # noqa: PLC0415

    engine = KpiEngine(rule_set)
    probe = WorkItem(key="-", system="-")
    names: set[str] = set()
    outcomes = {rule.then.kpis for rule in rule_set.rules} | {rule_set.default.kpis}
    for groups in outcomes:
        decision = Classification("unclassified", None, None, groups)
        names.update(engine.compute(probe, decision, now).values)
    return sorted(names)


def _csv_cells(evaluated: Evaluated, kpis: list[str]) -> list[Any]:
    item, decision, values = evaluated.item, evaluated.decision, evaluated.kpis.values
    return [
        csv_cell(item.key),
        csv_cell(item.system),
        csv_cell(item.type),
        csv_cell(item.status),
        csv_cell(item.status_category),
        csv_cell(item.project),
        decision.work_type,
        decision.phase or "",
        csv_cell(decision.rule),
        *(csv_cell(values.get(n)) for n in kpis),
    ]


class _CsvLine:
    """One item's CSV row as text, written by the csv module as the writer would write it
    to the output (one buffer, reused: a row is a few hundred characters)."""

    def __init__(self, kpis: list[str]) -> None:
        self.kpis = kpis
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")

    def __call__(self, evaluated: Evaluated) -> str:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow(_csv_cells(evaluated, self.kpis))
        return self.buffer.getvalue()


def _csv_renderer(now: datetime, rule_set: RuleSet) -> Callable[[Evaluated], str]:
    """The CSV writer's renderer: its KPI columns come from the rule set (module level:
    pickled to the workers as a ``partial``)."""
    return _CsvLine(kpi_names(rule_set, now))


class _CsvWriter(_Writer):
    """One row per item; the KPI columns are every KPI the rule set can produce, so every
    export read with the same rules gives the same columns."""

    join = ""  # each row ends its line

    def __init__(self, out: TextOut, rule_set: RuleSet, now: datetime, terminal: bool) -> None:
        super().__init__(out, rule_set, now, terminal)
        self.kpis = kpi_names(rule_set, now)
        self.writer = csv.writer(out, lineterminator="\n")
        self.writer.writerow([*_CSV_COLUMNS, *(f"kpis.{printable(n)}" for n in self.kpis)])

    @staticmethod
    def renderer(
        now: datetime, terminal: bool
    ) -> Callable[[RuleSet], Callable[[Evaluated], str]] | None:
        return functools.partial(_csv_renderer, now)

    def row(self, evaluated: Evaluated) -> None:
        self.writer.writerow(_csv_cells(evaluated, self.kpis))

    def text(self, text: str) -> None:
        self.out.write(text)

    def spooled(self, path: str, count: int) -> None:
        append_file(self.out, path)

    def close(self, skipped: list[SkippedRecord]) -> None:
        return None


# -- table -------------------------------------------------------------------------------------

_WORK_STYLE = {"project": "cyan", "service": "magenta", "unclassified": "yellow"}
_STATE_STYLE = {"breached": "red", "breaching": "red", "met": "green"}
_FIXED_LEGEND = {
    "SPI": "schedule performance index (EV / PV)",
    "CPI": "cost performance index (EV / AC)",
    "slip": "days past the due date",
    "CSAT": "satisfaction rating 1-5",
}


def abbreviation(sla: str) -> str:
    """An SLA's short name in the table: its words' initials (time-to-first-response:
    TTFR)."""
    return "".join(word[:1] for word in sla.split("-")).upper()


def _table_width() -> int:
    """The terminal's width; piped, $COLUMNS or 100 (no 160-column lines in a log)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return os.get_terminal_size(sys.stdout.fileno()).columns
    return 100


_ANSI = {"cyan": "36", "magenta": "35", "yellow": "33", "red": "31", "green": "32", "dim": "2"}


def _wrap(figures: str, width: int) -> list[str]:
    """Key figures over as many lines as they need, broken between figures."""
    lines = [""]
    for part in figures.split(" · ") if figures else []:
        if lines[-1] and len(lines[-1]) + 3 + len(part) > width:
            lines.append(part)
        else:
            lines[-1] = f"{lines[-1]} · {part}" if lines[-1] else part
    return lines


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells (an ellipsis says it was) and padded to it."""
    size = len(text) if text.isascii() else cell_len(text)
    if size > width:
        while text and (len(text) if text.isascii() else cell_len(text)) > width - 1:
            text = text[:-1] if not text.isascii() else text[: width - 1]
        text += "…"
        size = len(text) if text.isascii() else cell_len(text)
    return text + " " * (width - size)


# The columns' widths on a narrow terminal, and how wide each may grow on a wide one: a
# status or a rule id is cut short only when the terminal has no room for it.
_NARROW = {"key": 11, "type": 9, "status": 10, "work type": 12, "phase": 10, "rule": 12}
_WIDE = {"key": 20, "type": 24, "status": 48, "work type": 12, "phase": 10, "rule": 40}
# What the summary and the key figures keep between them before the other columns grow.
_FLEXIBLE = 60


def _fixed_widths(width: int) -> dict[str, int]:
    """The widths of the fixed columns for a table ``width`` wide: their narrow widths, and
    of the room left beyond the summary's and key figures' share, an even share each up to
    its wide width (a column that needs less gives the rest to the others)."""
    widths = dict(_NARROW)
    room = width - sum(widths.values()) - 2 * len(widths) - _FLEXIBLE
    growing = [name for name in widths if _WIDE[name] > widths[name]]
    while room > 0 and growing:
        share = max(room // len(growing), 1)
        for name in list(growing):
            step = min(share, _WIDE[name] - widths[name], room)
            widths[name] += step
            room -= step
            if widths[name] >= _WIDE[name]:
                growing.remove(name)
            if room <= 0:
                break
    return widths


def _table_layout(terminal: bool) -> tuple[list[int], bool]:
    """The table's column widths and whether it is coloured (only on a terminal)."""
    colour = terminal and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    width = _table_width() if terminal else 120
    fixed = _fixed_widths(width)
    flexible = max(width - sum(fixed.values()) - 2 * len(fixed), 20)
    summary = max(flexible // 2, 9)
    return [*fixed.values(), summary - 2, flexible - summary], colour


class _TableRows:
    """An item's lines of the table, and what the legend and the summary under the table
    need to know of it: written where the item is evaluated, as :meth:`__call__`'s text."""

    def __init__(self, widths: list[int], colour: bool) -> None:
        self.widths = widths
        self.colour = colour

    def line(self, cells: list[str], bold: bool = False, styles: Any = ()) -> str:
        parts = []
        for index, (cell, width) in enumerate(zip(cells, self.widths, strict=True)):
            text = _fit(printable(cell), width)
            style = styles[index] if index < len(styles) else None
            if self.colour and (style or bold):
                codes = "1" if bold or style is None else _ANSI[style]
                text = f"\x1b[{codes}m{text}\x1b[0m"
            parts.append(text)
        return "  ".join(parts).rstrip()

    @staticmethod
    def figures(values: dict[str, Any]) -> tuple[str, str | None, list[str], list[list[str]]]:
        """A few KPIs to scan the table by (the full set is in --format json), the colour of
        the worst SLA state among them, the fixed abbreviations and the SLAs (short name,
        name) they use."""
        parts: list[str] = []
        used: list[str] = []
        slas: list[list[str]] = []
        style = None
        for name, label in (("evm.spi", "SPI"), ("evm.cpi", "CPI")):
            if isinstance(values.get(name), float):
                parts.append(f"{label} {values[name]:.2f}")
                used.append(label)
        slip = values.get("schedule.slip_days")
        if isinstance(slip, int) and not isinstance(slip, bool) and slip:
            parts.append(f"slip {slip:+d}d")
            used.append("slip")
        for name, value in values.items():
            if name.startswith("sla.") and name.endswith(".state") and value:
                sla = name[4:-6]
                short = abbreviation(sla)
                slas.append([short, sla])
                parts.append(f"{short}: {value}")
                if value in _STATE_STYLE and style != "red":
                    style = _STATE_STYLE[value]
        if isinstance(values.get("csat.rating"), float):
            parts.append(f"CSAT {values['csat.rating']:g}")
            used.append("CSAT")
        return " · ".join(parts), style, used, slas

    def __call__(self, evaluated: Evaluated) -> str:
        """A line of JSON, ``[work type, abbreviations, SLAs]``, then the item's lines."""
        item, decision = evaluated.item, evaluated.decision
        figures, state, used, slas = self.figures(evaluated.kpis.values)
        cells = [
            item.key,
            item.type or "",
            item.status or "",
            decision.work_type,
            decision.phase or "",
            decision.rule or "(default)",
            item.summary or "",
            figures,
        ]
        styles = [None, None, None, _WORK_STYLE[decision.work_type], None]
        styles += [None if decision.rule else "dim", None, state]
        lines = _wrap(figures, self.widths[-1])
        cells[-1] = lines[0]
        out = [_ENCODE([decision.work_type, used, slas]).decode(), self.line(cells, styles=styles)]
        blank = [""] * (len(cells) - 1)
        out.extend(self.line([*blank, more], styles=styles) for more in lines[1:])
        return "\n".join(out)


def _table_renderer(
    widths: list[int], colour: bool, rule_set: RuleSet
) -> Callable[[Evaluated], str]:
    """The table writer's renderer (module level: pickled to the workers as a ``partial``)."""
    return _TableRows(widths, colour)


class _TableWriter(_Writer):
    """The look of a rich table (a bold head over a rule, columns two spaces apart), drawn
    line by line: rich measures every cell of a whole table before printing its first line,
    four times the time of the JSON for 40,000 rows and all of them in memory. Columns are
    sized once, from the width; a summary too long is cut with an ellipsis, key figures
    go on over more lines. Colour only on a terminal. Rows are drawn where items are
    evaluated (:class:`_TableRows`); this writer counts and pages them."""

    _PAGE = 200

    def __init__(self, out: TextOut, rule_set: RuleSet, now: datetime, terminal: bool) -> None:
        super().__init__(out, rule_set, now, terminal)
        self.widths, self.colour = _table_layout(terminal)
        self.rows = _TableRows(self.widths, self.colour)
        self.titles = [*_NARROW, "summary", "key figures"]
        self.counts: Counter[str] = Counter()
        self.slas: dict[str, set[str]] = {}
        self.fixed_used: set[str] = set()
        self.lines: list[str] = []
        self.width = sum(self.widths) + 2 * (len(self.widths) - 1)
        self._emit(f"bridge classify at {json_value(now)}")
        self._emit(self.rows.line(self.titles, bold=True))
        self._emit("─" * self.width)

    @staticmethod
    def renderer(
        now: datetime, terminal: bool
    ) -> Callable[[RuleSet], Callable[[Evaluated], str]] | None:
        widths, colour = _table_layout(terminal)
        return functools.partial(_table_renderer, widths, colour)

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= self._PAGE:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self.out.write("\n".join(self.lines) + "\n")
            self.lines.clear()

    def row(self, evaluated: Evaluated) -> None:
        self.text(self.rows(evaluated))

    def text(self, text: str) -> None:
        head, _, lines = text.partition("\n")
        work_type, used, slas = msgspec.json.decode(head)
        self.counts[work_type] += 1
        self.fixed_used.update(used)
        for short, sla in slas:
            self.slas.setdefault(short, set()).add(sla)
        for line in lines.split("\n"):
            self._emit(line)

    def close(self, skipped: list[SkippedRecord]) -> None:
        self._emit("─" * self.width)
        total = sum(self.counts.values())
        share = total or 1
        mix = ", ".join(
            f"{self.counts[w]} {w} ({100 * self.counts[w] / share:.1f}%)" for w in WORK_TYPES
        )
        self._emit(f"rule set {self.rule_set.digest}")
        legend = [f"{k} = {v}" for k, v in _FIXED_LEGEND.items() if k in self.fixed_used]
        legend += [f"{k} = {', '.join(sorted(v))} (SLA)" for k, v in sorted(self.slas.items())]
        if legend:
            for line in textwrap.wrap(
                "legend: " + "; ".join(legend), self.width, break_on_hyphens=False
            ):
                self._emit(line)
        self._emit(f"summary: {total} items: {mix}")
        if skipped:
            self._emit(f"left out: {len(skipped)} (named on stderr)")
        self.flush()


_WRITERS: dict[str, type[_Writer]] = {"json": _JsonWriter, "csv": _CsvWriter, "table": _TableWriter}
