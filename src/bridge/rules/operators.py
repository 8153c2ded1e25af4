"""The closed set of condition operators, and the contract a plugin operator follows.

An operator has two halves: ``prepare`` turns the value an admin wrote into a constant once,
at compile time (a compiled regex, a frozenset, a parsed date), raising ``ValueError`` with
a human message; ``test(actual, prepared, now)`` decides one item and never raises, whatever
JSON ``actual`` is (``raw.*`` fields can hold anything).

Semantics shared by every built-in operator:

- a missing value (``None``) satisfies only ``not_equals``, ``not_in`` and ``exists: false``;
- ``raw.*`` values are compared loosely: ``"3"`` equals ``3`` and ``"true"`` equals ``true``,
  because ServiceNow sends every value as a string;
- ``contains`` means substring for text and membership for lists.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, get_args

from bridge.model import FieldType
from bridge.rules.regex import Regex, compile_regex
from bridge.timefmt import parse_date_or_instant, parse_duration, parse_servicenow_instant

__all__ = [
    "ALL_FIELD_TYPES",
    "BUILTIN_OPERATORS",
    "OperatorSpec",
    "as_instant",
    "fold",
    "is_present",
    "loose_equals",
]

ALL_FIELD_TYPES: frozenset[FieldType] = frozenset(get_args(FieldType))

Prepare = Callable[[Any, "FieldType | None"], Any]
Test = Callable[[Any, Any, datetime], bool]


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """A condition operator.

    :param name: the key admins write (``equals``).
    :param field_types: normalized field types it applies to; ``raw.*`` fields accept any.
    :param value_schema: JSON Schema of the value admins write, checked with the rules.
    :param prepare: ``(value, field_type or None for raw) -> constant``; raise ``ValueError``.
    :param test: ``(actual, constant, now) -> bool``; must not raise.
    :param description: one line for ``bridge explain`` and the docs.
    :param builtin: True only for bridge's own operators, whose values are also checked
        against the field's type (text for text fields, numbers for number fields).
    """

    name: str
    field_types: frozenset[FieldType]
    value_schema: Mapping[str, Any]
    prepare: Prepare
    test: Test
    description: str = ""
    builtin: bool = False


# -- helpers shared by the operators, the compiler's generated code and explain ---------------


def is_present(value: Any) -> bool:
    """Whether a field holds something: not None, not "" and not an empty list."""
    return value is not None and value not in ("", (), [])


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def loose_equals(actual: Any, expected: Any) -> bool:
    """Equality that forgives the string/number/boolean mismatches of raw JSON."""
    if actual == expected and type(actual) is not bool and type(expected) is not bool:
        return True
    if isinstance(expected, bool):
        if isinstance(actual, bool):
            return actual is expected
        return isinstance(actual, str) and actual.lower() == ("true" if expected else "false")
    if isinstance(expected, int | float):
        number = _as_number(actual)
        return number is not None and number == expected
    if (
        isinstance(expected, str)
        and isinstance(actual, int | float)
        and not isinstance(actual, bool)
    ):
        number = _as_number(expected)
        return number is not None and number == actual
    return False


def as_instant(value: Any) -> datetime | None:
    """A comparable UTC instant from a datetime, a date (midnight UTC) or a date string."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = parse_date_or_instant(value)
        except ValueError:
            try:
                parsed = parse_servicenow_instant(value)
            except ValueError:
                return None
        return as_instant(parsed)
    return None


def fold(value: Any) -> Any:
    """``value`` casefolded for ``ignore_case``: text, and the text elements of a list or
    tuple (one level, as a list). The compiler folds what an admin wrote and the engine what
    an item holds with this one function, so both sides of a comparison fold alike."""
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, list | tuple):
        return [v.casefold() if isinstance(v, str) else v for v in value]
    return value


def _contains_one(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list | tuple):
        return any(loose_equals(element, expected) for element in actual)
    return False


# -- prepare functions --------------------------------------------------------------------------


def _prep_identity(value: Any, field_type: FieldType | None) -> Any:
    return value


def _prep_set(value: Any, field_type: FieldType | None) -> Any:
    # Normalized fields hold hashable scalars, so membership is one set lookup; raw values
    # may be anything, so they keep the list and compare loosely.
    if field_type is None:
        return tuple(value)
    return frozenset(value)


def _prep_regex(value: Any, field_type: FieldType | None) -> Regex:
    # RE2, not re: an admin's pattern must not be able to hang classification.
    return compile_regex(str(value))


def _prep_duration(value: Any, field_type: FieldType | None) -> timedelta:
    return parse_duration(str(value))


def _prep_order(value: Any, field_type: FieldType | None) -> Any:
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(".nan is not a number anything is greater or less than; write a number")
    if field_type in ("instant", "date"):
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a date; write e.g. 2024-05-01 or 2024-05-01T09:00Z")
        instant = as_instant(value)
        if instant is None:
            raise ValueError(f"{value!r} is not a date; write e.g. 2024-05-01 or 2024-05-01T09:00Z")
        return instant
    if field_type is None and isinstance(value, str):
        instant = as_instant(value)
        if instant is not None:
            return instant
    return value


# -- test functions -----------------------------------------------------------------------------


def _t_equals(actual: Any, expected: Any, now: datetime) -> bool:
    return loose_equals(actual, expected)


def _t_not_equals(actual: Any, expected: Any, now: datetime) -> bool:
    return not loose_equals(actual, expected)


def _t_in(actual: Any, expected: Any, now: datetime) -> bool:
    if isinstance(expected, frozenset):
        return actual in expected
    return any(loose_equals(actual, option) for option in expected)


def _t_not_in(actual: Any, expected: Any, now: datetime) -> bool:
    return not _t_in(actual, expected, now)


def _t_contains(actual: Any, expected: Any, now: datetime) -> bool:
    return _contains_one(actual, expected)


def _t_contains_any(actual: Any, expected: Iterable[Any], now: datetime) -> bool:
    return any(_contains_one(actual, option) for option in expected)


def _t_contains_all(actual: Any, expected: Iterable[Any], now: datetime) -> bool:
    return is_present(actual) and all(_contains_one(actual, option) for option in expected)


def _t_matches(actual: Any, expected: Regex, now: datetime) -> bool:
    if isinstance(actual, str):
        return expected.search(actual)
    if isinstance(actual, list | tuple):
        return any(isinstance(e, str) and expected.search(e) for e in actual)
    return False


def _t_exists(actual: Any, expected: bool, now: datetime) -> bool:
    return is_present(actual) is expected


def _ordered(actual: Any, expected: Any) -> tuple[Any, Any] | None:
    """Both sides in one comparable domain, or None when they cannot be compared."""
    if isinstance(expected, datetime):
        instant = as_instant(actual)
        return None if instant is None else (instant, expected)
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        number = _as_number(actual)
        return None if number is None else (number, expected)
    if isinstance(expected, str) and isinstance(actual, str):
        return actual, expected
    return None


def _t_gt(actual: Any, expected: Any, now: datetime) -> bool:
    pair = _ordered(actual, expected)
    return pair is not None and pair[0] > pair[1]


def _t_gte(actual: Any, expected: Any, now: datetime) -> bool:
    pair = _ordered(actual, expected)
    return pair is not None and pair[0] >= pair[1]


def _t_lt(actual: Any, expected: Any, now: datetime) -> bool:
    pair = _ordered(actual, expected)
    return pair is not None and pair[0] < pair[1]


def _t_lte(actual: Any, expected: Any, now: datetime) -> bool:
    pair = _ordered(actual, expected)
    return pair is not None and pair[0] <= pair[1]


def _t_older_than(actual: Any, expected: timedelta, now: datetime) -> bool:
    instant = as_instant(actual)
    return instant is not None and instant < now - expected


def _t_newer_than(actual: Any, expected: timedelta, now: datetime) -> bool:
    instant = as_instant(actual)
    return instant is not None and instant > now - expected


# -- the built-in set ---------------------------------------------------------------------------

_SCALAR = {"type": ["string", "number", "boolean"], "maxLength": 4096}
_SCALAR_LIST = {"type": "array", "items": _SCALAR, "minItems": 1, "maxItems": 10000}
_STRING = {"type": "string", "maxLength": 4096}
_ORDERABLE = {"type": ["string", "number"], "maxLength": 64}
_DURATION = {"type": "string", "maxLength": 64}

_EQUALITY: frozenset[FieldType] = frozenset(("string", "category", "number"))
_TEXTUAL: frozenset[FieldType] = frozenset(("string", "list"))
_ORDER: frozenset[FieldType] = frozenset(("number", "instant", "date"))
_TIME: frozenset[FieldType] = frozenset(("instant", "date"))

_BUILTINS: tuple[OperatorSpec, ...] = (
    OperatorSpec("equals", _EQUALITY, _SCALAR, _prep_identity, _t_equals, "value is exactly this"),
    OperatorSpec(
        "not_equals",
        _EQUALITY,
        _SCALAR,
        _prep_identity,
        _t_not_equals,
        "value is anything but this (a missing value counts)",
    ),
    OperatorSpec("in", _EQUALITY, _SCALAR_LIST, _prep_set, _t_in, "value is one of these"),
    OperatorSpec(
        "not_in",
        _EQUALITY,
        _SCALAR_LIST,
        _prep_set,
        _t_not_in,
        "value is none of these (a missing value counts)",
    ),
    OperatorSpec(
        "contains",
        _TEXTUAL,
        _SCALAR,
        _prep_identity,
        _t_contains,
        "text contains this substring, or list contains this element",
    ),
    OperatorSpec(
        "contains_any",
        _TEXTUAL,
        _SCALAR_LIST,
        _prep_identity,
        _t_contains_any,
        "contains at least one of these",
    ),
    OperatorSpec(
        "contains_all",
        _TEXTUAL,
        _SCALAR_LIST,
        _prep_identity,
        _t_contains_all,
        "contains every one of these",
    ),
    OperatorSpec(
        "matches",
        _TEXTUAL,
        _STRING,
        _prep_regex,
        _t_matches,
        "a regular expression (Python syntax) finds a match; run by RE2, in linear time",
    ),
    OperatorSpec(
        "exists",
        ALL_FIELD_TYPES,
        {"type": "boolean"},
        _prep_identity,
        _t_exists,
        "true: the field has a value; false: it is missing or empty",
    ),
    OperatorSpec("gt", _ORDER, _ORDERABLE, _prep_order, _t_gt, "greater / later than"),
    OperatorSpec("gte", _ORDER, _ORDERABLE, _prep_order, _t_gte, "greater / later or equal"),
    OperatorSpec("lt", _ORDER, _ORDERABLE, _prep_order, _t_lt, "less / earlier than"),
    OperatorSpec("lte", _ORDER, _ORDERABLE, _prep_order, _t_lte, "less / earlier or equal"),
    OperatorSpec(
        "older_than",
        _TIME,
        _DURATION,
        _prep_duration,
        _t_older_than,
        "the instant is more than this long before now (e.g. 30d)",
    ),
    OperatorSpec(
        "newer_than",
        _TIME,
        _DURATION,
        _prep_duration,
        _t_newer_than,
        "the instant is less than this long before now (e.g. 4h)",
    ),
)

BUILTIN_OPERATORS: tuple[OperatorSpec, ...] = tuple(
    OperatorSpec(s.name, s.field_types, s.value_schema, s.prepare, s.test, s.description, True)
    for s in _BUILTINS
)
