"""The bundled export evaluated once, with two tickets made hostile, and a headless Chromium
that loads the dashboard from a real local HTTP server."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.cli.options import evaluate_export
from bridge.kpi.portfolio import Evaluated
from bridge.rules.ast import RuleSet
from tests.conftest import REPO

NOW = datetime(2026, 11, 2, tzinfo=UTC)
RULES = REPO / "rules"
EXPORT = REPO / "examples" / "export"
HOSTILE = "<img src=x onerror=alert(1)></script><script>alert(2)</script>\u2028&amp;"
HOSTILE_URL = "javascript:alert(3)"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    rule_set: RuleSet
    evaluated: list[Evaluated]
    #: The key of the item whose summary is :data:`HOSTILE`.
    hostile_key: str
    #: The key of the item whose URL is :data:`HOSTILE_URL`.
    bad_link_key: str


@pytest.fixture(scope="session")
def evaluation() -> Evaluation:
    rule_set, evaluated, skipped = evaluate_export([str(RULES)], [str(EXPORT)], NOW)
    assert not skipped
    # A breached service ticket gets the hostile summary, so it shows in the SLA list too.
    hostile = next(
        i
        for i, e in enumerate(evaluated)
        if e.decision.work_type == "service" and any(e.kpis.facts.get("sla_completed", []))
    )
    bad_link = next(i for i, e in enumerate(evaluated) if i != hostile)
    for index, change in ((hostile, {"summary": HOSTILE}), (bad_link, {"url": HOSTILE_URL})):
        e = evaluated[index]
        evaluated[index] = dataclasses.replace(e, item=dataclasses.replace(e.item, **change))
    return Evaluation(
        rule_set, evaluated, evaluated[hostile].item.key, evaluated[bad_link].item.key
    )


@pytest.fixture(scope="session")
def static_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """Serve pages over real HTTP from a folder: ``put(html)`` gives the page's URL."""
    root = tmp_path_factory.mktemp("dashboard-pages")
    count = 0

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def put(html: str) -> str:
        nonlocal count
        count += 1
        (root / f"page-{count}.html").write_text(html, "utf-8")
        return f"http://127.0.0.1:{server.server_port}/page-{count}.html"

    yield put
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (its own browsers never downloaded)."""
    if not CHROMIUM.exists():
        pytest.skip(
            "the browser tests need Debian's chromium at /usr/bin/chromium "
            "(apt-get install -y chromium); .ci/run installs it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()
