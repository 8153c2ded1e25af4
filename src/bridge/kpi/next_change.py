"""When the values bridge writes onto an item next change by the clock alone.

Written values are a pure function of (item, decision, rule set, ``now``), so between two
changes of the item they still move: an SLA clock crosses its goal, a due date passes, a
working day adds to the slip, a time-relative condition (``older_than``) flips. A worker that
re-evaluates an item only when it changes would leave those values stale; one that re-evaluates
every item on a short cadence wastes its API budget. :func:`next_change` says when to come back.

Two kinds of KPI are kept apart. Step values (states, flags, whole days, instants, goals,
anything derived from the item's own fields) hold still and then jump: they have a *next
change*. Moving figures (elapsed and remaining seconds, planned value and what divides by
it, actual time) change with every microsecond: :func:`moving` names them; a caller refreshes
them on a cadence of its choosing, and :func:`next_change` ignores them.

How the instant is found, cheaply and exactly (no search over time):

- **Derived instants** follow from the figures at the current instant and the calendar, and
  are certain to change the values they name: a running SLA clock breaches when its elapsed
  business time first exceeds the goal — ``calendar.add(now, remaining + 1 µs)``, as equal
  is met, through closed hours, holidays and DST — and is at risk, likewise, when it first
  exceeds its at-risk threshold; an open item's slip grows at the local
  midnight starting the next day past the due date, its business slip at the next working
  day's. Taken as they are, without re-evaluating.
- **Structural instants** are where the inputs of those derivations may change: a history
  entry stamped after ``now`` coming into effect, and every ``older_than`` / ``newer_than``
  condition flipping — in SLA goals, in ``kpi.rates`` and in the rules themselves (a rule
  that matches stale items changes the item's class, and with it its KPIs). Whether one
  changes a written value is not derivable in general, so each is verified by evaluating the
  KPIs there, earliest first; past one that changes nothing, the derived instants are worked
  out again from the figures at that instant.

Values are piecewise constant between these instants, so the first instant at which the
values differ from those at ``now`` is the exact answer: the values hold on ``[now, t)`` and
differ at ``t``. A worker whose tick runs at or after ``t`` sees the new value.

Why derive rather than re-evaluate at every candidate: the derivations use the same
calendar arithmetic (integer microseconds) the clocks are computed with, so they are exact,
and the usual call — no time-relative condition, no history ahead of ``now`` — costs one
evaluation of just the groups that step by themselves (SLA clocks, the schedule) instead of
two of everything. Verification is kept where derivation would need a second model of the
rules: a structural instant costs one evaluation, and there are none in the usual case.

Limits: an operator added by a plugin may read ``now`` in ways this module cannot see, and is
treated as time-independent. A native SLA (JSM, ServiceNow ``task_sla``) is the system's
snapshot and does not move with bridge's ``now``; the system's own next update is a change of
the item.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from weakref import WeakKeyDictionary

from bridge.kpi.calendar import UTC_24X7, Calendar
from bridge.kpi.compute import KpiEngine
from bridge.kpi.sla import risk_threshold_us, timeline
from bridge.model import Classification, WorkItem
from bridge.rules.ast import Cond, Leaf, leaves
from bridge.rules.engine import Engine
from bridge.rules.operators import as_instant, fold

__all__ = ["MOVING_KPIS", "moving", "next_change"]

_MOVING_PROJECT: Final = frozenset(
    ("evm.planned_pct", "evm.pv", "evm.sv", "evm.spi", "evm.at_days", "evm.sv_days")
)
_MOVING_SLA_FIELDS: Final = frozenset(
    ("elapsed_seconds", "elapsed_wall_seconds", "remaining_seconds")
)

MOVING_KPIS: Final = _MOVING_PROJECT | {f"sla.*.{name}" for name in _MOVING_SLA_FIELDS}
"""KPI keys (``*``: any SLA name) whose values change continuously with ``now``. Everything
else a rule set computes is a step value; :func:`next_change` answers for those."""

_FACTS: Final = ("work_type", "phase", "rule")  # decision facts the write-back maps like KPIs
_US: Final = timedelta(microseconds=1)
# The instant a time leaf flips, after (field instant + duration): ``older_than`` holds once
# the instant is *more* than the duration ago (strictly: one µs later); ``newer_than`` stops
# holding as soon as it is the duration ago.
_FLIP_OFFSET: Final = {"older_than": _US, "newer_than": timedelta(0)}
# KPI groups whose figures read ``kpi.rates`` (the rate is chosen by condition at ``now``).
_PRICED: Final = frozenset(("evm", "cost", "tco"))
_SCHEDULE_KEYS: Final = ("schedule.slip_days", "schedule.slip_business_days")
_MAX_IDLE_DAYS: Final = 3660  # Calendar itself gives up after ~10 years without working time


def moving(key: str) -> bool:
    """Whether a KPI key's value changes continuously with ``now`` (refresh on a cadence)."""
    if key in _MOVING_PROJECT:
        return True
    return key.startswith("sla.") and key.rsplit(".", 1)[-1] in _MOVING_SLA_FIELDS


# -- what in a rule set reads `now` (found once per engine) ---------------------------------------


@dataclass(frozen=True, slots=True)
class _TimeLeaves:
    """The ``older_than`` / ``newer_than`` leaves that make values depend on ``now``."""

    rules: tuple[Leaf, ...]  # in the rules' conditions: the decision itself can change
    rates: tuple[Leaf, ...]  # in kpi.rates: the hourly rate of priced groups can change
    goals: Mapping[str, tuple[Leaf, ...]]  # SLA name → in its goals: the goal can change


def _time_leaves(conds: Iterable[Cond | None]) -> tuple[Leaf, ...]:
    return tuple(
        leaf
        for cond in conds
        for leaf in leaves(cond)
        if leaf.op.name in _FLIP_OFFSET and isinstance(leaf.prepared, timedelta)
    )


_SHAPES: WeakKeyDictionary[KpiEngine, _TimeLeaves] = WeakKeyDictionary()
_CLASSIFIERS: WeakKeyDictionary[KpiEngine, Engine] = WeakKeyDictionary()
_LOCK = threading.Lock()


def _shape(kpis: KpiEngine) -> _TimeLeaves:
    shape = _SHAPES.get(kpis)
    if shape is None:
        rule_set = kpis.rule_set
        shape = _TimeLeaves(
            _time_leaves(rule.when for rule in rule_set.rules),
            _time_leaves(when for when, _ in rule_set.kpi.rates),
            {
                name: found
                for name, sla in rule_set.slas.items()
                if (found := _time_leaves(when for when, _ in sla.goals))
            },
        )
        with _LOCK:
            _SHAPES[kpis] = shape
    return shape


def _classifier(kpis: KpiEngine) -> Engine:
    """The rule set's engine, built on first need: only rule sets with time-relative rules
    ever re-classify here."""
    engine = _CLASSIFIERS.get(kpis)
    if engine is None:
        engine = Engine(kpis.rule_set)
        with _LOCK:
            _CLASSIFIERS[kpis] = engine
    return engine


def _flips(found: tuple[Leaf, ...], states: Iterable[Any], now: datetime) -> Iterator[datetime]:
    """The instants after ``now`` at which these leaves flip, read on each state."""
    for leaf in found:
        offset = _FLIP_OFFSET[leaf.op.name] + leaf.prepared
        for state in states:
            actual = leaf.field.get(state)
            if leaf.ignore_case:  # as the engine reads it
                actual = fold(actual)
            instant = as_instant(actual)
            if instant is None:
                continue
            try:
                flip = instant + offset
            except OverflowError:
                continue
            if flip > now:
                yield flip


# -- evaluating ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Point:
    """The item evaluated at one instant: its decision then and every KPI value."""

    at: datetime
    decision: Classification
    values: Mapping[str, Any]

    def written(self, keys: tuple[str, ...]) -> tuple[Any, ...]:
        """The values the write-back would take for ``keys`` (absent: cleared, None)."""
        decision, values = self.decision, self.values
        facts = {"work_type": decision.work_type, "phase": decision.phase, "rule": decision.rule}
        return tuple(facts[k] if k in _FACTS else values.get(k) for k in keys)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal, with a NaN equal to itself (a float is recomputed bit for bit, NaN included)."""
    return a == b or all(
        x == y or (type(x) is float and type(y) is float and math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b, strict=True)
    )


def _evaluate(kpis: KpiEngine, item: WorkItem, decision: Classification, at: datetime) -> _Point:
    return _Point(at, decision, kpis.compute(item, decision, at).values)


def _sla_calendar(kpis: KpiEngine, name: str) -> Calendar:
    calendar = kpis.clocks[name].sla.calendar
    return kpis.calendars[calendar] if calendar else UTC_24X7


# -- derived instants: certain, from the figures at one instant ---------------------------------


def _derived(
    kpis: KpiEngine, item: WorkItem, point: _Point, keys: frozenset[str]
) -> datetime | None:
    """The earliest instant after ``point`` at which a written value certainly changes, if
    nothing structural happens first; None when none does."""
    best: datetime | None = None
    for group in point.decision.kpis:
        if group.startswith("sla."):
            found = _sla_change(kpis, group[4:], point, keys)
        elif group == "schedule":
            found = _slip_change(kpis, item, point, keys)
        else:
            continue
        if found is not None and (best is None or found < best):
            best = found
    return best


def _sla_change(kpis: KpiEngine, name: str, point: _Point, keys: frozenset[str]) -> datetime | None:
    """A running clock's next step: its at-risk threshold or its goal crossed.

    A running clock's elapsed business time grows by exactly the calendar's working time, so
    the instant elapsed time first exceeds a threshold ``before_goal`` µs short of the goal is
    ``calendar.add(now, remaining - before_goal + 1 µs)`` (equal is not past). At the goal
    ``breach_time`` does not move (it names the goal instant both before and after), so only
    the state and the flags are written anew; at the at-risk threshold, the state and the
    at-risk flag.
    """
    clock = kpis.clocks[name]
    k_state, k_goal, _, _, k_remaining, _, k_breached, k_ever, k_source, k_at_risk = clock.keys
    values = point.values
    state = values.get(k_state)
    if state not in ("running", "at_risk") or values.get(k_source) != "computed":
        return None  # paused, breaching, completed, cancelled, never started, or native
    remaining = values.get(k_remaining)
    if remaining is None:  # no goal matches: nothing to cross
        return None
    calendar = _sla_calendar(kpis, name)
    remaining_us = round(remaining * 1_000_000)
    best: datetime | None = None
    # Thresholds: (working µs before the goal at which the values step, the keys that step).
    at_goal = {k_state, k_breached}
    if not values.get(k_ever):
        at_goal.add(k_ever)
    if not values.get(k_at_risk):  # a clock whose threshold never came first
        at_goal.add(k_at_risk)
    thresholds: list[tuple[int, set[str]]] = [(0, at_goal)]
    if state == "running" and clock.at_risk is not None:
        goal_us = round(values[k_goal] * 1_000_000)  # as the clock computed it
        before_goal = goal_us - risk_threshold_us(clock.at_risk, goal_us)
        if before_goal > 0:  # 0: the threshold leaves no time before this goal
            thresholds.append((before_goal, {k_state, k_at_risk}))
    for before_goal, stepping in thresholds:
        left = remaining_us - before_goal
        if left < 0 or not stepping & keys:
            continue
        found = calendar.add(point.at, (left + 1) / 1_000_000)
        if best is None or found < best:
            best = found
    return best


def _slip_change(
    kpis: KpiEngine, item: WorkItem, point: _Point, keys: frozenset[str]
) -> datetime | None:
    """An open item's slip: whole local days past the due date, and working days among them.

    ``slip_days`` = max(0, today − due) grows at every local midnight from the day after the
    due date on; ``slip_business_days`` at the midnight that starts the next working day.
    """
    wants_days, wants_working = (key in keys for key in _SCHEDULE_KEYS)
    if not (wants_days or wants_working):
        return None
    due = kpis.inputs.moment(item, "planned_end")  # as KpiEngine.project_inputs reads them
    if item.status_category == "done" or due is None:
        return None  # a done item's slip is fixed by its resolution; no due date, none at all
    calendar = kpis.calendar
    due_date = calendar.local_date(due) if isinstance(due, datetime) else due
    today = calendar.local_date(point.at)
    counted = max(today, due_date)  # the last day already counted (or not yet late)
    try:
        day = counted + timedelta(days=1)
        best = calendar.local_midnight(day) if wants_days else None
        if wants_working:
            for _ in range(_MAX_IDLE_DAYS):
                if calendar.is_working_day(day):
                    working = calendar.local_midnight(day)
                    return working if best is None or working < best else best
                day += timedelta(days=1)
    except OverflowError:  # the end of the calendar: nothing after it
        return None
    return best


# -- which keys, which groups ---------------------------------------------------------------------


def _group(key: str) -> str:
    """The KPI group that computes a key (``sla.<name>`` for SLA keys)."""
    return key.rsplit(".", 1)[0] if key.startswith("sla.") else key.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class _Wanted:
    """The written step keys, and the KPI groups that compute them."""

    keys: tuple[str, ...]
    groups: frozenset[str]


_WANTED: dict[frozenset[str], _Wanted] = {}


def _wanted(written: Collection[str]) -> _Wanted:
    """Resolved once per distinct write-back (a source writes the same keys item after item)."""
    names = written if isinstance(written, frozenset) else frozenset(written)
    found = _WANTED.get(names)
    if found is None:
        keys = tuple(sorted(key for key in names if not moving(key)))
        found = _Wanted(keys, frozenset(_group(key) for key in keys if key not in _FACTS))
        if len(_WANTED) >= 256:  # write-backs are few; bound the memory anyway
            _WANTED.clear()
        _WANTED[names] = found
    return found


# -- structural instants: verified, earliest first ----------------------------------------------


def _structural(
    kpis: KpiEngine, item: WorkItem, groups: Collection[str], wanted: _Wanted, now: datetime
) -> tuple[list[datetime], bool]:
    """Sorted instants after ``now`` where the derivations' inputs may change, and whether the
    decision itself may change (time-relative rules)."""
    shape = _shape(kpis)
    found: set[datetime] = set(_flips(shape.rules, (item,), now))
    reclassifies = bool(found)
    if reclassifies:  # a decision that may change may bring any group written
        groups = kpis.rule_set.kpi_groups() & wanted.groups
    if shape.rates and not _PRICED.isdisjoint(groups):
        found.update(_flips(shape.rates, (item,), now))
    slas = [group[4:] for group in groups if group.startswith("sla.")]
    if slas:
        snapshots = timeline(item, kpis.categories)
        if isinstance(snapshots, list):
            found.update(at for at, _ in snapshots if at > now)  # history not yet in effect
            states = [item, *(state for _, state in snapshots)]
            for name in slas:
                goal_leaves = shape.goals.get(name)
                if goal_leaves:  # the goal is chosen on the state at `now`: read every state
                    found.update(_flips(goal_leaves, states, now))
    return sorted(found), reclassifies


def _only(decision: Classification, groups: Collection[str]) -> Classification:
    """The decision computing only these of its groups (each group's figures are the same
    whichever others are computed beside it)."""
    kept = tuple(group for group in decision.kpis if group in groups)
    if kept == decision.kpis:
        return decision
    return Classification(decision.work_type, decision.phase, decision.rule, kept)


def _steps_by_themselves(group: str) -> bool:
    """Groups whose figures step with time alone, with no condition flipping: SLA clocks
    (goals crossed) and the schedule (days passing)."""
    return group.startswith("sla.") or group == "schedule"


def next_change(
    item: WorkItem,
    decision: Classification,
    kpis: KpiEngine,
    written: Collection[str],
    now: datetime,
) -> datetime | None:
    """The earliest instant after ``now`` at which a written step value changes, the item
    itself unchanged; None when none ever does by the passage of time alone.

    :param item: the item as it is now.
    :param decision: its classification at ``now``. When a rule reads ``now``
        (``older_than``), the rule set's own decision is taken from the instant it differs
        from the rule set's decision at ``now``.
    :param kpis: the engine that computes its KPIs.
    :param written: the keys the write-back maps (KPI keys and ``work_type``, ``phase``,
        ``rule``); keys for which :func:`moving` is true are ignored.
    :param now: the instant of the evaluation (aware).
    :returns: ``t`` such that every written step value is the same at every instant of
        ``[now, t)`` and at least one differs at ``t``: evaluating at ``t`` writes it.
    """
    wanted = _wanted(written)
    keys = wanted.keys
    if not keys:
        return None
    decision = _only(decision, wanted.groups)  # groups nothing is written of: not computed
    structural, reclassifies = _structural(kpis, item, decision.kpis, wanted, now)
    if not structural:
        # The usual case: nothing can change but what steps by itself; compute only that.
        decision = _only(decision, [g for g in decision.kpis if _steps_by_themselves(g)])
        if not decision.kpis:
            return None
        return _derived(kpis, item, _evaluate(kpis, item, decision, now), frozenset(keys))
    point = _evaluate(kpis, item, decision, now)
    base = point.written(keys)
    reference: Classification | None = None  # the rule set's own decision at `now`
    horizons = iter(structural)
    while True:
        horizon = next(horizons, None)
        certain = _derived(kpis, item, point, frozenset(keys))
        if certain is not None and (horizon is None or certain < horizon):
            return certain
        if horizon is None:
            return None
        then = decision
        if reclassifies:  # a time-relative rule may decide differently by then
            classifier = _classifier(kpis)
            if reference is None:
                reference = classifier.classify(item, now)
            later = classifier.classify(item, horizon)
            if later != reference:
                then = _only(later, wanted.groups)
        point = _evaluate(kpis, item, then, horizon)
        if not _same(point.written(keys), base):
            return horizon
