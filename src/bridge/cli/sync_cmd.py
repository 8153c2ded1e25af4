"""``bridge sync``: pull a live source once, classify, compute KPIs and write them back."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from bridge.cli import handle_errors, plain, stderr, stdout
from bridge.cli.options import CONFIG_OPTION, NOW_OPTION, config_from, now_from, warn_rules
from bridge.cli.progress import progress
from bridge.connectors import SecretError
from bridge.connectors.base import ConnectorContext, LiveConnector
from bridge.errors import ConfigError
from bridge.plugins import default_registry, installed_operators
from bridge.rules.loader import load_rules

if TYPE_CHECKING:
    from datetime import datetime

    from bridge.config import SourceConfig
    from bridge.plugins import Registry
    from bridge.rules.ast import RuleSet
    from bridge.store.base import Store
    from bridge.sync import SyncReport

__all__ = ["sync"]


@click.command()
@CONFIG_OPTION
@click.option(
    "--source",
    "-s",
    "sources",
    multiple=True,
    help="Sync only this source (repeatable; default: all).",
)
@click.option("--dry-run", is_flag=True, help="Plan the writes and show them; write nothing.")
@click.option("--full", is_flag=True, help="Ignore the cursor: pull everything in scope.")
@NOW_OPTION
@handle_errors
def sync(
    config_path: str, sources: tuple[str, ...], dry_run: bool, full: bool, now_text: str | None
) -> None:
    """Sync live sources once: pull what changed, classify, compute KPIs, write back."""
    # Imported here so that every other command starts without the KPI and store code.
    from bridge.store import open_store  # noqa: PLC0415

    config = config_from(config_path)
    registry = default_registry()
    selected = [config.source(name) for name in sources] if sources else list(config.sources)
    for source in selected:  # refused before anything is read, opened or created
        if not registry.connectors[source.connector].live:
            raise ConfigError(
                f"source {source.name!r}: the {source.connector} connector only reads; "
                "use bridge classify for it, and to see what a live Jira or ServiceNow "
                "source would write, preview it from an export: bridge plan -c "
                f"{config_path} -s <live source> -i <export>"
            )
    rule_set = load_rules(config.rules, installed_operators())
    warn_rules(rule_set)
    now = now_from(now_text)
    store = open_store(config.store)
    failed = False
    try:
        with _stop_on_signals() as stop:
            for source in selected:
                try:
                    report = _sync_one(
                        source, registry, store, rule_set, now, full, dry_run, stop.event
                    )
                except SecretError as exc:
                    # The message names the setting, never its value; its line says which.
                    raise exc.at(source.locate(exc.setting)) from None
                _print(report)
                failed = failed or not report.ok
                if stop.signal:
                    break
    finally:
        store.close()
    if stop.signal:
        stderr.print(
            "[yellow]interrupted[/]: the writes under way were finished; the next sync "
            "takes up where this one stopped",
            highlight=False,
        )
        raise SystemExit(128 + stop.signal)
    if failed:
        raise SystemExit(1)


class _Stop:
    """A stop asked for by a signal: the event the sync watches, and which signal it was."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = 0


@contextmanager
def _stop_on_signals() -> Iterator[_Stop]:
    """Ctrl-C (SIGINT) and SIGTERM ask the sync to stop between two items, once the writes
    under way are finished; a second one ends the process at once.

    Why not Python's KeyboardInterrupt: it is raised wherever the main thread is, and
    raised inside a lock's ``__enter__`` it leaves the lock held, so the writer threads
    wait for it forever (the chaos harness found a sync hung that way). Ending at once is
    ``os._exit``: what was committed stays, the lease of a dead process is taken over, and
    a write whose outcome is unknown is looked up before anything is written again."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # only the main thread may set handlers (a test runner's thread)
        return

    def ask(signum: int, frame: object) -> None:
        if stop.event.is_set():
            os.write(2, b"bridge: stopped at once\n")
            os._exit(128 + signum)
        stop.signal = signum
        stop.event.set()
        os.write(2, b"bridge: stopping once the writes under way are finished (again: at once)\n")

    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sync_one(
    source: SourceConfig,
    registry: Registry,
    store: Store,
    rule_set: RuleSet,
    now: datetime,
    full: bool,
    dry_run: bool,
    stop: threading.Event,
) -> SyncReport:
    from bridge.sync import sync_source  # noqa: PLC0415 - see sync

    spec = registry.connectors[source.connector]
    connector = spec.factory(
        source.settings,
        ConnectorContext(store=store, base_dir=str(source.base_dir), locate=source.locate),
    )
    if not all(hasattr(connector, a) for a in ("fetch", "plan", "apply")):
        raise ConfigError(
            f"source {source.name!r}: the {source.connector} connector "
            "only reads; use bridge classify for it"
        )
    live: LiveConnector = connector  # type: ignore[assignment]
    try:
        with progress(f"{source.name}: items pulled") as advance:
            return sync_source(
                source.name,
                live,
                rule_set,
                store,
                now,
                full=full,
                dry_run=dry_run,
                concurrency=getattr(live, "concurrency", 8),
                on_item=lambda _: advance(1),
                stop=stop,
            )
    finally:
        live.close()


def _print(report: SyncReport) -> None:
    what = "would write" if report.dry_run else "wrote"
    stdout.print(
        f"[bold]{plain(report.source)}[/]: pulled {report.pulled} (since "
        f"{report.since.isoformat() if report.since else 'the beginning'}), "
        f"{report.unchanged} unchanged, {report.duplicates} already handled"
        + (f", {report.retried} pending retried" if report.retried else "")
        + f"; {what} "
        f"{len(report.planned) if report.dry_run else report.items_written} item(s)"
        + (
            ""
            if report.dry_run
            else f": {report.field_writes} field value(s), {report.comment_writes} summary"
        ),
        highlight=False,
    )
    for key, ops in report.planned.items():
        stdout.print(f"  {plain(key)}: {plain(ops)}")
    for key, reason in report.skipped:
        stdout.print(f"  [yellow]skipped[/] {plain(key)}: {plain(reason)}")
    for key, reason in report.failed:
        stdout.print(f"  [red]failed[/] {plain(key)}: {plain(reason)}")
    if report.failed and not report.dry_run:
        stdout.print(
            "  failed items stay pending: the next sync or the worker retries them "
            "(bridge status -c … lists them)",
            highlight=False,
        )
