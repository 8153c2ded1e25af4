"""The fake Jira's original import path; the double lives in :mod:`bridge.testing.jira`."""

from __future__ import annotations

from bridge.testing.jira import (
    HUMAN_ACCOUNT_ID,
    JiraDouble,
    JqlError,
    RecordedRequest,
    adf_text,
    adf_to_text,
)
from bridge.testing.jira.values import jira_time

__all__ = [
    "HUMAN_ACCOUNT_ID",
    "JiraDouble",
    "JqlError",
    "RecordedRequest",
    "adf_text",
    "adf_to_text",
    "jira_time",
]
