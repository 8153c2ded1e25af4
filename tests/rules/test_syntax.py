"""YAML syntax errors explained in words, at the line of the mistake, whichever PyYAML parser
(libyaml or pure Python) read the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bridge.rules import source
from bridge.rules.source import parse_yaml
from bridge.rules.syntax import SyntaxProblem, explain_syntax_error

INVALID = Path(__file__).parent.parent / "data" / "rules" / "invalid"
SYNTAX_CASES = [
    "colon-in-value",
    "indent-less",
    "indent-more",
    "key-where-list-item",
    "list-item-misaligned",
    "list-item-where-key",
    "malformed",
    "missing-colon",
    "tab",
    "unclosed-quote",
    "value-then-nested-key",
]
# What PyYAML says; an admin is told what it means instead.
PYYAML_PHRASES = (
    "mapping values are not allowed",
    "could not find expected",
    "did not find expected",
    "expected <block end>",
    "while parsing",
    "while scanning",
)

LOADERS = {"libyaml": getattr(yaml, "CSafeLoader", None), "python": yaml.SafeLoader}


@pytest.fixture(params=sorted(LOADERS))
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    chosen = LOADERS[request.param]
    if chosen is None:
        pytest.skip("PyYAML was built without libyaml")
    monkeypatch.setattr(source, "_Loader", chosen)
    name: str = request.param
    return name


def _messages(text: str) -> list[str]:
    doc, problems = parse_yaml("r.yaml", text.encode())
    assert doc is None
    return [f"{p.line}:{p.col}: {p.message}" for p in problems]


@pytest.mark.parametrize("name", SYNTAX_CASES)
def test_both_parsers_explain_a_mistake_alike_without_pyyaml_words(name: str, loader: str) -> None:
    path = INVALID / f"{name}.yaml"
    expected = path.with_suffix(".expected.txt").read_text("utf-8").splitlines()
    _, problems = parse_yaml(path.name, path.read_bytes())
    assert [str(p) for p in problems] == expected
    assert not [phrase for phrase in PYYAML_PHRASES if phrase in expected[0]]


def test_a_line_indented_more_than_a_key_with_a_value_names_the_key_and_its_column(
    loader: str,
) -> None:
    text = "bridge: 1\nrules:\n  - id: a\n    when: {field: type, equals: Bug}\n      then: x\n"
    assert _messages(text) == [
        "5:7: YAML syntax: this line is indented more than `when:` on line 4, which already "
        "has its value on its line; line it up with `when:` (column 5) to make it a key "
        "beside it, or remove the value after `when:` to nest this line under it"
    ]


def test_a_key_without_its_colon_is_pointed_at_not_the_line_after_it(loader: str) -> None:
    text = "bridge: 1\nrules:\n  - id: a\n    then\n    when: {field: type, equals: Bug}\n"
    (message,) = _messages(text)
    assert message.startswith("4:5: YAML syntax: `then` has no colon after it")


def test_a_dash_without_a_space_is_named(loader: str) -> None:
    text = "bridge: 1\nrules:\n  -id: a\n    when: x\n"
    (message,) = _messages(text)
    assert message.startswith("4:5: YAML syntax: this line is indented more than `-id: a`")
    assert "(a list item needs a space after its dash: `- `)" in message


def test_a_value_with_a_quote_is_quoted_the_other_way(loader: str) -> None:
    text = 'a: say "hi": now\n'
    assert _messages(text) == [
        "1:12: YAML syntax: the value of `a:` holds ': ', which YAML reads as another key on "
        "the same line; put the value in quotes: a: 'say \"hi\": now'"
    ]


def test_an_alias_to_no_anchor_and_an_unclosed_list(loader: str) -> None:
    assert _messages("a: *nowhere\n") == [
        "1:4: YAML syntax: this alias (*name) refers to no anchor (&name) above it; define "
        "the anchor first, or quote the text if the * is meant literally"
    ]
    assert _messages("a: [1, 2\nb: 3\n") == [
        "2:2: YAML syntax: the `[` opened on line 1 is not closed before this point: add the "
        "missing `]`, or a comma between two entries"
    ]


def test_a_second_document_is_named(loader: str) -> None:
    assert _messages("a: 1\n---\nb: 2\n") == [
        "2:1: YAML syntax: a second YAML document starts here; a file holds one: remove the "
        "`---` or `...` line, or move what follows into a file of its own"
    ]


def test_a_problem_without_an_explanation_keeps_pyyaml_words_and_its_place() -> None:
    found = explain_syntax_error(
        "a: [[[\n", "exceeded maximum nesting depth", (0, 5), "while parsing", (0, 3)
    )
    assert found == SyntaxProblem(1, 6, "YAML syntax: exceeded maximum nesting depth while parsing")
