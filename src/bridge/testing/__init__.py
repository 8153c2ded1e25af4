"""Test support that ships with bridge: fake Jira and ServiceNow servers, and an OpenAPI
request validator that makes the fakes refuse what the real APIs would refuse.

Used by bridge's own tests and benchmark, and by anyone testing a plugin against bridge
without a live site. Nothing here is imported by bridge at run time.
"""

from __future__ import annotations

from bridge.testing.jira import JiraDouble, JqlError
from bridge.testing.openapi import OpenApiSpec, OperationInfo, OperationMatch
from bridge.testing.servicenow import ServiceNowDouble

__all__ = [
    "JiraDouble",
    "JqlError",
    "OpenApiSpec",
    "OperationInfo",
    "OperationMatch",
    "ServiceNowDouble",
]
