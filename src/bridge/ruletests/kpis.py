"""KPI expectations in rule tests: ``expect: {kpis: {evm.spi: 0.8}}``.

A number matches within a tolerance (default 1e-6, or ``{value: x, tolerance: t}``);
``null`` expects the KPI to be missing; anything else must be equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bridge.kpi.compute import KpiEngine
from bridge.model import Classification, WorkItem
from bridge.rules.ast import RuleSet

__all__ = ["check_kpis"]

DEFAULT_TOLERANCE = 1e-6

_ENGINES: dict[str, KpiEngine] = {}


def _engine(rule_set: RuleSet) -> KpiEngine:
    engine = _ENGINES.get(rule_set.digest)
    if engine is None or engine.rule_set is not rule_set:
        engine = _ENGINES[rule_set.digest] = KpiEngine(rule_set)
    return engine


def check_kpis(
    item: WorkItem,
    rule_set: RuleSet,
    decision: Classification,
    now: datetime,
    expected: Mapping[str, Any],
) -> list[str]:
    """Differences between the KPIs computed for ``item`` and ``expected``."""
    result = _engine(rule_set).compute(item, decision, now)
    reasons = {m["kpi"]: m["reason"] for m in result.missing}
    failures: list[str] = []
    for name, spec in expected.items():
        if name not in result.values:
            groups = ", ".join(decision.kpis) or "none"
            failures.append(f"kpis.{name}: not computed for this item (its KPIs: {groups})")
            continue
        got = result.values[name]
        tolerance = DEFAULT_TOLERANCE
        want = spec
        if isinstance(spec, Mapping):
            tolerance = float(spec.get("tolerance", DEFAULT_TOLERANCE))
            want = spec.get("value")
        if want is None:
            if got is not None:
                failures.append(f"kpis.{name}: expected missing, got {got!r}")
            continue
        if got is None:
            why = reasons.get(name, "null")
            failures.append(f"kpis.{name}: expected {want!r}, got nothing ({why})")
        elif (
            isinstance(want, int | float)
            and not isinstance(want, bool)
            and isinstance(got, int | float)
            and not isinstance(got, bool)
        ):
            if abs(got - want) > tolerance:
                failures.append(f"kpis.{name}: expected {want!r} ± {tolerance:g}, got {got!r}")
        elif got != want:
            failures.append(f"kpis.{name}: expected {want!r}, got {got!r}")
    return failures
