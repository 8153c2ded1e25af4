"""Regular expressions from admin text, run by RE2 in time linear in the text.

Python's ``re`` backtracks: ``^([A-Za-z]+\\s?)+:`` takes seconds on a summary of 27 letters
and a ``!``, twice as long with every letter, and a rule file is admin text applied to
ticket text anyone can type. RE2 (the ``google-re2`` package) never backtracks, so every
match costs time proportional to the text, whatever the pattern.

Admins write Python syntax (the README says so, and existing rule sets use it), and RE2's
dialect differs in small ways that would silently change what a rule matches. So a pattern
is parsed by Python's own parser and written out again in RE2 syntax *with Python's
meaning*:

- ``\\d``, ``\\w`` and ``\\s`` are Unicode classes, as in Python (RE2's are ASCII);
- ``$`` also matches before a final newline (unless the pattern reads on past the ``$``,
  which no sensible pattern does), and ``\\Z`` is RE2's ``\\z``;
- ``\\b`` and ``\\B`` count Unicode letters as word characters at the start or the end of
  a pattern and between two characters the pattern spells out (``\\bÄnderung``,
  ``migrat(e|ion)\\b``, ``x\\b-``); elsewhere in the middle, next to something that may be
  a letter or not (``\\w+\\b.``), RE2's ``\\b`` decides, which knows only ASCII letters;
- ``(?x)`` verbose patterns, ``(?#...)`` comments, ``\\N{...}`` and octal escapes work, as
  the parser resolves them.

What only a backtracking matcher can do (backreferences, lookaround, atomic groups,
possessive quantifiers, conditionals) is refused when the rules are checked, with what to
write instead; so is a repeat count over 1000, RE2's limit.

Only this module touches RE2 (untyped, so it is imported dynamically) and Python's regex
parser (``re._parser``, private but stable, and the only exact reading of Python syntax).
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
import warnings
from collections.abc import Sequence
from typing import Any, Final, Literal

__all__ = ["MAX_REPEAT", "Regex", "RegexError", "compile_regex", "translate"]

_re2: Any = importlib.import_module("re2._re2")
_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

MAX_REPEAT: Final = 1000  # RE2 refuses larger counted repeats: {1001} is an error there
_MAX_MEM: Final = 8 << 20  # RE2's default: the compiled program and its DFA cache, per pattern
_UNANCHORED: Final = _re2.RE2.Anchor.UNANCHORED

# Python's classes in RE2 syntax, each as the "atoms" whose union it is: a Unicode property
# (RE2's \p{..}) or code point ranges. Equal to Python's on every assigned code point
# (tests/rules/test_regex.py checks all of them); \s is Python's exact list.
Atom = tuple[str, tuple[tuple[int, int], ...]]  # (property, ()) or ("", ranges)
_SPACE_RANGES: Final = (
    (0x09, 0x0D),
    (0x1C, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)
_CLASSES: Final[dict[tuple[str, bool], tuple[Atom, ...]]] = {
    ("word", False): (("L", ()), ("N", ()), ("", ((0x5F, 0x5F),))),
    ("digit", False): (("Nd", ()),),
    ("space", False): (("", _SPACE_RANGES),),
    ("word", True): (("", ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))),),
    ("digit", True): (("", ((0x30, 0x39),)),),
    ("space", True): (("", ((0x09, 0x0D), (0x20, 0x20))),),
}
_MAX_CODE: Final = 0x10FFFF


def _ranges(ranges: Sequence[tuple[int, int]]) -> str:
    return "".join(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in ranges)


def _atom(atom: Atom) -> str:
    """Class members that make up the atom."""
    prop, ranges = atom
    return f"\\p{{{prop}}}" if prop else _ranges(ranges)


def _atom_complement(atom: Atom) -> str:
    """Class members that make up everything but the atom."""
    prop, ranges = atom
    if prop:
        return f"\\P{{{prop}}}"
    gaps: list[tuple[int, int]] = []
    start = 0
    for low, high in ranges:
        if low > start:
            gaps.append((start, low - 1))
        start = high + 1
    if start <= _MAX_CODE:
        gaps.append((start, _MAX_CODE))
    return _ranges(gaps)


_WORD: Final = "\\p{L}\\p{N}_"
_NEVER: Final = r"[^\x00-\x{10ffff}]"

Kind = Literal["word", "other", "start", "end"] | None
"""What is on one side of a position: a word character, another character, the edge of the
whole pattern (text the match may consume), or unknown (None)."""


class RegexError(ValueError):
    """A pattern that cannot be used; the message says why and what to write instead."""


def _shown(pattern: str) -> str:
    """The pattern for a message, as the admin wrote it (repr() would double every
    backslash): whole when short, its start otherwise."""
    head = pattern if len(pattern) <= 80 else pattern[:60]
    quoted = f"'{head}'" if head.isprintable() else repr(head)
    return quoted if head is pattern else f"{quoted}… ({len(pattern)} characters)"


def _unsupported(pattern: str, what: str, instead: str) -> RegexError:
    return RegexError(
        f"regular expression {_shown(pattern)} uses {what}, which cannot be matched in linear "
        f"time (rules run with RE2, so that no pattern can hang classification); {instead}"
    )


def _is_word(code: int) -> bool:
    char = chr(code)
    return char == "_" or char.isalnum()


def _char(code: int) -> str:
    """One code point as an RE2 literal (hex escapes: safe in and out of classes)."""
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    return f"\\x{{{code:x}}}"


class _Translator:
    """Python's parse tree of one pattern → RE2 syntax with Python's meaning."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    # -- what lies on either side of an element, for \b and \B ----------------------------

    def _class_kind(self, items: Sequence[tuple[Any, Any]]) -> Kind:
        kinds: set[str] = set()
        for op, av in items:
            if op is _c.NEGATE:
                return None
            if op is _c.LITERAL:
                kinds.add("word" if _is_word(av) else "other")
            elif op is _c.RANGE:
                low, high = av
                if high - low > 4096:
                    return None
                kinds.update("word" if _is_word(c) else "other" for c in range(low, high + 1))
            elif op is _c.CATEGORY:
                if av in (_c.CATEGORY_WORD, _c.CATEGORY_DIGIT):
                    kinds.add("word")
                elif av in (_c.CATEGORY_NOT_WORD, _c.CATEGORY_SPACE):
                    kinds.add("other")
                else:
                    return None
            else:
                return None
        return "word" if kinds == {"word"} else "other" if kinds == {"other"} else None

    def _edge_kind(self, items: Sequence[tuple[Any, Any]], last: bool) -> Kind:
        """The kind of the character at the start (or the end) of what ``items`` match."""
        if not items:
            return None
        op, av = items[-1] if last else items[0]
        if op is _c.LITERAL:
            return "word" if _is_word(av) else "other"
        if op is _c.IN:
            return self._class_kind(av)
        if op is _c.SUBPATTERN:
            if av[1] & re.ASCII:  # (?a:\W) holds é, a Unicode letter: no longer one kind
                return None
            return self._edge_kind(list(av[3]), last)
        if op is _c.BRANCH:
            kinds = {self._edge_kind(list(alt), last) for alt in av[1]}
            return kinds.pop() if len(kinds) == 1 else None
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:
            return self._edge_kind(list(av[2]), last)
        if op is _c.AT:
            # The text at ^ is after a line break or the start; at $ before one or the end.
            if last and av in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING):
                return "other"
            if not last and av in (_c.AT_END, _c.AT_END_STRING):
                return "other"
        return None

    def _boundary(self, negated: bool, before: Kind, after: Kind, ascii_only: bool) -> str:
        plain = r"\B" if negated else r"\b"
        if ascii_only:
            return plain  # (?a): RE2's ASCII word characters are Python's then
        word, other = f"[{_WORD}]", f"[^{_WORD}]"
        if before in ("word", "other") and after in ("word", "other"):
            differ = before != after
            return "" if differ != negated else _NEVER
        if before == "start" and after in ("word", "other"):
            # Nothing of the pattern comes before: the match may take the character before.
            wants_word = (after == "other") != negated
            return word if wants_word else rf"(?:\A|{other})"
        if after == "end" and before in ("word", "other"):
            wants_word = (before == "other") != negated
            return word if wants_word else rf"(?:\z|{other})"
        return plain

    # -- emitting ---------------------------------------------------------------------------

    def sequence(
        self, items: Sequence[tuple[Any, Any]], flags: int, before: Kind, after: Kind
    ) -> str:
        items = list(items)
        out: list[str] = []
        for i, (op, av) in enumerate(items):
            left = before if i == 0 else self._edge_kind(items[:i], last=True)
            right = after if i == len(items) - 1 else self._edge_kind(items[i + 1 :], last=False)
            # Another boundary beside this one (\b\b$) leaves both to RE2: the emulations
            # at the pattern's ends take a character, which the other boundary cannot see.
            out.append(self.element(op, av, flags, left, right))
        return "".join(out)

    def element(self, op: Any, av: Any, flags: int, before: Kind, after: Kind) -> str:
        ascii_only = bool(flags & re.ASCII)
        if op is _c.LITERAL:
            return _char(av)
        if op is _c.NOT_LITERAL:
            return f"[^{_char(av)}]"
        if op is _c.ANY:
            return "."
        if op is _c.IN:
            return self.char_class(av, ascii_only)
        if op is _c.BRANCH:
            alternatives = [self.sequence(alt, flags, before, after) for alt in av[1]]
            return "(?:" + "|".join(alternatives) + ")"
        if op is _c.SUBPATTERN:
            _group, add, remove, body = av
            inner = (flags | add) & ~remove
            return f"(?{_flag_text(add, remove)}:{self.sequence(body, inner, before, after)})"
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
            low, high, body = av
            for count in (low, high):
                if count != _c.MAXREPEAT and count > MAX_REPEAT:
                    raise _unsupported(
                        self.pattern,
                        f"a repeat count over {MAX_REPEAT} ({count})",
                        "use + or *, or a count up to 1000 (x{1000}x{500} for 1500)",
                    )
            once = high == 1
            inner = self.sequence(body, flags, before if once else None, after if once else None)
            lazy = "?" if op is _c.MIN_REPEAT else ""
            return f"(?:{inner}){_quantifier(low, high)}{lazy}"
        if op is _c.AT:
            return self.anchor(av, flags, before, after)
        raise self._refusal(op, av)

    def anchor(self, code: Any, flags: int, before: Kind, after: Kind) -> str:
        if code is _c.AT_BEGINNING:
            return "^"
        if code is _c.AT_BEGINNING_STRING:
            return r"\A"
        if code is _c.AT_END:
            # Python's $ (not multi-line) also matches before a newline that ends the text.
            return "$" if flags & re.MULTILINE else r"(?:\n?\z)"
        if code is _c.AT_END_STRING:
            return r"\z"
        if code in (_c.AT_BOUNDARY, _c.AT_NON_BOUNDARY):
            negated = code is _c.AT_NON_BOUNDARY
            return self._boundary(negated, before, after, bool(flags & re.ASCII))
        raise RegexError(f"regular expression {_shown(self.pattern)}: unsupported anchor {code}")

    def char_class(self, items: Sequence[tuple[Any, Any]], ascii_only: bool) -> str:
        negate = False
        members: list[str] = []
        excluded: list[tuple[Atom, ...]] = []  # \W, \S, \D: everything but these atoms
        for op, av in items:
            if op is _c.NEGATE:
                negate = True
            elif op is _c.LITERAL:
                members.append(_char(av))
            elif op is _c.RANGE:
                members.append(f"{_char(av[0])}-{_char(av[1])}")
            elif op is _c.CATEGORY:
                name, inverse = _category(av)
                atoms = _CLASSES[name, ascii_only]
                if inverse:
                    excluded.append(atoms)
                else:
                    members.extend(_atom(atom) for atom in atoms)
            else:
                raise RegexError(f"regular expression {_shown(self.pattern)}: unsupported class")
        listed = "".join(members)
        if not excluded:
            return f"[{'^' if negate else ''}{listed}]"
        if not negate:
            # [a\W]: one of the members, or anything outside one of the excluded classes.
            alternatives = [f"[{listed}]"] if members else []
            alternatives.extend(f"[^{''.join(map(_atom, atoms))}]" for atoms in excluded)
            return "(?:" + "|".join(alternatives) + ")"
        # [^\W\d_] is "in every excluded class, and not a member": an intersection, which
        # RE2 spells as a negated class of complements, one per combination of atoms.
        combinations: list[list[Atom]] = [[]]
        for atoms in excluded:
            combinations = [[*chosen, atom] for chosen in combinations for atom in atoms]
        alternatives = [
            f"[^{''.join(map(_atom_complement, chosen))}{listed}]" for chosen in combinations
        ]
        return "(?:" + "|".join(alternatives) + ")"

    def _refusal(self, op: Any, av: Any) -> RegexError:
        if op is _c.GROUPREF:
            return _unsupported(
                self.pattern,
                r"a backreference (\1 or (?P=name))",
                r"write the repeated text out, e.g. (ab)ab instead of (ab)\1",
            )
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            direction, _body = av
            behind = direction < 0
            if op is _c.ASSERT:
                what = "a lookbehind (?<=...)" if behind else "a lookahead (?=...)"
                instead = (
                    "match the text itself: (?<=foo)bar → foobar"
                    if behind
                    else "match the text itself: foo(?=bar) → foobar"
                )
            else:
                what = f"a negative look{'behind (?<!' if behind else 'ahead (?!'}...)"
                instead = (
                    "put what must not match in its own condition under not:, e.g. all: "
                    "[{field: summary, matches: '^foo'}, {not: {field: summary, matches: "
                    "'^foobar'}}]"
                )
            return _unsupported(self.pattern, what, instead)
        if op is _c.GROUPREF_EXISTS:
            return _unsupported(
                self.pattern,
                "a conditional group (?(1)...|...)",
                "write each alternative as its own condition under any:",
            )
        if op is _c.ATOMIC_GROUP:
            return _unsupported(
                self.pattern,
                "an atomic group (?>...)",
                "write (?:...) instead: RE2 never backtracks, so the group is not needed",
            )
        if op is _c.POSSESSIVE_REPEAT:
            return _unsupported(
                self.pattern,
                "a possessive quantifier (*+, ++, ?+ or {m,n}+)",
                "drop the last +: RE2 never backtracks, so x* does what x*+ was for",
            )
        return RegexError(f"regular expression {_shown(self.pattern)}: unsupported construct {op}")


def _flag_text(add: int, remove: int) -> str:
    def letters(flags: int) -> str:
        return "".join(
            letter
            for letter, flag in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL))
            if flags & flag
        )

    on, off = letters(add), letters(remove)
    return on + (f"-{off}" if off else "")


def _quantifier(low: int, high: int) -> str:
    if high == _c.MAXREPEAT:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _category(code: Any) -> tuple[str, bool]:
    """(the class: word, digit or space; whether the category means "anything but" it)."""
    if code in (_c.CATEGORY_DIGIT, _c.CATEGORY_NOT_DIGIT):
        return "digit", code is _c.CATEGORY_NOT_DIGIT
    if code in (_c.CATEGORY_WORD, _c.CATEGORY_NOT_WORD):
        return "word", code is _c.CATEGORY_NOT_WORD
    if code in (_c.CATEGORY_SPACE, _c.CATEGORY_NOT_SPACE):
        return "space", code is _c.CATEGORY_NOT_SPACE
    raise RegexError(f"unsupported character category {code}")


_PARSE_LOCK = threading.Lock()


def _parse(pattern: str, flags: int) -> Any:
    """Python's parse tree of ``pattern``; a warning from the parser is an error here.

    Python warns (FutureWarning) where a pattern's meaning will change in a later version,
    such as ``[[`` or ``[a--b]`` inside a set: a rule must not change meaning with an
    upgrade, so the admin is asked to escape it. Catching a warning swaps the process-wide
    filters, so parses take turns.
    """
    with _PARSE_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = _parser.parse(pattern, flags)
    if caught:
        raise RegexError(
            f"regular expression {_shown(pattern)}: {caught[0].message} (a later Python "
            "reads it differently); escape the character that starts it, e.g. \\[ for ["
        )
    return parsed


def translate(pattern: str, *, ignore_case: bool = False) -> str:
    """``pattern`` (Python syntax) in RE2 syntax with the same meaning.

    :raises RegexError: Python cannot parse it, or it needs a backtracking matcher.
    """
    try:
        parsed = _parse(pattern, re.IGNORECASE if ignore_case else 0)
        flags = int(parsed.state.flags)
        body = _Translator(pattern).sequence(list(parsed), flags, "start", "end")
    except re.error as exc:
        hint = ""
        if "bad escape \\p" in str(exc) or "bad escape \\P" in str(exc):
            hint = r" (Python syntax has no \p{...}: write [^\W\d_] for a letter, \d for a digit)"
        raise RegexError(f"invalid regular expression {_shown(pattern)}: {exc}{hint}") from None
    except RecursionError:
        # Both Python's parser and the translation recurse once per nested group.
        raise RegexError(
            f"regular expression {_shown(pattern)} nests groups too deeply; use fewer parentheses"
        ) from None
    prefix = _flag_text(flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL), 0)
    return f"(?{prefix}){body}" if prefix else body


class Regex:
    """A compiled admin pattern: :meth:`search` says whether it matches somewhere in a text."""

    __slots__ = ("_regexp", "ignore_case", "pattern")

    def __init__(self, pattern: str, *, ignore_case: bool = False) -> None:
        self.pattern = pattern
        self.ignore_case = ignore_case
        translated = translate(pattern, ignore_case=ignore_case)
        options = _re2.RE2.Options()
        options.log_errors = False  # RE2 would print to stderr; the error is ours to word
        options.never_capture = True  # only "is there a match" is ever asked
        options.max_mem = _MAX_MEM
        try:
            encoded = translated.encode("utf-8")
        except UnicodeEncodeError:
            raise RegexError(
                f"regular expression {_shown(pattern)} holds a lone surrogate (not text); remove it"
            ) from None
        regexp = _re2.RE2(encoded, options)
        if not regexp.ok():
            problem = bytes(regexp.error()).decode("utf-8", "replace")
            if "repetition size" in problem:
                raise _unsupported(
                    pattern,
                    "repeats inside repeats that make over 1000 copies, such as (x{100}){100}",
                    "use + or * for one of them",
                )
            if "too large" in problem or "too big" in problem or "too deep" in problem:
                raise _unsupported(
                    pattern,
                    "more states than RE2 allows a pattern",
                    "split it into several shorter conditions under any:",
                )
            raise RegexError(f"regular expression {_shown(pattern)} cannot be used: {problem}")
        self._regexp = regexp

    def search(self, text: Any) -> bool:
        """Whether the pattern matches somewhere in ``text`` (False for anything not text)."""
        try:
            data = text.encode("utf-8", "surrogatepass")
        except AttributeError:
            return False
        return bool(self._regexp.Match(_UNANCHORED, data, 0, len(data))[0][0] >= 0)

    def __repr__(self) -> str:
        flags = ", ignore_case=True" if self.ignore_case else ""
        return f"Regex({_shown(self.pattern)}{flags})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Regex):
            return NotImplemented
        return (self.pattern, self.ignore_case) == (other.pattern, other.ignore_case)

    def __hash__(self) -> int:
        return hash((self.pattern, self.ignore_case))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.pattern, self.ignore_case))


def _rebuild(pattern: str, ignore_case: bool) -> Regex:
    return Regex(pattern, ignore_case=ignore_case)


def compile_regex(pattern: str, *, ignore_case: bool = False) -> Regex:
    """Compile an admin pattern (Python syntax) for linear-time matching.

    Compiled patterns are kept (as ``re`` keeps its own): Python's Unicode classes make
    RE2 programs that take a millisecond or more to build (``\bword\b``: about 4 ms), and
    the service reloads the same patterns whenever a rule file changes.

    :raises RegexError: with the reason and what to write instead.
    """
    return _compiled(pattern, ignore_case)


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str, ignore_case: bool) -> Regex:
    return Regex(pattern, ignore_case=ignore_case)
