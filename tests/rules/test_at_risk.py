"""An SLA's ``at_risk`` threshold: the two forms it takes, and each mistake at its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import RuleValidationError
from bridge.rules.ast import AtRisk
from bridge.rules.loader import load_rules

SLA = """bridge: 1
slas:
  resolution:
    stop: {{field: status_category, equals: done}}
    at_risk: {at_risk}
    goals:
      - {{when: {{field: priority, equals: Highest}}, target: 4h}}
      - {{target: 8h}}
"""
AT = "5:14"  # where the value of at_risk is written


def load(tmp_path: Path, at_risk: str) -> AtRisk | None:
    path = tmp_path / "slas.yaml"
    path.write_text(SLA.format(at_risk=at_risk))
    return load_rules([path]).slas["resolution"].at_risk


def problems(tmp_path: Path, at_risk: str) -> list[str]:
    path = tmp_path / "slas.yaml"
    path.write_text(SLA.format(at_risk=at_risk))
    with pytest.raises(RuleValidationError) as caught:
        load_rules([path])
    return [f"{d.line}:{d.col}: {d.message}" for d in caught.value.diagnostics]


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("75%", AtRisk(share=0.75)),
        ("' 87.5 % '", AtRisk(share=0.875)),
        ("1%", AtRisk(share=0.01)),
        ("99%", AtRisk(share=0.99)),
        ("1h", AtRisk(before=3600.0)),
        ("1h30m", AtRisk(before=5400.0)),
        ("7h59m", AtRisk(before=28740.0)),  # before the longest goal; the 4 h one never warns
    ],
)
def test_a_share_or_a_time_left_is_read(tmp_path: Path, written: str, meant: AtRisk) -> None:
    assert load(tmp_path, written) == meant


def test_without_at_risk_there_is_no_threshold(tmp_path: Path) -> None:
    path = tmp_path / "slas.yaml"
    path.write_text(SLA.replace("    at_risk: {at_risk}\n", "").format())
    assert load_rules([path]).slas["resolution"].at_risk is None


SHARE_FIX = "write e.g. 75%"
FORM_FIX = (
    "is not an at-risk threshold; write a share of the goal's target, e.g. 75%, or the "
    "working time left before the goal, e.g. 1h"
)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "0%",
            "an at-risk share of 0% is outside 1% to 99% of the goal's target (under 1% a "
            f"clock is at risk from its first minutes); {SHARE_FIX}",
        ),
        (
            "0.5%",
            "an at-risk share of 0.5% is outside 1% to 99% of the goal's target (under 1% a "
            f"clock is at risk from its first minutes); {SHARE_FIX}",
        ),
        (
            "100%",
            "an at-risk share of 100% is outside 1% to 99% of the goal's target (at 100% and "
            f"over it warns of nothing: the clock is breaching by then); {SHARE_FIX}",
        ),
        ("75", f"75 {FORM_FIX}"),  # the percent sign forgotten: a number, not text
        ("0.75", f"0.75 {FORM_FIX}"),
        ("75 percent", f"'75 percent' {FORM_FIX}"),
        ("'-1h'", f"'-1h' {FORM_FIX}"),
        ("0m", "an at-risk time must be longer than 0; write e.g. 1h"),
        (
            "8h",
            "an at-risk time of 8h leaves no time before any goal of this SLA (the longest "
            "target is 8h), so it could never apply; write less time, or a share of the "
            "goal's target such as 75%",
        ),
        (
            "999999w",
            "'999999w' is longer than 100 years, the longest duration bridge accepts; write "
            "at most 36500d",
        ),
    ],
)
def test_each_mistake_is_located_with_the_fix(tmp_path: Path, written: str, message: str) -> None:
    assert problems(tmp_path, written) == [f"{AT}: {message}"]


def test_a_mistake_in_at_risk_is_reported_with_the_others(tmp_path: Path) -> None:
    path = tmp_path / "slas.yaml"
    path.write_text(SLA.format(at_risk="120%").replace("target: 8h", "target: 0h"))
    with pytest.raises(RuleValidationError) as caught:
        load_rules([path])
    assert [f"{d.line}:{d.col}: {d.message}" for d in caught.value.diagnostics] == [
        f"{AT}: an at-risk share of 120% is outside 1% to 99% of the goal's target (at 100% "
        f"and over it warns of nothing: the clock is breaching by then); {SHARE_FIX}",
        "8:18: an SLA target must be longer than 0",
    ]
