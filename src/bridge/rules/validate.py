"""Shape checks against ``rules.schema.json``, reported as located, human sentences.

jsonschema's own messages are written for programmers (``'x' is not valid under any of the
given schemas``); admins get ``unknown key 'equal'; did you mean 'equals'?`` at the key's
line and column instead. Operators contributed by plugins are added to the schema here, so
their values are validated exactly like the built-in ones.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from bridge.errors import Diagnostic
from bridge.rules.compile import did_you_mean
from bridge.rules.operators import OperatorSpec
from bridge.rules.source import Path_, SourceDoc

__all__ = ["base_schema", "schema_errors", "schema_errors_for", "schema_with_operators"]

_JSON_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true/false",
    "null": "nothing",
}


@cache
def base_schema() -> Mapping[str, Any]:
    """The shipped rules schema (JSON Schema 2020-12)."""
    text = resources.files("bridge.schemas").joinpath("rules.schema.json").read_text("utf-8")
    schema: Mapping[str, Any] = json.loads(text)
    return schema


def schema_with_operators(operators: Iterable[OperatorSpec]) -> dict[str, Any]:
    """The rules schema with one leaf property per registered operator."""
    schema = copy.deepcopy(dict(base_schema()))
    leaf = schema["$defs"]["leaf"]["properties"]
    for spec in operators:
        leaf[spec.name] = dict(spec.value_schema)
    return schema


@dataclass
class _Validators:
    """The validators of one operator set, each built on first use from one schema copy."""

    schema: dict[str, Any]
    full: Draft202012Validator | None = None
    fast: Any = None
    fast_tried: bool = False


_VALIDATORS: dict[tuple[tuple[str, str], ...], _Validators] = {}


def _validators(specs: list[OperatorSpec]) -> _Validators:
    """The cache entry for this operator set: building a validator costs milliseconds, and
    plugins may change the set, so entries are keyed by every operator's schema."""
    key = tuple((spec.name, json.dumps(spec.value_schema, sort_keys=True)) for spec in specs)
    entry = _VALIDATORS.get(key)
    if entry is None:
        entry = _VALIDATORS[key] = _Validators(schema_with_operators(specs))
    return entry


def _validator(specs: list[OperatorSpec]) -> Draft202012Validator:
    """The pure-Python validator, which words the problems; its schema is checked first so
    that a plugin's broken value schema is an error, not a check that passes everything."""
    entry = _validators(specs)
    if entry.full is None:
        Draft202012Validator.check_schema(entry.schema)
        entry.full = Draft202012Validator(entry.schema)
    return entry.full


# Recognizes the at-risk threshold's pattern (a plugin's value schema will not hold this); a
# bare number (``75``, ``0.75``) is the likely slip, and the message must say both forms.
_AT_RISK_MARK = r"\s*%|"
_AT_RISK_FIX = (
    "is not an at-risk threshold; write a share of the goal's target, e.g. 75%, "
    "or the working time left before the goal, e.g. 1h"
)


def _or_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    return "a number"


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(schema: Mapping[str, Any]) -> list[str]:
    return list(schema.get("properties", {}))


def _message(error: jsonschema.ValidationError) -> tuple[str, bool, Path_] | None:
    """(message, point at the key?, extra path) for one error, None to drop it."""
    validator = str(error.validator)
    value: Any = error.validator_value
    instance: Any = error.instance
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = _allowed_keys(schema)
        extras = [k for k in instance if k not in allowed]
        if not extras:
            return None
        key = extras[0]
        is_leaf = "field" in allowed and "equals" in allowed
        if is_leaf:
            operators = [k for k in allowed if k not in ("field", "ignore_case")]
            hint = did_you_mean(key, operators) or f" (operators: {', '.join(operators)})"
            return f"unknown operator {key!r}{hint}", True, (key,)
        hint = did_you_mean(key, allowed) or f" (allowed: {', '.join(allowed)})"
        return f"unknown key {key!r}{hint}", True, (key,)
    if validator == "required":
        missing = [k for k in value if isinstance(instance, dict) and k not in instance]
        return (f"missing required key {missing[0]!r}", False, ()) if missing else None
    if validator == "type" and _AT_RISK_MARK in str(schema.get("pattern", "")):
        return f"{_clip(instance)} {_AT_RISK_FIX}", False, ()
    if validator == "type":
        wanted = value if isinstance(value, list) else [value]
        words = _or_list([_JSON_TYPE_WORDS.get(str(w), str(w)) for w in wanted])
        return f"expected {words}, found {_describe(instance)} {_clip(instance)}", False, ()
    if validator == "enum":
        options = [str(v) for v in value]
        hint = did_you_mean(instance, options) if isinstance(instance, str) else ""
        return f"{_clip(instance)} is not one of: {', '.join(options)}{hint}", False, ()
    if validator == "const":
        return f"must be {value!r}, found {_clip(instance)}", False, ()
    if validator == "pattern":
        if _AT_RISK_MARK in str(value):
            return f"{_clip(instance)} {_AT_RISK_FIX}", False, ()
        if "wdhms" in str(value):
            return (
                f"{_clip(instance)} is not a duration; write e.g. 4h, 1h30m, 5d or 2w",
                False,
                (),
            )
        if "A-Z]{3}" in str(value):
            return (
                f"{_clip(instance)} is not a currency code; write the ISO 4217 code, "
                "e.g. EUR or USD",
                False,
                (),
            )
        if "A-Za-z0-9_.:-" in str(value):
            return (
                f"{_clip(instance)} is not a valid name: use letters, digits, '_', '.', "
                "':' and '-', starting with a letter or digit",
                False,
                (),
            )
        return f"{_clip(instance)} does not match the pattern {value}", False, ()
    if validator == "maxLength":
        return (
            f"text is {len(instance):,} characters long; the limit here is {value:,}",
            False,
            (),
        )
    if validator == "minLength":
        return "text must not be empty", False, ()
    if validator == "minItems":
        return f"the list needs at least {value} item{'s' if value != 1 else ''}", False, ()
    if validator == "maxItems":
        return f"the list has {len(instance):,} items; the limit is {value:,}", False, ()
    if validator == "uniqueItems":
        return "the list repeats a value; list each once", False, ()
    if validator == "minProperties":
        keys = ", ".join(_allowed_keys(schema))
        return f"the mapping is empty; give at least one of: {keys}", False, ()
    if validator in ("minimum", "maximum"):
        return f"{instance} is out of range ({validator} {value})", False, ()
    return error.message, False, ()


def _fast_validator(specs: list[OperatorSpec]) -> Any:
    """A compiled Rust validator (jsonschema-rs) for the yes/no question, ~50x faster than
    the pure-Python one on a 500-rule file; the Python one words the problems when there
    are any. None when jsonschema-rs is unavailable."""
    entry = _validators(specs)
    if not entry.fast_tried:
        try:
            import jsonschema_rs  # noqa: PLC0415 - optional accelerator

            entry.fast = jsonschema_rs.validator_for(entry.schema)
        except (ImportError, ValueError):
            entry.fast = None
        entry.fast_tried = True
    return entry.fast


def schema_errors(doc: SourceDoc, operators: Iterable[OperatorSpec]) -> list[Diagnostic]:
    """Every schema violation in one parsed rule file, located and phrased for admins."""
    specs = list(operators)
    fast = _fast_validator(specs)
    if fast is not None and fast.is_valid(doc.data):
        return []
    return schema_errors_for(doc, _validator(specs))


def schema_errors_for(doc: SourceDoc, validator: Draft202012Validator) -> list[Diagnostic]:
    """Every violation of ``validator``'s schema in one parsed file, located and phrased."""
    problems: dict[tuple[int, int, str], Diagnostic] = {}
    for error in validator.iter_errors(doc.data):
        if error.validator in ("if", "then", "else", "$ref", "propertyNames"):
            continue
        result = _message(error)
        if result is None:
            continue
        message, at_key, extra = result
        path: Path_ = (*error.absolute_path, *extra)
        if doc.unreadable and any(path[: len(bad)] == bad for bad in doc.unreadable):
            continue  # the parser said what is wrong there; a stand-in value is not the point
        if error.absolute_schema_path and "propertyNames" in error.absolute_schema_path:
            # A bad name: point at the key itself.
            path = (*error.absolute_path, str(error.instance))
            at_key = True
        diagnostic = doc.diag(path, message, key=at_key)
        problems.setdefault((diagnostic.line, diagnostic.col, message), diagnostic)
    return list(problems.values())
