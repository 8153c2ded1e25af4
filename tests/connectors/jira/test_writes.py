from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.connectors.jira.mapping import item_from_issue
from bridge.connectors.jira.writes import (
    COMMENT_PROPERTY,
    FieldInfo,
    WriteSpec,
    adf_document,
    adf_plain_text,
    comment_body,
    comment_state,
    current_value,
    edit_body,
    encode_value,
    field_info,
    field_kind,
    plan_writes,
    property_value,
    same_value,
)
from bridge.errors import WritebackError
from bridge.kpi.result import KpiResult
from bridge.model import Classification
from bridge.writeback.plan import SetFields, UpsertSummary
from bridge.writeback.render import build_summary, to_adf, to_wiki

DATA = Path(__file__).parents[2] / "data" / "jira"

SPI = FieldInfo("customfield_10050", "SPI", "number", "number")
WORK_TYPE = FieldInfo("customfield_10051", "Work type", "option", "option")
NOTES = FieldInfo("customfield_10052", "KPI notes", "text", "string")
STATE = FieldInfo("customfield_10053", "TTR state", "string", "string")
BREACH = FieldInfo("customfield_10054", "Next breach", "datetime", "datetime")
DUE = FieldInfo("customfield_10055", "Breach day", "date", "date")
SYDNEY = ZoneInfo("Australia/Sydney")

DECISION = Classification("project", "execution", "portfolio-items", ("evm",))
KPIS = KpiResult(values={"evm.spi": 0.9123456789, "evm.cpi": 1.1, "evm.pv": 10.0})


def load(relative: str) -> Any:
    return json.loads((DATA / relative).read_text(encoding="utf-8"))


def issue(fields: dict[str, Any], properties: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "key": "OPS-1",
        "self": "https://x.atlassian.net/rest/api/3/issue/1",
        "fields": {"summary": "s", **fields},
    }
    if properties is not None:
        doc["properties"] = properties
    return doc


def spec(**targets: FieldInfo) -> WriteSpec:
    return WriteSpec({k.replace("__", "."): v for k, v in targets.items()}, tz=SYDNEY)


# -- field kinds from GET /field ---------------------------------------------------------------


def test_field_kinds_from_real_field_lists() -> None:
    demisto = {
        f["id"]: f for f in load("demisto-content/JiraV3__get_issue_fields_test__raw_response.json")
    }
    assert field_kind(demisto["customfield_10071"]) is None  # the JSM SLA field
    assert field_info(demisto["customfield_10071"]).schema_type == "sd-servicelevelagreement"
    cli = {f["id"]: f for f in load("jira-cli/fields.json")}
    assert field_kind(cli["customfield_10111"]) == "number"  # original story points
    official = {
        f["id"]: f for f in load("atlassian-openapi-examples/cloud-v3-GET-field.response.json")
    }
    assert field_kind(official["description"]) == "text"  # ADF in v3
    assert field_kind(official["summary"]) == "string"


@pytest.mark.parametrize(
    ("schema", "kind"),
    [
        ({"type": "number", "custom": "x:float"}, "number"),
        ({"type": "string", "custom": "x:textfield"}, "string"),
        ({"type": "string", "custom": "x:textarea"}, "text"),
        ({"type": "option", "custom": "x:select"}, "option"),
        ({"type": "option", "custom": "x:radiobuttons"}, "option"),
        ({"type": "option-with-child", "custom": "x:cascadingselect"}, None),
        ({"type": "date", "custom": "x:datepicker"}, "date"),
        ({"type": "datetime", "custom": "x:datetime"}, "datetime"),
        ({"type": "array", "items": "option"}, None),
        ({"type": "user"}, None),
    ],
)
def test_field_kind(schema: dict[str, Any], kind: str | None) -> None:
    assert field_kind({"id": "customfield_1", "schema": schema}) == kind


# -- encoding and comparing values ---------------------------------------------------------------


def test_encode_values_per_kind() -> None:
    assert encode_value(SPI, 0.9123456789, adf=True, tz=UTC) == 0.912346
    assert encode_value(SPI, 2.0, adf=True, tz=UTC) == 2
    assert encode_value(SPI, True, adf=True, tz=UTC) == 1
    assert encode_value(SPI, None, adf=True, tz=UTC) is None
    assert encode_value(WORK_TYPE, "project", adf=True, tz=UTC) == {"value": "project"}
    assert encode_value(STATE, False, adf=True, tz=UTC) == "no"
    assert encode_value(NOTES, "a\nb", adf=True, tz=UTC) == adf_document("a\nb")
    assert encode_value(NOTES, "a\nb", adf=False, tz=UTC) == "a\nb"  # v2: wiki string
    assert (
        encode_value(BREACH, "2024-05-01T09:30:45Z", adf=True, tz=UTC)
        == "2024-05-01T09:30:00.000+0000"
    )
    # An instant in a date field is read in the API user's time zone.
    assert encode_value(DUE, "2024-05-01T20:00:00Z", adf=True, tz=SYDNEY) == "2024-05-02"
    assert encode_value(DUE, date(2024, 5, 1), adf=True, tz=SYDNEY) == "2024-05-01"


def test_a_value_that_cannot_go_into_a_field_names_key_and_field() -> None:
    with pytest.raises(WritebackError) as caught:
        encode_value(SPI, "project", adf=True, tz=UTC, key="work_type")
    message = str(caught.value)
    assert "work_type" in message
    assert "'SPI' (customfield_10050)" in message
    assert "number" in message


@pytest.mark.parametrize(
    ("target", "current", "desired", "same"),
    [
        (SPI, 0.912346, 0.9123456789, True),  # rounded to 6 decimals
        (SPI, 0.912346, 0.912347, False),
        (SPI, 1, 1.0, True),
        (SPI, None, None, True),
        (SPI, None, 0.0, False),
        (WORK_TYPE, {"self": "x", "value": "project", "id": "10100"}, "project", True),
        (WORK_TYPE, {"value": "service"}, "project", False),
        (STATE, "", None, True),
        (STATE, "breached", "breached", True),
        (NOTES, adf_document("SPI 0.91\non track"), "SPI 0.91\non track", True),
        (NOTES, "SPI 0.91", "SPI 0.91", True),  # v2 string
        (BREACH, "2024-05-01T19:30:00.000+1000", "2024-05-01T09:30:59Z", True),
        (BREACH, "2024-05-01T09:31:00.000+0000", "2024-05-01T09:30:00Z", False),
        (DUE, "2024-05-02", "2024-05-01T20:00:00Z", True),  # Sydney's day
    ],
)
def test_same_value(target: FieldInfo, current: Any, desired: Any, same: bool) -> None:
    assert same_value(target, current, desired, SYDNEY, "k") is same


def test_current_value_reads_the_issue_json() -> None:
    doc = issue({SPI.id: 0.5, WORK_TYPE.id: {"value": "service", "id": "1"}})
    assert current_value(SPI, doc) == 0.5
    assert current_value(WORK_TYPE, doc) == "service"
    assert current_value(NOTES, doc) is None


def test_adf_text_round_trip() -> None:
    summary = build_summary("OPS-1", DECISION, KPIS.values)
    text = adf_plain_text(to_adf(summary))
    assert "bridge summary " + summary.digest in text
    assert adf_plain_text(adf_document("x\n\ny")) == "x\n\ny"


# -- planning -----------------------------------------------------------------------------------


def test_plan_sets_only_changed_fields_and_the_comment_when_its_digest_differs() -> None:
    targets = spec(evm__spi=SPI, work_type=WORK_TYPE, phase=STATE)
    item = item_from_issue(issue({SPI.id: 0.5, WORK_TYPE.id: {"value": "project"}}))

    ops = plan_writes(item, DECISION, KPIS, targets)

    summary = build_summary("OPS-1", DECISION, KPIS.values)
    assert ops == [
        SetFields({SPI.id: 0.9123456789, STATE.id: "execution"}),
        UpsertSummary(to_adf(summary), summary.digest),
    ]


def test_plan_is_empty_when_fields_and_digest_match() -> None:
    targets = spec(evm__spi=SPI, work_type=WORK_TYPE)
    digest = build_summary("OPS-1", DECISION, KPIS.values).digest
    raw = issue(
        {SPI.id: 0.912346, WORK_TYPE.id: {"value": "project"}},
        {COMMENT_PROPERTY: property_value("10000", digest)},
    )
    assert plan_writes(item_from_issue(raw), DECISION, KPIS, targets) == []


def test_plan_clears_a_kpi_the_item_no_longer_has_and_renders_wiki_for_v2() -> None:
    targets = WriteSpec({"evm.spi": SPI}, adf=False)
    service = Classification("service", None, "incidents", ())
    item = item_from_issue(issue({SPI.id: 0.7}))

    ops = plan_writes(item, service, KpiResult(), targets)

    summary = build_summary("OPS-1", service, {})
    assert ops == [SetFields({SPI.id: None}), UpsertSummary(to_wiki(summary), summary.digest)]


def test_plan_without_comment() -> None:
    targets = WriteSpec({"evm.spi": SPI}, comment=False)
    item = item_from_issue(issue({SPI.id: 0.912346}))
    assert plan_writes(item, DECISION, KPIS, targets) == []


# -- bodies and the comment property ------------------------------------------------------------


def test_request_bodies() -> None:
    targets = spec(evm__spi=SPI, work_type=WORK_TYPE, sla__ttr__breach_time=BREACH)
    body = edit_body({SPI.id: 0.5, WORK_TYPE.id: "service", BREACH.id: None}, targets)
    assert body == {"fields": {SPI.id: 0.5, WORK_TYPE.id: {"value": "service"}, BREACH.id: None}}
    assert comment_body("x") == {"body": "x"}
    assert property_value("10000", "abc") == {"id": "10000", "digest": "abc", "version": 1}
    with pytest.raises(WritebackError, match=r"not a field in writeback\.fields"):
        edit_body({"customfield_99": 1}, targets)


def test_comment_state_from_the_search_properties() -> None:
    assert comment_state(issue({})) == (None, None)
    assert comment_state(issue({}, {"other": 1})) == (None, None)
    assert comment_state(issue({}, {COMMENT_PROPERTY: {"id": 10000, "digest": "d"}})) == (
        "10000",
        "d",
    )
    assert comment_state(issue({}, {COMMENT_PROPERTY: "garbage"})) == (None, None)


def test_datetime_to_the_minute() -> None:
    instant = datetime(2024, 5, 1, 9, 30, 59, tzinfo=UTC)
    assert encode_value(BREACH, instant, adf=True, tz=UTC) == "2024-05-01T09:30:00.000+0000"
    assert encode_value(BREACH, date(2024, 5, 1), adf=True, tz=SYDNEY) == (
        "2024-04-30T14:00:00.000+0000"
    )
