"""``bridge explain``: how the rules decided for one item of an export, condition by condition.

Everything from the export is printed as text, never as markup (:func:`bridge.cli.plain`).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click
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
)
from bridge.connectors import SkippedRecord
from bridge.rules.engine import Engine, Explanation, GroupTrace
from bridge.rules.loader import load_rules

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
    the value seen, the operator, the expected value and the result."""
    rule_paths, input_paths = paths_or_bundled(rules, inputs)
    now = now_from(now_text)
    engine = Engine(load_rules(rule_paths))
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
    if output_format == "json":
        sys.stdout.write(json_text(_explanation_json(explanation, now)))
    else:
        _print_explanation(explanation, now)


def _explanation_json(explanation: Explanation, now: datetime) -> dict[str, Any]:
    decision = explanation.classification
    return {
        "key": explanation.item.key,
        "now": json_value(now),
        "work_type": decision.work_type,
        "phase": decision.phase,
        "rule": decision.rule,
        "kpis": list(decision.kpis),
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
    if decision.kpis:
        stdout.print(f"KPIs: {plain(', '.join(decision.kpis))}")
