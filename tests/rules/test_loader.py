"""The service's loader keeps the last good rule set when an edit breaks the rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.errors import RuleValidationError
from bridge.rules.loader import LastGoodRules, load_rules, rule_files

GOOD = """bridge: 1
rules:
  - {id: incidents, when: {field: type, equals: Incident}, then: {work_type: service}}
"""
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_a_broken_reload_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    holder = LastGoodRules([tmp_path])
    assert holder.reload(T0) is True
    good = holder.current
    status = holder.status()
    assert status.healthy
    assert status.digest == good.digest
    assert status.loaded_at == T0

    path.write_text(GOOD.replace("equals", "equal"))
    assert holder.reload(datetime(2026, 5, 2, tzinfo=UTC)) is False
    assert holder.current is good  # still in force
    status = holder.status()
    assert not status.healthy
    assert status.digest == good.digest
    assert status.loaded_at == T0
    assert status.last_attempt_at == datetime(2026, 5, 2, tzinfo=UTC)
    assert status.last_error is not None
    assert "unknown operator 'equal'; did you mean 'equals'?" in status.last_error

    path.write_text(GOOD.replace("Incident", "Problem"))
    assert holder.reload(datetime(2026, 5, 3, tzinfo=UTC)) is True
    assert holder.current is not good
    assert holder.status().healthy


def test_no_good_rules_yet_raises_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("bridge: 1\nrules: {}\n")
    holder = LastGoodRules([tmp_path])
    assert holder.reload(T0) is False
    with pytest.raises(RuleValidationError, match="expected a list"):
        _ = holder.current


def test_rule_files_are_not_searched_recursively(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yml").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yaml").write_text("tests: []\n")
    files, problems = rule_files([tmp_path])
    assert [f.name for f in files] == ["a.yaml", "b.yml"]
    assert problems == []


def test_the_digest_depends_on_the_content_only(tmp_path: Path) -> None:
    """Four checkouts of the same rules used to give four digests: the path was hashed."""
    shipped = Path(__file__).resolve().parents[2] / "rules"
    copies = []
    for name in ("checkout-a", "elsewhere/checkout-b"):
        target = tmp_path / name / "rules"
        target.mkdir(parents=True)
        for path in shipped.glob("*.yaml"):
            (target / path.name).write_bytes(path.read_bytes())
        copies.append(load_rules([target]).digest)
    assert copies[0] == copies[1] == load_rules([shipped]).digest
    edited = tmp_path / "checkout-a" / "rules" / "90-default.yaml"
    edited.write_text(edited.read_text() + "\n# a comment is content too\n")
    assert load_rules([edited.parent]).digest != copies[0]
