"""The HTTP client against canned responses built from real payloads; every request it sends
to a v3 path is checked against Atlassian's OpenAPI document (method, path, query, body)."""

from __future__ import annotations

import copy
import json
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from bridge.connectors.http import RetryPolicy
from bridge.connectors.jira.client import (
    BasicAuth,
    BearerAuth,
    JiraClient,
    deployment_of,
    permission_for,
)
from bridge.connectors.jira.writes import property_value
from bridge.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorTransportError,
    ItemNotFoundError,
    RateLimitedError,
    RemoteValidationError,
    WriteConflictError,
)
from bridge.model import Classification
from bridge.testing import OpenApiSpec
from bridge.writeback.render import build_summary, to_adf

DATA = Path(__file__).parents[2] / "data" / "jira"
SPEC_PATH = DATA / "openapi-cloud-platform-v3.json"
BASE = "https://acme.atlassian.net"
FIELDS = ("summary", "status", "updated", "customfield_10050")
# The body Jira Cloud answers the removed search with (NOTES §1.2, quoted from
# https://github.com/adyscorpius/logseq-jira/issues/34).
REMOVED = {
    "errorMessages": [
        "The requested API has been removed. Please migrate to the /rest/api/3/search/jql "
        "API. A full migration guideline is available at "
        "https://developer.atlassian.com/changelog/#CHANGE-2046"
    ],
    "errors": {},
}
NOT_ON_SCREEN = {
    "errorMessages": [],
    "errors": {
        "customfield_10050": "Field 'customfield_10050' cannot be set. It is not on the "
        "appropriate screen, or unknown."
    },
}


def load(relative: str) -> Any:
    return json.loads((DATA / relative).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def spec() -> OpenApiSpec:
    return OpenApiSpec.load(SPEC_PATH)


Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Site:
    """Canned answers per (method, path), served in order; every request is validated."""

    mock: responses.RequestsMock
    spec: OpenApiSpec
    replies: dict[tuple[str, str], deque[Reply]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seen: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)

    def on(self, method: str, path: str, *replies: Reply) -> None:
        key = (method, path)
        if key not in self.replies:
            self.replies[key] = deque()
            self.mock.add_callback(method, f"{BASE}{path}", callback=self._answer)
        self.replies[key].extend(replies)

    def _answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(str(request.url))
        query = parse_qs(parts.query, keep_blank_values=True)
        raw = request.body
        body = json.loads(raw) if raw else None
        method = str(request.method)
        self.seen.append((method, parts.path, query, body))
        if parts.path.startswith("/rest/api/3/"):
            found = self.spec.validate_request(
                method,
                parts.path,
                query,
                body,
                content_type=request.headers.get("Content-Type"),
            )
            self.problems.extend(found)
        queue = self.replies[(method, parts.path)]
        status, doc, headers = queue.popleft() if len(queue) > 1 else queue[0]
        text = "" if doc is None else doc if isinstance(doc, str) else json.dumps(doc)
        return status, {"Content-Type": "application/json", **headers}, text

    def requests(
        self, method: str | None = None
    ) -> list[tuple[str, str, dict[str, list[str]], Any]]:
        return [r for r in self.seen if method is None or r[0] == method]


@pytest.fixture
def site(spec: OpenApiSpec) -> Iterator[Site]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        s = Site(mock, spec)
        yield s
        assert s.problems == [], "requests the OpenAPI document does not allow"


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(sleeps: list[float], **options: Any) -> JiraClient:
    options.setdefault("retry", RetryPolicy(max_attempts=5, base_delay=1.0, budget=300.0))
    return JiraClient(
        base_url=BASE,
        auth=BasicAuth("bot@example.com", "api-token"),
        sleep=sleeps.append,
        **options,
    )


def ok(doc: Any = None, status: int = 200, **headers: str) -> Reply:
    return status, doc, dict(headers)


# -- discovery --------------------------------------------------------------------------------


def test_myself_and_fields_from_real_payloads(site: Site, sleeps: list[float]) -> None:
    site.on(
        "GET",
        "/rest/api/3/myself",
        ok(load("atlassian-openapi-examples/cloud-v3-GET-myself.response.json")),
    )
    fields = load("demisto-content/JiraV3__get_issue_fields_test__raw_response.json")
    fields += load("jira-cli/fields.json")
    site.on("GET", "/rest/api/3/field", ok(fields))
    client = make_client(sleeps)

    me = client.myself()
    found = client.fields()

    assert (me["accountId"], me["timeZone"]) == ("5b10a2844c20165700ede21g", "Australia/Sydney")
    assert len(found) == len(fields)
    assert client.field_names["customfield_10071"] == "Time to resolution"
    assert client.field_names["customfield_10111"] == "Original story points"
    assert client.calls == {"read": 2}
    # Basic auth with email:token, and never the token in a repr.
    assert "api-token" not in repr(client.http.session.auth)


# -- search ---------------------------------------------------------------------------------------


def test_search_jql_pages_by_token_including_an_empty_page(site: Site, sleeps: list[float]) -> None:
    official = load("atlassian-openapi-examples/cloud-v3-GET-search-jql.response.json")
    cli = load("jira-cli/search.json")
    first = {"issues": official["issues"], "isLast": False, "nextPageToken": "t1"}
    empty = {"issues": [], "isLast": False, "nextPageToken": "t2"}
    last = {"issues": cli["issues"], "isLast": True}  # the last page carries no token
    site.on("GET", "/rest/api/3/search/jql", ok(first), ok(empty), ok(last))
    client = make_client(sleeps)

    issues = list(
        client.search(
            "(project = OPS) ORDER BY created ASC, key ASC",
            fields=FIELDS,
            properties=["bridge.comment"],
            page_size=2,
        )
    )

    assert [i.get("key") for i in issues] == [
        *(i.get("key") for i in official["issues"]),
        *(i["key"] for i in cli["issues"]),
    ]
    sent = site.requests("GET")
    assert [q.get("nextPageToken") for _, _, q, _ in sent] == [None, ["t1"], ["t2"]]
    assert sent[0][2] == {
        "jql": ["(project = OPS) ORDER BY created ASC, key ASC"],
        "maxResults": ["2"],
        "fields": ["summary,status,updated,customfield_10050"],
        "properties": ["bridge.comment"],
    }
    assert client.calls == {"search": 3}


def test_search_jql_single_real_page(site: Site, sleeps: list[float]) -> None:
    site.on("GET", "/rest/api/3/search/jql", ok(load("jira-cli/search.json")))
    client = make_client(sleeps)
    issues = list(client.search("project = TEST", fields=FIELDS, expand=["changelog"]))
    assert len(issues) == 3
    assert site.requests()[0][2]["expand"] == ["changelog"]


def test_a_repeated_page_token_stops_the_search(site: Site, sleeps: list[float]) -> None:
    page = {"issues": [{"key": "OPS-1", "fields": {}}], "isLast": False, "nextPageToken": "same"}
    site.on("GET", "/rest/api/3/search/jql", ok(page))
    client = make_client(sleeps)
    with pytest.raises(ConnectorError, match="already given"):
        list(client.search("project = OPS", fields=FIELDS))


def test_the_removed_search_answers_410_with_a_clear_error(site: Site, sleeps: list[float]) -> None:
    legacy = load("atlassian-openapi-examples/cloud-v3-GET-search-legacy-deprecated.response.json")
    assert "total" in legacy  # the old envelope, for the record
    site.on("GET", "/rest/api/3/search", ok(REMOVED, 410))
    client = make_client(sleeps)
    with pytest.raises(ConnectorError) as caught:
        client.request("GET", "/rest/api/3/search", kind="search", params={"jql": "project = X"})
    assert caught.value.status == 410
    assert "/rest/api/3/search/jql" in str(caught.value)
    assert "CHANGE-2046" in str(caught.value)
    assert sleeps == []  # never retried


def test_data_center_pages_by_the_echoed_max_results(sleeps: list[float]) -> None:
    issue = load("atlassian-python-api/rest__api__2__issue__FOO-123__GET.json")
    starts: list[int] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(str(request.url)).query)
        assert query["maxResults"] == ["100"]  # always asks for its page size...
        start = int(query["startAt"][0])
        starts.append(start)
        n = min(50, 120 - start)  # ...but the server caps pages at 50
        issues = [dict(copy.deepcopy(issue), key=f"FOO-{start + i}") for i in range(n)]
        body = {"startAt": start, "maxResults": 50, "total": 120, "issues": issues}
        return 200, {}, json.dumps(body)

    with responses.RequestsMock() as mock:
        mock.add_callback("GET", "https://jira.example.com/rest/api/2/search", callback=answer)
        client = JiraClient(
            base_url="https://jira.example.com",
            deployment="datacenter",
            auth=BearerAuth(lambda: "pat"),
            sleep=sleeps.append,
        )
        keys = [i["key"] for i in client.search("project = FOO", fields=FIELDS)]
        assert mock.calls[0].request.headers["Authorization"] == "Bearer pat"
    assert starts == [0, 50, 100]
    assert keys == [f"FOO-{n}" for n in range(120)]


def test_data_center_stops_at_the_result_window(sleeps: list[float]) -> None:
    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        start = int(parse_qs(urlsplit(str(request.url)).query)["startAt"][0])
        issues = [{"key": f"FOO-{start + i}", "fields": {}} for i in range(50)]
        return (
            200,
            {},
            json.dumps({"startAt": start, "maxResults": 50, "total": 10**6, "issues": issues}),
        )

    with responses.RequestsMock() as mock:
        mock.add_callback("GET", "https://jira.example.com/rest/api/2/search", callback=answer)
        client = JiraClient(
            base_url="https://jira.example.com",
            deployment="datacenter",
            auth=BearerAuth(lambda: "pat"),
            sleep=sleeps.append,
            result_window=150,
        )
        search = client.search("project = FOO", fields=FIELDS, page_size=50)
        got: list[dict[str, Any]] = []
        truncated: Any = None
        while True:
            try:
                got.append(next(search))
            except StopIteration as stop:
                truncated = stop.value
                break
    assert len(got) == 150
    assert truncated is True  # the caller narrows the query and goes on


# -- one issue, changelog, comments ----------------------------------------------------------------


def test_changelog_is_paged_until_the_last_page(site: Site, sleeps: list[float]) -> None:
    page = load("atlassian-openapi-examples/cloud-v3-GET-issue-changelog.response.json")
    first = dict(page, startAt=0, isLast=False)
    second = dict(page, startAt=2, isLast=False)
    third = dict(page, startAt=4, isLast=True, values=page["values"][:1])
    site.on("GET", "/rest/api/3/issue/TT-1/changelog", ok(first), ok(second), ok(third))
    client = make_client(sleeps)

    histories = client.changelog("TT-1")

    assert len(histories) == 5
    assert [q["startAt"] for _, _, q, _ in site.requests()] == [["0"], ["2"], ["4"]]


def test_get_issue_and_404(site: Site, sleeps: list[float]) -> None:
    issue = load("atlassian-openapi-examples/cloud-v3-GET-issue.response.json")
    site.on("GET", "/rest/api/3/issue/ED-1", ok(issue))
    site.on(
        "GET",
        "/rest/api/3/issue/GONE-1",
        ok(
            {"errorMessages": ["Issue does not exist or you do not have permission to see it."]},
            404,
        ),
    )
    client = make_client(sleeps)
    assert client.issue("ED-1", fields=FIELDS, properties=["bridge.comment"])["key"] == "ED-1"
    with pytest.raises(ItemNotFoundError) as caught:
        client.issue("GONE-1", fields=FIELDS)
    assert caught.value.item_key == "GONE-1"
    assert "issue GONE-1 does not exist" in str(caught.value)


def test_comment_create_update_and_property(site: Site, sleeps: list[float]) -> None:
    created = load("atlassian-openapi-examples/cloud-v3-POST-issue-comment.response.json")
    updated = load("atlassian-openapi-examples/cloud-v3-PUT-issue-comment-id.response.json")
    site.on("POST", "/rest/api/3/issue/OPS-1/comment", ok(created, 201))
    site.on("PUT", "/rest/api/3/issue/OPS-1/comment/10000", ok(updated))
    site.on("PUT", "/rest/api/3/issue/OPS-1/properties/bridge.comment", ok(None, 201))
    site.on("PUT", "/rest/api/3/issue/OPS-1", ok(None, 204))
    client = make_client(sleeps)
    summary = build_summary("OPS-1", Classification("service", None, "r"), {})
    body = {"body": to_adf(summary)}

    comment = client.add_comment("OPS-1", body)
    client.update_comment("OPS-1", comment["id"], body, notify_users=False)
    client.set_property("OPS-1", "bridge.comment", property_value(comment["id"], summary.digest))
    client.edit_issue("OPS-1", {"fields": {"customfield_10050": 0.5}}, notify_users=False)

    assert comment["id"] == "10000"
    sent = site.requests()
    assert [(m, p) for m, p, _, _ in sent] == [
        ("POST", "/rest/api/3/issue/OPS-1/comment"),
        ("PUT", "/rest/api/3/issue/OPS-1/comment/10000"),
        ("PUT", "/rest/api/3/issue/OPS-1/properties/bridge.comment"),
        ("PUT", "/rest/api/3/issue/OPS-1"),
    ]
    assert sent[0][3] == body
    assert sent[1][2] == {"notifyUsers": ["false"]}
    assert sent[2][3] == {"id": "10000", "digest": summary.digest, "version": 1}
    assert sent[3][2] == {"notifyUsers": ["false"]}
    assert client.calls == {"write": 4}


def test_a_v3_comment_response_with_visibility_is_read(site: Site, sleeps: list[float]) -> None:
    demisto = load("demisto-content/JiraV3__create_comment_test__raw_response.json")
    site.on("POST", "/rest/api/3/issue/21487/comment", ok(demisto, 201))
    client = make_client(sleeps)
    assert (
        client.add_comment("21487", {"body": {"type": "doc", "version": 1, "content": []}})["id"]
        == "18395"
    )


def test_comments_are_listed_newest_first(site: Site, sleeps: list[float]) -> None:
    page = load("atlassian-python-api/rest__api__2__issue__FOO-123__comment__GET.json")
    site.on("GET", "/rest/api/3/issue/FOO-123/comment", ok(page))
    client = make_client(sleeps)
    ids = [c["id"] for c in client.comments("FOO-123")]
    assert ids == [c["id"] for c in page["comments"]]
    assert site.requests()[0][2]["orderBy"] == ["-created"]


# -- retries ---------------------------------------------------------------------------------


def test_429_waits_what_retry_after_says_and_logs_the_reason(
    site: Site, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    site.on(
        "GET",
        "/rest/api/3/myself",
        ok(
            {"errorMessages": ["Rate limit exceeded."]},
            429,
            **{"Retry-After": "7", "RateLimit-Reason": "jira-burst-based"},
        ),
        ok({"accountId": "a"}),
    )
    client = make_client(sleeps)
    with caplog.at_level(logging.WARNING):
        assert client.myself() == {"accountId": "a"}
    assert sleeps == [7.0]
    assert "jira-burst-based" in caplog.text
    assert client.calls == {"read": 1}  # one logical request
    assert client.http.retries == 1


def test_503_three_times_then_success(site: Site, sleeps: list[float]) -> None:
    unavailable = ok({"errorMessages": ["Service Unavailable"]}, 503)
    site.on("GET", "/rest/api/3/field", unavailable, unavailable, unavailable, ok([]))
    client = make_client(sleeps)
    assert client.fields() == []
    assert len(sleeps) == 3
    assert all(0.7 <= s <= 1.3 * 2**i for i, s in enumerate(sleeps))  # backoff with jitter


def test_the_retry_budget_ends_with_a_clear_error(site: Site, sleeps: list[float]) -> None:
    site.on(
        "GET",
        "/rest/api/3/myself",
        ok({}, 429, **{"Retry-After": "1847", "RateLimit-Reason": "jira-quota-global-based"}),
    )
    client = make_client(sleeps, retry=RetryPolicy(rate_limit_budget=300.0))
    with pytest.raises(RateLimitedError) as caught:
        client.myself()
    message = str(caught.value)
    assert "jira-quota-global-based" in message
    assert "1847s more would pass the 300s rate-limit budget" in message
    assert caught.value.retryable
    assert sleeps == []


def test_attempts_run_out_on_persistent_5xx(site: Site, sleeps: list[float]) -> None:
    site.on("GET", "/rest/api/3/myself", ok({"errorMessages": ["down"]}, 502))
    client = make_client(sleeps, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(ConnectorTransportError, match="gave up after 3 attempts"):
        client.myself()
    assert len(sleeps) == 2


def test_a_comment_post_is_not_repeated_after_a_5xx(site: Site, sleeps: list[float]) -> None:
    site.on("POST", "/rest/api/3/issue/OPS-1/comment", ok({}, 500))
    client = make_client(sleeps)
    with pytest.raises(ConnectorTransportError) as caught:
        client.add_comment("OPS-1", {"body": {"type": "doc", "version": 1, "content": []}})
    assert caught.value.retryable
    assert len(site.requests()) == 1


def test_writes_are_limited_per_endpoint(site: Site) -> None:
    now = [0.0]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    site.on("PUT", "/rest/api/3/issue/OPS-1", ok(None, 204))
    site.on("PUT", "/rest/api/3/issue/OPS-2", ok(None, 204))
    site.on("PUT", "/rest/api/3/issue/OPS-1/properties/bridge.comment", ok(None, 200))
    client = JiraClient(
        base_url=BASE,
        auth=BasicAuth("bot@example.com", "api-token"),
        writes_per_second=2,
        sleep=sleep,
        clock=lambda: now[0],
    )
    client.edit_issue("OPS-1", {"fields": {}}, notify_users=False)
    client.edit_issue("OPS-2", {"fields": {}}, notify_users=False)  # same endpoint
    client.set_property("OPS-1", "bridge.comment", {"id": "1"})  # another bucket
    assert naps == []
    client.edit_issue("OPS-1", {"fields": {}}, notify_users=False)
    assert naps == [0.5]  # the edit-issue bucket (2/s) was empty


# -- errors ---------------------------------------------------------------------------------------


def test_401_says_to_check_the_credentials(site: Site, sleeps: list[float]) -> None:
    site.on(
        "GET",
        "/rest/api/3/myself",
        ok({"errorMessages": ["Client must be authenticated to access this resource."]}, 401),
    )
    with pytest.raises(ConnectorAuthError) as caught:
        make_client(sleeps).myself()
    assert "check the email and API token" in str(caught.value)
    assert "PAT" in str(caught.value)
    assert "api-token" not in str(caught.value)


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("GET", "/rest/api/3/search/jql", "Browse projects"),
        ("PUT", "/rest/api/3/issue/OPS-1", "Edit issues"),
        ("POST", "/rest/api/3/issue/OPS-1/comment", "Add comments"),
        ("PUT", "/rest/api/3/issue/OPS-1/comment/1", "Edit own comments"),
        ("PUT", "/rest/api/3/issue/OPS-1/properties/bridge.comment", "Edit issues"),
        ("GET", "/rest/api/3/issue/OPS-1", "Browse projects"),
    ],
)
def test_403_names_the_permission(
    site: Site, sleeps: list[float], method: str, path: str, permission: str
) -> None:
    site.on(method, path, ok({"errorMessages": ["You do not have permission."]}, 403))
    client = make_client(sleeps)
    params = {"jql": "project = OPS"} if path.endswith("/jql") else None
    body = None if method == "GET" else {"body": {"type": "doc", "version": 1, "content": []}}
    if path.endswith("/OPS-1") and method == "PUT":
        body = {"fields": {}}
    with pytest.raises(ConnectorAuthError) as caught:
        client.request(method, path, kind="write", params=params, json=body)
    assert permission in str(caught.value)
    assert permission_for(method, path).startswith(permission)


def test_403_on_notify_users_says_how_to_fix_it(site: Site, sleeps: list[float]) -> None:
    refusal = {
        "errorMessages": [
            "To discard the user notification either admin or project admin permissions are "
            "required."
        ]
    }
    site.on("PUT", "/rest/api/3/issue/OPS-1", ok(refusal, 403))
    with pytest.raises(ConnectorAuthError, match="notify_users: true"):
        make_client(sleeps).edit_issue("OPS-1", {"fields": {}}, notify_users=False)


def test_400_field_not_on_screen_names_the_field(site: Site, sleeps: list[float]) -> None:
    site.on("PUT", "/rest/api/3/issue/OPS-1", ok(NOT_ON_SCREEN, 400))
    client = make_client(sleeps)
    client.field_names = {"customfield_10050": "SPI"}
    with pytest.raises(RemoteValidationError) as caught:
        client.edit_issue("OPS-1", {"fields": {"customfield_10050": 0.9}}, notify_users=False)
    assert (
        "field 'SPI' (customfield_10050) cannot be set: it is not on the edit screen — add it "
        "to the screen or remove it from writeback.fields"
    ) in str(caught.value)
    assert caught.value.field_errors == NOT_ON_SCREEN["errors"]
    assert caught.value.item_key == "OPS-1"
    assert sleeps == []


def test_400_on_search_points_at_the_jql(site: Site, sleeps: list[float]) -> None:
    site.on(
        "GET",
        "/rest/api/3/search/jql",
        ok({"errorMessages": ["The value 'NOPE' does not exist for the field 'project'."]}, 400),
    )
    with pytest.raises(RemoteValidationError) as caught:
        list(make_client(sleeps).search("project = NOPE", fields=FIELDS))
    assert "scope.jql" in str(caught.value)
    assert "NOPE" in str(caught.value)


def test_409_and_413(site: Site, sleeps: list[float]) -> None:
    site.on("PUT", "/rest/api/3/issue/OPS-1", ok({"errorMessages": ["conflict"]}, 409))
    site.on("POST", "/rest/api/3/issue/OPS-1/comment", ok({"errorMessages": ["limit"]}, 413))
    client = make_client(sleeps, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(WriteConflictError) as conflict:
        client.edit_issue("OPS-1", {"fields": {}}, notify_users=False)
    assert conflict.value.retryable
    with pytest.raises(ConnectorError, match="limit of comments"):
        client.add_comment("OPS-1", {"body": {"type": "doc", "version": 1, "content": []}})


def test_an_html_answer_is_a_clear_error(site: Site, sleeps: list[float]) -> None:
    site.on("GET", "/rest/api/3/myself", ok("<html>login</html>"))
    with pytest.raises(ConnectorTransportError, match="not JSON"):
        make_client(sleeps).myself()


# -- OAuth ----------------------------------------------------------------------------------------


def test_oauth_token_read_again_after_a_401(sleeps: list[float], tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old")
    gateway = "https://api.atlassian.com/ex/jira/11223344-a1b2-3b33-c444-def123456789"
    seen: list[str] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        seen.append(str(request.headers["Authorization"]))
        if request.headers["Authorization"] == "Bearer new":
            return 200, {}, json.dumps({"accountId": "app"})
        token_file.write_text("new")  # the refresher rotates it meanwhile
        return 401, {}, json.dumps({"errorMessages": ["expired"]})

    with responses.RequestsMock() as mock:
        mock.add_callback("GET", f"{gateway}/rest/api/3/myself", callback=answer)
        client = JiraClient(
            base_url=gateway, auth=BearerAuth(token_file.read_text), sleep=sleeps.append
        )
        assert client.myself() == {"accountId": "app"}
    assert seen == ["Bearer old", "Bearer new"]
    assert repr(client.http.session.auth) == "BearerAuth('***')"


# -- which Jira the site is ----------------------------------------------------------------------

# jira-cli's captured Cloud answer (fixtures/jira-cli/serverinfo.json, MIT), trimmed.
CLOUD_SERVER_INFO = {
    "baseUrl": "https://demo.atlassian.net",
    "version": "1001.0.0-SNAPSHOT",
    "versionNumbers": [1001, 0, 0],
    "deploymentType": "Cloud",
    "buildNumber": 100204,
    "buildDate": "2022-08-12T12:59:12.000+0200",
    "serverTime": "2022-08-15T21:08:52.725+0200",
    "scmInfo": "948b370c557f4bbf768b92203f3aca5d86ee9758",
    "serverTitle": "Jira",
    "defaultLocale": {"locale": "en_US"},
}
SERVER_INFO = "/rest/api/2/serverInfo"


@pytest.mark.parametrize(
    ("info", "deployment"),
    [
        (CLOUD_SERVER_INFO, "cloud"),
        ({"deploymentType": "cloud"}, "cloud"),
        ({"deploymentType": "Server", "version": "9.12.0"}, "datacenter"),
        ({"deploymentType": "DataCenter"}, "datacenter"),
        ({"version": "6.4.14"}, "datacenter"),  # a Server older than deploymentType
        ({}, None),
        ({"deploymentType": "", "version": ""}, None),
    ],
)
def test_deployment_of(info: dict[str, Any], deployment: str | None) -> None:
    assert deployment_of(info) == deployment


def test_detect_deployment_switches_the_api_paths(site: Site, sleeps: list[float]) -> None:
    site.on("GET", SERVER_INFO, ok({"deploymentType": "Server", "version": "9.12.0"}))
    site.on("GET", "/rest/api/2/myself", ok(load("jira-cli/myself.json")))
    client = make_client(sleeps)  # built as Cloud, the default
    assert client.api == "/rest/api/3"
    assert client.detect_deployment() == "datacenter"
    assert (client.deployment, client.api) == ("datacenter", "/rest/api/2")
    client.myself()
    assert [r[1] for r in site.requests()] == [SERVER_INFO, "/rest/api/2/myself"]
    assert client.calls["read"] == 2

    client.deployment = "cloud"
    assert client.api == "/rest/api/3"


def test_a_refused_credential_is_followed_by_an_anonymous_question(
    site: Site, sleeps: list[float]
) -> None:
    """Cloud refuses a Data Center PAT outright, but says what it is to anyone."""
    site.on(
        "GET",
        SERVER_INFO,
        ok({"errorMessages": ["Client must be authenticated to access this resource."]}, 401),
        ok(CLOUD_SERVER_INFO),
    )
    client = make_client(sleeps)
    assert client.detect_deployment() == "cloud"
    sent = [str(call.request.headers.get("Authorization")) for call in site.mock.calls]
    assert sent[0].startswith("Basic ")
    assert sent[1] == "None"
    assert client.calls["read"] == 2


def test_when_even_the_anonymous_question_is_refused_the_credentials_are_blamed(
    site: Site, sleeps: list[float]
) -> None:
    site.on("GET", SERVER_INFO, ok({"errorMessages": ["Unauthorized"]}, 401))
    with pytest.raises(ConnectorAuthError) as caught:
        make_client(sleeps).detect_deployment()
    message = str(caught.value)
    assert "HTTP 401 — Jira did not accept the credentials" in message
    assert "set deployment: cloud or deployment: datacenter in the source" in message
    assert "api-token" not in message


def test_an_answer_that_is_not_jiras_is_a_clear_error(site: Site, sleeps: list[float]) -> None:
    site.on("GET", SERVER_INFO, ok({"status": "ok"}))
    with pytest.raises(ConnectorError, match="names no deploymentType or version"):
        make_client(sleeps).detect_deployment()


def test_a_failing_site_says_why_it_was_asked(site: Site, sleeps: list[float]) -> None:
    site.on("GET", SERVER_INFO, ok({"errorMessages": ["down"]}, 503))
    with pytest.raises(ConnectorTransportError) as caught:
        make_client(sleeps, retry=RetryPolicy(max_attempts=2, base_delay=0.5)).detect_deployment()
    assert "HTTP 503" in str(caught.value)
    assert "bridge asked the site whether it is Jira Cloud or Data Center" in str(caught.value)
    assert len(sleeps) == 1  # retried once, with the fake sleep
