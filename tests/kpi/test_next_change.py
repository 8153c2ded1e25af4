"""When written KPI values next change by the clock alone: worked examples, then properties.

The properties evaluate the KPIs themselves (``KpiEngine.compute``, the rule engine's
``classify``) at instants around the answer, so they check ``next_change`` against the
definition — the written step values hold on ``[now, t)`` and differ at ``t`` — not against
its own derivation. Items are drawn with SLA clocks that pause, resume, stop and restart,
at-risk thresholds (a share, a time left that the shorter goal leaves no room for, none),
Jira-style millisecond stamps and microsecond ones, on office calendars in two DST zones with
holidays, a local 24x7 calendar and UTC; projects with due dates around ``now``; and ``now``
sometimes before the item's last changes (history not yet in effect).
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bridge.kpi import MOVING_KPIS, moving, next_change
from bridge.kpi.compute import KpiEngine
from bridge.kpi.sla import StatusCategories
from bridge.model import FieldChange, NativeSla, NativeSlaCycle, WorkItem
from bridge.rules.ast import RuleSet
from bridge.rules.engine import Engine
from bridge.rules.loader import load_rules

US = timedelta(microseconds=1)
BERLIN = ZoneInfo("Europe/Berlin")

RULES = """bridge: 1
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon-fri: "08:00-17:00"}
    holidays: {country: DE, dates: ["2026-10-26"]}
  new-york:
    timezone: America/New_York
    hours: {mon-fri: "09:00-12:30,13:30-18:00"}
    holidays: {country: US}
  berlin-24x7:
    timezone: Europe/Berlin
    hours: 24x7
    holidays: {dates: ["2026-03-30", "2026-10-24"]}
kpi:
  calendar: office
  hourly_rate: 80
  rates:
    - {when: {field: created, older_than: 20d}, rate: 120}
slas:
  resolution:
    calendar: office
    pause: {field: status, in: ["Waiting for customer"]}
    stop: {field: status_category, equals: done}
    cancel: {field: status, equals: Cancelled}
    at_risk: 75%
    goals:
      - {when: {field: priority, equals: Highest}, target: 4h}
      - {target: 8h}
  response:
    calendar: new-york
    stop: {field: status_category, in: [in_progress, done]}
    at_risk: 1h                 # before the 2h30m goal; none before the 30m one (clamped)
    goals:
      - {when: {field: created, older_than: 3d}, target: 30m}
      - {target: 2h30m}
  review:
    calendar: berlin-24x7
    start: {field: status, equals: In Progress}
    pause: {field: status, equals: Waiting for customer}
    stop: {field: status, in: [Review, Resolved]}
    at_risk: 87.5%              # 21 h of the day: a share that is no whole hour
    goals: [{target: 1d}]
  wall:
    source: auto
    stop: {field: status_category, equals: done}
    goals: [{when: {field: priority, in: [Highest, High]}, target: 36h}]
rules:
  - id: stale-tasks
    when: {all: [{field: type, equals: Task}, {field: updated, older_than: 30d}]}
    then: {work_type: unclassified}
  - id: service
    when: {field: type, in: [Incident, Task]}
    then:
      work_type: service
      kpis: [sla.resolution, sla.response, sla.review, sla.wall, csat, tco]
  - id: projects
    when: {field: type, equals: Epic}
    then:
      work_type: project
      phase: {by_status_category: {todo: planning, in_progress: execution, done: closing}}
      kpis: [evm, effort, schedule, cost, tco, sla.resolution]
"""

CATEGORY = {
    "Open": "todo",
    "In Progress": "in_progress",
    "Waiting for customer": "in_progress",
    "Review": "in_progress",
    "Resolved": "done",
    "Cancelled": "done",
}


def _load(text: str) -> RuleSet:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "rules.yaml").write_text(text)
        return load_rules([folder])


RULE_SET = _load(RULES)
RULES_ENGINE = Engine(RULE_SET)
KPIS = KpiEngine(RULE_SET, StatusCategories(CATEGORY))


def berlin(day: int, month: int, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall-clock time in 2026, as the UTC instant."""
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def incident(
    created: datetime, *moves: tuple[datetime, str, str], priority: str = "Medium", **extra: Any
) -> WorkItem:
    status = moves[-1][2] if moves else "Open"
    return WorkItem(
        "OPS-1",
        "jira",
        type="Incident",
        status=status,
        status_category=CATEGORY[status],  # type: ignore[arg-type]
        priority=priority,
        created=created,
        history=tuple(FieldChange(at, "status", a, b) for at, a, b in moves),
        history_complete=True,
        **extra,
    )


def epic(**fields: Any) -> WorkItem:
    return WorkItem("PMO-1", "jira", type="Epic", status="In Progress", **fields)


def change(item: WorkItem, written: Collection[str], now: datetime) -> datetime | None:
    return next_change(item, RULES_ENGINE.classify(item, now), KPIS, written, now)


def value(item: WorkItem, key: str, at: datetime) -> Any:
    return KPIS.compute(item, RULES_ENGINE.classify(item, at), at).values.get(key)


# -- worked examples -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created", "now", "goal"),
    [
        # Fri 15:03 → 1 h 57 min on Friday, 6 h 03 min from Monday 08:00.
        (berlin(16, 1, 15, 3), berlin(17, 1, 10), berlin(19, 1, 14, 3)),
        # The same across the night clocks went forward (Sun 29 March): Monday is CEST.
        (berlin(27, 3, 15, 3), berlin(29, 3, 3), berlin(30, 3, 14, 3)),
    ],
)
def test_an_incident_is_at_risk_at_12_03_and_breaches_at_14_03_on_monday_across_the_weekend(
    created: datetime, now: datetime, goal: datetime
) -> None:
    work = incident(created)  # Medium: the 8 h goal, office hours Mon-Fri 08:00-17:00
    assert value(work, "sla.resolution.breach_time", now) == goal.isoformat().replace("+00:00", "Z")
    # 75 % of 8 h: at risk past 6 h of working time, 2 h before the goal (both on Monday).
    at_risk = goal - timedelta(hours=2)
    t = change(work, ["sla.resolution.state", "sla.resolution.breached"], now)
    assert t == at_risk + US  # equal to the threshold is not past it
    assert value(work, "sla.resolution.state", at_risk) == "running"
    assert value(work, "sla.resolution.state", t) == "at_risk"
    assert value(work, "sla.resolution.at_risk", t) is True
    t = change(work, ["sla.resolution.state", "sla.resolution.breached"], t)
    # Equal to the goal is met: the clock is breaching from the first µs past 14:03.
    assert t == goal + US
    assert value(work, "sla.resolution.state", goal) == "at_risk"
    assert value(work, "sla.resolution.state", t) == "breaching"
    assert value(work, "sla.resolution.breached", t) is True
    # The breach alone, written without the state, steps at the goal only.
    assert change(work, ["sla.resolution.breached"], now) == goal + US


def test_the_breach_time_itself_never_moves() -> None:
    work = incident(berlin(16, 1, 15, 3))
    assert change(work, ["sla.resolution.breach_time"], berlin(17, 1, 10)) is None


def test_a_due_date_passing_starts_the_slip_at_the_next_local_midnight() -> None:
    work = epic(created=berlin(1, 1, 9), due=date(2026, 1, 20))
    now = berlin(19, 1, 10)
    t = change(work, ["schedule.slip_days"], now)
    assert t == berlin(21, 1, 0)  # 20 Jan is the due date itself: not late until it is over
    assert value(work, "schedule.slip_days", t - US) == 0
    assert value(work, "schedule.slip_days", t) == 1


def test_business_slip_counts_working_days_and_skips_weekends_and_holidays() -> None:
    # Due Tue 12 May; Thu 14 May is Ascension Day (a German holiday), 16-17 May a weekend.
    work = epic(created=berlin(1, 5, 9), due=date(2026, 5, 12))
    steps, now = [], berlin(13, 5, 11)
    for _ in range(4):
        t = change(work, ["schedule.slip_business_days"], now)
        assert t is not None
        steps.append((t, value(work, "schedule.slip_business_days", t)))
        now = t
    assert steps == [
        (berlin(15, 5, 0), 2),
        (berlin(18, 5, 0), 3),
        (berlin(19, 5, 0), 4),
        (berlin(20, 5, 0), 5),
    ]
    # Calendar days count every midnight, the weekend's too.
    assert change(work, ["schedule.slip_days"], berlin(15, 5, 12)) == berlin(16, 5, 0)


def test_a_paused_clock_has_no_next_change_until_it_resumes() -> None:
    written = ["sla.resolution.state", "sla.resolution.breached", "sla.resolution.breach_time"]
    waiting = incident(
        berlin(19, 1, 9),
        (berlin(19, 1, 9, 30), "Open", "In Progress"),
        (berlin(19, 1, 10), "In Progress", "Waiting for customer"),
    )
    for now in (berlin(19, 1, 11), berlin(24, 1, 12), berlin(19, 2, 9)):
        assert change(waiting, ["sla.resolution.state"], now) is None
    assert change(waiting, written, berlin(19, 1, 11)) is None
    resumed = incident(
        berlin(19, 1, 9),
        (berlin(19, 1, 9, 30), "Open", "In Progress"),
        (berlin(19, 1, 10), "In Progress", "Waiting for customer"),
        (berlin(21, 1, 16), "Waiting for customer", "In Progress"),
    )
    # 1 h before the pause; 7 h left from Wed 16:00: 1 h Wednesday, 6 h Thursday. The state
    # steps first at 6 h of the 8 h goal (75 %): 2 h before the goal.
    assert change(resumed, written, berlin(21, 1, 16, 30)) == berlin(22, 1, 12) + US
    breach = ["sla.resolution.breached", "sla.resolution.breach_time"]
    assert change(resumed, breach, berlin(21, 1, 16, 30)) == berlin(22, 1, 14) + US


def test_a_flag_an_earlier_cycle_set_does_not_step_again() -> None:
    # The review clock (24x7 Berlin, 1 d goal) ran 2 days in its first cycle: breached.
    work = incident(
        berlin(12, 1, 9),
        (berlin(12, 1, 10), "Open", "In Progress"),
        (berlin(14, 1, 10), "In Progress", "Review"),
        (berlin(15, 1, 10), "Review", "In Progress"),
    )
    now = berlin(15, 1, 11)
    assert value(work, "sla.review.ever_breached", now) is True
    assert change(work, ["sla.review.ever_breached"], now) is None
    assert change(work, ["sla.review.breached"], now) == berlin(16, 1, 10) + US
    # At risk is the running cycle's own: past 21 h of its day (87.5 %), 3 h before the goal.
    assert change(work, ["sla.review.at_risk"], now) == berlin(16, 1, 7) + US


def test_a_native_clock_is_the_systems_snapshot_and_does_not_move() -> None:
    cycle = NativeSlaCycle(
        start=berlin(19, 1, 9),
        stop=None,
        breach_time=berlin(20, 1, 21),
        goal_seconds=36 * 3600.0,
        elapsed_seconds=3600.0,
        remaining_seconds=35 * 3600.0,
        breached=False,
    )
    work = incident(berlin(19, 1, 9), native_slas=(NativeSla("wall", None, (cycle,)),))
    assert value(work, "sla.wall.source", berlin(19, 1, 10)) == "native"
    assert change(work, ["sla.wall.state", "sla.wall.breached"], berlin(19, 1, 10)) is None


def test_done_and_cancelled_items_never_change_by_the_clock() -> None:
    done = incident(berlin(19, 1, 9), (berlin(19, 1, 18), "Open", "Resolved"))
    cancelled = incident(berlin(19, 1, 9), (berlin(19, 1, 10), "Open", "Cancelled"))
    for work in (done, cancelled):
        assert change(work, ALL_KEYS, berlin(20, 1, 9)) is None


def test_moving_figures_are_named_and_ignored() -> None:
    assert moving("sla.resolution.remaining_seconds")
    assert moving("evm.spi")
    assert not moving("sla.resolution.state")
    assert not moving("schedule.slip_days")
    assert "sla.*.elapsed_seconds" in MOVING_KPIS
    running = incident(berlin(19, 1, 9))
    keys = ["sla.resolution.remaining_seconds", "sla.resolution.elapsed_seconds", "evm.pv"]
    assert change(running, keys, berlin(19, 1, 10)) is None


def test_a_time_relative_rule_changes_the_work_type() -> None:
    task = WorkItem(
        "OPS-2",
        "jira",
        type="Task",
        status="Open",
        status_category="todo",
        created=berlin(2, 1, 9),
        updated=datetime(2026, 1, 5, 12, tzinfo=UTC),
        history_complete=True,
    )
    now = berlin(20, 1, 9)
    t = change(task, ["work_type"], now)
    assert t == datetime(2026, 2, 4, 12, tzinfo=UTC) + US  # updated + 30 d, then strictly older
    assert RULES_ENGINE.classify(task, t - US).work_type == "service"
    assert RULES_ENGINE.classify(task, t).work_type == "unclassified"


def test_history_stamped_after_now_comes_into_effect_at_its_instant() -> None:
    work = incident(berlin(19, 1, 9), (berlin(19, 1, 11), "Open", "Resolved"))
    # Evaluated as of before creation: the clock starts when the item is created.
    assert change(work, ["sla.resolution.state"], berlin(19, 1, 8)) == berlin(19, 1, 9)
    assert change(work, ["sla.resolution.state"], berlin(19, 1, 10)) == berlin(19, 1, 11)


# -- properties ----------------------------------------------------------------------------------

FACTS = ("work_type", "phase", "rule")


def _all_keys() -> list[str]:
    full_epic = epic(
        status_category="in_progress",
        created=berlin(5, 1, 9),
        planned_start=date(2026, 1, 1),
        due=date(2026, 3, 1),
        estimate_hours=100.0,
        spent_hours=20.0,
        remaining_hours=70.0,
        budget=50_000.0,
        actual_cost=1_000.0,
    )
    now = berlin(20, 1, 9)
    keys = set(FACTS)
    for work in (full_epic, incident(berlin(19, 1, 9), satisfaction=4.0, spent_hours=1.0)):
        keys.update(KPIS.compute(work, RULES_ENGINE.classify(work, now), now).values)
    return sorted(keys)


ALL_KEYS = _all_keys()
STEP_KEYS = [key for key in ALL_KEYS if not moving(key)]


# Berlin and New York change their clocks on these days in 2026; around them the calendars'
# days are 23 or 25 hours long, and Berlin's 24x7 calendar has holidays next to both.
DST = [
    datetime(2026, month, day, tzinfo=UTC) for month, day in ((3, 29), (10, 25), (3, 8), (11, 1))
]
DAY_US = 86_400 * 1_000_000


@st.composite
def anchors(draw: st.DrawFn) -> datetime:
    if draw(st.booleans()):
        return draw(st.sampled_from(DST)) + timedelta(
            microseconds=draw(st.integers(-4 * DAY_US, 3 * DAY_US))
        )
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=draw(st.integers(0, 360 * DAY_US))
    )


def _stamp(draw: st.DrawFn, us: int) -> timedelta:
    """Jira stamps in milliseconds; some systems in whole seconds or microseconds."""
    grain = draw(st.sampled_from([1, 1_000, 1_000_000]))
    return timedelta(microseconds=max(grain, us - us % grain))


gaps = st.one_of(
    st.integers(1, 60 * 1_000_000),
    st.integers(1, 6 * 3600 * 1_000_000),
    st.integers(1, 4 * DAY_US),
)


@st.composite
def items(
    draw: st.DrawFn, kinds: tuple[str, ...] = ("Incident", "Incident", "Task", "Epic")
) -> tuple[WorkItem, datetime]:
    """An item and the instant it is evaluated at."""
    kind = draw(st.sampled_from(kinds))
    created = draw(anchors())
    at = created
    status = "Open"
    history: list[FieldChange] = []
    for _ in range(draw(st.integers(0, 6))):
        at += _stamp(draw, draw(gaps))
        if draw(st.integers(0, 9)) == 0:
            history.append(FieldChange(at, "priority", "Medium", "Highest"))
            continue
        new = draw(st.sampled_from(sorted(CATEGORY)))
        history.append(FieldChange(at, "status", status, new))
        status = new
    done = CATEGORY[status] == "done"
    last = history[-1].at if history else created
    priority = "Highest" if any(c.field == "priority" for c in history) else None
    fields: dict[str, Any] = {
        "priority": priority or draw(st.sampled_from(["Medium", "High", "Highest"])),
        "updated": last + timedelta(microseconds=draw(st.integers(0, 2 * DAY_US))),
        "resolved": last if done else None,
        "spent_hours": draw(st.none() | st.floats(0, 200)),
        "satisfaction": draw(st.none() | st.integers(1, 5).map(float)),
    }
    # `now`: mostly after the last change, sometimes among them or before creation.
    now = draw(
        st.one_of(
            st.integers(0, 45 * DAY_US).map(lambda us: last + timedelta(microseconds=us)),
            st.integers(-DAY_US, 3 * DAY_US).map(lambda us: created + timedelta(microseconds=us)),
        )
    )
    if kind == "Epic":
        fields.update(
            planned_start=(created - timedelta(days=draw(st.integers(0, 60)))).date(),
            due=(now + timedelta(days=draw(st.integers(-20, 20)))).date(),
            estimate_hours=draw(st.none() | st.floats(1, 500)),
            remaining_hours=draw(st.none() | st.floats(0, 200)),
            budget=draw(st.none() | st.floats(1_000, 90_000)),
        )
    work = WorkItem(
        f"K-{kind}",
        "jira",
        type=kind,
        status=status,
        status_category=CATEGORY[status],  # type: ignore[arg-type]
        created=created,
        history=tuple(history),
        history_complete=bool(history) or draw(st.booleans()),
        **fields,
    )
    return work, now


# The keys whose steps are rare or hidden behind others' (a weekend between slip days, a
# flag already set by an earlier cycle, a goal chosen anew days later), written alone or in
# small groups so that no other key's step comes first.
FOCUS = [
    key
    for key in STEP_KEYS
    if key in FACTS
    or key.startswith("schedule.")
    or key.rsplit(".", 1)[-1] in ("state", "breached", "ever_breached", "at_risk", "goal_seconds")
    or key in ("tco.labour_cost", "sla.resolution.breach_time", "sla.response.breach_time")
]
written_keys = st.one_of(
    st.just(ALL_KEYS),
    st.sets(st.sampled_from(ALL_KEYS), min_size=1, max_size=6).map(sorted),
    st.sets(st.sampled_from(FOCUS), min_size=1, max_size=2).map(sorted),
)


def written_values(work: WorkItem, keys: list[str], at: datetime) -> tuple[Any, ...]:
    """What the write-back would hold for the step keys at ``at`` (the reference)."""
    decision = RULES_ENGINE.classify(work, at)
    values = KPIS.compute(work, decision, at).values
    facts: dict[str, Any] = {
        "work_type": decision.work_type,
        "phase": decision.phase,
        "rule": decision.rule,
    }
    return tuple(facts[k] if k in facts else values.get(k) for k in keys if not moving(k))


def _between(now: datetime, t: datetime, fractions: list[float]) -> list[datetime]:
    span_us = (t - now) // US
    return [now + timedelta(microseconds=int(span_us * f)) for f in fractions]


LATER = [timedelta(hours=1), timedelta(days=1), timedelta(days=3), timedelta(days=10)]
LATER += [timedelta(days=45), timedelta(days=365)]


def walk(work: WorkItem, now: datetime, keys: list[str], fractions: list[float]) -> None:
    """Walks the item's future change by change (up to five): each answer is a change, and
    the first; after the last, nothing written changes any more."""
    step_keys = [k for k in keys if not moving(k)]
    for step in range(5):
        t = next_change(work, RULES_ENGINE.classify(work, now), KPIS, keys, now)
        before = written_values(work, keys, now)
        if t is None:
            event(f"no next change after {step} step(s)")
            # (3) Nothing written changes by the clock alone: not in hours, days, or a year.
            for later in [US, *LATER]:
                assert written_values(work, keys, now + later) == before, later
            return
        assert t > now
        # (1) The answer is a change: the values at t differ from those just before.
        after, just_before = written_values(work, keys, t), written_values(work, keys, t - US)
        steps = [k for k, a, b in zip(step_keys, after, just_before, strict=True) if a != b]
        assert steps
        event(f"changes: {', '.join(sorted({k.rsplit('.', 1)[-1] for k in steps}))}")
        # (2) ... and the first one: nothing changes in [now, t).
        for instant in [t - US, now + US, *_between(now, t, fractions)]:
            if now <= instant < t:
                assert written_values(work, keys, instant) == before, instant
        # Asked again from an instant before it, the answer is the same: a timer set at one
        # evaluation stays right at the next.
        again = min(_between(now, t, fractions[step % len(fractions) :])[0], t - US)
        assert next_change(work, RULES_ENGINE.classify(work, again), KPIS, keys, again) == t
        now = t


fractions = st.lists(st.floats(0, 1), min_size=3, max_size=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items(), written_keys, fractions)
def test_values_hold_until_the_answer_and_change_there(
    drawn: tuple[WorkItem, datetime], keys: list[str], fractions: list[float]
) -> None:
    walk(*drawn, keys, fractions)


PROJECT_GROUPS = ("evm.", "effort.", "schedule.", "cost.")


@pytest.mark.parametrize("key", FOCUS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_key_written_alone(key: str, data: st.DataObject) -> None:
    """A key alone: its own steps, which others' would hide (slip days over a weekend are
    not business days; an earlier cycle's breach already set ``ever_breached``)."""
    kinds = ("Epic",) if key.startswith(PROJECT_GROUPS) else ("Incident", "Task", "Epic")
    work, now = data.draw(items(kinds))
    walk(work, now, [key], data.draw(fractions))
