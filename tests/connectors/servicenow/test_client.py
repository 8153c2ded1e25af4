"""The Table API client against canned responses; every request is checked against the spec."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from bridge.connectors.http import RetryPolicy
from bridge.connectors.servicenow.client import (
    OAuthGrant,
    ServiceNowClient,
    changed_query,
    link_offset,
)
from bridge.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorTransportError,
    ItemNotFoundError,
    RateLimitedError,
    RemoteValidationError,
)
from bridge.testing.openapi import OpenApiSpec
from bridge.timefmt import format_servicenow_instant

from .conftest import Sleeps, fixture, spec_problems

BASE = "https://instance.servicenow.com"
TABLE = f"{BASE}/api/now/table"
SINCE = datetime(2026, 6, 1, tzinfo=UTC)
UNTIL = datetime(2026, 7, 1, 12, tzinfo=UTC)
FIELDS = ("sys_id", "number", "sys_updated_on", "sys_mod_count")
SYS_ID = "a9e30c7dc61122760116894de7bcc7bd"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mocked(spec: OpenApiSpec) -> Iterator[responses.RequestsMock]:
    """Canned responses; afterwards, no request may break the Table API spec."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        assert spec_problems(spec, mock.calls) == []
        for call in mock.calls:
            assert call.request.headers["Accept"] == "application/json"
            assert "Cookie" not in call.request.headers
            if call.request.body:
                assert call.request.headers["Content-Type"].startswith(
                    ("application/json", "application/x-www-form-urlencoded")
                )


def make_client(sleeps: Sleeps, **kwargs: Any) -> ServiceNowClient:
    kwargs.setdefault("auth", requests.auth.HTTPBasicAuth("bridge.integration", "secret"))
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=1.0, budget=300))
    return ServiceNowClient(BASE, who="user bridge.integration", sleep=sleeps, **kwargs)


def problem(n: int, updated: str = "2026-06-02 10:00:00") -> dict[str, Any]:
    record = copy.deepcopy(fixture("table_get_problem_list_limit1.json")["result"][0])
    record["sys_id"] = f"{n:032x}"
    record["number"] = f"PRB00{n:05d}"
    record["sys_updated_on"] = updated
    return {k: record[k] for k in FIELDS}


def link(path: str, **offsets: int) -> str:
    return ",".join(
        f'<{BASE}{path}?sysparm_limit=2&sysparm_offset={at}>;rel="{rel}"'
        for rel, at in offsets.items()
    )


def query_of(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


# ---- pure helpers ----------------------------------------------------------------------------


def test_changed_query_windows_every_alternative_and_orders_by_keyset() -> None:
    query = changed_query("active=true^ORDERBYnumber^NQpriority=1^EQ", since=SINCE, until=UNTIL)
    assert query == (
        "active=true^sys_updated_on>=2026-06-01 00:00:00^sys_updated_on<=2026-07-01 12:00:00"
        "^NQpriority=1^sys_updated_on>=2026-06-01 00:00:00^sys_updated_on<=2026-07-01 12:00:00"
        "^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    after = changed_query("", since=SINCE, until=None, after=("2026-06-02 10:00:00", "ab" * 16))
    assert after == (
        f"sys_updated_on=2026-06-02 10:00:00^sys_id>{'ab' * 16}"
        "^NQsys_updated_on>2026-06-02 10:00:00^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    assert changed_query("", since=None, until=None) == "^ORDERBYsys_updated_on^ORDERBYsys_id"


def test_literals_are_plain_utc_never_javascript() -> None:
    berlin = datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2)))
    assert format_servicenow_instant(berlin) == "2026-03-29 01:30:00"
    assert "javascript" not in changed_query("", since=berlin, until=berlin)


def test_link_offset_reads_the_platform_format() -> None:
    # The gist's real header: prev is -1 at offset 0.
    header = (
        "<https://demo003.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_fields"
        '=number&sysparm_offset=0>;rel="first",<https://demo003.service-now.com/api/now/table/'
        'incident?sysparm_limit=1&sysparm_fields=number&sysparm_offset=-1>;rel="prev",<https://'
        "demo003.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_fields=number&"
        'sysparm_offset=1>;rel="next",<https://demo003.service-now.com/api/now/table/incident?'
        'sysparm_limit=1&sysparm_fields=number&sysparm_offset=549>;rel="last"'
    )
    assert link_offset(header) == 1
    assert link_offset(header, "prev") == -1
    assert link_offset(header, "last") == 549
    assert link_offset('<x?sysparm_offset=2>;rel="first"') is None


# ---- paging ----------------------------------------------------------------------------------


def test_pages_by_keyset_while_link_says_there_is_more(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    path = "/api/now/table/problem"
    first = [problem(1), problem(2, "2026-06-02 11:00:00")]
    mocked.get(
        f"{BASE}{path}",
        json={"result": first},
        headers={"Link": link(path, first=0, prev=-2, next=2, last=1), "X-Total-Count": "3"},
    )
    mocked.get(
        f"{BASE}{path}",
        json={"result": [problem(3, "2026-06-03 09:00:00")]},
        headers={"Link": link(path, first=0, prev=-2, last=0), "X-Total-Count": "1"},
    )
    client = make_client(sleeps)

    pages = list(
        client.changed_records(
            "problem",
            filter_text="active=true",
            since=SINCE,
            until=UNTIL,
            fields=FIELDS,
            page_size=2,
        )
    )

    assert [len(p.records) for p in pages] == [2, 1]
    assert [p.total for p in pages] == [3, 1]
    one, two = (query_of(c) for c in mocked.calls)
    assert one["sysparm_query"] == changed_query("active=true", since=SINCE, until=UNTIL)
    assert two["sysparm_query"] == changed_query(
        "active=true", since=SINCE, until=UNTIL, after=("2026-06-02 11:00:00", f"{2:032x}")
    )
    assert "sysparm_offset" not in two  # keyset, not offset
    for query in (one, two):
        assert query["sysparm_fields"] == ",".join(FIELDS)
        assert query["sysparm_exclude_reference_link"] == "true"
        assert query["sysparm_limit"] == "2"


def test_without_a_link_header_the_total_decides(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(
        f"{TABLE}/problem",
        json={"result": [problem(1), problem(2)]},
        headers={"X-Total-Count": "2"},
    )
    pages = list(
        make_client(sleeps).changed_records(
            "problem", filter_text="", since=None, until=None, fields=FIELDS, page_size=2
        )
    )
    assert len(pages) == 1
    assert len(mocked.calls) == 1


def test_a_page_emptied_by_acls_is_stepped_over_by_offset(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    """sysparm_limit applies before ACLs: a page can be empty with readable records after it."""
    path = "/api/now/table/problem"
    mocked.get(
        f"{BASE}{path}",
        json={"result": []},
        headers={"Link": link(path, first=0, next=2, last=2), "X-Total-Count": "4"},
    )
    mocked.get(
        f"{BASE}{path}",
        json={"result": [problem(4)]},
        headers={"Link": link(path, first=0, prev=0, last=2), "X-Total-Count": "4"},
    )

    pages = list(
        make_client(sleeps).changed_records(
            "problem", filter_text="", since=SINCE, until=UNTIL, fields=FIELDS, page_size=2
        )
    )

    assert [r["sys_id"] for p in pages for r in p.records] == [f"{4:032x}"]
    assert query_of(mocked.calls[1])["sysparm_offset"] == "2"


def test_list_records_follows_link_offsets(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    path = "/api/now/table/task_sla"
    mocked.get(
        f"{BASE}{path}",
        json={"result": [{"sys_id": "1"}, {"sys_id": "2"}]},
        headers={"Link": link(path, first=0, next=2, last=2)},
    )
    mocked.get(
        f"{BASE}{path}",
        json={"result": [{"sys_id": "3"}]},
        headers={"Link": link(path, first=0, prev=0, last=2)},
    )

    rows = list(
        make_client(sleeps).list_records(
            "task_sla", query="taskINa,b", fields=("sys_id",), page_size=2
        )
    )

    assert [r["sys_id"] for r in rows] == ["1", "2", "3"]


def test_an_empty_v1_404_list_is_an_empty_page(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(
        f"{TABLE}/problem", status=404, json=fixture("delete_security_incident_invalid_sys_id.json")
    )
    assert make_client(sleeps).find_one("problem", "number=PRB1", fields=FIELDS) is None


def test_an_empty_result(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(
        f"{TABLE}/problem",
        json=fixture("search_security_incident_empty_list.json"),
        headers={"X-Total-Count": "0"},
    )
    pages = list(
        make_client(sleeps).changed_records(
            "problem", filter_text="", since=SINCE, until=UNTIL, fields=FIELDS, page_size=10
        )
    )
    assert [p.records for p in pages] == [[]]


# ---- retries ---------------------------------------------------------------------------------


def test_429_waits_what_retry_after_says(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(
        f"{TABLE}/problem/{SYS_ID}",
        status=429,
        headers={"Retry-After": "7"},
        json=fixture("error_429_rate_limit_exceeded.json"),
    )
    mocked.get(f"{TABLE}/problem/{SYS_ID}", json={"result": problem(1)})

    record = make_client(sleeps).get_record("problem", SYS_ID, fields=FIELDS)

    assert record["number"] == "PRB0000001"
    assert sleeps.waits == [7.0]


def test_429_beyond_the_budget_is_a_clear_error(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(
        f"{TABLE}/problem/{SYS_ID}",
        status=429,
        headers={"Retry-After": "3600"},
        json=fixture("error_429_rate_limit_exceeded.json"),
    )
    client = make_client(sleeps, retry=RetryPolicy(rate_limit_budget=120))

    with pytest.raises(RateLimitedError) as caught:
        client.get_record("problem", SYS_ID, fields=FIELDS)

    message = str(caught.value)
    assert "Rate limit of 100 requests per hour for Table API exceeded" in message
    assert "would pass the 120s rate-limit budget" in message
    assert caught.value.retry_after == 3600


def test_503_three_times_then_ok(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    for _ in range(3):
        mocked.get(
            f"{TABLE}/problem/{SYS_ID}",
            status=503,
            json={"error": {"message": "Service Unavailable", "detail": None}, "status": "failure"},
        )
    mocked.get(f"{TABLE}/problem/{SYS_ID}", json={"result": problem(1)})

    make_client(sleeps).get_record("problem", SYS_ID, fields=FIELDS)

    assert len(sleeps.waits) == 3
    assert sleeps.waits[0] < sleeps.waits[2]  # exponential backoff (1, 2, 4 s ± jitter)


def test_retries_exhausted_say_how_often_and_why(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(
        f"{TABLE}/problem/{SYS_ID}",
        status=503,
        json={"error": {"message": "Service Unavailable", "detail": None}, "status": "failure"},
    )
    client = make_client(sleeps, retry=RetryPolicy(max_attempts=3))

    with pytest.raises(ConnectorError, match=r"HTTP 503 .*Service Unavailable.*gave up after 3"):
        client.get_record("problem", SYS_ID, fields=FIELDS)
    assert len(mocked.calls) == 3


def test_202_from_an_overloaded_session_is_retried(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(
        f"{TABLE}/problem/{SYS_ID}", status=202, body="", content_type="text/html;charset=UTF-8"
    )
    mocked.get(f"{TABLE}/problem/{SYS_ID}", json={"result": problem(1)})

    assert make_client(sleeps).get_record("problem", SYS_ID, fields=FIELDS)["sys_id"]
    assert len(mocked.calls) == 2
    assert len(sleeps.waits) == 1


def test_a_hibernating_instance_is_a_clear_error(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(
        f"{TABLE}/problem/{SYS_ID}",
        status=200,
        content_type="text/html",
        body="<html><body>Your instance is hibernating</body></html>",
    )

    with pytest.raises(ConnectorError, match=r"HTML page .*hibernating"):
        make_client(sleeps).get_record("problem", SYS_ID, fields=FIELDS)
    assert len(mocked.calls) == 1  # not retried: waiting will not wake it


def test_timeouts_on_reads_are_retried(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(f"{TABLE}/problem/{SYS_ID}", body=requests.ReadTimeout("slow"))
    mocked.get(f"{TABLE}/problem/{SYS_ID}", json={"result": problem(1)})
    assert make_client(sleeps).get_record("problem", SYS_ID, fields=FIELDS)
    assert len(sleeps.waits) == 1


# ---- errors people can act on ----------------------------------------------------------------


def test_403_on_a_read_names_the_table(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(
        f"{TABLE}/sys_journal_field",
        status=403,
        json=fixture("get_incident_comments_worknotes_journal_forbidden.json"),
    )

    with pytest.raises(ConnectorAuthError) as caught:
        make_client(sleeps).find_one("sys_journal_field", "element_id=x", fields=("sys_id",))

    assert str(caught.value) == (
        "ServiceNow refused to read sys_journal_field: Insufficient rights to query records "
        "— grant the integration user read access to sys_journal_field (a role such as itil, "
        "or a read ACL)"
    )
    assert len(mocked.calls) == 1


def test_403_on_a_write_names_the_fields(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.patch(
        f"{TABLE}/incident/{SYS_ID}",
        status=403,
        json={
            "error": {
                "message": "Operation Failed",
                "detail": "ACL Exception Update Failed due to security constraints",
            },
            "status": "failure",
        },
    )

    with pytest.raises(ConnectorAuthError) as caught:
        make_client(sleeps).patch_record(
            "incident",
            SYS_ID,
            {"u_work_type": "service"},
            fields=("u_work_type",),
            adds_journal=False,
        )

    assert str(caught.value).startswith(
        "ServiceNow refused to update incident.u_work_type: ACL Exception Update Failed due to "
        "security constraints — grant the integration user write access to the field"
    )


def test_404_is_item_not_found_with_the_key(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(
        f"{TABLE}/incident/{SYS_ID}",
        status=404,
        json=fixture("delete_security_incident_invalid_sys_id.json"),
    )

    with pytest.raises(ItemNotFoundError) as caught:
        make_client(sleeps).get_record("incident", SYS_ID, fields=FIELDS)

    assert caught.value.item_key == f"incident:{SYS_ID}"
    assert "or an ACL hides it" in str(caught.value)
    assert "Record doesn't exist or ACL restricts the record retrieval" in str(caught.value)


def test_400_for_an_unknown_table(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(
        f"{TABLE}/u_nope",
        status=400,
        json={
            "error": {"message": "Invalid table u_nope", "detail": "Table u_nope does not exist"},
            "status": "failure",
        },
    )
    with pytest.raises(RemoteValidationError, match=r"has no table u_nope.*check scope\.tables"):
        make_client(sleeps).find_one("u_nope", "", fields=FIELDS)


def test_401_with_basic_auth_is_not_retried(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(
        f"{TABLE}/incident/{SYS_ID}",
        status=401,
        headers={"X-MFA_TOKEN": "invalid"},
        json={
            "error": {
                "message": "User Not Authenticated",
                "detail": "Required to provide Auth information",
            },
            "status": "failure",
        },
    )

    with pytest.raises(ConnectorAuthError, match=r"credentials of user bridge\.integration .*MFA"):
        make_client(sleeps).get_record("incident", SYS_ID, fields=FIELDS)
    assert len(mocked.calls) == 1  # a wrong password is not tried twice (account lockout)


# ---- writes ----------------------------------------------------------------------------------


def test_patch_sends_json_and_asks_only_for_the_written_fields(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.patch(
        f"{TABLE}/incident/{SYS_ID}", json={"result": {"u_work_type": "service", "sys_id": SYS_ID}}
    )

    stored = make_client(sleeps).patch_record(
        "incident",
        SYS_ID,
        {"u_work_type": "service", "work_notes": "bridge: ..."},
        fields=("u_work_type", "sys_id"),
        adds_journal=True,
    )

    assert stored == {"u_work_type": "service", "sys_id": SYS_ID}
    [call] = mocked.calls
    assert call.request.headers["Content-Type"] == "application/json"
    assert query_of(call) == {"sysparm_fields": "u_work_type,sys_id"}


def test_a_journal_patch_is_not_repeated_after_a_timeout(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.patch(f"{TABLE}/incident/{SYS_ID}", body=requests.ReadTimeout("slow"))
    mocked.patch(f"{TABLE}/incident/{SYS_ID}", json={"result": {}})

    with pytest.raises(ConnectorTransportError, match="timed out"):
        make_client(sleeps).patch_record(
            "incident", SYS_ID, {"work_notes": "x"}, fields=(), adds_journal=True
        )
    assert len(mocked.calls) == 1


def test_a_field_patch_is_repeated_after_a_timeout(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.patch(f"{TABLE}/incident/{SYS_ID}", body=requests.ReadTimeout("slow"))
    mocked.patch(f"{TABLE}/incident/{SYS_ID}", json={"result": {"u_rule": "x"}})

    make_client(sleeps).patch_record(
        "incident", SYS_ID, {"u_rule": "x"}, fields=("u_rule",), adds_journal=False
    )
    assert len(mocked.calls) == 2


def test_a_journal_patch_dropped_with_202_is_sent_again(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.patch(f"{TABLE}/incident/{SYS_ID}", status=202, body="", content_type="text/html")
    mocked.patch(f"{TABLE}/incident/{SYS_ID}", status=202, body="", content_type="text/html")
    mocked.patch(f"{TABLE}/incident/{SYS_ID}", json={"result": {"sys_id": SYS_ID}})

    stored = make_client(sleeps).patch_record(
        "incident", SYS_ID, {"work_notes": "x"}, fields=("sys_id",), adds_journal=True
    )
    assert stored == {"sys_id": SYS_ID}
    assert len(mocked.calls) == 3
    assert len(sleeps.waits) == 2


@pytest.mark.parametrize("rate_limited", [False, True])
def test_a_journal_patch_refused_every_time_stays_within_the_rate_limit_budget(
    mocked: responses.RequestsMock, sleeps: Sleeps, rate_limited: bool
) -> None:
    url = f"{TABLE}/incident/{SYS_ID}"
    for n in range(10):
        if rate_limited and n % 2:
            mocked.patch(url, status=429, headers={"Retry-After": "1"}, json={"error": {}})
        else:
            mocked.patch(url, status=202, body="", content_type="text/html")
    # Dropped (202) and rate-limited (429) answers are no attempts: max_attempts does not
    # stop them, the rate-limit budget does.
    client = make_client(sleeps, retry=RetryPolicy(max_attempts=4, rate_limit_budget=20))

    with pytest.raises(ConnectorError, match=r"gave up after waiting \d+s on rate limits"):
        client.patch_record(
            "incident", SYS_ID, {"work_notes": "x"}, fields=("sys_id",), adds_journal=True
        )
    assert len(mocked.calls) > 4
    assert len(sleeps.waits) == len(mocked.calls) - 1
    assert sum(sleeps.waits) <= 20
    assert client.http.retries == len(mocked.calls) - 1


def test_journal_has(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    url = f"{TABLE}/sys_journal_field"
    mocked.get(url, json=fixture("get_incident_comments_worknotes_journal.json"))
    mocked.get(url, json={"result": []})
    mocked.get(
        url, status=403, json=fixture("get_incident_comments_worknotes_journal_forbidden.json")
    )
    client = make_client(sleeps)

    assert client.journal_has("incident", SYS_ID, "work_notes", "[bridge summary x]") is True
    assert client.journal_has("incident", SYS_ID, "work_notes", "[bridge summary x]") is False
    assert client.journal_has("incident", SYS_ID, "work_notes", "[bridge summary x]") is None
    assert query_of(mocked.calls[0])["sysparm_query"] == (
        f"name=incident^element_id={SYS_ID}^element=work_notes^valueLIKE[bridge summary x]"
    )


# ---- OAuth -----------------------------------------------------------------------------------

TOKEN_URL = f"{BASE}/oauth_token.do"
GRANT = OAuthGrant("password", "cid", "csecret", user="bridge.integration", password="pw")


def token(n: int, expires_in: int = 1799) -> dict[str, Any]:
    doc = dict(fixture("oauth_token_password_grant_response.json"))
    doc["access_token"] = f"access-{n}"
    doc["expires_in"] = expires_in
    return doc


def bearer(call: Any) -> str:
    return str(call.request.headers["Authorization"])


def form(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def test_password_grant_then_bearer(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.post(TOKEN_URL, json=fixture("oauth_token_password_grant_response.json"))
    mocked.get(f"{TABLE}/incident/{SYS_ID}", json={"result": problem(1)})
    client = make_client(sleeps, auth=None, oauth=GRANT)

    client.get_record("incident", SYS_ID, fields=FIELDS)

    grant, read = mocked.calls
    assert form(grant) == {
        "grant_type": "password",
        "client_id": "cid",
        "client_secret": "csecret",
        "username": "bridge.integration",
        "password": "pw",
    }
    assert grant.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    expected = fixture("oauth_token_password_grant_response.json")["access_token"]
    assert bearer(read) == f"Bearer {expected}"


def test_the_token_is_refreshed_before_it_expires(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    clock = Clock()
    mocked.post(TOKEN_URL, json=token(1))
    mocked.post(TOKEN_URL, json=token(2))
    mocked.get(f"{TABLE}/incident/{SYS_ID}", json={"result": problem(1)})
    client = make_client(sleeps, auth=None, oauth=GRANT, clock=clock)

    client.get_record("incident", SYS_ID, fields=FIELDS)
    clock.now += 1700  # 99 s before expiry: inside the 60 s margin? no — still valid
    client.get_record("incident", SYS_ID, fields=FIELDS)
    clock.now += 60  # 39 s before expiry: renewed first
    client.get_record("incident", SYS_ID, fields=FIELDS)

    posts = [c for c in mocked.calls if c.request.url == TOKEN_URL]
    reads = [c for c in mocked.calls if c.request.url != TOKEN_URL]
    assert [bearer(c) for c in reads] == ["Bearer access-1", "Bearer access-1", "Bearer access-2"]
    assert form(posts[1])["grant_type"] == "refresh_token"
    assert form(posts[1])["refresh_token"] == token(1)["refresh_token"]
    assert not any(c.response.status_code == 401 for c in reads)


def test_a_401_mid_sync_renews_the_token_and_repeats_once(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    not_authenticated = {
        "error": {
            "message": "User Not Authenticated",
            "detail": "Required to provide Auth information",
        },
        "status": "failure",
    }
    mocked.post(TOKEN_URL, json=token(1))
    mocked.post(TOKEN_URL, json=token(2))
    url = f"{TABLE}/incident/{SYS_ID}"
    mocked.get(url, json={"result": problem(1)})
    mocked.get(url, status=401, json=not_authenticated)
    mocked.get(url, json={"result": problem(1)})
    client = make_client(sleeps, auth=None, oauth=GRANT)

    client.get_record("incident", SYS_ID, fields=FIELDS)
    client.get_record("incident", SYS_ID, fields=FIELDS)  # revoked: 401, renew, repeat

    reads = [c for c in mocked.calls if c.request.url != TOKEN_URL]
    assert [bearer(c) for c in reads] == ["Bearer access-1", "Bearer access-1", "Bearer access-2"]
    assert sleeps.waits == []

    mocked.replace(responses.GET, url, status=401, json=not_authenticated)
    mocked.post(TOKEN_URL, json=token(3))
    with pytest.raises(ConnectorAuthError, match="OAuth client cid"):
        client.get_record("incident", SYS_ID, fields=FIELDS)  # once, not forever


def test_a_refused_refresh_token_falls_back_to_the_grant(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    clock = Clock()
    mocked.post(TOKEN_URL, json=token(1, expires_in=100))
    mocked.post(
        TOKEN_URL, status=401, json={"error_description": "access_denied", "error": "server_error"}
    )
    mocked.post(TOKEN_URL, json=token(2))
    mocked.get(f"{TABLE}/incident/{SYS_ID}", json={"result": problem(1)})
    client = make_client(sleeps, auth=None, oauth=GRANT, clock=clock)

    client.get_record("incident", SYS_ID, fields=FIELDS)
    clock.now += 95
    client.get_record("incident", SYS_ID, fields=FIELDS)

    grants = [form(c)["grant_type"] for c in mocked.calls if c.request.url == TOKEN_URL]
    assert grants == ["password", "refresh_token", "password"]


def test_a_refused_client_credentials_grant_says_what_to_enable(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.post(
        TOKEN_URL, status=401, json={"error_description": "access_denied", "error": "server_error"}
    )
    client = make_client(sleeps, auth=None, oauth=OAuthGrant("client_credentials", "cid", "wrong"))

    with pytest.raises(ConnectorAuthError) as caught:
        client.get_record("incident", SYS_ID, fields=FIELDS)

    message = str(caught.value)
    assert "refused the OAuth client_credentials grant for client cid: access_denied" in message
    assert "glide.oauth.inbound.client.credential.grant_type.enabled" in message
    assert form(mocked.calls[0]) == {
        "grant_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "wrong",
    }
