"""The generated matcher must decide exactly like the reference interpreter."""

from __future__ import annotations

import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.model import WorkItem
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine, compile_first_match, evaluate_condition
from bridge.rules.loader import load_rules

CATALOG = Path(__file__).parent.parent / "data" / "rules" / "engine" / "catalog.yaml"
NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
RULES = load_rules([CATALOG])

texts = st.sampled_from(
    [
        "Incident",
        "incident",
        "Done",
        "done",
        "In Progress",
        "High",
        "Highest",
        "Low",
        "VPN down",
        "Mail server down",
        "vpn DOWN",
        "Epic",
        "Story",
        "Cancelled",
        "",
        "printer",
    ]
)
instants = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2026, 5, 1), timezones=st.just(UTC)
)
numbers = st.one_of(st.none(), st.sampled_from([0.0, 2.5, 3.0, 5.0, 8.0, 8.5, 13.0]))
raw_scalars = st.one_of(
    st.none(),
    st.sampled_from(
        ["1", "3", 1, 3, "true", "false", True, False, "Gold", "x", 20000, "20000", "5000"]
    ),
)
raws = st.fixed_dictionaries(
    {},
    optional={
        "impact": raw_scalars,
        "active": raw_scalars,
        "opened_at": st.sampled_from(["2026-03-01 10:00:00", "2026-03-31 10:00:00", "", "junk"]),
        "short_description": st.sampled_from(["Printer jam", "laptop", ""]),
        "fields": st.fixed_dictionaries(
            {},
            optional={
                "customfield_1": st.one_of(
                    raw_scalars,
                    st.fixed_dictionaries(
                        {"value": st.sampled_from(["Gold", "Bronze"]), "id": st.just("1")}
                    ),
                ),
                "budget": raw_scalars,
                "tags": st.one_of(st.lists(st.sampled_from(["x", "y"]), max_size=2), raw_scalars),
            },
        ),
    },
)

items = st.builds(
    WorkItem,
    key=st.just("T-1"),
    system=st.sampled_from(["jira", "servicenow"]),
    type=st.one_of(st.none(), texts),
    status=st.one_of(st.none(), texts),
    status_category=st.one_of(st.none(), st.sampled_from(["todo", "in_progress", "done"])),
    summary=st.one_of(st.none(), texts),
    priority=st.one_of(st.none(), texts),
    assignee=st.one_of(st.none(), st.sampled_from(["", "Ann"])),
    labels=st.lists(st.sampled_from(["bau", "BAU", "vip", "x"]), max_size=3).map(tuple),
    components=st.lists(st.sampled_from(["network", "db"]), max_size=2).map(tuple),
    story_points=numbers,
    estimate_hours=numbers,
    spent_hours=numbers,
    satisfaction=numbers,
    budget=numbers,
    created=st.one_of(st.none(), instants),
    updated=st.one_of(st.none(), instants),
    resolved=st.one_of(st.none(), instants),
    due=st.one_of(st.none(), st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 8, 1))),
    planned_start=st.one_of(
        st.none(), instants, st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 3, 1))
    ),
    raw=raws,
)


def _single(rule_set: RuleSet, index: int) -> Engine:
    rule = rule_set.rules[index]
    return Engine(RuleSet((rule,), rule_set.default, {}, {}, rule_set.digest, rule_set.files))


SINGLE_ENGINES = [_single(RULES, i) for i in range(len(RULES.rules))]
FULL = Engine(RULES)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(items)
def test_generated_code_agrees_with_the_interpreter_for_every_operator(item: WorkItem) -> None:
    for engine, rule in zip(SINGLE_ENGINES, RULES.rules, strict=True):
        expected = evaluate_condition(rule.when, item, NOW)
        assert (engine.match(item, NOW) == 0) is expected, rule.id


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(items)
def test_first_match_and_explain_agree(item: WorkItem) -> None:
    expected = next(
        (i for i, r in enumerate(RULES.rules) if evaluate_condition(r.when, item, NOW)), -1
    )
    assert FULL.match(item, NOW) == expected
    explanation = FULL.explain(item, NOW)
    assert explanation.winner == (RULES.rules[expected].id if expected >= 0 else None)
    assert FULL.classify(item, NOW) == explanation.classification


# The catalog's conditions in slices, with None (always holds) at the end of some: the
# chooser SLA clocks use for cancel/stop/pause and for goals.
CHOOSERS = [
    (conds, compile_first_match(conds))
    for conds in (
        [r.when for r in RULES.rules[:4]],
        [r.when for r in RULES.rules[4:9]] + [None],
        [r.when for r in RULES.rules[::3]],
        [None, RULES.rules[0].when],
        [],
    )
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(items)
def test_first_match_chooser_agrees_with_the_interpreter(item: WorkItem) -> None:
    for conds, chooser in CHOOSERS:
        expected = next(
            (i for i, c in enumerate(conds) if c is None or evaluate_condition(c, item, NOW)), -1
        )
        assert chooser(item, NOW) == expected


def _engine(tmp_path: Path, text: str) -> Engine:
    path = tmp_path / "r.yaml"
    path.write_text("bridge: 1\n" + text)
    return Engine(load_rules([path]))


def test_dispatch_keeps_file_order_across_buckets(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        """
rules:
  - {id: a, when: {field: type, equals: Bug}, then: {work_type: service}}
  - {id: b, when: {field: labels, contains: bau}, then: {work_type: service}}
  - {id: c, when: {field: type, in: [Bug, Story]}, then: {work_type: project}}
  - {id: d, when: {all: [{field: type, equals: Story}, {field: priority, equals: High}]},
     then: {work_type: project}}
""",
    )
    assert engine.dispatch_fields == ("type",)
    cases = {
        WorkItem("1", "jira", type="Bug"): "a",
        WorkItem("2", "jira", type="Story", labels=("bau",)): "b",
        WorkItem("3", "jira", type="Story"): "c",
        WorkItem("4", "jira", type="Epic", labels=("bau",)): "b",
        WorkItem("5", "jira", type="Epic"): None,
        WorkItem("6", "jira", type=None): None,
    }
    for item, rule_id in cases.items():
        assert engine.classify(item, NOW).rule == rule_id, item.key


def test_priority_orders_rules_before_file_order(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        """
rules:
  - {id: low, when: {field: type, equals: Bug}, then: {work_type: service}}
  - {id: high, priority: 5, when: {field: type, equals: Bug}, then: {work_type: project}}
""",
    )
    assert engine.classify(WorkItem("1", "jira", type="Bug"), NOW).rule == "high"


def test_phase_by_status_then_category_then_default(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        """
rules:
  - id: p
    when: {field: type, equals: Epic}
    then:
      work_type: project
      phase: {by_status: {Review: monitoring}, by_status_category: {done: closing},
              default: initiation}
""",
    )

    def phase(**kw: Any) -> str | None:
        return engine.classify(WorkItem("1", "jira", type="Epic", **kw), NOW).phase

    assert phase(status="Review", status_category="in_progress") == "monitoring"
    assert phase(status="Shipped", status_category="done") == "closing"
    assert phase(status="Backlog", status_category="todo") == "initiation"


def test_generated_source_holds_no_admin_text(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        """
rules:
  - {id: x, when: {field: summary, equals: "'); import os; os.system('echo pwned"},
     then: {work_type: service}}
  - {id: y, when: {field: raw.a, equals: "__import__('os')"}, then: {work_type: service}}
""",
    )
    assert "import" not in engine.source
    assert "pwned" not in engine.source
    item = WorkItem("1", "jira", summary="'); import os; os.system('echo pwned")
    assert engine.classify(item, NOW).rule == "x"


def test_older_than_uses_the_given_now(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        """
rules:
  - {id: stale, when: {field: updated, older_than: 14d}, then: {work_type: service}}
""",
    )
    item = WorkItem("1", "jira", updated=NOW - timedelta(days=15))
    assert engine.classify(item, NOW).rule == "stale"
    assert engine.classify(item, NOW - timedelta(days=2)).rule is None


def test_ignore_case_keeps_regex_escapes(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        r"""
rules:
  - {id: change-number, when: {field: summary, matches: '^(RFC|CHG)\W?\d+\Z', ignore_case: true},
     then: {work_type: service}}
""",
    )
    for summary, rule in (
        ("CHG-47881", "change-number"),
        ("rfc 1234", "change-number"),
        ("chg:12", "change-number"),
        ("chg_12", None),
        ("CHG-12 x", None),
    ):
        assert engine.classify(WorkItem("1", "jira", summary=summary), NOW).rule == rule, summary


def test_threads_generating_matchers_at_once_decide_like_one(tmp_path: Path) -> None:
    """Webhook workers and a scheduled sync share one engine; matchers are generated lazily
    by whichever thread meets a dispatch value first."""
    n = 80
    rules = "\n".join(
        f"  - {{id: r{i}, when: {{all: [{{field: type, equals: T{i}}}, "
        f"{{field: priority, in: [P{i}, Q{i}]}}, {{field: labels, contains: L{i}}}]}}, "
        f"then: {{work_type: service}}}}"
        for i in range(n)
    )
    items = [
        WorkItem(f"K-{i}-{j}", "jira", type=f"T{i}", priority=f"P{(i + j) % n}", labels=(f"L{i}",))
        for i in range(n)
        for j in range(2)
    ]
    expected = {
        item.key: f"r{item.key.split('-')[1]}" if item.key.endswith("-0") else None
        for item in items
    }
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    try:
        _classify_concurrently(tmp_path, rules, items, expected)
    finally:
        sys.setswitchinterval(switch)


def _classify_concurrently(
    tmp_path: Path, rules: str, items: list[WorkItem], expected: dict[str, str | None]
) -> None:
    for attempt in range(5):
        engine = _engine(tmp_path, f"rules:\n{rules}\n")
        barrier = threading.Barrier(8)

        def run(
            seed: int, engine: Engine = engine, barrier: threading.Barrier = barrier
        ) -> dict[str, str | None]:
            order = random.Random(seed).sample(items, len(items))
            barrier.wait()
            return {item.key: engine.classify(item, NOW).rule for item in order}

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(run, range(attempt * 8, attempt * 8 + 8)))
        for result in results:
            assert result == expected
