"""Which KPIs an item gets, and computing them: the one entry point the rest of bridge uses.

The rule that classified an item lists its KPI groups (``then.kpis``); :class:`KpiEngine`
computes exactly those, with the rule set's ``kpi:`` settings, calendars and SLAs. Building
the engine does the per-rule-set work once (calendars, input fields); ``compute`` is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from operator import attrgetter
from typing import Any, cast

from bridge.kpi.calendar import UTC_24X7, Calendar
from bridge.kpi.calendar_spec import calendar_from_spec
from bridge.kpi.inputs import Inputs, number
from bridge.kpi.project import (
    ProjectInputs,
    as_instant_on,
    cost_kpis,
    effort_kpis,
    evm_kpis,
    schedule_kpis,
)
from bridge.kpi.result import KpiResult, Missing, new_tuple
from bridge.kpi.service import csat_kpis, tco_kpis
from bridge.kpi.sla import Clock, Snapshot, StatusCategories, sla_kpis, timeline
from bridge.model import Classification, WorkItem
from bridge.rules.ast import RuleSet
from bridge.rules.engine import evaluate_condition

__all__ = ["DEFAULT_KPI_CALENDAR", "KpiEngine"]

# Business days default to Monday–Friday in UTC, with no holidays, when ``kpi.calendar``
# names none; SLAs without a calendar run round the clock (UTC_24X7).
DEFAULT_KPI_CALENDAR = Calendar(
    timezone="UTC", week=(((0, 86400),),) * 5 + ((), ()), name="weekdays"
)
_PROJECT_GROUPS = frozenset(("evm", "effort", "schedule", "cost"))
# ProjectInputs' numeric fields, in its order (``percent_field`` reads ``percent_complete``).
_PROJECT_NUMBERS = (
    "estimate_hours",
    "spent_hours",
    "remaining_hours",
    "budget",
    "actual_cost",
    "percent_complete",
)

# A KPI group, with its clock and calendar for ``sla.<name>``; and whether a list of groups
# needs the project inputs.
_Step = tuple[str, Clock | None, Calendar | None]
_Plan = tuple[bool, tuple[_Step, ...]]


class KpiEngine:
    """Computes the KPIs a classification asks for, for one rule set."""

    def __init__(self, rule_set: RuleSet, categories: StatusCategories | None = None) -> None:
        self.rule_set = rule_set
        self.config = rule_set.kpi
        self.calendars: dict[str, Calendar] = {
            name: calendar_from_spec(name, spec) for name, spec in rule_set.calendars.items()
        }
        self.calendar = (
            self.calendars[self.config.calendar] if self.config.calendar else DEFAULT_KPI_CALENDAR
        )
        self.inputs = Inputs(self.config)
        # With the default inputs (normalized fields), the numbers are read in one step.
        plain = [self.inputs.plain.get(name) for name in _PROJECT_NUMBERS]
        self._read_numbers: Callable[[WorkItem], tuple[Any, ...]] | None = (
            None if None in plain else attrgetter(*cast(list[str], plain))
        )
        self.clocks = {name: Clock.of(sla) for name, sla in rule_set.slas.items()}
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self.categories = categories or StatusCategories(self.config.status_categories)

    @classmethod
    def for_items(cls, rule_set: RuleSet, items: Iterable[WorkItem]) -> KpiEngine:
        """An engine that learns status categories from the items it will see."""
        return cls(rule_set, StatusCategories.learn(items, rule_set.kpi.status_categories))

    def rate(self, item: WorkItem, now: datetime) -> float | None:
        for when, rate in self.config.rates:
            if when is None or evaluate_condition(when, item, now):
                return rate
        return self.config.hourly_rate

    def project_inputs(self, item: WorkItem, now: datetime) -> ProjectInputs:
        moment = self.inputs.moment
        read = self._read_numbers
        numbers = (
            [self.inputs.number(item, name) for name in _PROJECT_NUMBERS]
            if read is None
            else [v if v is None or type(v) is float else number(v) for v in read(item)]
        )
        return new_tuple(  # type: ignore[no-any-return]
            ProjectInputs,
            (
                item.status_category == "done",
                moment(item, "planned_start"),
                moment(item, "planned_end"),
                as_instant_on(moment(item, "resolved"), self.calendar),
                *numbers,
                self.rate(item, now),
            ),
        )

    def _plan(self, groups: tuple[str, ...]) -> _Plan:
        """What a KPI list asks for, resolved once per distinct list (rules share a few)."""
        plan = self._plans.get(groups)
        if plan is None:
            steps: list[_Step] = []
            for group in groups:
                if group.startswith("sla."):
                    clock = self.clocks[group[4:]]
                    name = clock.sla.calendar
                    steps.append((group, clock, self.calendars[name] if name else UTC_24X7))
                else:
                    steps.append((group, None, None))
            plan = self._plans[groups] = (bool(_PROJECT_GROUPS & set(groups)), tuple(steps))
        return plan

    def compute(self, item: WorkItem, decision: Classification, now: datetime) -> KpiResult:
        """The KPIs ``decision.kpis`` names, for one item at ``now``."""
        out = KpiResult()
        groups = decision.kpis
        if not groups:
            return out
        needs_project, steps = self._plans.get(groups) or self._plan(groups)
        project = self.project_inputs(item, now) if needs_project else None
        snapshots: list[Snapshot] | Missing | None = None
        for group, clock, calendar in steps:
            if clock is not None and calendar is not None:
                if snapshots is None:
                    snapshots = timeline(item, self.categories)
                outcome = sla_kpis(clock, item, snapshots, calendar, now, out)
                if outcome is not None and outcome.completed:
                    out.facts.setdefault("sla_completed", []).extend(outcome.completed)
            elif project is not None and group == "evm":
                evm_kpis(project, self.calendar, now, out)
            elif project is not None and group == "effort":
                effort_kpis(project, out)
            elif project is not None and group == "schedule":
                schedule_kpis(project, self.calendar, now, out)
            elif project is not None and group == "cost":
                evm = None
                if "evm.ev" not in out.values:
                    scratch = KpiResult()
                    evm_kpis(project, self.calendar, now, scratch)
                    evm = scratch.values
                cost_kpis(out, evm)
            elif group == "csat":
                csat_kpis(self.inputs.number(item, "satisfaction"), out)
            elif group == "tco":
                others = [
                    value
                    for ref in self.config.cost_fields
                    if (value := number(ref.get(item))) is not None
                ]
                tco_kpis(self.inputs.number(item, "spent_hours"), self.rate(item, now), others, out)
        return out
