"""Jira requests and answers as the double reads and writes them: the JSON body, Jira's
error envelope, parameters from a query string or a POST body, and search page tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.testing import _server
from bridge.testing._server import (
    JSON_CONTENT_TYPE,
    Request,
    Response,
    group_query,
    json_response,
)


@dataclass(frozen=True, slots=True)
class RecordedRequest(_server.RecordedRequest[Mapping[str, list[str]], Any]):
    """One request the double answered, as the client sent it, and the status it got.

    ``query`` holds every value of a parameter, ``headers`` are spelled as the client sent
    them and ``body`` is the decoded JSON (the text when it was not JSON, None when empty).
    """


def errors(*messages: str, errors: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Jira's error envelope."""
    return {"errorMessages": list(messages), "errors": dict(errors or {})}


def reply(status: int, doc: Any = None, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON answer; every one but an empty 204 names its content type, as Jira's do."""
    extra = (headers or {}).items()
    if doc is not None:
        return json_response(status, doc, extra)
    typed = [] if status == 204 else [("Content-Type", JSON_CONTENT_TYPE)]
    return Response(status, b"", [*typed, *extra])


class Reject(Exception):
    """Ends a handler with an error response."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = reply(status, body, headers)


@dataclass(slots=True)
class JiraRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    raw: bytes
    body: Any | None  # the decoded JSON, or the text when it is not JSON
    json_ok: bool

    @staticmethod
    def read(request: Request) -> JiraRequest:
        body: Any | None = None
        json_ok = True
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                json_ok = False
                body = request.body.decode("utf-8", "replace")
        return JiraRequest(
            request.method,
            request.path,
            group_query(request.query),
            request.headers,
            request.body,
            body,
            json_ok,
        )


@dataclass(slots=True)
class Ctx:
    request: JiraRequest
    caller: str
    version: int
    args: dict[str, str]

    def allow(self, *methods: str) -> None:
        if self.request.method not in methods:
            raise Reject(405, errors(f"Method {self.request.method} is not allowed here."))

    def params(self, known: Sequence[str]) -> dict[str, Any]:
        """Query parameters (GET) or the JSON body (POST search), by name."""
        out: dict[str, Any] = {}
        if self.request.method == "POST" and isinstance(self.request.body, Mapping):
            for name in known:
                if name in self.request.body:
                    out[name] = self.request.body[name]
            return out
        for name in known:
            values = self.request.query.get(name)
            if values:
                out[name] = values if name in ("fields", "properties") else values[-1]
        return out


def int_param(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Reject(400, errors(f"The value '{value}' is not valid for '{name}'.")) from None


def offset_page(params: Mapping[str, Any], *, default: int, cap: int) -> tuple[int, int]:
    """``startAt`` and the page size Jira really sends: it clamps ``maxResults`` to
    ``[0, cap]`` rather than refusing a large one."""
    start = int_param(params.get("startAt"), "startAt", 0)
    page = max(0, min(int_param(params.get("maxResults"), "maxResults", default), cap))
    return start, page


def expand_set(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return {part.strip() for part in str(value).split(",") if part.strip()}


def encode_token(offset: int, jql: str) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:12]
    raw = json.dumps({"o": offset, "q": digest}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, jql: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        offset = int(data["o"])
        same = data["q"] == hashlib.sha256(jql.encode()).hexdigest()[:12]
    except (ValueError, KeyError, TypeError):
        raise Reject(400, errors("The provided next page token is invalid.")) from None
    if not same:
        raise Reject(400, errors("The provided next page token does not match the query."))
    return offset
