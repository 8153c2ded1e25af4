"""Everything a receiver or worker process holds: config, store, rules, connectors.

Rules are reloaded when their files change and a broken edit keeps the last good rule set
in force (:class:`~bridge.rules.loader.LastGoodRules`); ``/status`` says which is running.
Connectors are built once per source and reused (their HTTP sessions and discovery too).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from bridge.config import Config, load_config
from bridge.connectors.base import ConnectorContext, LiveConnector
from bridge.dashboard import DashboardSnapshot, DashboardSource
from bridge.errors import ConfigError, StoreUnavailableError
from bridge.evaluations import read_stored
from bridge.kpi.compute import KpiEngine
from bridge.plugins import Registry, default_registry
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.rules.loader import LastGoodRules, RulesStatus, rule_files
from bridge.store import open_store
from bridge.store.base import Store

__all__ = ["Evaluators", "Runtime", "StoreDashboard"]

log = logging.getLogger("bridge.service")


@dataclass(frozen=True, slots=True)
class Evaluators:
    """The compiled rule engine and KPI engine of one rule set, and that rule set.

    One snapshot serves a whole task: a reload between reading the rules and using the
    engines could otherwise prepare a connector for rules the engines do not evaluate.
    """

    digest: str
    engine: Engine
    kpis: KpiEngine
    rule_set: RuleSet


class StoreDashboard:
    """The dashboard's items: the latest evaluation of every item of the configured
    sources, as every sync, webhook job and timer tick leaves it in the store."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def evaluations(self) -> DashboardSnapshot:
        rule_set = self.runtime.evaluators().rule_set
        sources = [source.name for source in self.runtime.config.sources]
        try:
            stored = read_stored(self.runtime.store, sources)
        except Exception as exc:  # sqlite3 / psycopg errors: the page cannot be made now
            log.exception("dashboard: the store cannot be read")
            raise StoreUnavailableError(f"the store cannot be read: {type(exc).__name__}") from exc
        return DashboardSnapshot(
            stored.evaluated,
            stored.last or datetime.now(UTC),
            rule_set.digest,
            rule_set.kpi.currency,
        )


class Runtime:
    """Process-wide state of the service, built from bridge.yaml."""

    def __init__(
        self, config: Config, *, store: Store | None = None, registry: Registry | None = None
    ) -> None:
        self.config = config
        self.registry = registry or default_registry()
        self.store = store or open_store(config.store)
        self.rules = LastGoodRules(list(config.rules), list(self.registry.operators.values()))
        self._lock = threading.Lock()
        self._connectors: dict[str, LiveConnector] = {}
        self._evaluators: Evaluators | None = None
        self._stamp: tuple[tuple[str, float, int], ...] = ()
        self.refresh_rules()
        #: What GET /dashboard shows: the store's latest evaluation of every item.
        self.dashboard: DashboardSource | None = StoreDashboard(self)

    @classmethod
    def from_file(cls, path: str | Path) -> Runtime:
        return cls(load_config(path))

    def _files_stamp(self) -> tuple[tuple[str, float, int], ...]:
        files, _ = rule_files(self.config.rules)
        stamp = []
        for file in files:
            try:
                info = file.stat()
            except OSError:
                continue
            stamp.append((str(file), info.st_mtime, info.st_size))
        return tuple(stamp)

    def refresh_rules(self) -> RulesStatus:
        """Reload the rules if their files changed since the last look.

        Never raises: whatever goes wrong (an unreadable folder, a rule file that exhausts
        the loader), the last good rule set stays in force and the status carries the error,
        so ``/status`` answers "degraded" with the reason instead of a 500, and keeps saying
        so until the files change again.
        """
        try:
            stamp = self._files_stamp()
            if stamp == self._stamp:
                return self.rules.status()
            self._stamp = stamp
            before = self.rules.status().last_error
            if not self.rules.reload(datetime.now(UTC)):
                status = self.rules.status()
                if status.last_error != before:
                    log.warning(
                        "rules not reloaded, keeping %s: %s",
                        status.digest or "none",
                        status.last_error,
                    )
        except Exception as exc:  # the service keeps the rules it has
            self.rules.fail(exc)
            log.warning("rules not reloaded: %s", self.rules.status().last_error)
        return self.rules.status()

    def evaluators(self) -> Evaluators:
        """Engines for the rule set in force (rebuilt only when it changes)."""
        self.refresh_rules()
        with self._lock:  # read inside: a slower thread must not put back an older rule set
            rule_set = self.rules.current
            if self._evaluators is None or self._evaluators.digest != rule_set.digest:
                self._evaluators = Evaluators(
                    rule_set.digest, Engine(rule_set), KpiEngine(rule_set), rule_set
                )
            return self._evaluators

    def connector(self, source: str) -> LiveConnector:
        with self._lock:
            connector = self._connectors.get(source)
            if connector is None:
                settings = self.config.source(source)
                spec = self.registry.connectors[settings.connector]
                built = spec.factory(
                    settings.settings,
                    ConnectorContext(
                        store=self.store,
                        base_dir=str(settings.base_dir),
                        locate=settings.locate,
                    ),
                )
                if not all(hasattr(built, a) for a in ("fetch", "plan", "apply", "parse_webhook")):
                    raise ConfigError(
                        f"source {source!r}: the {settings.connector} connector "
                        "cannot receive webhooks"
                    )
                connector = cast(LiveConnector, built)
                self._connectors[source] = connector
            return connector

    def close(self) -> None:
        with self._lock:
            for connector in self._connectors.values():
                connector.close()
            self._connectors.clear()
        self.store.close()
