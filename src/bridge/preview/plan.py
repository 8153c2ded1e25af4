"""The write-back plan of a live source, made from an export instead of the live system.

An admin wants to see what bridge would write before giving it credentials. A preview that
re-implemented planning would drift from the connector's; so this builds the *real*
connector of the source (its settings from bridge.yaml, dummy credentials: nothing is ever
sent), answers the few questions its discovery asks from an offline site
(:mod:`bridge.preview.offline_site`), and runs each exported item through
:func:`bridge.sync.evaluate`, the function a sync runs — cadence and rounding included.

What the offline site cannot know (a field's kind when no field list was saved, a select's
options) is assumed, and every assumption is returned in :attr:`Preview.assumptions` so the
command can say it.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from bridge.connectors.base import ConnectorContext, LiveConnector
from bridge.errors import BridgeError, ConfigError
from bridge.kpi.compute import KpiEngine
from bridge.model import WorkItem
from bridge.preview.offline_site import (
    JiraAnswers,
    OfflineAdapter,
    OfflineRequestError,
    ServiceNowAnswers,
    mount_offline,
)
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.sync import evaluate
from bridge.writeback.plan import SetFields, UpsertSummary, WriteOp
from bridge.writeback.values import numeric, writeback_key_problem

__all__ = [
    "SYSTEMS",
    "FieldChange",
    "ItemPlan",
    "Preview",
    "adf_text",
    "build_preview",
    "jira_field_list",
    "offline_settings",
]

#: The live connectors a preview knows the discovery of.
SYSTEMS = ("jira", "servicenow")

_OPT = "com.atlassian.jira.plugin.system.customfieldtypes:"
_CUSTOM_ID = re.compile(r"customfield_(\d+)")
# The schema a synthesised field gets, by the kind of value bridge writes into it.
_SCHEMAS: Mapping[str, Mapping[str, str]] = {
    "number": {"type": "number", "custom": _OPT + "float"},
    "string": {"type": "string", "custom": _OPT + "textfield"},
    "datetime": {"type": "datetime", "custom": _OPT + "datetime"},
}
_KIND_WORDS = {"number": "a number", "string": "a text", "datetime": "a date-time"}
_DUMMY = "offline-preview"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field bridge would set: where, what it holds in the export, what it would hold."""

    key: str  # the writeback key (work_type, evm.spi, ...)
    field: str  # the field id or column
    label: str  # how people know the field
    current: Any
    value: Any


@dataclass(frozen=True, slots=True)
class ItemPlan:
    """What bridge would write to one item: exactly the ops the connector planned, and the
    same in words for people."""

    key: str
    url: str | None
    ops: tuple[WriteOp, ...]
    changes: tuple[FieldChange, ...]
    comment: str | None  # the comment or work note as plain text
    digest: str | None


@dataclass
class Preview:
    """A whole preview: the planned items, what was left alone and what was assumed."""

    source: str
    system: str
    now: datetime
    items: list[ItemPlan] = field(default_factory=list)
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    other_system: int = 0  # items of the export from another system, left out
    assumptions: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # requests the offline site answered

    @property
    def evaluated(self) -> int:
        return len(self.items) + self.unchanged + len(self.failed)

    @property
    def field_writes(self) -> int:
        return sum(len(p.changes) for p in self.items)

    @property
    def comments(self) -> int:
        return sum(1 for p in self.items if p.digest is not None)

    @property
    def planned(self) -> dict[str, list[WriteOp]]:
        """Key → ops, shaped as :attr:`bridge.sync.SyncReport.planned`."""
        return {p.key: list(p.ops) for p in self.items}


# -- settings: the source's, with credentials nobody needs ------------------------------------


def offline_settings(
    settings: Mapping[str, Any], secret_file: str, *, deployment: str | None = None
) -> dict[str, Any]:
    """The source's settings with every credential replaced by a dummy: the preview never
    reads the real secrets (they may not even exist where an admin tries bridge out), so
    each ``*_env`` / ``*_file`` under ``auth`` names ``secret_file`` instead, and a user or
    e-mail read from the environment becomes a literal."""
    out = copy.deepcopy(dict(settings))
    if isinstance(out.get("auth"), Mapping):
        out["auth"] = _dummy_auth(out["auth"], secret_file)
    if deployment is not None and out.get("connector") == "jira":
        out.setdefault("deployment", deployment)
    return out


def _dummy_auth(section: Mapping[str, Any], secret_file: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, Mapping):
            out[key] = _dummy_auth(value, secret_file)
            continue
        base, _, suffix = key.rpartition("_")
        if suffix in ("env", "file") and base:
            if base in ("user", "email"):
                out[base] = _DUMMY
            else:
                out[f"{base}_file"] = secret_file
            continue
        out[key] = value
    return out


@contextmanager
def _dummy_secret() -> Any:
    """A private file holding a dummy secret, removed once the connector is built (the
    connectors read their credentials when they are constructed)."""
    handle, name = tempfile.mkstemp(prefix="bridge-plan-", suffix=".secret")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(_DUMMY)
        yield name
    finally:
        Path(name).unlink(missing_ok=True)


# -- the Jira field list ---------------------------------------------------------------------


def _assumed_kind(key: str) -> str:
    """The field kind bridge's value for ``key`` fits: numbers in number fields, instants
    in date-time fields, everything else (text, yes/no) in text fields."""
    if writeback_key_problem(key) is None and numeric(key):
        return "number"
    if key.startswith("sla.") and key.endswith(".breach_time"):
        return "datetime"
    return "string"


def jira_field_list(
    names: Mapping[str, str], writeback: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """A ``GET /field`` answer synthesised from an export's ``names`` map (id → name) and the
    fields ``writeback.fields`` names, and the assumptions it makes (one per write-back
    field, whose kind no export records)."""
    entries: dict[str, dict[str, Any]] = {
        fid: {"id": fid, "key": fid, "name": name, "custom": fid.startswith("customfield_")}
        for fid, name in names.items()
    }
    numbers = [int(m.group(1)) for fid in entries if (m := _CUSTOM_ID.fullmatch(fid))]
    following = max([10_000, *numbers]) + 1
    assumed: list[str] = []
    for key, ref in writeback.items():
        kind = _assumed_kind(key)
        entry = entries.get(ref) or next(
            (e for e in entries.values() if str(e["name"]).casefold() == ref.casefold()), None
        )
        if entry is None:
            match = _CUSTOM_ID.fullmatch(ref)
            number = int(match.group(1)) if match else following
            following = max(following, number) + 1
            fid = f"customfield_{number}"
            entry = entries[fid] = {"id": fid, "key": fid, "name": ref, "custom": True}
        own = _CUSTOM_ID.fullmatch(entry["id"])
        entry["schema"] = {**_SCHEMAS[kind], **({"customId": int(own.group(1))} if own else {})}
        assumed.append(
            f"writeback.fields.{key}: assumed {ref!r} is {_KIND_WORDS[kind]} field; pass "
            "--fields with the site's GET /rest/api/3/field answer for its own"
        )
    return list(entries.values()), assumed


# -- the preview -----------------------------------------------------------------------------


def _session(connector: object) -> requests.Session:
    """The session the connector's client sends through (both built-in clients keep one
    ``HttpClient`` as ``client.http``)."""
    session = getattr(getattr(getattr(connector, "client", None), "http", None), "session", None)
    if not isinstance(session, requests.Session):
        raise ConfigError(
            "bridge plan cannot reach this connector's HTTP session, so it cannot keep its "
            "requests offline; no preview is made"
        )
    return session


def build_preview(
    source: str,
    system: str,
    settings: Mapping[str, Any],
    context: ConnectorContext,
    factory: Callable[[Mapping[str, Any], ConnectorContext], object],
    rule_set: RuleSet,
    items: Iterable[WorkItem],
    now: datetime,
    *,
    jira_fields: Sequence[Mapping[str, Any]] | None = None,
    jira_names: Mapping[str, str] | None = None,
    servicenow_choices: Sequence[Mapping[str, Any]] | None = None,
) -> Preview:
    """Plan every item of ``system`` in ``items`` as a live sync of ``source`` would.

    :param jira_fields: the site's ``GET /field`` answer; without it one is synthesised
        from ``jira_names`` (the export's ``names``) and the write-back fields.
    :param servicenow_choices: the instance's ``sys_choice`` rows; without them every
        write-back column is taken as free text.
    :raises OfflineRequestError: the connector asked something the export cannot answer.
    """
    if system not in SYSTEMS:
        raise ConfigError(
            f"source {source!r}: bridge plan knows the {' and '.join(SYSTEMS)} connectors; "
            f"{system!r} is not one of them"
        )
    preview = Preview(source, system, now)
    writeback = _writeback_fields(settings)
    answers: Callable[[str, str, Mapping[str, list[str]]], Any]
    deployment: str | None = None
    if system == "jira":
        deployment = str(settings.get("deployment") or "cloud")
        if "deployment" not in settings and "atlassian.net" not in str(settings.get("url")):
            preview.assumptions.append(
                "assumed Jira Cloud (comments as ADF); set deployment: datacenter in the "
                "source for a Data Center site"
            )
        if jira_fields is None:
            jira_fields, assumed = jira_field_list(jira_names or {}, writeback)
            preview.assumptions.extend(assumed)
        answers = JiraAnswers(jira_fields, deployment=deployment)
    else:
        if servicenow_choices is None and writeback:
            preview.assumptions.append(
                f"assumed the columns {', '.join(sorted(set(writeback.values())))} take free "
                "text (no choice list); pass --fields with the instance's sys_choice rows "
                "for them"
            )
        answers = ServiceNowAnswers(servicenow_choices or ())
    adapter = OfflineAdapter(answers, system)
    with _dummy_secret() as secret:
        connector = factory(offline_settings(settings, secret, deployment=deployment), context)
    try:
        mount_offline(_session(connector), adapter)
        live: LiveConnector = connector  # type: ignore[assignment]
        _plan_items(preview, live, rule_set, items, now, writeback)
    finally:
        close = getattr(connector, "close", None)
        if close is not None:
            close()
    preview.asked = list(adapter.seen)
    return preview


def _writeback_fields(settings: Mapping[str, Any]) -> dict[str, str]:
    section = settings.get("writeback")
    fields = section.get("fields") if isinstance(section, Mapping) else None
    out: dict[str, str] = {}
    for key, ref in (fields or {}).items():
        target = ref.get("field") if isinstance(ref, Mapping) else ref
        if isinstance(target, str):
            out[str(key)] = target
    return out


def _plan_items(
    preview: Preview,
    connector: LiveConnector,
    rule_set: RuleSet,
    items: Iterable[WorkItem],
    now: datetime,
    writeback: Mapping[str, str],
) -> None:
    """As :func:`bridge.sync.sync_source` with ``dry_run``: prepare, then evaluate each item
    on its own (one that fails is listed, the others go on)."""
    engine, kpis = Engine(rule_set), KpiEngine(rule_set)
    connector.prepare(rule_set)
    describe = _Describer(preview.system, connector, writeback)
    for item in items:
        if item.system != preview.system:
            preview.other_system += 1
            continue
        try:
            ops = evaluate(item, engine, kpis, connector, now).ops
        except OfflineRequestError:
            raise
        except Exception as exc:  # as a sync records it: the item fails, the rest go on
            message = (
                str(exc)
                if isinstance(exc, BridgeError)
                else f"internal error: {type(exc).__name__}: {exc}"
            )
            preview.failed.append((item.key, message))
            continue
        if not ops:
            preview.unchanged += 1
            continue
        preview.items.append(describe(item, ops))


def adf_text(doc: Any) -> str:
    """An ADF comment as people read it: a line per paragraph or heading, and a table row
    as ``  name: value`` (Jira shows the cells side by side)."""
    lines: list[str] = []

    def text_of(node: Any) -> str:
        if not isinstance(node, Mapping):
            return ""
        if node.get("type") == "text":
            return str(node.get("text", ""))
        return "".join(text_of(child) for child in node.get("content") or ())

    def walk(node: Any) -> None:
        if not isinstance(node, Mapping):
            return
        kind = node.get("type")
        if kind == "tableRow":
            cells = [text_of(cell) for cell in node.get("content") or ()]
            lines.append("  " + ": ".join(cells))
        elif kind in ("paragraph", "heading"):
            lines.append(text_of(node) + (":" if kind == "heading" else ""))
        else:
            for child in node.get("content") or ():
                walk(child)

    walk(doc)
    return "\n".join(lines)


class _Describer:
    """Ops in people's words: the field's name, its value in the export, the comment text."""

    def __init__(self, system: str, connector: LiveConnector, writeback: Mapping[str, str]) -> None:
        self.system = system
        self.labels: dict[str, tuple[str, str]] = {}  # field id → (key, label)
        if system == "jira":
            spec = connector.write_spec  # type: ignore[attr-defined]
            for fid, target in spec.targets_by_id.items():
                self.labels[fid] = (spec.keys_by_id[fid], target.name)
        else:
            for key, column in writeback.items():
                self.labels[column] = (key, column)

    def current(self, item: WorkItem, fid: str) -> Any:
        if self.system == "jira":
            fields = item.raw.get("fields")
            value = fields.get(fid) if isinstance(fields, Mapping) else None
        else:
            value = item.raw.get(fid)
        if isinstance(value, Mapping):  # a select's option, a reference
            value = value.get("value", value.get("name", value))
        return None if value == "" else value

    def comment(self, text: Any) -> str:
        return text if isinstance(text, str) else adf_text(text)

    def __call__(self, item: WorkItem, ops: Sequence[WriteOp]) -> ItemPlan:
        changes: list[FieldChange] = []
        comment = digest = None
        for op in ops:
            if isinstance(op, SetFields):
                for fid, value in op.values.items():
                    key, label = self.labels.get(fid, (fid, fid))
                    changes.append(FieldChange(key, fid, label, self.current(item, fid), value))
            elif isinstance(op, UpsertSummary):
                comment, digest = self.comment(op.text), op.digest
        return ItemPlan(item.key, item.url, tuple(ops), tuple(changes), comment, digest)
