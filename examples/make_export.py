"""Write the example export in ``examples/export/``: Jira search pages and ServiceNow tables.

Why a generator and not hand-written JSON: the records must stay coherent with each other (a
changelog that leads to the final status, JSM SLA cycles that agree with that changelog,
project costs that agree with effort) and reproducible byte for byte, so a change to the data
is a reviewable change here rather than a diff of thousands of JSON lines.

Every item lives a whole simulated life (created, worked, paused, resolved, reopened,
closed...) and is then cut at the export instant, ``EXPORT_AT``: an item is open because its
story was still running then, never because a die said so. Stdlib only, seeded random
generators, no clock and no locale: the output does not depend on when or where this runs.

Run: ``python examples/make_export.py`` (from anywhere; it writes next to itself).
"""

from __future__ import annotations

import base64
import json
import random
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "export"
SEED = 20261102

FIRST_DAY = date(2026, 1, 5)
LAST_DAY = date(2026, 11, 1)
# The instant the export was taken (Sun 2026-11-01 23:00 Berlin): nothing happens after it.
EXPORT_AT = datetime(2026, 11, 1, 22, 0, tzinfo=UTC)

JIRA_SITE = "https://acme.atlassian.net"
SN_INSTANCE = "https://acme.service-now.com"
PAGE_SIZE = 50
HOURLY_RATE_JIRA = 95  # EUR, what PMO budgets are planned with
HOURLY_RATE_SN = 110  # EUR, the ServiceNow rate card

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
DAY = timedelta(days=1)

# ============================================================================================
# Time: Europe/Berlin without zoneinfo (tzdata is not everywhere), and a business calendar
# ============================================================================================

# German national holidays (what `holidays` gives for DE without a subdivision).
HOLIDAYS = frozenset(
    date.fromisoformat(d)
    for d in [
        "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-05-14", "2026-05-25",
        "2026-10-03", "2026-12-25", "2026-12-26", "2027-01-01", "2027-03-26", "2027-03-29",
        "2027-05-01", "2027-05-06", "2027-05-17", "2027-10-03", "2027-12-25", "2027-12-26",
    ]
)  # fmt: skip
OPEN_AT, CLOSE_AT = time(8), time(17)  # Mon-Fri, Europe/Berlin
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - DAY
    return last - timedelta(days=(last.weekday() - 6) % 7)


def berlin_offset(t: datetime) -> timedelta:
    """CET/CEST: summer time from the last Sunday of March to that of October, 01:00 UTC."""
    start = datetime.combine(_last_sunday(t.year, 3), time(1), UTC)
    end = datetime.combine(_last_sunday(t.year, 10), time(1), UTC)
    return 2 * H if start <= t < end else H


def to_local(t: datetime) -> datetime:
    return (t + berlin_offset(t)).replace(tzinfo=None)


def from_local(wall: datetime) -> datetime:
    for hours in (2, 1):  # fold=0 for the repeated autumn hour
        t = (wall - hours * H).replace(tzinfo=UTC)
        if berlin_offset(t) == hours * H:
            return t
    return (wall - H).replace(tzinfo=UTC)  # inside the spring gap


def is_workday(d: date) -> bool:
    return d.weekday() < 5 and d not in HOLIDAYS


def work_window(d: date) -> tuple[datetime, datetime]:
    return (
        from_local(datetime.combine(d, OPEN_AT)),
        from_local(datetime.combine(d, CLOSE_AT)),
    )


def workday(d: date, step: int = 1) -> date:
    """``d`` if it is a working day, else the next (``step=1``) or previous (-1) one."""
    while not is_workday(d):
        d += step * DAY
    return d


def b_elapsed(a: datetime, b: datetime) -> timedelta:
    """Working time in [a, b)."""
    total = timedelta()
    if b <= a:
        return total
    d, last = to_local(a).date(), to_local(b).date()
    while d <= last:
        if is_workday(d):
            s, e = work_window(d)
            lo, hi = max(s, a), min(e, b)
            if hi > lo:
                total += hi - lo
        d += DAY
    return total


def b_add(a: datetime, amount: timedelta) -> datetime:
    """The earliest instant t >= a with b_elapsed(a, t) == amount."""
    if amount <= timedelta():
        return a
    d = to_local(a).date()
    while True:
        if is_workday(d):
            s, e = work_window(d)
            lo = max(s, a)
            if lo < e:
                if amount <= e - lo:
                    return lo + amount
                amount -= e - lo
        d += DAY


def next_work_time(rng: random.Random, d: date, early: int = 8, late: int = 17) -> datetime:
    """A random office-hours instant on ``d`` or the next working day."""
    while not is_workday(d):
        d += DAY
    minute = rng.randrange(early * 60 + 5, late * 60 - 5)
    wall = datetime.combine(d, time(minute // 60, minute % 60, rng.randrange(60)))
    return from_local(wall) + timedelta(milliseconds=rng.randrange(1000))


def random_instant(rng: random.Random, first: date, last: date, office: float = 0.85) -> datetime:
    """When people raise tickets: mostly office hours on working days, sometimes any time.

    Never after the export: a Sunday ``last`` would otherwise move to Monday.
    """
    span = (last - first).days
    while True:
        if rng.random() < office:
            t = next_work_time(rng, first + timedelta(days=rng.randrange(span + 1)))
        else:
            start = datetime.combine(first, time(0), UTC)
            t = start + timedelta(
                seconds=rng.randrange(span * 86400), milliseconds=rng.randrange(1000)
            )
        if t < EXPORT_AT - H:
            return t


def before_export(rng: random.Random, t: datetime, not_before: datetime) -> datetime:
    """``t``, or a recent backlog-grooming moment when ``t`` lies after the export."""
    if t < EXPORT_AT - H:
        return t
    return max(not_before + H, next_work_time(rng, LAST_DAY - timedelta(days=rng.randint(3, 12))))


def ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


# -- formats --------------------------------------------------------------------------------


def _offset_text(t: datetime) -> str:
    return f"+{int(berlin_offset(t) / H):02d}00"


def jira_dt(t: datetime) -> str:
    """``2026-03-01T11:34:49.730+0100``: Berlin wall clock, millis, offset without a colon."""
    return f"{to_local(t):%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}{_offset_text(t)}"


def jira_date_dto(t: datetime) -> dict[str, Any]:
    wall = to_local(t)
    hour12 = wall.hour % 12 or 12
    friendly = (
        f"{wall.day:02d}/{MONTHS[wall.month - 1]}/{wall.year % 100:02d} "
        f"{hour12}:{wall.minute:02d} {'PM' if wall.hour >= 12 else 'AM'}"
    )
    return {
        "epochMillis": int((t - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1)),
        "friendly": friendly,
        "iso8601": f"{wall:%Y-%m-%dT%H:%M:%S}{_offset_text(t)}",
        "jira": jira_dt(t),
    }


def jira_duration_dto(td: timedelta) -> dict[str, Any]:
    millis = int(td / timedelta(milliseconds=1))
    minutes = abs(millis) // 60000
    hours, mins = divmod(minutes, 60)
    text = " ".join(p for p in (f"{hours}h" if hours else "", f"{mins}m" if mins else "") if p)
    return {"millis": millis, "friendly": ("-" if millis < 0 else "") + (text or "0m")}


def sn_dt(t: datetime | None) -> str:
    return "" if t is None else f"{t.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def sn_duration(td: timedelta | None) -> str:
    if td is None:
        return ""
    return f"{datetime(1970, 1, 1) + timedelta(seconds=int(td.total_seconds())):%Y-%m-%d %H:%M:%S}"


def sn_money(amount: float | None) -> str:
    return "" if amount is None else f"{amount:.2f}"


def sn_percent(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def hours_s(hours: float | None) -> int | None:
    """Hours as Jira seconds, in the quarter hours people log."""
    return None if hours is None else round(hours * 4) * 900


# ============================================================================================
# A simulated life: status, assignee and priority changes, cut at the export instant
# ============================================================================================


@dataclass(frozen=True)
class Person:
    name: str
    account_id: str  # Jira
    sys_id: str  # ServiceNow sys_user


@dataclass
class Event:
    at: datetime
    kind: str  # status | resolution | assignee | priority | a custom field's id
    old: Any
    new: Any
    author: Person


@dataclass
class Snapshot:
    status: str
    assignee: Person | None
    priority: str
    resolution: str | None
    resolved_at: datetime | None
    category_changed: datetime
    events: list[Event]
    updated: datetime


class Life:
    """Changes appended in order per kind; the cut merges them by time."""

    def __init__(self, created: datetime, status: str, assignee: Person | None, priority: str):
        self.created = ms(created)
        self.status0, self.assignee0, self.priority0 = status, assignee, priority
        self.status, self.assignee, self.priority = status, assignee, priority
        self.resolution: str | None = None
        self.events: list[Event] = []
        self.last = self.created

    def _at(self, at: datetime) -> datetime:
        at = ms(max(at, self.last + MIN))
        self.last = at
        return at

    def move(
        self, at: datetime, to: str, author: Person, resolution: str | None = None
    ) -> datetime:
        """``resolution``: a name sets it, ``""`` clears it, None leaves it."""
        at = self._at(at)
        self.events.append(Event(at, "status", self.status, to, author))
        self.status = to
        if resolution is not None:
            self.events.append(Event(at, "resolution", self.resolution, resolution or None, author))
            self.resolution = resolution or None
        return at

    def assign(self, at: datetime, person: Person | None, author: Person) -> None:
        at = ms(max(at, self.created + MIN))
        self.events.append(Event(at, "assignee", self.assignee, person, author))
        self.assignee = person

    def set_custom(self, at: datetime, field_id: str, old: Any, new: Any, author: Person) -> None:
        self.events.append(Event(ms(max(at, self.created + MIN)), field_id, old, new, author))

    def reprioritise(self, at: datetime, priority: str, author: Person) -> None:
        at = ms(max(at, self.created + MIN))
        self.events.append(Event(at, "priority", self.priority, priority, author))
        self.priority = priority

    def cut(self, extra_update: datetime | None = None) -> Snapshot:
        """The item as the export saw it: only what happened up to ``EXPORT_AT``."""
        kept = sorted((e for e in self.events if e.at <= EXPORT_AT), key=lambda e: e.at)
        status, assignee, priority = self.status0, self.assignee0, self.priority0
        resolution, resolved_at, changed = None, None, self.created
        for e in kept:
            if e.kind == "status":
                if STATUSES[e.old][1] != STATUSES[e.new][1]:
                    changed = e.at
                status = e.new
            elif e.kind == "resolution":
                resolution = e.new
                resolved_at = e.at if e.new else None
            elif e.kind == "assignee":
                assignee = e.new
            elif e.kind == "priority":
                priority = e.new
        updated = kept[-1].at if kept else self.created
        if extra_update is not None and updated < extra_update <= EXPORT_AT:
            updated = extra_update
        return Snapshot(status, assignee, priority, resolution, resolved_at, changed, kept, updated)


# ============================================================================================
# People
# ============================================================================================


# sys_id → name of every ServiceNow user and group, for the ``<field>.name`` dot-walks.
SN_NAMES: dict[str, str] = {}


def make_people(rng: random.Random, names: Sequence[str]) -> list[Person]:
    people = []
    for name in names:
        account = f"712020:{rng.getrandbits(128):032x}"
        account = (
            f"{account[:15]}-{account[15:19]}-{account[19:23]}-{account[23:27]}-{account[27:]}"
        )
        people.append(Person(name, account, f"{rng.getrandbits(128):032x}"))
        SN_NAMES[people[-1].sys_id] = name
    return people


PEOPLE_RNG = random.Random(SEED)
OPS_AGENTS = make_people(
    PEOPLE_RNG,
    ["Anna Schmidt", "Jonas Weber", "Lea Fischer", "Tobias Wagner", "Mia Becker", "Felix Hoffmann"],
)
EMPLOYEES = make_people(
    PEOPLE_RNG,
    [
        "Sophie Koch",
        "Lukas Richter",
        "Hannah Klein",
        "Paul Wolf",
        "Emma Schröder",
        "Ben Neumann",
        "Marie Schwarz",
        "Leon Zimmermann",
        "Laura Braun",
        "Noah Krüger",
        "Julia Hofmann",
        "Elias Hartmann",
        "Clara Lange",
        "Finn Werner",
        "Lina Schmitt",
        "Jan Krause",
        "Amelie Meier",
        "Niklas Lehmann",
    ],
)
VIPS = EMPLOYEES[:3]
PMO_PEOPLE = make_people(
    PEOPLE_RNG, ["Katrin Vogel", "Stefan Maier", "Nina Berger", "Oliver Keller", "Sarah Huber"]
)
DEVS = make_people(
    PEOPLE_RNG, ["David Kaiser", "Lisa Fuchs", "Max Peters", "Eva Scholz", "Tim Möller"]
)
AUTOMATION = Person("Automation for Jira", "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077", "")
SN_AGENTS = make_people(
    PEOPLE_RNG,
    ["Beth Anglin", "David Loo", "Fred Luddy", "Don Goodliffe", "Luke Wilson", "ITIL User"],
)
SN_PMS = make_people(PEOPLE_RNG, ["Carol Coughlin", "Abel Tuter", "Bud Richman"])


# ============================================================================================
# Jira: catalogues
# ============================================================================================

CATEGORY = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {
        "id": 4,
        "key": "indeterminate",
        "colorName": "yellow",
        "name": "In Progress",
    },
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
STATUSES = {
    "Open": ("1", "new"),
    "In Progress": ("3", "indeterminate"),
    "Waiting for customer": ("10002", "indeterminate"),
    "Resolved": ("5", "done"),
    "Closed": ("6", "done"),
    "Cancelled": ("10003", "done"),
    "To Do": ("10000", "new"),
    "Planning": ("10010", "indeterminate"),
    "Review": ("10011", "indeterminate"),
    "In Review": ("10012", "indeterminate"),
    "Done": ("10001", "done"),
}
DONE_STATUSES = [s for s, (_, cat) in STATUSES.items() if cat == "done"]
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
RESOLUTIONS = {
    "Done": ("10000", "Work has been completed on this issue."),
    "Won't Do": ("10001", "This issue won't be actioned."),
    "Duplicate": ("10002", "The problem is a duplicate of an existing issue."),
    "Declined": ("10003", "This issue was not approved."),
    "Cannot Reproduce": ("10004", "All attempts at reproducing this issue failed."),
}
ISSUE_TYPES = {  # name -> (id, hierarchy level)
    "Incident": ("10004", 0),
    "Service Request": ("10005", 0),
    "Problem": ("10006", 0),
    "Change": ("10007", 0),
    "Initiative": ("10020", 2),
    "Epic": ("10000", 1),
    "Task": ("10002", 0),
    "Sub-task": ("10003", -1),
    "Bug": ("10008", 0),
    "Story": ("10009", 0),
}
PROJECTS = {
    "OPS": ("10000", "IT Service Desk", "service_desk"),
    "PMO": ("10001", "Project Portfolio", "business"),
    "WEB": ("10002", "Web Platform", "software"),
}
COMPONENT_IDS: dict[str, str] = {}

CF_START, CF_POINTS, CF_BUDGET, CF_COST = (
    "customfield_10015",
    "customfield_10016",
    "customfield_10100",
    "customfield_10101",
)
CF_CSAT, CF_TTR, CF_TTFR = "customfield_10034", "customfield_10030", "customfield_10031"
NAMES = {
    "summary": "Summary",
    "issuetype": "Issue Type",
    "parent": "Parent",
    "project": "Project",
    "status": "Status",
    "statuscategorychangedate": "Status Category Changed",
    "priority": "Priority",
    "labels": "Labels",
    "components": "Components",
    "assignee": "Assignee",
    "reporter": "Reporter",
    "created": "Created",
    "updated": "Updated",
    "resolutiondate": "Resolved",
    "resolution": "Resolution",
    "duedate": "Due date",
    "timeoriginalestimate": "Original estimate",
    "timeestimate": "Remaining Estimate",
    "timespent": "Time Spent",
    CF_START: "Start date",
    CF_POINTS: "Story point estimate",
    CF_BUDGET: "Budget",
    CF_COST: "Actual cost",
    CF_TTR: "Time to resolution",
    CF_TTFR: "Time to first response",
    CF_CSAT: "Satisfaction",
}
# What JSM puts in its SLA fields on issues of a project that is not a service project.
JSM_MISSING = {
    "errorMessage": "The service project you are trying to view does not exist.",
    "i18nErrorMessage": {
        "i18nKey": "sd.jsm.agent.servicedesk.error.servicedesk.missing",
        "parameters": [],
    },
}
# JSM SLA goals by priority, business hours on Mon-Fri 08:00-17:00 Europe/Berlin:
# (time to first response, time to resolution); the same as rules/00-calendars-and-slas.yaml,
# so the native SLA values and bridge's own computation can be compared.
JSM_GOALS = {
    "Highest": (0.5, 4),
    "High": (2, 8),
    "Medium": (8, 24),
    "Low": (8, 45),
    "Lowest": (8, 45),
}


@dataclass
class JiraIssue:
    project: str
    type: str
    summary: str
    life: Life
    snap: Snapshot
    reporter: Person
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    due: date | None = None
    start: date | None = None
    points: float | None = None
    budget: float | None = None
    actual_cost: float | None = None
    estimate_s: int | None = None
    remaining_s: int | None = None
    spent_s: int | None = None
    parent: JiraIssue | None = None
    satisfaction: int | None = None
    jsm: bool = False
    id: str = ""
    key: str = ""


def round_to(value: float, step: float) -> float:
    return round(value / step) * step


# ============================================================================================
# Jira OPS: a JSM service desk
# ============================================================================================

OPS_TOPICS: dict[str, list[tuple[str, str, list[str]]]] = {
    # type -> [(component, summary, labels)]
    "Incident": [
        ("Email", "Outlook cannot connect to Exchange", []),
        ("Email", "Shared mailbox {team} not syncing", []),
        ("Email", "Emails to external domains bounce", []),
        ("Email", "Calendar invites not delivered", []),
        ("VPN", "VPN drops every few minutes", ["network"]),
        ("VPN", "Cannot connect to VPN from home office", ["network"]),
        ("VPN", "VPN client certificate expired", ["network", "access"]),
        ("Network", "Wi-Fi unstable on floor {floor}", ["network"]),
        ("Network", "Switch port down in meeting room {room}", ["network"]),
        ("Network", "Slow network in {site} office", ["network"]),
        ("ERP", "ERP order entry times out", []),
        ("ERP", "Invoice posting fails with error {code}", []),
        ("ERP", "ERP batch job {job} failed overnight", []),
        ("HR Portal", "HR portal login loop", ["access"]),
        ("HR Portal", "Payslip download shows a blank page", []),
        ("Workplace", "Laptop does not boot after update", []),
        ("Workplace", "Docking station does not detect monitors", []),
        ("Workplace", "Printer on floor {floor} offline", []),
    ],
    "Service Request": [
        ("Workplace", "Access to SharePoint site {team}", ["access"]),
        ("VPN", "VPN access for {person}", ["access", "network"]),
        ("ERP", "ERP role {role} for {person}", ["access"]),
        ("Workplace", "Reset MFA for {person}", ["access"]),
        ("Workplace", "Onboarding: laptop and accounts for {person}", ["onboarding"]),
        ("Workplace", "Offboarding: {person}", ["onboarding", "access"]),
        ("Workplace", "Second monitor for {person}", ["hardware"]),
        ("Workplace", "New headset", ["hardware"]),
        ("Workplace", "Install Visio", []),
        ("Email", "New distribution list {team}", []),
        ("HR Portal", "HR portal manager role for {person}", ["access"]),
    ],
    "Problem": [
        ("VPN", "Recurring VPN disconnects after client update", ["network"]),
        ("ERP", "ERP batch failures at month end", []),
        ("Email", "Mail delivery delays during peak hours", []),
        ("Network", "Wi-Fi roaming issues in building B", ["network"]),
        ("HR Portal", "HR portal sessions expire early", []),
        ("Workplace", "Docking stations lose displays after firmware 1.4", []),
    ],
    "Change": [
        ("VPN", "Upgrade VPN concentrator firmware", ["network"]),
        ("Email", "Install Exchange cumulative update CU{n}", []),
        ("HR Portal", "Rotate TLS certificate for HR portal", []),
        ("ERP", "ERP kernel update", []),
        ("Network", "Replace core switch in rack {n}", ["network"]),
        ("Workplace", "Roll out Windows feature update to pilot group", []),
    ],
}
FILLERS = {
    "team": ["Finance", "Sales DACH", "Marketing", "Procurement", "Legal", "Controlling"],
    "floor": ["1", "2", "3", "4"],
    "room": ["Alster", "Elbe", "Isar", "Spree", "Main"],
    "site": ["Hamburg", "Munich", "Berlin", "Cologne"],
    "code": ["F5 702", "M7 018", "KI 235", "FF 747"],
    "job": ["ZFI_CLOSE", "ZSD_BILLING", "ZMM_MRP"],
    "role": ["AP clerk", "Buyer", "Controller", "Sales rep"],
    "n": ["12", "14", "3", "7"],
}


def fill(rng: random.Random, template: str) -> str:
    out = template
    for key, values in FILLERS.items():
        if "{" + key + "}" in out:
            out = out.replace("{" + key + "}", rng.choice(values))
    if "{person}" in out:
        out = out.replace("{person}", rng.choice(EMPLOYEES).name)
    return out


def ops_issue(rng: random.Random, itype: str, created: datetime) -> JiraIssue:
    component, template, labels = rng.choice(OPS_TOPICS[itype])
    reporter = rng.choice(EMPLOYEES)
    labels = list(labels)
    if rng.random() < (0.7 if itype in ("Incident", "Service Request") else 0.3):
        labels.insert(0, "bau")
    if reporter in VIPS and rng.random() < 0.8:
        labels.append("vip")
    weights = {
        "Incident": [8, 25, 45, 17, 5],
        "Service Request": [2, 10, 50, 30, 8],
        "Problem": [5, 35, 45, 15, 0],
        "Change": [0, 25, 55, 20, 0],
    }[itype]
    priority = rng.choices(list(PRIORITIES), weights)[0]
    if "vip" in labels and priority in ("Medium", "Low", "Lowest"):
        priority = "High"
    life = Life(created, "Open", None, priority)
    agent = rng.choice(OPS_AGENTS)
    satisfaction_at = None
    due = None
    if itype in ("Incident", "Service Request"):
        _service_life(rng, life, agent, reporter)
    elif itype == "Problem":
        t = life.move(
            next_work_time(rng, created.date() + timedelta(days=rng.randint(0, 3))),
            "In Progress",
            agent,
        )
        life.assign(t - 3 * MIN, agent, agent)
        t = next_work_time(rng, t.date() + timedelta(days=rng.randint(10, 80)))
        t = life.move(t, "Resolved", agent, "Done")
        life.move(t + timedelta(days=7, minutes=rng.randint(0, 600)), "Closed", AUTOMATION)
    else:  # Change: implemented on its planned date (the due date)
        due = next_work_time(rng, created.date() + timedelta(days=rng.randint(5, 21))).date()
        life.assign(created + timedelta(minutes=rng.randint(20, 300)), agent, agent)
        if rng.random() < 0.1:
            life.move(next_work_time(rng, created.date() + DAY), "Cancelled", agent, "Declined")
        else:
            slip = rng.choice([0, 0, 0, 0, 1, 3])
            t = life.move(
                next_work_time(rng, due + timedelta(days=slip), 17, 20), "In Progress", agent
            )
            t = life.move(t + timedelta(minutes=rng.randint(45, 240)), "Resolved", agent, "Done")
            life.move(next_work_time(rng, t.date() + timedelta(days=2)), "Closed", agent)
    if itype == "Service Request" and rng.random() < 0.15:
        labels = [x for x in labels if x != "bau"]
    snap = life.cut()
    issue = JiraIssue(
        "OPS",
        itype,
        fill(rng, template),
        life,
        snap,
        reporter,
        labels,
        [component],
        due=due,
        jsm=itype in ("Incident", "Service Request"),
    )
    _ops_effort(rng, issue)
    if (
        issue.jsm
        and snap.status in ("Resolved", "Closed")
        and snap.resolution == "Done"
        and rng.random() < 0.6
    ):
        breached = any(c["breached"] for c in _ttr_cycles(issue)[0])
        weights = [15, 20, 25, 25, 15] if breached else [3, 4, 10, 33, 50]
        rating = rng.choices([1, 2, 3, 4, 5], weights)[0]
        satisfaction_at = (snap.resolved_at or created) + timedelta(minutes=rng.randint(20, 2880))
        if satisfaction_at <= EXPORT_AT:
            issue.satisfaction = rating
            issue.snap = life.cut(extra_update=ms(satisfaction_at))
    return issue


def _service_life(rng: random.Random, life: Life, agent: Person, reporter: Person) -> None:
    """Incident / service request: first response, pauses for the customer, resolve, close."""
    ttfr, ttr = (g * H for g in JSM_GOALS[life.priority])
    f = rng.uniform(0.05, 0.9) if rng.random() < 0.88 else rng.uniform(1.05, 2.5)
    first = b_add(life.created, ttfr * f) + timedelta(seconds=rng.randrange(1, 300))
    if rng.random() < 0.05:
        first += timedelta(days=rng.randint(2, 20))  # lost in the queue
    life.assign(first - timedelta(minutes=rng.randint(1, 15)), agent, agent)
    if rng.random() < 0.04:
        life.move(first, "Cancelled", agent, "Won't Do")
        return
    if life.priority in ("Medium", "Low") and rng.random() < 0.06:
        life.reprioritise(first + timedelta(minutes=rng.randint(5, 90)), "High", agent)
    t = life.move(first, "In Progress", agent)
    g = rng.uniform(0.1, 0.95) if rng.random() < 0.8 else rng.uniform(1.05, 3.0)
    target, consumed = ttr * g, ttfr * f
    if target <= consumed:
        target = consumed + 15 * MIN
    pauses = rng.choices([0, 1, 2], [60, 30, 10])[0]
    for offset in sorted(consumed + (target - consumed) * rng.random() for _ in range(pauses)):
        t = life.move(b_add(t, offset - consumed), "Waiting for customer", agent)
        wait = timedelta(hours=rng.uniform(0.5, 50))
        if rng.random() < 0.12:
            wait = timedelta(days=rng.uniform(10, 45))  # the customer went quiet
        t = life.move(t + wait, "In Progress", AUTOMATION)
        consumed = offset
    if rng.random() < 0.15:
        other = rng.choice([a for a in OPS_AGENTS if a != agent])
        life.assign(b_add(t, (target - consumed) / 3), other, agent)
        agent = other
    if rng.random() < 0.03:
        life.move(b_add(t, (target - consumed) / 2), "Cancelled", agent, "Duplicate")
        return
    t = life.move(b_add(t, target - consumed), "Resolved", agent, "Done")
    if rng.random() < 0.08:  # reopened from the portal
        t = life.move(t + timedelta(hours=rng.uniform(2, 40)), "In Progress", reporter, "")
        t = life.move(b_add(t, timedelta(hours=rng.uniform(0.5, 6))), "Resolved", agent, "Done")
    if rng.random() < 0.65:
        life.move(t + timedelta(days=3, minutes=rng.randint(0, 300)), "Closed", AUTOMATION)


def _ops_effort(rng: random.Random, issue: JiraIssue) -> None:
    snap, life = issue.snap, issue.life
    end = snap.resolved_at or EXPORT_AT
    if snap.status == "Open" or (snap.status == "Cancelled" and issue.type != "Change"):
        return
    if issue.type == "Change":
        estimate = rng.choice([2, 4, 4, 6, 8, 16])
        issue.estimate_s = hours_s(estimate)
        if snap.status in ("Resolved", "Closed"):
            issue.spent_s = hours_s(estimate * rng.uniform(0.6, 1.6))
            issue.remaining_s = 0
        else:
            issue.remaining_s = issue.estimate_s
        return
    if rng.random() < (0.75 if issue.type == "Problem" else 0.55):
        worked = b_elapsed(life.created, end) / H
        share = 0.15 if issue.type == "Problem" else 0.35
        issue.spent_s = max(900, hours_s(min(worked * share * rng.uniform(0.4, 1.4), 40)) or 0)
        issue.remaining_s = 0


def _ttr_cycles(issue: JiraIssue) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """JSM "Time to resolution": starts at creation and when a resolution is cleared, pauses
    in Waiting for customer, stops on Resolved / Closed / Cancelled."""
    goal = JSM_GOALS[issue.snap.priority][1] * H
    done = set(DONE_STATUSES)
    completed: list[dict[str, Any]] = []
    start: datetime | None = issue.life.created
    pauses: list[tuple[datetime, datetime]] = []
    paused_at: datetime | None = None
    for e in issue.snap.events:
        if e.kind != "status":
            continue
        if start is None:
            if e.old in done and e.new not in done:
                start, pauses, paused_at = e.at, [], None
            continue
        if e.old == "Waiting for customer" and paused_at is not None:
            pauses.append((paused_at, e.at))
            paused_at = None
        if e.new == "Waiting for customer":
            paused_at = e.at
        if e.new in done:
            completed.append(sla_cycle(start, e.at, pauses, goal))
            start = None
    ongoing = None
    if start is not None:
        if paused_at is not None:
            pauses.append((paused_at, EXPORT_AT))
        ongoing = sla_cycle(start, None, pauses, goal, paused=paused_at is not None)
    return completed, ongoing


def _ttfr_cycles(issue: JiraIssue) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """JSM "Time to first response": from creation until the issue first leaves Open."""
    goal = JSM_GOALS[issue.snap.priority][0] * H
    for e in issue.snap.events:
        if e.kind == "status" and e.old == "Open":
            return [sla_cycle(issue.life.created, e.at, [], goal)], None
    return [], sla_cycle(issue.life.created, None, [], goal)


def clock(
    start: datetime, end: datetime, pauses: Sequence[tuple[datetime, datetime]], goal: timedelta
) -> tuple[timedelta, datetime]:
    """Business time on the clock in [start, end) outside pauses, and when it reaches ``goal``
    (after ``end``: as if it ran on from there unpaused)."""
    running: list[tuple[datetime, datetime]] = []
    cursor = start
    for p_start, p_end in pauses:
        if p_start > cursor:
            running.append((cursor, min(p_start, end)))
        cursor = max(cursor, p_end)
    if cursor < end:
        running.append((cursor, end))
    elapsed = sum((b_elapsed(a, b) for a, b in running), timedelta())
    left = goal
    for a, b in running:
        span = b_elapsed(a, b)
        if span >= left:
            return elapsed, b_add(a, left)
        left -= span
    return elapsed, b_add(max(end, cursor), left)


def sla_cycle(
    start: datetime,
    stop: datetime | None,
    pauses: Sequence[tuple[datetime, datetime]],
    goal: timedelta,
    *,
    paused: bool = False,
) -> dict[str, Any]:
    end = stop or EXPORT_AT
    elapsed, breach = clock(start, end, pauses, goal)
    cycle: dict[str, Any] = {"startTime": jira_date_dto(start)}
    if stop is not None:
        cycle["stopTime"] = jira_date_dto(stop)
    cycle["breachTime"] = jira_date_dto(breach)
    cycle["breached"] = elapsed > goal
    if stop is None:
        s, e = work_window(to_local(EXPORT_AT).date())
        cycle["paused"] = paused
        cycle["withinCalendarHours"] = is_workday(to_local(EXPORT_AT).date()) and s <= EXPORT_AT < e
    cycle["goalDuration"] = jira_duration_dto(goal)
    cycle["elapsedTime"] = jira_duration_dto(elapsed)
    cycle["remainingTime"] = jira_duration_dto(goal - elapsed)
    return cycle


def jsm_sla(issue: JiraIssue, metric: str, name: str, cycles: Any) -> dict[str, Any]:
    completed, ongoing = cycles
    value: dict[str, Any] = {
        "id": metric,
        "name": name,
        "_links": {"self": f"{JIRA_SITE}/rest/servicedeskapi/request/{issue.id}/sla/{metric}"},
        "completedCycles": completed,
    }
    if ongoing is not None:
        value["ongoingCycle"] = ongoing
    value["slaDisplayFormat"] = "NEW_SLA_FORMAT"
    return value


def make_ops(rng: random.Random) -> list[JiraIssue]:
    kinds = ["Incident"] * 60 + ["Service Request"] * 42 + ["Problem"] * 8 + ["Change"] * 10
    rng.shuffle(kinds)
    recent = LAST_DAY - timedelta(days=14)
    issues = []
    for index, kind in enumerate(kinds):
        if index < 40 and kind in ("Incident", "Service Request"):
            created = random_instant(rng, recent, LAST_DAY)
        else:
            created = random_instant(rng, FIRST_DAY, LAST_DAY - timedelta(days=10))
        issues.append(ops_issue(rng, kind, created))
    return issues


# ============================================================================================
# Jira PMO: the project portfolio
# ============================================================================================


@dataclass
class Plan:
    """One planned piece of work; ``finish`` is when it really ends (maybe after the export)."""

    summary: str
    start: date
    due: date | None
    slip: int  # days the real finish lies after the due date
    overrun: float  # actual effort / planned effort
    external: float = 0.0  # planned non-labour cost, EUR
    external_factor: float = 1.0
    cancelled: date | None = None
    labels: tuple[str, ...] = ()
    tasks: tuple[tuple[str, float | None], ...] = ()  # (summary, estimate hours)
    children: tuple[Plan, ...] = ()


def d(text: str) -> date:
    return date.fromisoformat(text)


def initiative(
    summary: str, start: str, due: str, slip: int, labels: tuple[str, ...], *epics: Plan,
    cancelled: str | None = None,
) -> Plan:  # fmt: skip
    return Plan(
        summary, d(start), d(due), slip, 1.0, labels=labels, children=epics,
        cancelled=d(cancelled) if cancelled else None,
    )  # fmt: skip


def epic(
    summary: str, start: str, due: str, slip: int, overrun: float, external: float,
    external_factor: float, *tasks: tuple[str, float | None], cancelled: str | None = None,
) -> Plan:  # fmt: skip
    return Plan(
        summary, d(start), d(due), slip, overrun, external, external_factor, tasks=tasks,
        cancelled=d(cancelled) if cancelled else None,
    )  # fmt: skip


# Initiative: summary, start, due, days late, labels, epics.
# Epic: summary, start, due, days late, effort overrun, external cost (EUR), its overrun, tasks
# as (summary, estimate hours or None when nobody estimated).
# fmt: off
PORTFOLIO = [
    initiative(
        "ERP upgrade to S/4HANA", "2026-01-12", "2026-09-30", 75, ("erp", "capex"),
        epic("ERP: system conversion", "2026-01-12", "2026-05-29", 18, 1.25, 60000, 1.15,
             ("Sizing and landscape design", 60), ("Custom code remediation", 240),
             ("Conversion dry run", 120)),
        epic("ERP: data migration", "2026-03-02", "2026-07-31", 45, 1.45, 25000, 1.3,
             ("Migration cockpit setup", 40), ("Master data cleansing", 160),
             ("Mock migration 2", None)),
        epic("ERP: user training and cutover", "2026-07-01", "2026-09-30", 60, 1.1, 15000, 1.0,
             ("Train-the-trainer sessions", 80), ("Cutover plan", 40), ("Cutover rehearsal", 40),
             ("Hypercare rota", 24)),
    ),
    initiative(
        "Customer portal relaunch", "2026-02-02", "2026-10-30", 35, ("portal",),
        epic("Portal: UX research and design", "2026-02-02", "2026-04-17", -3, 0.9, 20000, 0.95,
             ("Customer interviews", 40), ("Design system update", 80)),
        epic("Portal: content migration", "2026-05-04", "2026-10-30", 20, 1.0, 8000, 1.1,
             ("Content inventory", 32), ("Migrate product pages", 120), ("SEO review", None),
             ("Redirect map", 16)),
    ),
    initiative(
        "Office move Munich", "2026-03-02", "2026-07-31", -7, ("facilities",),
        epic("Munich: fit-out and furniture", "2026-03-02", "2026-06-30", -6, 0.95, 90000, 0.97,
             ("Furniture tender", 24), ("Fit-out supervision", 80)),
        epic("Munich: network and AV", "2026-04-13", "2026-07-17", 0, 1.05, 30000, 1.02,
             ("Structured cabling", 40), ("Meeting room AV", 32), ("Go-live weekend", 16)),
    ),
    initiative(
        "ISO 27001 certification", "2026-04-06", "2026-12-18", 10, ("compliance",),
        epic("ISMS: risk assessment and SoA", "2026-04-06", "2026-07-10", 7, 1.1, 12000, 1.0,
             ("Asset inventory", 40), ("Risk workshops", 60), ("Statement of applicability", 24)),
        epic("ISMS: policies and controls", "2026-06-01", "2026-11-27", 10, 1.2, 5000, 1.0,
             ("Access control policy", 24), ("Supplier security reviews", 60),
             ("Awareness training", 60), ("Backup restore tests", None)),
        epic("ISMS: certification audit", "2026-11-09", "2026-12-18", 0, 1.0, 18000, 1.0,
             ("Stage 1 audit", 24), ("Stage 2 audit", 40)),
    ),
    initiative(
        "Data warehouse migration", "2026-05-04", "2026-08-28", 42, ("data",),
        epic("DWH: platform setup", "2026-05-04", "2026-06-26", 12, 1.3, 30000, 1.2,
             ("Account and network setup", 24), ("CI/CD for dbt", 40)),
        epic("DWH: migrate reporting pipelines", "2026-06-15", "2026-08-28", 42, 1.6, 10000, 1.4,
             ("Sales pipelines", 120), ("Finance pipelines", 160), ("Decommission old ETL", 32)),
    ),
    initiative(
        "Mobile app", "2026-11-16", "2027-06-30", 0, ("portal",),
        epic("Mobile: discovery", "2026-11-16", "2026-12-18", 0, 1.0, 0, 1.0,
             ("Vendor shortlist", None)),
    ),
    initiative(
        "Print fleet consolidation", "2026-03-16", "2026-06-30", 0, (),
        epic("Printers: site survey", "2026-03-16", "2026-04-30", 0, 1.0, 4000, 0.9,
             ("Survey Hamburg", 16), cancelled="2026-04-20"),
        cancelled="2026-04-20",
    ),
]
# fmt: on

SUBTASKS = {
    "Custom code remediation": [("Fix pricing user exits", 40), ("Retire unused Z reports", 16)],
    "Master data cleansing": [("Vendor duplicates", 24)],
    "Migrate product pages": [("Product pages A-M", 40), ("Product pages N-Z", 40)],
    "Risk workshops": [("Workshop IT operations", 8), ("Workshop HR", 8)],
    "Finance pipelines": [("GL balances", 40), ("Cost centre reports", 32)],
    "Supplier security reviews": [("Review payroll provider", 12)],
}


def finish_of(plan: Plan) -> date:
    base = plan.due or plan.start + timedelta(days=60)
    return base + timedelta(days=plan.slip)


def pmo_life(
    rng: random.Random,
    created: datetime,
    start: date,
    finish: date,
    owner: Person,
    *,
    planning: bool,
    cancelled: date | None = None,
) -> Life:
    life = Life(created, "To Do", owner, "Medium")
    if planning:
        plan_at = min(created + timedelta(days=rng.randint(1, 10)), next_work_time(rng, start) - H)
        life.move(plan_at, "Planning", owner)
    if cancelled is not None:
        if cancelled > start:
            life.move(next_work_time(rng, start), "In Progress", owner)
        life.move(next_work_time(rng, cancelled), "Cancelled", owner, "Won't Do")
        return life
    t = life.move(next_work_time(rng, start), "In Progress", owner)
    review = finish - timedelta(days=rng.randint(1, 6))
    if review > t.date():
        t = life.move(next_work_time(rng, review), "Review", owner)
        if not planning and rng.random() < 0.2:
            back = t.date() + timedelta(days=1)
            if back < finish:
                t = life.move(next_work_time(rng, back), "In Progress", owner)
                life.move(next_work_time(rng, max(back, finish - DAY)), "Review", owner)
    life.move(next_work_time(rng, finish), "Done", owner, "Done")
    return life


def work_done(start: date, finish: date, actual: float) -> float:
    """Hours worked by the export on a job of ``actual`` hours between start and finish."""
    begin = datetime.combine(start, time(8), UTC)
    end = datetime.combine(finish, time(17), UTC)
    if begin >= EXPORT_AT:
        return 0.0
    if end <= EXPORT_AT:
        return actual
    return actual * (EXPORT_AT - begin) / (end - begin)


def make_pmo(rng: random.Random) -> list[JiraIssue]:
    issues: list[JiraIssue] = []
    lead = PMO_PEOPLE[0]
    for init_plan in PORTFOLIO:
        owner = rng.choice(PMO_PEOPLE)
        created = max(
            next_work_time(rng, init_plan.start - timedelta(days=rng.randint(14, 40))),
            next_work_time(rng, FIRST_DAY),
        )
        life = pmo_life(
            rng,
            created,
            init_plan.start,
            finish_of(init_plan),
            owner,
            planning=True,
            cancelled=init_plan.cancelled,
        )
        initiative = JiraIssue(
            "PMO",
            "Initiative",
            init_plan.summary,
            life,
            life.cut(),
            lead,
            labels=list(init_plan.labels),
            due=init_plan.due,
            start=init_plan.start,
        )
        issues.append(initiative)
        epics = []
        for epic_plan in init_plan.children:
            epic_owner = rng.choice(PMO_PEOPLE)
            e_created = before_export(
                rng,
                created + timedelta(days=rng.randint(1, 6), minutes=rng.randint(0, 400)),
                created,
            )
            e_life = pmo_life(
                rng,
                e_created,
                epic_plan.start,
                finish_of(epic_plan),
                epic_owner,
                planning=True,
                cancelled=epic_plan.cancelled,
            )
            epic = JiraIssue(
                "PMO",
                "Epic",
                epic_plan.summary,
                e_life,
                e_life.cut(),
                owner,
                labels=list(init_plan.labels),
                due=epic_plan.due,
                start=epic_plan.start,
                parent=initiative,
            )
            issues.append(epic)
            epics.append(epic)
            members = _pmo_tasks(rng, epic, epic_plan, e_created)
            issues.extend(members)
            _roll_up(epic, members, epic_plan, rng)
        initiative.budget = round_to(sum(e.budget or 0 for e in epics) * 1.1, 1000) or 350000.0
        spent = [e.actual_cost for e in epics if e.actual_cost is not None]
        initiative.actual_cost = round(sum(spent), 2) if spent else None
        for item in (initiative, *epics):
            _cost_updates(rng, item, lead)
    return issues


def _cost_updates(rng: random.Random, issue: JiraIssue, controller: Person) -> None:
    """Finance books the actual cost at each month start, and a last time after closing."""
    if issue.actual_cost is None or issue.start is None:
        return
    begin = datetime.combine(issue.start, time(8), UTC)
    end = issue.snap.resolved_at or EXPORT_AT
    bookings: list[datetime] = []
    month = date(issue.start.year + issue.start.month // 12, issue.start.month % 12 + 1, 1)
    while (at := next_work_time(rng, month, 9, 12)) < end:
        bookings.append(at)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    if issue.snap.resolved_at is not None:
        bookings.append(issue.snap.resolved_at + timedelta(days=rng.randint(5, 20), hours=2))
    old: float | None = None
    for at in bookings:
        share = min(1.0, (at - begin) / (end - begin)) if at < end else 1.0
        value = round(issue.actual_cost * share, 2)
        if value and value != old and at <= EXPORT_AT:
            issue.life.set_custom(at, CF_COST, old, value, controller)
            old = value
    if old != issue.actual_cost:  # the last booking has not happened yet: the field shows it
        issue.actual_cost = old
    issue.snap = issue.life.cut()


def _pmo_tasks(
    rng: random.Random, epic: JiraIssue, plan: Plan, created: datetime
) -> list[JiraIssue]:
    out: list[JiraIssue] = []
    span = ((plan.due or plan.start + timedelta(days=60)) - plan.start).days
    n = max(1, len(plan.tasks))
    for index, (summary, estimate) in enumerate(plan.tasks):
        person = rng.choice(PMO_PEOPLE + DEVS[:2])
        start = plan.start + timedelta(days=span * index // (n + 1))
        due = plan.start + timedelta(days=span * (index + 2) // (n + 1))
        slip = int(plan.slip * rng.uniform(0.6, 1.2)) + rng.randint(-3, 3)
        finish = due + timedelta(days=slip)
        finish = max(finish, start + timedelta(days=2))
        t_created = max(
            created + H, next_work_time(rng, start - timedelta(days=rng.randint(0, 12)))
        )
        t_created = before_export(rng, t_created, created)
        life = pmo_life(
            rng, t_created, start, finish, person, planning=False, cancelled=plan.cancelled
        )
        task = JiraIssue(
            "PMO",
            "Task",
            summary,
            life,
            life.cut(),
            epic.life.assignee0 or person,
            labels=list(epic.labels),
            due=due,
            start=start,
            parent=epic,
        )
        if rng.random() < 0.12:
            task.due = None  # nobody set one
        overrun = plan.overrun * rng.uniform(0.85, 1.15)
        _track(task, estimate, overrun, start, finish)
        out.append(task)
        for sub_summary, sub_estimate in SUBTASKS.get(summary, []):
            s_start = start + timedelta(days=rng.randint(0, 5))
            s_finish = max(s_start + timedelta(days=1), finish - timedelta(days=rng.randint(0, 10)))
            s_life = pmo_life(
                rng,
                t_created + timedelta(minutes=rng.randint(5, 90)),
                s_start,
                s_finish,
                person,
                planning=False,
            )
            sub = JiraIssue(
                "PMO",
                "Sub-task",
                sub_summary,
                s_life,
                s_life.cut(),
                person,
                labels=list(epic.labels),
                due=s_finish - timedelta(days=slip // 2) if slip > 0 else s_finish,
                parent=task,
            )
            _track(sub, sub_estimate, overrun * rng.uniform(0.9, 1.1), s_start, s_finish)
            out.append(sub)
    return out


def _track(
    issue: JiraIssue, estimate: float | None, overrun: float, start: date, finish: date
) -> None:
    """Original estimate, time spent and remaining estimate as Jira holds them at the export."""
    status = issue.snap.status
    issue.estimate_s = hours_s(estimate)
    base = estimate if estimate is not None else 40.0
    actual = base * overrun
    if status == "Cancelled":
        started = any(e.kind == "status" and e.new == "In Progress" for e in issue.snap.events)
        worked = min(work_done(start, finish, actual), actual * 0.3) if started else 0.0
        issue.spent_s = hours_s(worked) or None
        issue.remaining_s = 0 if issue.estimate_s is not None else None
        return
    if status == "Done":
        issue.spent_s = hours_s(actual)
        issue.remaining_s = 0
        return
    if status == "To Do":
        issue.remaining_s = issue.estimate_s  # Jira copies the estimate until work is logged
        return
    worked = work_done(start, finish, actual)
    issue.spent_s = hours_s(worked) or None
    if issue.estimate_s is None:
        issue.remaining_s = 0 if issue.spent_s else None  # Jira's auto-adjust with no estimate
    else:
        issue.remaining_s = hours_s(max(actual - worked, 0.0))


def _roll_up(epic: JiraIssue, members: list[JiraIssue], plan: Plan, rng: random.Random) -> None:
    """Epics carry their whole scope's effort (the PMO estimates at epic level) and money."""
    estimates = [m.estimate_s for m in members if m.estimate_s is not None]
    spent = [m.spent_s for m in members if m.spent_s is not None]
    remaining = [m.remaining_s for m in members if m.remaining_s is not None]
    epic.estimate_s = sum(estimates) if estimates else None
    epic.spent_s = sum(spent) if spent else None
    epic.remaining_s = sum(remaining) if remaining else None
    planned_hours = (epic.estimate_s or 0) / 3600
    if planned_hours or plan.external:
        epic.budget = round_to(planned_hours * HOURLY_RATE_JIRA + plan.external, 100)
    spent_hours = (epic.spent_s or 0) / 3600
    if spent_hours:
        progress = (
            1.0 if epic.snap.status == "Done" else min(1.0, spent_hours / max(planned_hours, 1))
        )
        external = plan.external * plan.external_factor * progress
        epic.actual_cost = round(spent_hours * HOURLY_RATE_JIRA + external + rng.uniform(0, 900), 2)


# ============================================================================================
# Jira WEB: a software team
# ============================================================================================

WEB_EPICS = [
    # summary, start, due, slip, parent initiative summary, labels
    (
        "Portal: self-service account pages",
        "2026-03-02",
        "2026-09-25",
        30,
        "Customer portal relaunch",
        (),
    ),
    ("Portal: search", "2026-05-04", "2026-10-16", 25, "Customer portal relaunch", ()),
    ("Checkout performance", "2026-01-19", "2026-04-30", -4, None, ()),
    ("Accessibility (WCAG 2.2) fixes", "2026-06-01", "2026-11-30", 0, None, ("maintenance",)),
    ("Payment provider migration", "2026-09-07", "2026-12-18", 10, None, ()),
]
WEB_STORIES = {
    "Portal: self-service account pages": [
        "Change billing address",
        "Download invoices as PDF",
        "Manage users of my company",
        "Two-factor setup page",
        "Notification preferences",
        "Delete my account",
    ],
    "Portal: search": [
        "Search as you type",
        "Facets for product category",
        "Search analytics events",
        "Synonyms management",
        "No-results page",
    ],
    "Checkout performance": [
        "Lazy-load payment widgets",
        "Cache shipping rates",
        "Reduce bundle size of checkout",
        "Server-side render order summary",
    ],
    "Accessibility (WCAG 2.2) fixes": [
        "Focus order in checkout",
        "Contrast of secondary buttons",
        "Screen reader labels for icons",
        "Target size of pagination links",
        "Skip link on every page",
    ],
    "Payment provider migration": [
        "Adapter for new PSP API",
        "Refund flow on new PSP",
        "Webhook signature checks",
        "Dual-run reconciliation report",
        "Switch-over feature flag",
    ],
}
WEB_BUGS = [
    ("Frontend", "Cart badge shows stale count"),
    ("Backend", "Order export misses VAT id"),
    ("API", "GET /orders returns 500 for empty filter"),
    ("Frontend", "Date picker broken in Safari"),
    ("Checkout", "Coupon applied twice on retry"),
    ("Backend", "Password reset mail not sent"),
    ("API", "Rate limit header missing"),
    ("Frontend", "Footer links 404 on EN site"),
    ("Checkout", "PayPal return URL drops session"),
    ("Backend", "Nightly sitemap job times out"),
    ("Frontend", "Layout shift on product page"),
    ("API", "Pagination cursor skips items"),
    ("Checkout", "Address autocomplete wrong for Austria"),
    ("Backend", "Search index not updated after price change"),
    ("Frontend", "Cookie banner covers checkout button"),
    ("API", "Token refresh race condition"),
    ("Backend", "Invoice PDF has wrong rounding"),
    ("Frontend", "Dark mode icons invisible"),
    ("Checkout", "Gift card balance not shown"),
    ("API", "Webhook retries flood logs"),
]
WEB_TASKS = [
    ("Upgrade Node.js to 22 LTS", ["maintenance"], 16),
    ("Renew TLS certificates for shop", ["maintenance", "bau"], 4),
    ("Bump dependencies (monthly)", ["maintenance", "bau"], 8),
    ("Rotate API keys for PSP sandbox", ["bau"], 2),
    ("Set up error budget dashboard", [], 24),
    ("Clean up feature flags", ["maintenance"], 12),
    ("Migrate CI runners to ARM", [], 32),
    ("Quarterly access review", ["bau"], 3),
    ("Load test before Black Friday", [], 24),
    ("Archive old release branches", ["maintenance"], 2),
]


def dev_life(
    rng: random.Random,
    created: datetime,
    start: datetime | None,
    cycle_days: float,
    dev: Person,
    priority: str,
) -> Life:
    life = Life(created, "To Do", None, priority)
    if start is None:
        return life
    life.assign(start - timedelta(minutes=rng.randint(1, 600)), dev, dev)
    t = life.move(start, "In Progress", dev)
    t = life.move(b_add(t, timedelta(hours=cycle_days * 8 * 0.8)), "In Review", dev)
    if rng.random() < 0.25:
        t = life.move(b_add(t, timedelta(hours=rng.uniform(1, 6))), "In Progress", rng.choice(DEVS))
        t = life.move(b_add(t, timedelta(hours=rng.uniform(2, 10))), "In Review", dev)
    life.move(b_add(t, timedelta(hours=cycle_days * 8 * 0.2 + 1)), "Done", rng.choice(DEVS), "Done")
    return life


def make_web(rng: random.Random, pmo: list[JiraIssue]) -> list[JiraIssue]:
    issues: list[JiraIssue] = []
    initiatives = {i.summary: i for i in pmo if i.type == "Initiative"}
    po = DEVS[0]
    for summary, start_s, due_s, slip, parent_name, labels in WEB_EPICS:
        start, due = d(start_s), d(due_s)
        created = next_work_time(rng, max(FIRST_DAY, start - timedelta(days=rng.randint(7, 20))))
        life = Life(created, "To Do", po, "Medium")
        if start <= LAST_DAY:
            life.move(next_work_time(rng, start), "In Progress", po)
        finish = due + timedelta(days=slip)
        life.move(next_work_time(rng, finish), "Done", po, "Done")
        epic = JiraIssue(
            "WEB",
            "Epic",
            summary,
            life,
            life.cut(),
            PMO_PEOPLE[0],
            labels=list(labels),
            due=due,
            start=start,
            parent=initiatives.get(parent_name) if parent_name else None,
        )
        issues.append(epic)
        stories = WEB_STORIES[summary]
        span = (finish - start).days
        for index, story in enumerate(stories):
            points = rng.choice([1, 2, 3, 3, 5, 5, 8, 13])
            cycle = points * rng.uniform(0.8, 2.2)
            target = start + timedelta(days=span * (index + 1) // len(stories))
            begin = next_work_time(rng, max(start, target - timedelta(days=round(cycle * 1.4) + 1)))
            s_created = max(
                created + H, next_work_time(rng, begin.date() - timedelta(days=rng.randint(1, 25)))
            )
            s_created = before_export(rng, s_created, created)
            begin = max(begin, s_created + H)
            dev = rng.choice(DEVS)
            s_life = dev_life(rng, s_created, begin, cycle, dev, "Medium")
            item = JiraIssue(
                "WEB",
                "Story",
                story,
                s_life,
                s_life.cut(),
                po,
                labels=list(labels),
                components=[rng.choice(["Frontend", "Backend", "API"])],
                points=float(points),
                parent=epic,
            )
            if rng.random() < 0.3 and item.snap.status != "To Do":
                item.spent_s = hours_s(
                    points * rng.uniform(3, 7) * (1 if item.snap.status == "Done" else 0.5)
                )
                item.remaining_s = 0 if item.snap.status == "Done" else hours_s(points * 2)
            issues.append(item)
    a11y = next(i for i in issues if i.summary.startswith("Accessibility"))
    for index, (component, summary) in enumerate(WEB_BUGS):
        created = random_instant(
            rng,
            LAST_DAY - timedelta(days=21) if index % 3 == 1 else FIRST_DAY,
            LAST_DAY,
            office=0.95,
        )
        priority = rng.choices(list(PRIORITIES), [5, 25, 45, 20, 5])[0]
        wait = timedelta(
            hours=rng.uniform(1, 24) if priority in ("Highest", "High") else rng.uniform(8, 400)
        )
        begin = None if rng.random() < 0.1 else b_add(created, wait)
        dev = rng.choice(DEVS)
        life = dev_life(rng, created, begin, rng.uniform(0.2, 4), dev, priority)
        labels = ["bau"] if rng.random() < 0.5 else []
        if component == "Frontend" and index % 3 == 0:
            labels.append("maintenance")
        bug = JiraIssue(
            "WEB",
            "Bug",
            summary,
            life,
            life.cut(),
            rng.choice(EMPLOYEES + DEVS),
            labels=labels,
            components=[component],
            parent=a11y if "Dark mode" in summary or "Layout shift" in summary else None,
        )
        if rng.random() < 0.5 and bug.snap.status != "To Do":
            bug.spent_s = hours_s(rng.uniform(0.5, 12))
            bug.remaining_s = 0
        issues.append(bug)
    for index, (summary, labels, estimate) in enumerate(WEB_TASKS):
        created = random_instant(
            rng,
            LAST_DAY - timedelta(days=14) if index % 3 == 0 else FIRST_DAY,
            LAST_DAY,
            office=1.0,
        )
        begin = b_add(created, timedelta(hours=rng.uniform(4, 200)))
        dev = rng.choice(DEVS)
        life = dev_life(rng, created, begin, estimate / 8 * rng.uniform(0.8, 1.8), dev, "Medium")
        task = JiraIssue(
            "WEB",
            "Task",
            summary,
            life,
            life.cut(),
            dev,
            labels=list(labels),
            components=[rng.choice(["Backend", "API"])],
        )
        task.estimate_s = hours_s(estimate)
        if task.snap.status == "Done":
            task.spent_s, task.remaining_s = hours_s(estimate * rng.uniform(0.7, 1.8)), 0
        elif task.snap.status == "To Do":
            task.remaining_s = task.estimate_s
        else:
            task.spent_s = hours_s(estimate * rng.uniform(0.2, 0.9))
            task.remaining_s = hours_s(estimate * rng.uniform(0.2, 0.8))
        issues.append(task)
    return issues


# ============================================================================================
# Jira rendering
# ============================================================================================


def j_user(person: Person | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {
        "self": f"{JIRA_SITE}/rest/api/3/user?accountId={person.account_id}",
        "accountId": person.account_id,
        "displayName": person.name,
        "active": True,
        "timeZone": "Europe/Berlin",
        "accountType": "app" if person is AUTOMATION else "atlassian",
    }


def j_status(name: str) -> dict[str, Any]:
    status_id, category = STATUSES[name]
    cat = CATEGORY[category]
    return {
        "self": f"{JIRA_SITE}/rest/api/3/status/{status_id}",
        "description": "",
        "name": name,
        "id": status_id,
        "statusCategory": {"self": f"{JIRA_SITE}/rest/api/3/statuscategory/{cat['id']}", **cat},
    }


def j_priority(name: str) -> dict[str, Any]:
    pid = PRIORITIES[name]
    return {
        "self": f"{JIRA_SITE}/rest/api/3/priority/{pid}",
        "iconUrl": f"{JIRA_SITE}/images/icons/priorities/{name.lower()}.svg",
        "name": name,
        "id": pid,
    }


def j_type(name: str) -> dict[str, Any]:
    tid, level = ISSUE_TYPES[name]
    return {
        "self": f"{JIRA_SITE}/rest/api/3/issuetype/{tid}",
        "id": tid,
        "name": name,
        "subtask": level < 0,
        "hierarchyLevel": level,
    }


def j_component(name: str) -> dict[str, Any]:
    cid = COMPONENT_IDS.setdefault(name, str(10100 + len(COMPONENT_IDS)))
    return {"self": f"{JIRA_SITE}/rest/api/3/component/{cid}", "id": cid, "name": name}


def _number_text(value: float | None) -> str | None:
    return None if value is None else f"{value:g}" if value == int(value) else f"{value:.2f}"


def j_change(e: Event) -> list[dict[str, Any]]:
    if e.kind.startswith("customfield_"):
        return [{
            "field": NAMES[e.kind], "fieldtype": "custom", "fieldId": e.kind,
            "from": None, "fromString": _number_text(e.old),
            "to": None, "toString": _number_text(e.new),
        }]  # fmt: skip
    base = {"field": e.kind, "fieldtype": "jira", "fieldId": e.kind}
    if e.kind == "status":
        return [
            {
                **base,
                "from": STATUSES[e.old][0],
                "fromString": e.old,
                "to": STATUSES[e.new][0],
                "toString": e.new,
            }
        ]
    if e.kind == "resolution":
        old = RESOLUTIONS[e.old][0] if e.old else None
        new = RESOLUTIONS[e.new][0] if e.new else None
        return [{**base, "from": old, "fromString": e.old, "to": new, "toString": e.new}]
    if e.kind == "priority":
        return [
            {
                **base,
                "from": PRIORITIES[e.old],
                "fromString": e.old,
                "to": PRIORITIES[e.new],
                "toString": e.new,
            }
        ]
    old, new = e.old, e.new
    return [
        {
            **base,
            "from": old.account_id if old else None,
            "fromString": old.name if old else None,
            "to": new.account_id if new else None,
            "toString": new.name if new else None,
            "tmpFromAccountId": old.account_id if old else None,
            "tmpToAccountId": new.account_id if new else None,
        }
    ]


def j_changelog(issue: JiraIssue) -> dict[str, Any]:
    histories: list[dict[str, Any]] = []
    for e in issue.snap.events:
        last = histories[-1] if histories else None
        if last is not None and last["_at"] == e.at and last["_by"] is e.author:
            last["items"].extend(j_change(e))
            continue
        histories.append({"_at": e.at, "_by": e.author, "items": j_change(e)})
    out = []
    for h in histories:
        out.append(
            {
                "id": "",
                "author": j_user(h["_by"]),
                "created": jira_dt(h["_at"]),
                "items": h["items"],
                "_at": h["_at"],
            }
        )
    return {"startAt": 0, "maxResults": len(out), "total": len(out), "histories": out}


def j_issue(issue: JiraIssue) -> dict[str, Any]:
    snap = issue.snap
    resolution = None
    if snap.resolution:
        rid, text = RESOLUTIONS[snap.resolution]
        resolution = {
            "self": f"{JIRA_SITE}/rest/api/3/resolution/{rid}",
            "id": rid,
            "description": text,
            "name": snap.resolution,
        }
    pid, pname, ptype = PROJECTS[issue.project]
    f: dict[str, Any] = {
        "summary": issue.summary,
        "issuetype": j_type(issue.type),
    }
    if issue.parent is not None:
        parent = issue.parent
        f["parent"] = {
            "id": parent.id,
            "key": parent.key,
            "self": f"{JIRA_SITE}/rest/api/3/issue/{parent.id}",
            "fields": {
                "summary": parent.summary,
                "status": j_status(parent.snap.status),
                "priority": j_priority(parent.snap.priority),
                "issuetype": j_type(parent.type),
            },
        }
    f.update(
        {
            "project": {
                "self": f"{JIRA_SITE}/rest/api/3/project/{pid}",
                "id": pid,
                "key": issue.project,
                "name": pname,
                "projectTypeKey": ptype,
                "simplified": False,
            },
            "status": j_status(snap.status),
            "statuscategorychangedate": jira_dt(snap.category_changed),
            "priority": j_priority(snap.priority),
            "labels": sorted(set(issue.labels)),
            "components": [j_component(c) for c in issue.components],
            "assignee": j_user(snap.assignee),
            "reporter": j_user(issue.reporter),
            "created": jira_dt(issue.life.created),
            "updated": jira_dt(snap.updated),
            "resolutiondate": jira_dt(snap.resolved_at) if snap.resolved_at else None,
            "resolution": resolution,
            "duedate": issue.due.isoformat() if issue.due else None,
            "timeoriginalestimate": issue.estimate_s,
            "timeestimate": issue.remaining_s,
            "timespent": issue.spent_s,
            CF_START: issue.start.isoformat() if issue.start else None,
            CF_POINTS: issue.points,
            CF_BUDGET: issue.budget,
            CF_COST: issue.actual_cost,
        }
    )
    if issue.project == "OPS":
        f[CF_TTR] = (
            jsm_sla(issue, "2", "Time to resolution", _ttr_cycles(issue)) if issue.jsm else None
        )
        f[CF_TTFR] = (
            jsm_sla(issue, "1", "Time to first response", _ttfr_cycles(issue))
            if issue.jsm
            else None
        )
        f[CF_CSAT] = {"rating": issue.satisfaction} if issue.satisfaction is not None else None
    else:
        f[CF_TTR] = JSM_MISSING
        f[CF_TTFR] = JSM_MISSING
        f[CF_CSAT] = None
    return {
        "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
        "id": issue.id,
        "self": f"{JIRA_SITE}/rest/api/3/issue/{issue.id}",
        "key": issue.key,
        "fields": f,
        "changelog": j_changelog(issue),
    }


def touch_worklogs(rng: random.Random, issues: Iterable[JiraIssue]) -> None:
    """Logging work updates an issue: open items with time spent were touched lately."""
    for issue in issues:
        if issue.spent_s and STATUSES[issue.snap.status][1] != "done":
            at = next_work_time(rng, LAST_DAY - timedelta(days=rng.randint(3, 9)), 10, 17)
            issue.snap = issue.life.cut(extra_update=ms(at))


def number_jira(issues: list[JiraIssue]) -> None:
    """Ids in creation order across the site, keys in creation order per project."""
    counters: dict[str, int] = {}
    for seq, issue in enumerate(sorted(issues, key=lambda i: i.life.created)):
        issue.id = str(10001 + seq)
        counters[issue.project] = counters.get(issue.project, 0) + 1
        issue.key = f"{issue.project}-{counters[issue.project]}"


def write_jira(issues: list[JiraIssue], rng: random.Random) -> list[Path]:
    number_jira(issues)
    rendered = {i.key: j_issue(i) for i in sorted(issues, key=lambda i: int(i.id))}
    histories = [h for doc in rendered.values() for h in doc["changelog"]["histories"]]
    for seq, h in enumerate(sorted(histories, key=lambda h: h["_at"])):
        h["id"] = str(20001 + seq)
    for h in histories:
        del h["_at"]
    written = []
    for project in ("OPS", "PMO", "WEB"):
        docs = sorted(
            (doc for key, doc in rendered.items() if key.startswith(project + "-")),
            key=lambda doc: int(doc["key"].split("-")[1]),
        )
        pages = [docs[i : i + PAGE_SIZE] for i in range(0, len(docs), PAGE_SIZE)]
        for number, page in enumerate(pages, 1):
            body: dict[str, Any] = {"issues": page, "names": NAMES, "isLast": number == len(pages)}
            if number < len(pages):
                token = f"{project}:{number}:{rng.getrandbits(64):016x}".encode()
                body["nextPageToken"] = "Ch0jU3RyaW5n" + base64.urlsafe_b64encode(
                    token
                ).decode().rstrip("=")
            path = OUT / "jira" / f"{project.lower()}-page-{number}.json"
            write_json(path, body)
            written.append(path)
    return written


# ============================================================================================
# ServiceNow
# ============================================================================================

SERVICES = {"email": "Email", "vpn": "VPN", "erp": "ERP", "hr-portal": "HR Portal"}
SN_GOALS = {"1": 4, "2": 8, "3": 24, "4": 45, "5": 45}  # resolution, business hours (as rules/)
PRIORITY_MATRIX = {
    (1, 1): 1,
    (1, 2): 2,
    (2, 1): 2,
    (1, 3): 3,
    (2, 2): 3,
    (3, 1): 3,
    (2, 3): 4,
    (3, 2): 4,
    (3, 3): 5,
}


class SysIds:
    """Stable 32-hex sys_ids for named things (users, groups, services)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.known: dict[str, str] = {}

    def new(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def of(self, name: str) -> str:
        if name not in self.known:
            self.known[name] = self.new()
            if name.startswith("group:"):
                SN_NAMES[self.known[name]] = name.removeprefix("group:")
        return self.known[name]


def ref(table: str, sys_id: str | None) -> dict[str, str] | str:
    if not sys_id:
        return ""
    return {"link": f"{SN_INSTANCE}/api/now/table/{table}/{sys_id}", "value": sys_id}


def user_ref(person: Person | None) -> dict[str, str] | str:
    return ref("sys_user", person.sys_id) if person else ""


@dataclass
class SnContext:
    rng: random.Random
    ids: SysIds

    def group(self, name: str) -> dict[str, str] | str:
        return ref("sys_user_group", self.ids.of("group:" + name))

    def service(self, key: str | None) -> dict[str, str] | str:
        return ref("cmdb_ci_service", self.ids.of("service:" + key)) if key else ""


def sn_common(
    ctx: SnContext,
    table: str,
    number: str,
    sys_id: str,
    created: datetime,
    updated: datetime,
    mods: int,
    by: str,
) -> dict[str, Any]:
    return {
        "sys_id": sys_id,
        "number": number,
        "sys_class_name": table,
        "sys_created_on": sn_dt(created),
        "sys_created_by": by,
        "sys_updated_on": sn_dt(updated),
        "sys_updated_by": by,
        "sys_mod_count": str(mods),
        "sys_tags": "",
        "sys_domain": {
            "link": f"{SN_INSTANCE}/api/now/table/sys_user_group/global",
            "value": "global",
        },
        "sys_domain_path": "/",
    }


def login(person: Person | None) -> str:
    return person.name.lower().replace(" ", ".") if person else "system"


INCIDENT_TOPICS = [
    ("email", "software", "Mailbox over quota, cannot send"),
    ("email", "software", "Outlook keeps asking for password"),
    ("email", "network", "Mails to partner domain delayed"),
    ("vpn", "network", "VPN tunnel drops on hotel Wi-Fi"),
    ("vpn", "network", "VPN login fails with MFA timeout"),
    ("vpn", "software", "VPN client crashes on macOS 15"),
    ("erp", "software", "ERP report ZFI_OPEN_ITEMS runs for hours"),
    ("erp", "database", "ERP lock table overflow"),
    ("erp", "software", "Cannot post goods receipt"),
    ("hr-portal", "software", "Leave request button greyed out"),
    ("hr-portal", "inquiry", "Where do I find my tax certificate?"),
    ("hr-portal", "software", "HR portal shows wrong manager"),
    (None, "hardware", "Laptop fan very loud"),
    (None, "hardware", "Keyboard missing keys"),
    (None, "network", "No network on desk 3.14"),
    (None, "inquiry", "How do I book a meeting room?"),
]


def sn_incident(ctx: SnContext, index: int, opened: datetime) -> dict[str, Any]:
    rng = ctx.rng
    service, category, summary = rng.choice(INCIDENT_TOPICS)
    impact, urgency = (
        rng.choices([1, 2, 3], [15, 45, 40])[0],
        rng.choices([1, 2, 3], [20, 45, 35])[0],
    )
    priority = str(PRIORITY_MATRIX[(impact, urgency)])
    caller, agent = rng.choice(EMPLOYEES), rng.choice(SN_AGENTS)
    group = {"vpn": "Network Operations", "erp": "Application Support"}.get(
        service or "", rng.choice(["Service Desk", "Workplace Services"])
    )
    goal = SN_GOALS[priority] * H
    events: list[tuple[datetime, str]] = [(opened, "1")]
    t_assign = b_add(opened, goal * rng.uniform(0.02, 0.2)) + timedelta(seconds=rng.randrange(600))
    events.append((t_assign, "2"))
    holds: list[tuple[datetime, datetime]] = []
    cancelled = rng.random() < 0.05
    g = rng.uniform(0.1, 0.95) if rng.random() < 0.8 else rng.uniform(1.05, 3.5)
    t = t_assign
    work_left = goal * g
    hold_reason = ""
    if rng.random() < 0.3:
        t_hold = b_add(t, work_left / 2)
        wait = (
            timedelta(hours=rng.uniform(2, 72))
            if rng.random() < 0.75
            else timedelta(days=rng.uniform(8, 30))
        )
        events += [(t_hold, "3"), (t_hold + wait, "2")]
        holds.append((t_hold, t_hold + wait))
        hold_reason = rng.choice(["1", "1", "4"])
        t, work_left = t_hold + wait, work_left / 2
    t_end = b_add(t, work_left)
    if cancelled:
        events.append((t_end, "8"))
    else:
        events.append((t_end, "6"))
        events.append((t_end + timedelta(days=5, minutes=rng.randint(0, 60)), "7"))
    kept = [(at, s) for at, s in events if at <= EXPORT_AT]
    state = kept[-1][1]
    at_of = {s: at for at, s in kept}
    resolved = at_of.get("6")
    closed = at_of.get("7") or at_of.get("8")
    # The resolution SLA pauses while on hold; sla_due is where its clock reaches the goal.
    stop = resolved or closed
    seen_holds = [(a, min(b, EXPORT_AT)) for a, b in holds if a <= EXPORT_AT]
    elapsed, due = clock(opened, stop or EXPORT_AT, seen_holds, goal)
    made = elapsed <= goal
    worked = None
    if state in ("6", "7") and rng.random() < 0.6:
        worked = timedelta(minutes=15 * rng.randint(1, 24))
    sys_id = ctx.ids.new()
    rec = sn_common(
        ctx,
        "incident",
        f"INC{10001 + index:07d}",
        sys_id,
        opened + timedelta(seconds=rng.randint(5, 60)),
        kept[-1][0],
        len(kept) + rng.randint(1, 6),
        login(caller),
    )
    rec.update(
        {
            "short_description": summary,
            "description": summary + ".",
            "state": state,
            "incident_state": state,
            "active": "false" if state in ("7", "8") else "true",
            "hold_reason": hold_reason if state == "3" else "",
            "impact": str(impact),
            "urgency": str(urgency),
            "priority": priority,
            "severity": "3",
            "category": category,
            "subcategory": "",
            "contact_type": rng.choice(
                ["phone", "email", "self-service", "self-service", "walk-in"]
            ),
            "caller_id": user_ref(caller),
            "opened_by": user_ref(caller),
            "opened_at": sn_dt(opened),
            "assignment_group": ctx.group(group),
            "assigned_to": user_ref(agent) if state != "1" else "",
            "business_service": ctx.service(service),
            "business_service.name": SERVICES.get(service or "", ""),
            "resolved_at": sn_dt(resolved),
            "resolved_by": user_ref(agent) if resolved else "",
            "closed_at": sn_dt(closed),
            "closed_by": user_ref(agent) if closed else "",
            "close_code": ("Solved (Permanently)" if rng.random() < 0.8 else "Solved (Work Around)")
            if resolved
            else "",
            "close_notes": "Fixed and confirmed with the caller." if resolved else "",
            "calendar_duration": sn_duration(resolved - opened) if resolved else "",
            "business_duration": sn_duration(b_elapsed(opened, resolved)) if resolved else "",
            "calendar_stc": str(int((resolved - opened).total_seconds())) if resolved else "",
            "business_stc": str(int(b_elapsed(opened, resolved).total_seconds()))
            if resolved
            else "",
            "time_worked": sn_duration(worked),
            "reassignment_count": str(rng.choice([0, 0, 0, 1, 1, 2])),
            "reopen_count": "0",
            "made_sla": "true" if made else "false",
            "sla_due": sn_dt(due),
            "due_date": "",
            "escalation": "0",
            "approval": "not requested",
            "knowledge": "false",
            "parent": "",
            "problem_id": "",
            "company": "",
            "location": "",
            "work_notes": "",
            "comments": "",
        }
    )
    return rec


RITM_ITEMS = [
    ("Standard laptop", None, 5),
    ("Adobe Acrobat Pro", None, 2),
    ("VPN access", "vpn", 1),
    ("ERP user role", "erp", 3),
    ("New mailbox", "email", 1),
    ("Shared mailbox access", "email", 1),
    ("HR portal manager access", "hr-portal", 2),
    ("Mobile phone", None, 7),
    ("Monitor 27 inch", None, 4),
]


def sn_ritm(ctx: SnContext, index: int, opened: datetime) -> dict[str, Any]:
    rng = ctx.rng
    item, service, days = rng.choice(RITM_ITEMS)
    requested_for = rng.choice(EMPLOYEES)
    agent = rng.choice(SN_AGENTS)
    approved = opened + timedelta(hours=rng.uniform(0.5, 8))
    started = b_add(approved, timedelta(hours=rng.uniform(0.5, 8)))
    due = b_add(opened, timedelta(hours=8 * days))
    share = rng.uniform(0.1, 0.6) if rng.random() < 0.8 else rng.uniform(1.1, 2.5)
    done_at = b_add(started, timedelta(hours=8 * days * share))
    outcome = rng.choices(["3", "4", "7"], [85, 10, 5])[0]
    if outcome != "3":
        done_at = started + timedelta(hours=rng.uniform(2, 48))
    if done_at <= EXPORT_AT:
        state, stage, closed = (
            outcome,
            "complete" if outcome == "3" else "Request Cancelled",
            done_at,
        )
    elif started <= EXPORT_AT:
        state, stage, closed = "2", "fulfillment", None
    elif approved <= EXPORT_AT:
        state, stage, closed = "1", "request_approved", None
    else:
        state, stage, closed = "1", "waiting_for_approval", None
    updated = closed or (
        started if state == "2" else approved if stage == "request_approved" else opened
    )
    request_id = ctx.ids.new()
    rec = sn_common(
        ctx,
        "sc_req_item",
        f"RITM{10001 + index:07d}",
        ctx.ids.new(),
        opened,
        updated,
        rng.randint(2, 9),
        login(requested_for),
    )
    rec.update(
        {
            "short_description": item,
            "state": state,
            "stage": stage,
            "active": "false" if closed else "true",
            "approval": "requested" if stage == "waiting_for_approval" else "approved",
            "priority": "4",
            "impact": "3",
            "urgency": "3",
            "request": ref("sc_request", request_id),
            "cat_item": ref("sc_cat_item", ctx.ids.of("cat:" + item)),
            "quantity": "1",
            "price": "0",
            "requested_for": user_ref(requested_for),
            "opened_by": user_ref(requested_for),
            "opened_at": sn_dt(opened),
            "assignment_group": ctx.group(
                "Workplace Services" if service is None else "Application Support"
            ),
            "assigned_to": user_ref(agent) if state != "1" else "",
            "business_service": ctx.service(service),
            "business_service.name": SERVICES.get(service or "", ""),
            "due_date": sn_dt(due),
            "closed_at": sn_dt(closed),
            "closed_by": user_ref(agent) if closed else "",
            "time_worked": sn_duration(timedelta(minutes=15 * rng.randint(1, 12)))
            if closed and rng.random() < 0.6
            else "",
            "made_sla": "true" if (closed or EXPORT_AT) <= due else "false",
            "sla_due": sn_dt(due),
            "calendar_duration": sn_duration(closed - opened) if closed else "",
            "business_duration": sn_duration(b_elapsed(opened, closed)) if closed else "",
            "parent": "",
            "comments": "",
            "work_notes": "",
        }
    )
    return rec


PROBLEMS = [
    ("vpn", "VPN gateway drops sessions under load"),
    ("erp", "ERP lock table overflows at month end"),
    ("email", "Mail transport queue backs up every Monday"),
    ("hr-portal", "HR portal SSO token clock skew"),
    ("vpn", "MFA push timeouts for VPN logins"),
    ("erp", "Slow open-items report"),
    ("email", "Quota warnings not sent"),
    (None, "Desk ports flap on floor 3"),
    ("hr-portal", "Manager hierarchy sync fails"),
    ("erp", "Goods receipt posting deadlock"),
]


def sn_problem(
    ctx: SnContext, index: int, opened: datetime, incidents: list[dict[str, Any]]
) -> dict[str, Any]:
    rng = ctx.rng
    service, summary = PROBLEMS[index]
    agent = rng.choice(SN_AGENTS)
    steps = [(opened, "101")]
    t = opened
    for state, (lo, hi) in (
        ("102", (0.5, 3)),
        ("103", (5, 40)),
        ("104", (5, 45)),
        ("106", (2, 20)),
        ("107", (5, 10)),
    ):
        t = next_work_time(rng, t.date() + timedelta(days=int(rng.uniform(lo, hi)) or 1))
        steps.append((t, state))
    kept = [s for s in steps if s[0] <= EXPORT_AT]
    state = kept[-1][1]
    at_of = {s: at for at, s in kept}
    resolved, closed = at_of.get("106"), at_of.get("107")
    impact, urgency = rng.choice([1, 2, 2, 3]), rng.choice([1, 2, 3])
    priority = str(PRIORITY_MATRIX[(impact, urgency)])
    first = next(
        (i for i in incidents if i["business_service.name"] == SERVICES.get(service or "", "")),
        None,
    )
    rec = sn_common(
        ctx,
        "problem",
        f"PRB{40001 + index:07d}",
        ctx.ids.new(),
        opened,
        kept[-1][0],
        len(kept) * 2 + rng.randint(0, 5),
        login(agent),
    )
    rec.update(
        {
            "short_description": summary,
            "description": summary + ".",
            "state": state,
            "active": "false" if state == "107" else "true",
            "impact": str(impact),
            "urgency": str(urgency),
            "priority": priority,
            "category": "software" if service else "network",
            "known_error": "true" if state in ("104", "106", "107") else "false",
            "first_reported_by_task": ref("task", first["sys_id"]) if first else "",
            "opened_by": user_ref(agent),
            "opened_at": sn_dt(opened),
            "assignment_group": ctx.group(
                "Application Support" if service == "erp" else "Network Operations"
            ),
            "assigned_to": user_ref(agent),
            "business_service": ctx.service(service),
            "business_service.name": SERVICES.get(service or "", ""),
            "cause_notes": "Root cause identified." if state in ("104", "106", "107") else "",
            "fix_notes": "Fix deployed." if resolved else "",
            "resolved_at": sn_dt(resolved),
            "resolved_by": user_ref(agent) if resolved else "",
            "closed_at": sn_dt(closed),
            "closed_by": user_ref(agent) if closed else "",
            "calendar_duration": sn_duration(closed - opened) if closed else "",
            "business_duration": sn_duration(b_elapsed(opened, closed)) if closed else "",
            "time_worked": sn_duration(timedelta(hours=rng.randint(2, 30)))
            if rng.random() < 0.7
            else "",
            "made_sla": "true",
            "sla_due": "",
            "due_date": "",
            "work_notes": "",
        }
    )
    return rec


CHANGES = [
    ("vpn", "Upgrade VPN gateway to 7.4.3"),
    ("email", "Apply Exchange security update"),
    ("erp", "ERP support package SP27"),
    ("hr-portal", "Renew HR portal SAML certificate"),
    (None, "Replace access switches floor 2"),
    ("erp", "Add application server to ERP"),
    ("email", "Enable DMARC reject policy"),
    ("vpn", "Migrate VPN users to new IdP group"),
    (None, "Firmware update for printers"),
    ("hr-portal", "HR portal release 26.2"),
    ("erp", "Archive FI documents 2019"),
    (None, "Patch hypervisors (monthly)"),
    ("email", "Increase mailbox quotas"),
    ("vpn", "Split tunnelling for Teams"),
    (None, "Datacenter UPS battery replacement"),
]


def sn_change(ctx: SnContext, index: int, opened: datetime) -> dict[str, Any]:
    rng = ctx.rng
    service, summary = CHANGES[index]
    ctype = rng.choices(["normal", "standard", "emergency"], [60, 30, 10])[0]
    if opened > EXPORT_AT - timedelta(days=10):
        ctype = "normal"  # the recent ones still wait for approval or their window
    agent = rng.choice(SN_AGENTS)
    lead_days = {"normal": rng.randint(7, 21), "standard": rng.randint(1, 5), "emergency": 0}[ctype]
    planned_start = (
        next_work_time(rng, opened.date() + timedelta(days=lead_days), 17, 21)
        if ctype != "emergency"
        else opened + timedelta(hours=rng.uniform(1, 4))
    )
    planned_start = ms(planned_start).replace(microsecond=0, second=0)
    planned_end = planned_start + timedelta(hours=rng.choice([1, 2, 4, 6]))
    steps = [(opened, "-5")]
    if ctype == "normal":
        steps += [(opened + timedelta(hours=rng.uniform(2, 30)), "-4")]
        steps += [(steps[-1][0] + timedelta(days=rng.uniform(1, 4)), "-3")]
    steps += [(min(planned_start - H, steps[-1][0] + timedelta(days=rng.uniform(0.5, 2))), "-2")]
    canceled = rng.random() < 0.1
    work_start = planned_start + timedelta(minutes=rng.randint(0, 30))
    work_end = planned_end + timedelta(
        minutes=rng.randint(-30, 120) if rng.random() < 0.85 else rng.randint(120, 600)
    )
    if canceled:
        steps += [(steps[-1][0] + timedelta(hours=rng.uniform(2, 48)), "4")]
    else:
        steps += [
            (work_start, "-1"),
            (work_end, "0"),
            (work_end + timedelta(days=rng.uniform(0.5, 3)), "3"),
        ]
    for i in range(1, len(steps)):  # approvals can be quick: keep the steps in order
        if steps[i][0] <= steps[i - 1][0]:
            steps[i] = (steps[i - 1][0] + MIN, steps[i][1])
    if not canceled:
        work_start, work_end = steps[-3][0], steps[-2][0]
    kept = [s for s in steps if s[0] <= EXPORT_AT]
    state = kept[-1][1]
    at_of = {s: at for at, s in kept}
    closed = at_of.get("3") or at_of.get("4")
    started = at_of.get("-1")
    ended = at_of.get("0")
    rec = sn_common(
        ctx,
        "change_request",
        f"CHG{30001 + index:07d}",
        ctx.ids.new(),
        opened,
        kept[-1][0],
        len(kept) * 2 + rng.randint(0, 4),
        login(agent),
    )
    rec.update(
        {
            "short_description": summary,
            "description": summary + ".",
            "type": ctype,
            "state": state,
            "active": "false" if closed else "true",
            "phase": "requested",
            "approval": "requested" if state in ("-5", "-4", "-3") else "approved",
            "risk": rng.choice(["2", "3", "3", "4"]),
            "impact": rng.choice(["2", "3", "3"]),
            "urgency": "2" if ctype == "emergency" else "3",
            "priority": "2" if ctype == "emergency" else rng.choice(["3", "4"]),
            "category": "Network" if service in ("vpn", None) else "Software",
            "requested_by": user_ref(agent),
            "opened_by": user_ref(agent),
            "opened_at": sn_dt(opened),
            "assignment_group": ctx.group(
                "Network Operations" if service in ("vpn", None) else "Application Support"
            ),
            "assigned_to": user_ref(agent),
            "business_service": ctx.service(service),
            "business_service.name": SERVICES.get(service or "", ""),
            "start_date": sn_dt(planned_start),
            "end_date": sn_dt(planned_end),
            "work_start": sn_dt(started),
            "work_end": sn_dt(work_end if ended else None),
            "close_code": ("successful" if work_end <= planned_end + H else "successful_issues")
            if state == "3"
            else "",
            "close_notes": "Implemented as planned." if state == "3" else "",
            "closed_at": sn_dt(closed),
            "closed_by": user_ref(agent) if closed else "",
            "on_hold": "false",
            "time_worked": sn_duration(work_end - work_start) if ended else "",
            "made_sla": "true",
            "sla_due": "",
            "due_date": "",
            "work_notes": "",
        }
    )
    return rec


SN_PROJECTS = [
    # name, planned start, planned end, real finish (maybe after the export), effort overrun,
    # closing state, budget = planned cost x factor (None: no budget entered), tasks; a tuple
    # is a phase with its child tasks.
    (
        "CRM consolidation",
        "2026-01-19",
        "2026-06-26",
        "2026-07-10",
        1.18,
        "3",
        1.0,
        [
            "Requirements",
            "Data model mapping",
            "Integration with ERP",
            "Data migration",
            "User training",
            "Decommission old CRM",
        ],
    ),
    (
        "Service desk tooling refresh",
        "2026-02-02",
        "2026-05-29",
        "2026-05-22",
        0.9,
        "3",
        1.1,
        ["Tool selection", "Configuration", "Knowledge base migration", "Reporting", "Go-live"],
    ),
    (
        "Datacenter exit phase 1",
        "2026-03-02",
        "2026-10-30",
        "2026-12-18",
        1.3,
        "3",
        1.05,
        [
            "Inventory and wave plan",
            ("Migration waves", ["Wave 1 migration", "Wave 2 migration", "Wave 3 migration"]),
            "Contract termination",
            "Lessons learned",
        ],
    ),
    (
        "Endpoint management rollout",
        "2026-04-13",
        "2026-12-11",
        "2026-12-11",
        1.0,
        "3",
        1.1,
        [
            "Pilot group",
            "Compliance policies",
            ("Rollout", ["Rollout Hamburg", "Rollout Munich"]),
            "Retire old MDM",
        ],
    ),
    (
        "HR portal single sign-on",
        "2026-06-01",
        "2026-09-25",
        "2026-10-09",
        1.12,
        "3",
        1.1,
        ["IdP configuration", "Attribute mapping", "User acceptance test", "Cutover"],
    ),
    (
        "Network segmentation",
        "2026-07-06",
        "2027-02-26",
        "2027-04-30",
        1.25,
        "3",
        None,
        [
            "Design zones",
            "Firewall rules",
            "Migrate office VLANs",
            "Migrate server VLANs",
            "Monitoring",
            "Penetration test",
        ],
    ),
    (
        "Email archiving replacement",
        "2026-11-16",
        "2027-03-31",
        "2027-03-31",
        1.0,
        "3",
        1.1,
        ["Vendor evaluation", "Archive import", "Retention policies"],
    ),
    (
        "Legacy fax server retirement",
        "2026-03-16",
        "2026-05-29",
        "2026-04-24",
        1.0,
        "4",
        1.1,
        ["Usage analysis", "Move fax numbers to cloud fax", "Shut down server"],
    ),
]
NO_EFFORT_PROJECT = "Legacy fax server retirement"  # planned effort never entered
CLOSED = ("3", "4", "7")


@dataclass
class PlannedTask:
    """A pm_project / pm_project_task row before rendering (planned_task fields)."""

    name: str
    sys_id: str
    start: datetime
    end: datetime
    state: str
    created: datetime
    updated: datetime
    assignee: Person
    work_start: datetime | None = None
    work_end: datetime | None = None
    effort: timedelta | None = None
    work_effort: timedelta | None = None
    remaining: timedelta | None = None
    percent: float = 0.0
    cost: float | None = None
    work_cost: float = 0.0
    parent: tuple[str, str] = ("", "")  # (table, sys_id)
    number: str = ""
    critical: bool = False


def _leaf(
    ctx: SnContext,
    name: str,
    slot: tuple[date, date],
    shift: int,
    overrun: float,
    cancel_at: date | None,
    created: datetime,
    with_effort: bool,
) -> PlannedTask:
    rng = ctx.rng
    t_start, t_end = slot
    plan_start = from_local(datetime.combine(workday(t_start), time(8)))
    plan_end = from_local(datetime.combine(workday(t_end, -1), time(17)))
    started = workday(t_start + timedelta(days=rng.randint(0, 3)))
    real_start = from_local(datetime.combine(started, time(9, 30)))
    real_end = from_local(datetime.combine(workday(t_end + timedelta(days=shift)), time(16)))
    effort = timedelta(hours=rng.choice([24, 40, 60, 80, 120, 160, 240]))
    actual = effort * overrun * rng.uniform(0.85, 1.15)
    task = PlannedTask(
        name,
        ctx.ids.new(),
        plan_start,
        plan_end,
        "-5",
        created,
        created,
        rng.choice(SN_AGENTS + SN_PMS),
    )
    stop = from_local(datetime.combine(cancel_at, time(16))) if cancel_at else None
    if stop is not None and real_end > stop:  # the project was stopped before this finished
        if real_start < stop:
            task.state, task.work_start, task.work_end, share = "4", real_start, stop, 0.3
        else:
            task.state, share = "7", 0.0
        task.updated = stop
    elif real_end <= EXPORT_AT:
        task.state, task.work_start, task.work_end, share = "3", real_start, real_end, 1.0
        task.updated = real_end
    elif real_start <= EXPORT_AT:
        task.state, task.work_start, share = (
            "2",
            real_start,
            (EXPORT_AT - real_start) / (real_end - real_start),
        )
        task.updated = EXPORT_AT - timedelta(hours=rng.uniform(1, 120))
    else:
        share = 0.0
        task.state = "1" if t_start - timedelta(days=14) <= LAST_DAY else "-5"
    task.percent = 100.0 if task.state == "3" else round(min(95.0, share * 100), 1)
    if share:
        task.work_effort = actual * share
        task.work_cost = round(task.work_effort / H * HOURLY_RATE_SN, 2)
    if with_effort:
        task.effort = effort
        task.cost = round(effort / H * HOURLY_RATE_SN, 2)
    if task.state in CLOSED:
        task.remaining = timedelta()
    elif with_effort:
        task.remaining = max(actual - (task.work_effort or timedelta()), timedelta(hours=4))
    task.updated = max(task.updated, created)
    return task


def _sum_td(values: Iterable[timedelta | None]) -> timedelta | None:
    known = [v for v in values if v is not None]
    return sum(known, timedelta()) if known else None


def _roll(parent: PlannedTask, children: Sequence[PlannedTask], closing: str | None = None) -> None:
    """planned_task rollup: a parent's dates, effort, cost and progress come from its children."""
    parent.start = min(c.start for c in children)
    parent.end = max(c.end for c in children)
    starts = [c.work_start for c in children if c.work_start]
    parent.work_start = min(starts) if starts else None
    states = [c.state for c in children]
    done = all(s in CLOSED for s in states)
    parent.work_end = max(c.work_end or c.updated for c in children) if done else None
    parent.effort = _sum_td(c.effort for c in children)
    parent.work_effort = _sum_td(c.work_effort for c in children)
    parent.remaining = _sum_td(c.remaining for c in children)
    costs = [c.cost for c in children if c.cost is not None]
    parent.cost = round(sum(costs), 2) if costs else None
    parent.work_cost = round(sum(c.work_cost for c in children), 2)
    weights = [((c.effort or H) / H, c.percent) for c in children]
    parent.percent = round(sum(w * pc for w, pc in weights) / sum(w for w, _ in weights), 1)
    if done:
        parent.state = closing or ("3" if "3" in states else "4" if "4" in states else "7")
        parent.percent = 100.0 if parent.state == "3" else parent.percent
    elif parent.work_start:
        parent.state = "2"
    else:
        parent.state = "1" if "1" in states else "-5"
    parent.updated = max(c.updated for c in children)


def _render_planned(
    ctx: SnContext, task: PlannedTask, table: str, project: PlannedTask
) -> dict[str, Any]:
    rng = ctx.rng
    closed = task.work_end if task.state in CLOSED else None
    if task.state == "7":
        closed = task.updated
    row = sn_common(
        ctx,
        table,
        task.number,
        task.sys_id,
        task.created,
        task.updated,
        rng.randint(3, 40),
        login(task.assignee),
    )
    row.update({"short_description": task.name, "state": task.state})
    row["active"] = "false" if task.state in CLOSED else "true"
    row["priority"] = "3" if table == "pm_project" else "4"
    if table == "pm_project":
        row["project_manager"] = user_ref(task.assignee)
    else:
        row["top_task"] = ref("pm_project", project.sys_id)
        row["top_task.number"] = project.number
        row["parent"] = ref(*task.parent)
    row.update(
        {
            "assigned_to": user_ref(task.assignee),
            "start_date": sn_dt(task.start),
            "end_date": sn_dt(task.end),
            "work_start": sn_dt(task.work_start),
            "work_end": sn_dt(task.work_end),
            "duration": sn_duration(task.end - task.start),
            "work_duration": sn_duration(task.work_end - task.work_start)
            if task.work_start and task.work_end
            else "",
            "effort": sn_duration(task.effort),
            "work_effort": sn_duration(task.work_effort),
            "remaining_effort": sn_duration(task.remaining),
            "percent_complete": sn_percent(task.percent),
            "cost": sn_money(task.cost),
            "work_cost": sn_money(task.work_cost),
        }
    )
    if table == "pm_project":
        row["budget_cost"] = ""
    row.update(
        {
            "opened_at": sn_dt(task.created),
            "closed_at": sn_dt(closed),
            "time_constraint": "start_on",
            "rollup": "true" if table == "pm_project" else "false",
            "critical_path": "true" if task.critical else "false",
        }
    )
    return row


def sn_projects(ctx: SnContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = ctx.rng
    projects: list[dict[str, Any]] = []
    task_rows: list[dict[str, Any]] = []
    task_no = 10001
    for p_index, (
        name,
        start_s,
        end_s,
        finish_s,
        overrun,
        end_state,
        budget_factor,
        spec,
    ) in enumerate(SN_PROJECTS):
        start, end, finish = d(start_s), d(end_s), d(finish_s)
        pm = SN_PMS[p_index % len(SN_PMS)]
        p_created = next_work_time(rng, max(FIRST_DAY, start - timedelta(days=rng.randint(10, 30))))
        p_created = before_export(rng, p_created, datetime.combine(FIRST_DAY, time(8), UTC))
        project = PlannedTask(
            name, ctx.ids.new(), p_created, p_created, "1", p_created, p_created, pm
        )
        project.number = f"PRJ{1001 + p_index:07d}"
        leaves: list[tuple[str, str | None]] = []
        for item in spec:
            if isinstance(item, str):
                leaves.append((item, None))
            else:
                leaves.extend((child, item[0]) for child in item[1])
        span, n = (end - start).days, len(leaves)
        late = 0 if end_state == "4" else (finish - end).days  # stopped, not late
        built: list[tuple[PlannedTask, str | None]] = []
        for i, (leaf_name, phase) in enumerate(leaves):
            slot = (
                start + timedelta(days=span * i // n),
                start + timedelta(days=span * (i + 1) // n - 1),
            )
            shift = round(late * (i + 1) / n)
            created = next_work_time(rng, (p_created + timedelta(days=rng.randint(0, 8))).date())
            created = before_export(rng, max(created, p_created + H), p_created)
            task = _leaf(
                ctx,
                leaf_name,
                slot,
                shift,
                overrun * rng.uniform(0.9, 1.1),
                finish if end_state == "4" else None,
                created,
                name != NO_EFFORT_PROJECT,
            )
            task.critical = i in (0, n - 1)
            built.append((task, phase))
        top: list[PlannedTask] = []
        ordered: list[PlannedTask] = []
        for item in spec:
            if isinstance(item, str):
                task = next(t for t, ph in built if t.name == item and ph is None)
                task.parent = ("pm_project", project.sys_id)
                top.append(task)
                ordered.append(task)
                continue
            children = [t for t, ph in built if ph == item[0]]
            phase_task = PlannedTask(
                item[0],
                ctx.ids.new(),
                p_created,
                p_created,
                "1",
                children[0].created,
                p_created,
                pm,
            )
            phase_task.parent = ("pm_project", project.sys_id)
            _roll(phase_task, children)
            for child in children:
                child.parent = ("pm_project_task", phase_task.sys_id)
            top.append(phase_task)
            ordered += [phase_task, *children]
        for task in ordered:
            task.number = f"PRJTASK{task_no:07d}"
            task_no += 1
        _roll(project, top, end_state)
        if project.state == "1" and start - timedelta(days=14) > LAST_DAY:
            project.state = "-5"
        project.created = p_created
        project.updated = max(project.updated, p_created)
        if project.work_cost:
            project.work_cost = round(project.work_cost + rng.choice([0, 2500, 8000, 15000]), 2)
        row = _render_planned(ctx, project, "pm_project", project)
        if budget_factor is not None:
            planned = project.cost if project.cost is not None else 60000.0
            row["budget_cost"] = sn_money(round_to(planned * budget_factor + 5000, 1000))
        projects.append(row)
        task_rows += [_render_planned(ctx, t, "pm_project_task", project) for t in ordered]
    return projects, task_rows


def _sn_td(text: str) -> timedelta:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S") - datetime(1970, 1, 1)


def _sn_dt(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def with_names(record: dict[str, Any]) -> dict[str, Any]:
    """The record with ``<field>.name`` beside every user and group reference, as the live
    connector asks for them (display values off): reports show people and groups by name."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        out[name] = value
        if isinstance(value, dict) and value.get("value") in SN_NAMES:
            link = value.get("link", "")
            if "/sys_user/" in link or "/sys_user_group/" in link:
                out[f"{name}.name"] = SN_NAMES[value["value"]]
    return out


def write_servicenow(rng: random.Random) -> list[Path]:
    ctx = SnContext(rng, SysIds(random.Random(SEED + 99)))
    opened = sorted(
        [random_instant(rng, FIRST_DAY, LAST_DAY, office=0.8) for _ in range(42)]
        + [
            random_instant(rng, LAST_DAY - timedelta(days=12), LAST_DAY, office=0.8)
            for _ in range(18)
        ]
    )
    incidents = [sn_incident(ctx, i, t) for i, t in enumerate(opened)]
    opened = sorted(
        [random_instant(rng, FIRST_DAY, LAST_DAY, office=0.95) for _ in range(17)]
        + [
            random_instant(rng, LAST_DAY - timedelta(days=12), LAST_DAY, office=0.95)
            for _ in range(8)
        ]
    )
    ritms = [sn_ritm(ctx, i, t) for i, t in enumerate(opened)]
    opened = sorted(
        [
            random_instant(rng, FIRST_DAY, LAST_DAY - timedelta(days=60), office=1.0)
            for _ in range(7)
        ]
        + [
            random_instant(rng, LAST_DAY - timedelta(days=60), LAST_DAY, office=1.0)
            for _ in range(3)
        ]
    )
    problems = [sn_problem(ctx, i, t, incidents) for i, t in enumerate(opened)]
    opened = sorted(
        [
            random_instant(rng, FIRST_DAY, LAST_DAY - timedelta(days=20), office=1.0)
            for _ in range(11)
        ]
        + [
            random_instant(rng, LAST_DAY - timedelta(days=10), LAST_DAY, office=1.0)
            for _ in range(4)
        ]
    )
    changes = [sn_change(ctx, i, t) for i, t in enumerate(opened)]
    projects, tasks = sn_projects(ctx)
    written = []
    for table, rows in (
        ("incident", incidents),
        ("sc_req_item", ritms),
        ("problem", problems),
        ("change_request", changes),
        ("pm_project", projects),
        ("pm_project_task", tasks),
    ):
        path = OUT / "servicenow" / f"{table}.json"
        write_json(path, {"result": [with_names(row) for row in rows]})
        written.append(path)
    return written


# ============================================================================================
# Main
# ============================================================================================


def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8", newline="\n")


def main() -> None:
    for sub in ("jira", "servicenow"):
        shutil.rmtree(OUT / sub, ignore_errors=True)
    (OUT / ".keep").unlink(missing_ok=True)
    ops = make_ops(random.Random(SEED + 1))
    pmo = make_pmo(random.Random(SEED + 2))
    web = make_web(random.Random(SEED + 3), pmo)
    touch_worklogs(random.Random(SEED + 6), ops + pmo + web)
    files = write_jira(ops + pmo + web, random.Random(SEED + 4))
    files += write_servicenow(random.Random(SEED + 5))
    for path in files:
        print(path.relative_to(OUT.parent))


if __name__ == "__main__":
    main()
