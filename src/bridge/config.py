"""``bridge.yaml``: loading, validation with file:line:col diagnostics, and secrets.

The file names environment variables or files for every secret (``token_env: JIRA_API_TOKEN``,
``password_file: /run/secrets/sn``) and never holds one: each connector's settings schema
has no key a secret could be written under, so a pasted token is an "unknown key" error
rather than a leak into git.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from bridge.errors import ConfigError, ConfigInvalidError, Diagnostic
from bridge.plugins import Registry, default_registry
from bridge.rules.compile import did_you_mean
from bridge.rules.source import Loc, Path_, SourceDoc, parse_yaml
from bridge.rules.validate import schema_errors_for
from bridge.store.records import Backoff, Retention
from bridge.timefmt import parse_duration

__all__ = [
    "Config",
    "ConfigInvalidError",
    "Schedule",
    "SourceConfig",
    "WorkerSettings",
    "load_config",
    "secret",
]


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``sources:`` entry: its name, connector, and the settings as written."""

    name: str
    connector: str
    settings: Mapping[str, Any]
    base_dir: Path
    file: str = "bridge.yaml"
    positions: Mapping[Path_, Loc] = field(default_factory=dict, compare=False, repr=False)

    def locate(self, path: Path_) -> Diagnostic:
        """Where the value at ``path`` (inside this ``sources:`` entry) was written, as an
        empty diagnostic: a connector that finds a problem only once it has asked the site
        (a select option the site lacks) still names the line of bridge.yaml to change."""
        current = tuple(path)
        while current and current not in self.positions:
            current = current[:-1]
        loc = self.positions.get(current, Loc(1, 1))
        return Diagnostic(self.file, loc.line, loc.col, "")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A scheduled sync of one source (cron in UTC); ``full`` ignores the cursor."""

    source: str
    cron: str
    full: bool = False


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """``worker:``: retries of failed items, the scheduled-sync lease, retention."""

    backoff: Backoff = field(default_factory=Backoff)
    sync_lease: timedelta = timedelta(minutes=10)
    retention: Retention = field(default_factory=Retention)


def _worker_settings(section: Any) -> WorkerSettings:
    """The ``worker:`` section, already checked against the schema (durations included)."""
    if not isinstance(section, Mapping):
        return WorkerSettings()
    base = WorkerSettings()
    retry = section.get("retry") or {}
    keep = section.get("retention") or {}

    def duration(mapping: Mapping[str, Any], key: str, default: timedelta) -> timedelta:
        value = mapping.get(key)
        return parse_duration(value) if isinstance(value, str) else default

    return WorkerSettings(
        backoff=Backoff(
            max_attempts=int(retry.get("max_attempts", base.backoff.max_attempts)),
            first=duration(retry, "first", base.backoff.first),
            cap=duration(retry, "cap", base.backoff.cap),
        ),
        sync_lease=duration(section, "sync_lease", base.sync_lease),
        retention=Retention(
            deliveries=duration(keep, "deliveries", base.retention.deliveries),
            audit=duration(keep, "audit", base.retention.audit),
            given_up=duration(keep, "given_up", base.retention.given_up),
        ),
    )


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    rules: tuple[Path, ...]
    store: str | None
    queue: str | None
    sources: tuple[SourceConfig, ...]
    schedules: tuple[Schedule, ...] = ()
    worker: WorkerSettings = field(default_factory=WorkerSettings)

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        names = [s.name for s in self.sources]
        raise ConfigError(
            f"no source named {name!r} in {self.path}"
            f"{did_you_mean(name, names)} (sources: {', '.join(names)})"
        )


@cache
def _validator() -> Draft202012Validator:
    text = resources.files("bridge.schemas").joinpath("config.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def _source_problems(
    doc: SourceDoc, index: int, source: Mapping[str, Any], registry: Registry
) -> list[Diagnostic]:
    connector = source.get("connector")
    if not isinstance(connector, str):
        return []
    spec = registry.connectors.get(connector)
    if spec is None:
        hint = did_you_mean(connector, list(registry.connectors))
        return [
            doc.diag(
                ("sources", index, "connector"),
                f"unknown connector {connector!r}"
                f"{hint} (installed: {', '.join(sorted(registry.connectors))})",
            )
        ]
    if spec.settings_schema is None:
        return []
    validator = Draft202012Validator(dict(spec.settings_schema))
    # Validate the source on its own, then shift paths under sources[index].
    shifted = SourceDoc(
        doc.path,
        source,
        {p[2:]: loc for p, loc in doc.values.items() if p[:2] == ("sources", index)},
        {p[2:]: loc for p, loc in doc.keys.items() if p[:2] == ("sources", index)},
    )
    return schema_errors_for(shifted, validator)


def load_config(path: str | Path, registry: Registry | None = None) -> Config:
    """Read and check bridge.yaml; every problem is reported at once, with its position."""
    registry = registry or default_registry()
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    doc, problems = parse_yaml(str(file), data)
    if doc is None:
        raise ConfigInvalidError(problems)
    problems.extend(schema_errors_for(doc, _validator()))
    sources = doc.data.get("sources") if isinstance(doc.data, Mapping) else None
    seen: dict[str, int] = {}
    if isinstance(sources, list):
        for index, source in enumerate(sources):
            if not isinstance(source, Mapping):
                continue
            problems.extend(_source_problems(doc, index, source, registry))
            name = source.get("name")
            if isinstance(name, str):
                if name in seen:
                    problems.append(
                        doc.diag(("sources", index, "name"), f"source name {name!r} is used twice")
                    )
                seen[name] = index
    schedules = doc.data.get("schedules") if isinstance(doc.data, Mapping) else None
    for index, entry in enumerate(schedules if isinstance(schedules, list) else []):
        name = entry.get("source") if isinstance(entry, Mapping) else None
        if isinstance(name, str) and name not in seen:
            problems.append(
                doc.diag(
                    ("schedules", index, "source"),
                    f"no source named {name!r}{did_you_mean(name, list(seen))}",
                )
            )
    if problems:
        # Both schemas may see one problem; the error sorts what is left.
        raise ConfigInvalidError(list(set(problems)))
    base = file.parent
    rules = doc.data.get("rules", "rules")
    rule_paths = tuple(base / p for p in ([rules] if isinstance(rules, str) else rules))
    return Config(
        path=file,
        rules=rule_paths,
        store=doc.data.get("store"),
        queue=doc.data.get("queue"),
        sources=tuple(
            SourceConfig(
                s["name"],
                s["connector"],
                s,
                base,
                str(file),
                {p[2:]: loc for p, loc in doc.values.items() if p[:2] == ("sources", index)},
            )
            for index, s in enumerate(sources or [])
        ),
        schedules=tuple(
            Schedule(e["source"], e["cron"], bool(e.get("full", False))) for e in schedules or []
        ),
        worker=_worker_settings(doc.data.get("worker")),
    )


def secret(
    settings: Mapping[str, Any],
    key: str,
    *,
    source: str,
    required: bool = True,
    base_dir: str | Path | None = None,
) -> str | None:
    """The secret ``key`` from ``<key>_env`` (an environment variable) or ``<key>_file``.

    A relative ``<key>_file`` is read relative to ``base_dir`` (the folder of bridge.yaml).

    :raises ConfigError: it is required and neither is set, or the variable/file is empty.
    """
    env_name = settings.get(f"{key}_env")
    file_name = settings.get(f"{key}_file")
    if isinstance(env_name, str):
        value = os.environ.get(env_name, "")
        if value:
            return value
        if not isinstance(file_name, str):
            raise ConfigError(
                f"source {source!r}: the environment variable {env_name} "
                f"({key}_env) is not set or empty; export it before starting"
            )
    if isinstance(file_name, str):
        path = Path(file_name)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        try:
            value = path.read_text("utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"source {source!r}: cannot read {key}_file {file_name}: {exc.strerror}"
            ) from None
        if value:
            return value
        raise ConfigError(f"source {source!r}: {key}_file {file_name} is empty")
    if required:
        raise ConfigError(
            f"source {source!r}: give {key}_env (an environment variable) or "
            f"{key}_file (a file) for the {key.replace('_', ' ')}"
        )
    return None
