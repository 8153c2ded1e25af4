"""The ServiceNow double over real HTTP: it must behave like the Table API the notes describe,
or connector tests written against it prove nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bridge.testing.servicenow import (
    EncodedQuery,
    QueryNotSupportedError,
    ServiceNowDouble,
    parse_encoded_query,
)

SPEC = Path(__file__).parent.parent / "data" / "servicenow" / "openapi-table-api.yaml"
JSON = {"Accept": "application/json"}


@pytest.fixture
def double() -> Iterator[ServiceNowDouble]:
    with ServiceNowDouble() as d:
        yield d


@pytest.fixture
def client(double: ServiceNowDouble) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = ("bridge.integration", "secret")
        session.headers.update(JSON)
        yield session


def _get(client: requests.Session, double: ServiceNowDouble, table: str, **params: str) -> Any:
    response = client.get(f"{double.url}/api/now/table/{table}", params=params, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def _numbers(rows: list[dict[str, Any]]) -> list[str]:
    return [row["number"] for row in rows]


def _incidents(double: ServiceNowDouble) -> dict[str, str]:
    """Five incidents with distinct states, priorities and update times; number → sys_id."""
    rows = [
        ("1", "1", "2024-01-01 08:00:00", "alpha network"),
        ("2", "3", "2024-01-02 09:30:00", "Beta printer"),
        ("6", "2", "2024-01-03 10:00:00", "gamma network"),
        ("7", "", "2024-01-04 11:00:00", ""),
        ("2", "10", "2024-01-05 12:00:00", "delta"),
    ]
    ids = {}
    for state, priority, updated, text in rows:
        sys_id = double.add_record(
            "incident",
            {
                "state": state,
                "priority": priority,
                "sys_updated_on": updated,
                "short_description": text,
            },
        )
        ids[double.record("incident", sys_id)["number"]] = sys_id
    return ids


# ---- records ------------------------------------------------------------------------------


def test_add_record_fills_system_fields_and_numbers_per_table(double: ServiceNowDouble) -> None:
    first = double.record("incident", double.add_record("incident", {"state": "1"}))
    second = double.record("incident", double.add_record("incident", {}))
    project = double.record("pm_project", double.add_record("pm_project", {}))
    assert (first["number"], second["number"]) == ("INC0010001", "INC0010002")
    assert project["number"] == "PRJ0010001"
    assert len(first["sys_id"]) == 32
    assert first["sys_mod_count"] == "0"
    assert first["sys_class_name"] == "incident"
    assert first["sys_updated_on"] == first["sys_created_on"]
    assert first["work_notes"] == first["comments"] == ""
    datetime.strptime(first["sys_created_on"], "%Y-%m-%d %H:%M:%S")
    with pytest.raises(TypeError, match="strings"):
        double.add_record("incident", {"priority": 1})  # type: ignore[dict-item]
    assert double.bulk_add("problem", 3, lambda i: {"short_description": f"p{i}"})[2]
    assert [r["short_description"] for r in double.records("problem")] == ["p0", "p1", "p2"]


# ---- reading: paging ----------------------------------------------------------------------


def test_paging_follows_link_headers_with_total_count(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    double.bulk_add("incident", 25)
    url: str | None = f"{double.url}/api/now/table/incident?sysparm_limit=10&sysparm_fields=number"
    seen: list[str] = []
    pages = 0
    while url:
        response = client.get(url, timeout=5)
        assert response.headers["X-Total-Count"] == "25"
        seen += _numbers(response.json()["result"])
        url = response.links.get("next", {}).get("url")
        pages += 1
    assert pages == 3
    assert seen == [f"INC{n:07d}" for n in range(10001, 10026)]


def test_link_header_has_the_platform_format(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    double.bulk_add("incident", 5)
    response = client.get(
        f"{double.url}/api/now/table/incident",
        params={"sysparm_limit": "2", "sysparm_fields": "number", "sysparm_offset": "0"},
        timeout=5,
    )
    parts = response.headers["Link"].split(",<")
    assert [p.rsplit(";", 1)[1] for p in parts] == [
        'rel="first"',
        'rel="prev"',
        'rel="next"',
        'rel="last"',
    ]
    offsets = {
        rel: parse_qs(urlsplit(link["url"]).query)["sysparm_offset"][0]
        for rel, link in response.links.items()
    }
    assert offsets == {"first": "0", "prev": "-2", "next": "2", "last": "3"}
    first = urlsplit(response.links["first"]["url"])
    assert first.path == "/api/now/table/incident"
    assert parse_qs(first.query)["sysparm_fields"] == ["number"]
    assert parse_qs(first.query)["sysparm_limit"] == ["2"]


def test_last_page_has_no_next_and_no_count_drops_the_total(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    double.bulk_add("incident", 3)
    last = client.get(
        f"{double.url}/api/now/table/incident?sysparm_limit=2&sysparm_offset=2", timeout=5
    )
    assert set(last.links) == {"first", "prev", "last"}
    assert len(last.json()["result"]) == 1
    uncounted = client.get(
        f"{double.url}/api/now/table/incident?sysparm_limit=2&sysparm_no_count=true", timeout=5
    )
    assert "X-Total-Count" not in uncounted.headers
    assert "next" in uncounted.links
    quiet = client.get(
        f"{double.url}/api/now/table/incident?sysparm_suppress_pagination_header=true", timeout=5
    )
    assert "Link" not in quiet.headers


def test_limit_defaults_to_10000_and_clamps_to_max_limit(client: requests.Session) -> None:
    with ServiceNowDouble(max_limit=4) as small:
        small.bulk_add("incident", 6)
        response = client.get(f"{small.url}/api/now/table/incident?sysparm_limit=100", timeout=5)
        assert len(response.json()["result"]) == 4
        assert response.headers["X-Total-Count"] == "6"
        assert parse_qs(urlsplit(response.links["next"]["url"]).query)["sysparm_limit"] == ["4"]
    with ServiceNowDouble() as big:
        big.bulk_add("incident", 3)
        response = client.get(f"{big.url}/api/now/table/incident", timeout=5)
        assert "sysparm_limit=10000" in response.links["first"]["url"]


def test_bad_paging_parameters_get_400(double: ServiceNowDouble, client: requests.Session) -> None:
    for params in ({"sysparm_offset": "-1"}, {"sysparm_limit": "ten"}):
        response = client.get(f"{double.url}/api/now/table/incident", params=params, timeout=5)
        assert response.status_code == 400
        assert response.json()["status"] == "failure"


def test_v1_answers_no_results_with_404_and_v2_with_empty_list(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    v1 = client.get(f"{double.url}/api/now/v1/table/incident", timeout=5)
    v2 = client.get(f"{double.url}/api/now/v2/table/incident", timeout=5)
    assert v1.status_code == 404
    assert (v2.status_code, v2.json()) == (200, {"result": []})


def test_unknown_table_is_400(double: ServiceNowDouble, client: requests.Session) -> None:
    response = client.get(f"{double.url}/api/now/table/u_nothing", timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid table u_nothing"


# ---- reading: queries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=2", ["INC0010002", "INC0010005"]),
        ("state!=2", ["INC0010001", "INC0010003", "INC0010004"]),
        ("priority>2", ["INC0010002", "INC0010005"]),  # numeric: "10" > "2"; empty never orders
        ("priority>=2", ["INC0010002", "INC0010003", "INC0010005"]),
        ("priority<3", ["INC0010001", "INC0010003"]),
        ("priority<=3", ["INC0010001", "INC0010002", "INC0010003"]),
        ("sys_updated_on>=2024-01-03 10:00:00", ["INC0010003", "INC0010004", "INC0010005"]),
        ("sys_updated_on>2024-01-03 10:00:00", ["INC0010004", "INC0010005"]),
        ("sys_updated_on<2024-01-02 09:30:00", ["INC0010001"]),
        ("stateIN6,7", ["INC0010003", "INC0010004"]),
        ("priorityISEMPTY", ["INC0010004"]),
        ("short_descriptionISNOTEMPTY^state=2", ["INC0010002", "INC0010005"]),
        ("state=1^ORstate=7", ["INC0010001", "INC0010004"]),
        ("short_descriptionLIKEnetwork^state=1^ORstate=6", ["INC0010001", "INC0010003"]),
        ("short_descriptionSTARTSWITHbeta", ["INC0010002"]),
        ("state=1^NQstate=7", ["INC0010001", "INC0010004"]),
        ("stateNOT IN1,2", ["INC0010003", "INC0010004"]),
    ],
)
def test_query_operators(
    double: ServiceNowDouble, client: requests.Session, query: str, expected: list[str]
) -> None:
    _incidents(double)
    rows = _get(client, double, "incident", sysparm_query=query, sysparm_fields="number")
    assert _numbers(rows) == expected


def test_name_value_pairs_filter_like_a_query(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    _incidents(double)
    assert _numbers(_get(client, double, "incident", state="6")) == ["INC0010003"]


def test_orderby_and_orderbydesc(double: ServiceNowDouble, client: requests.Session) -> None:
    _incidents(double)
    by_priority = _get(
        client, double, "incident", sysparm_query="ORDERBYpriority", sysparm_fields="number"
    )
    # empty first, then numerically (10 after 3)
    assert _numbers(by_priority) == [
        "INC0010004",
        "INC0010001",
        "INC0010003",
        "INC0010002",
        "INC0010005",
    ]
    by_state_then_newest = _get(
        client,
        double,
        "incident",
        sysparm_query="state!=7^ORDERBYDESCstate^ORDERBYDESCsys_updated_on",
        sysparm_fields="number",
    )
    assert _numbers(by_state_then_newest) == [
        "INC0010003",
        "INC0010005",
        "INC0010002",
        "INC0010001",
    ]


def test_unknown_query_fields_are_ignored_and_recorded(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    _incidents(double)
    rows = _get(client, double, "incident", sysparm_query="u_typo=1^state=2^ORDERBYu_nope")
    assert _numbers(rows) == ["INC0010002", "INC0010005"]
    assert double.ignored_query_fields == [("incident", "u_nope"), ("incident", "u_typo")]


def test_unsupported_query_is_refused_not_misanswered(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    _incidents(double)
    for query in (
        "sys_updated_onRELATIVEGT@hour@ago@1",
        "sys_updated_on>javascript:gs.daysAgoStart(1)",
    ):
        response = client.get(
            f"{double.url}/api/now/table/incident", params={"sysparm_query": query}, timeout=5
        )
        assert response.status_code == 400
        assert "ServiceNowDouble" in response.json()["error"]["detail"]


def test_parse_encoded_query_binds_or_tighter_than_and() -> None:
    parsed = parse_encoded_query("a=1^b=2^ORc=3^ORDERBYDESCd^EQ")
    assert isinstance(parsed, EncodedQuery)
    [group] = parsed.groups
    assert [[(c.field, c.op, c.value) for c in term] for term in group] == [
        [("a", "=", "1")],
        [("b", "=", "2"), ("c", "=", "3")],
    ]
    assert parsed.order == (("d", True),)
    with pytest.raises(QueryNotSupportedError):
        parse_encoded_query("aBETWEEN1@2")


# ---- reading: fields, references, dot-walks -----------------------------------------------


def test_references_render_as_link_and_value_unless_excluded(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    user = double.add_record("sys_user", {"name": "Ann Lee", "user_name": "ann"})
    double.add_record("incident", {"assigned_to": user, "assignment_group": ""})
    [row] = _get(client, double, "incident", sysparm_fields="assigned_to,assignment_group")
    assert row == {
        "assigned_to": {"link": f"{double.url}/api/now/table/sys_user/{user}", "value": user},
        "assignment_group": "",
    }
    [plain] = _get(
        client,
        double,
        "incident",
        sysparm_fields="assigned_to",
        sysparm_exclude_reference_link="true",
    )
    assert plain == {"assigned_to": user}


def test_fields_and_dot_walks_resolve_through_references(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    project = double.add_record("pm_project", {"short_description": "Portal"})
    service = double.add_record("cmdb_ci_service", {"name": "Email"})
    double.add_record("pm_project_task", {"top_task": project, "business_service": service})
    double.add_record("pm_project_task", {"top_task": "", "business_service": "0" * 32})
    rows = _get(
        client,
        double,
        "pm_project_task",
        sysparm_fields="number,top_task.number,business_service.name,u_missing",
    )
    assert rows == [
        {
            "number": "PRJTASK0010001",
            "top_task.number": "PRJ0010001",
            "business_service.name": "Email",
        },
        {"number": "PRJTASK0010002", "top_task.number": "", "business_service.name": ""},
    ]
    rows = _get(client, double, "pm_project_task", sysparm_query="top_task.number=PRJ0010001")
    assert _numbers(rows) == ["PRJTASK0010001"]


def test_task_table_reads_every_task_child(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    double.add_record("incident", {})
    double.add_record("change_request", {})
    rows = _get(client, double, "task", sysparm_fields="number,sys_class_name")
    assert rows == [
        {"number": "INC0010001", "sys_class_name": "incident"},
        {"number": "CHG0010001", "sys_class_name": "change_request"},
    ]


def test_display_values_true_and_all(double: ServiceNowDouble, client: requests.Session) -> None:
    user = double.add_record("sys_user", {"name": "Ann Lee", "user_name": "ann"})
    double.add_record("incident", {"assigned_to": user, "state": "6", "priority": "1"})
    fields = "assigned_to,state,priority"
    [true] = _get(client, double, "incident", sysparm_fields=fields, sysparm_display_value="true")
    assert true == {
        "assigned_to": {
            "display_value": "Ann Lee",
            "link": f"{double.url}/api/now/table/sys_user/{user}",
        },
        "state": "Resolved",
        "priority": "1 - Critical",
    }
    [both] = _get(
        client,
        double,
        "incident",
        sysparm_fields=fields,
        sysparm_display_value="all",
        sysparm_exclude_reference_link="true",
    )
    assert both["assigned_to"] == {"display_value": "Ann Lee", "value": user}
    assert both["state"] == {"display_value": "Resolved", "value": "6"}


def test_get_one_record_and_404(double: ServiceNowDouble, client: requests.Session) -> None:
    sys_id = double.add_record("incident", {"state": "1"})
    one = client.get(f"{double.url}/api/now/table/incident/{sys_id}", timeout=5)
    assert one.json()["result"]["sys_id"] == sys_id
    missing = client.get(f"{double.url}/api/now/table/incident/{'0' * 32}", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "No Record found",
            "detail": "Record doesn't exist or ACL restricts the record retrieval",
        },
        "status": "failure",
    }


# ---- writing ------------------------------------------------------------------------------


def test_patch_updates_fields_appends_journal_and_bumps_mod_count(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    double.clock = lambda: datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)
    sys_id = double.add_record("incident", {"state": "2", "close_notes": ""})
    double.clock = lambda: datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    response = client.patch(
        f"{double.url}/api/now/table/incident/{sys_id}",
        json={"close_notes": "done", "work_notes": "KPI: 3.5 h", "u_unknown": "x"},
        timeout=5,
    )
    result = response.json()["result"]
    assert response.status_code == 200
    assert result["close_notes"] == "done"
    assert result["work_notes"] == ""  # journal fields read back empty (NOTES.md §3)
    assert "u_unknown" not in result
    assert result["sys_mod_count"] == "1"
    assert result["sys_updated_on"] == "2024-05-01 10:00:00"
    assert result["sys_updated_by"] == "bridge.integration"
    assert double.ignored_fields == [("incident", "u_unknown")]
    [entry] = double.journal("incident", sys_id)
    assert {k: entry[k] for k in ("element_id", "name", "element", "value", "sys_created_by")} == {
        "element_id": sys_id,
        "name": "incident",
        "element": "work_notes",
        "value": "KPI: 3.5 h",
        "sys_created_by": "bridge.integration",
    }
    # A second note is a second entry; a PUT with nothing new changes nothing.
    client.put(
        f"{double.url}/api/now/table/incident/{sys_id}", json={"comments": "hello"}, timeout=5
    )
    same = client.patch(
        f"{double.url}/api/now/table/incident/{sys_id}", json={"close_notes": "done"}, timeout=5
    )
    assert same.json()["result"]["sys_mod_count"] == "2"
    assert [e["element"] for e in double.journal("incident", sys_id)] == ["work_notes", "comments"]
    assert double.journal("incident", sys_id, "comments")[0]["value"] == "hello"
    rows = _get(
        client,
        double,
        "sys_journal_field",
        sysparm_query=f"element_id={sys_id}^element=work_notes",
        sysparm_fields="value,element",
    )
    assert rows == [{"value": "KPI: 3.5 h", "element": "work_notes"}]


def test_update_as_user_is_a_human_edit(double: ServiceNowDouble) -> None:
    double.clock = lambda: datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)
    sys_id = double.add_record("incident", {"state": "1"})
    double.clock = lambda: datetime(2024, 5, 1, 9, 5, 0, tzinfo=UTC)
    record = double.update_as_user(
        "incident", sys_id, state="2", comments="on it", sys_updated_by="jane"
    )
    assert (record["state"], record["sys_mod_count"]) == ("2", "1")
    assert (record["sys_updated_on"], record["sys_updated_by"]) == ("2024-05-01 09:05:00", "jane")
    assert record["comments"] == ""
    [entry] = double.journal("incident", sys_id)
    assert (entry["value"], entry["sys_created_by"]) == ("on it", "jane")
    assert double.update_as_user("incident", sys_id)["sys_mod_count"] == "2"  # a save always counts


def test_post_and_delete(double: ServiceNowDouble, client: requests.Session) -> None:
    created = client.post(
        f"{double.url}/api/now/table/incident", json={"short_description": "new"}, timeout=5
    )
    assert created.status_code == 201
    sys_id = created.json()["result"]["sys_id"]
    assert created.headers["Location"].endswith(f"/api/now/table/incident/{sys_id}")
    deleted = client.delete(f"{double.url}/api/now/table/incident/{sys_id}", timeout=5)
    assert (deleted.status_code, deleted.content) == (204, b"")
    with pytest.raises(KeyError):
        double.record("incident", sys_id)


def test_acl_denials(double: ServiceNowDouble, client: requests.Session) -> None:
    sys_id = double.add_record("incident", {"state": "1", "u_secret": "x"})
    double.add_journal("incident", sys_id, "comments", "seeded")
    double.set_acl("sys_journal_field", read=False)
    listed = client.get(f"{double.url}/api/now/table/sys_journal_field", timeout=5)
    assert listed.status_code == 403
    assert listed.json() == {
        "error": {
            "message": "Insufficient rights",
            "detail": "Insufficient rights to query records",
        },
        "status": "failure",
    }
    double.set_acl("incident", "u_secret", read=False)
    [row] = _get(client, double, "incident")
    assert "u_secret" not in row
    double.set_acl("incident", "state", write=False)
    denied = client.patch(
        f"{double.url}/api/now/table/incident/{sys_id}", json={"state": "2"}, timeout=5
    )
    assert denied.status_code == 403
    assert denied.json()["error"] == {
        "message": "Operation Failed",
        "detail": "ACL Exception Update Failed due to security constraints",
    }
    assert double.record("incident", sys_id)["state"] == "1"
    double.set_acl("incident", write=False)
    assert (
        client.patch(
            f"{double.url}/api/now/table/incident/{sys_id}", json={"close_notes": "x"}, timeout=5
        ).status_code
        == 403
    )


def test_task_sla_rows(double: ServiceNowDouble, client: requests.Session) -> None:
    task = double.add_record("incident", {"opened_at": "2024-05-01 08:00:00"})
    sla_row = double.add_task_sla(
        task, stage="completed", has_breached=True, business_percentage="120.5"
    )
    [row] = _get(
        client,
        double,
        "task_sla",
        sysparm_query=f"task={task}^stage!=cancelled",
        sysparm_fields="sys_id,task,sla.name,stage,has_breached,start_time,business_percentage",
        sysparm_exclude_reference_link="true",
    )
    assert row == {
        "sys_id": sla_row,
        "task": task,
        "sla.name": "Priority 1 resolution (4 hour)",
        "stage": "completed",
        "has_breached": "true",
        "start_time": "2024-05-01 08:00:00",
        "business_percentage": "120.5",
    }


# ---- headers and auth ---------------------------------------------------------------------


def test_missing_accept_or_content_type_is_400(double: ServiceNowDouble) -> None:
    sys_id = double.add_record("incident", {})
    auth = ("bridge.integration", "secret")
    no_accept = requests.get(
        f"{double.url}/api/now/table/incident", auth=auth, headers={"Accept": ""}, timeout=5
    )
    assert no_accept.status_code == 400
    no_type = requests.patch(
        f"{double.url}/api/now/table/incident/{sys_id}",
        auth=auth,
        headers=JSON,
        data=b'{"state":"2"}',
        timeout=5,
    )
    assert no_type.status_code == 400
    xml = requests.get(
        f"{double.url}/api/now/table/incident",
        auth=auth,
        headers={"Accept": "application/xml"},
        timeout=5,
    )
    assert xml.status_code == 406


def test_basic_auth(double: ServiceNowDouble) -> None:
    url = f"{double.url}/api/now/table/incident"
    assert requests.get(url, auth=("bridge.integration", "secret"), headers=JSON, timeout=5).ok
    for auth in (("bridge.integration", "wrong"), None):
        response = requests.get(url, auth=auth, headers=JSON, timeout=5)
        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "message": "User Not Authenticated",
                "detail": "Required to provide Auth information",
            },
            "status": "failure",
        }


def _token(double: ServiceNowDouble, **form: str) -> requests.Response:
    return requests.post(
        f"{double.url}/oauth_token.do",
        data={"client_id": "cid", "client_secret": "csecret", **form},
        timeout=5,
    )


def test_oauth_grants_refresh_and_expiry(double: ServiceNowDouble) -> None:
    url = f"{double.url}/api/now/table/incident"
    granted = _token(
        double, grant_type="password", username="bridge.integration", password="secret"
    )
    token = granted.json()
    assert set(token) == {"access_token", "refresh_token", "scope", "token_type", "expires_in"}
    assert (token["token_type"], token["scope"], token["expires_in"]) == (
        "Bearer",
        "useraccount",
        1799,
    )
    bearer = {**JSON, "Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(url, headers=bearer, timeout=5).status_code == 200

    double.expire_tokens()
    expired = requests.get(url, headers=bearer, timeout=5)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "User Not Authenticated"

    refreshed = _token(double, grant_type="refresh_token", refresh_token=token["refresh_token"])
    new_bearer = {**JSON, "Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert requests.get(url, headers=new_bearer, timeout=5).status_code == 200

    machine = _token(double, grant_type="client_credentials")
    assert machine.status_code == 200
    assert _token(double, grant_type="password", username="x", password="y").status_code == 401
    bad_client = requests.post(
        f"{double.url}/oauth_token.do",
        data={"grant_type": "client_credentials", "client_id": "cid", "client_secret": "no"},
        timeout=5,
    )
    assert bad_client.status_code == 401
    double.expire_tokens(refresh=True)
    assert _token(double, grant_type="refresh_token", refresh_token="nope").status_code == 401


def test_tokens_expire_by_ttl() -> None:
    with ServiceNowDouble(token_ttl=0.2) as short:
        token = _token(short, grant_type="client_credentials").json()["access_token"]
        headers = {**JSON, "Authorization": f"Bearer {token}"}
        url = f"{short.url}/api/now/table/incident"
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        time.sleep(0.3)
        assert requests.get(url, headers=headers, timeout=5).status_code == 401


# ---- faults -------------------------------------------------------------------------------


def test_injected_429_has_retry_after_and_rate_limit_headers(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    double.inject(429, times=2, retry_after=3, method="GET")
    url = f"{double.url}/api/now/table/incident"
    first = client.get(url, timeout=5)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "3"
    assert first.headers["X-RateLimit-Limit"] == "100"
    assert int(first.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert "X-RateLimit-Rule" in first.headers
    assert first.json() == {
        "error": {
            "message": "Rate limit exceeded",
            "detail": "Rate limit of 100 requests per hour for Table API exceeded",
        },
        "status": "failure",
    }
    assert client.get(url, timeout=5).status_code == 429
    assert client.get(url, timeout=5).status_code == 200
    assert double.count("GET", r"/table/incident$") == 3


def test_injected_5xx_is_not_applied_and_filters_by_method_and_path(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    sys_id = double.add_record("incident", {"state": "1"})
    double.inject(503, method="PATCH", path=r"/incident/")
    assert client.get(f"{double.url}/api/now/table/incident/{sys_id}", timeout=5).ok
    failed = client.patch(
        f"{double.url}/api/now/table/incident/{sys_id}", json={"state": "2"}, timeout=5
    )
    assert failed.status_code == 503
    assert failed.json()["status"] == "failure"
    assert double.record("incident", sys_id)["state"] == "1"
    # The token endpoint is only hit when a path names it.
    double.inject(500)
    assert _token(double, grant_type="client_credentials").status_code == 200
    double.clear_faults()


def test_injected_timeout_drops_the_request(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    sys_id = double.add_record("incident", {"state": "1"})
    double.inject_timeout(0.5, method="PATCH")
    url = f"{double.url}/api/now/table/incident/{sys_id}"
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.patch(url, json={"state": "2"}, timeout=0.2)
    time.sleep(0.4)
    assert double.record("incident", sys_id)["state"] == "1"
    assert client.patch(url, json={"state": "2"}, timeout=5).status_code == 200
    assert [r.status for r in double.requests if r.method == "PATCH"] == [0, 200]


def test_injected_timeout_can_apply_the_write(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    sys_id = double.add_record("incident", {})
    double.inject_timeout(0.3, apply=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.patch(
            f"{double.url}/api/now/table/incident/{sys_id}", json={"comments": "x"}, timeout=0.1
        )
    time.sleep(0.4)
    assert len(double.journal("incident", sys_id)) == 1


def test_overloaded_answers_empty_202_and_drops_the_write(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    sys_id = double.add_record("incident", {"state": "1"})
    double.inject_overloaded()
    dropped = client.patch(
        f"{double.url}/api/now/table/incident/{sys_id}", json={"state": "2"}, timeout=5
    )
    assert (dropped.status_code, dropped.content) == (202, b"")
    assert double.record("incident", sys_id)["state"] == "1"


def test_latency_scales_with_concurrent_clients() -> None:
    with ServiceNowDouble(latency=0.3) as slow:
        slow.add_record("incident", {})
        statuses: list[int] = []

        def call() -> None:
            response = requests.get(
                f"{slow.url}/api/now/table/incident",
                auth=("bridge.integration", "secret"),
                headers=JSON,
                timeout=10,
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=call) for _ in range(40)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    assert statuses == [200] * 40
    assert elapsed < 2.0  # 40 × 0.3 s would be 12 s if requests were serialised


# ---- cookies and sessions -----------------------------------------------------------------


def test_returned_session_cookies_are_counted(
    double: ServiceNowDouble, client: requests.Session
) -> None:
    url = f"{double.url}/api/now/table/incident"
    first = client.get(url, timeout=5)
    assert first.cookies.get("JSESSIONID")
    client.get(url, timeout=5)  # requests.Session keeps cookies: the anti-pattern
    assert double.cookie_requests == 1
    double.reset_counters()
    auth = ("bridge.integration", "secret")
    requests.get(url, auth=auth, headers=JSON, timeout=5)
    requests.get(url, auth=auth, headers=JSON, timeout=5)
    assert double.cookie_requests == 0
    assert double.count() == 2


def test_one_session_is_serialised_and_overflow_is_dropped_with_202() -> None:
    with ServiceNowDouble(latency=0.3, session_queue_limit=1) as slow:
        auth = ("bridge.integration", "secret")
        url = f"{slow.url}/api/now/table/incident"
        cookie = requests.get(url, auth=auth, headers=JSON, timeout=5).cookies["JSESSIONID"]
        statuses: list[int] = []

        def call(delay: float) -> None:
            time.sleep(delay)
            response = requests.get(
                url, auth=auth, headers=JSON, cookies={"JSESSIONID": cookie}, timeout=10
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=call, args=(0.05 * i,)) for i in range(3)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    assert sorted(statuses) == [200, 200, 202]
    assert elapsed >= 0.55  # the two served requests ran one after the other


# ---- recording ----------------------------------------------------------------------------


def test_requests_are_recorded(double: ServiceNowDouble, client: requests.Session) -> None:
    sys_id = double.add_record("incident", {})
    client.get(f"{double.url}/api/now/table/incident?sysparm_limit=5", timeout=5)
    client.patch(f"{double.url}/api/now/table/incident/{sys_id}", json={"state": "2"}, timeout=5)
    get, patch = double.requests
    assert (get.method, get.path, get.query, get.status) == (
        "GET",
        "/api/now/table/incident",
        {"sysparm_limit": "5"},
        200,
    )
    assert patch.json() == {"state": "2"}
    assert patch.headers["content-type"] == "application/json"
    assert (
        base64.b64decode(patch.headers["authorization"].split()[1]) == b"bridge.integration:secret"
    )
    assert double.count("PATCH") == 1
    assert double.count(path_regex=r"^/api/now/table/incident") == 2
    double.reset_counters()
    assert double.requests == []


# ---- webhooks -----------------------------------------------------------------------------


def test_webhook_body_and_hmac_signature(double: ServiceNowDouble) -> None:
    sys_id = double.add_record("incident", {})
    double.update_as_user("incident", sys_id, state="2")
    body, headers = double.webhook("incident", sys_id, secret="s3cret")
    record = double.record("incident", sys_id)
    assert json.loads(body) == {
        "table": "incident",
        "sys_id": sys_id,
        "sys_updated_on": record["sys_updated_on"],
        "sys_mod_count": "1",
        "operation": "update",
    }
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Bridge-Signature"] == f"sha256={expected}"
    assert headers["Content-Type"] == "application/json"

    _, token_headers = double.webhook(
        "incident", sys_id, secret="s3cret", shared_secret_header=True
    )
    assert token_headers["X-Bridge-Token"] == "s3cret"
    assert "X-Bridge-Signature" not in token_headers
    _, unsigned = double.webhook("incident", sys_id)
    assert not any(name.startswith("X-Bridge") for name in unsigned)

    double.delete("incident", sys_id)
    deleted, _ = double.webhook("incident", sys_id, "delete")
    assert json.loads(deleted)["operation"] == "delete"


# ---- OpenAPI spec -------------------------------------------------------------------------


def test_spec_rejects_requests_the_table_api_does_not_allow() -> None:
    openapi = pytest.importorskip("bridge.testing.openapi")
    spec = openapi.OpenApiSpec.load(SPEC)
    with ServiceNowDouble(spec=spec) as checked, requests.Session() as session:
        session.auth = ("bridge.integration", "secret")
        session.headers.update(JSON)
        sys_id = checked.add_record("incident", {})
        url = f"{checked.url}/api/now/v2/table/incident"
        assert session.get(url, params={"sysparm_limit": "5"}, timeout=5).status_code == 200
        assert session.head(url, timeout=5).status_code == 200
        bad = session.get(url, params={"sysparm_limt": "5"}, timeout=5)
        assert bad.status_code == 400
        assert "sysparm_limt" in bad.json()["error"]["detail"]
        no_body = session.patch(f"{checked.url}/api/now/table/incident/{sys_id}", timeout=5)
        assert no_body.status_code == 400
        assert checked.spec_problems
