"""The fake ServiceNow's original import path; the double lives in
:mod:`bridge.testing.servicenow`."""

from __future__ import annotations

from bridge.testing.servicenow import (
    DEFAULT_REFERENCE_TABLES,
    NUMBER_PREFIXES,
    EncodedQuery,
    QueryNotSupportedError,
    RecordedRequest,
    RequestValidator,
    ServiceNowDouble,
    parse_encoded_query,
)

__all__ = [
    "DEFAULT_REFERENCE_TABLES",
    "NUMBER_PREFIXES",
    "EncodedQuery",
    "QueryNotSupportedError",
    "RecordedRequest",
    "RequestValidator",
    "ServiceNowDouble",
    "parse_encoded_query",
]
