"""What bridge writes onto a ServiceNow record: encoding, comparing, planning (pure)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from bridge.connectors.servicenow.mapping import item_from_record
from bridge.connectors.servicenow.writes import (
    MEMO_RAW_KEY,
    RecordMemo,
    encode_value,
    memo_after_patch,
    memo_key,
    patch_body,
    plan_writes,
    record_ref,
    same_value,
    summary_marker,
)
from bridge.errors import WritebackError
from bridge.model import Classification, WorkItem
from bridge.writeback.plan import SetFields, UpsertSummary
from bridge.writeback.render import build_summary

from .conftest import WRITEBACK, fixture

SYS_ID = "a9e30c7dc61122760116894de7bcc7bd"
DECISION = Classification("service", None, "incidents", ("sla.resolution",))
KPIS: dict[str, Any] = {"sla.resolution.state": "running", "sla.resolution.breached": False}


def record_item(memo: RecordMemo | None = None, **fields: str) -> WorkItem:
    record = fixture("table_get_incident_by_sys_id.json")["result"]
    record = {**record, **dict.fromkeys(WRITEBACK.values(), ""), **fields}
    if memo is not None:
        record[MEMO_RAW_KEY] = memo
    return item_from_record(record)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (7, "7"),
        (2.0, "2"),
        (0.1 + 0.2, "0.3"),
        (1.23456789, "1.2346"),
        (-0.00001, "0"),
        (float("nan"), ""),
        (12500.5, "12500.5"),
        ("service", "service"),
        ("2026-07-01T09:30:00Z", "2026-07-01 09:30:00"),
        ("2026-07-01T09:30:00.250+00:00", "2026-07-01 09:30:00"),
        (datetime(2026, 7, 1, 11, 30, tzinfo=timezone(timedelta(hours=2))), "2026-07-01 09:30:00"),
        (datetime(2026, 7, 1, 9, 30), "2026-07-01 09:30:00"),
        (date(2026, 7, 1), "2026-07-01"),
        ("2026-07-01T09:30:00+02:00", "2026-07-01T09:30:00+02:00"),  # not UTC: left alone
    ],
)
def test_encode_value(value: Any, text: str) -> None:
    assert encode_value(value) == text


@pytest.mark.parametrize(
    ("current", "desired", "echo", "same"),
    [
        ("", None, None, True),
        (None, None, None, True),
        ("", "service", None, False),
        ("service", "service", None, True),
        ("Service", "service", None, False),  # text compares exactly
        ("1.50", 1.5, None, True),  # numerically equal decimals
        ("1.5", "1.50", None, True),
        ("0.88", 0.8765, None, False),
        ("0.88", 0.8765, ("0.8765", "0.88"), True),  # ServiceNow rounded our own write
        ("0.88", 0.9, ("0.8765", "0.88"), False),  # a new value is written again
        ("4", 3.7, ("3.7", "4"), True),
        ({"value": "true", "display_value": "true"}, True, None, True),
        ("", 0, None, False),
        ("0", None, None, False),  # clearing is a change
        ("2026-07-01 09:30:00", "2026-07-01T09:30:00Z", None, True),
    ],
)
def test_same_value(current: Any, desired: Any, echo: tuple[str, str] | None, same: bool) -> None:
    assert same_value(current, desired, echo) is same


def test_plan_writes_only_changed_fields_and_a_new_summary() -> None:
    item = record_item(u_work_type="service", u_rule="old-rule")

    ops = plan_writes(item, DECISION, KPIS, fields=WRITEBACK, journal_field="work_notes")

    assert ops[0] == SetFields({"u_rule": "incidents", "u_sla_state": "running"})
    summary = ops[1]
    assert isinstance(summary, UpsertSummary)
    assert summary.digest == build_summary("INC0000046", DECISION, KPIS).digest
    assert isinstance(summary.text, str)
    assert summary.text.startswith("bridge: INC0000046 is service work")
    assert summary.text.endswith(summary_marker(summary.digest))
    # phase is None and u_phase is "": nothing to write there.
    assert "u_phase" not in ops[0].values  # type: ignore[union-attr]


def test_nothing_to_write_when_fields_match_and_the_digest_is_remembered() -> None:
    digest = build_summary("INC0000046", DECISION, KPIS).digest
    item = record_item(
        RecordMemo(journal=digest),
        u_work_type="service",
        u_rule="incidents",
        u_sla_state="running",
    )

    assert plan_writes(item, DECISION, KPIS, fields=WRITEBACK, journal_field="work_notes") == []


def test_a_material_change_plans_one_new_entry_and_volatile_figures_do_not() -> None:
    digest = build_summary("INC0000046", DECISION, KPIS).digest
    item = record_item(RecordMemo(journal=digest))
    ticking = {**KPIS, "sla.resolution.remaining_seconds": 1234.0}
    assert not any(
        isinstance(op, UpsertSummary)
        for op in plan_writes(item, DECISION, ticking, fields={}, journal_field="work_notes")
    )
    breached = {**KPIS, "sla.resolution.breached": True}
    ops = plan_writes(item, DECISION, breached, fields={}, journal_field="work_notes")
    assert [type(op) for op in ops] == [UpsertSummary]


def test_no_journal_when_it_is_switched_off() -> None:
    ops = plan_writes(record_item(), DECISION, KPIS, fields={}, journal_field=None)
    assert ops == []


def test_patch_body_encodes_fields_and_adds_the_entry() -> None:
    ops = [
        SetFields({"u_sla_state": "running", "u_hours": 1.25, "u_phase": None}),
        UpsertSummary(text="bridge: INC1 ...", digest="abc"),
    ]

    assert patch_body(ops, "work_notes") == {
        "u_sla_state": "running",
        "u_hours": "1.25",
        "u_phase": "",
        "work_notes": "bridge: INC1 ...",
    }
    with pytest.raises(WritebackError, match="journal is none"):
        patch_body(ops, None)


def test_memo_after_patch_remembers_rounding_and_forgets_it_when_gone() -> None:
    before = RecordMemo(journal="old", echo={"u_ratio": ("0.5", "0.50"), "u_other": ("1", "1.0")})
    body = {"u_ratio": "0.8765", "u_hours": "3.7", "u_other": "2", "work_notes": "text"}
    stored = {"u_ratio": "0.88", "u_hours": "4", "u_other": "2", "sys_id": SYS_ID}

    after = memo_after_patch(before, body, stored, journal_field="work_notes", digest="new")

    assert after.journal == "new"
    assert dict(after.echo) == {"u_ratio": ("0.8765", "0.88"), "u_hours": ("3.7", "4")}
    unchanged = memo_after_patch(after, {"u_ratio": "1"}, None, journal_field=None, digest=None)
    assert unchanged.journal == "new"
    assert "u_ratio" not in unchanged.echo


def test_record_memo_text_round_trip_and_tolerance() -> None:
    memo = RecordMemo(journal="d1", echo={"u_x": ("1.234", "1.23")})
    assert RecordMemo.from_text(memo.to_text()) == memo
    assert RecordMemo.from_text(None) == RecordMemo()
    assert RecordMemo.from_text("0123abcd").journal == "0123abcd"  # a bare digest
    assert RecordMemo.from_text("[1, 2]") == RecordMemo()
    assert RecordMemo.from_text('{"journal": 5, "echo": {"u": [1, 2]}}') == RecordMemo()
    assert memo_key("incident", SYS_ID) == f"journal:incident:{SYS_ID}"


def test_record_ref() -> None:
    assert record_ref(record_item()) == ("incident", SYS_ID)
    with pytest.raises(WritebackError, match="not a ServiceNow record"):
        record_ref(WorkItem(key="PROJ-1", system="jira"))


def test_plan_is_pure_and_reads_the_memo_from_the_item() -> None:
    """The same item planned twice gives the same answer; nothing outside it is read."""
    item = record_item(RecordMemo(journal="stale"))
    first = plan_writes(item, DECISION, KPIS, fields=WRITEBACK, journal_field="comments")
    second = plan_writes(item, DECISION, KPIS, fields=WRITEBACK, journal_field="comments")
    assert first == second
    assert item.raw[MEMO_RAW_KEY] == RecordMemo(journal="stale")
