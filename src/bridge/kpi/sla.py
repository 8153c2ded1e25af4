"""SLA clocks computed from an item's history, or read from the system's own SLA data.

The item's state is replayed through its history (Jira changelog; ServiceNow has none, so a
history is synthesized from the record's dates, see :func:`timeline`). At every change the
SLA's cancel, stop and pause conditions — ordinary rule conditions — are evaluated on the
state of that moment; start conditions open new cycles. Elapsed time is business time in the
SLA's calendar minus business time paused. Everything is a pure function of the item, the
definition, the calendar and ``now``, so any past answer can be recomputed exactly.

Where the rules prefer the system's own SLA (``source: native`` / ``auto``: a JSM SLA field,
ServiceNow ``task_sla``), its figures are used as the system gives them, but the rule set's
cancel condition still applies: a cycle that ended on a cancelled item is cancelled, not met
(:func:`rule_cancels`). :mod:`bridge.kpi.sla_trace` shows every step for ``bridge explain``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, NamedTuple, cast

from bridge.kpi.calendar import Calendar
from bridge.kpi.result import KpiResult, Missing, iso, new_tuple
from bridge.model import NativeSla, NativeSlaCycle, WorkItem
from bridge.rules.ast import AtRisk, Cond, SlaDef
from bridge.rules.engine import Predicate, compile_condition, compile_first_match
from bridge.timefmt import parse_date_or_instant

__all__ = [
    "DEFAULT_STATUS_CATEGORIES",
    "SLA_FIGURES",
    "Clock",
    "Cycle",
    "SlaOutcome",
    "StatusCategories",
    "breach_instant",
    "cancelled_by_rules",
    "compute_sla",
    "find_native",
    "native_outcome",
    "native_state",
    "risk_threshold_us",
    "rule_cancels",
    "sla_kpis",
    "timeline",
]

# Common status names and their category, for statuses seen only in history. An export's
# own items and ``kpi.status_categories`` override these.
DEFAULT_STATUS_CATEGORIES: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "open",
            "new",
            "to do",
            "todo",
            "backlog",
            "selected for development",
            "pending",
            "reopened",
            "waiting for support",
            "draft",
        ),
        "todo",
    ),
    **dict.fromkeys(
        (
            "in progress",
            "work in progress",
            "waiting for customer",
            "on hold",
            "in review",
            "review",
            "planning",
            "escalated",
            "assess",
            "authorize",
            "scheduled",
            "implement",
            "root cause analysis",
            "fix in progress",
            "awaiting caller",
            "blocked",
        ),
        "in_progress",
    ),
    **dict.fromkeys(
        (
            "done",
            "closed",
            "resolved",
            "cancelled",
            "canceled",
            "declined",
            "closed complete",
            "closed incomplete",
            "closed skipped",
            "won't do",
            "completed",
        ),
        "done",
    ),
}


_MAX_REMEMBERED = 4096


class StatusCategories:
    """Status name → category, for replaying history (changelogs name statuses, not their
    categories). Known from: configuration, then the items of the same export, then common
    names."""

    def __init__(self, known: Mapping[str, str] | None = None) -> None:
        self._known = {k.casefold(): v for k, v in DEFAULT_STATUS_CATEGORIES.items()}
        for name, category in (known or {}).items():
            self._known[name.casefold()] = category
        # The same few status names recur in every history: remember each as written.
        self._exact: dict[str, str | None] = {}

    @classmethod
    def learn(
        cls, items: Iterable[WorkItem], configured: Mapping[str, str] | None = None
    ) -> StatusCategories:
        learned: dict[str, str] = {}
        for item in items:
            if item.status is not None and item.status_category is not None:
                learned.setdefault(item.status, item.status_category)
        learned.update(configured or {})
        return cls(learned)

    def category(self, status: str | None) -> str | None:
        if status is None:
            return None
        try:
            return self._exact[status]
        except KeyError:
            found = self._known.get(status.casefold())
            if len(self._exact) < _MAX_REMEMBERED:  # status names are few; bound them anyway
                self._exact[status] = found
            return found


_STATE_FIELDS = (
    "status",
    "status_category",
    "priority",
    "assignee",
    "labels",
    "type",
    "components",
    "due",
)


class _State(NamedTuple):
    """An item as it was at one moment: the replayed fields as they were then, anything else
    from the item itself. A tuple: built in one step per history entry (far cheaper than
    copying a 30-field dataclass); conditions read it exactly like a WorkItem."""

    base: WorkItem
    status: str | None
    status_category: str | None
    priority: str | None
    assignee: str | None
    labels: tuple[str, ...]
    type: str | None
    components: tuple[str, ...]
    due: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


# A state's position of each replayed field (position 0 holds the item itself).
_SLOT = {name: index for index, name in enumerate(_STATE_FIELDS, start=1)}


_AT = attrgetter("at")
_REPLAYED = frozenset(("status", "priority", "assignee", "labels", "type", "components", "due"))


def _history_value(name: str, text: str | None) -> Any:
    if name in ("labels", "components"):
        return tuple(text.split()) if text else ()
    if name == "due":
        try:
            return parse_date_or_instant(text) if text else None
        except ValueError:
            return None
    return text


# The item's state from an instant on: (at, the item as it was then).
Snapshot = tuple[datetime, WorkItem]


def timeline(item: WorkItem, categories: StatusCategories) -> list[Snapshot] | Missing:
    """The item's states over time, oldest first, starting at its creation.

    With a history, the state before the first change of a field is that change's
    ``from`` value. A whole history (``history_complete``: a Jira changelog) that changes no
    replayed field means the item has been as it is since creation — never since ``updated``,
    which bridge's own write-back moves. Without one (ServiceNow's Table API), the item is
    taken to be new from creation until the moment its current state began: resolution (or
    closing) for a done item, the last update otherwise — so On Hold pauses from ``updated``
    to now (which the ServiceNow connector sets to the last update not made by bridge).
    """
    created = item.created
    if created is None:
        return Missing("no creation date to start the clock")
    # Sorted whole; changes of fields that are not replayed are skipped below.
    changes = sorted(item.history, key=_AT)
    # The row a state is built from: the item, then the replayed fields in _STATE_FIELDS order.
    row: list[Any] = [
        item,
        item.status,
        item.status_category,
        item.priority,
        item.assignee,
        item.labels,
        item.type,
        item.components,
        item.due,
    ]
    status_seen = replayed = False
    for change in reversed(changes):  # the earliest change of a field says what it was before
        name = change.field
        if name == "status":
            row[1] = change.from_value
            status_seen = replayed = True
        elif name in _REPLAYED:
            row[_SLOT[name]] = _history_value(name, change.from_value)
            replayed = True
    if not replayed:
        return [(created, item)] if item.history_complete else _synthesized(item, created)
    category = categories.category
    if status_seen:
        row[2] = category(row[1])
    snapshots: list[Snapshot] = [(created, new_tuple(_State, row))]
    own_status, own_category = item.status, item.status_category
    last_at = created
    for change in changes:
        at = change.at
        if at < created:  # noqa: PLR1730 - a change stamped before creation counts at creation
            at = created
        name = change.field
        if name == "status":
            status = change.to_value
            row[1] = status
            row[2] = (
                own_category
                if status == own_status and own_category is not None
                else category(status)
            )
        elif name in _REPLAYED:
            row[_SLOT[name]] = _history_value(name, change.to_value)
        else:
            continue
        state = new_tuple(_State, row)
        if at == last_at:  # changes at one instant make one state: the last one wins
            snapshots[-1] = (at, state)
        else:
            snapshots.append((at, state))
            last_at = at
    return snapshots


def _synthesized(item: WorkItem, created: datetime) -> list[Snapshot]:
    if item.status_category == "done":
        closed = item.raw.get("closed_at") if isinstance(item.raw, Mapping) else None
        closed_at = None
        if isinstance(closed, str) and closed:
            try:
                closed_at = cast(datetime, parse_date_or_instant(closed))
            except ValueError:
                closed_at = None
        began = item.resolved or closed_at or item.updated
    else:
        began = item.updated
    if began is None or began <= created:
        return [(created, item)]
    row = [item, *(getattr(item, name) for name in _STATE_FIELDS)]
    row[_SLOT["status"]], row[_SLOT["status_category"]] = None, "todo"
    return [(created, new_tuple(_State, row)), (began, item)]


Pauses = list[tuple[datetime, datetime]]


class Cycle(NamedTuple):
    """One run of an SLA clock from start to stop (or cancel, or still going at ``now``).
    Built as a plain tuple in the walk (one per cycle, and most items have one)."""

    start: datetime
    end: datetime | None  # None: still running at ``now``
    cancelled: bool
    pauses: Pauses  # closed pauses, oldest first
    paused_since: datetime | None  # an open pause (running cycles only)
    last_state: WorkItem  # the state the goal is chosen on


# Every figure an SLA clock gives (``sla.<name>.<figure>``), in the order it is written.
SLA_FIGURES: tuple[str, ...] = (
    "state",
    "goal_seconds",
    "elapsed_seconds",
    "elapsed_wall_seconds",
    "remaining_seconds",
    "breach_time",
    "breached",
    "ever_breached",
    "source",
    "at_risk",
)
_NO_GOAL = "no goal of this SLA matches the item"
_NO_NATIVE_ELAPSED = "the system's SLA data has no elapsed time to hold against at_risk"


def _compiled(cond: Cond | None) -> Predicate | None:
    return None if cond is None else compile_condition(cond)


# What a clock does at a change: the first of cancel, stop and pause whose condition holds.
_CANCEL, _STOP, _PAUSE, _RUN = range(4)
Chooser = Callable[[WorkItem, datetime], int]


@dataclass(frozen=True, slots=True)
class Clock:
    """An SLA definition with its conditions compiled, built once per rule set: the
    conditions run at every change of every item's history, so they must be cheap. Cancel,
    stop and pause are one generated function (the index of the first that holds), and so
    are the goals' conditions."""

    sla: SlaDef
    start: Predicate | None
    phase: Chooser | None  # None: no cancel, stop or pause condition
    phases: tuple[int, ...]  # phase's result → _CANCEL, _STOP or _PAUSE; -1 (none) → _RUN
    goal: Chooser | None  # None: no goals
    targets: tuple[float | None, ...]  # goal's result → seconds; -1 (none matched) → None
    keys: tuple[str, ...]  # the KPI names, "sla.<name>.state" ..., in SLA_FIGURES order
    at_risk: AtRisk | None  # the early-warning threshold, if the SLA has one

    @classmethod
    def of(cls, sla: SlaDef | Clock) -> Clock:
        if isinstance(sla, Clock):
            return sla
        steps = [
            (cond, kind)
            for cond, kind in ((sla.cancel, _CANCEL), (sla.stop, _STOP), (sla.pause, _PAUSE))
            if cond is not None
        ]
        return cls(
            sla,
            _compiled(sla.start),
            compile_first_match([cond for cond, _ in steps]) if steps else None,
            (*(kind for _, kind in steps), _RUN),
            compile_first_match([when for when, _ in sla.goals]) if sla.goals else None,
            (*(target for _, target in sla.goals), None),
            tuple(f"sla.{sla.name}.{name}" for name in SLA_FIGURES),
            sla.at_risk,
        )


def _cycles(clock: Clock, snapshots: list[Snapshot], now: datetime) -> list[Cycle]:
    """The clock's cycles over the item's states, oldest first (the last may be running)."""
    cycles: list[Cycle] = []
    on_created = clock.sla.start_on_created
    start, phase, phases = clock.start, clock.phase, clock.phases
    began: datetime | None = None  # the running cycle's start
    pauses: Pauses = []
    paused_since: datetime | None = None
    last: WorkItem | None = None
    for at, state in snapshots:
        if at > now:
            break
        if began is None:
            if on_created:
                if cycles:  # a clock started on creation runs once: nothing more to see
                    break
            elif start is None or not start(state, at):
                continue
            began, pauses = at, []
        last = state
        kind = _RUN if phase is None else phases[phase(state, at)]
        if kind == _CANCEL:
            cancelled = True
        elif kind == _STOP:
            cancelled = False
        else:
            if kind == _PAUSE:
                if paused_since is None:
                    paused_since = at
            elif paused_since is not None:
                pauses.append((paused_since, at))
                paused_since = None
            continue
        if paused_since is not None:  # a pause open at the stop ends at the stop
            pauses.append((paused_since, at))
            paused_since = None
        cycles.append((began, at, cancelled, pauses, None, state))  # type: ignore[arg-type]
        began = None
    if began is not None and last is not None:
        cycles.append((began, None, False, pauses, paused_since, last))  # type: ignore[arg-type]
    return cycles


class SlaOutcome(NamedTuple):
    """The last cycle's figures plus what the portfolio report needs of every cycle.

    A NamedTuple rather than a frozen dataclass: one is built per SLA per item, and a frozen
    dataclass pays an ``object.__setattr__`` per field."""

    state: str
    goal_seconds: float | None
    elapsed_seconds: float | None
    elapsed_wall_seconds: float | None
    remaining_seconds: float | None
    breach_time: datetime | None
    breached: bool | None
    ever_breached: bool
    source: str
    at_risk: bool | None
    cycles: int
    completed: tuple[bool, ...]  # per completed cycle: breached?


_US_PER_SECOND = 1_000_000  # Calendar.add() rounds working time to whole microseconds


def risk_threshold_us(at_risk: AtRisk | None, goal_us: int) -> int:
    """The elapsed working µs past which an open clock with this goal is at risk.

    In whole µs, as elapsed time is counted, so that :mod:`bridge.kpi.next_change` derives
    the very instant this module will call at risk. Without a threshold, or with one that
    leaves no time before this item's goal (``1h`` before a 30 min goal: which goal applies
    is only known per item), it is the goal itself: the clock is never at risk before it
    breaches, and the at-risk flag rises with the breach.
    """
    if at_risk is None:
        return goal_us
    if at_risk.share is not None:
        return round(goal_us * at_risk.share)
    left = goal_us - round((at_risk.before or 0.0) * _US_PER_SECOND)
    return left if left > 0 else goal_us


def _crossing(calendar: Calendar, cycle: Cycle, end: datetime, goal: float) -> datetime:
    """The first instant the clock reached ``goal``: walk the running spans between pauses.

    ``calendar.add`` gives the earliest instant with that much working time, so a goal reached
    just before a closed stretch (or a pause) is reached at its closing, not after it: the
    answer does not move while ``now`` moves through the closed time.
    """
    start, pauses = cycle[0], cycle[3]
    if not pauses:  # one running span: the goal ran out at start + goal
        return calendar.add(start, goal)
    spent = 0.0
    cursor = start
    spans: list[tuple[datetime, datetime]] = []
    for pause_start, pause_end in [*pauses, (end, end)]:
        spans.append((cursor, pause_start))
        cursor = pause_end
    for begin, finish in spans:
        if finish <= begin:
            continue
        span = calendar.elapsed(begin, finish)
        left = goal - spent
        # Compared in whole µs, as add() counts: summed per span, elapsed time can fall short
        # of the goal by a float rounding the cycle's own total does not have, and the answer
        # would then be `end` (that is, `now`).
        if round(left * _US_PER_SECOND) <= round(span * _US_PER_SECOND):
            return calendar.add(begin, left)
        spent += span
    return end


# The states of a clock still running at ``now``: only these have a breach instant.
_OPEN_STATES = frozenset(("running", "at_risk", "breaching"))


def breach_instant(
    calendar: Calendar, cycle: Cycle, now: datetime, goal: float, remaining: float
) -> datetime:
    """``breach_time`` of a cycle still running at ``now`` (states running, at_risk,
    breaching): when the goal will be reached if nothing pauses the clock, or the past
    instant it was crossed.

    With nothing left (to add()'s µs), add(now, 0) would be ``now`` itself, which moves with
    every evaluation while the calendar is closed: the goal was reached at a fixed past
    instant (now itself only when reached right now, while open).
    """
    if round(remaining * _US_PER_SECOND) > 0:
        return calendar.add(now, remaining)
    return _crossing(calendar, cycle, now, goal)


def _cycle_figures(
    clock: Clock, cycle: Cycle, calendar: Calendar, now: datetime
) -> tuple[float | None, float, float, str, float | None, bool | None]:
    """(goal, business elapsed, wall elapsed, state, remaining, at risk) of one cycle.

    Elapsed time is compared with the goal in whole µs, as the calendar counts: subtracted
    pause by pause, an elapsed time equal to the goal can exceed it by a float rounding
    (~1e-12 s with millisecond stamps), and equal is met, not breached. At risk means an
    open clock past its threshold or its goal (a paused one too: it resumes at risk); a
    completed or cancelled one has nothing left to act on.
    """
    start, end, cancelled, pauses, paused_since, last = cycle
    running = end is None
    if end is None:
        end = now
    elapsed = calendar.elapsed(start, end)
    wall = (end - start).total_seconds()
    for a, b in pauses:
        elapsed -= calendar.elapsed(a, b)
        wall -= (b - a).total_seconds()
    if paused_since is not None:  # only a running cycle has an open pause
        elapsed -= calendar.elapsed(paused_since, now)
        wall -= (now - paused_since).total_seconds()
    elapsed_us = round(elapsed * _US_PER_SECOND)
    if elapsed_us < 0:  # noqa: PLR1730 - cheaper than max() on this hot path
        elapsed_us = 0
    goal = None if clock.goal is None else clock.targets[clock.goal(last, end)]
    if goal is None:
        remaining = risky = None
        late = False
    else:
        goal_us = round(goal * _US_PER_SECOND)
        remaining = (goal_us - elapsed_us) / _US_PER_SECOND
        late = elapsed_us > goal_us
        at_risk = clock.at_risk
        risky = late or (at_risk is not None and elapsed_us > risk_threshold_us(at_risk, goal_us))
    if not running:  # stopped or cancelled: nothing left to act on
        state = "cancelled" if cancelled else "breached" if late else "met"
        if risky is not None:
            risky = False
    elif paused_since is not None:
        state = "paused"
    elif late:
        state = "breaching"
    else:
        state = "at_risk" if risky else "running"
    wall = wall if wall > 0.0 else 0.0
    return goal, elapsed_us / _US_PER_SECOND, wall, state, remaining, risky


def compute_sla(
    sla: SlaDef | Clock, snapshots: list[Snapshot], calendar: Calendar, now: datetime
) -> SlaOutcome | Missing:
    """Run the clock over the item's states; the figures describe the last cycle."""
    return _run_clock(Clock.of(sla), snapshots, calendar, now)


_NEVER_STARTED = Missing("the SLA never started (its start condition never held)")


def _run_clock(
    clock: Clock, snapshots: list[Snapshot], calendar: Calendar, now: datetime
) -> SlaOutcome | Missing:
    cycles = _cycles(clock, snapshots, now)
    if not cycles:
        return _NEVER_STARTED
    ever_breached = False
    completed: tuple[bool, ...] = ()
    if len(cycles) > 1:  # earlier cycles only matter for ever_breached / attainment
        earlier = []
        for cycle in cycles[:-1]:
            _, _, _, state, remaining, _ = _cycle_figures(clock, cycle, calendar, now)
            late = remaining is not None and remaining < 0
            ever_breached = ever_breached or late
            if state in ("met", "breached"):
                earlier.append(late)
        completed = tuple(earlier)
    cycle = cycles[-1]
    goal, elapsed, wall, state, remaining, risky = _cycle_figures(clock, cycle, calendar, now)
    if goal is None or remaining is None:
        breached = breach_time = None
    else:
        breached = remaining < 0
        breach_time = (
            breach_instant(calendar, cycle, now, goal, remaining) if state in _OPEN_STATES else None
        )
        ever_breached = ever_breached or breached
    if state in ("met", "breached"):
        completed = (*completed, bool(breached))
    return new_tuple(  # type: ignore[no-any-return]
        SlaOutcome,
        (
            state,
            goal,
            elapsed,
            wall,
            remaining,
            breach_time,
            breached,
            ever_breached,
            "computed",
            risky,
            len(cycles),
            completed,
        ),
    )


def native_outcome(native: NativeSla, at_risk: AtRisk | None = None) -> SlaOutcome | Missing:
    """The figures of a system-computed SLA (JSM field, ServiceNow task_sla).

    The rule set's at-risk threshold is held against the system's own elapsed time and
    goal, so that ``source: auto`` says ``at_risk`` alike for native and computed clocks.
    """
    if not native.cycles:
        return Missing(f"the system's SLA {native.name!r} has no cycles yet")
    last = native.cycles[-1]
    risky: bool | None
    if last.cancelled or last.stop is not None:
        risky = False
    elif last.breached or at_risk is None:
        risky = last.breached
    elif last.goal_seconds is None or last.elapsed_seconds is None:
        risky = None  # the system does not say how far the clock has run
    else:
        goal_us = round(last.goal_seconds * _US_PER_SECOND)
        elapsed_us = round(last.elapsed_seconds * _US_PER_SECOND)
        risky = elapsed_us > risk_threshold_us(at_risk, goal_us)
    state = native_state(last, risky)
    return SlaOutcome(
        state=state,
        goal_seconds=last.goal_seconds,
        elapsed_seconds=last.elapsed_seconds,
        elapsed_wall_seconds=last.elapsed_wall_seconds,
        remaining_seconds=last.remaining_seconds,
        breach_time=last.breach_time if state in ("running", "at_risk", "breaching") else None,
        breached=last.breached,
        ever_breached=any(c.breached for c in native.cycles),
        source="native",
        at_risk=risky,
        cycles=len(native.cycles),
        completed=tuple(
            c.breached for c in native.cycles if c.stop is not None and not c.cancelled
        ),
    )


def native_state(cycle: NativeSlaCycle, risky: bool | None = False) -> str:
    """A system-computed cycle's state, with KPIS.md's precedence: cancelled > met /
    breached > paused > breaching > running (``at_risk`` when ``risky``)."""
    if cycle.cancelled:
        return "cancelled"
    if cycle.stop is not None:
        return "breached" if cycle.breached else "met"
    if cycle.paused:
        return "paused"
    if cycle.breached:
        return "breaching"
    return "at_risk" if risky else "running"


# How far a change in the history may follow a system's SLA stop and still be the change that
# stopped it: the system stamps the stop from the same transition, but the two stamps can
# differ in their sub-second part (ServiceNow's are whole seconds).
_SAME_MOMENT = timedelta(seconds=1)


def rule_cancels(
    clock: Clock,
    native: NativeSla,
    snapshots: list[Snapshot] | Missing,
    item: WorkItem,
    now: datetime,
) -> tuple[bool, ...]:
    """Per cycle of a system-computed SLA: does the rule set's ``cancel`` condition hold where
    the cycle ended (its stop, or ``now`` for a running one)?

    The system's SLA knows nothing of the rule set's cancel (a JSM SLA stops at any done
    status and calls a cancelled ticket met), so a cycle that ended on a cancelled item would
    count as met in attainment. The condition is evaluated as the computed clock evaluates
    it: on the item as it was at that instant, replayed from its history.
    """
    phase = clock.phase
    if clock.sla.cancel is None or phase is None:
        return (False,) * len(native.cycles)
    phases = clock.phases
    history = () if isinstance(snapshots, Missing) else snapshots
    cancels = []
    for cycle in native.cycles:
        if cycle.stop is not None and cycle.stop <= now:
            end, seen = cycle.stop, min(cycle.stop + _SAME_MOMENT, now)
        else:
            end = seen = now
        state = history[0][1] if history else item  # before creation: as created
        for at, snapshot in reversed(history):  # short histories: no index to build
            if at <= seen:
                state = snapshot
                break
        cancels.append(phases[phase(state, end)] == _CANCEL)
    return tuple(cancels)


def cancelled_by_rules(native: NativeSla, cancels: tuple[bool, ...]) -> NativeSla:
    """``native`` with the cycles the rule set's cancel condition ends marked cancelled."""
    if not any(cancels):
        return native
    cycles = tuple(
        replace(cycle, cancelled=True) if cancel and not cycle.cancelled else cycle
        for cycle, cancel in zip(native.cycles, cancels, strict=True)
    )
    return replace(native, cycles=cycles)


def find_native(item: WorkItem, sla: SlaDef) -> NativeSla | None:
    """The item's native SLA this definition names (by field id or by the SLA's own name)."""
    wanted = {v.casefold() for k, v in sla.native.items() if k in ("jira_field", "servicenow_sla")}
    if not wanted:
        wanted = {sla.name.casefold().replace("-", " ")}
    for native in item.native_slas:
        names = {native.name.casefold()}
        if native.field:
            names.add(native.field.casefold())
        if names & wanted:
            return native
    return None


def sla_kpis(
    sla_or_clock: SlaDef | Clock,
    item: WorkItem,
    snapshots: list[Snapshot] | Missing,
    calendar: Calendar,
    now: datetime,
    out: KpiResult,
) -> SlaOutcome | None:
    """Write ``sla.<name>.*`` for one SLA; returns the outcome for portfolio figures."""
    clock = sla_or_clock if type(sla_or_clock) is Clock else Clock.of(sla_or_clock)
    sla = clock.sla
    outcome: SlaOutcome | Missing
    native = (
        find_native(item, sla) if item.native_slas and sla.source in ("native", "auto") else None
    )
    if native is not None:
        if sla.cancel is not None:  # the rule set's cancel holds for native clocks too
            native = cancelled_by_rules(native, rule_cancels(clock, native, snapshots, item, now))
        outcome = native_outcome(native, clock.at_risk)
    elif sla.source == "native":
        outcome = Missing("no native SLA data on this item (source: native)")
    elif isinstance(snapshots, Missing):
        outcome = snapshots
    else:
        outcome = _run_clock(clock, snapshots, calendar, now)
    values = out.values
    keys = clock.keys
    if isinstance(outcome, Missing):
        for key in keys:
            values[key] = None
            out.missing.append({"kpi": key, "reason": outcome.reason})
        return None
    (
        k_state,
        k_goal,
        k_elapsed,
        k_wall,
        k_remaining,
        k_breach_time,
        k_breached,
        k_ever,
        k_source,
        k_at_risk,
    ) = keys
    state, goal, elapsed, wall, remaining, breach_time, breached, ever, source, risky, _, _ = (
        outcome
    )
    values[k_state] = state
    values[k_goal] = goal
    values[k_elapsed] = elapsed
    values[k_wall] = wall
    values[k_remaining] = remaining
    values[k_breach_time] = iso(breach_time)
    values[k_breached] = breached
    values[k_ever] = ever
    values[k_source] = source
    values[k_at_risk] = risky
    if goal is None:
        out.missing.extend(
            {"kpi": k, "reason": _NO_GOAL} for k in (k_goal, k_remaining, k_breached)
        )
        if risky is None:
            out.missing.append({"kpi": k_at_risk, "reason": _NO_GOAL})
    elif risky is None:
        out.missing.append({"kpi": k_at_risk, "reason": _NO_NATIVE_ELAPSED})
    if elapsed is None:
        out.missing.append({"kpi": k_elapsed, "reason": "not in the system's SLA data"})
    if wall is None:
        out.missing.append(
            {"kpi": k_wall, "reason": "the system's SLA data has no wall-clock time"}
        )
    return outcome
