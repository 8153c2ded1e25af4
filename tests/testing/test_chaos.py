"""Interrupted ``bridge sync`` processes never write twice (issue: never twice).

25 random SIGINT/SIGTERM/SIGKILL interruptions of real ``bridge sync`` processes over 300
tickets on each double while people edit them, then two clean syncs: exactly one bridge
comment per Jira issue, no ServiceNow work note that repeats the one before it, and every
item's fields what bridge computes for it. Jira's store is PostgreSQL, ServiceNow's SQLite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.testing.chaos import run_chaos
from tests.store.test_store import POSTGRES_URL, _postgres


@pytest.mark.postgres
def test_25_interrupted_jira_syncs_leave_one_comment_per_issue(tmp_path: Path) -> None:
    _postgres().close()  # skips, with the reason, when PostgreSQL is not there
    figures = run_chaos("jira", tmp_path, items=300, interruptions=25, seed=1, store=POSTGRES_URL)

    assert figures.interrupted == 25
    assert figures.duplicate_comments == 0, figures.line()
    assert figures.summaries == 300, figures.line()
    assert figures.wrong == [], figures.line()


def test_25_interrupted_servicenow_syncs_never_repeat_a_work_note(tmp_path: Path) -> None:
    figures = run_chaos("servicenow", tmp_path, items=300, interruptions=25, seed=1)

    assert figures.interrupted == 25
    assert figures.duplicate_notes == 0, figures.line()
    assert figures.summaries >= 300, figures.line()  # one per record, more where it changed
    assert figures.wrong == [], figures.line()
