"""ServiceNow requests and answers as the double reads and writes them: the request with the
user it authenticated as, the platform's error envelope and its canned errors, and the
record of each request that tests read back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.testing import _server


class RequestValidator(Protocol):
    """What the double needs of an OpenAPI spec (``bridge.testing.openapi.OpenApiSpec``)."""

    def validate_request(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: Any | None,
        *,
        content_type: str | None = None,
    ) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class RecordedRequest(_server.RecordedRequest[dict[str, str], bytes]):
    """One request as the double saw it; ``headers`` keys are lower-case, ``query`` is last-wins.

    ``status`` is 0 when no response was sent (an injected timeout that drops the request).
    """

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(slots=True)
class ApiRequest:
    method: str  # after X-HTTP-Method-Override
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    user: str = ""  # once authenticated

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)


def error(message: str, detail: str | None) -> dict[str, Any]:
    """The platform's error envelope."""
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


NOT_AUTHENTICATED = error("User Not Authenticated", "Required to provide Auth information")
NO_RECORD = error("No Record found", "Record doesn't exist or ACL restricts the record retrieval")
READ_DENIED = error("Insufficient rights", "Insufficient rights to query records")
WRITE_DENIED = error("Operation Failed", "ACL Exception Update Failed due to security constraints")
# fixtures/servicenow_docs/error_429_rate_limit_exceeded.json
RATE_LIMITED = error(
    "Rate limit exceeded", "Rate limit of 100 requests per hour for Table API exceeded"
)


def int_param(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name, "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a whole number") from None
    if value < 0:
        raise ValueError(f"{name}={text!r} must not be negative")
    return value
