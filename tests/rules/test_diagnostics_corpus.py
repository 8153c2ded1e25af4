"""Every invalid rule file under tests/data/rules/invalid gives exactly its expected messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import RuleValidationError
from bridge.rules.loader import load_rules

INVALID = Path(__file__).parent.parent / "data" / "rules" / "invalid"
VALID = Path(__file__).parent.parent / "data" / "rules" / "valid"


@pytest.mark.parametrize("path", sorted(INVALID.glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_file_reports_every_problem_with_its_location(path: Path) -> None:
    expected = (path.with_suffix(".expected.txt")).read_text("utf-8").splitlines()
    with pytest.raises(RuleValidationError) as caught:
        load_rules([path])
    got = [str(d).replace(str(path), path.name) for d in caught.value.diagnostics]
    assert got == expected


def test_valid_folder_loads() -> None:
    rule_set = load_rules([VALID])
    assert [r.id for r in rule_set.rules] == ["urgent-first", "incidents", "epics"]
    assert [r.id for r in rule_set.disabled] == ["switched-off"]
    assert set(rule_set.slas) == {"resolution"}
    assert set(rule_set.calendars) == {"office"}


def test_problems_across_files_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "bridge: 1\nrules:\n  - {id: same, when: {field: type, equals: A}, "
        "then: {work_type: service}}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "bridge: 1\nrules:\n  - {id: same, when: {field: tpye, equals: B}, "
        "then: {work_type: service}}\ndefault: {work_type: project}\n"
    )
    (tmp_path / "c.yaml").write_text("bridge: 1\ndefault: {work_type: service}\n")
    with pytest.raises(RuleValidationError) as caught:
        load_rules([tmp_path])
    messages = [f"{Path(d.path).name}:{d.line}: {d.message}" for d in caught.value.diagnostics]
    assert messages == [
        f"b.yaml:3: duplicate rule id 'same' (first at {tmp_path / 'a.yaml'}:3:10); "
        "rule ids must be unique across the rule set",
        "b.yaml:3: unknown field 'tpye'; did you mean 'type'?",
        # "first at" names the key that defines it, not the value after it
        f"c.yaml:2: default is defined twice (first at {tmp_path / 'b.yaml'}:4:1); keep one",
    ]


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleValidationError) as caught:
        load_rules([tmp_path])
    assert [d.message for d in caught.value.diagnostics] == [
        "no rule files (*.yaml, *.yml) in this folder; add one or name the right folder"
    ]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleValidationError) as caught:
        load_rules([tmp_path / "nope.yaml"])
    assert caught.value.diagnostics[0].message == "no such file or folder"


def test_a_10_mb_file_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("bridge: 1\ndescription: '" + "x" * 10_000_000 + "'\n")
    with pytest.raises(RuleValidationError) as caught:
        load_rules([path])
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{path}:1:1: file is 10.0 MB, over the 2 MB limit for a rules file; split the rules "
        "across several files"
    ]


def test_a_long_string_under_the_file_limit_is_located(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text("bridge: 1\ndescription: '" + "x" * 1_000_000 + "'\n")
    with pytest.raises(RuleValidationError) as caught:
        load_rules([path])
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{path}:2:14: text is 1,000,000 characters long; the limit here is 4,096"
    ]


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["bridge: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
        f"*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        for i in range(1, 9)
    ]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RuleValidationError) as caught:
        load_rules([path])
    assert "aliases" in caught.value.diagnostics[0].message


def _parseable() -> list[Path]:
    from bridge.rules.source import parse_yaml

    return [p for p in sorted(INVALID.glob("*.yaml")) if parse_yaml(str(p), p.read_bytes())[0]]


@pytest.mark.parametrize("path", _parseable(), ids=lambda p: p.stem)
def test_fast_and_full_schema_checks_agree_on_the_corpus(path: Path) -> None:
    """The Rust fast path may only ever say 'valid' when the Python validator agrees."""
    from bridge.plugins import default_registry
    from bridge.rules.source import parse_yaml
    from bridge.rules.validate import _fast_validator, _validator

    doc, _ = parse_yaml(str(path), path.read_bytes())
    assert doc is not None
    specs = list(default_registry().operators.values())
    fast = _fast_validator(specs)
    assert fast is not None
    assert fast.is_valid(doc.data) == _validator(specs).is_valid(doc.data)
