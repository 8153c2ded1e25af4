"""The tables a fresh ServiceNow double knows, and what the platform says about them: number
prefixes, the ``task`` family, reference fields, journal fields and choice labels.

Facts follow the project's ServiceNow notes (``NOTES.md``); section numbers point there.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

Record = dict[str, str]
"""A row as the Table API sends it with display values off: every value a string."""

DATETIME = "%Y-%m-%d %H:%M:%S"
"""``glide_date_time`` as the Table API writes it (UTC)."""

# Table → number prefix; these are also the tables that extend ``task`` in the double.
NUMBER_PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "incident": "INC",
        "sc_request": "REQ",
        "sc_req_item": "RITM",
        "sc_task": "SCTASK",
        "problem": "PRB",
        "problem_task": "PTASK",
        "change_request": "CHG",
        "change_task": "CTASK",
        "pm_project": "PRJ",
        "pm_project_task": "PRJTASK",
        "task": "TASK",
    }
)
TASK_TABLES = tuple(NUMBER_PREFIXES)

# A read of a parent table sees its children's rows, as on the platform.
FAMILIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "task": TASK_TABLES,
        "planned_task": ("planned_task", "pm_project", "pm_project_task"),
    }
)

# Field (or ``table.field``, which wins) → the table its sys_id points into.
DEFAULT_REFERENCE_TABLES: Mapping[str, str] = MappingProxyType(
    {
        "assigned_to": "sys_user",
        "assignment_group": "sys_user_group",
        "caller_id": "sys_user",
        "opened_by": "sys_user",
        "closed_by": "sys_user",
        "resolved_by": "sys_user",
        "requested_for": "sys_user",
        "requested_by": "sys_user",
        "manager": "sys_user",
        "business_service": "cmdb_ci_service",
        "cmdb_ci": "cmdb_ci",
        "company": "core_company",
        "location": "cmn_location",
        "top_task": "pm_project",
        "project": "pm_project",
        "parent": "task",
        "task": "task",
        "sla": "contract_sla",
        "schedule": "cmn_schedule",
        "problem_id": "problem",
        "rfc": "change_request",
        "caused_by": "change_request",
        "request": "sc_request",
        "request_item": "sc_req_item",
    }
)

# Tables that exist before anything is added; any other table name is "Invalid table".
BASE_TABLES = (
    *TASK_TABLES,
    "planned_task",
    "task_sla",
    "contract_sla",
    "sys_journal_field",
    "sys_user",
    "sys_user_group",
    "sys_choice",
    "cmdb_ci",
    "cmdb_ci_service",
    "core_company",
    "cmn_location",
    "cmn_schedule",
    "time_card",
    "asmt_assessment_instance",
    "asmt_metric_result",
)

JOURNAL_FIELDS = ("work_notes", "comments")
JOURNAL_LABELS = {"work_notes": "Work notes", "comments": "Additional comments"}
JOURNAL_READ_FIELDS = (*JOURNAL_FIELDS, "comments_and_work_notes")

TASK_STATE_LABELS = {
    "-5": "Pending",
    "1": "Open",
    "2": "Work in Progress",
    "3": "Closed Complete",
    "4": "Closed Incomplete",
    "7": "Closed Skipped",
}
# ``table.field`` or ``*.field`` → value → label, for display values (NOTES.md §2).
CHOICE_LABELS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "incident.state": {
            "1": "New",
            "2": "In Progress",
            "3": "On Hold",
            "6": "Resolved",
            "7": "Closed",
            "8": "Canceled",
        },
        "change_request.state": {
            "-5": "New",
            "-4": "Assess",
            "-3": "Authorize",
            "-2": "Scheduled",
            "-1": "Implement",
            "0": "Review",
            "3": "Closed",
            "4": "Canceled",
        },
        "problem.state": {
            "101": "New",
            "102": "Assess",
            "103": "Root Cause Analysis",
            "104": "Fix in Progress",
            "106": "Resolved",
            "107": "Closed",
        },
        "pm_project.state": TASK_STATE_LABELS,
        "pm_project_task.state": TASK_STATE_LABELS,
        "sc_req_item.state": TASK_STATE_LABELS,
        "sc_task.state": TASK_STATE_LABELS,
        "task.state": TASK_STATE_LABELS,
        "task_sla.stage": {
            "in_progress": "In progress",
            "paused": "Paused",
            "completed": "Completed",
            "cancelled": "Cancelled",
            "breached": "Breached",
        },
        "*.priority": {
            "1": "1 - Critical",
            "2": "2 - High",
            "3": "3 - Moderate",
            "4": "4 - Low",
            "5": "5 - Planning",
        },
    }
)
