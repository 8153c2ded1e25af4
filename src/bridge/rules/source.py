"""YAML rule files → Python data plus the line and column of every key and value.

Admins get ``file:line:col`` for every problem, so the loader composes the YAML node tree
itself (safe: only plain scalars, sequences and mappings) and records where each piece of
data came from. Two deliberate departures from PyYAML's defaults, both to protect admins:

- only ``true``/``false`` are booleans (YAML 1.1 would turn the country code ``NO`` and the
  answer ``yes`` into booleans), and timestamps stay strings (they are parsed where their
  meaning — date or instant, which time zone — is known);
- a key repeated in one mapping is an error, not a silent overwrite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bridge.errors import Diagnostic

__all__ = ["MAX_RULE_FILE_BYTES", "Loc", "Path_", "SourceDoc", "parse_yaml"]

MAX_RULE_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 250_000  # alias expansion ("billion laughs") stops here; 500 rules ≈ 15,000
MAX_DEPTH = 200

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


class _Builder:
    """Turns a composed node tree into plain data, recording positions and problems."""

    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []
        self.count = 0
        self.constructor = SafeConstructor()

    def _problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Diagnostic(self.doc.path, mark.line + 1, mark.column + 1, message))

    def build(self, node: Node, path: Path_, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBigError
        if depth > MAX_DEPTH:
            self._problem(node, f"nesting deeper than {MAX_DEPTH} levels")
            return None
        mark = node.start_mark
        self.doc.values[path] = Loc(mark.line + 1, mark.column + 1)
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if isinstance(node, SequenceNode):
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        self._problem(node, "unsupported YAML node")
        return None

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag == _TAG + "str" or tag == _TAG + "timestamp":
            return node.value
        if tag == _TAG + "bool":
            lowered = node.value.lower()
            return lowered == "true" if lowered in ("true", "false") else node.value
        if tag == _TAG + "int":
            return self.constructor.construct_yaml_int(node)
        if tag == _TAG + "float":
            return self.constructor.construct_yaml_float(node)
        if tag == _TAG + "null":
            return None
        self._problem(node, f"unsupported YAML tag {tag!r}; write a plain value")
        return node.value

    def _pairs(self, node: MappingNode) -> Iterator[tuple[Node, Node]]:
        """Key/value node pairs with ``<<`` merge keys expanded (explicit keys win)."""
        explicit: list[tuple[Node, Node]] = []
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, MappingNode):
                        merged.extend(self._pairs(source))
                    else:
                        self._problem(source, "a merge key (<<) must refer to a mapping")
            else:
                explicit.append((key_node, value_node))
        explicit_keys = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
        yield from ((k, v) for k, v in merged if k.value not in explicit_keys)
        yield from explicit

    def _mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in self._pairs(node):
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, "a mapping key must be a plain value, not a list or map")
                continue
            key = key_node.value
            if key in first_line:
                self._problem(
                    key_node,
                    f"duplicate key {key!r} (first at line {first_line[key]}); "
                    "each key may appear once in a mapping",
                )
                continue
            first_line[key] = key_node.start_mark.line + 1
            child = (*path, key)
            self.doc.keys[child] = Loc(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, child, depth + 1)
        return result


def _syntax_hint(text: str, line: int, col: int, problem: str) -> str:
    lines = text.splitlines()
    if 0 < line <= len(lines) and "\t" in lines[line - 1][: max(col, 1)]:
        return " (YAML does not allow tabs for indentation; indent with spaces)"
    if "\t" in problem or "found character '\\t'" in problem:
        return " (YAML does not allow tabs for indentation; indent with spaces)"
    return ""


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
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        col = mark.column + 1 if mark else 1
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        if (
            exc.context_mark is not None
            and mark is not None
            and (exc.context_mark.line != mark.line)
        ):
            context += f" that starts at line {exc.context_mark.line + 1}"
        hint = _syntax_hint(text, line, col, problem)
        return None, [Diagnostic(path, line, col, f"YAML syntax: {problem}{context}{hint}")]
    except yaml.YAMLError as exc:
        return None, [Diagnostic(path, 1, 1, f"YAML syntax: {exc}")]
    doc = SourceDoc(path=path, data=None)
    if node is None:
        return None, [
            Diagnostic(path, 1, 1, "the file is empty; a rules file starts with `bridge: 1`")
        ]
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
    # Duplicate keys and odd tags are reported, but the rest of the file is still checked.
    return doc, builder.problems
