"""The JQL subset the Jira double runs: a tokenizer, a recursive-descent parser that builds a
predicate as it goes, and the field semantics behind each clause.

Errors are :class:`JqlError` carrying the message Jira answers with, so a client's error
handling meets the real wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from bridge.testing.jira.model import CATEGORY_NAMES, Field, Issue, category_key
from bridge.testing.jira.values import adf_to_text, parse_jira_time, sortable, text_of


class JqlError(ValueError):
    """A JQL query the double cannot run; the message is what Jira would answer with."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~)
      | (?P<punct>[(),])
      | (?P<word>[^\s"'(),=!<>~]+)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
_RELATIVE = re.compile(r"([+-]?)(\d+)([wdhm])")
_JQL_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # string | op | punct | word | end
    text: str
    pos: int

    @property
    def keyword(self) -> str | None:
        low = self.text.lower()
        return low if self.kind == "word" and low in _KEYWORDS else None


def _tokenize(jql: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(jql):
        if not jql[pos:].strip():
            break
        m = _TOKEN.match(jql, pos)
        if m is None or m.end() == pos:
            raise JqlError(
                f"Error in the JQL Query: The character '{jql[pos:].lstrip()[:1]}' is a "
                f"reserved JQL character. (line 1, character {pos + 1})"
            )
        kind = m.lastgroup or "word"
        text = m.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Tok(kind, text, m.start(kind) + 1))
        pos = m.end()
    tokens.append(_Tok("end", "", len(jql) + 1))
    return tokens


@dataclass(frozen=True, slots=True)
class _Value:
    text: str
    function: bool = False


_Predicate = Callable[[Issue], bool]


@dataclass(frozen=True, slots=True)
class _Query:
    where: _Predicate | None
    order: tuple[tuple[str, bool], ...]  # (field, descending)


class _Parser:
    """Recursive descent over the JQL subset; builds a predicate as it goes."""

    def __init__(self, jql: str, search: JqlSearch) -> None:
        self.tokens = _tokenize(jql)
        self.i = 0
        self.search = search

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def fail(self, expecting: str) -> JqlError:
        tok = self.tok
        got = "the end of the query" if tok.kind == "end" else f"'{tok.text}'"
        return JqlError(
            f"Error in the JQL Query: Expecting {expecting} but got {got}. "
            f"(line 1, character {tok.pos})"
        )

    def take_keyword(self, word: str) -> bool:
        if self.tok.keyword == word:
            self.i += 1
            return True
        return False

    def parse(self) -> _Query:
        where: _Predicate | None = None
        if self.tok.kind != "end" and self.tok.keyword != "order":
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.take_keyword("order"):
            if not self.take_keyword("by"):
                raise self.fail("'by'")
            while True:
                name = self.field_name()
                desc = False
                if self.take_keyword("desc"):
                    desc = True
                else:
                    self.take_keyword("asc")
                order.append((self.search.sort_field(name), desc))
                if self.tok.text != ",":
                    break
                self.i += 1
            if len(order) > 7:
                raise JqlError("The ORDER BY clause may have at most 7 fields.")
        if self.tok.kind != "end":
            raise self.fail("either 'OR' or 'AND'" if where else "a field name")
        return _Query(where, tuple(order))

    def or_expr(self) -> _Predicate:
        parts = [self.and_expr()]
        while self.take_keyword("or"):
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda issue: any(p(issue) for p in parts)

    def and_expr(self) -> _Predicate:
        parts = [self.unary()]
        while self.take_keyword("and"):
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda issue: all(p(issue) for p in parts)

    def unary(self) -> _Predicate:
        if self.take_keyword("not"):
            inner = self.unary()
            return lambda issue: not inner(issue)
        if self.tok.text == "(" and self.tok.kind == "punct":
            self.i += 1
            inner = self.or_expr()
            if self.tok.text != ")":
                raise self.fail("')'")
            self.i += 1
            return inner
        return self.clause()

    def field_name(self) -> str:
        tok = self.tok
        if tok.kind not in ("word", "string") or tok.keyword:
            raise self.fail("a field name")
        self.i += 1
        return tok.text

    def clause(self) -> _Predicate:
        name = self.field_name()
        tok = self.tok
        if tok.kind == "op":
            self.i += 1
            return self.search.compare(name, tok.text, self.value())
        if self.take_keyword("in"):
            return self.search.member_of(name, self.values(), negate=False)
        if self.take_keyword("not"):
            if self.take_keyword("in"):
                return self.search.member_of(name, self.values(), negate=True)
            raise self.fail("'IN'")
        if self.take_keyword("is"):
            negate = self.take_keyword("not")
            if not (self.take_keyword("empty") or self.take_keyword("null")):
                raise self.fail("'EMPTY'")
            return self.search.empty(name, negate=negate)
        raise self.fail("operator")

    def value(self) -> _Value:
        tok = self.tok
        if tok.keyword in ("empty", "null"):
            self.i += 1
            return _Value("", function=False)
        if tok.kind == "string":
            self.i += 1
            return _Value(tok.text)
        if tok.kind != "word" or tok.keyword:
            raise self.fail("either a value, 'EMPTY' or a function")
        self.i += 1
        if self.tok.text == "(":
            self.i += 1
            while self.tok.text != ")":
                if self.tok.kind == "end":
                    raise self.fail("')'")
                self.i += 1
            self.i += 1
            return _Value(tok.text.lower(), function=True)
        return _Value(tok.text)

    def values(self) -> list[_Value]:
        if self.tok.text != "(":
            raise self.fail("'('")
        self.i += 1
        out = [self.value()]
        while self.tok.text == ",":
            self.i += 1
            out.append(self.value())
        if self.tok.text != ")":
            raise self.fail("')'")
        self.i += 1
        return out


class JqlSearch:
    """One query's meaning on one site: its fields, the caller behind ``currentUser()``, its
    clock and time zone for dates."""

    def __init__(
        self,
        fields: Mapping[str, Field],
        field_ref: Callable[[str], str],
        *,
        caller: str,
        now: Callable[[], datetime],
        time_zone: ZoneInfo,
    ) -> None:
        self.fields = fields
        self.field_ref = field_ref
        self.caller = caller
        self._clock = now
        self.time_zone = time_zone
        # Whether the query read the clock (now(), startOfDay(), "-1h"): such results hold
        # only for the instant they were computed at, so the site must not reuse them.
        self.read_clock = False

    def now(self) -> datetime:
        self.read_clock = True
        return self._clock()

    def run(self, jql: str, issues: Iterable[Issue], *, bounded: bool) -> list[Issue]:
        """The issues the query selects, in its order (creation order without ``ORDER BY``)."""
        query = _Parser(jql, self).parse()
        if bounded and query.where is None:
            raise JqlError(
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query."
            )
        where = query.where
        found = [i for i in issues if where is None or where(i)]
        found.sort(key=lambda i: int(i.id))
        for name, desc in reversed(query.order):
            key_fn = self.sort_key(name)
            present = [i for i in found if key_fn(i) is not None]
            missing = [i for i in found if key_fn(i) is None]
            present.sort(key=lambda i: cast(Any, key_fn(i)), reverse=desc)
            found = present + missing if not desc else missing + present
        return found

    _SORT_ALIASES: Mapping[str, str] = {
        "issuekey": "key",
        "resolved": "resolutiondate",
        "due": "duedate",
        "type": "issuetype",
    }

    def sort_field(self, name: str) -> str:
        low = name.lower()
        low = self._SORT_ALIASES.get(low, low)
        if low in ("key", "id", "project", "created", "updated", "status", "priority"):
            return low
        ref = self.field_ref(name)
        if ref not in self.fields:
            raise JqlError(f"Not able to sort using field '{name}'.")
        return ref

    def sort_key(self, name: str) -> Callable[[Issue], Any]:
        if name in ("key", "id"):
            return lambda i: (i.project, i.number) if name == "key" else int(i.id)
        if name == "project":
            return lambda i: i.project
        if name == "created":
            return lambda i: i.created
        if name == "updated":
            return lambda i: i.updated
        f = self.fields[name]
        return lambda i: sortable(self.plain(i, f))

    def plain(self, issue: Issue, f: Field) -> Any:
        """A field's value as JQL compares it: text, number, datetime or list of text."""
        if f.id == "created":
            return issue.created
        if f.id == "updated":
            return issue.updated
        value = issue.fields.get(f.id)
        if value is None:
            return None
        if f.kind == "richtext":
            return adf_to_text(value)
        if f.schema.get("type") in ("datetime",):
            return parse_jira_time(str(value))
        if f.schema.get("type") == "date":
            try:
                return datetime.combine(date.fromisoformat(str(value)), datetime.min.time(), UTC)
            except ValueError:
                return None
        if isinstance(value, list):
            return [text_of(v) for v in value]
        if isinstance(value, Mapping):
            return text_of(value)
        return value

    def clause_field(self, name: str) -> tuple[str, Callable[[Issue], Any]]:
        low = name.lower()
        if low in ("project",):
            return "project", lambda i: [i.project, i.fields["project"]["name"]]
        if low in ("key", "issuekey", "id"):
            return "key", lambda i: [i.key, i.id]
        if low == "statuscategory":
            return "text", lambda i: [
                category_key(i) or "",
                CATEGORY_NAMES.get(category_key(i), ""),
            ]
        if low == "text":
            return "text", lambda i: " ".join(
                str(self.plain(i, self.fields[f]) or "")
                for f in ("summary", "description", "environment")
            )
        aliases = {"type": "issuetype", "resolved": "resolutiondate", "due": "duedate"}
        ref = self.field_ref(aliases.get(low, name))
        f = self.fields.get(ref)
        if f is None:
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        type_ = f.schema.get("type")
        kind = {"number": "number", "datetime": "time", "date": "time"}.get(str(type_), "text")
        if f.kind == "user":
            return "user", lambda i: text_of(i.fields.get(f.id))
        return kind, lambda i: self.plain(i, f)

    def literal(self, kind: str, value: _Value) -> Any:
        if value.function:
            if value.text == "currentuser":
                return self.caller
            if value.text == "now":
                return self.now()
            if value.text == "startofday":
                local = self.now().astimezone(self.time_zone)
                return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
            raise JqlError(f"Unable to find JQL function '{value.text}()'.")
        if kind == "number":
            try:
                return float(value.text)
            except ValueError:
                raise JqlError(f"The value '{value.text}' is not a valid number.") from None
        if kind == "time":
            return self.time_value(value.text)
        return value.text

    def time_value(self, text: str) -> datetime:
        rel = _RELATIVE.fullmatch(text.strip())
        if rel:
            sign = -1 if rel.group(1) == "-" else 1
            unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[rel.group(3)]
            return self.now() + sign * timedelta(**{unit: int(rel.group(2))})
        m = _JQL_DATE.fullmatch(text.strip())
        if m is None:
            raise JqlError(
                f"Date value '{text}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
                "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. "
                "'-5d', '4w 2d'."
            )
        y, mo, d, h, mi = (int(g) if g else 0 for g in m.groups())
        return datetime(y, mo, d, h, mi, tzinfo=self.time_zone).astimezone(UTC)

    def compare(self, name: str, op: str, value: _Value) -> _Predicate:
        kind, get = self.clause_field(name)
        if value.text == "" and not value.function:
            if op not in ("=", "!="):
                raise JqlError(f"The operator '{op}' is not supported by EMPTY.")
            return self.empty(name, negate=op == "!=")
        if op in ("~", "!~"):
            needle = value.text.lower().strip("*")

            def contains(issue: Issue) -> bool:
                found = get(issue)
                text = " ".join(found) if isinstance(found, list) else str(found or "")
                return needle in text.lower()

            return contains if op == "~" else (lambda i: not contains(i))
        if op in ("=", "!="):
            return self.member_of(name, [value], negate=op == "!=")
        if kind not in ("number", "time"):
            raise JqlError(f"The operator '{op}' is not supported by the '{name}' field.")
        target = self.literal(kind, value)
        compare: Callable[[Any, Any], bool] = {
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }[op]

        def ordered(issue: Issue) -> bool:
            found = get(issue)
            return found is not None and compare(found, target)

        return ordered

    def member_of(self, name: str, values: Sequence[_Value], *, negate: bool) -> _Predicate:
        kind, get = self.clause_field(name)
        if kind in ("number", "time"):
            targets = {self.literal(kind, v) for v in values}

            def member(issue: Issue) -> bool:
                return get(issue) in targets

        else:
            wanted = {str(self.literal(kind, v)).casefold() for v in values}
            if kind == "key":
                wanted = {w.upper().casefold() for w in wanted}

            def member(issue: Issue) -> bool:
                found = get(issue)
                items = found if isinstance(found, list) else [found]
                return any(str(x).casefold() in wanted for x in items if x is not None)

        if negate:
            return lambda i: not member(i) and get(i) not in (None, [])
        return member

    def empty(self, name: str, *, negate: bool) -> _Predicate:
        _, get = self.clause_field(name)
        if name.lower() == "resolution":

            def empty(issue: Issue) -> bool:
                return issue.fields.get("resolution") is None
        else:

            def empty(issue: Issue) -> bool:
                return get(issue) in (None, [], "")

        return (lambda i: not empty(i)) if negate else empty
