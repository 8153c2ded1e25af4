"""``bridge.yaml``: loading, validation with file:line:col diagnostics, and secrets.

The file names environment variables or files for every secret (``token_env: JIRA_API_TOKEN``,
``password_file: /run/secrets/sn``) and never holds one: each connector's settings schema
has no key a secret could be written under, so a pasted token is an "unknown key" error
rather than a leak into git.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from bridge.connectors import read_secret
from bridge.errors import ConfigError, ConfigInvalidError, Diagnostic
from bridge.plugins import Registry, default_registry
from bridge.rules.compile import did_you_mean
from bridge.rules.source import Loc, Path_, SourceDoc, parse_yaml
from bridge.rules.validate import schema_errors_for
from bridge.store.records import Backoff, Retention
from bridge.timefmt import parse_duration
from bridge.writeback.values import cadence_warning, option_problems, writeback_key_problem

__all__ = [
    "Config",
    "ConfigInvalidError",
    "Schedule",
    "ServiceSettings",
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
    """``worker:``: retries of failed items, the scheduled-sync lease, retention, and how
    often due timers are taken."""

    backoff: Backoff = field(default_factory=Backoff)
    sync_lease: timedelta = timedelta(minutes=10)
    retention: Retention = field(default_factory=Retention)
    tick: timedelta = timedelta(seconds=30)  # due timers are taken this often


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
        tick=max(duration(section, "tick", base.tick), timedelta(seconds=1)),
        retention=Retention(
            deliveries=duration(keep, "deliveries", base.retention.deliveries),
            audit=duration(keep, "audit", base.retention.audit),
            given_up=duration(keep, "given_up", base.retention.given_up),
        ),
    )


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """``service:``: where ``bridge serve`` reads the bearer token for the detail of
    ``/status`` and for ``/metrics`` (a file relative to bridge.yaml); the token itself is
    read when the service starts (``bridge.service.app.read_status_token``)."""

    status_token_env: str | None = None
    status_token_file: Path | None = None


def _service_settings(section: Any, base: Path) -> ServiceSettings:
    """The ``service:`` section, already checked against the schema."""
    if not isinstance(section, Mapping):
        return ServiceSettings()
    file = section.get("status_token_file")
    return ServiceSettings(
        status_token_env=section.get("status_token_env"),
        status_token_file=base / file if isinstance(file, str) else None,
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
    service: ServiceSettings = field(default_factory=ServiceSettings)
    # Located ("bridge.yaml:12:9: ...") and worth acting on, but nothing bridge cannot run
    # with: the commands that load bridge.yaml print them (bridge.cli.options.config_from).
    warnings: tuple[str, ...] = ()

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
def _schema() -> Mapping[str, Any]:
    text = resources.files("bridge.schemas").joinpath("config.schema.json").read_text("utf-8")
    schema: Mapping[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(_schema())


def _duration_paths(
    schema: Mapping[str, Any], defs: Mapping[str, Any], data: Any, path: Path_
) -> list[tuple[Path_, Any]]:
    """Every value of the document that the schema says is a duration, with its path."""
    ref = schema.get("$ref")
    if ref == "#/$defs/duration":
        return [(path, data)]
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        schema = defs.get(ref.rsplit("/", 1)[-1], {})
    found: list[tuple[Path_, Any]] = []
    if isinstance(data, Mapping):
        for key, sub in (schema.get("properties") or {}).items():
            if key in data:
                found.extend(_duration_paths(sub, defs, data[key], (*path, key)))
    elif isinstance(data, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(data):
            found.extend(_duration_paths(schema["items"], defs, item, (*path, i)))
    return found


def _duration_problems(doc: SourceDoc, reported: list[Diagnostic]) -> list[Diagnostic]:
    """Durations the schema's pattern lets through but bridge cannot use (``999999w``: the
    schema bounds the digits, not the years), at their lines rather than as a crash later
    in the worker's date arithmetic. Places the schema already reported are left to it."""
    schema: Mapping[str, Any] = _schema()
    taken = {(d.line, d.col) for d in reported}
    problems = []
    for path, value in _duration_paths(schema, schema.get("$defs", {}), doc.data, ()):
        if not isinstance(value, str):
            continue  # the schema reports it
        try:
            parse_duration(value)
        except ValueError as exc:
            problem = doc.diag(path, str(exc))
            if (problem.line, problem.col) not in taken:
                problems.append(problem)
    return problems


def _writeback_fields(source: Mapping[str, Any]) -> Mapping[str, Any]:
    writeback = source.get("writeback")
    fields = writeback.get("fields") if isinstance(writeback, Mapping) else None
    return fields if isinstance(fields, Mapping) else {}


def _writeback_problems(doc: SourceDoc, index: int, source: Mapping[str, Any]) -> list[Diagnostic]:
    """``writeback.fields`` keys that name nothing bridge computes, and a ``round`` or
    ``refresh`` the key cannot take. Checked here, for every connector alike and at their
    lines: such a key was accepted and its field cleared on every write, and such an option
    would silently do nothing."""
    problems = []
    for key, entry in _writeback_fields(source).items():
        path = ("sources", index, "writeback", "fields", key)
        problem = writeback_key_problem(str(key))
        if problem:
            problems.append(doc.diag(path, problem, key=True))
        found = option_problems(str(key), entry)
        problems.extend(doc.diag((*path, *p.path), p.message) for p in found)
    return problems


def _writeback_warnings(doc: SourceDoc, index: int, source: Mapping[str, Any]) -> list[str]:
    """Figures that move with the clock written back without a ``refresh``, at their keys."""
    found = []
    for key, entry in _writeback_fields(source).items():
        warning = cadence_warning(str(key), entry)
        if warning:
            path = ("sources", index, "writeback", "fields", key)
            found.append(str(doc.diag(path, warning, key=True)))
    return found


def _live(source: Any, registry: Registry) -> bool:
    """Whether a source's connector talks to a live system (unknown ones are reported
    elsewhere; they count as live here so that one problem gives one message)."""
    connector = source.get("connector") if isinstance(source, Mapping) else None
    spec = registry.connectors.get(connector) if isinstance(connector, str) else None
    return spec is None or spec.live


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
        {p[2:] for p in doc.unreadable if p[:2] == ("sources", index)},
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
    problems.extend(_duration_problems(doc, problems))
    sources = doc.data.get("sources") if isinstance(doc.data, Mapping) else None
    seen: dict[str, int] = {}
    warnings: list[str] = []
    if isinstance(sources, list):
        for index, source in enumerate(sources):
            if not isinstance(source, Mapping):
                continue
            problems.extend(_source_problems(doc, index, source, registry))
            problems.extend(_writeback_problems(doc, index, source))
            warnings.extend(_writeback_warnings(doc, index, source))
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
        elif isinstance(name, str) and isinstance(sources, list):
            source = sources[seen[name]]
            if _live(source, registry):
                continue
            kind = source.get("connector")
            problems.append(
                doc.diag(
                    ("schedules", index, "source"),
                    f"source {name!r} uses the {kind} connector, which only reads exports: "
                    "there is nothing to sync on a schedule; schedule a jira or servicenow "
                    "source, or run bridge classify on the export",
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
        service=_service_settings(doc.data.get("service"), base),
        warnings=tuple(warnings),
    )


def secret(
    settings: Mapping[str, Any],
    key: str,
    *,
    source: str,
    required: bool = True,
    base_dir: str | Path | None = None,
) -> str | None:
    """The secret ``key`` from ``<key>_env`` (an environment variable) or ``<key>_file``;
    see :func:`bridge.connectors.read_secret`, which never quotes either value.

    :raises ConfigError: it is required and neither is set, or the variable/file is empty.
    """
    return read_secret(settings, key, source=source, required=required, base_dir=base_dir)
