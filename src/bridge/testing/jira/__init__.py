"""A stateful fake Jira (Cloud v3/v2 or Data Center v2) served over real HTTP on 127.0.0.1.

The pieces: :mod:`.values` (Jira's value formats), :mod:`.model` (fields, statuses, issues),
:mod:`.jql` (the JQL subset), :mod:`.site` (state, seeding, REST rendering, webhooks),
:mod:`.edits` (what a PUT may set), :mod:`.wire` (requests, errors, paging tokens) and
:mod:`.http` (the endpoints and :class:`JiraDouble` itself).
"""

from __future__ import annotations

from bridge.testing.jira.http import JiraDouble
from bridge.testing.jira.jql import JqlError
from bridge.testing.jira.site import HUMAN_ACCOUNT_ID
from bridge.testing.jira.values import adf_text, adf_to_text, jira_time
from bridge.testing.jira.wire import RecordedRequest

__all__ = [
    "HUMAN_ACCOUNT_ID",
    "JiraDouble",
    "JqlError",
    "RecordedRequest",
    "adf_text",
    "adf_to_text",
    "jira_time",
]
