"""Options and input helpers the commands share, so flags read the same everywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bridge.cli import fail, stderr, warn
from bridge.connectors import SkippedRecord
from bridge.connectors.base import ExportFormat
from bridge.connectors.files import read_export
from bridge.model import WorkItem
from bridge.plugins import default_registry
from bridge.rules.ast import RuleSet
from bridge.timefmt import parse_instant

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.kpi.portfolio import Evaluated

__all__ = [
    "CONFIG_OPTION",
    "INPUT_OPTION",
    "JOBS_OPTION",
    "KEEP_GOING_OPTION",
    "NOW_OPTION",
    "RULES_OPTION",
    "bundled_path",
    "config_from",
    "evaluate_export",
    "export_formats",
    "format_option",
    "instant_option",
    "iter_items",
    "now_from",
    "paths_or_bundled",
    "read_items",
    "warn_rules",
    "warn_skipped",
]

F = TypeVar("F", bound=Callable[..., Any])

RULES_OPTION = click.option(
    "--rules",
    "-r",
    "rules",
    multiple=True,
    type=click.Path(),
    help="Rule file or folder (repeatable; default: bundled rules).",
)
INPUT_OPTION = click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    type=click.Path(),
    help="Export file or folder (repeatable; default: bundled export).",
)
NOW_OPTION = click.option(
    "--now",
    "now_text",
    metavar="ISO",
    help="The instant to evaluate at (default: the current time).",
)
CONFIG_OPTION = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    default="bridge.yaml",
    show_default=True,
    help="The bridge.yaml to use.",
)


def format_option(*choices: str) -> Callable[[F], F]:
    """``--format/-f``, the first choice being the default."""
    return click.option(
        "--format",
        "-f",
        "output_format",
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
    )


def instant_option(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 option value, or a usage error naming the option."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise fail(f"{name}: {exc}") from None


def now_from(value: str | None) -> datetime:
    """``--now``, or the current time to the second."""
    return instant_option("--now", value) or datetime.now(UTC).replace(microsecond=0)


def config_from(path: str) -> Config:
    """bridge.yaml, checked, with its warnings printed to stderr: every command that reads it
    (sync, serve, worker, status) says what it would cost, before it runs."""
    # Imported here, as the KPI code below: commands that never read bridge.yaml or compute
    # KPIs (``--help``, ``rules check``) start without loading them.
    from bridge.config import load_config  # noqa: PLC0415

    if not Path(path).exists():
        raise fail(f"no {path}; create it (see the README, 'Configuration') or pass --config")
    config = load_config(path)
    for message in config.warnings:
        warn(message)
    return config


def bundled_path(kind: str) -> Path:
    """The rules or example export shipped with bridge (in the wheel, or in a checkout)."""
    inside = Path(str(resources.files("bridge"))) / "_bundled"
    checkout = Path(__file__).resolve().parents[3]
    candidates = {
        "rules": [inside / "rules", checkout / "rules"],
        "export": [inside / "examples" / "export", checkout / "examples" / "export"],
    }[kind]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise fail(f"no bundled {kind} found; pass --{'rules' if kind == 'rules' else 'input'}")


def paths_or_bundled(rules: Sequence[str], inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """The rule and export paths given, the bundled ones for what is not (said on stderr)."""
    rule_paths = list(rules) or [str(bundled_path("rules"))]
    input_paths = list(inputs) or [str(bundled_path("export"))]
    if not rules or not inputs:
        stderr.print(
            f"using {'bundled ' if not rules else ''}rules {', '.join(rule_paths)} and "
            f"{'bundled ' if not inputs else ''}export {', '.join(input_paths)}",
            style="dim",
            markup=False,
        )
    return rule_paths, input_paths


def export_formats() -> list[ExportFormat]:
    """The registered export formats, in the registry's order: what the file connector
    reads with (it does not reach up to the plugin manager itself)."""
    return list(default_registry().formats.values())


def iter_items(
    inputs: Sequence[str], skipped: list[SkippedRecord] | None = None
) -> Iterator[WorkItem]:
    """The items of the exports one at a time, a file's records decoded as they are
    reached (``skipped``: see :func:`read_items`)."""
    formats = export_formats()
    for entry in inputs:
        yield from read_export(Path(entry), formats, skipped=skipped)


def read_items(inputs: Sequence[str], skipped: list[SkippedRecord] | None = None) -> list[WorkItem]:
    """The items of the exports; with ``skipped``, records that cannot be mapped are listed
    there and left out instead of stopping the command. (:func:`iter_items` streams them.)"""
    return list(iter_items(inputs, skipped))


def warn_skipped(skipped: Sequence[SkippedRecord]) -> None:
    """One warning per item left out, naming it and what is wrong with it."""
    for record in skipped:
        warn(f"skipped {record}")


def evaluate_export(
    rule_paths: Sequence[str],
    input_paths: Sequence[str],
    now: datetime,
    keep: Callable[[WorkItem], bool] | None = None,
) -> tuple[RuleSet, list[Evaluated], list[SkippedRecord]]:
    """Load the rules, read the export, and classify every item (kept by ``keep``) with its
    KPIs; status categories seen in the export help replay histories.

    One bad item must not cost the user the other thousand: a record that cannot be mapped,
    or an item whose KPIs cannot be computed, is left out and returned in the third list
    with why (those that cannot be mapped first, as they were read). KPIs that overflow are
    null with a reason (:meth:`KpiResult.finite`). In memory, on one core: commands over
    large exports use :func:`bridge.pipeline.evaluate_stream`, which this wraps.
    """
    from bridge.pipeline import evaluate_stream  # noqa: PLC0415 - see config_from

    evaluation = evaluate_stream(rule_paths, input_paths, now, export_formats(), keep=keep)
    evaluated = list(evaluation.evaluated())
    unmapped = [s for s in evaluation.skipped if not s.problem.startswith(_NOT_EVALUATED)]
    failed = [s for s in evaluation.skipped if s.problem.startswith(_NOT_EVALUATED)]
    return evaluation.rule_set, evaluated, unmapped + failed


_NOT_EVALUATED = "cannot be evaluated: "


JOBS_OPTION = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Processes to evaluate with, export files shared among them (default: every core "
    "available for an export of 32 MB or more, one for a smaller one).",
)
KEEP_GOING_OPTION = click.option(
    "--keep-going",
    is_flag=True,
    help="Exit 0 even when items were left out (each is still named on stderr).",
)


def warn_rules(rule_set: RuleSet) -> None:
    """The rule set's warnings (``ignore_case`` on a number, CSAT on project work...), each
    at its place: every command that loads rules says them, as ``rules check`` does."""
    for diagnostic in rule_set.warnings:
        warn(str(diagnostic))
