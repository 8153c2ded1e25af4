from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.testing import JiraDouble, OpenApiSpec
from bridge.testing.jira import HUMAN_ACCOUNT_ID, JqlError, adf_text

SPEC = Path(__file__).resolve().parents[1] / "data" / "jira" / "openapi-cloud-platform-v3.json"
AUTH = ("bot@example.com", "token")
ADF = adf_text("SPI 0.93, on track")
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def spec() -> OpenApiSpec:
    return OpenApiSpec.load(SPEC)


@pytest.fixture
def jira() -> Iterator[JiraDouble]:
    with JiraDouble(max_page=3) as double:
        yield double


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = AUTH
        yield session


def _seed(double: JiraDouble, n: int = 7, project: str = "OPS") -> list[str]:
    return [
        double.add_issue(
            {"summary": f"item {i}", "updated": T0 + timedelta(hours=i), "created": T0},
            project=project,
        )
        for i in range(n)
    ]


def _search(http: requests.Session, double: JiraDouble, **params: Any) -> requests.Response:
    return http.get(f"{double.url}/rest/api/3/search/jql", params=params, timeout=5)


# -- basics --------------------------------------------------------------------------------------


def test_myself_server_info_and_fields(jira: JiraDouble, http: requests.Session) -> None:
    for version in (2, 3):
        me = http.get(f"{jira.url}/rest/api/{version}/myself", timeout=5).json()
        assert me["accountId"] == "bridge-bot-account"
        assert me["emailAddress"] == "bot@example.com"
    info = http.get(f"{jira.url}/rest/api/2/serverInfo", timeout=5).json()
    assert info["deploymentType"] == "Cloud"
    fields = {f["name"]: f for f in http.get(f"{jira.url}/rest/api/3/field", timeout=5).json()}
    assert fields["SPI"]["schema"]["type"] == "number"
    assert fields["Work type"]["schema"]["type"] == "string"
    assert fields["Phase"]["schema"]["custom"].endswith(":select")
    assert fields["Next breach"]["schema"]["type"] == "datetime"
    assert fields["KPI notes"]["schema"]["custom"].endswith(":textarea")
    assert fields["Time to resolution"]["schema"]["type"] == "sd-servicelevelagreement"
    assert fields["Summary"]["custom"] is False
    assert fields["SPI"]["clauseNames"] == ["cf[10010]", "SPI"]
    assert jira.field_id("phase") == fields["Phase"]["id"]


@pytest.mark.parametrize(
    ("deployment", "headers", "ok"),
    [
        ("cloud", {}, False),
        ("cloud", {"Authorization": "Basic Ym90QGV4YW1wbGUuY29tOndyb25n"}, False),  # wrong token
        ("cloud", {"Authorization": "Bearer pat"}, False),
        ("cloud", {"Authorization": "Bearer oauth"}, True),
        ("datacenter", {"Authorization": "Bearer pat"}, True),
        ("datacenter", {"Authorization": "Basic Ym90QGV4YW1wbGUuY29tOnRva2Vu"}, False),
    ],
)
def test_auth(deployment: Any, headers: dict[str, str], ok: bool) -> None:
    with JiraDouble(deployment=deployment, oauth_token="oauth") as double:
        r = requests.get(f"{double.url}/rest/api/2/myself", headers=headers, timeout=5)
        assert r.status_code == (200 if ok else 401)
        if not ok:
            assert r.json()["errorMessages"]
            assert double.requests[-1].status == 401


# -- Cloud search --------------------------------------------------------------------------------


def test_search_jql_pages_with_tokens(jira: JiraDouble, http: requests.Session) -> None:
    keys = _seed(jira)
    pages: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"jql": "project = OPS ORDER BY key ASC", "maxResults": 50}
        if token:
            params["nextPageToken"] = token
        r = _search(http, jira, **params)
        assert r.status_code == 200
        pages.append(r.json())
        token = pages[-1].get("nextPageToken")
        if token is None:
            break
    assert [len(p["issues"]) for p in pages] == [3, 3, 1]  # maxResults capped at max_page
    assert [p["isLast"] for p in pages] == [False, False, True]
    assert all("total" not in p and "startAt" not in p for p in pages)
    ids = [i["id"] for p in pages for i in p["issues"]]
    assert pages[0]["issues"][0] == {"id": ids[0]}  # default fields: id only
    assert len(set(ids)) == len(keys)


def test_search_jql_post_fields_and_expand(jira: JiraDouble, http: requests.Session) -> None:
    key = jira.add_issue(
        {"summary": "s", "SPI": 0.9, "Phase": "Execution"},
        changelog=[
            {
                "created": T0,
                "items": [{"field": "status", "fieldId": "status", "toString": f"S{i}"}],
            }
            for i in range(25)
        ],
    )
    body = {
        "jql": f"key = {key}",
        "fields": ["summary", "customfield_10010", "customfield_10012"],
        "expand": "names,changelog",
    }
    r = http.post(f"{jira.url}/rest/api/3/search/jql", json=body, timeout=5)
    assert r.status_code == 200
    result = r.json()
    issue = result["issues"][0]
    assert set(issue["fields"]) == {"summary", "customfield_10010", "customfield_10012"}
    assert issue["fields"]["customfield_10012"]["value"] == "Execution"
    assert issue["self"].endswith(f"/rest/api/3/issue/{issue['id']}")
    assert result["names"]["customfield_10010"] == "SPI"
    changelog = issue["changelog"]
    assert (changelog["total"], changelog["maxResults"], changelog["startAt"]) == (25, 20, 5)
    assert len(changelog["histories"]) == 20
    navigable = _search(http, jira, jql=f"key = {key}", fields="*navigable").json()
    assert "comment" not in navigable["issues"][0]["fields"]
    everything = _search(http, jira, jql=f"key = {key}", fields="*all,-summary").json()
    assert "comment" in everything["issues"][0]["fields"]
    assert "summary" not in everything["issues"][0]["fields"]
    bad = http.post(
        f"{jira.url}/rest/api/3/search/jql",
        json={"jql": "project = OPS", "expand": ["names"]},
        timeout=5,
    )
    assert bad.status_code == 400


def test_jql_subset(jira: JiraDouble) -> None:
    ops = _seed(jira, 4)
    web = _seed(jira, 2, project="WEB")
    jira.add_issue({"summary": "other"}, project="PMO")
    jira.touch(ops[0], status="Done")
    assert jira.run_jql("project = OPS") == ops
    assert jira.run_jql("project in (OPS, web) ORDER BY key DESC") == [*web[::-1], *ops[::-1]]
    assert jira.run_jql(f"key in ({ops[1]}, {web[0]})") == [ops[1], web[0]]
    assert jira.run_jql(
        'project = OPS AND updated >= "2024-05-01 11:00" ORDER BY updated DESC'
    ) == [
        ops[0],  # touched just now
        ops[3],
        ops[2],
    ]
    assert jira.run_jql('updated > "2024/05/01 10:00" AND updated < "2024-05-01 12:00"') == [ops[2]]
    assert jira.run_jql("project = OPS AND statusCategory = Done") == [ops[0]]
    assert jira.run_jql('project = WEB OR summary ~ "other" ORDER BY key ASC') == ["PMO-1", *web]
    assert jira.run_jql("assignee = currentUser() OR reporter is EMPTY") == []
    assert jira.run_jql("updated >= -1d AND project = OPS") == [ops[0]]
    jira.touch(ops[1], SPI=0.8, assignee="bridge-bot-account", labels=["kpi"])
    assert jira.run_jql("cf[10010] < 0.9 AND assignee = currentUser()") == [ops[1]]
    assert jira.run_jql("project = OPS AND NOT (labels = kpi OR status = Done)") == ops[2:]
    assert jira.run_jql('project = OPS AND summary !~ "item" OR SPI IS NOT EMPTY') == [ops[1]]
    assert jira.run_jql("project = OPS AND labels NOT IN (kpi)") == []  # empty never matches


def test_search_results_are_not_reused_across_bounds_or_clock() -> None:
    """A cached answer must not outlive what it depended on: the bound check and the clock."""
    moments = [T0 + timedelta(minutes=30)]
    with JiraDouble(clock=lambda: moments[0]) as double:
        key = double.add_issue({"summary": "new", "created": T0})
        assert double.run_jql("created >= -1h") == [key]
        moments[0] = T0 + timedelta(days=1)
        assert double.run_jql("created >= -1h") == []
        assert double.run_jql("ORDER BY key") == [key]
        with pytest.raises(JqlError, match="Unbounded JQL"):
            double.run_jql("ORDER BY key", bounded=True)


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("", "Unbounded"),
        ("ORDER BY key DESC", "Unbounded"),
        ("project = ", "Expecting either a value"),
        ("project = OPS AND", "Expecting a field name"),
        ("project = OPS ORDER updated", "Expecting 'by'"),
        ("nosuchfield = 1", "Field 'nosuchfield' does not exist"),
        ('updated > "yesterday"', "Date value 'yesterday' is invalid"),
        ("summary > 3", "operator '>' is not supported"),
    ],
)
def test_search_jql_refuses(
    jira: JiraDouble, http: requests.Session, jql: str, message: str
) -> None:
    _seed(jira, 1)
    r = _search(http, jira, jql=jql)
    assert r.status_code == 400
    assert message in r.json()["errorMessages"][0]


def test_page_token_belongs_to_its_query(jira: JiraDouble, http: requests.Session) -> None:
    _seed(jira, 4)
    token = _search(http, jira, jql="project = OPS").json()["nextPageToken"]
    assert _search(http, jira, jql="project = WEB", nextPageToken=token).status_code == 400
    assert _search(http, jira, jql="project = OPS", nextPageToken="garbage!").status_code == 400


@pytest.mark.parametrize("version", [2, 3, "latest"])
def test_old_search_is_gone_on_cloud(
    jira: JiraDouble, http: requests.Session, version: Any
) -> None:
    url = f"{jira.url}/rest/api/{version}/search"
    for r in (
        http.get(url, params={"jql": "project = OPS"}, timeout=5),
        http.post(url, json={"jql": "project = OPS"}, timeout=5),
    ):
        assert r.status_code == 410
        assert "CHANGE-2046" in r.json()["errorMessages"][0]
        assert r.json()["errors"] == {}


def test_approximate_count(jira: JiraDouble, http: requests.Session) -> None:
    _seed(jira, 5)
    url = f"{jira.url}/rest/api/3/search/approximate-count"
    assert http.post(url, json={"jql": "project = OPS"}, timeout=5).json() == {"count": 5}
    assert http.post(url, json={"jql": ""}, timeout=5).status_code == 400


# -- Data Center ---------------------------------------------------------------------------------


def test_datacenter_search_clamps_max_results() -> None:
    with JiraDouble(deployment="datacenter", max_page=2) as double, requests.Session() as http:
        http.headers["Authorization"] = "Bearer pat"
        _seed(double, 5)
        url = f"{double.url}/rest/api/2/search"
        first = http.get(url, params={"jql": "order by key", "maxResults": 50}, timeout=5).json()
        assert (first["startAt"], first["maxResults"], first["total"]) == (0, 2, 5)
        assert len(first["issues"]) == 2
        assert "summary" in first["issues"][0]["fields"]  # default: navigable fields
        got = [i["key"] for i in first["issues"]]
        start = first["maxResults"]
        while start < first["total"]:
            page = http.post(
                url, json={"jql": "project = OPS ORDER BY key", "startAt": start}, timeout=5
            ).json()
            got += [i["key"] for i in page["issues"]]
            start += page["maxResults"]
        assert got == [f"OPS-{n}" for n in range(1, 6)]
        assert first["issues"][0]["self"].startswith(f"{double.url}/rest/api/2/issue/")
        assert http.get(f"{double.url}/rest/api/3/myself", timeout=5).status_code == 404
        assert http.get(f"{double.url}/rest/api/2/search/jql", timeout=5).status_code == 404
        me = http.get(f"{double.url}/rest/api/2/myself", timeout=5).json()
        assert me["name"] == "bridge-bot-account"


def test_before_search_changes_the_site_between_pages() -> None:
    """``before_search`` runs before each search request is answered, numbered from 1 (and
    from 1 again after reset_counters). Like Data Center, ``startAt`` is a position: an
    issue deleted between pages moves the later ones back, so the next page misses one."""
    with JiraDouble(deployment="datacenter", max_page=2) as double, requests.Session() as http:
        http.headers["Authorization"] = "Bearer pat"
        keys = _seed(double, 5)
        numbers: list[int] = []

        def hook(number: int) -> None:
            numbers.append(number)
            if number == 2:
                double.delete_issue(keys[0])

        double.before_search = hook
        url = f"{double.url}/rest/api/2/search"
        jql = {"jql": "project = OPS ORDER BY key"}
        first = http.get(url, params={**jql, "startAt": 0}, timeout=5).json()
        second = http.get(url, params={**jql, "startAt": 2}, timeout=5).json()
        assert [i["key"] for i in first["issues"]] == keys[:2]
        assert [i["key"] for i in second["issues"]] == keys[3:5]  # keys[2] moved to page 1
        assert (first["total"], second["total"]) == (5, 4)
        double.reset_counters()
        http.get(url, params=jql, timeout=5)
        assert numbers == [1, 2, 1]
        assert double.searches == 1


# -- issues and changelog ------------------------------------------------------------------------


def test_get_issue_and_changelog(jira: JiraDouble, http: requests.Session) -> None:
    key = jira.add_issue(
        {"summary": "s", "KPI notes": "first line"},
        changelog=[{"created": T0, "items": [{"fieldId": "status", "toString": "Done"}]}] * 5,
    )
    v3 = http.get(
        f"{jira.url}/rest/api/3/issue/{key}", params={"expand": "changelog,names"}, timeout=5
    ).json()
    assert v3["key"] == key
    assert v3["fields"]["customfield_10014"]["type"] == "doc"
    assert v3["changelog"]["total"] == 5
    assert v3["names"]["summary"] == "Summary"
    v2 = http.get(
        f"{jira.url}/rest/api/2/issue/{v3['id']}", params={"fields": "customfield_10014"}, timeout=5
    ).json()
    assert v2["fields"] == {"customfield_10014": "first line"}
    page = http.get(
        f"{jira.url}/rest/api/3/issue/{key}/changelog",
        params={"startAt": 3, "maxResults": 2},
        timeout=5,
    ).json()
    assert (page["startAt"], page["maxResults"], page["total"], page["isLast"]) == (3, 2, 5, True)
    assert len(page["values"]) == 2
    assert "nextPage" not in page
    missing = http.get(f"{jira.url}/rest/api/3/issue/NOPE-1", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {
        "errorMessages": ["Issue does not exist or you do not have permission to see it."],
        "errors": {},
    }
    jira.delete_issue(key)
    assert http.get(f"{jira.url}/rest/api/3/issue/{key}", timeout=5).status_code == 404


def test_put_issue_updates_and_records_history(jira: JiraDouble, http: requests.Session) -> None:
    key = jira.add_issue({"summary": "s", "updated": T0, "labels": ["blocker"]})
    body = {
        "fields": {
            "customfield_10010": 0.93,
            "customfield_10011": "project",
            "customfield_10012": {"id": "10103"},
            "customfield_10013": "2015-11-18T14:39:00.000+1100",
            "customfield_10014": ADF,
            "duedate": "2024-12-30",
        },
        "update": {"labels": [{"add": "triaged"}, {"remove": "blocker"}]},
        "historyMetadata": {"type": "kpi-bridge:update"},
    }
    r = http.put(f"{jira.url}/rest/api/3/issue/{key}", params={"notifyUsers": "false"}, json=body)
    assert r.status_code == 204
    assert r.content == b""
    fields = jira.issue(key)["fields"]
    assert fields["customfield_10010"] == 0.93
    assert fields["customfield_10012"]["value"] == "Monitoring"
    assert fields["customfield_10013"] == "2015-11-18T03:39:00.000+0000"
    assert fields["labels"] == ["triaged"]
    assert fields["updated"] > "2024-05-01T09:00:00.000+0000"
    history = jira.changelog(key)[-1]
    assert history["author"]["accountId"] == "bridge-bot-account"
    assert history["historyMetadata"] == {"type": "kpi-bridge:update"}
    spi = next(i for i in history["items"] if i["fieldId"] == "customfield_10010")
    assert (spi["field"], spi["fieldtype"], spi["toString"]) == ("SPI", "custom", "0.93")
    returned = http.put(
        f"{jira.url}/rest/api/3/issue/{key}",
        params={"returnIssue": "true"},
        json={"fields": {"customfield_10010": None}},
        timeout=5,
    )
    assert returned.status_code == 200
    assert returned.json()["fields"]["customfield_10010"] is None


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"customfield_10010": "0.9"}, "customfield_10010", "must be a number"),
        ({"customfield_10011": 5}, "customfield_10011", "must be a string"),
        ({"customfield_10012": "Execution"}, "customfield_10012", "Specify a valid"),
        ({"customfield_10012": {"value": "Nope"}}, "customfield_10012", "'Nope' is not valid"),
        ({"customfield_10012": {"id": 1}}, "customfield_10012", "id '1' is not valid"),
        ({"customfield_10013": "2015-11-18 14:39"}, "customfield_10013", "date/time"),
        ({"duedate": "30/12/2024"}, "duedate", "Error parsing date"),
        ({"customfield_10014": "plain text"}, "customfield_10014", "Atlassian Document"),
        ({"description": {"type": "doc"}}, "description", "Atlassian Document"),
        ({"customfield_10020": None}, "customfield_10020", "not on the appropriate screen"),
        ({"customfield_99999": 1}, "customfield_99999", "not on the appropriate screen"),
        ({"status": {"name": "Done"}}, "status", "not on the appropriate screen"),
        ({"assignee": {"accountId": "ghost"}}, "assignee", "does not exist"),
    ],
)
def test_put_issue_rejects_wrong_shapes(
    jira: JiraDouble, http: requests.Session, fields: dict[str, Any], field_id: str, message: str
) -> None:
    key = jira.add_issue({"summary": "s"})
    before = jira.issue(key)
    r = http.put(f"{jira.url}/rest/api/3/issue/{key}", json={"fields": fields}, timeout=5)
    assert r.status_code == 400
    assert r.json()["errorMessages"] == []
    assert message in r.json()["errors"][field_id]
    assert jira.issue(key) == before


def test_put_issue_screen_and_versions(jira: JiraDouble, http: requests.Session) -> None:
    key = jira.add_issue({"summary": "s"})
    jira.not_editable.add("customfield_10011")
    r = http.put(f"{jira.url}/rest/api/3/issue/{key}", json={"fields": {"customfield_10011": "x"}})
    assert r.json() == {
        "errorMessages": [],
        "errors": {
            "customfield_10011": "Field 'customfield_10011' cannot be set. It is not on the "
            "appropriate screen, or unknown."
        },
    }
    v2 = f"{jira.url}/rest/api/2/issue/{key}"
    assert http.put(v2, json={"fields": {"customfield_10014": "text"}}).status_code == 204
    assert http.put(v2, json={"fields": {"customfield_10014": ADF}}).status_code == 400
    assert http.put(v2, data=b"").status_code == 400
    assert http.put(f"{jira.url}/rest/api/3/issue/NOPE-9", json={"fields": {}}).status_code == 404


# -- comments and properties ---------------------------------------------------------------------


def test_comments_follow_adf_rules(http: requests.Session) -> None:
    with JiraDouble(max_comments=2) as jira:
        key = jira.add_issue({"summary": "s"})
        human = jira.add_comment(key, "from a person")
        url3 = f"{jira.url}/rest/api/3/issue/{key}/comment"
        url2 = f"{jira.url}/rest/api/2/issue/{key}/comment"
        bad = http.post(url3, json={"body": "plain"}, timeout=5)
        assert bad.status_code == 400
        assert bad.json() == {"errorMessages": ["Comment body is not valid!"], "errors": {}}
        assert http.post(url2, json={"body": ADF}, timeout=5).status_code == 400
        created = http.post(url3, json={"body": ADF}, timeout=5)
        assert created.status_code == 201
        comment = created.json()
        assert comment["author"]["accountId"] == "bridge-bot-account"
        assert comment["body"] == ADF
        listed = http.get(url2, timeout=5).json()
        assert listed["total"] == 2
        assert listed["comments"][1]["body"] == "SPI 0.93, on track"
        edited = http.put(f"{url2}/{comment['id']}", json={"body": "SPI 0.95"}, timeout=5)
        assert edited.status_code == 200
        assert jira.comments(key)[1]["body"] == adf_text("SPI 0.95")
        forbidden = http.put(f"{url3}/{human}", json={"body": ADF}, timeout=5)
        assert forbidden.status_code == 403
        assert http.post(url2, json={"body": "third"}, timeout=5).status_code == 413


def test_properties(jira: JiraDouble, http: requests.Session) -> None:
    key = jira.add_issue({"summary": "s"})
    url = f"{jira.url}/rest/api/3/issue/{key}/properties/bridge.kpi"
    assert http.get(url, timeout=5).status_code == 404
    assert http.put(url, json={"hash": "a"}, timeout=5).status_code == 201
    assert http.put(url, json={"hash": "b"}, timeout=5).status_code == 200
    assert http.get(url, timeout=5).json() == {"key": "bridge.kpi", "value": {"hash": "b"}}
    assert jira.properties(key) == {"bridge.kpi": {"hash": "b"}}
    keys = http.get(f"{jira.url}/rest/api/2/issue/{key}/properties", timeout=5).json()
    assert [k["key"] for k in keys["keys"]] == ["bridge.kpi"]
    assert http.put(url, data=b"not json", timeout=5).status_code == 400
    assert http.delete(url, timeout=5).status_code == 204
    assert jira.properties(key) == {}
    comment = jira.add_comment(key, "c")
    curl = f"{jira.url}/rest/api/3/comment/{comment}/properties/seen"
    assert http.put(curl, json=True, timeout=5).status_code == 201
    assert jira.comment_properties(key, comment) == {"seen": True}


# -- faults, limits, latency ---------------------------------------------------------------------


def test_injected_faults(jira: JiraDouble, http: requests.Session) -> None:
    url = f"{jira.url}/rest/api/3/myself"
    jira.inject(429, times=2, path=r"/myself$", retry_after=7, reason="jira-quota-tenant-based")
    jira.inject(503, retry_after=3)
    jira.inject(502, method="POST")
    first = http.get(url, timeout=5)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert first.headers["RateLimit-Reason"] == "jira-quota-tenant-based"
    reset = datetime.strptime(first.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%M:%SZ")
    assert reset.replace(tzinfo=UTC) > datetime.now(UTC)
    assert http.get(url, timeout=5).status_code == 429
    unavailable = http.get(url, timeout=5)
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "3")
    assert http.get(url, timeout=5).status_code == 200
    gateway = http.post(f"{jira.url}/rest/api/3/search/jql", json={"jql": "x = 1"}, timeout=5)
    assert gateway.status_code == 502
    assert gateway.headers["Content-Type"] == "text/html"
    assert [r.status for r in jira.requests] == [429, 429, 503, 200, 502]


def test_injected_timeout(jira: JiraDouble, http: requests.Session) -> None:
    jira.inject_timeout(2.0, path="myself")
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(f"{jira.url}/rest/api/3/myself", timeout=0.3)
    assert http.get(f"{jira.url}/rest/api/3/myself", timeout=5).status_code == 200


def test_per_issue_write_limit(jira: JiraDouble, http: requests.Session) -> None:
    first, second = jira.add_issue({}), jira.add_issue({})
    url = f"{jira.url}/rest/api/3/issue/{first}"
    statuses = [
        http.put(url, json={"fields": {"customfield_10010": n}}, timeout=5).status_code
        for n in range(21)
    ]
    assert statuses == [204] * 20 + [429]
    limited = http.put(url, json={"fields": {"customfield_10010": 99}}, timeout=5)
    assert limited.headers["RateLimit-Reason"] == "jira-per-issue-on-write"
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    other = f"{jira.url}/rest/api/3/issue/{second}/comment"
    assert http.post(other, json={"body": ADF}, timeout=5).status_code == 201
    jira.reset_counters()
    assert http.put(url, json={"fields": {"customfield_10010": 1}}, timeout=5).status_code == 204


def test_latency_scales_with_concurrent_clients() -> None:
    with JiraDouble(latency=0.05) as double:

        def call(_: int) -> int:
            return requests.get(f"{double.url}/rest/api/3/myself", auth=AUTH, timeout=5).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=40) as pool:
            statuses = list(pool.map(call, range(80)))
        elapsed = time.perf_counter() - started
    assert statuses == [200] * 80
    assert elapsed < 2.0  # 80 × 50 ms would be 4 s one at a time


# -- spec, recording, seeding, webhooks ----------------------------------------------------------


def test_spec_rejects_what_atlassian_does_not_document(
    spec: OpenApiSpec, http: requests.Session
) -> None:
    with JiraDouble(spec=spec) as jira:
        key = jira.add_issue({"summary": "s"})
        r = _search(http, jira, jql="project = OPS", startAt=0)
        assert r.status_code == 400
        assert "unknown query parameter 'startAt'" in r.json()["errorMessages"][0]
        bad = http.put(f"{jira.url}/rest/api/3/issue/{key}", json={"fields": []}, timeout=5)
        assert bad.status_code == 400
        assert "body.fields" in bad.json()["errorMessages"][0]
        good = http.put(
            f"{jira.url}/rest/api/3/issue/{key}",
            params={"notifyUsers": "false"},
            json={"fields": {"customfield_10010": 1}},
            timeout=5,
        )
        assert good.status_code == 204
        # v2 is not in the Cloud v3 document, so it is not checked against it.
        assert _search(http, jira, jql="project = OPS").status_code == 200
        assert http.get(f"{jira.url}/rest/api/2/myself", params={"x": 1}).status_code == 200


def test_recording_and_counters(jira: JiraDouble, http: requests.Session) -> None:
    key = jira.add_issue({})
    http.get(f"{jira.url}/rest/api/3/issue/{key}", params={"fields": "summary"}, timeout=5)
    http.put(f"{jira.url}/rest/api/3/issue/{key}", json={"fields": {"summary": "t"}}, timeout=5)
    recorded = jira.requests
    assert [(r.method, r.status) for r in recorded] == [("GET", 200), ("PUT", 204)]
    assert recorded[0].query == {"fields": ["summary"]}
    assert recorded[1].body == {"fields": {"summary": "t"}}
    assert recorded[1].headers["Authorization"].startswith("Basic ")
    assert jira.count() == 2
    assert jira.count("put", r"/issue/OPS-\d+$") == 1
    jira.reset_counters()
    assert jira.count() == 0


def test_bulk_add_and_touch(jira: JiraDouble) -> None:
    started = time.perf_counter()
    keys = jira.bulk_add(3000, project="BIG", fields=lambda i: {"SPI": i / 1000})
    assert time.perf_counter() - started < 2.0
    assert len(keys) == 3000
    assert jira.issue(keys[-1])["fields"]["customfield_10010"] == 2.999
    before = jira.issue(keys[0])["fields"]["updated"]
    jira.touch(keys[0], **{"Work type": "service", "status": "In Progress"})
    after = jira.issue(keys[0])
    assert after["fields"]["updated"] >= before
    assert after["fields"]["status"]["statusCategory"]["key"] == "indeterminate"
    history = jira.changelog(keys[0])[-1]
    assert history["author"]["accountId"] == HUMAN_ACCOUNT_ID
    assert {i["fieldId"] for i in history["items"]} == {"customfield_10011", "status"}
    assert jira.run_jql('project = BIG AND "Work type" = service') == [keys[0]]


def test_webhook_payload_and_signature(jira: JiraDouble) -> None:
    key = jira.add_issue({"summary": "s", "KPI notes": "text"})
    jira.touch(key, SPI=1.1)
    body, headers = jira.webhook("jira:issue_updated", key, secret="s3cret", identifier="wh-1")
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature"] == f"sha256={expected}"
    assert headers["X-Atlassian-Webhook-Identifier"] == "wh-1"
    assert headers["X-Atlassian-Webhook-Flow"] == "Primary"
    assert "X-Atlassian-Webhook-Retry" not in headers
    payload = json.loads(body)
    assert payload["webhookEvent"] == "jira:issue_updated"
    assert payload["user"]["accountId"] == HUMAN_ACCOUNT_ID
    assert "/rest/api/2/issue/" in payload["issue"]["self"]
    assert payload["issue"]["fields"]["customfield_10014"] == "text"  # v2: text, not ADF
    assert payload["changelog"]["items"][0]["fieldId"] == "customfield_10010"
    again, retry_headers = jira.webhook(
        "jira:issue_updated",
        key,
        user_account_id="bridge-bot-account",
        changelog_items=[{"field": "SPI", "fieldId": "customfield_10010"}],
        identifier="wh-1",
        retry=1,
    )
    assert retry_headers["X-Atlassian-Webhook-Retry"] == "1"
    assert "X-Hub-Signature" not in retry_headers
    assert json.loads(again)["user"]["accountId"] == "bridge-bot-account"
    jira.add_comment(key, "hello")
    comment_body, _ = jira.webhook("comment_created", key)
    comment = json.loads(comment_body)
    assert comment["comment"]["body"] == "hello"
    assert set(comment["issue"]["fields"]) >= {"summary", "status"}


def test_issue_properties_in_search_and_resolution_on_done(
    jira: JiraDouble, http: requests.Session
) -> None:
    key = jira.add_issue({"summary": "s"})
    http.put(f"{jira.url}/rest/api/3/issue/{key}/properties/bridge.kpi", json={"h": 1}, timeout=5)
    found = _search(http, jira, jql=f"key = {key}", fields="summary", properties="bridge.kpi")
    assert found.json()["issues"][0]["properties"] == {"bridge.kpi": {"h": 1}}
    jira.touch(key, status="Done")
    fields = jira.issue(key)["fields"]
    assert fields["resolution"]["name"] == "Done"
    assert fields["resolutiondate"] is not None
    assert jira.run_jql("resolution is EMPTY AND project = OPS") == []
    jira.touch(key, status="In Progress")
    assert jira.run_jql("resolution = EMPTY AND project = OPS") == [key]


def test_stop_cuts_kept_alive_connections(http: requests.Session) -> None:
    double = JiraDouble()
    url = double.start()
    assert http.get(f"{url}/rest/api/3/myself", timeout=5).status_code == 200
    double.inject_timeout(30, path="myself")
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(requests.get, f"{url}/rest/api/3/myself", auth=AUTH, timeout=10)
        time.sleep(0.2)
        started = time.perf_counter()
        double.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            pending.result()
    assert time.perf_counter() - started < 3
    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(f"{url}/rest/api/3/myself", timeout=2)


def test_search_results_map_to_work_items(jira: JiraDouble, http: requests.Session) -> None:
    from bridge.connectors.jira.mapping import items_from_search

    key = jira.add_issue(
        {"Story point estimate": 5, "status": "In Progress", "assignee": HUMAN_ACCOUNT_ID}
    )
    jira.touch(key, status="Done")
    page = _search(http, jira, jql="project = OPS", fields="*all", expand="names,changelog")
    (item,) = items_from_search(page.json(), site_url=jira.url)
    assert (item.key, item.status_category, item.story_points) == (key, "done", 5.0)
    assert item.resolved is not None
    assert [(c.field, c.from_value, c.to_value) for c in item.history] == [
        ("status", "In Progress", "Done")
    ]


@pytest.mark.parametrize(("deployment", "kind"), [("cloud", "Cloud"), ("datacenter", "Server")])
def test_server_info_answers_anyone_like_jira(deployment: Any, kind: str) -> None:
    """``GET /serverInfo`` "can be accessed anonymously"; wrong credentials are still 401."""
    schema = json.loads(SPEC.read_text())["components"]["schemas"]["ServerInformation"]
    with JiraDouble(deployment=deployment) as double:
        url = f"{double.url}/rest/api/2/serverInfo"
        info = requests.get(url, timeout=5).json()
        assert info["deploymentType"] == kind
        assert info["baseUrl"] == double.url
        assert set(info) - {"defaultLocale"} <= set(schema["properties"])  # as captured
        assert isinstance(info["versionNumbers"], list)
        wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
        assert wrong.status_code == 401
        myself = requests.get(f"{double.url}/rest/api/2/myself", timeout=5)
        assert myself.status_code == 401  # only serverInfo is anonymous
