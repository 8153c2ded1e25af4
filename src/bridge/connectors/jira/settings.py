"""Settings of a Jira source: the ``sources:`` entry's schema, its validation into
:class:`JiraSettings`, and the credentials it names.

Secrets never appear in ``bridge.yaml``: an entry names the environment variable or the file
that holds each one, and every message here is written so that a secret pasted into the wrong
key is never quoted back into a terminal or a log: not the value, not a variable's name, not
a file's path (:func:`bridge.connectors.read_secret`); the key and its line say where to look.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator

from bridge.connectors import read_secret
from bridge.connectors.jira.client import BasicAuth, BearerAuth, Deployment
from bridge.connectors.jira.mapping import JiraFieldSettings
from bridge.errors import ConfigError, Diagnostic
from bridge.rules.compile import KPI_GROUPS, did_you_mean
from bridge.writeback.values import (
    MAPPED_FIELD_SCHEMA,
    WritebackOptions,
    check_writeback_options,
    split_writeback_fields,
)

__all__ = [
    "OAUTH_GATEWAY",
    "SETTINGS_SCHEMA",
    "AuthKind",
    "JiraSettings",
    "parse_settings",
    "resolve_auth",
]

OAUTH_GATEWAY = "https://api.atlassian.com/ex/jira/"

# No ``pattern`` on names of secrets: a schema error would quote the value, and a secret pasted
# there by mistake must not end up in a message or a log. A pasted API token (192 characters)
# fails maxLength, which quotes nothing; parse_settings checks the rest without quoting.
_ENV = {
    "type": "string",
    "minLength": 1,
    "maxLength": 100,
    "description": "The name of an environment variable holding the secret (not the secret).",
}
_FILE = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1024,
    "description": "A file holding the secret, relative to bridge.yaml.",
}
_CANDIDATES = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
SETTINGS_SCHEMA: Mapping[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "jira source",
    "description": (
        "A Jira Cloud or Data Center site. Secrets are never written here: name the "
        "environment variable (…_env) or the file (…_file) that holds each one."
    ),
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "connector", "url", "auth", "scope"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "connector": {"const": "jira"},
        "description": {"type": "string"},
        "url": {
            "type": "string",
            "pattern": "^https?://[^\\s/?#]+(/[^\\s?#]*)?$",
            "description": "The site: https://your-domain.atlassian.net or the DC base URL.",
        },
        "deployment": {
            "enum": ["cloud", "datacenter"],
            "description": "Without it, bridge asks the site (GET /rest/api/2/serverInfo).",
        },
        "auth": {
            "description": (
                "Cloud: email (or email_env) with token_env or token_file (an API token). "
                "Data Center: pat_env or pat_file (a personal access token). "
                "OAuth 2.0 (3LO): oauth_token_env or oauth_token_file with cloud_id."
            ),
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "email": {"type": "string", "minLength": 1, "maxLength": 254},
                "email_env": _ENV,
                "token_env": _ENV,
                "token_file": _FILE,
                "pat_env": _ENV,
                "pat_file": _FILE,
                "oauth_token_env": _ENV,
                "oauth_token_file": _FILE,
                "cloud_id": {"type": "string", "pattern": "^[0-9A-Za-z-]{1,64}$"},
            },
            "dependentRequired": {
                "oauth_token_env": ["cloud_id"],
                "oauth_token_file": ["cloud_id"],
            },
        },
        "scope": {
            "type": "object",
            "additionalProperties": False,
            "required": ["jql"],
            "properties": {
                "jql": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 4000,
                    "description": "Which issues: a bounded JQL restriction without ORDER BY.",
                }
            },
        },
        "writeback": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "fields": {
                    "description": (
                        "work_type | phase | rule | a KPI name (evm.spi, "
                        "sla.<name>.state...) → a Jira field id or display name."
                    ),
                    "type": "object",
                    "propertyNames": {"pattern": "^(work_type|phase|rule|[a-z]+\\..+)$"},
                    "additionalProperties": {
                        "if": {"type": "string"},
                        "then": {"type": "string", "minLength": 1},
                        "else": MAPPED_FIELD_SCHEMA,
                    },
                },
                "comment": {"type": "boolean", "default": True},
                "notify_users": {"type": "boolean", "default": False},
            },
        },
        "webhook_secret_env": _ENV,
        "webhook_secret_file": _FILE,
        "webhook_unsigned": {"type": "boolean", "default": False},
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "reads_per_second": {"type": "number", "exclusiveMinimum": 0, "default": 100},
                "writes_per_second": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "default": 50,
                    "description": (
                        "Per write endpoint (edit issue, add comment, edit comment, set "
                        "property), as Jira's burst limits are per endpoint and method."
                    ),
                },
                "concurrency": {"type": "integer", "minimum": 1, "maximum": 64, "default": 8},
            },
        },
        "page_size": {"type": "integer", "minimum": 1, "maximum": 5000, "default": 100},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600, "default": 30},
        "ca_bundle": {"type": "string", "minLength": 1},
        "fields": {
            "description": (
                "Where KPI inputs live on this site: field ids or display names, tried in "
                "order (defaults: JiraFieldSettings)."
            ),
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "story_points": _CANDIDATES,
                "planned_start": _CANDIDATES,
                "planned_end": _CANDIDATES,
                "budget": _CANDIDATES,
                "actual_cost": _CANDIDATES,
                "percent_complete": _CANDIDATES,
                "satisfaction": _CANDIDATES,
            },
        },
    },
}

_VALIDATOR = Draft202012Validator(dict(SETTINGS_SCHEMA))
# The keys of ``writeback.fields``, and those whose value is text (not for a number or date
# field).
WRITEBACK_KEY = re.compile(
    r"^(work_type|phase|rule|(?P<group>[a-z]+)\.(?P<short>[a-z_]+)|sla\.(?P<sla>.+)\.(?P<x>[a-z_]+))$"
)
TEXT_KEYS = re.compile(r"^(work_type|phase|rule|sla\..+\.(state|source))$")


@dataclass(frozen=True, slots=True)
class JiraSettings:
    """A validated ``sources:`` entry for Jira (secrets resolved separately)."""

    name: str
    url: str
    jql: str
    deployment: Deployment = "cloud"
    writeback_fields: Mapping[str, str] = field(default_factory=dict)
    writeback_values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # round and refresh of the figures that have them (writeback.fields.<key>: {field, ...})
    writeback_options: Mapping[str, WritebackOptions] = field(default_factory=dict)
    comment: bool = True
    notify_users: bool = False
    reads_per_second: float = 100.0
    writes_per_second: float = 50.0
    concurrency: int = 8
    page_size: int = 100
    timeout: float = 30.0
    ca_bundle: str | None = None
    webhook_unsigned: bool = False
    custom_fields: JiraFieldSettings = field(default_factory=JiraFieldSettings)


def _path_text(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "(the source)"


def _schema_problems(settings: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for error in sorted(_VALIDATOR.iter_errors(settings), key=lambda e: list(e.absolute_path)):
        where = _path_text(error.absolute_path)
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = list(schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    hint = did_you_mean(str(key), allowed) or f" (allowed: {', '.join(allowed)})"
                    problems.append(f"{where}: unknown key {key!r}{hint}")
        elif error.validator == "required":
            missing = [k for k in error.validator_value if k not in error.instance]
            problems.extend(f"{where}: missing required key {k!r}" for k in missing)
        elif isinstance(error.instance, str):
            # Never quote text: it may be a secret pasted into the wrong key.
            problems.append(
                f"{where}: {_text_problem(error.validator, error.validator_value, error.instance)}"
            )
        else:
            problems.append(f"{where}: {error.message}")
    return problems


def _text_problem(validator: Any, expected: Any, text: str) -> str:
    if validator == "maxLength":
        return f"text is {len(text):,} characters long; the limit here is {expected:,}"
    if validator == "minLength":
        return "text must not be empty"
    if validator == "enum":
        return f"must be one of: {', '.join(str(v) for v in expected)}"
    if validator == "const":
        return f"must be {expected!r}"
    if validator == "type":
        return f"expected {expected}, found text"
    return "is not in the expected form (see the description of this setting)"


def _resolve_path(base_dir: str, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else Path(base_dir) / path)


def parse_settings(settings: Mapping[str, Any], base_dir: str = ".") -> JiraSettings:
    """Check a Jira source entry; ConfigError lists every problem at once."""
    name = str(settings.get("name") or "jira")
    problems = _schema_problems(settings)
    if problems:
        raise ConfigError(f"source {name!r}: " + "; ".join(problems))
    url = str(settings["url"]).rstrip("/")
    host = urlsplit(url).hostname or ""
    if url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
        raise ConfigError(
            f"source {name!r}: url {url} is plain http; use https:// (credentials would travel "
            "in clear text) — http is accepted only for localhost"
        )
    jql = str(settings["scope"]["jql"]).strip()
    if re.search(r"\border\s+by\b", jql, re.IGNORECASE):
        raise ConfigError(
            f"source {name!r}: scope.jql must not have ORDER BY: bridge orders by updated "
            "itself (remove the ORDER BY clause)"
        )
    if not re.search(r"[=~<>]|\b(in|is|was|changed)\b", jql, re.IGNORECASE):
        raise ConfigError(
            f"source {name!r}: scope.jql {jql!r} is not a bounded search (Jira Cloud refuses "
            "queries without a restriction); write e.g. project = OPS"
        )
    writeback = settings.get("writeback") or {}
    fields_map, values_map = split_writeback_fields(writeback.get("fields") or {})
    for key in fields_map:
        if not WRITEBACK_KEY.match(key):
            raise ConfigError(
                f"source {name!r}: writeback.fields: {key!r} is not work_type, phase, rule or "
                "a KPI name like evm.spi or sla.time-to-resolution.state"
            )
        match = WRITEBACK_KEY.match(key)
        group = match.group("group") if match else None
        if group == "sla":
            raise ConfigError(
                f"source {name!r}: writeback.fields: {key!r}: an SLA figure is named "
                "sla.<sla name>.<figure>, e.g. sla.time-to-resolution.state"
            )
        if group and group not in KPI_GROUPS:
            raise ConfigError(
                f"source {name!r}: writeback.fields: {key!r} names no KPI group"
                f"{did_you_mean(group, list(KPI_GROUPS))} (groups: {', '.join(KPI_GROUPS)}, "
                "sla.<name>)"
            )
    options = check_writeback_options(name, writeback.get("fields") or {})
    _check_secret_names(name, settings)
    limits = settings.get("limits") or {}
    custom = settings.get("fields") or {}
    defaults = JiraFieldSettings()
    custom_fields = replace(defaults, **{k: tuple(v) for k, v in custom.items()})
    ca_bundle = settings.get("ca_bundle")
    if isinstance(ca_bundle, str):
        ca_bundle = _resolve_path(base_dir, ca_bundle)
        if not Path(ca_bundle).is_file():
            raise ConfigError(f"source {name!r}: ca_bundle {ca_bundle} is not a file")
    return JiraSettings(
        name=name,
        url=url,
        jql=jql,
        deployment=cast(Deployment, settings.get("deployment", "cloud")),
        writeback_fields=fields_map,
        writeback_values=values_map,
        writeback_options=options,
        comment=bool(writeback.get("comment", True)),
        notify_users=bool(writeback.get("notify_users", False)),
        reads_per_second=float(limits.get("reads_per_second", 100)),
        writes_per_second=float(limits.get("writes_per_second", 50)),
        concurrency=int(limits.get("concurrency", 8)),
        page_size=int(settings.get("page_size", 100)),
        timeout=float(settings.get("timeout", 30)),
        ca_bundle=ca_bundle if isinstance(ca_bundle, str) else None,
        webhook_unsigned=bool(settings.get("webhook_unsigned", False)),
        custom_fields=custom_fields,
    )


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _looks_like_a_secret(value: str) -> bool:
    """Long, mixed case and digits, no path separator: a token, not a name or a path."""
    return (
        len(value) >= 24
        and "/" not in value
        and "." not in value
        and re.search(r"[a-z]", value) is not None
        and re.search(r"[0-9]", value) is not None
    )


def _check_secret_names(name: str, settings: Mapping[str, Any]) -> None:
    """``*_env`` must name a variable and ``*_file`` a file; messages never quote the value."""
    places = [(k, v) for k, v in settings.items()]
    auth = settings.get("auth")
    if isinstance(auth, Mapping):
        places.extend((f"auth.{k}", v) for k, v in auth.items())
    for where, value in places:
        if not isinstance(value, str) or not where.endswith(("_env", "_file")):
            continue
        if _looks_like_a_secret(value):
            raise ConfigError(
                f"source {name!r}: {where} looks like a secret itself, not the name of an "
                "environment variable or a file: put the secret in the environment (or a "
                "file) and name that here — and revoke the pasted one if this file was shared"
            )
        if where.endswith("_env") and not _ENV_NAME.fullmatch(value):
            raise ConfigError(
                f"source {name!r}: {where} must be the name of an environment variable "
                "(letters, digits and _, not starting with a digit)"
            )


def files_resolved(auth: Mapping[str, Any], base_dir: str) -> dict[str, Any]:
    """``auth`` with every ``*_file`` made absolute against the folder of ``bridge.yaml``."""
    return {
        k: _resolve_path(base_dir, v) if k.endswith("_file") and isinstance(v, str) else v
        for k, v in auth.items()
    }


AuthKind = Literal["basic", "pat", "oauth"]


def resolve_auth(
    settings: Mapping[str, Any],
    parsed: JiraSettings,
    base_dir: str = ".",
    *,
    locate: Callable[[tuple[str | int, ...]], Diagnostic] | None = None,
) -> tuple[AuthKind, BasicAuth | BearerAuth, str]:
    """(kind, requests auth, API base URL) with secrets read through
    :func:`bridge.connectors.read_secret` (``locate``: where bridge.yaml says what, for its
    messages; without it a :class:`~bridge.connectors.SecretError` carries the setting).

    A PAT is refused here only when the source says ``deployment: cloud``; without the key,
    the connector asks the site first and refuses a PAT on Cloud then (``make_connector``).
    """
    name = parsed.name
    auth = files_resolved(settings.get("auth") or {}, base_dir)
    given = {
        "basic": [k for k in ("email", "email_env", "token_env", "token_file") if k in auth],
        "pat": [k for k in ("pat_env", "pat_file") if k in auth],
        "oauth": [k for k in ("oauth_token_env", "oauth_token_file") if k in auth],
    }
    kinds = [k for k, keys in given.items() if keys]
    if len(kinds) != 1:
        shown = ", ".join(sorted(auth)) or "nothing"
        raise ConfigError(
            f"source {name!r}: auth must be exactly one of: email (or email_env) with "
            "token_env/token_file (Cloud API token); pat_env/pat_file (Data Center personal "
            f"access token); oauth_token_env/oauth_token_file with cloud_id (OAuth 2.0) — "
            f"found {shown}"
        )
    kind = cast(AuthKind, kinds[0])

    def secret(key: str, *, required: bool = True) -> str | None:
        return read_secret(auth, key, source=name, required=required, at=("auth",), locate=locate)

    if kind == "basic":
        email = auth.get("email")
        if not isinstance(email, str):
            email = secret("email", required=False)
        if not email:
            raise ConfigError(f"source {name!r}: auth: give email or email_env with the token")
        token = secret("token")
        return "basic", BasicAuth(email, token or ""), parsed.url
    if kind == "pat":
        if parsed.deployment == "cloud" and "deployment" in settings:
            raise ConfigError(
                f"source {name!r}: a personal access token (pat_env/pat_file) is for Data "
                "Center; Jira Cloud takes email + token_env (an API token), or set "
                "deployment: datacenter"
            )
        return "pat", BearerAuth(lambda: secret("pat") or ""), parsed.url
    if parsed.deployment != "cloud":
        raise ConfigError(f"source {name!r}: OAuth 2.0 (3LO) works only with Jira Cloud")
    bearer = BearerAuth(lambda: secret("oauth_token") or "")
    return "oauth", bearer, OAUTH_GATEWAY + str(auth["cloud_id"])
