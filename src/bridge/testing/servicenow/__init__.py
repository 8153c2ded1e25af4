"""A fake ServiceNow instance that speaks real HTTP, for connector, sync and load tests.

The pieces: :mod:`.tables` (the tables a fresh instance knows and their labels),
:mod:`.encoded_query` (``sysparm_query``), :mod:`.instance` (records, journals, ACLs, SLAs,
how records read back), :mod:`.wire` (requests, errors, recorded requests) and :mod:`.http`
(auth, faults, sessions, the Table API and :class:`ServiceNowDouble` itself).
"""

from __future__ import annotations

from bridge.testing.servicenow.encoded_query import (
    EncodedQuery,
    QueryNotSupportedError,
    parse_encoded_query,
)
from bridge.testing.servicenow.http import ServiceNowDouble
from bridge.testing.servicenow.tables import DEFAULT_REFERENCE_TABLES, NUMBER_PREFIXES
from bridge.testing.servicenow.wire import RecordedRequest, RequestValidator

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
