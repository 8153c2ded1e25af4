"""The page as text: ticket data reaches it only as escaped JSON, links only as web URLs, and
the rows carry exactly what the portfolio figures count."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest

from bridge.dashboard import (
    content_security_policy,
    item_row,
    item_rows,
    render_dashboard,
    safe_url,
    script_json,
)
from bridge.kpi.portfolio import Evaluated
from bridge.kpi.result import KpiResult
from bridge.model import Classification, WorkItem
from tests.dashboard.conftest import HOSTILE, NOW, Evaluation

NASTY = [
    HOSTILE,
    "</script><script>alert(1)</script>",
    "</SCRIPT >",
    "<!--<script>",
    "a\u2028b\u2029c",
    "&lt;img&gt; & \"quotes\" 'single' \\ backslash",
    "\x00\x1f control",
    "emoji 🎉 and ünïcödé",
]


class _Scripts(HTMLParser):
    """The text of every <script> element, as a browser's tokenizer splits the page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._in = tag
            if tag == "script":
                self.scripts.append((dict(attrs), ""))
            else:
                self.styles.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        elif self._in == "style":
            self.styles[-1] += data


def _item(summary: str = "s", **fields: object) -> Evaluated:
    kpis = KpiResult(fields.pop("values", {}))  # type: ignore[arg-type]
    kpis.facts["sla_completed"] = fields.pop("completed", [])
    return Evaluated(
        WorkItem("K-1", "jira", summary=summary, **fields),  # type: ignore[arg-type]
        Classification("service", None, "r"),
        kpis,
    )


@pytest.mark.parametrize("text", NASTY)
def test_script_json_cannot_end_its_script_and_reads_back_the_same(text: str) -> None:
    embedded = script_json({"summary": text, "list": [text]})

    assert not re.search(r"[<>&\u2028\u2029]", embedded)
    assert json.loads(embedded) == {"summary": text, "list": [text]}


def test_script_json_refuses_what_json_cannot_say() -> None:
    with pytest.raises(ValueError, match="JSON"):
        script_json({"x": float("inf")})


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://acme.atlassian.net/browse/OPS-1", True),
        ("http://sn.example/nav_to.do?uri=incident.do%3Fsys_id%3Dabc", True),
        ("HTTPS://EXAMPLE.COM/x", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\nscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox", False),
        ("//evil.example/x", False),
        ("/browse/OPS-1", False),
        ("https://", False),
        ("https://[::1", False),
        ("", False),
        (None, False),
    ],
)
def test_only_absolute_web_urls_become_links(url: str | None, kept: bool) -> None:
    assert safe_url(url) == (url if kept else None)


def test_a_row_holds_only_what_the_portfolio_counts() -> None:
    row = item_row(
        _item(
            values={
                "csat.rating": 5,  # an int: portfolio() counts floats only
                "tco.total": float("nan"),
                "tco.labour_cost": 10.0,
                "tco.other_cost": None,
                "evm.ev": 1.0,
                "evm.pv": True,  # a bool is no figure
                "schedule.slip_days": 3,
                "sla.ttr.state": "breaching",
                "sla.ttr.at_risk": True,
                "sla.ttr.ever_breached": False,
                "sla.ttfr.state": "met",
            },
            completed=[True, False],
            project="",
            team=None,
            url="javascript:alert(1)",
        )
    )

    assert (row["csat"], row["tco_total"], row["tco_labour"], row["tco_other"]) == (
        None,
        None,
        10.0,
        None,
    )
    assert (row["ev"], row["pv"], row["slip_days"]) == (1.0, None, 3)
    assert (row["project"], row["team"], row["source"], row["url"]) == (
        "(none)",
        "(none)",
        "jira",
        None,
    )
    assert row["sla_completed"] == [True, False]
    assert row["clocks"] == [
        {"name": "ttr", "state": "breaching", "at_risk": True, "ever_breached": False},
        {"name": "ttfr", "state": "met", "at_risk": None, "ever_breached": False},
    ]


def test_a_configured_source_names_the_row_else_the_system() -> None:
    e = _item()
    assert item_row(e)["source"] == "jira"
    assert item_row(Evaluated(e.item, e.decision, e.kpis, source="jira-eu"))["source"] == "jira-eu"


def test_the_page_carries_hostile_text_only_inside_its_data(evaluation: Evaluation) -> None:
    title = "<b>PMO</b> & </title><script>alert(1)</script>"
    page = render_dashboard(
        evaluation.evaluated,
        now=NOW,
        rule_set='"><script>alert(2)</script>',
        currency="<EUR>",
        title=title,
    )
    parsed = _Scripts()
    parsed.feed(page)

    assert [attrs.get("type") for attrs, _ in parsed.scripts] == ["application/json", None]
    data = json.loads(parsed.scripts[0][1])
    assert data["items"] == item_rows(evaluation.evaluated)
    assert data["meta"]["rule_set"] == '"><script>alert(2)</script>'
    assert HOSTILE not in page
    assert "<script>alert" not in page
    assert "&lt;b&gt;PMO&lt;/b&gt; &amp; &lt;/title&gt;" in page
    assert "&lt;EUR&gt;" in page


def test_the_policy_admits_exactly_the_pages_own_script_and_style(
    evaluation: Evaluation,
) -> None:
    page = render_dashboard(evaluation.evaluated[:3], now=NOW, rule_set="d", currency=None)
    parsed = _Scripts()
    parsed.feed(page)

    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    policy = content_security_policy()
    assert f"script-src 'sha256-{digest(parsed.scripts[1][1])}'" in policy
    assert f"style-src 'sha256-{digest(parsed.styles[0])}'" in policy
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    meta = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert meta is not None
    assert meta.group(1).replace("&#x27;", "'") in policy


def test_an_empty_portfolio_is_still_a_page() -> None:
    page = render_dashboard([], now=datetime(2026, 1, 1, tzinfo=UTC), rule_set="d", currency=None)
    assert "of\n0 items shown" in page
    assert '"items":[]' in page


def test_dates_in_rows_are_utc_instants() -> None:
    row = item_row(
        _item(
            created=datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
            resolved=None,
            due=date(2026, 3, 5),
        )
    )
    assert (row["created"], row["resolved"]) == ("2026-03-01T23:30:00Z", None)
