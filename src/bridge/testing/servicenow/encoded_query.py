"""Encoded queries (``sysparm_query``): the subset the ServiceNow double evaluates, parsed and
compared as the platform does. Pure; the double applies them to its tables.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from bridge.testing.servicenow.tables import Record

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")

RowCheck = Callable[[str, Record], bool]
"""A test on one (table, record) row."""


class QueryNotSupportedError(ValueError):
    """A query the real platform may accept but the double cannot answer faithfully."""


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: str


@dataclass(frozen=True, slots=True)
class EncodedQuery:
    """``groups`` are ``^NQ`` alternatives; each is AND-ed terms of ``^OR`` alternatives."""

    groups: tuple[tuple[tuple[Condition, ...], ...], ...]
    order: tuple[tuple[str, bool], ...]  # (field, descending)

    @property
    def fields(self) -> set[str]:
        return {c.field for group in self.groups for term in group for c in term}


_SUPPORTED_OPS = (
    "ISNOTEMPTY",
    "ISEMPTY",
    "NOT IN",
    "IN",
    "NOT LIKE",
    "LIKE",
    "STARTSWITH",
    "ENDSWITH",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)
_CONDITION = re.compile(
    r"(?P<field>[a-z0-9_.]+?)(?P<op>"
    + "|".join(re.escape(op) for op in _SUPPORTED_OPS)
    + r")(?P<value>.*)",
    re.DOTALL,
)


def parse_encoded_query(text: str) -> EncodedQuery:
    """The subset of encoded queries the double evaluates.

    ``a=1^b>=2^ORc!=3^NQd=4^ORDERBYe^ORDERBYDESCf``: ``^`` is AND, ``^OR`` binds tighter
    (``a^b^ORc`` is a AND (b OR c)), ``^NQ`` starts an alternative query. A trailing ``^EQ``
    (pasted from a list filter) is ignored.

    :raises QueryNotSupportedError: an operator or value the double does not evaluate
        (``BETWEEN``, ``RELATIVEGT``, ``javascript:`` ...), named in the message.
    """
    groups: list[tuple[tuple[Condition, ...], ...]] = []
    order: list[tuple[str, bool]] = []
    for chunk in text.split("^NQ"):
        terms: list[list[Condition]] = []
        for token in chunk.split("^"):
            if token in ("", "EQ"):
                continue
            if token.startswith("ORDERBYDESC"):
                order.append((token.removeprefix("ORDERBYDESC"), True))
                continue
            if token.startswith("ORDERBY"):
                order.append((token.removeprefix("ORDERBY"), False))
                continue
            is_or = token.startswith("OR") and bool(terms)
            condition = _parse_condition(token[2:] if is_or else token)
            if is_or:
                terms[-1].append(condition)
            else:
                terms.append([condition])
        groups.append(tuple(tuple(term) for term in terms))
    return EncodedQuery(groups=tuple(groups), order=tuple(order))


def _parse_condition(token: str) -> Condition:
    match = _CONDITION.fullmatch(token)
    if match is None:
        raise QueryNotSupportedError(
            f"query term {token!r} is not supported by ServiceNowDouble "
            f"(operators: {', '.join(_SUPPORTED_OPS)})"
        )
    value = match["value"]
    if value.startswith("javascript:"):
        raise QueryNotSupportedError(
            f"query term {token!r}: javascript: values are not supported by ServiceNowDouble"
        )
    op = match["op"]
    if op in ("ISEMPTY", "ISNOTEMPTY") and value:
        raise QueryNotSupportedError(f"query term {token!r}: {op} takes no value")
    return Condition(match["field"], op, value)


@functools.lru_cache(maxsize=1 << 16)
def _number(text: str) -> float | None:
    return float(text) if _NUMBER.fullmatch(text) else None


def _compare(left: str, right: str) -> int | None:
    """Numbers numerically, anything else (UTC datetime literals) as text; empty never orders."""
    if not left:
        return None
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    return (left > right) - (left < right)


def matches(condition: Condition, actual: str) -> bool:
    op, want = condition.op, condition.value
    if op == "=":
        return actual == want
    if op == "!=":
        return actual != want  # the platform's != also matches empty values
    if op == "ISEMPTY":
        return not actual
    if op == "ISNOTEMPTY":
        return bool(actual)
    if op == "IN":
        return actual in want.split(",")
    if op == "NOT IN":
        return actual not in want.split(",")
    if op in ("LIKE", "NOT LIKE", "STARTSWITH", "ENDSWITH"):
        a, w = actual.casefold(), want.casefold()
        if op == "STARTSWITH":
            return a.startswith(w)
        if op == "ENDSWITH":
            return a.endswith(w)
        return (w in a) == (op == "LIKE")
    cmp = _compare(actual, want)
    if cmp is None:
        return False
    return {">": cmp > 0, ">=": cmp >= 0, "<": cmp < 0, "<=": cmp <= 0}[op]


def sort_key(value: str) -> tuple[int, float, str]:
    """Empty first, then numbers numerically, then text."""
    if not value:
        return (0, 0.0, "")
    number = _number(value)
    return (1, number, "") if number is not None else (2, 0.0, value)


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


def any_of(
    checks: list[RowCheck],
) -> RowCheck | None:
    """One ``^OR`` term; None when all its conditions were ignored."""
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda t, r: any(check(t, r) for check in checks)


def first_group_matching(
    groups: list[list[RowCheck]],
) -> RowCheck:
    def predicate(table: str, record: Record) -> bool:
        for terms in groups:
            for term in terms:
                if not term(table, record):
                    break
            else:
                return True
        return False

    return predicate


def row_key(
    get: Callable[[str, Record], str],
) -> Callable[[tuple[str, Record]], tuple[int, float, str]]:
    def key(row: tuple[str, Record]) -> tuple[int, float, str]:
        return sort_key(get(*row))

    return key
