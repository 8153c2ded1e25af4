"""YAML rule files → Python data plus the line and column of every key and value.

Admins get ``file:line:col`` for every problem, so the loader composes the YAML node tree
itself (safe: only plain scalars, sequences and mappings) and records where each piece of
data came from. Two deliberate departures from PyYAML's defaults, both to protect admins:

- only ``true``/``false`` are booleans (YAML 1.1 would turn the country code ``NO`` and the
  answer ``yes`` into booleans), and timestamps stay strings (they are parsed where their
  meaning — date or instant, which time zone — is known);
- a key repeated in one mapping is an error, not a silent overwrite.

Aliases (``*a``) and merge keys (``<<: [*a, *a]``) let a few hundred bytes stand for
billions of values, or for a value that contains itself. The composed node graph is
therefore measured before anything is built: every alias counts the size of what it
repeats, so a document that would expand past :data:`MAX_NODES` values, or an anchor that
refers to itself, is a located error found in time and memory proportional to the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bridge.errors import Diagnostic
from bridge.rules.syntax import explain_syntax_error

__all__ = ["MAX_RULE_FILE_BYTES", "Loc", "Path_", "SourceDoc", "parse_yaml"]

MAX_RULE_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 250_000  # alias expansion ("billion laughs") stops here; 500 rules ≈ 15,000
# Rules nest conditions a few levels deep; the schema check, the compiler and the engine's
# generated code all recurse per level, so a deep file must stop here, not in a RecursionError.
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"


@dataclass(frozen=True, slots=True)
class Loc:
    """A 1-based line and column."""

    line: int
    col: int


@dataclass(slots=True)
class SourceDoc:
    """One parsed file: its data and where every value and mapping key was written."""

    path: str
    data: Any
    values: dict[Path_, Loc] = field(default_factory=dict)
    keys: dict[Path_, Loc] = field(default_factory=dict)
    # Values the parser could not read (a 5,000-digit number) and replaced: already
    # reported, so checks of the stand-in are not.
    unreadable: set[Path_] = field(default_factory=set)

    def loc(self, path: Path_, *, key: bool = False) -> Loc:
        """The position of the value at ``path`` (or of its key), else the nearest ancestor."""
        current = tuple(path)
        if key and current in self.keys:
            return self.keys[current]
        while current:
            if current in self.values:
                return self.values[current]
            current = current[:-1]
        return self.values.get((), Loc(1, 1))

    def diag(self, path: Path_, message: str, *, key: bool = False) -> Diagnostic:
        loc = self.loc(path, key=key)
        return Diagnostic(self.path, loc.line, loc.col, message)


class _TooBigError(Exception):
    """Raised inside the builder when aliases expand the document beyond ``MAX_NODES``."""


def _edges(node: Node) -> list[tuple[Node, Node]]:
    """(child, a node near it for messages: its key, or its sequence) in document order."""
    if isinstance(node, SequenceNode):
        return [(child, node) for child in node.value]
    if isinstance(node, MappingNode):
        edges: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            edges.append((key_node, key_node))
            edges.append((value_node, key_node))
        return edges
    return []


_RECURSIVE = (
    "this alias refers to the anchor it is inside, so the value would never end; "
    "point it at another anchor or write the value out"
)
_EXPANDS = (
    f"aliases (*name) and merge keys (<<) here expand the file to more than {MAX_NODES:,} "
    "values; write the repeated part once, or use fewer aliases"
)
_TOO_MANY = (
    f"the file holds more than {MAX_NODES:,} values (500 rules take about 15,000); "
    "shorten it, or split a rule set across several files"
)


def _measure(root: Node) -> tuple[Node, int | None, str] | None:
    """The first place (in document order) where the document stops being finite or small:
    an anchor whose value contains an alias to itself, or the value at which the values
    the builder would make (aliases and merges expanded) pass ``MAX_NODES``.

    Iterative (a file may nest a thousand levels) and linear in the distinct nodes: each
    node's expanded size is computed once and an alias adds it without walking it again.
    Returns a node near the place, the number of the alias there (0 for the first alias in
    the file; None when no alias is to blame) and the message.
    """
    cap = MAX_NODES + 1
    size: dict[int, int] = {}  # id(node) → expanded size, capped just over MAX_NODES
    walking: set[int] = {id(root)}  # nodes whose children are being walked
    aliases = 0
    running = 1
    # Frames: [node, its edges, next edge index, size so far].
    stack: list[list[Any]] = [[root, _edges(root), 0, 1]]
    while stack:
        frame = stack[-1]
        edges = frame[1]
        index = frame[2]
        if index == len(edges):
            stack.pop()
            key = id(frame[0])
            walking.discard(key)
            total = size[key] = min(frame[3], cap)
            if stack:
                stack[-1][3] += total
            continue
        frame[2] = index + 1
        child, where = edges[index]
        key = id(child)
        known = size.get(key)
        if known is not None:  # an alias: it repeats the whole value once more
            frame[3] += known
            running += known
            if running > MAX_NODES:
                return where, aliases, _EXPANDS
            aliases += 1
            continue
        if key in walking:
            return where, aliases, _RECURSIVE
        running += 1
        if running > MAX_NODES:
            return child, None, _TOO_MANY
        if isinstance(child, ScalarNode):
            size[key] = 1
            frame[3] += 1
        else:
            walking.add(key)
            stack.append([child, _edges(child), 0, 1])
    return None


class _Builder:
    """Turns a composed node tree into plain data, recording positions and problems."""

    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []
        self.count = 0
        self.constructor = SafeConstructor()
        self._merged: dict[int, list[tuple[Node, Node]]] = {}
        self.too_deep = False

    def _problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Diagnostic(self.doc.path, mark.line + 1, mark.column + 1, message))

    def _count(self) -> None:
        self.count += 1
        if self.count > MAX_NODES:  # _measure has already refused such files; kept as a stop
            raise _TooBigError

    def build(self, node: Node, path: Path_, depth: int = 0) -> Any:
        self._count()
        if depth > MAX_DEPTH:
            self.too_deep = True
            self._problem(
                node,
                f"nesting deeper than {MAX_DEPTH} levels; flatten it (one all: or any: can "
                "hold many conditions)",
            )
            return None
        mark = node.start_mark
        self.doc.values[path] = Loc(mark.line + 1, mark.column + 1)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode | MappingNode) and node.tag not in (
            _TAG + "seq",
            _TAG + "map",
        ):
            self._problem(node, f"unsupported YAML tag {node.tag!r}; remove it")
        if isinstance(node, SequenceNode):
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        self._problem(node, "unsupported YAML node")
        return None

    def _scalar(self, node: ScalarNode, path: Path_) -> Any:
        tag = node.tag
        if tag == _TAG + "str" or tag == _TAG + "timestamp":
            return node.value
        if tag == _TAG + "bool":
            lowered = node.value.lower()
            return lowered == "true" if lowered in ("true", "false") else node.value
        if tag in (_TAG + "int", _TAG + "float"):
            try:
                if tag == _TAG + "int":
                    return self.constructor.construct_yaml_int(node)
                return self.constructor.construct_yaml_float(node)
            except ValueError:  # Python refuses to read integers of over 4,300 digits
                self._problem(
                    node,
                    f"a number of {len(node.value):,} characters is too long to read; "
                    "write a shorter number",
                )
                self.doc.unreadable.add(path)
                return 0
        if tag == _TAG + "null":
            return None
        self._problem(node, f"unsupported YAML tag {tag!r}; write a plain value")
        return node.value

    def _pairs(self, node: MappingNode, depth: int = 0) -> list[tuple[Node, Node]]:
        """Key/value node pairs with ``<<`` merge keys expanded, as YAML defines them: the
        mapping's own keys win, then the merged mappings in the order listed (a key two of
        them share is not a duplicate: the first one's value is taken).

        Remembered per mapping, so a chain of mappings that each merge the one before costs
        its length, not its length squared.
        """
        known = self._merged.get(id(node))
        if known is not None:
            return known
        if depth > MAX_DEPTH:
            self.too_deep = True
            self._problem(
                node, f"merge keys (<<) nest deeper than {MAX_DEPTH} levels; flatten them"
            )
            return []
        explicit: list[tuple[Node, Node]] = []
        merged: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, MappingNode):
                        for key, value in self._pairs(source, depth + 1):
                            self._count()
                            merged.setdefault(str(key.value), (key, value))
                    else:
                        self._problem(source, "a merge key (<<) must refer to a mapping")
            else:
                explicit.append((key_node, value_node))
        explicit_keys = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
        pairs = [(k, v) for name, (k, v) in merged.items() if name not in explicit_keys]
        pairs.extend(explicit)
        self._merged[id(node)] = pairs
        return pairs

    def _mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, Loc] = {}
        for key_node, value_node in self._pairs(node):
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, "a mapping key must be a plain value, not a list or map")
                continue
            key = key_node.value
            if key in first:
                self._problem(
                    key_node,
                    f"duplicate key {key!r} (first at line {first[key].line}, column "
                    f"{first[key].col}); each key may appear once in a mapping",
                )
                continue
            at = first[key] = Loc(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            child = (*path, key)
            self.doc.keys[child] = at
            result[key] = self.build(value_node, child, depth + 1)
        return result


def _alias_mark(text: str, number: int) -> Loc | None:
    """Where the alias ``number`` (0 = the first in the file) is written. The node graph
    has no trace of aliases (they are the nodes they repeat), but the parser's events do,
    in the order the measuring walk meets them; read again only to word an error."""
    seen = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, AliasEvent):
            if seen == number:
                mark = event.start_mark
                return Loc(mark.line + 1, mark.column + 1) if mark else None
            seen += 1
    return None


def parse_yaml(path: str, data: bytes) -> tuple[SourceDoc | None, list[Diagnostic]]:
    """Parse one YAML file into data with positions, and the problems found on the way.

    The document is None when nothing usable could be read (syntax error, not UTF-8, too
    large); otherwise it is returned even with problems so that later checks still run.
    """
    if len(data) > MAX_RULE_FILE_BYTES:
        size = len(data) / 1e6
        limit = MAX_RULE_FILE_BYTES // 2**20
        return None, [
            Diagnostic(
                path,
                1,
                1,
                f"file is {size:.1f} MB, over the {limit} MB limit for a "
                "rules file; split the rules across several files",
            )
        ]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Diagnostic(
                path,
                line,
                col,
                f"byte 0x{data[exc.start]:02x} is not UTF-8; save the file as UTF-8",
            )
        ]
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        at, context_at = exc.problem_mark, exc.context_mark
        found = explain_syntax_error(
            text,
            exc.problem or "invalid YAML",
            (at.line, at.column) if at else None,
            exc.context,
            (context_at.line, context_at.column) if context_at else None,
        )
        return None, [Diagnostic(path, found.line, found.col, found.message)]
    except yaml.YAMLError as exc:
        return None, [Diagnostic(path, 1, 1, f"YAML syntax: {exc}")]
    doc = SourceDoc(path=path, data=None)
    if node is None:
        return None, [
            Diagnostic(path, 1, 1, "the file is empty; a rules file starts with `bridge: 1`")
        ]
    unbounded = _measure(node)
    if unbounded is not None:
        where, alias, message = unbounded
        mark = where.start_mark
        loc = _alias_mark(text, alias) if alias is not None else None
        loc = loc or Loc(mark.line + 1, mark.column + 1)
        return None, [Diagnostic(path, loc.line, loc.col, message)]
    builder = _Builder(doc)
    try:
        doc.data = builder.build(node, ())
    except _TooBigError:
        return None, [
            Diagnostic(
                path,
                1,
                1,
                f"the YAML expands to more than {MAX_NODES:,} values (aliases?); simplify the file",
            )
        ]
    if builder.too_deep:  # later checks recurse per level too: they get nothing to walk
        return None, builder.problems
    # Duplicate keys and odd tags are reported, but the rest of the file is still checked.
    return doc, builder.problems
