"""What a PUT on an issue may set: Jira's per-field-type rules and their error messages.

A client that writes only what passes here writes what a real site accepts (numbers as
numbers, ADF in v3, options by id or value, users by accountId on Cloud and name on Data
Center).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from bridge.testing.jira.model import Deployment, Field, Issue, option_of
from bridge.testing.jira.values import adf_text, is_adf, jira_time, parse_jira_time, text_of
from bridge.testing.jira.wire import Reject, errors

_NOT_ON_SCREEN = "Field '{0}' cannot be set. It is not on the appropriate screen, or unknown."
_ADF_REQUIRED = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
_TOO_LONG = "The entered text is too long. It exceeds the allowed limit of 255 characters."


@dataclass(frozen=True, slots=True)
class EditRules:
    """A site's edit rules: its fields, those not on the edit screen, its users."""

    fields: Mapping[str, Field]
    not_editable: Container[str]
    users: Container[str]
    deployment: Deployment

    def validate(self, issue: Issue, body: Mapping[str, Any], version: int) -> dict[str, Any]:
        """The new stored values a PUT body asks for, or 400 with Jira's per-field errors."""
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(fields, Mapping) or not isinstance(update, Mapping):
            raise Reject(400, errors("Can not deserialize the request body."))
        by_field: dict[str, str] = {}
        values: dict[str, Any] = {}
        for fid in set(fields) & set(update):
            by_field[fid] = f"Field '{fid}' cannot appear in both 'fields' and 'update'."
        requested: list[tuple[str, str, Any]] = [("set", k, v) for k, v in fields.items()]
        for fid, ops in update.items():
            if not isinstance(ops, list):
                by_field[fid] = "Operations must be a list."
                continue
            for op in ops:
                if not isinstance(op, Mapping) or len(op) != 1:
                    by_field[fid] = "Each operation must be an object with one verb."
                    continue
                verb, value = next(iter(op.items()))
                requested.append((str(verb), fid, value))
        for verb, fid, value in requested:
            if fid in by_field:
                continue
            f = self.fields.get(fid)
            if f is None or f.kind == "readonly" or fid in self.not_editable:
                by_field[fid] = _NOT_ON_SCREEN.format(fid)
                continue
            if verb == "set":
                problem, stored = self.coerce(f, value, version)
            elif verb in ("add", "remove") and f.kind in ("labels", "options", "components"):
                problem, item = self.coerce(f, [value], version)
                current = list(values.get(fid, issue.fields.get(fid) or []))
                stored = current
                if problem is None and item:
                    if verb == "add" and item[0] not in current:
                        stored = [*current, item[0]]
                    elif verb == "remove":
                        stored = [x for x in current if text_of(x) != text_of(item[0])]
            else:
                problem, stored = f"Operation '{verb}' is not supported for field '{fid}'.", None
            if problem is not None:
                by_field[fid] = problem
            else:
                values[fid] = stored
        if by_field:
            raise Reject(400, errors(errors=by_field))
        return values

    def coerce(self, f: Field, value: Any, version: int) -> tuple[str | None, Any]:
        """(problem, stored value) for one field value of a PUT."""
        if value is None:
            return None, None
        kind = f.kind
        if kind == "number":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return None, value
            return "Operation value must be a number", None
        if kind == "string":
            if isinstance(value, str):
                if len(value) > 255:
                    return _TOO_LONG, None
                return None, value
            return "Operation value must be a string", None
        if kind == "richtext":
            if version == 3:
                return (None, copy.deepcopy(value)) if is_adf(value) else (_ADF_REQUIRED, None)
            if isinstance(value, str):
                return None, adf_text(value)
            return "Operation value must be a string", None
        if kind == "option":
            if not isinstance(value, Mapping) or not ({"id", "value"} & set(value)):
                return f"Specify a valid 'id' or 'name' for {f.name}", None
            option = option_of(f, value)
            if option is None:
                shown = f"id '{value['id']}'" if "id" in value else f"value '{value['value']}'"
                return f"Option {shown} is not valid", None
            return None, option
        if kind in ("options", "components"):
            if not isinstance(value, list):
                return f"Specify the value for {f.name} in an array", None
            out: list[Any] = []
            for entry in value:
                if kind == "components":
                    if not isinstance(entry, Mapping) or not ({"id", "name"} & set(entry)):
                        return "Component name or id is required", None
                    out.append(dict(entry))
                    continue
                problem, option = self.coerce(
                    Field(f.id, f.name, f.schema, "option", options=f.options), entry, version
                )
                if problem:
                    return problem, None
                out.append(option)
            return None, out
        if kind == "labels":
            if isinstance(value, list) and all(isinstance(v, str) and " " not in v for v in value):
                return None, list(value)
            return "The label must be a string without spaces.", None
        if kind == "date":
            if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                try:
                    return None, date.fromisoformat(value).isoformat()
                except ValueError:
                    pass
            return f"Error parsing date string: {value}", None
        if kind == "datetime":
            if isinstance(value, str) and re.fullmatch(
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?[+-]\d{4}", value
            ):
                parsed = parse_jira_time(value)
                if parsed is not None:
                    return None, jira_time(parsed)
            return f"Error parsing date/time string: {value}", None
        if kind == "user":
            attr = "accountId" if self.deployment == "cloud" else "name"
            if isinstance(value, Mapping) and isinstance(value.get(attr), str):
                if value[attr] in self.users:
                    return None, {"accountId": value[attr]}
                return f"User '{value[attr]}' does not exist.", None
            return f"Specify a valid '{attr}' for {f.name}", None
        if kind == "named":
            if isinstance(value, Mapping) and ({"id", "name"} & set(value)):
                return None, {k: str(v) for k, v in value.items() if k in ("id", "name")}
            return f"Specify a valid 'id' or 'name' for {f.name}", None
        return _NOT_ON_SCREEN.format(f.id), None
