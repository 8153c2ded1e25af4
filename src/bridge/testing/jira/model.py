"""What a Jira site holds: the field catalogue, statuses, issues and comments.

Issues store field values in their Cloud v3 REST shape, with ``{base}``/``{v}`` placeholders
in links (filled in when shown, so the same stored value serves v2, v3 and any port).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bridge.testing.jira.values import stable_id

Deployment = Literal["cloud", "datacenter"]

OPT = "com.atlassian.jira.plugin.system.customfieldtypes:"

# What a PUT may send for a field, by the kind of value it holds.
Kind = Literal[
    "number", "string", "richtext", "option", "options", "labels", "date", "datetime",
    "user", "named", "components", "readonly",
]  # fmt: skip


@dataclass(slots=True)
class Field:
    id: str
    name: str
    schema: dict[str, Any]
    kind: Kind
    custom: bool = False
    navigable: bool = True
    options: list[dict[str, str]] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        """``FieldDetails`` as ``GET /field`` returns it."""
        clause = [self.id] if not self.custom else [f"cf[{self.id.rsplit('_', 1)[1]}]"]
        if self.custom:
            clause.append(self.name)
        return {
            "id": self.id,
            "key": self.id,
            "name": self.name,
            "untranslatedName": self.name,
            "custom": self.custom,
            "orderable": self.kind != "readonly",
            "navigable": self.navigable,
            "searchable": True,
            "clauseNames": clause,
            "schema": dict(self.schema),
        }


def system_field(fid: str, name: str, type_: str, kind: Kind, **extra: Any) -> Field:
    schema: dict[str, Any] = {"type": type_, "system": fid}
    items = extra.pop("items", None)
    if items:
        schema["items"] = items
    return Field(fid, name, schema, kind, **extra)


def custom_field(num: int, name: str, type_: str, custom: str, kind: Kind, **extra: Any) -> Field:
    schema: dict[str, Any] = {"type": type_, "custom": custom, "customId": num}
    items = extra.pop("items", None)
    if items:
        schema["items"] = items
    return Field(f"customfield_{num}", name, schema, kind, custom=True, **extra)


def default_fields() -> list[Field]:
    phases = ["Initiation", "Planning", "Execution", "Monitoring", "Closing"]
    services = ["Email", "Network", "Payroll"]
    return [
        system_field("summary", "Summary", "string", "string"),
        system_field("description", "Description", "string", "richtext"),
        system_field("environment", "Environment", "string", "richtext"),
        system_field("status", "Status", "status", "readonly"),
        system_field("issuetype", "Issue Type", "issuetype", "named"),
        system_field("project", "Project", "project", "readonly"),
        system_field("priority", "Priority", "priority", "named"),
        system_field("assignee", "Assignee", "user", "user"),
        system_field("reporter", "Reporter", "user", "user"),
        system_field("created", "Created", "datetime", "readonly"),
        system_field("updated", "Updated", "datetime", "readonly"),
        system_field("resolutiondate", "Resolved", "datetime", "readonly"),
        system_field("resolution", "Resolution", "resolution", "readonly"),
        system_field("duedate", "Due date", "date", "date"),
        system_field("labels", "Labels", "array", "labels", items="string"),
        system_field("components", "Components", "array", "components", items="component"),
        system_field("timeoriginalestimate", "Original estimate", "number", "readonly"),
        system_field("timeestimate", "Remaining Estimate", "number", "readonly"),
        system_field("timespent", "Time Spent", "number", "readonly"),
        system_field("parent", "Parent", "issuelink", "readonly"),
        system_field("comment", "Comment", "comments-page", "readonly", navigable=False),
        custom_field(10010, "SPI", "number", OPT + "float", "number"),
        custom_field(10011, "Work type", "string", OPT + "textfield", "string"),
        custom_field(
            10012,
            "Phase",
            "option",
            OPT + "select",
            "option",
            options=[{"id": str(10100 + i), "value": v} for i, v in enumerate(phases)],
        ),
        custom_field(10013, "Next breach", "datetime", OPT + "datetime", "datetime"),
        custom_field(10014, "KPI notes", "string", OPT + "textarea", "richtext"),
        custom_field(10015, "Story point estimate", "number", OPT + "float", "number"),
        custom_field(10016, "Start date", "date", OPT + "datepicker", "date"),
        custom_field(10017, "Target end", "date", OPT + "datepicker", "date"),
        custom_field(
            10018,
            "Affected services",
            "array",
            OPT + "multiselect",
            "options",
            items="option",
            options=[{"id": str(10200 + i), "value": v} for i, v in enumerate(services)],
        ),
        custom_field(
            10020,
            "Time to resolution",
            "sd-servicelevelagreement",
            "com.atlassian.servicedesk:sd-sla-field",
            "readonly",
        ),
        custom_field(
            10021,
            "Satisfaction",
            "sd-feedback",
            "com.atlassian.servicedesk:sd-request-feedback",
            "readonly",
        ),
        custom_field(
            10022,
            "Request Type",
            "sd-customerrequesttype",
            "com.atlassian.servicedesk:vp-origin",
            "readonly",
        ),
    ]


def option_of(f: Field, ref: Mapping[str, Any]) -> dict[str, str] | None:
    """The option of a select field that ``ref`` names by id or value, as REST shows it."""
    for opt in f.options:
        if ("id" in ref and str(ref["id"]) == opt["id"]) or (
            "value" in ref and ref["value"] == opt["value"]
        ):
            return {
                "self": f"{{base}}/rest/api/{{v}}/customFieldOption/{opt['id']}",
                "value": opt["value"],
                "id": opt["id"],
            }
    return None


STATUS_CATEGORY = {
    "to do": "new",
    "open": "new",
    "backlog": "new",
    "in progress": "indeterminate",
    "in review": "indeterminate",
    "waiting for support": "indeterminate",
    "done": "done",
    "closed": "done",
    "resolved": "done",
}
CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
CATEGORY_IDS = {"new": 2, "indeterminate": 4, "done": 3}


def status_json(name: str) -> dict[str, Any]:
    category = STATUS_CATEGORY.get(name.casefold(), "indeterminate")
    return {
        "self": "{base}/rest/api/{v}/status/" + name.replace(" ", "%20"),
        "name": name,
        "id": stable_id(name),
        "statusCategory": {
            "id": CATEGORY_IDS[category],
            "key": category,
            "name": CATEGORY_NAMES[category],
            "colorName": {"new": "blue-gray", "indeterminate": "yellow", "done": "green"}[category],
        },
    }


def category_key(issue: Issue) -> str:
    """The key of the issue's status category (``new``, ``indeterminate``, ``done``)."""
    status = issue.fields.get("status")
    if isinstance(status, Mapping):
        cat = status.get("statusCategory")
        if isinstance(cat, Mapping):
            return str(cat.get("key"))
    return ""


@dataclass(slots=True)
class Comment:
    id: str
    author: str
    body: dict[str, Any]  # ADF
    created: datetime
    updated: datetime
    update_author: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Issue:
    id: str
    key: str
    project: str
    number: int
    fields: dict[str, Any]
    created: datetime
    updated: datetime
    histories: list[dict[str, Any]] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which fields to return, from ``fields`` (``*all``, ``*navigable``, ids, ``-id``)."""

    everything: bool = False
    navigable: bool = False
    ids: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    id_only: bool = False

    @staticmethod
    def all() -> Selection:
        return Selection(everything=True)

    @staticmethod
    def parse(value: Any, *, default: str) -> Selection:
        if value is None or value in ([], ""):
            value = [default]
        if isinstance(value, str):
            value = [value]
        parts = [p.strip() for v in value for p in str(v).split(",") if p.strip()]
        if parts == ["id"]:
            return Selection(id_only=True)
        return Selection(
            everything="*all" in parts,
            navigable="*navigable" in parts,
            ids=frozenset(p for p in parts if not p.startswith(("*", "-")) and p != "id"),
            excluded=frozenset(p[1:] for p in parts if p.startswith("-")),
        )

    def choose(self, catalog: Iterable[Field], stored: Mapping[str, Any]) -> list[str]:
        chosen: list[str] = []
        for f in catalog:
            if f.id in self.excluded:
                continue
            if self.everything or (self.navigable and f.navigable) or f.id in self.ids:
                chosen.append(f.id)
        if self.everything:
            known = set(chosen) | self.excluded
            chosen.extend(k for k in stored if k not in known)
        return chosen
