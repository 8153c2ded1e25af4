"""How each SLA clock of one item ran: every cycle's start, pauses, stop, the goal chosen, the
breach instant, business and wall time — what ``bridge explain`` shows.

A companion of :mod:`bridge.kpi.sla`, built from its own walk (``_cycles``) and figures
(``_cycle_figures``, :func:`~bridge.kpi.sla.breach_instant`, the native cancel), never from a
second model of the clock: what explain shows cannot disagree with the KPI values (the tests
hold the two against each other on every SLA item of the bundled export). Only explain pays
for it; the KPI path does not build a trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.kpi.calendar import UTC_24X7, Calendar
from bridge.kpi.result import Missing
from bridge.kpi.sla import (
    _NEVER_STARTED,
    _OPEN_STATES,
    Clock,
    Cycle,
    Snapshot,
    _crossing,
    _cycle_figures,
    _cycles,
    breach_instant,
    cancelled_by_rules,
    find_native,
    native_outcome,
    native_state,
    rule_cancels,
    timeline,
)
from bridge.model import NativeSla, WorkItem
from bridge.rules.ast import AllOf, AnyOf, Cond, Leaf, SlaDef, leaves

if TYPE_CHECKING:
    from bridge.kpi.compute import KpiEngine

__all__ = ["CycleTrace", "GoalChoice", "SlaTrace", "condition_text", "trace_sla", "trace_slas"]


@dataclass(frozen=True, slots=True)
class GoalChoice:
    """The goal a cycle is held against: the first of the SLA's goals whose condition holds on
    the item as it was at the cycle's end, or the system's own goal for a native SLA."""

    chosen_by: str  # "rule" (a goal of the rule set), "system" (native), "none" (no goal matched)
    target_seconds: float | None
    index: int | None = None  # position in the SLA's goals
    condition: str | None = None  # None: the goal without a condition (matches anything)
    where: str | None = None
    seen: tuple[tuple[str, Any], ...] = ()  # the fields the condition reads, as they were


@dataclass(frozen=True, slots=True)
class CycleTrace:
    """One run of the clock. Figures are those of the KPIs (``sla.<name>.*``) for the last
    cycle; ``breach_time`` follows the KPI's definition (only for a clock still running),
    ``goal_reached_at`` says when a late cycle crossed its goal whatever its state."""

    start: datetime | None
    stop: datetime | None  # None: still running at now
    ended_by: str | None  # "stop", "cancel", "system" (native), None while running
    pauses: tuple[tuple[datetime, datetime | None], ...] | None  # None: the system does not say
    goal: GoalChoice
    elapsed_seconds: float | None
    elapsed_wall_seconds: float | None
    remaining_seconds: float | None
    state: str
    breached: bool | None
    breach_time: datetime | None
    goal_reached_at: datetime | None
    status_at_end: str | None
    # Native cycles: the state the system gave, and whether the rule set's cancel overrode it.
    system_state: str | None = None
    cancelled_by_rules: bool = False


@dataclass(frozen=True, slots=True)
class SlaTrace:
    """One SLA of one item: where its figures come from, and why; its cycles, oldest first."""

    name: str
    calendar: str
    timezone: str
    source: str  # "computed", "native", or "missing" (no figures; see ``missing``)
    why: str
    cycles: tuple[CycleTrace, ...]
    missing: str | None = None
    native_name: str | None = None
    native_field: str | None = None
    # The rule set's conditions, as text (start None: the clock starts on creation).
    start: str | None = None
    pause: str | None = None
    stop: str | None = None
    cancel: str | None = None


def condition_text(cond: Cond | None) -> str | None:
    """A condition in one line, as an admin wrote it (``priority in ["High", "2 - High"]``)."""
    if cond is None:
        return None
    if isinstance(cond, Leaf):
        value = json.dumps(cond.value, ensure_ascii=False, default=str)
        return f"{cond.field.name} {cond.op.name} {value}" + (
            " (ignoring case)" if cond.ignore_case else ""
        )
    if isinstance(cond, AllOf | AnyOf):
        kind = "all of" if isinstance(cond, AllOf) else "any of"
        return f"{kind} ({'; '.join(str(condition_text(c)) for c in cond.children)})"
    return f"not ({condition_text(cond.child)})"


def _seen(cond: Cond | None, state: WorkItem) -> tuple[tuple[str, Any], ...]:
    names: dict[str, Any] = {}
    for leaf in leaves(cond):
        names.setdefault(leaf.field.name, leaf.field.get(state))
    return tuple(names.items())


def _goal(clock: Clock, state: WorkItem, end: datetime) -> GoalChoice:
    """Which goal the clock chose, by the same generated function the figures use."""
    if clock.goal is None:
        return GoalChoice("none", None)
    index = clock.goal(state, end)
    if index < 0:
        return GoalChoice("none", None)
    when, target = clock.sla.goals[index]
    return GoalChoice(
        "rule",
        target,
        index,
        condition_text(when),
        None if when is None else when.where,
        _seen(when, state),
    )


def _source_note(sla: SlaDef, item: WorkItem, native: NativeSla | None) -> str:
    system = {"jira": "Jira Service Management", "servicenow": "ServiceNow task_sla"}.get(
        item.system, item.system
    )
    if native is not None:
        found = f"{system} SLA {native.name!r}" + (f" ({native.field})" if native.field else "")
        if sla.source == "native":
            return f"the SLA says source: native, so the system's own figures are used: {found}"
        return (
            "the SLA says source: auto, which prefers the system's own SLA where the item "
            f"carries one: {found}; the rule set's start, pause, stop and goals are not used "
            "(its cancel is)"
        )
    wanted = [v for k, v in sla.native.items() if k in ("jira_field", "servicenow_sla")]
    if sla.source == "auto":
        named = ", ".join(repr(v) for v in wanted) or repr(sla.name.replace("-", " "))
        return (
            "computed from the item's history: source: auto prefers the system's own SLA, but "
            f"this item carries none named {named}"
        )
    if sla.source == "native":
        return "source: native, but this item carries no SLA data of the system"
    return "computed from the item's history (the SLA's source is computed)"


def _history_note(item: WorkItem) -> str:
    if item.history or item.history_complete:
        return ""
    return (
        "; the record carries no status history, so its states are taken from its dates "
        "(created, then resolved or closed, else the last update)"
    )


def _computed_cycles(
    clock: Clock, snapshots: list[Snapshot], calendar: Calendar, now: datetime
) -> tuple[CycleTrace, ...]:
    traced = []
    for cycle in _cycles(clock, snapshots, now):
        traced.append(_computed_cycle(clock, cycle, calendar, now))
    return tuple(traced)


def _computed_cycle(clock: Clock, cycle: Cycle, calendar: Calendar, now: datetime) -> CycleTrace:
    start, stop, cancelled, pauses, paused_since, last = cycle
    goal, elapsed, wall, state, remaining, _ = _cycle_figures(clock, cycle, calendar, now)
    end = now if stop is None else stop
    breached = breach_time = reached = None
    if goal is not None and remaining is not None:
        breached = remaining < 0
        if state in _OPEN_STATES:
            breach_time = breach_instant(calendar, cycle, now, goal, remaining)
        if breached:
            reached = _crossing(calendar, cycle, end, goal)
    spans: list[tuple[datetime, datetime | None]] = list(pauses)
    if paused_since is not None:
        spans.append((paused_since, None))
    return CycleTrace(
        start=start,
        stop=stop,
        ended_by=None if stop is None else "cancel" if cancelled else "stop",
        pauses=tuple(spans),
        goal=_goal(clock, last, end),
        elapsed_seconds=elapsed,
        elapsed_wall_seconds=wall,
        remaining_seconds=remaining,
        state=state,
        breached=breached,
        breach_time=breach_time,
        goal_reached_at=reached,
        status_at_end=last.status,
    )


def _native_cycles(
    clock: Clock,
    native: NativeSla,
    snapshots: list[Snapshot] | Missing,
    item: WorkItem,
    now: datetime,
) -> tuple[CycleTrace, ...]:
    cancels = (
        rule_cancels(clock, native, snapshots, item, now)
        if clock.sla.cancel is not None
        else (False,) * len(native.cycles)
    )
    applied = cancelled_by_rules(native, cancels)
    outcome = native_outcome(applied, clock.at_risk)
    traced = []
    for index, (given, cycle) in enumerate(zip(native.cycles, applied.cycles, strict=True)):
        last = index == len(native.cycles) - 1
        risky = outcome.at_risk if last and not isinstance(outcome, Missing) else False
        state = native_state(cycle, risky)
        traced.append(
            CycleTrace(
                start=cycle.start,
                stop=cycle.stop,
                ended_by=None if cycle.stop is None else "system",
                pauses=None,
                goal=GoalChoice("system", cycle.goal_seconds),
                elapsed_seconds=cycle.elapsed_seconds,
                elapsed_wall_seconds=cycle.elapsed_wall_seconds,
                remaining_seconds=cycle.remaining_seconds,
                state=state,
                breached=cycle.breached,
                breach_time=cycle.breach_time if state in _OPEN_STATES else None,
                goal_reached_at=cycle.breach_time if cycle.breached else None,
                status_at_end=None,
                system_state=native_state(given, risky),
                cancelled_by_rules=cycle.cancelled and not given.cancelled,
            )
        )
    return tuple(traced)


def trace_sla(
    sla_or_clock: SlaDef | Clock,
    item: WorkItem,
    snapshots: list[Snapshot] | Missing,
    calendar: Calendar,
    now: datetime,
) -> SlaTrace:
    """The clock's cycles as :func:`~bridge.kpi.sla.sla_kpis` computes them, step by step."""
    clock = Clock.of(sla_or_clock)
    sla = clock.sla
    native = (
        find_native(item, sla) if item.native_slas and sla.source in ("native", "auto") else None
    )
    why = _source_note(sla, item, native)
    common: dict[str, Any] = {
        "name": sla.name,
        "calendar": calendar.name or sla.calendar or "24x7",
        "timezone": calendar.timezone,
        "why": why,
        "start": None if sla.start_on_created else condition_text(sla.start),
        "pause": condition_text(sla.pause),
        "stop": condition_text(sla.stop),
        "cancel": condition_text(sla.cancel),
    }
    if native is not None:
        cycles = _native_cycles(clock, native, snapshots, item, now)
        missing = None if cycles else f"the system's SLA {native.name!r} has no cycles yet"
        return SlaTrace(
            source="native" if cycles else "missing",
            cycles=cycles,
            missing=missing,
            native_name=native.name,
            native_field=native.field,
            **common,
        )
    if sla.source == "native":
        return SlaTrace(
            source="missing",
            cycles=(),
            missing="no native SLA data on this item (source: native)",
            **common,
        )
    if isinstance(snapshots, Missing):
        return SlaTrace(source="missing", cycles=(), missing=snapshots.reason, **common)
    common["why"] = why + _history_note(item)
    cycles = _computed_cycles(clock, snapshots, calendar, now)
    if not cycles:
        return SlaTrace(source="missing", cycles=(), missing=_NEVER_STARTED.reason, **common)
    return SlaTrace(source="computed", cycles=cycles, **common)


def trace_slas(
    engine: KpiEngine, item: WorkItem, groups: Iterable[str], now: datetime
) -> list[SlaTrace]:
    """A trace of every SLA among ``groups`` (a rule's ``then.kpis``), with the clocks,
    calendars and status categories the engine computes the KPIs with."""
    snapshots: list[Snapshot] | Missing | None = None
    traces = []
    for group in groups:
        if not group.startswith("sla."):
            continue
        clock = engine.clocks[group[4:]]
        name = clock.sla.calendar
        calendar = engine.calendars[name] if name else UTC_24X7
        if snapshots is None:
            snapshots = timeline(item, engine.categories)
        traces.append(trace_sla(clock, item, snapshots, calendar, now))
    return traces
