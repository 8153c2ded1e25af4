"""``bridge status``: what is still to be written, and what was given up and why."""

from __future__ import annotations

import json

import click
from rich.table import Table

from bridge.cli import handle_errors, plain, stdout
from bridge.cli.options import CONFIG_OPTION, config_from, format_option

__all__ = ["status"]


@click.command()
@CONFIG_OPTION
@format_option("table", "json")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@handle_errors
def status(config_path: str, output_format: str, limit: int) -> None:
    """Items waiting to be written per source, and those given up with their last error.

    Exit 1 when an item was given up (for monitoring), 0 otherwise.
    """
    from bridge.store import open_store  # noqa: PLC0415
    from bridge.store.summary import pending_status, timer_status  # noqa: PLC0415

    config = config_from(config_path)
    store = open_store(config.store)
    try:
        summary = pending_status(store, limit=limit)
        summary["timers"] = timer_status(store)
    finally:
        store.close()
    if output_format == "json":
        stdout.print_json(json.dumps(summary))
    else:
        counts = Table(title="pending items", header_style="bold")
        for column in ("source", "waiting", "given up"):
            counts.add_column(column, justify="left" if column == "source" else "right")
        for source, row in summary["by_source"].items():
            counts.add_row(plain(source), str(row["waiting"]), str(row["given_up"]))
        if not summary["by_source"]:
            stdout.print("nothing pending: every item is written")
        else:
            stdout.print(counts)
        if summary["given_up"]:
            given = Table(title="given up", header_style="bold")
            for column in ("source", "item", "attempts", "waiting since", "last error"):
                given.add_column(column, overflow="fold")
            for row in summary["given_up"]:
                given.add_row(
                    plain(row["source"]),
                    plain(row["key"]),
                    str(row["attempts"]),
                    plain(row["since"]),
                    plain(row["last_error"] or ""),
                )
            stdout.print(given)
        timers = summary["timers"]
        waiting = sum(timers["by_source"].values())
        stdout.print(
            f"{waiting} item(s) with a timer (a written value changes with time)"
            + (
                f"; the earliest is {timers['lag_seconds']:g} s overdue"
                if timers["lag_seconds"]
                else ""
            )
        )
        for due in timers["next"]:
            stdout.print(
                f"  next: {plain(due['source'])} {plain(due['key'])} at {plain(due['due'])}"
            )
    if summary["given_up"]:
        raise SystemExit(1)
