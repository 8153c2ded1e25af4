"""The summary comment: material content only, stable digest, three renderings."""

from __future__ import annotations

from bridge.model import Classification
from bridge.writeback.plan import desired_values, diff_fields
from bridge.writeback.render import build_summary, to_adf, to_text, to_wiki

SERVICE = Classification("service", None, "incidents", ("sla.resolution", "csat"))
KPIS = {
    "sla.resolution.state": "running",
    "sla.resolution.elapsed_seconds": 3600.0,
    "sla.resolution.remaining_seconds": 10800.0,
    "sla.resolution.breach_time": "2026-03-10T16:00:00Z",
    "sla.resolution.breached": False,
    "csat.rating": None,
}
MISSING = [{"kpi": "csat.rating", "reason": "no satisfaction rating"}]


def test_running_clocks_do_not_change_the_digest() -> None:
    first = build_summary("OPS-1", SERVICE, KPIS, MISSING)
    later = build_summary(
        "OPS-1",
        SERVICE,
        {
            **KPIS,
            "sla.resolution.elapsed_seconds": 7200.0,
            "sla.resolution.remaining_seconds": 7200.0,
        },
        MISSING,
    )
    assert first.digest == later.digest


def test_a_material_change_changes_the_digest() -> None:
    first = build_summary("OPS-1", SERVICE, KPIS, MISSING)
    breached = build_summary(
        "OPS-1", SERVICE, {**KPIS, "sla.resolution.state": "breaching"}, MISSING
    )
    assert first.digest != breached.digest


def test_renderings_carry_the_same_facts() -> None:
    summary = build_summary("OPS-1", SERVICE, KPIS, MISSING, currency="EUR")
    text = to_text(summary)
    assert text.splitlines()[:2] == [
        "bridge: OPS-1 is service work",
        "Decision: service (rule incidents)",
    ]
    assert "  state: running" in text
    assert "  breach time: 2026-03-10T16:00:00Z" in text
    assert "  not computed: rating" in text
    assert "elapsed" not in text  # a running clock is volatile
    assert text.endswith(f"[bridge summary {summary.digest}]")
    wiki = to_wiki(summary)
    assert "h4. SLA resolution" in wiki
    assert "|state|running|" in wiki
    adf = to_adf(summary)
    assert adf["type"] == "doc"
    assert adf["version"] == 1
    kinds = [node["type"] for node in adf["content"]]
    assert kinds[:3] == ["paragraph", "paragraph", "heading"]
    assert "table" in kinds


def test_finished_clocks_show_their_elapsed_time_and_money_has_a_currency() -> None:
    project = Classification("project", "execution", "epics", ("evm",))
    summary = build_summary(
        "PMO-1",
        project,
        {"evm.bac": 10000.0, "evm.cpi": 0.8333, "evm.percent_complete": 0.25},
        currency="EUR",
    )
    rows = dict(summary.sections[0][1])
    assert rows == {"bac": "10,000 EUR", "cpi": "0.83", "percent complete": "25%"}
    met = build_summary("OPS-1", SERVICE, {**KPIS, "sla.resolution.state": "met"}, MISSING)
    assert ("elapsed seconds", "1.0 h") in met.sections[0][1]


def test_desired_values_and_diff() -> None:
    desired = desired_values(
        SERVICE,
        KPIS,
        {
            "work_type": "Work type",
            "phase": "Phase",
            "sla.resolution.state": "SLA state",
            "evm.spi": "SPI",
        },
    )
    assert desired == {"Work type": "service", "Phase": None, "SLA state": "running", "SPI": None}
    changed = diff_fields(
        desired,
        {"Work type": "service", "SLA state": "met"},
        lambda _field, current, wanted: current == wanted,
    )
    assert changed == {"SLA state": "running"}
