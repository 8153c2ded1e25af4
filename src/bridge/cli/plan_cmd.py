"""``bridge plan``: what a live source would write, previewed from an export of its system.

The admin sees, per item, each field bridge would set (its value in the export now and the
value bridge would write) and the comment or work note, before giving bridge credentials.
The plan comes from the source's real connector (see :mod:`bridge.preview.plan`), so it is
the plan a live sync would make for the same items; nothing is sent anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from bridge.cli import handle_errors, json_text, json_value, plain, warn
from bridge.cli.options import (
    CONFIG_OPTION,
    NOW_OPTION,
    config_from,
    format_option,
    now_from,
    read_items,
    warn_rules,
    warn_skipped,
)
from bridge.cli.output import OUTPUT_OPTION, console_for, write_output
from bridge.connectors import SkippedRecord
from bridge.errors import ConfigError, InputError

if TYPE_CHECKING:
    from bridge.config import SourceConfig
    from bridge.preview.plan import Preview

__all__ = ["plan"]

COMMENT_LINES = 8  # lines of the comment the table shows; JSON has all of it


@click.command()
@CONFIG_OPTION
@click.option(
    "--source", "-s", "source_name", required=True, help="The live source (jira or servicenow)."
)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    type=click.Path(),
    help="An export of that system: a JSON file or a folder of them (repeatable).",
)
@click.option(
    "--fields",
    "fields_path",
    type=click.Path(dir_okay=False),
    help=(
        "The site's own field list: Jira's saved GET /rest/api/3/field answer, or "
        "ServiceNow's sys_choice rows of the write-back columns (a Table API answer)."
    ),
)
@NOW_OPTION
@format_option("table", "json")
@OUTPUT_OPTION
@handle_errors
def plan(
    config_path: str,
    source_name: str,
    inputs: tuple[str, ...],
    fields_path: str | None,
    now_text: str | None,
    output_format: str,
    output: str | None,
) -> None:
    """Preview what a live source would write, from an export: no connection is made."""
    # Imported here: the rest of the command line starts without the KPI and connector code.
    from bridge.connectors.base import ConnectorContext  # noqa: PLC0415
    from bridge.plugins import default_registry, installed_operators  # noqa: PLC0415
    from bridge.preview.plan import SYSTEMS, build_preview  # noqa: PLC0415
    from bridge.rules.loader import load_rules  # noqa: PLC0415

    config = config_from(config_path)
    source = config.source(source_name)
    registry = default_registry()
    spec = registry.connectors[source.connector]
    if not spec.live or source.connector not in SYSTEMS:
        raise ConfigError(
            _not_live(source, [s.name for s in config.sources if s.connector in SYSTEMS])
        )
    rule_set = load_rules(config.rules, installed_operators())
    warn_rules(rule_set)
    now = now_from(now_text)
    skipped: list[SkippedRecord] = []
    items = read_items(inputs, skipped)
    warn_skipped(skipped)
    site = _read_fields(fields_path, source.connector) if fields_path else None
    preview = build_preview(
        source.name,
        source.connector,
        source.settings,
        ConnectorContext(store=None, base_dir=str(source.base_dir), locate=source.locate),
        spec.factory,
        rule_set,
        items,
        now,
        jira_fields=site if source.connector == "jira" else None,
        jira_names=_export_names(inputs) if source.connector == "jira" and site is None else None,
        servicenow_choices=site if source.connector == "servicenow" else None,
    )
    if preview.other_system:
        warn(
            f"{preview.other_system} item(s) of the export are not {source.connector} items "
            f"and were left out"
        )
    if output_format == "json":
        for note in preview.assumptions:
            warn(note)
        write_output(json_text(document(preview)), output)
        return
    with console_for(output) as console:
        print_table(console, preview)


def _not_live(source: SourceConfig, live: Sequence[str]) -> str:
    where = source.locate(("connector",))
    names = f" (live sources in {where.path}: {', '.join(live)})" if live else ""
    return (
        f"{where.path}:{where.line}:{where.col}: source {source.name!r} uses the "
        f"{source.connector} connector, which only reads exports; bridge plan previews what "
        f"a live Jira or ServiceNow source would write: name one with -s{names}"
    )


def _read_fields(path: str, system: str) -> list[dict[str, Any]]:
    """``--fields``: Jira's ``GET /field`` answer (a list of field objects), or ServiceNow
    ``sys_choice`` rows (``{"result": [...]}`` or a bare list)."""
    try:
        doc = json.loads(Path(path).read_text("utf-8-sig"))
    except OSError as exc:
        raise InputError(f"--fields: cannot read: {exc.strerror}", path=path) from None
    except ValueError as exc:
        raise InputError(f"--fields: not JSON: {exc}", path=path) from None
    rows = doc.get("result") if isinstance(doc, dict) and system == "servicenow" else doc
    expected = (
        "the answer of GET /rest/api/3/field (a list of fields with id and name)"
        if system == "jira"
        else 'sys_choice rows ({"result": [{"element", "value", "label"}, ...]})'
    )
    key = "id" if system == "jira" else "element"
    if not isinstance(rows, list) or not all(
        isinstance(r, dict) and isinstance(r.get(key), str) for r in rows
    ):
        raise InputError(f"--fields: expected {expected}", path=path)
    return rows


def _export_names(inputs: Sequence[str]) -> dict[str, str]:
    """Field id → name from the Jira export's ``names`` maps (``expand=names``); the files
    have been read once already, so they are known to be JSON."""
    from bridge.connectors.files import export_files  # noqa: PLC0415

    names: dict[str, str] = {}
    for entry in inputs:
        for file in export_files(Path(entry)):
            try:
                doc = json.loads(file.read_text("utf-8-sig"))
            except (OSError, ValueError):
                continue
            found = doc.get("names") if isinstance(doc, dict) else None
            if isinstance(found, Mapping):
                names.update({str(k): str(v) for k, v in found.items() if isinstance(v, str)})
    return names


# -- output -----------------------------------------------------------------------------------


def document(preview: Preview) -> dict[str, Any]:
    """Everything the preview found, for ``-f json``: full comment text and, where the site
    takes rich text, the body as it would be sent."""
    return {
        "source": preview.source,
        "system": preview.system,
        "now": json_value(preview.now),
        "totals": totals(preview),
        "assumptions": preview.assumptions,
        "asked": preview.asked,
        "items": [
            {
                "key": p.key,
                "url": p.url,
                "fields": [
                    {
                        "key": c.key,
                        "field": c.field,
                        "label": c.label,
                        "current": json_value(c.current),
                        "value": json_value(c.value),
                    }
                    for c in p.changes
                ],
                "comment": None
                if p.digest is None
                else {"text": p.comment, "digest": p.digest, "body": _body(p.ops)},
            }
            for p in preview.items
        ],
        "failed": [{"key": k, "error": e} for k, e in preview.failed],
    }


def _body(ops: Sequence[Any]) -> Any:
    from bridge.writeback.plan import UpsertSummary  # noqa: PLC0415

    return next((op.text for op in ops if isinstance(op, UpsertSummary)), None)


def totals(preview: Preview) -> dict[str, int]:
    return {
        "items": preview.evaluated,
        "would_write": len(preview.items),
        "unchanged": preview.unchanged,
        "failed": len(preview.failed),
        "field_writes": preview.field_writes,
        "comments": preview.comments,
    }


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(json_value(value))


def print_table(console: Console, preview: Preview) -> None:
    """Per item, each field (now → then) and the comment's first lines; totals last."""
    what = "comment" if preview.system == "jira" else "work note"
    for note in preview.assumptions:
        console.print(f"[yellow]note:[/] {plain(note)}", highlight=False)
    for p in preview.items:
        console.print(
            f"[bold]{plain(p.key)}[/]" + (f"  {plain(p.url)}" if p.url else ""), highlight=False
        )
        width = max((len(c.label) for c in p.changes), default=0)
        for c in p.changes:
            console.print(
                f"  {plain(c.label.ljust(width))}  {plain(_shown(c.current))} → "
                f"[green]{plain(_shown(c.value))}[/]",
                highlight=False,
            )
        if p.comment is not None:
            lines = p.comment.splitlines() or [""]
            console.print(f"  {what}:", highlight=False)
            for line in lines[:COMMENT_LINES]:
                console.print(f"    {plain(line)}", highlight=False)
            if len(lines) > COMMENT_LINES:
                console.print(
                    f"    … {len(lines) - COMMENT_LINES} more line(s) (-f json has all)",
                    highlight=False,
                )
    for key, reason in preview.failed:
        console.print(f"[red]failed[/] {plain(key)}: {plain(reason)}", highlight=False)
    t = totals(preview)
    console.print(
        f"[bold]{plain(preview.source)}[/]: {t['items']} item(s) planned offline: would write "
        f"{t['would_write']} ({t['field_writes']} field value(s), {t['comments']} {what}(s)), "
        f"{t['unchanged']} unchanged"
        + (f", {t['failed']} failed" if t["failed"] else "")
        + f"; nothing was sent to {preview.system}",
        highlight=False,
    )
