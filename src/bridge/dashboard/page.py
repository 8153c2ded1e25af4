"""The portfolio dashboard: one self-contained HTML page (no network at view time).

The page carries the items as JSON and a small script of our own (``dashboard.js``) that
computes the portfolio figures — the same ratios of sums as
:func:`bridge.kpi.portfolio.portfolio`, so the page agrees with ``bridge report -f json`` —
and draws each chart as SVG with its numbers in a table beside it. Filtering is therefore
instant and needs no server: the same file works from ``bridge report -f html -o`` and from
``GET /dashboard``.

Why our own SVG and not a chart library: the charts are bars, a scatter, a histogram and a
line; the figures beside them have to be recomputed by our own code anyway (they must match
the report), so drawing is a few hundred lines on top. The alternative inlines Vega-Lite's
~900 KB bundle, taken from ``vl-convert-python`` (a 33 MB wheel, 84 MB installed, with a V8
runtime, to produce a text file) for every page; ours keeps the page small, the dependency
list unchanged, and the code reviewable in one sitting.

The markup made here holds only the title and the evaluation's context, escaped; every
figure and every ticket's text is put in by the script as text nodes. A Content-Security-
Policy (a ``<meta>`` in the page, and the HTTP header where one is served) lets only this
page's own script and style run: a summary that slips past the escaping still cannot run.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from html import escape
from importlib.resources import files

from bridge.dashboard.rows import item_rows, script_json
from bridge.kpi.portfolio import NONE_GROUP, Evaluated
from bridge.kpi.result import iso

__all__ = ["DEFAULT_TITLE", "content_security_policy", "render_dashboard"]

DEFAULT_TITLE = "bridge — portfolio"

# The words a reader meets on the page, explained once (issue 13: a legend for every
# abbreviation).
GLOSSARY: tuple[tuple[str, str], ...] = (
    (
        "SLA",
        "Service level agreement: a time goal for a ticket (first response, resolution), "
        "counted in the calendar's working hours. Each start-to-stop run of one is a clock.",
    ),
    (
        "SLA attainment",
        "Clocks that stopped within their goal, as a share of all clocks that "
        "stopped (met ÷ (met + breached)). One ticket can have several clocks, so the "
        "denominator is clocks, not tickets. Running and cancelled clocks are not counted.",
    ),
    (
        "At risk",
        "A running clock near its goal (the rule set's at-risk threshold), or one "
        "already past its goal but not yet stopped (breaching).",
    ),
    ("CSAT", "Customer satisfaction: the rating (1–5) a requester gave a ticket."),
    ("Top-2 %", "The share of ratings that are 4 or 5."),
    (
        "CI",
        "Confidence interval: the range the true top-2 share lies in with 95 % "
        "confidence, given how many ratings there are (Wilson score interval). Few ratings give "
        "a wide interval.",
    ),
    ("n", "How many items a figure is computed from (for CSAT: rated tickets)."),
    (
        "TCO",
        "Total cost of ownership of service work: labour (hours × rate) plus the other "
        "cost fields the rule set names, summed over the service's tickets.",
    ),
    (
        "EV, PV, AC",
        "Earned value (budget × percent complete), planned value (budget × "
        "planned percent complete by now), actual cost.",
    ),
    (
        "SPI",
        "Schedule performance index: Σ EV ÷ Σ PV over a project's items. Above 1 is "
        "ahead of plan, below 1 behind.",
    ),
    ("CPI", "Cost performance index: Σ EV ÷ Σ AC. Above 1 is under budget, below 1 over."),
    (
        "Slip",
        "Schedule slip in calendar days: resolved date minus due date for done items "
        "(negative: early); for open items the days past the due date so far.",
    ),
    (NONE_GROUP, "Items without a value for the field grouped by."),
)

_FILTERS = (
    ("source", "Source"),
    ("project", "Project"),
    ("service", "Service"),
)

_SECTIONS = (
    (
        "mix",
        "Work mix",
        "Items by work type (project, service, unclassified) per project, team and service.",
    ),
    (
        "sla",
        "SLA attainment per service",
        "Stopped clocks of service work, met vs breached, and the tickets breached or at risk.",
    ),
    (
        "csat",
        "Customer satisfaction (CSAT)",
        "Top-2 % per service with its 95 % confidence interval (CI), mean rating and n.",
    ),
    ("tco", "Total cost of ownership (TCO) per service", "Labour vs other costs."),
    (
        "evm",
        "Schedule and cost performance (SPI vs CPI) per project",
        "Lines at 1.0 split the quadrants: right is ahead of schedule, top is under budget.",
    ),
    ("slip", "Schedule slip", "Project items by days late (+) or early (−) against the due date."),
    (
        "trend",
        "Trend by week",
        "Items opened and resolved per week (by created and resolved "
        "date, UTC weeks starting Monday), and the SLA attainment of the clocks of items resolved "
        "in each week.",
    ),
)


@cache
def _asset(name: str) -> str:
    return files("bridge.dashboard").joinpath(name).read_text("utf-8")


def _digest(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _page_policy() -> str:
    return (
        f"default-src 'none'; script-src {_digest(_asset('dashboard.js'))}; "
        f"style-src {_digest(_asset('dashboard.css'))}; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def content_security_policy() -> str:
    """The ``Content-Security-Policy`` header to serve the page with: its own inline script
    and style (by hash), nothing fetched, no forms, and no framing (a ``<meta>`` policy, which
    the page carries for when it is opened as a file, cannot forbid framing). The data block
    is JSON, not script, so it needs no allowance."""
    return _page_policy() + "; frame-ancestors 'none'"


def _section(name: str, title: str, caption: str) -> str:
    return (
        f'<section class="card" id="{name}" data-section="{name}">'
        f'<h2>{escape(title)}</h2><p class="caption">{escape(caption)}</p>'
        f'<div class="body" data-body="{name}"></div></section>'
    )


def render_dashboard(
    evaluated: Sequence[Evaluated],
    *,
    now: datetime,
    rule_set: str,
    currency: str | None,
    title: str = DEFAULT_TITLE,
) -> str:
    """The dashboard page of these items, evaluated at ``now`` with the rule set whose digest
    is ``rule_set``; money is in ``currency`` (None: the rule set names none).

    Figures are computed in the page from the items (filters recompute them), with the
    definitions of :func:`bridge.kpi.portfolio.portfolio`; CSAT shows a Wilson interval
    where the report flags "low n", so there is no sample threshold to pass.
    """
    data = {
        "meta": {
            "now": iso(now),
            "rule_set": rule_set,
            "currency": currency,
            "none": NONE_GROUP,
            # z of the 95 % Wilson interval, as bridge.kpi.portfolio.wilson uses it.
            "wilson_z": 1.959963984540054,
        },
        "items": item_rows(evaluated),
    }
    money = f" · money in {escape(currency)}" if currency else ""
    stamp = escape(iso(now) or "")
    filters = "".join(
        f'<label>{label} <select name="{name}" data-filter="{name}">'
        f'<option value="">all</option></select></label>'
        for name, label in _FILTERS
    )
    glossary = "".join(
        f"<dt>{escape(term)}</dt><dd>{escape(meaning)}</dd>" for term, meaning in GLOSSARY
    )
    sections = "".join(_section(*spec) for spec in _SECTIONS)
    csp = escape(_page_policy())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_asset("dashboard.css")}</style>
</head>
<body>
<header>
<h1>{escape(title)}</h1>
<p class="meta">Evaluated at <time datetime="{stamp}">{stamp}</time> · rule set
<code>{escape(rule_set)}</code>{money} · <span data-figure="shown">0</span> of
{len(evaluated)} items shown</p>
</header>
<noscript><p class="warning">This page computes its figures and draws its charts with
JavaScript; enable it to see them.</p></noscript>
<form id="filters" class="filters" aria-label="Filters">
{filters}
<label>Created from <input type="date" name="from" data-filter="from"></label>
<label>to <input type="date" name="to" data-filter="to"></label>
<button type="reset" data-filter="reset">Show all</button>
</form>
<p class="filter-state" data-figure="filter-state"></p>
<section class="headline" id="headline" aria-label="Key figures"></section>
<main>
{sections}
<section class="card" id="items" data-section="items">
<h2>Items</h2>
<details><summary>Every item shown, with a link to its ticket</summary>
<div class="body" data-body="items"></div></details>
</section>
<section class="card" id="glossary">
<h2>Legend</h2>
<dl>{glossary}</dl>
</section>
</main>
<script type="application/json" id="bridge-data">{script_json(data)}</script>
<script>{_asset("dashboard.js")}</script>
</body>
</html>
"""
