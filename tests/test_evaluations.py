"""A stored evaluation reads back as what the report and the dashboard need: the same
portfolio figures as the evaluation it was made from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.cli.options import evaluate_export
from bridge.evaluations import decode, encode
from bridge.kpi.portfolio import portfolio

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def evaluated():  # type: ignore[no-untyped-def]
    _, found, skipped = evaluate_export([str(ROOT / "rules")], [str(ROOT / "examples/export")], NOW)
    assert not skipped
    return found


@pytest.mark.parametrize("by", [None, "service", "project", "team", "labels", "assignee"])
def test_portfolio_figures_are_the_same_from_stored_records(evaluated, by) -> None:  # type: ignore[no-untyped-def]
    restored = [decode(encode(e), "jira") for e in evaluated]
    assert [r.as_dict() for r in portfolio(restored, by)[0]] == [
        r.as_dict() for r in portfolio(evaluated, by)[0]
    ]
    assert portfolio(restored, by)[1].as_dict() == portfolio(evaluated, by)[1].as_dict()


def test_a_record_keeps_the_decision_kpis_and_reasons(evaluated) -> None:  # type: ignore[no-untyped-def]
    original = next(e for e in evaluated if e.kpis.missing and e.decision.phase)
    restored = decode(encode(original), "snow")
    assert restored.source == "snow"
    assert restored.decision == original.decision
    assert restored.kpis.missing == original.kpis.missing
    assert (restored.item.key, restored.item.url, restored.item.created) == (
        original.item.key,
        original.item.url,
        original.item.created,
    )
    floats = {k: v for k, v in original.kpis.values.items() if isinstance(v, float | int)}
    assert {k: restored.kpis.values[k] for k in floats} == floats


@pytest.mark.parametrize(
    "record",
    [
        "[]",
        '{"format": 99}',
        '{"format": 1, "decision": {"work_type": "x"}}',
        '{"format": 1, "decision": {"work_type": "service"}, "item": {"key": ""}}',
    ],
)
def test_a_record_that_cannot_be_read_is_refused_not_guessed(record: str) -> None:
    with pytest.raises(ValueError, match=r"format-1|decision|key"):
        decode(record)


def test_records_are_compact_json() -> None:
    from bridge.kpi.portfolio import Evaluated
    from bridge.kpi.result import KpiResult
    from bridge.model import Classification, WorkItem

    text = encode(
        Evaluated(
            WorkItem("K-1", "jira", labels=("a", "b")),
            Classification("service", None, None),
            KpiResult({"csat.rating": 4.0}),
        )
    )
    document = json.loads(text)
    assert document["item"]["labels"] == ["a", "b"]
    assert document["kpis"] == {"csat.rating": 4.0}
    assert " " not in text.replace("K-1", "")
