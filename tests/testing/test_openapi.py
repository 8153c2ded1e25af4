from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.testing.openapi import OpenApiSpec

DATA = Path(__file__).resolve().parents[1] / "data"
JIRA_SPEC = DATA / "jira" / "openapi-cloud-platform-v3.json"
SN_SPEC = DATA / "servicenow" / "openapi-table-api.yaml"
EXAMPLES = DATA / "jira" / "atlassian-openapi-examples"

ADF = {
    "type": "doc",
    "version": 1,
    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "KPI: SPI 0.93"}]}],
}


@pytest.fixture(scope="module")
def jira() -> OpenApiSpec:
    return OpenApiSpec.load(JIRA_SPEC)


@pytest.fixture(scope="module")
def servicenow() -> OpenApiSpec:
    return OpenApiSpec.load(SN_SPEC)


def _example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


# -- Jira: requests the spec allows -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("GET", "/rest/api/3/search/jql", {"jql": "project = OPS"}, None),
        (
            "GET",
            "/rest/api/3/search/jql",
            {
                "jql": "project = OPS ORDER BY updated",
                "nextPageToken": "Ch0jU3RyaW5n",
                "fields": ["summary,status", "customfield_10010"],
                "expand": "names,changelog",
                "maxResults": "100",
                "fieldsByKeys": "false",
                "reconcileIssues": ["10001", "10002"],
            },
            None,
        ),
        (
            "POST",
            "/rest/api/3/search/jql",
            {},
            {"jql": "project = OPS", "fields": ["*navigable"], "expand": "names", "maxResults": 50},
        ),
        ("PUT", "/rest/api/3/issue/OPS-1", {"notifyUsers": "false"}, "PUT-issue"),
        ("PUT", "/rest/api/3/issue/10001", {}, {"fields": {"customfield_10010": None}}),
        ("POST", "/rest/api/3/issue/OPS-1/comment", {}, {"body": ADF}),
        ("POST", "/rest/api/3/issue/OPS-1/comment", {"expand": "renderedBody"}, "POST-comment"),
        ("PUT", "/rest/api/3/issue/OPS-1/properties/bridge.kpi", {}, {"hash": "ab12", "v": 1}),
        ("GET", "/rest/api/3/issue/OPS-1", {"fields": "*all", "expand": "changelog"}, None),
        ("GET", "/rest/api/3/myself", {}, None),
        ("GET", "/rest/api/3/field", {}, None),
        ("GET", "/rest/api/3/issue/OPS-1/changelog", {"startAt": "0", "maxResults": "100"}, None),
    ],
)
def test_jira_allows_documented_requests(
    jira: OpenApiSpec, method: str, path: str, query: dict[str, Any], body: Any
) -> None:
    if body == "PUT-issue":
        body = _example("cloud-v3-PUT-issue.request.json")
    elif body == "POST-comment":
        body = _example("cloud-v3-POST-issue-comment.request.json")
    assert jira.validate_request(method, path, query, body) == []


def test_comment_echoing_read_only_fields_is_allowed(jira: OpenApiSpec) -> None:
    body = {"body": ADF, "id": "10000", "author": {"accountId": "x"}, "created": "2024"}
    assert jira.validate_request("POST", "/rest/api/3/issue/OPS-1/comment", {}, body) == []


def test_operation_ids_prefer_literal_segments(jira: OpenApiSpec) -> None:
    assert jira.operation_id("GET", "/rest/api/3/search/jql") == "searchAndReconsileIssuesUsingJql"
    assert jira.operation_id("put", "/rest/api/3/issue/OPS-1") == "editIssue"
    assert jira.operation_id("POST", "/rest/api/3/issue/bulkfetch") == "bulkFetchIssues"
    assert jira.operation_id("POST", "/rest/api/3/search/jql?jql=x") == (
        "searchAndReconsileIssuesUsingJqlPost"
    )
    assert jira.operation_id("GET", "/rest/api/3/nothing/here") is None
    found = jira.match("GET", "/rest/api/3/issue/OPS%2D1/properties/a%20b")
    assert found is not None
    assert found.operation.template == "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"
    assert dict(found.path_params) == {"issueIdOrKey": "OPS-1", "propertyKey": "a b"}


def test_deprecated_search_is_still_an_operation(jira: OpenApiSpec) -> None:
    found = jira.match("GET", "/rest/api/3/search")
    assert found is not None
    assert found.operation.deprecated is True


# -- Jira: requests the spec refuses ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "expected"),
    [
        ("GET", "/rest/api/3/search/jql", {"jql": "x", "startAt": "0"}, None, "unknown query"),
        ("GET", "/rest/api/3/search/jql", {"maxResults": "ten"}, None, "expected an integer"),
        ("GET", "/rest/api/3/search/jql", {"maxResults": "9999999999"}, None, "out of range"),
        ("GET", "/rest/api/3/search/jql", {"failFast": "yes"}, None, "expected true or false"),
        ("GET", "/rest/api/3/search/jql", {"jql": ["a", "b"]}, None, "given 2 times"),
        ("GET", "/rest/api/3/search/jql", {"reconcileIssues": "1,x"}, None, "expected an integer"),
        ("GET", "/rest/api/3/serch/jql", {}, None, "no such operation"),
        ("PATCH", "/rest/api/3/issue/OPS-1", {}, None, "method not allowed"),
        ("PUT", "/rest/api/3/issue/OPS-1", {}, None, "body is required"),
        ("PUT", "/rest/api/3/issue/OPS-1", {}, {"fields": [1]}, "body.fields"),
        ("PUT", "/rest/api/3/issue/OPS-1", {}, {"update": {"labels": [{"put": 1}]}}, "'put'"),
        (
            "PUT",
            "/rest/api/3/issue/OPS-1",
            {"returnIssue": "maybe"},
            {"fields": {}},
            "returnIssue",
        ),
        ("POST", "/rest/api/3/search/jql", {}, {"jql": "x", "startAt": 0}, "startAt"),
        ("POST", "/rest/api/3/search/jql", {}, {"jql": "x", "expand": ["names"]}, "expand"),
        ("GET", "/rest/api/3/myself", {}, {"x": 1}, "takes no request body"),
        ("GET", "/rest/api/3/issuesecurityschemes/abc", {}, None, "path parameter 'id'"),
    ],
)
def test_jira_refuses(
    jira: OpenApiSpec,
    method: str,
    path: str,
    query: dict[str, Any],
    body: Any,
    expected: str,
) -> None:
    problems = jira.validate_request(method, path, query, body)
    assert problems, "expected a problem"
    assert any(expected in p for p in problems), problems


def test_content_type_must_be_declared(jira: OpenApiSpec) -> None:
    path = "/rest/api/3/issue/OPS-1/comment"
    ok = jira.validate_request(
        "POST", path, {}, {"body": ADF}, content_type="application/json; charset=utf-8"
    )
    assert ok == []
    bad = jira.validate_request("POST", path, {}, {"body": ADF}, content_type="text/plain")
    assert bad
    assert "content type" in bad[0]


# -- ServiceNow --------------------------------------------------------------------------------


def test_servicenow_paths_have_no_server_base(servicenow: OpenApiSpec) -> None:
    assert servicenow.base_paths == ("",)
    templates = {op.template for op in servicenow.operations()}
    assert "/api/now/table/{tableName}" in templates
    assert "/api/now/table/{tableName}/{sys_id}" in templates


def test_servicenow_allows_table_reads_and_patches(servicenow: OpenApiSpec) -> None:
    query = {
        "sysparm_query": "active=true^ORDERBYsys_updated_on",
        "sysparm_fields": "sys_id,number,state",
        "sysparm_limit": "100",
        "sysparm_offset": "200",
        "sysparm_display_value": "false",
        "sysparm_exclude_reference_link": "true",
        "sysparm_no_count": "false",
    }
    assert servicenow.validate_request("GET", "/api/now/table/incident", query, None) == []
    # "name-value pairs" in the spec: plain field filters are allowed too.
    assert (
        servicenow.validate_request("GET", "/api/now/table/incident", {"active": "1"}, None) == []
    )
    assert servicenow.operation_id("PATCH", "/api/now/table/incident/abc123") == "patchRecordById"
    body = {"u_spi": "0.93", "work_notes": "KPI update"}
    assert (
        servicenow.validate_request(
            "PATCH", "/api/now/table/incident/abc123", {"sysparm_fields": "sys_id"}, body
        )
        == []
    )


def test_servicenow_refuses(servicenow: OpenApiSpec) -> None:
    unknown = servicenow.validate_request(
        "GET", "/api/now/table/incident", {"sysparm_limt": "10"}, None
    )
    assert len(unknown) == 1
    assert "unknown query parameter 'sysparm_limt'" in unknown[0]
    wrong = servicenow.validate_request(
        "GET", "/api/now/table/incident", {"sysparm_limit": "ten"}, None
    )
    assert "expected a number" in wrong[0]
    no_body = servicenow.validate_request("PATCH", "/api/now/table/incident/abc", {}, None)
    assert "body is required" in no_body[0]
    # The record routes declare no free-form parameters.
    extra = servicenow.validate_request(
        "PATCH", "/api/now/table/incident/abc", {"active": "true"}, {"state": "2"}
    )
    assert "unknown query parameter 'active'" in extra[0]


# -- Documents and speed -----------------------------------------------------------------------


def test_nullable_and_read_only_follow_openapi_3_0(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        """
openapi: 3.0.0
info: {title: t, version: "1"}
servers:
  - url: https://example.com/{base}
    variables: {base: {default: v1}}
paths:
  /things/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer}}
    put:
      parameters:
        - name: tags
          in: query
          explode: false
          schema: {type: array, items: {type: string, enum: [a, b]}}
        - {name: mode, in: query, required: true, schema: {type: string, enum: [x, y]}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Thing"}
      responses:
        204: {description: done}
components:
  schemas:
    Thing:
      type: object
      additionalProperties: false
      required: [id, name]
      properties:
        id: {type: integer, readOnly: true}
        name: {type: string, nullable: true, maxLength: 5}
        child: {allOf: [{$ref: "#/components/schemas/Thing"}], nullable: true}
""",
        encoding="utf-8",
    )
    spec = OpenApiSpec.load(path)
    assert spec.base_paths == ("/v1",)
    ok = spec.validate_request(
        "PUT", "/v1/things/7", {"mode": "x", "tags": "a,b"}, {"name": None, "child": {"name": "n"}}
    )
    assert ok == []
    bad = spec.validate_request(
        "PUT",
        "/v1/things/seven",
        {"tags": ["a", "b"]},
        {"name": "toolong", "child": {"name": 1}, "extra": True},
    )
    text = "\n".join(bad)
    assert "path parameter 'id': expected an integer" in text
    assert "'tags' given 2 times" in text
    assert "missing required query parameter 'mode'" in text
    assert "body: Additional properties" in text
    assert "body.child.name" in text
    assert "body.name" in text
    assert spec.validate_request("PUT", "/things/7", {"mode": "x"}, {"name": "n"})[0].endswith(
        "no such operation in 't'"
    )
    assert (
        "is not one of"
        in spec.validate_request("PUT", "/v1/things/1", {"mode": "x", "tags": "c"}, {"name": "n"})[
            0
        ]
    )


def test_loads_and_validates_quickly() -> None:
    started = time.perf_counter()
    spec = OpenApiSpec.load(JIRA_SPEC)
    loaded = time.perf_counter() - started
    body = _example("cloud-v3-PUT-issue.request.json")
    assert spec.validate_request("PUT", "/rest/api/3/issue/OPS-1", {}, body) == []
    query = {"jql": "project = OPS", "fields": "summary", "nextPageToken": "t"}
    started = time.perf_counter()
    for _ in range(200):
        spec.validate_request("PUT", "/rest/api/3/issue/OPS-1", {}, body)
        spec.validate_request("GET", "/rest/api/3/search/jql", query, None)
    each = (time.perf_counter() - started) / 400
    assert loaded < 2.0
    assert each < 0.001


def test_fast_check_agrees_with_jsonschema_on_atlassian_examples(jira: OpenApiSpec) -> None:
    """The validator answers "valid" from a compiled predicate and asks jsonschema only to
    explain a "no"; both must agree on Atlassian's own request examples and variants."""
    compared = 0
    for info in jira.operations():
        op = jira._ops[(info.method, info.template)]
        jira._compile(op)
        content = (op.raw.get("requestBody") or {}).get("content") or {}
        for media, media_obj in content.items():
            compiled = op.media.get(media)
            example = media_obj.get("example")
            if compiled is None or compiled.fast is None or example is None:
                continue
            if isinstance(example, str):
                try:
                    example = json.loads(example)
                except ValueError:
                    continue
            variants: list[Any] = [example, None, [], "x", 1]
            if isinstance(example, dict):
                for key in list(example)[:4]:
                    variants += [{**example, key: bad} for bad in (None, "s", 1, [], {})]
                variants.append({**example, "zzz_unknown": 1})
            for instance in variants:
                fast = compiled.fast(instance)
                slow = not list(compiled.validator.iter_errors(instance))
                assert fast == slow, (info.method, info.template, instance)
                compared += 1
    assert compared > 1000
