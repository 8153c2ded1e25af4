"""``bridge explain``: how the rules decided for one item of an export, condition by condition,
and what came of it: the item's KPIs and how each SLA clock ran.

The KPIs and clocks are computed exactly as ``classify`` computes them (the same
:class:`~bridge.kpi.compute.KpiEngine`, learning status categories from the same export), and
the clocks' timelines come from :mod:`bridge.kpi.sla_trace`, which reuses the KPI code: a
breach explained here is the breach ``classify`` reports. Everything from the export is
printed as text, never as markup (:func:`bridge.cli.plain`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click
from rich.padding import Padding
from rich.table import Table
from rich.tree import Tree

from bridge.cli import fail, handle_errors, json_text, json_value, plain, stdout
from bridge.cli.options import (
    INPUT_OPTION,
    NOW_OPTION,
    RULES_OPTION,
    format_option,
    now_from,
    paths_or_bundled,
    read_items,
    warn_rules,
)
from bridge.connectors import SkippedRecord
from bridge.model import Classification, WorkItem
from bridge.plugins import installed_operators
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine, Explanation, GroupTrace
from bridge.rules.loader import load_rules

if TYPE_CHECKING:
    from bridge.kpi.result import KpiResult
    from bridge.kpi.sla_trace import CycleTrace, SlaTrace

__all__ = ["explain"]


@click.command()
@RULES_OPTION
@INPUT_OPTION
@NOW_OPTION
@format_option("text", "json")
@click.argument("key")
@handle_errors
def explain(
    rules: tuple[str, ...],
    inputs: tuple[str, ...],
    now_text: str | None,
    output_format: str,
    key: str,
) -> None:
    """Show how the rules decided for the item KEY: every condition of every rule tried,
    the value seen, the operator, the expected value and the result; then the item's KPIs and,
    for every SLA, how its clock ran (cycles, pauses, goal, breach, business and wall time)."""
    rule_paths, input_paths = paths_or_bundled(rules, inputs)
    now = now_from(now_text)
    rule_set = load_rules(rule_paths, installed_operators())
    warn_rules(rule_set)
    engine = Engine(rule_set)
    skipped: list[SkippedRecord] = []
    items = read_items(input_paths, skipped)
    matches = [item for item in items if item.key == key]
    if not matches:
        why = next((record for record in skipped if record.key == key), None)
        if why is not None:
            raise fail(f"{key} was skipped: {why}")
        close = [item.key for item in items if key.lower() in item.key.lower()][:5]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise fail(f"no item with key {key!r} in {', '.join(input_paths)}{hint}")
    explanation = engine.explain(matches[0], now)
    measured = _measure(rule_set, items, matches[0], explanation.classification, now)
    if output_format == "json":
        sys.stdout.write(json_text(_explanation_json(explanation, measured, now)))
    else:
        _print_explanation(explanation, now)
        _print_kpis(measured, explanation.classification)
        for trace in measured.slas:
            _print_sla(trace)


@dataclass(frozen=True, slots=True)
class _Measured:
    """The item's KPIs and SLA traces, or why they could not be computed."""

    kpis: KpiResult | None
    slas: Sequence[SlaTrace]
    error: str | None
    currency: str | None


# What data, not code, can make a KPI calculation raise (as ``evaluate_export`` has it):
# explain still shows the decision, and says why the KPIs are not there.
_DATA_ERRORS = (ArithmeticError, ValueError)


def _measure(
    rule_set: RuleSet,
    items: Sequence[WorkItem],
    item: WorkItem,
    decision: Classification,
    now: datetime,
) -> _Measured:
    # Imported here: ``bridge --help`` starts without the KPI package (see options.config_from).
    from bridge.kpi.compute import KpiEngine  # noqa: PLC0415
    from bridge.kpi.sla_trace import trace_slas  # noqa: PLC0415

    currency = rule_set.kpi.currency
    if not decision.kpis:
        return _Measured(None, (), None, currency)
    # Categories learned from the whole export, as classify learns them: same clocks.
    kpis = KpiEngine.for_items(rule_set, items)
    try:
        result = kpis.compute(item, decision, now).finite()
        traces = trace_slas(kpis, item, decision.kpis, now)
    except _DATA_ERRORS as exc:
        problem = f"cannot be evaluated: {type(exc).__name__}: {exc}"
        return _Measured(None, (), problem, currency)
    return _Measured(result, traces, None, currency)


def _explanation_json(
    explanation: Explanation, measured: _Measured, now: datetime
) -> dict[str, Any]:
    decision = explanation.classification
    result = measured.kpis
    return {
        "key": explanation.item.key,
        "now": json_value(now),
        "work_type": decision.work_type,
        "phase": decision.phase,
        "rule": decision.rule,
        "kpi_groups": list(decision.kpis),
        "kpis": None if result is None else result.values,
        "missing": [] if result is None else result.missing,
        "kpi_error": measured.error,
        "slas": [_sla_json(trace) for trace in measured.slas],
        "rules": [
            {
                "id": trace.rule.id,
                "where": trace.rule.where,
                "matched": trace.matched,
                "conditions": [
                    {"depth": s.depth, "group": s.kind, "result": s.result, "where": s.where}
                    if isinstance(s, GroupTrace)
                    else {
                        "depth": s.depth,
                        "field": s.field,
                        "operator": s.op,
                        "expected": json_value(s.expected),
                        "actual": json_value(s.actual),
                        "result": s.result,
                        "where": s.where,
                    }
                    for s in trace.steps
                ],
            }
            for trace in explanation.rules
        ],
    }


def _mark(result: bool) -> str:
    return "[green]✓[/]" if result else "[red]✗[/]"


def _short(value: Any) -> str:
    value = json_value(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _print_explanation(explanation: Explanation, now: datetime) -> None:
    item = explanation.item
    decision = explanation.classification
    stdout.print(
        f"[bold]{plain(item.key)}[/] ({plain(item.system)}) {plain(item.type or '')} · "
        f"{plain(item.status or '')} · evaluated at {json_value(now)}"
    )
    winner_seen = False
    for trace in explanation.rules:
        label = (
            f"{_mark(trace.matched)} rule [bold]{plain(trace.rule.id)}[/] "
            f"[dim]{plain(trace.rule.where)}[/]"
        )
        if trace.matched and not winner_seen:
            label += "  [bold green]← wins[/]"
            winner_seen = True
        elif trace.matched:
            label += "  [dim](matches, but an earlier rule won)[/]"
        tree = Tree(label)
        parents: list[Tree] = [tree]
        for step in trace.steps:
            del parents[step.depth + 1 :]
            parent = parents[-1]
            if isinstance(step, GroupTrace):
                node = parent.add(f"{_mark(step.result)} {plain(step.kind)}")
                parents.append(node)
            else:
                parent.add(
                    f"{_mark(step.result)} {plain(step.field)} {plain(step.op)} "
                    f"{plain(_short(step.expected))}  [dim]saw {plain(_short(step.actual))}[/]",
                    highlight=False,
                )
        stdout.print(tree)
    outcome = f"[bold]{decision.work_type}[/]"
    if decision.phase:
        outcome += f", phase {plain(decision.phase)}"
    source = f"rule {plain(decision.rule)}" if decision.rule else "the default (no rule matched)"
    stdout.print(f"decision: {outcome} by {source}")


# -- KPIs ----------------------------------------------------------------------------------------

# The groups in the order people read them, with their headings.
_GROUPS = (
    ("schedule", "schedule"),
    ("effort", "effort"),
    ("evm", "earned value (EVM)"),
    ("cost", "cost"),
    ("sla", "SLA"),
    ("csat", "customer satisfaction (CSAT)"),
    ("tco", "total cost of ownership (TCO)"),
)
_MONEY = frozenset(
    ("bac", "pv", "ev", "ac", "sv", "cv", "eac", "etc", "vac", "labour_cost", "other_cost", "total")
)


def _print_kpis(measured: _Measured, decision: Classification) -> None:
    if not decision.kpis:
        stdout.print("KPIs: none (the decision asks for no KPIs)")
        return
    stdout.print()
    stdout.print(f"[bold]KPIs[/] ({plain(', '.join(decision.kpis))})")
    if measured.error is not None or measured.kpis is None:
        stdout.print(f"  [red]the KPIs {plain(measured.error or 'were not computed')}[/]")
        return
    result = measured.kpis
    reasons: dict[str, list[str]] = {}
    for entry in result.missing:
        reasons.setdefault(entry["kpi"], []).append(entry["reason"])
    zones = {trace.name: trace.timezone for trace in measured.slas}
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("group", style="bold")
    table.add_column("kpi")
    table.add_column("value", overflow="fold")
    for heading, group in _grouped(list(result.values)):
        for index, name in enumerate(group):
            value = result.values[name]
            if value is not None:
                cell = plain(_human(name, value, measured.currency, zones))
            elif name in reasons:
                cell = f"[dim]— {plain('; '.join(dict.fromkeys(reasons[name])))}[/]"
            else:  # null by definition (a completed clock has no breach time)
                cell = "[dim]—[/]"
            table.add_row(
                plain(heading) if index == 0 else "", plain(name.rsplit(".", 1)[-1]), cell
            )
    stdout.print(Padding(table, (0, 0, 0, 2)))


def _grouped(names: Sequence[str]) -> list[tuple[str, list[str]]]:
    """KPI names by group in reading order; each SLA is a group of its own."""
    groups: dict[str, list[str]] = {}
    order = {prefix: index for index, (prefix, _) in enumerate(_GROUPS)}
    headings = dict(_GROUPS)
    for name in sorted(names, key=lambda n: order.get(n.split(".")[0], len(order))):
        prefix = name.split(".")[0]
        if prefix == "sla" and name.count(".") >= 2:
            heading = f"SLA {name.split('.')[1]}"
        else:
            heading = headings.get(prefix, prefix)
        groups.setdefault(heading, []).append(name)
    return list(groups.items())


def _human(name: str, value: Any, currency: str | None, zones: Mapping[str, str]) -> str:
    """A KPI value as a person reads it (the exact value is in ``-f json``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    short = name.rsplit(".", 1)[-1]
    if short == "breach_time" and isinstance(value, str):
        sla = name.split(".")[1] if name.count(".") >= 2 else ""
        return _moment(_instant(value), zones.get(sla, "UTC"))
    if not isinstance(value, int | float):
        return str(value)
    if short in ("planned_pct", "percent_complete"):  # fractions 0..1
        return f"{value * 100:.0f} %"
    if short.endswith("_pct"):
        return f"{value:+.1f} %"
    if short in ("spi", "cpi"):
        return f"{value:.2f}"
    if short.endswith("_seconds"):
        text = _duration(value)
        if short == "remaining_seconds" and value < 0:
            return f"{_duration(-value)} past the goal"
        return text if short == "goal_seconds" else f"{text} {_TIME_KIND.get(short, '')}".strip()
    if short.endswith("_hours"):
        return f"{value:,.1f} h"
    if short == "slip_business_days":
        return f"{value:+g} working days"
    if short.endswith("_days"):  # variances signed, spans not
        sign = "+" if short in ("slip_days", "sv_days") else ""
        return f"{value:{sign}.1f} days" if isinstance(value, float) else f"{value:{sign}d} days"
    if short in _MONEY:
        return f"{value:,.2f} {currency}" if currency else f"{value:,.2f}"
    return f"{value:g}"


_TIME_KIND = {"elapsed_seconds": "business time", "elapsed_wall_seconds": "wall clock"}


def _duration(seconds: float) -> str:
    """``1 h 44 min``: SLA goals are stated in hours of business time, so no days."""
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
    if minutes:
        return f"{sign}{minutes} min {secs} s" if secs else f"{sign}{minutes} min"
    return f"{sign}{secs} s"


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _moment(instant: datetime, zone: str) -> str:
    """An instant in the SLA calendar's zone, with its weekday: working hours are local."""
    local = instant.astimezone(ZoneInfo(zone))
    return local.strftime("%a %Y-%m-%d %H:%M:%S %Z")


# -- SLA clocks ----------------------------------------------------------------------------------


def _print_sla(trace: SlaTrace) -> None:
    state = trace.cycles[-1].state if trace.cycles else "not measured"
    stdout.print()
    stdout.print(
        f"[bold]SLA {plain(trace.name)}[/]: {plain(state)} [dim](source: {plain(trace.source)})[/]"
    )
    grid = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    grid.add_column("what", style="dim")
    grid.add_column("detail", overflow="fold")
    grid.add_row("source", plain(trace.why))
    grid.add_row("calendar", f"{plain(trace.calendar)}; times in {plain(trace.timezone)}")
    if trace.source != "native":
        conditions = [
            ("start", trace.start or "on creation"),
            ("pause", trace.pause),
            ("stop", trace.stop),
            ("cancel", trace.cancel),
        ]
        grid.add_row(
            "conditions",
            plain(" · ".join(f"{kind}: {text}" for kind, text in conditions if text)),
        )
    elif trace.cancel:
        grid.add_row("cancel", plain(f"{trace.cancel} (the rule set's; applies to native too)"))
    if trace.missing:
        grid.add_row("no figures", plain(trace.missing))
    stdout.print(Padding(grid, (0, 0, 0, 2)))
    for number, cycle in enumerate(trace.cycles, start=1):
        stdout.print(f"  cycle {number} of {len(trace.cycles)}")
        stdout.print(Padding(_cycle_grid(trace, cycle), (0, 0, 0, 4)))


def _cycle_grid(trace: SlaTrace, cycle: CycleTrace) -> Table:
    zone = trace.timezone

    def when(instant: datetime | None) -> str:
        return "—" if instant is None else _moment(instant, zone)

    grid = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    grid.add_column("what", style="dim")
    grid.add_column("detail", overflow="fold")
    grid.add_row("start", when(cycle.start))
    if cycle.pauses is None:
        grid.add_row("pauses", "not in the system's data")
    elif not cycle.pauses:
        grid.add_row("pauses", "none")
    for begin, end in cycle.pauses or ():
        grid.add_row("paused", f"{when(begin)} → {when(end) if end else 'still paused (now)'}")
    status = f" (status {cycle.status_at_end})" if cycle.status_at_end is not None else ""
    if cycle.stop is None:
        grid.add_row("stop", "— still running at now")
    elif cycle.ended_by == "cancel":
        grid.add_row("cancelled", plain(f"{when(cycle.stop)}: the cancel condition held{status}"))
    elif cycle.ended_by == "stop":
        grid.add_row("stop", plain(f"{when(cycle.stop)}: the stop condition held{status}"))
    else:
        grid.add_row("stop", plain(f"{when(cycle.stop)} (the system stopped the clock)"))
    grid.add_row("goal", plain(_goal_text(cycle)))
    elapsed = "—" if cycle.elapsed_seconds is None else _duration(cycle.elapsed_seconds)
    wall = (
        "wall clock not in the system's data"
        if cycle.elapsed_wall_seconds is None
        else f"{_duration(cycle.elapsed_wall_seconds)} wall clock"
    )
    grid.add_row("elapsed", f"{elapsed} business time · {wall} (pauses excluded)")
    if cycle.remaining_seconds is not None:
        left = cycle.remaining_seconds
        grid.add_row(
            "remaining", _duration(left) if left >= 0 else f"none: {_duration(-left)} past the goal"
        )
    grid.add_row("breach", plain(_breach_text(cycle, when)))
    grid.add_row("state", plain(_state_text(trace, cycle)))
    return grid


def _goal_text(cycle: CycleTrace) -> str:
    goal = cycle.goal
    if goal.chosen_by == "none" or goal.target_seconds is None:
        return "none: no goal of this SLA matches the item"
    target = _duration(goal.target_seconds)
    if goal.chosen_by == "system":
        return f"{target} (the system's own goal)"
    number = (goal.index or 0) + 1
    if goal.condition is None:
        return f"{target}: goal {number}, the one without a condition (no earlier goal matched)"
    seen = ", ".join(f"{name} was {_short(value)}" for name, value in goal.seen)
    where = f" [{goal.where}]" if goal.where else ""
    return f"{target}: goal {number}, {goal.condition} held at the cycle's end ({seen}){where}"


def _breach_text(cycle: CycleTrace, when: Any) -> str:
    if cycle.breach_time is not None and cycle.state == "breaching":
        return f"breached at {when(cycle.breach_time)}, still running"
    if cycle.breach_time is not None:
        return f"at {when(cycle.breach_time)} if nothing pauses the clock"
    if cycle.goal_reached_at is not None:
        return f"the goal was reached at {when(cycle.goal_reached_at)}"
    if cycle.breached is None:
        return "— (no goal)"
    if cycle.state == "paused":
        return "— while paused (the clock resumes with the time left)"
    return "none: stopped within the goal" if cycle.stop is not None else "none yet"


def _state_text(trace: SlaTrace, cycle: CycleTrace) -> str:
    if cycle.cancelled_by_rules:
        return (
            f"cancelled: the system's SLA says {cycle.system_state}, but the rule set's cancel "
            f"condition ({trace.cancel}) held when the cycle ended, and cancelled comes before "
            "met or breached; not counted in SLA attainment"
        )
    if cycle.state == "cancelled":
        return "cancelled: not counted in SLA attainment"
    if cycle.state in ("met", "breached"):
        return f"{cycle.state}: counted in SLA attainment"
    return cycle.state


def _sla_json(trace: SlaTrace) -> dict[str, Any]:
    return {
        "name": trace.name,
        "source": trace.source,
        "why": trace.why,
        "calendar": trace.calendar,
        "timezone": trace.timezone,
        "native": None
        if trace.native_name is None
        else {"name": trace.native_name, "field": trace.native_field},
        "conditions": {
            "start": trace.start,
            "pause": trace.pause,
            "stop": trace.stop,
            "cancel": trace.cancel,
        },
        "missing": trace.missing,
        "cycles": [
            {
                "start": json_value(c.start),
                "stop": json_value(c.stop),
                "ended_by": c.ended_by,
                "pauses": None
                if c.pauses is None
                else [{"from": json_value(a), "to": json_value(b)} for a, b in c.pauses],
                "goal": {
                    "chosen_by": c.goal.chosen_by,
                    "index": c.goal.index,
                    "condition": c.goal.condition,
                    "where": c.goal.where,
                    "seen": {name: json_value(value) for name, value in c.goal.seen},
                    "target_seconds": c.goal.target_seconds,
                },
                "elapsed_seconds": c.elapsed_seconds,
                "elapsed_wall_seconds": c.elapsed_wall_seconds,
                "remaining_seconds": c.remaining_seconds,
                "state": c.state,
                "breached": c.breached,
                "breach_time": json_value(c.breach_time),
                "goal_reached_at": json_value(c.goal_reached_at),
                "status_at_end": c.status_at_end,
                "system_state": c.system_state,
                "cancelled_by_rules": c.cancelled_by_rules,
            }
            for c in trace.cycles
        ],
    }
