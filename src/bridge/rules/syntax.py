"""YAML syntax errors in words: what is wrong, on the line where it is wrong.

PyYAML reports where its parser gave up, in its own terms ("mapping values are not allowed
in this context", "did not find expected key"). An admin's mistake is nearly always one of
a few: a line indented more or less than its neighbours, a key without its colon, a value
that holds ``": "``, a quote or bracket never closed, a tab. Each is recognised from the
parser's phrase (libyaml's and pure-Python PyYAML's) and from the lines around the place,
and explained with the key and column to line up with. Anything else keeps PyYAML's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SyntaxProblem", "explain_syntax_error"]

_KEY = re.compile(r"""^\s*(?:-\s+)*(?P<key>[^\s#'"{\[\-][^:#]*?|"[^"]*"|'[^']*')\s*:(?:\s|$)""")
_SNIPPET = 40


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    """A syntax error explained: 1-based line and column, and the message."""

    line: int
    col: int
    message: str


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _is_item(line: str) -> bool:
    """Whether the line starts a list item (``- x`` or a lone ``-``)."""
    rest = line.lstrip(" ")
    return rest == "-" or rest.startswith("- ")


def _key_column(line: str) -> int:
    """The 0-based column where a line's key (or value) starts, after any ``- `` markers."""
    col = _indent(line)
    while line.startswith("-", col) and (col + 1 == len(line) or line[col + 1] == " "):
        col += 1
        while col < len(line) and line[col] == " ":
            col += 1
    return col


def _key(line: str) -> str | None:
    found = _KEY.match(line)
    return found.group("key").strip() if found else None


def _has_value(line: str) -> bool:
    """Whether a ``key:`` line has its value on the same line."""
    found = _KEY.match(line)
    if not found:
        return False
    rest = line[found.end() :].strip()
    return bool(rest) and not rest.startswith("#")


def _snippet(line: str) -> str:
    text = line.strip()
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def _previous(lines: list[str], index: int) -> int | None:
    """The nearest line above ``index`` that holds something (not blank, not a comment)."""
    for above in range(min(index, len(lines)) - 1, -1, -1):
        if _is_content(lines[above]):
            return above
    return None


def _named(line: str) -> str:
    """How a message names a line: its key (``when:``), else its text."""
    key = _key(line)
    if key is None:
        return f"`{_snippet(line)}`"
    return (
        f"`- {key}:`" if _is_item(line) and _key_column(line) == _indent(line) + 2 else f"`{key}:`"
    )


def _columns_above(lines: list[str], index: int) -> list[tuple[int, int, str]]:
    """(0-based column, line index, how to name it) for every column a line at ``index``
    could line up with: the indentation of each enclosing line above it and, for a list
    item, the column of its first key."""
    found: list[tuple[int, int, str]] = []
    smallest: int | None = None
    for above in range(index - 1, -1, -1):
        line = lines[above]
        if not _is_content(line):
            continue
        indent = _indent(line)
        if smallest is not None and indent >= smallest:
            continue
        smallest = indent
        found.append((indent, above, _named(line)))
        key_col = _key_column(line)
        if key_col != indent and _key(line) is not None:
            found.append((key_col, above, f"`{_key(line)}:`"))
        if indent == 0:
            break
    return found


def _line_up(lines: list[str], index: int) -> str:
    """Where the line at ``index`` could go instead: the two nearest columns above."""
    here = _indent(lines[index])
    item = _is_item(lines[index])

    def starts_item(col: int, above: int) -> bool:
        return _is_item(lines[above]) and col == _indent(lines[above])

    # Nearest first; at the same distance, a list item for a list item, a key for a key.
    nearest: dict[int, tuple[int, int, str]] = {}
    for col, above, name in _columns_above(lines, index):
        nearest.setdefault(col, (col, above, name))
    candidates = sorted(
        nearest.values(),
        key=lambda c: (abs(c[0] - here), starts_item(c[0], c[1]) != item, -c[0]),
    )[:2]
    if not candidates:
        return "indent it like the lines it belongs with"
    options = [f"{name} on line {above + 1} (column {col + 1})" for col, above, name in candidates]
    return "line it up with " + " or with ".join(options)


def _block_problem(lines: list[str], index: int) -> SyntaxProblem | None:
    """A line whose indentation fits none of the mappings and lists around it."""
    if index >= len(lines) or not _is_content(lines[index]):
        return None
    line = lines[index]
    here = _indent(line)
    above = _previous(lines, index)
    if above is None:
        return None
    previous = lines[above]
    key_col = _key_column(previous)
    if here > key_col:
        name = _named(previous)
        why = ", which already has its value on its line" if _has_value(previous) else ""
        return SyntaxProblem(
            index + 1,
            here + 1,
            f"this line is indented more than {name} on line {above + 1}{why}; line it up "
            f"with {name} (column {key_col + 1}) to make it a key beside it, or remove the "
            f"value after {name} to nest this line under it",
        )
    columns = _columns_above(lines, index)
    same = [(c, a, n) for c, a, n in columns if c == here]
    item = _is_item(line)
    if same:
        _, sibling, name = same[0]
        if item and not _is_item(lines[sibling]):
            items = [(c, a, n) for c, a, n in columns if c < here and _is_item(lines[a])]
            where = (
                f"; a new item lines up with the `-` of the items before it (column "
                f"{items[0][0] + 1}, line {items[0][1] + 1})"
                if items
                else "; a list goes under a key that has no value on its line, indented"
            )
            return SyntaxProblem(
                index + 1,
                here + 1,
                f"a list item (-) where a key is expected, at the column of {name} on line "
                f"{sibling + 1}{where}",
            )
        if not item and _is_item(lines[sibling]):
            return SyntaxProblem(
                index + 1,
                here + 1,
                f"a key where the list of line {sibling + 1} expects another item: start "
                f"a new item with `- ` here, or indent the key to column "
                f"{_key_column(lines[sibling]) + 1} to add it to the item above",
            )
        return None
    return SyntaxProblem(
        index + 1,
        here + 1,
        f"this line is indented {here} space{'s' if here != 1 else ''}, which lines up "
        f"with no line above it; {_line_up(lines, index)}",
    )


def _colon_in_value(lines: list[str], index: int, col: int) -> SyntaxProblem | None:
    """``mapping values are not allowed``: a ``: `` inside a value, or a line that goes
    on the value of the key above it."""
    if index >= len(lines):
        return None
    line = lines[index]
    key = _key(line)
    start = _key_column(line)
    if key is not None and line.find(":", start) < col:
        value = line[line.find(":", start) + 1 :].strip()
        return SyntaxProblem(
            index + 1,
            col + 1,
            f"the value of `{key}:` holds ': ', which YAML reads as another key on the same "
            f"line; put the value in quotes: {key}: {_quoted(value)}",
        )
    above = _previous(lines, index)
    if above is not None and _indent(line) > _key_column(lines[above]):
        previous = lines[above]
        name = _named(previous)
        dash = (
            " (a list item needs a space after its dash: `- `)"
            if previous.lstrip().startswith("-") and not _is_item(previous)
            else ""
        )
        return SyntaxProblem(
            index + 1,
            _indent(line) + 1,
            f"this line is indented more than {name} on line {above + 1}, which already "
            f"has its value on its line{dash}; line it up with {name} (column "
            f"{_key_column(previous) + 1}), or remove the value after {name} to nest this "
            "line under it",
        )
    return SyntaxProblem(
        index + 1,
        col + 1,
        "this ':' is read as a key inside a value; put the value in quotes",
    )


def _quoted(value: str) -> str:
    if '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"


def _missing_colon(lines: list[str], index: int, col: int) -> SyntaxProblem:
    word = _snippet(lines[index][col:]) if index < len(lines) else ""
    return SyntaxProblem(
        index + 1,
        col + 1,
        f"`{word}` has no colon after it: a key is written `{word}:`; if the line goes on "
        "the value above it, indent it more than that value's key, or quote the whole value",
    )


def explain_syntax_error(
    text: str,
    problem: str,
    problem_at: tuple[int, int] | None,
    context: str | None,
    context_at: tuple[int, int] | None,
) -> SyntaxProblem:
    """What a PyYAML syntax error means for the admin who wrote ``text``.

    :param problem: PyYAML's problem phrase; ``problem_at`` its 0-based (line, column).
    :param context: what PyYAML was reading (``while parsing a block mapping``);
        ``context_at`` where that started, 0-based.
    """
    lines = text.splitlines()
    line, col = problem_at or context_at or (0, 0)
    context = context or ""
    prefix = "YAML syntax: "
    if "\t" in problem or "tab character" in problem or _tab_before(lines, line, col):
        return SyntaxProblem(
            line + 1,
            col + 1,
            f"{prefix}a tab is used for indentation here; YAML allows only spaces: replace "
            "the tab with spaces",
        )
    if "mapping values are not allowed" in problem:
        found = _colon_in_value(lines, line, col)
        if found is not None:
            return _prefixed(found, prefix)
    if "could not find expected ':'" in problem and context_at is not None:
        return _prefixed(_missing_colon(lines, *context_at), prefix)
    block = (
        "did not find expected key" in problem
        or "did not find expected '-' indicator" in problem
        or problem.startswith("expected <block end>")
    )
    if block and "block" in context:
        found = _block_problem(lines, line)
        if found is not None:
            return _prefixed(found, prefix)
    if "quoted scalar" in context and "end of stream" in problem and context_at is not None:
        return SyntaxProblem(
            context_at[0] + 1,
            context_at[1] + 1,
            f"{prefix}the quote that starts here is never closed; add the closing quote",
        )
    if "flow mapping" in context or "flow sequence" in context:
        opener, closer = ("{", "}") if "mapping" in context else ("[", "]")
        opened = f" on line {context_at[0] + 1}" if context_at is not None else ""
        return SyntaxProblem(
            line + 1,
            col + 1,
            f"{prefix}the `{opener}` opened{opened} is not closed before this point: add the "
            f"missing `{closer}`, or a comma between two entries",
        )
    if "document" in problem or "document" in context:
        return SyntaxProblem(
            line + 1,
            col + 1,
            f"{prefix}a second YAML document starts here; a file holds one: remove the "
            "`---` or `...` line, or move what follows into a file of its own",
        )
    if "undefined alias" in problem:
        return SyntaxProblem(
            line + 1,
            col + 1,
            f"{prefix}this alias (*name) refers to no anchor (&name) above it; define the "
            "anchor first, or quote the text if the * is meant literally",
        )
    where = ""
    if context_at is not None and problem_at is not None and context_at[0] != problem_at[0]:
        where = f" that starts at line {context_at[0] + 1}"
    detail = f" {context}{where}" if context else ""
    return SyntaxProblem(line + 1, col + 1, f"{prefix}{problem}{detail}")


def _tab_before(lines: list[str], line: int, col: int) -> bool:
    return 0 <= line < len(lines) and "\t" in lines[line][: max(col, 1)]


def _prefixed(found: SyntaxProblem, prefix: str) -> SyntaxProblem:
    return SyntaxProblem(found.line, found.col, prefix + found.message)
