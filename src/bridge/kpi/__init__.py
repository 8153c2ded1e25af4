"""KPI calculations: pure functions of work items, their history, the rule set and ``now``."""

from __future__ import annotations

from bridge.kpi.next_change import MOVING_KPIS, moving, next_change

__all__ = ["MOVING_KPIS", "moving", "next_change"]
